"""Forward and backward of poolnd's engines against PyTorch (2 threads), interleaved in one run.

    python benchmarks/bench_forward.py            # the standard workloads
    python benchmarks/bench_forward.py --quick    # small shapes, a few seconds

Prints, per workload and pass, each contender's median and 25th-percentile time and its ratio to
PyTorch's (< 1 means faster than PyTorch), and with --markdown a table for the README.
"""
from __future__ import annotations

import argparse
import platform

import numpy as np

from _timing import interleaved, layer_contenders, load_average, summarize

WORKLOADS = {
    # name: (op, shape NCHW, kwargs)
    "max k2 s2, 32x64x112x112": ("max", (32, 64, 112, 112), dict(kernel_size=2, stride=2)),
    "max k3 s2 p1, 32x64x112x112": ("max", (32, 64, 112, 112),
                                    dict(kernel_size=3, stride=2, padding=1)),
    "avg k2 s2, 32x64x112x112": ("avg", (32, 64, 112, 112), dict(kernel_size=2, stride=2)),
    "avg k3 s2 p1, 32x64x112x112": ("avg", (32, 64, 112, 112),
                                    dict(kernel_size=3, stride=2, padding=1)),
}
QUICK = {
    "max k2 s2, 8x16x56x56": ("max", (8, 16, 56, 56), dict(kernel_size=2, stride=2)),
    "max k3 s2 p1, 8x16x56x56": ("max", (8, 16, 56, 56), dict(kernel_size=3, stride=2,
                                                              padding=1)),
    "avg k3 s2 p1, 8x16x56x56": ("avg", (8, 16, 56, 56), dict(kernel_size=3, stride=2,
                                                              padding=1)),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--engines", default="numpy", help="comma-separated poolnd engines")
    ap.add_argument("--markdown", action="store_true", help="print a README table too")
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    engines = args.engines.split(",")
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'absent'} (2 threads); {load_average()}")
    table = []
    for name, (op, shape, kw) in (QUICK if args.quick else WORKLOADS).items():
        fwd, bwd = layer_contenders(op, shape, kw, engines, torch,
                                    label=lambda e: f"poolnd[{e}]")
        for pass_name, group in (("forward", fwd), ("backward", bwd)):
            times = interleaved(group, repeats=args.repeats)
            peer = "torch" if torch is not None else next(iter(group))
            for row in summarize(times, peer):
                print(f"{name:32s} {pass_name:8s} {row['name']:16s} median {row['median_ms']:9.2f} ms"
                      f"  p25 {row['p25_ms']:9.2f} ms  x{row['ratio_median']:.2f} (p25 "
                      f"x{row['ratio_p25']:.2f}) vs {peer}")
                if row["name"] != peer:
                    table.append((name, pass_name, row))
    if args.markdown:
        print("\n| workload | pass | engine | time / PyTorch's (median) | (25th pct) |")
        print("|---|---|---|---|---|")
        for name, pass_name, row in table:
            print(f"| {name} | {pass_name} | {row['name']} | {row['ratio_median']:.2f} | "
                  f"{row['ratio_p25']:.2f} |")


if __name__ == "__main__":
    main()
