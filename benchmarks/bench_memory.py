"""Peak memory of a max pool with indices, poolnd against PyTorch (run by hand, not in CI).

Each measurement runs in a fresh process: it makes the input, touches it, reads the resident set
size (VmRSS), makes one call, and reports how far the peak resident size (VmHWM) rose above
that, in MiB: the call's own footprint, result included. The contenders are interleaved over
``--repeats`` rounds; the table gives medians and the ratio to PyTorch's.

    python benchmarks/bench_memory.py [--shape 16,64,160,160] [--repeats 3] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
who, shape, stride = sys.argv[1], tuple(int(v) for v in sys.argv[2].split(",")), int(sys.argv[3])
x = np.random.default_rng(0).random(shape, dtype=np.float32)
if who == "torch":
    import torch
    torch.set_num_threads(2)
    t = torch.from_numpy(x)
    torch.nn.functional.max_pool2d(t[:1, :1], 3, stride, 1, return_indices=True)   # warm
    before = status("VmRSS")
    y, i = torch.nn.functional.max_pool2d(t, 3, stride, 1, return_indices=True)
else:
    import poolnd
    poolnd.max_pool2d(x[:1, :1], 3, stride, 1, return_indices=True, engine=who)       # warm
    before = status("VmRSS")
    y, i = poolnd.max_pool2d(x, 3, stride, 1, return_indices=True, engine=who)
peak = status("VmHWM")
print(json.dumps(dict(growth=(peak - before) / 2**20, result=(y.nbytes + i.nbytes) / 2**20,
                      input=x.nbytes / 2**20)))
"""


def measure(who: str, shape: str, stride: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, who, shape, str(stride)],
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="16,64,160,160")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    who = ["torch", "numba", "numpy"]
    print(f"# load average {os.getloadavg()[0]:.2f}; input float32 {args.shape}; "
          f"max_pool2d k3 p1 return_indices=True; growth of the peak RSS over the call")
    rows = []
    for stride in (2, 1):
        runs = {w: [] for w in who}
        for _ in range(args.repeats):
            for w in who:
                runs[w].append(measure(w, args.shape, stride))
        med = {w: statistics.median(r["growth"] for r in runs[w]) for w in who}
        res = runs["torch"][0]["result"]
        inp = runs["torch"][0]["input"]
        for w in who:
            rows.append((stride, w, med[w], med[w] / med["torch"], res, inp))
    if args.markdown:
        print("| stride | engine | peak growth (MiB) | / torch | values + indices (MiB) |")
        print("|---|---|---|---|---|")
        for s, w, m, r, res, _ in rows:
            print(f"| {s} | {w} | {m:.0f} | {r:.2f}x | {res:.0f} |")
    else:
        for s, w, m, r, res, inp in rows:
            print(f"stride {s}  {w:6s} peak growth {m:8.1f} MiB  x{r:.2f} torch  "
                  f"(result {res:.1f} MiB, input {inp:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
