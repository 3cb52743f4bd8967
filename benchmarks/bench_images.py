"""Image and label reductions: poolnd's median, mode and nan_policy against their peers.

    python benchmarks/bench_images.py            # every table, 15 rounds
    python benchmarks/bench_images.py --quick    # a few rounds

Tables (numba engine, interleaved rounds, median and 25th percentile, ratio = poolnd / peer,
< 1 is faster):

1. Label mode, 2x2 and 2x2x2, uint32 and uint64 labels, against
   ``tinybrain.downsample_segmentation`` on the same array (tinybrain gets the transposed
   view, its native Fortran order, of the same memory: no copy for either). The tie rules
   differ (poolnd: the smallest of tied labels; tinybrain's COUNTLESS: another fixed rule), so
   the agreement printed is over every window, ties included.
2. 3x3 median of float32 and uint8 images against ``scipy.ndimage.median_filter``. Stride 1:
   both compute every output (scipy's border rule is reflection, poolnd's padding never counts:
   the interior is checked equal). Stride 2: scipy has no stride, so it filters everything and
   the kept outputs are ``[::2, ::2]``; that costs scipy 4x the outputs poolnd computes, which
   is what a user of scipy pays for them.
3. nan_policy="omit" on inputs without NaN against "propagate" (16x32x112x112 float32,
   channels first and last, and a 4x16x64^3 volume; max/min/avg/sum 2x2, 3x3 stride 1 and 2,
   5x5 stride 3, median, mode): the price of the NaN check, which the numba engine fuses into
   every forward kernel (``_checked_run``'s scan of each block while in L1, a flag in the
   channels-last averages' and the sums' own loops), or of no check at all where a kernel skips
   NaN in its select (the 2x2, 2x2x2 and 3x3 max and min). ``--only omit`` runs this table
   alone.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

import poolnd
from _timing import interleaved, load_average, p25


def _row(label, times, ours, peer):
    m, q = statistics.median(times[ours]), p25(times[ours])
    pm, pq = statistics.median(times[peer]), p25(times[peer])
    return (f"| {label:<34} | {m * 1e3:8.2f} | {q * 1e3:8.2f} | {pm * 1e3:8.2f} | "
            f"{pq * 1e3:8.2f} | {m / pm:5.2f} | {q / pq:5.2f} |")


HEADER = ("| {:<34} | poolnd ms | p25 | {} ms | p25 | ratio | ratio p25 |\n"
          "|---|---:|---:|---:|---:|---:|---:|")


def labels(repeats):
    import tinybrain
    rng = np.random.default_rng(0)
    print(HEADER.format("label mode (agreement incl. ties)", "tinybrain"))
    for dtype in (np.uint32, np.uint64):
        for shape, k in (((4096, 4096), 2), ((256, 256, 256), 3)):
            # few labels, runs of equal ids as in a segmentation, plus noise at the edges
            a = np.repeat(rng.integers(0, 2**31, size=(shape[0] // 4,) + shape[1:]), 4,
                          axis=0).astype(dtype)
            a[rng.random(a.shape) < 0.2] = dtype(7)
            f = (2,) * k
            ours = lambda: poolnd.pool(a[None, None], "mode", 2, spatial_dims=k)  # noqa: E731
            theirs = lambda: tinybrain.downsample_segmentation(a.T, f)[0]       # noqa: E731
            same = float(np.mean(ours()[0, 0] == theirs().T))
            t = interleaved({"poolnd": ours, "tinybrain": theirs}, repeats)
            print(_row(f"{'x'.join(map(str, f))} {np.dtype(dtype).name} {shape} ({same:.3f})",
                       t, "poolnd", "tinybrain"))


def medians(repeats):
    from scipy import ndimage
    rng = np.random.default_rng(1)
    print(HEADER.format("3x3 median", "scipy"))
    for dtype in (np.float32, np.uint8):
        img = rng.integers(0, 256, size=(2048, 2048)).astype(dtype)
        if dtype == np.float32:
            img += rng.random(img.shape, dtype=np.float32)
        for stride in (1, 2):
            ours = lambda s=stride: poolnd.pool(img[None, None], "median", 3, s, 1,  # noqa: E731
                                                spatial_dims=2)[0, 0]
            theirs = lambda s=stride: ndimage.median_filter(img, 3)[::s, ::s]  # noqa: E731
            a, b = ours(), theirs()
            assert np.array_equal(a[1:-1, 1:-1], b[1:-1, 1:-1]), "interiors differ"
            t = interleaved({"poolnd": ours, "scipy": theirs}, repeats)
            what = "full filter" if stride == 1 else "filter, then [::2, ::2]"
            print(_row(f"{np.dtype(dtype).name} 2048^2 s{stride} ({what})", t, "poolnd",
                       "scipy"))


def nan_check(repeats):
    x = np.random.default_rng(2).standard_normal((16, 32, 112, 112), dtype=np.float32)
    print(HEADER.format("omit vs propagate, no NaN", "propagate"))
    worst = 0.0
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    v = np.random.default_rng(3).standard_normal((4, 16, 64, 64, 64), dtype=np.float32)
    rows = [(mode, k, s, p, x, None, 2) for mode, k, s, p in
            (("max", 2, 2, 0), ("avg", 2, 2, 0), ("min", 2, 2, 0), ("sum", 2, 2, 0),
             ("max", 3, 2, 1), ("avg", 3, 2, 1), ("max", 3, 1, 1), ("avg", 3, 1, 1),
             ("max", 5, 3, 2), ("median", 3, 2, 1), ("mode", 2, 2, 0))]
    rows += [("max", 2, 2, 0, xl, "NHWC", 2), ("avg", 3, 2, 1, xl, "NHWC", 2),
             ("max", 2, 2, 0, v, None, 3), ("avg", 2, 2, 0, v, None, 3)]
    for mode, k, s, p, a, layout, sd in rows:
        calls = {pol: (lambda pol=pol, mode=mode, k=k, s=s, p=p, a=a, layout=layout, sd=sd:
                       poolnd.pool(a, mode, k, s, p, spatial_dims=sd, layout=layout,
                                   nan_policy=pol))
                 for pol in ("omit", "propagate")}
        t = interleaved(calls, repeats)
        worst = max(worst, statistics.median(t["omit"]) / statistics.median(t["propagate"]))
        shape = "x".join(map(str, a.shape))
        print(_row(f"{mode} k{k} s{s} p{p} {layout or ''} {shape}", t, "omit", "propagate"))
    print(f"\nworst median ratio omit / propagate: {worst:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("labels", "medians", "omit"),
                    help="run one table")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 15
    print(load_average(), "| numba threads:", __import__("numba").config.NUMBA_NUM_THREADS)
    print()
    tables = {"labels": lambda: labels(repeats), "medians": lambda: medians(repeats),
              "omit": lambda: nan_check(repeats * 2)}
    for name, run in tables.items():
        if args.only in (None, name):
            run()
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
