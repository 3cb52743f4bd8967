"""Start-up costs, each in a fresh process: ``import poolnd``; the first call of a common op with
an empty Numba cache (compilation); the first call in a new process with the cache filled.

    python benchmarks/bench_import.py [--repeats 5]

Targets (issue 3): import < 0.1 s, cold first call < 2 s, cached first call < 0.3 s.

``--hide-scipy`` runs the same with SciPy made unimportable: when SciPy is installed, Numba's
first compile or cache load in a process imports ``scipy.linalg`` (about 0.2 s here) to look for
BLAS, whatever the kernel; poolnd itself never uses SciPy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

SNIPPET = """
import sys, time
if {hide}:
    sys.modules["scipy"] = None
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import poolnd
t2 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((8, 16, 32, 32)).astype(np.float32)
t3 = time.perf_counter()
poolnd.{call}
t4 = time.perf_counter()
print(t2 - t1, t4 - t3)
"""

CALLS = {
    "max_pool2d(x, 2)": "max_pool2d(x, 2)",
    "max_pool2d(x, 3, 2, 1)": "max_pool2d(x, 3, 2, 1)",
    "MaxPool2d(2).forward(x)": "MaxPool2d(2).forward(x)",
    "avg_pool2d(x, 2)": "avg_pool2d(x, 2)",
}


def run(call, cache_dir, hide):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", SNIPPET.format(call=call, hide=hide)], env=env,
                         capture_output=True, text=True, check=True)
    imp, first = (float(v) for v in out.stdout.split())
    return imp, first


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hide-scipy", action="store_true")
    args = ap.parse_args(argv)
    print(f"# SciPy {'hidden' if args.hide_scipy else 'importable if installed'}")
    imports = []
    for name, call in CALLS.items():
        colds, warms = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                imp, cold = run(call, cache, args.hide_scipy)          # empty cache: compiles
                imports.append(imp)
                _, warm = run(call, cache, args.hide_scipy)            # new process, cache filled
            colds.append(cold)
            warms.append(warm)
        print(f"{name:26s} cold first call median {statistics.median(colds):6.2f} s "
              f"(max {max(colds):.2f}); cached first call median {statistics.median(warms):6.3f} s "
              f"(max {max(warms):.3f})")
    print(f"import poolnd: median {statistics.median(imports) * 1e3:.1f} ms "
          f"(max {max(imports) * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
