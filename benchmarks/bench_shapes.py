"""Shapes beyond the six standard workloads: whole-plane (global) pools, large non-overlapping
tiles (downsampling) and adaptive pools, poolnd's default engine against PyTorch (2 threads),
interleaved.

    python benchmarks/bench_shapes.py [--repeats 9] [--markdown]

Forward only: the functional ops, values without indices.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

import poolnd
from _timing import interleaved, load_average, p25

CASES = [  # name, shape, poolnd op, torch op, kwargs
    ("global avg, 32x512x7x7", (32, 512, 7, 7), "adaptive_avg_pool2d", "adaptive_avg_pool2d",
     dict(output_size=1)),
    ("global max, 32x512x7x7", (32, 512, 7, 7), "adaptive_max_pool2d", "adaptive_max_pool2d",
     dict(output_size=1)),
    ("adaptive avg 56->7, 32x64x56x56", (32, 64, 56, 56), "adaptive_avg_pool2d",
     "adaptive_avg_pool2d", dict(output_size=7)),
    ("adaptive max 112->(13,17), 16x64x112x112", (16, 64, 112, 112), "adaptive_max_pool2d",
     "adaptive_max_pool2d", dict(output_size=(13, 17))),
    ("max 4x4 tiles, 32x64x56x56", (32, 64, 56, 56), "max_pool2d", "max_pool2d",
     dict(kernel_size=4)),
    ("avg 8x8 tiles, 32x64x56x56", (32, 64, 56, 56), "avg_pool2d", "avg_pool2d",
     dict(kernel_size=8)),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    rows = []
    print(f"# {args.repeats} interleaved rounds; {load_average()}")
    for name, shape, ours, theirs, kw in CASES:
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        xt = torch.from_numpy(x)
        fn, tfn = getattr(poolnd, ours), getattr(F, theirs)
        times = interleaved({"poolnd": lambda: fn(x, **kw), "torch": lambda: tfn(xt, **kw)},
                            repeats=args.repeats)
        rows.append((name, "forward", times))
        for n, t in times.items():
            print(f"{name:42s} forward  {n:7s} median {statistics.median(t) * 1e3:8.3f} ms  "
                  f"p25 {p25(t) * 1e3:8.3f} ms")
    if args.markdown:
        print("\n| shape | pass | poolnd / PyTorch (median) | (25th pct) |\n|---|---|---|---|")
        for name, pass_name, t in rows:
            print(f"| {name} | {pass_name} | "
                  f"{statistics.median(t['poolnd']) / statistics.median(t['torch']):.2f} | "
                  f"{p25(t['poolnd']) / p25(t['torch']):.2f} |")


if __name__ == "__main__":
    main()
