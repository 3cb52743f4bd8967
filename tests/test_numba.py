"""The compiled engine's own contract: default when Numba imports, compact saved state, a
backward bit-identical across runs and thread counts, and kernel bodies that also run as plain
Python and under Numba's boundscheck."""
import os
import subprocess
import sys

import numpy as np
import pytest

import poolnd
import poolnd.engines

numba = pytest.importorskip("numba")
HERE = os.path.dirname(__file__)


def test_numba_is_the_default_engine():
    assert poolnd.engines.default() == "numba"
    assert "numba" in poolnd.engines.available()


def test_saved_state_is_a_one_byte_argmax(rng):
    layer = poolnd.MaxPool2d(3, stride=2, padding=1, engine="numba")
    layer.forward(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    assert layer._saved.arg.dtype == np.int8
    y, idx = poolnd.max_pool2d(rng.standard_normal((1, 1, 4, 4)), 2, return_indices=True,
                               engine="numba")
    assert idx.dtype == np.int64


CASES = [  # overlapping windows, so that gradients accumulate
    ("max", dict(spatial_dims=2), (4, 8, 40, 40), 3, 1, 1),
    ("avg", dict(spatial_dims=2), (4, 8, 40, 40), 3, 1, 1),
    ("max", dict(spatial_dims=2, layout="NHWC"), (4, 40, 40, 24), 3, 1, 1),
    ("avg", dict(spatial_dims=2, layout="NHWC"), (4, 40, 40, 24), 3, 1, 1),
    ("max", dict(spatial_dims=3), (2, 4, 12, 12, 12), 3, 1, 1),
    ("sum", dict(spatial_dims=4), (2, 2, 6, 6, 6, 6), 2, 1, 0),
]


@pytest.mark.parametrize("mode,kw,shape,k,s,p", CASES)
def test_backward_is_bit_identical_across_runs_and_thread_counts(mode, kw, shape, k, s, p, rng,
                                                                 monkeypatch):
    from poolnd.engines._numba import _threadpool
    monkeypatch.setattr(_threadpool, "_COLD_SERIAL_BELOW", 0)      # threads even when they sleep
    x = rng.standard_normal(shape).astype(np.float32)
    results = []
    saved = numba.get_num_threads()
    try:
        for threads in (1, saved, 1, saved):
            numba.set_num_threads(threads)
            layer = poolnd.Pool(mode, k, s, p, engine="numba", **kw)
            y = layer.forward(x)
            dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
            results.append((y.view(np.uint32), layer.backward(dy).view(np.uint32)))
    finally:
        numba.set_num_threads(saved)
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def _run_check(**env):
    full = dict(os.environ, POOLND_NUMBA_SERIAL_BELOW="0", **env)
    out = subprocess.run([sys.executable, os.path.join(HERE, "kernel_check.py")], env=full,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "kernel_check: 0 mismatches" in out.stdout


def test_kernel_bodies_run_as_python():
    _run_check(NUMBA_DISABLE_JIT="1")


def test_kernels_under_boundscheck():
    _run_check(NUMBA_BOUNDSCHECK="1", POOLND_NUMBA_CACHE="0")


def test_concurrent_calls_from_threads_under_workqueue():
    """Parallel kernels launched from several user threads must not abort the process."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "concurrency_check.py")],
                         env=dict(os.environ, NUMBA_THREADING_LAYER="workqueue"),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "threading layer workqueue started: False errors 0" in out.stdout


def _grid():
    """Per-dim kernels, strides and paddings that select every fast path and its neighbours."""
    import itertools
    cases = []
    for k in (2, 3):
        for kern in itertools.product((1, 2, 3), repeat=k):
            for stride in {kern, (1,) * k, (2,) * k}:
                for pad in {(0,) * k, tuple(kk // 2 for kk in kern)}:
                    cases.append((k, kern, stride, pad))
    return cases


@pytest.mark.parametrize("layout_last", [False, True])
@pytest.mark.parametrize("k,kern,stride,pad", _grid())
def test_every_fast_path_selection_agrees_with_numpy_engine(k, kern, stride, pad, layout_last):
    """Fast-path conditions are where geometry can be misread: every small kernel/stride/pad
    combination, both layouts, max (with argmax) and average, forward and backward, against the
    NumPy engine (an independent implementation, tested against torch)."""
    rng = np.random.default_rng(abs(hash((k, kern, stride, pad, layout_last))) % 2**32)
    shape = (2, 3) + ((5, 6, 7)[-k:] if k == 3 else (6, 7))
    x = rng.standard_normal(shape).astype(np.float32)
    layout = None
    if layout_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        layout = "N" + "DHW"[-k:] + "C"
    for mode in ("max", "avg"):
        out = {}
        for eng in ("numpy", "numba"):
            layer = poolnd.Pool(mode, kern, stride, pad, spatial_dims=k, layout=layout,
                                engine=eng, return_indices=mode == "max")
            y = layer.forward(x)
            yv = y[0] if mode == "max" else y
            dy = np.arange(yv.size, dtype=np.float32).reshape(yv.shape) % 7
            out[eng] = (y, layer.backward(dy), poolnd.pool(x, mode, kern, stride, pad,
                                                           spatial_dims=k, layout=layout,
                                                           engine=eng))
        (ry, rdx, rf), (ny, ndx, nf) = out["numpy"], out["numba"]
        if mode == "max":
            np.testing.assert_array_equal(ny[0], ry[0])
            np.testing.assert_array_equal(ny[1], ry[1])
            np.testing.assert_array_equal(nf, rf)
        else:
            np.testing.assert_allclose(ny, ry, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(nf, rf, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ndx, rdx, rtol=1e-6, atol=1e-6)


def test_mid_size_calls_stay_serial_only_while_the_threads_sleep(monkeypatch):
    from poolnd.engines._numba import _threadpool as tp
    monkeypatch.setattr(tp, "_SERIAL_BELOW", 100)
    monkeypatch.setattr(tp, "_COLD_SERIAL_BELOW", 10_000)
    assert tp._serial(99)
    monkeypatch.setattr(tp, "_last_parallel", [-1e9])              # long ago: asleep
    assert tp._serial(5_000) and not tp._serial(20_000)
    x = np.random.default_rng(0).standard_normal((2, 2, 64, 64)).astype(np.float32)
    poolnd.max_pool2d(x, 3, 2, 1, engine="numba")                      # 4096 outputs: serial
    assert tp._last_parallel[0] == -1e9
    poolnd.max_pool2d(np.tile(x, (4, 1, 1, 1)), 3, 2, 1, engine="numba")   # 16384: threads
    assert tp._last_parallel[0] > 0 or numba.get_num_threads() == 1
    assert not tp._serial(5_000) or numba.get_num_threads() == 1    # warm now


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parallel_calls_work_in_a_forked_child():
    """The worker threads of the parent do not exist in a forked child; the child must start
    its own instead of waiting on them forever."""
    code = (
        "import multiprocessing as mp, numpy as np, poolnd\n"
        "x = np.random.default_rng(0).standard_normal((16, 64, 64, 64)).astype(np.float32)\n"
        "want = poolnd.max_pool2d(x, 3, 2, 1)\n"
        "def child(q):\n"
        "    q.put(bool((poolnd.max_pool2d(x, 3, 2, 1) == want).all()))\n"
        "ctx = mp.get_context('fork')\n"
        "q = ctx.Queue()\n"
        "p = ctx.Process(target=child, args=(q,))\n"
        "p.start()\n"
        "print('child ok' if q.get(timeout=60) else 'child wrong')\n"
        "p.join(60)\n")
    env = dict(os.environ, POOLND_NUMBA_COLD_SERIAL_BELOW="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180, env=env)
    assert "child ok" in out.stdout, out.stdout + out.stderr[-2000:]


def test_float16_casts_are_numpys_bit_for_bit(rng):
    """The engine's float16 <-> float32 kernels against NumPy's astype: all 65,536 float16
    values, and float32 bit patterns that cover every rounding case and NaN payload (signaling
    ones included, which the CPU's own conversion would quiet)."""
    from poolnd.engines._numba import _k_half
    if not _k_half._hardware():
        pytest.skip("this CPU has no inline float16 conversion: the engine uses NumPy's casts")
    h = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    w = _k_half.widen(h.reshape(256, 256))
    assert w.dtype == np.float32 and w.shape == (256, 256)
    np.testing.assert_array_equal(w.view(np.uint32), h.astype(np.float32).reshape(256, 256)
                                  .view(np.uint32))
    bits = np.concatenate([
        rng.integers(0, 1 << 32, 1 << 21, dtype=np.uint64).astype(np.uint32),
        np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32),       # a grid of all
        (np.arange(1 << 16, dtype=np.uint32) << 13)[:, None].repeat(3, 1).ravel()
        + np.tile(np.array([0xFFF, 0x1000, 0x1001], dtype=np.uint32), 1 << 16),  # ties
        np.array([0x7F800001, 0x7F801FFF, 0xFF802000, 0x7FC00000, 0x7F800000, 0x477FF000,
                  0x477FEFFF, 0x33000000, 0x33000001, 0x80000000], dtype=np.uint32)])
    f = bits.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = f.astype(np.float16)
    got = _k_half.narrow(f, np.float16)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.view(np.uint16), ref.view(np.uint16))
    strided = f[::3]                                  # not contiguous: NumPy's cast itself
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(_k_half.narrow(strided, np.float16).view(np.uint16),
                                      strided.astype(np.float16).view(np.uint16))


def test_float16_signaling_nan_survives_a_pool_as_in_the_numpy_engine():
    """A signaling NaN's payload goes through the numba engine's float16 max unchanged, as it
    does through the NumPy engine (the CPU's conversion alone would set its quiet bit)."""
    x = np.zeros((2, 3, 64, 64), dtype=np.float16)
    x.view(np.uint16)[0, 1, 10, 10] = 0x7C01
    x.view(np.uint16)[1, 2, 33, 40] = 0xFE55
    y = poolnd.max_pool2d(x, 2, engine="numba")
    ref = poolnd.max_pool2d(x, 2, engine="numpy")
    np.testing.assert_array_equal(y.view(np.uint16), ref.view(np.uint16))
    assert y.view(np.uint16)[0, 1, 5, 5] == 0x7C01
