"""Four threads pool at once through every launch kind (2x2, generic argmax, 3x3,
channels-last, backward); exits 1 on a wrong result. Run by test_numba.py under Numba's
workqueue threading layer, which aborts the process if two threads launch parallel kernels at
once (poolnd launches none: its kernels run on its own thread pool)."""
import sys
import threading

import numba
import numpy as np

import poolnd

RNG = np.random.default_rng(0)
XS = [RNG.standard_normal((8, 16, 48, 48)).astype(np.float32) for _ in range(4)]


def calls(x):
    """Every launch kind: results to compare."""
    out = [poolnd.max_pool2d(x, 2), poolnd.max_pool2d(x, 3, 2, 1),
           poolnd.avg_pool2d(x, 2, layout="NHWC")]
    for layer in (poolnd.MaxPool2d(2), poolnd.MaxPool2d(3, 2, 1, dilation=2)):
        y = layer.forward(x)
        out += [y, layer.backward(np.ones_like(y))]
    return out


def main():
    expected = [calls(x) for x in XS]
    errors = []

    def work(i):
        for _ in range(25):
            got = calls(XS[i])
            if not all(np.array_equal(a, b) for a, b in zip(got, expected[i])):
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from numba.np.ufunc import parallel
    print("threading layer", numba.config.THREADING_LAYER, "started:", parallel._is_initialized,
          "errors", len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
