"""The whole pooling family against its peers, row by row, with the goal of issue 10 per row.

    python benchmarks/bench_family.py                      # every row, quiet machine
    python benchmarks/bench_family.py --quick              # smaller shapes, 3 rounds: a smoke test
    python benchmarks/bench_family.py --rows 'adaptive|global'   # rows whose name matches
    python benchmarks/bench_family.py --markdown           # the final table as README Markdown
    python benchmarks/bench_family.py --contention         # the same rows on a busy machine
    python benchmarks/bench_family.py --pin both           # pinned and unpinned, one process each

Run every timing under the shared lock: ``flock /tmp/bench.lock python benchmarks/...``.

Rows. Every op of the family (max, avg, lp, min, sum, adaptive max/avg, unpool, fractional max,
global max/avg), 1-d, 2-d and 3-d, channels-first and channels-last, float16/float32/float64,
on shapes from networks (ResNet stem and head, Inception, YOLO's SPP/SPPF, video 3-d nets) large
enough to be memory-bound; uint8 and uint16 2x2, 2x2x2 and 4x4 means and maxes of image stacks
and volumes against ``tinybrain``; stride-1 3x3..13x13 max and average; and latency rows (batch
1, small inputs). Passes: "forward" is the functional op; "layer fwd" the layer's forward,
which keeps what backward needs (PyTorch's peer for the max family is then the op with
``return_indices=True``, what autograd keeps); "backward" the layer's backward (poolnd.vjp's
pullback for the global pools), against PyTorch's ``aten`` backward op where one exists
(``max_pool*_with_indices_backward``, ``avg_pool*_backward``, the adaptive and fractional
ones) and ``torch.autograd.grad`` through the forward otherwise (1-d, lp, min, unpool).
PyTorch runs with 2 threads, on the same memory (a channels-last row gives it the permuted
view, a channels_last tensor). Before timing, each row checks that poolnd and its peer agree
(``np.allclose``; integers and indices exactly) and stops with the difference if not.

Columns. Median and 25th percentile of interleaved rounds (each contender once per round, in
rotating order, a 50 ms settle pause before each call: ``_timing.interleaved``), the ratio
poolnd / peer of both (< 1: poolnd is faster), the memory floor, the roofline fraction and
the row's goal. A row runs 11 rounds (--repeats), fewer (at least 5) where one round takes
more than 3 s / 11, after one warm-up round that sizes it; the full run takes about 10 min.

- Memory floor: the time to read the input once and write the output once at the copy
  bandwidth measured in the same rounds. A contender ``np.copyto`` of S = max(in_bytes,
  out_bytes) bytes (the row's larger side, so the copy works in the same cache level) runs
  interleaved with poolnd and the peer; a copy of S bytes moves 2S bytes (S read, S
  written), so ``floor = t_copy * (in_bytes + out_bytes) / (2 * S)`` (25th percentiles). A
  pool whose output is as large as its input has the copy's own time as its floor. "in" is what
  the call must read (x; the pooled values and int64 indices of an unpool; dy of a backward:
  a max backward's saved argmax is not counted, its size is the engine's choice) and "out"
  what it returns (values, and indices when asked). NumPy's copy is single-threaded; on this
  2-core VM a 2-thread copy was no faster (measured while writing this script). Note:
  ``bench_engines.py`` charges the copy's time per *input* byte to every byte moved, a floor
  twice this one, so its roofline percentages are twice these for the same times.
- Roofline: floor / poolnd's time (25th percentiles).
- Goal (quiet, issue 10): poolnd's p25 at most 0.7x the peer's or 1.25x the floor, whichever
  is larger (family and latency rows; a row with no peer, float16 avg_pool3d, has the floor
  only); tinybrain rows at most 1.0x tinybrain and at least 60% roofline; stride-1 rows with a
  kernel of 5 or more at most 0.3x PyTorch. Under ``--contention``: faster than the peer
  (< 1.0x) on every row.

``--contention [both|process|runtime]``: the same rows (a) with a neighbour process spinning
in pure Python on one core (started before the first row, killed after the last, also on
Ctrl-C or SIGTERM; it exits by itself if this process dies) and (b) with other runtimes'
thread pools active in this process: a NumPy matmul (OpenBLAS's threads) and a jitted JAX
call run just before every timed call, with no settle pause, so their spinning threads meet
the timed call as they do in a user's process. Default: both at once.

``--gap SECONDS`` (default 0.05, ``_timing.interleaved``'s): the settle pause before each timed
call in the quiet mode. On this VM an idle vCPU takes about 1-6 ms to wake, and a 2-thread
PyTorch call on a small input waits for it after every pause (a 1x64x56x56 avg_pool2d: 0.38 ms
back to back, 1.2-5.8 ms after 50 ms idle, measured while writing this script), while poolnd
runs small calls on one thread after its workers have idled; ``--gap 0`` times calls back to
back, as in a loop.

``--pin on|off|both``: ``POOLND_PIN_THREADS`` is read when poolnd's engine loads, so each
setting runs in its own subprocess (same arguments); ``both`` prints the two runs' ratios side
by side. The two runs follow each other, so compare their ratios to the peer (interleaved
within each run), not their absolute times. Without ``--pin`` the script runs in this process
with the environment's setting (the header says which).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

import poolnd
from _timing import interleaved, load_average, p25

LAYOUTS = {(1, False): "NCW", (1, True): "NWC", (2, False): "NCHW", (2, True): "NHWC",
           (3, False): "NCDHW", (3, True): "NDHWC"}
DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
ROW_BUDGET_S = 3.0      # a row whose round takes longer gets fewer rounds ...
MIN_ROUNDS = 5          # ... but never fewer than these (--quick: its 3)
TOL = {np.float16: dict(rtol=1e-2, atol=1e-2), np.float32: dict(rtol=1e-4, atol=1e-5),
       np.float64: dict(rtol=1e-9, atol=1e-12)}


# ----------------------------------------------------------------------------------------------
# what one row times
# ----------------------------------------------------------------------------------------------

@dataclass
class Timed:
    """One row's calls: ``ours`` (poolnd), ``peers`` ({name: fn}; the fastest is the peer) and,
    per peer, ``pairs[name]()`` -> [(poolnd's array, the peer's as NumPy in poolnd's layout)]
    for the agreement check; ``in_bytes``/``out_bytes`` for the floor."""
    ours: object
    peers: dict
    pairs: dict
    in_bytes: int
    out_bytes: int
    exact: bool = False


@dataclass
class Case:
    """A workload: ``build(torch, passes)`` -> {pass: Timed} for the passes asked."""
    name: str               # workload, e.g. "max 3x3 s2 p1 (ResNet stem)"
    what: str               # shape, layout, dtype
    passes: tuple
    build: object
    goal: str = "family"    # family | latency | stride1 | tinybrain


def _nbytes(*arrays):
    return sum(a.nbytes for a in arrays)


def _tview(torch, a, k, cl):
    """The same memory as a torch tensor of torch's (N, C, *spatial) shape."""
    t = torch.from_numpy(a)
    return t.permute(0, k + 1, *range(1, k + 1)) if cl else t


def _tnp(t, k, cl):
    """A torch result back to NumPy in poolnd's layout."""
    return (t.permute(0, *range(2, k + 2), 1) if cl else t).detach().numpy()


def _autograd(torch, f, xt, dyt):
    """PyTorch's backward of ``f`` at ``xt`` through autograd (graph built once)."""
    xr = xt.detach().requires_grad_()
    y = f(xr)
    y = y[0] if isinstance(y, tuple) else y
    return lambda: torch.autograd.grad(y, xr, dyt, retain_graph=True)[0]


def _input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)


def _shape(cf, k, cl):
    """numpy shape of a channels-first logical (N, C, *spatial) shape in the chosen layout."""
    return (cf[0],) + tuple(cf[2:]) + (cf[1],) if cl else tuple(cf)


# ----------------------------------------------------------------------------------------------
# builders: one per kind of op, each returning {pass: Timed}
# ----------------------------------------------------------------------------------------------

def fixed(mode, k, cf, dtype, cl, passes, torch, kernel_size, stride=None, padding=0,
          norm_type=2, indices=False):
    """max, avg, lp, min, sum with a fixed window; ``indices``: the layer returns them too."""
    F, aten = torch.nn.functional, torch.ops.aten
    L = LAYOUTS[(k, cl)]
    st = kernel_size if stride is None else stride
    x = _input(_shape(cf, k, cl), dtype)
    xt = _tview(torch, x, k, cl)
    ks_, st_, pd_ = [kernel_size] * k, [st] * k, [padding] * k
    if mode == "max":
        ours = lambda: getattr(poolnd, f"max_pool{k}d")(x, kernel_size, st, padding, layout=L)
        layer = getattr(poolnd, f"MaxPool{k}d")(kernel_size, st, padding, layout=L,
                                                return_indices=indices)
        tf = lambda t: getattr(F, f"max_pool{k}d")(t, kernel_size, st, padding)
        tl = lambda: getattr(F, f"max_pool{k}d")(xt, kernel_size, st, padding,
                                                 return_indices=True)
    elif mode == "avg":
        ours = lambda: getattr(poolnd, f"avg_pool{k}d")(x, kernel_size, st, padding, layout=L)
        layer = getattr(poolnd, f"AvgPool{k}d")(kernel_size, st, padding, layout=L)
        tf = lambda t: getattr(F, f"avg_pool{k}d")(t, kernel_size, st, padding)
        tl = lambda: tf(xt)
    elif mode == "lp":
        ours = lambda: getattr(poolnd, f"lp_pool{k}d")(x, norm_type, kernel_size, st, layout=L)
        layer = getattr(poolnd, f"LPPool{k}d")(norm_type, kernel_size, st, layout=L)
        tf = lambda t: getattr(F, f"lp_pool{k}d")(t, norm_type, kernel_size, st)
        tl = lambda: tf(xt)
    elif mode in ("min", "sum"):
        ours = lambda: poolnd.pool(x, mode, kernel_size, st, padding, spatial_dims=k, layout=L)
        layer = poolnd.Pool(mode, kernel_size, st, padding, spatial_dims=k, layout=L)
        if mode == "min":                      # what a PyTorch user writes
            tf = lambda t: -getattr(F, f"max_pool{k}d")(-t, kernel_size, st, padding)
        else:
            tf = lambda t: getattr(F, f"avg_pool{k}d")(t, kernel_size, st, padding,
                                                       divisor_override=1)
        tl = lambda: tf(xt)
    out = {}
    y = ours()
    if "forward" in passes:
        out["forward"] = Timed(ours, {"torch": lambda: tf(xt)},
                               {"torch": lambda: [(ours(), _tnp(tf(xt), k, cl))]},
                               x.nbytes, y.nbytes)
    res = layer.forward(x)
    if "layer fwd" in passes:
        def lpairs():
            a, b = layer.forward(x), tl()
            if indices:
                return [(a[0], _tnp(b[0], k, cl)), (a[1], _tnp(b[1], k, cl))]
            return [(a, _tnp(b[0] if isinstance(b, tuple) else b, k, cl))]
        out["layer fwd"] = Timed(lambda: layer.forward(x), {"torch": tl}, {"torch": lpairs},
                                 x.nbytes, _nbytes(*res) if indices else res.nbytes)
    if "backward" in passes:
        dy = _input(y.shape, dtype, seed=1)
        dyt = _tview(torch, dy, k, cl)
        if mode == "max" and k > 1:
            idx = tl()[1]
            back = getattr(aten, f"max_pool{k}d_with_indices_backward")
            tb = lambda: back(dyt, xt, ks_, st_, pd_, [1] * k, False, idx)
        elif mode in ("avg", "sum") and k > 1:
            back = getattr(aten, f"avg_pool{k}d_backward")
            div = 1 if mode == "sum" else None
            tb = lambda: back(dyt, xt, ks_, st_, pd_, False, True, div)
        else:
            tb = _autograd(torch, tf, xt, dyt)
        out["backward"] = Timed(lambda: layer.backward(dy), {"torch": tb},
                                {"torch": lambda: [(layer.backward(dy), _tnp(tb(), k, cl))]},
                                dy.nbytes, x.nbytes)
    return out


def adaptive(mode, k, cf, dtype, cl, passes, torch, output_size):
    F, aten = torch.nn.functional, torch.ops.aten
    L = LAYOUTS[(k, cl)]
    x = _input(_shape(cf, k, cl), dtype)
    xt = _tview(torch, x, k, cl)
    pf = getattr(poolnd, f"adaptive_{mode}_pool{k}d")
    tf = lambda t: getattr(F, f"adaptive_{mode}_pool{k}d")(t, output_size)
    layer = getattr(poolnd, f"Adaptive{mode.capitalize()}Pool{k}d")(output_size, layout=L)
    ours = lambda: pf(x, output_size, layout=L)
    if mode == "max":
        tl = lambda: getattr(F, f"adaptive_max_pool{k}d")(xt, output_size, return_indices=True)
    else:
        tl = lambda: tf(xt)
    out = {}
    y = ours()
    if "forward" in passes:
        out["forward"] = Timed(ours, {"torch": lambda: tf(xt)},
                               {"torch": lambda: [(ours(), _tnp(tf(xt), k, cl))]},
                               x.nbytes, y.nbytes)
    layer.forward(x)
    if "layer fwd" in passes:
        first = lambda b: b[0] if isinstance(b, tuple) else b
        out["layer fwd"] = Timed(lambda: layer.forward(x), {"torch": tl},
                                 {"torch": lambda: [(layer.forward(x), _tnp(first(tl()), k,
                                                                            cl))]},
                                 x.nbytes, y.nbytes)
    if "backward" in passes:
        dy = _input(y.shape, dtype, seed=1)
        dyt = _tview(torch, dy, k, cl)
        if k == 1:
            tb = _autograd(torch, tf, xt, dyt)
        elif mode == "avg":
            back = getattr(aten, f"_adaptive_avg_pool{k}d_backward")
            tb = lambda: back(dyt, xt)
        else:
            idx = tl()[1]
            back = getattr(aten, f"adaptive_max_pool{k}d_backward")
            tb = lambda: back(dyt, xt, idx)
        out["backward"] = Timed(lambda: layer.backward(dy), {"torch": tb},
                                {"torch": lambda: [(layer.backward(dy), _tnp(tb(), k, cl))]},
                                dy.nbytes, x.nbytes)
    return out


def global_(mode, k, cf, dtype, cl, passes, torch):
    """poolnd.global_{mode}_pool against nn.Adaptive{Mode}Pool2d(1) (what ResNet's head runs)."""
    F, aten = torch.nn.functional, torch.ops.aten
    L = LAYOUTS[(k, cl)]
    x = _input(_shape(cf, k, cl), dtype)
    xt = _tview(torch, x, k, cl)
    pf = getattr(poolnd, f"global_{mode}_pool")
    tf = lambda t: getattr(F, f"adaptive_{mode}_pool{k}d")(t, 1)
    ours = lambda: pf(x, layout=L)
    y = ours()
    out = {}
    if "forward" in passes:
        out["forward"] = Timed(ours, {"torch": lambda: tf(xt)},
                               {"torch": lambda: [(ours(), _tnp(tf(xt), k, cl))]},
                               x.nbytes, y.nbytes)
    if "backward" in passes:
        _, pullback = poolnd.vjp(pf, x, layout=L)
        dy = _input(y.shape, dtype, seed=1)
        dyt = _tview(torch, dy, k, cl)
        if mode == "avg":
            back = getattr(aten, f"_adaptive_avg_pool{k}d_backward")
            tb = lambda: back(dyt, xt)
        else:
            idx = getattr(F, f"adaptive_max_pool{k}d")(xt, 1, return_indices=True)[1]
            back = getattr(aten, f"adaptive_max_pool{k}d_backward")
            tb = lambda: back(dyt, xt, idx)
        out["backward"] = Timed(lambda: pullback(dy), {"torch": tb},
                                {"torch": lambda: [(pullback(dy), _tnp(tb(), k, cl))]},
                                dy.nbytes, x.nbytes)
    return out


def unpool(k, cf, dtype, cl, passes, torch, kernel_size=2):
    """max_unpool of a max_pool's (values, indices): the same pair for both."""
    F = torch.nn.functional
    L = LAYOUTS[(k, cl)]
    x = _input(_shape(cf, k, cl), dtype)
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, kernel_size, return_indices=True, layout=L)
    yt, it = _tview(torch, y, k, cl), _tview(torch, idx, k, cl)
    pf = getattr(poolnd, f"max_unpool{k}d")
    tf = lambda t: getattr(F, f"max_unpool{k}d")(t, it, kernel_size)
    ours = lambda: pf(y, idx, kernel_size, layout=L)
    z = ours()
    layer = getattr(poolnd, f"MaxUnpool{k}d")(kernel_size, layout=L)
    layer.forward(y, idx)
    out = {}
    pair = {"torch": lambda: [(ours(), _tnp(tf(yt), k, cl))]}
    if "forward" in passes:
        out["forward"] = Timed(ours, {"torch": lambda: tf(yt)}, pair, _nbytes(y, idx), z.nbytes)
    if "layer fwd" in passes:
        out["layer fwd"] = Timed(lambda: layer.forward(y, idx), {"torch": lambda: tf(yt)}, pair,
                                 _nbytes(y, idx), z.nbytes)
    if "backward" in passes:
        dz = _input(z.shape, dtype, seed=1)
        dzt = _tview(torch, dz, k, cl)
        tb = _autograd(torch, tf, yt, dzt)
        out["backward"] = Timed(lambda: layer.backward(dz), {"torch": tb},
                                {"torch": lambda: [(layer.backward(dz), _tnp(tb(), k, cl))]},
                                dz.nbytes, y.nbytes)
    return out


def fractional(k, cf, dtype, cl, passes, torch, kernel_size, output_size):
    """fractional_max_pool with the same ``_random_samples`` for both (the same windows)."""
    F, aten = torch.nn.functional, torch.ops.aten
    L = LAYOUTS[(k, cl)]
    x = _input(_shape(cf, k, cl), dtype)
    xt = _tview(torch, x, k, cl)
    samples = np.random.default_rng(2).random((cf[0], cf[1], k)).astype(dtype)
    st = torch.from_numpy(samples)
    pf = getattr(poolnd, f"fractional_max_pool{k}d")
    tfn = getattr(F, f"fractional_max_pool{k}d")
    ours = lambda: pf(x, kernel_size, output_size, _random_samples=samples, layout=L)
    tf = lambda: tfn(xt, kernel_size, output_size, _random_samples=st)
    tl = lambda: tfn(xt, kernel_size, output_size, return_indices=True, _random_samples=st)
    layer = getattr(poolnd, f"FractionalMaxPool{k}d")(kernel_size, output_size,
                                                     _random_samples=samples, layout=L)
    y = ours()
    layer.forward(x)
    out = {}
    if "forward" in passes:
        out["forward"] = Timed(ours, {"torch": tf}, {"torch": lambda: [(ours(),
                                                                         _tnp(tf(), k, cl))]},
                               x.nbytes, y.nbytes)
    if "layer fwd" in passes:
        out["layer fwd"] = Timed(lambda: layer.forward(x), {"torch": tl},
                                 {"torch": lambda: [(layer.forward(x), _tnp(tl()[0], k, cl))]},
                                 x.nbytes, y.nbytes)
    if "backward" in passes:
        dy = _input(y.shape, dtype, seed=1)
        dyt = _tview(torch, dy, k, cl)
        idx = tl()[1]
        back = getattr(aten, f"fractional_max_pool{k}d_backward")
        tb = lambda: back(dyt, xt, [kernel_size] * k, list(output_size), idx)
        out["backward"] = Timed(lambda: layer.backward(dy), {"torch": tb},
                                {"torch": lambda: [(layer.backward(dy), _tnp(tb(), k, cl))]},
                                dy.nbytes, x.nbytes)
    return out


def image(mode, factor, shape, dtype, passes, torch):
    """uint8/uint16 means and maxes of an image stack (N, H, W) or a volume (D, H, W) against
    tinybrain, which gets the transposed view (its native Fortran order) of the same memory.
    Both truncate a mean toward zero (poolnd's default rounding). For a 4x4 mean, tinybrain's
    own fastest route is its accelerated 2x2 run for two mips (the second mip is the exact
    truncated 4x4 mean; it also writes the first): both its routes are peers, the faster
    counts."""
    import tinybrain
    d = len(factor)
    a = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    layout = "NHW" if d == 2 else "DHW"
    ours = lambda: poolnd.pool(a, mode, factor[0], spatial_dims=d, layout=layout)
    tb = tinybrain.downsample_with_averaging if mode == "avg" else \
        tinybrain.downsample_with_max_pooling
    peers = {"tinybrain": lambda: tb(a.T, factor)[0]}
    if mode == "avg" and factor == (4, 4):
        peers["tinybrain 2 mips"] = lambda: tinybrain.downsample_with_averaging(a.T, (2, 2),
                                                                                 num_mips=2)[1]
    pairs = {n: (lambda f=f: [(ours(), f().T)]) for n, f in peers.items()}
    y = ours()
    return {"forward": Timed(ours, peers, pairs, a.nbytes, y.nbytes, exact=True)}


# ----------------------------------------------------------------------------------------------
# the rows
# ----------------------------------------------------------------------------------------------

def _q(shape, quick, div=8):
    """Quick mode: the batch (first) axis divided by ``div``, at least 1."""
    return (max(1, shape[0] // div),) + tuple(shape[1:]) if quick else tuple(shape)


def _fmt_shape(cf, k, cl):
    return "x".join(map(str, _shape(cf, k, cl)))


def cases(quick):
    """Every workload of the family table, the goal's classes and the latency rows."""
    out = []
    F3 = ("forward", "layer fwd", "backward")
    FB = ("forward", "backward")
    FWD = ("forward",)

    def add(name, builder, k, cf, dt="f32", cl=False, passes=F3, goal="family", **kw):
        cf = _q(cf, quick) if goal != "latency" else tuple(cf)
        what = f"{_fmt_shape(cf, k, cl)} {LAYOUTS[(k, cl)]} {dt}"
        dtype = DTYPES[dt]
        out.append(Case(name, what, passes,
                        lambda torch, p: builder(k=k, cf=cf, dtype=dtype, cl=cl, passes=p,
                                                 torch=torch, **kw), goal))

    def fx(mode, **kw):
        return lambda **a: fixed(mode, **a, **kw)

    stem = (16, 64, 112, 112)
    # 2-d max: the ResNet stem, both layouts, every float dtype
    for cl in (False, True):
        add("max 3x3 s2 p1 (ResNet stem)", fx("max", kernel_size=3, stride=2, padding=1), 2,
            stem, cl=cl)
    for dt in ("f16", "f64"):
        add("max 3x3 s2 p1 (ResNet stem)", fx("max", kernel_size=3, stride=2, padding=1), 2,
            stem, dt=dt, passes=FWD)
    # Inception's 3x3 stride-1 average branch (35x35x192), backward included
    inc = (32, 192, 35, 35)
    for cl in (False, True):
        add("avg 3x3 s1 p1 (Inception branch)", fx("avg", kernel_size=3, stride=1, padding=1),
            2, inc, cl=cl)
    for dt in ("f16", "f64"):
        add("avg 3x3 s1 p1 (Inception branch)", fx("avg", kernel_size=3, stride=1, padding=1),
            2, inc, dt=dt, passes=FWD)
    # 8x8 non-overlapping max tiles; the layer returns indices (as for an unpool later)
    add("max 8x8 tiles, layer with indices", fx("max", kernel_size=8, indices=True), 2, stem)
    add("max 8x8 tiles, layer with indices", fx("max", kernel_size=8, indices=True), 2, stem,
        cl=True, passes=("layer fwd",))
    # adaptive pools: one that tiles (56 -> 7), one that does not (112 -> 13x17)
    a56 = (16, 256, 56, 56)
    add("adaptive avg 56->7", lambda **a: adaptive("avg", output_size=7, **a), 2, a56)
    add("adaptive avg 56->7", lambda **a: adaptive("avg", output_size=7, **a), 2, a56, cl=True,
        passes=FWD)
    add("adaptive avg 56->7", lambda **a: adaptive("avg", output_size=7, **a), 2, a56, dt="f16",
        passes=FWD)
    add("adaptive max 112->13x17", lambda **a: adaptive("max", output_size=(13, 17), **a), 2,
        stem)
    add("adaptive max 112->13x17", lambda **a: adaptive("max", output_size=(13, 17), **a), 2,
        stem, cl=True, passes=("layer fwd",))
    # lp, min, sum
    add("lp p=2 3x3 s2", fx("lp", kernel_size=3, stride=2, norm_type=2), 2, stem)
    add("lp p=2 3x3 s2", fx("lp", kernel_size=3, stride=2, norm_type=2), 2, stem, cl=True,
        passes=FWD)
    add("min 3x3 s2 p1 (torch: -max(-x))", fx("min", kernel_size=3, stride=2, padding=1), 2,
        stem)
    add("sum 2x2 (torch: avg, divisor 1)", fx("sum", kernel_size=2), 2, stem, passes=FB)
    # unpool and fractional max
    add("max_unpool 2x2", lambda **a: unpool(kernel_size=2, **a), 2, stem)
    add("max_unpool 2x2", lambda **a: unpool(kernel_size=2, **a), 2, stem, cl=True, passes=FWD)
    add("fractional max 3x3 -> 56x56", lambda **a: fractional(kernel_size=3,
                                                              output_size=(56, 56), **a),
        2, stem)
    # global pools: the ResNet-50 head (2048 channels of 7x7)
    head = (32, 2048, 7, 7)
    add("global avg (ResNet-50 head)", lambda **a: global_("avg", **a), 2, head, passes=FB)
    add("global avg (ResNet-50 head)", lambda **a: global_("avg", **a), 2, head, cl=True,
        passes=FB)
    add("global avg (ResNet-50 head)", lambda **a: global_("avg", **a), 2, head, dt="f16",
        passes=FWD)
    add("global max (ResNet-50 head)", lambda **a: global_("max", **a), 2, head, passes=FB)
    # SPPF (YOLOv5: 20x20x512): layer and backward here, forward in the stride-1 sweep
    spp = (8, 512, 20, 20)
    add("max 5x5 s1 p2 (SPPF)", fx("max", kernel_size=5, stride=1, padding=2), 2, spp,
        passes=("layer fwd", "backward"), goal="stride1")
    # stride-1 sweep (SPP 5/9/13, Inception 3): max and average, forward
    for mode in ("max", "avg"):
        for kk in (3, 5, 7, 9, 13):
            add(f"{mode} {kk}x{kk} s1 p{kk // 2} (stride 1)",
                fx(mode, kernel_size=kk, stride=1, padding=kk // 2), 2, spp, passes=FWD,
                goal="stride1" if kk >= 5 else "family")
    add("max 5x5 s1 p2 (stride 1)", fx("max", kernel_size=5, stride=1, padding=2), 2, spp,
        cl=True, passes=FWD, goal="stride1")
    # 1-d: sequences of 1024 steps, 256 channels
    seq = (64, 256, 1024)
    add("max1d 3 s2 p1", fx("max", kernel_size=3, stride=2, padding=1), 1, seq)
    add("max1d 3 s2 p1", fx("max", kernel_size=3, stride=2, padding=1), 1, seq, cl=True,
        passes=FWD)
    add("avg1d 4", fx("avg", kernel_size=4), 1, seq, passes=FB)
    add("lp1d p=2 4", fx("lp", kernel_size=4, norm_type=2), 1, seq, passes=FWD)
    add("adaptive avg1d 1024->128", lambda **a: adaptive("avg", output_size=128, **a), 1, seq,
        passes=FWD)
    add("adaptive max1d 1024->100", lambda **a: adaptive("max", output_size=100, **a), 1, seq,
        passes=FWD)
    # 3-d: a video stem, volumes
    vid = (4, 64, 16, 56, 56)
    vol = (4, 32, 32, 64, 64)
    add("max3d 3x3x3 s2 p1 (video stem)", fx("max", kernel_size=3, stride=2, padding=1), 3, vid)
    add("max3d 3x3x3 s2 p1 (video stem)", fx("max", kernel_size=3, stride=2, padding=1), 3, vid,
        cl=True, passes=FWD)
    add("avg3d 2x2x2", fx("avg", kernel_size=2), 3, vol, passes=FB)
    add("avg3d 2x2x2 (no torch float16)", fx("avg", kernel_size=2), 3, vol, dt="f16",
        passes=FWD)
    add("adaptive avg3d ->4x7x7", lambda **a: adaptive("avg", output_size=(4, 7, 7), **a), 3,
        vid, passes=FB)
    add("adaptive max3d ->3x5x5", lambda **a: adaptive("max", output_size=(3, 5, 5), **a), 3,
        vid, passes=FWD)
    add("max_unpool3d 2x2x2", lambda **a: unpool(kernel_size=2, **a), 3, vol, passes=FWD)
    add("fractional max3d 2x2x2 -> 16x32x32",
        lambda **a: fractional(kernel_size=2, output_size=(16, 32, 32), **a), 3,
        (4, 16, 32, 64, 64), passes=FB)
    # image dtypes against tinybrain: stacks of 1024^2 images and volumes, 64 MB each
    for dt, n in ((np.uint8, 64), (np.uint16, 32)):
        name = np.dtype(dt).name
        for factor, shape in (((2, 2), (n, 1024, 1024)), ((4, 4), (n, 1024, 1024)),
                              ((2, 2, 2), (4 * n, 512, 512))):
            shape = _q(shape, quick)
            axes = "NHW" if len(factor) == 2 else "DHW"
            for mode in ("avg", "max"):
                out.append(Case(f"{'mean' if mode == 'avg' else 'max'} "
                                f"{'x'.join(map(str, factor))} (pyramid level)",
                                f"{'x'.join(map(str, shape))} {axes} {name}", FWD,
                                lambda torch, p, m=mode, f=factor, s=shape, d=dt:
                                image(m, f, s, d, p, torch), "tinybrain"))
    # latency: a single image, small inputs
    add("max 3x3 s2 p1, batch 1", fx("max", kernel_size=3, stride=2, padding=1), 2,
        (1, 64, 112, 112), goal="latency")
    add("max 2x2, batch 1", fx("max", kernel_size=2), 2, (1, 64, 112, 112), cl=True,
        passes=FWD, goal="latency")
    add("avg 2x2, small", fx("avg", kernel_size=2), 2, (1, 64, 56, 56), passes=FB,
        goal="latency")
    add("max 2x2, small batch", fx("max", kernel_size=2), 2, (8, 32, 28, 28), goal="latency")
    add("global avg, batch 1", lambda **a: global_("avg", **a), 2, (1, 2048, 7, 7), passes=FB,
        goal="latency")
    add("adaptive avg 14->7, batch 1", lambda **a: adaptive("avg", output_size=7, **a), 2,
        (1, 512, 14, 14), passes=FWD, goal="latency")
    add("max 5x5 s1 p2 (SPPF), batch 1", fx("max", kernel_size=5, stride=1, padding=2), 2,
        (1, 512, 20, 20), passes=FWD, goal="stride1")
    add("max1d 2, small", fx("max", kernel_size=2), 1, (1, 64, 256), passes=FWD,
        goal="latency")
    add("max3d 2x2x2, batch 1", fx("max", kernel_size=2), 3, (1, 32, 16, 28, 28), passes=FWD,
        goal="latency")
    return out


# ----------------------------------------------------------------------------------------------
# contention: a busy neighbour process and other runtimes' pools in this process
# ----------------------------------------------------------------------------------------------

_SPIN = ("import os\np = os.getppid()\n"
         "while os.getppid() == p:\n    for _ in range(200000):\n        pass\n")


class Neighbour:
    """A subprocess keeping one core busy in pure Python; ``with`` starts and always stops it
    (it also exits by itself once this process is gone)."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _SPIN])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


class Runtimes:
    """Work for other runtimes' thread pools: a float64 matmul (NumPy's OpenBLAS threads) and a
    jitted JAX matmul (XLA's pool), a few ms together; called before every timed call."""

    def __init__(self):
        import jax
        import jax.numpy as jnp
        rng = np.random.default_rng(3)
        self.a = rng.standard_normal((384, 384))
        self.f = jax.jit(lambda m: jnp.tanh(m @ m))
        self.m = jnp.asarray(self.a, dtype=jnp.float32)
        self()
        self.versions = f"jax {jax.__version__}"

    def __call__(self):
        self.a @ self.a
        self.f(self.m).block_until_ready()


def interleaved_between(contenders, repeats, between, warmup=1):
    """``_timing.interleaved`` with ``between()`` run just before each timed call in place of
    its settle pause (same rotation, same warm-up): the other pools are still spinning when
    the timed call starts, as in a process that mixes runtimes."""
    names = list(contenders)
    for _ in range(warmup):
        for n in names:
            between()
            contenders[n]()
    times = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            between()
            t0 = time.perf_counter()
            contenders[n]()
            times[n].append(time.perf_counter() - t0)
    return times


# ----------------------------------------------------------------------------------------------
# running, judging, printing
# ----------------------------------------------------------------------------------------------

def check(name, timed):
    """poolnd and every peer agree, or stop with the difference. A peer that refuses the
    dtype (PyTorch's CPU build has no float16 avg_pool3d) is dropped: the row then has the
    floor only."""
    for peer, pairs in list(timed.pairs.items()):
        try:
            got = pairs()
        except RuntimeError as e:
            if "not implemented" not in str(e):
                raise
            print(f"# {name}: {peer} refuses ({str(e).splitlines()[0]}); no peer", flush=True)
            del timed.peers[peer]
            continue
        for a, b in got:
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                raise SystemExit(f"{name}: poolnd's shape {a.shape} != {peer}'s {b.shape}")
            if timed.exact or a.dtype.kind in "iu":
                ok = np.array_equal(a, b)
            else:
                ok = np.allclose(a, b, equal_nan=True, **TOL[a.dtype.type])
            if not ok:
                d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                raise SystemExit(f"{name}: poolnd and {peer} disagree (max |diff| {d.max():g} "
                                 f"at {np.unravel_index(np.argmax(d), d.shape)})")


def judge(goal, contention, t, peer_t, floor, roof):
    """(the goal's words, met?) for poolnd's p25 ``t``."""
    if contention:
        return ("< 1.0x peer", t < peer_t) if peer_t is not None else ("—", None)
    if goal == "tinybrain":
        return "≤1.0x tinybrain, ≥60% roofline", t <= peer_t and roof >= 0.6
    if goal == "stride1":
        return "≤0.3x torch", t <= 0.3 * peer_t
    if peer_t is None or 1.25 * floor > 0.7 * peer_t:
        return "≤1.25x floor", t <= 1.25 * floor
    return "≤0.7x torch", t <= 0.7 * peer_t


def run_row(case, pass_name, timed, repeats, between, contention, gap):
    label = f"{case.name} | {case.what} | {pass_name}"
    check(label, timed)
    size = max(timed.in_bytes, timed.out_bytes)
    src = np.ones(size, np.uint8)
    dst = np.empty_like(src)
    group = {"poolnd": timed.ours, **timed.peers, "copy": lambda: np.copyto(dst, src)}
    t0 = time.perf_counter()                 # one warm-up round, which also sizes the run
    for fn in group.values():
        if between is not None:
            between()
        fn()
    fit = int(ROW_BUDGET_S / (time.perf_counter() - t0))
    rounds = max(min(MIN_ROUNDS, repeats), min(repeats, fit))
    if between is None:
        times = interleaved(group, repeats=rounds, warmup=0, gap=gap)
    else:
        times = interleaved_between(group, rounds, between, warmup=0)
    q = {n: p25(t) for n, t in times.items()}
    m = {n: statistics.median(t) for n, t in times.items()}
    peer = min(timed.peers, key=q.get) if timed.peers else None
    floor = q["copy"] * (timed.in_bytes + timed.out_bytes) / (2 * size)
    roof = floor / q["poolnd"]
    goal, met = judge(case.goal, contention, q["poolnd"], q[peer] if peer else None, floor,
                      roof)
    row = dict(name=case.name, what=case.what, pass_name=pass_name, peer=peer,
               ours_p25=q["poolnd"], ours_med=m["poolnd"],
               peer_p25=q[peer] if peer else None, peer_med=m[peer] if peer else None,
               ratio_p25=q["poolnd"] / q[peer] if peer else None,
               ratio_med=m["poolnd"] / m[peer] if peer else None,
               floor=floor, roofline=roof, goal=goal, met=met, rounds=rounds,
               copy_gbs=size / q["copy"] / 1e9)
    print(line(row), flush=True)
    return row


def _ms(s):
    if s is None:
        return "—"
    v = s * 1e3
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _x(r):
    return "—" if r is None else f"{r:.2f}"


def line(r):
    return (f"{r['name']} | {r['what']} | {r['pass_name']}: poolnd {_ms(r['ours_p25'])} "
            f"({_ms(r['ours_med'])}) ms, {r['peer']} {_ms(r['peer_p25'])} ({_ms(r['peer_med'])})"
            f" ms ({r['rounds']} rounds), x{_x(r['ratio_p25'])} p25 (x{_x(r['ratio_med'])} "
            f"median), floor {_ms(r['floor'])} ms, roofline {r['roofline']:.0%}; goal {r['goal']}: "
            f"{'met' if r['met'] else 'MISSED' if r['met'] is not None else '—'}")


COLUMNS = ("workload", "shape, layout, dtype", "pass", "poolnd p25 (median) ms", "peer",
           "peer p25 (median) ms", "ratio p25 (median)", "floor ms", "roofline", "goal", "met",
           "rounds")


def cells(r):
    return (r["name"], r["what"], r["pass_name"], f"{_ms(r['ours_p25'])} ({_ms(r['ours_med'])})",
            r["peer"] or "—", f"{_ms(r['peer_p25'])} ({_ms(r['peer_med'])})",
            f"{_x(r['ratio_p25'])} ({_x(r['ratio_med'])})", _ms(r["floor"]),
            f"{r['roofline']:.0%}", r["goal"],
            "yes" if r["met"] else "**no**" if r["met"] is not None else "—", str(r["rounds"]))


def table(rows, markdown):
    body = [COLUMNS] + [cells(r) for r in rows]
    if markdown:
        out = ["| " + " | ".join(COLUMNS) + " |",
               "|" + "|".join("---:" if c.endswith(("ms", ")", "roofline")) else "---"
                              for c in COLUMNS) + "|"]
        return "\n".join(out + ["| " + " | ".join(c) + " |" for c in body[1:]])
    widths = [max(len(row[i]) for row in body) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body)


def header(args, repeats, torch, extra):
    import numba
    from importlib.metadata import version
    pin = os.environ.get("POOLND_PIN_THREADS", "1 (default)")
    mode = "quiet" if not args.contention else f"contention ({args.contention}: " + \
        {"both": "busy neighbour process + OpenBLAS/JAX pools in process",
         "process": "busy neighbour process",
         "runtime": "OpenBLAS/JAX pools in process"}[args.contention] + ")"
    pause = "no pause" if args.contention in ("both", "runtime") else \
        f"{args.gap * 1e3:g} ms pause"
    return (f"{platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, numba "
            f"{numba.__version__} ({numba.get_num_threads()} threads), torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), tinybrain "
            f"{version('tinybrain')}{extra}; POOLND_PIN_THREADS={pin}; {mode}; up to {repeats} "
            f"interleaved rounds per row, {pause} before each call"
            f"{' (quick shapes)' if args.quick else ''}; {load_average()}")


def run(args):
    import torch
    torch.set_num_threads(2)
    repeats = args.repeats or (3 if args.quick else 11)
    pattern = re.compile(args.rows, re.I) if args.rows else None
    todo = []
    for case in cases(args.quick):
        passes = tuple(p for p in case.passes
                       if pattern is None or pattern.search(f"{case.name} | {case.what} | {p}"))
        if passes:
            todo.append((case, passes))
    if not todo:
        raise SystemExit(f"no row matches {args.rows!r}")
    contention = bool(args.contention)
    between, extra, neighbour = None, "", None
    if args.contention in ("both", "runtime"):
        between = Runtimes()
        extra = ", " + between.versions
    rows = []
    t_start = time.perf_counter()
    try:
        if args.contention in ("both", "process"):
            neighbour = Neighbour().__enter__()
            time.sleep(1.0)
        head = header(args, repeats, torch, extra)
        print("#", head, flush=True)
        for case, passes in todo:
            built = case.build(torch, passes)
            for pass_name in passes:
                rows.append(run_row(case, pass_name, built[pass_name], repeats, between,
                                    contention, args.gap))
            del built
    finally:
        if neighbour is not None:
            neighbour.__exit__(None, None, None)
    end = f"{len(rows)} rows in {time.perf_counter() - t_start:.0f} s; at the end: " \
          f"{load_average()}"
    print("#", end)
    return rows, head, end


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller shapes, 3 rounds")
    ap.add_argument("--repeats", type=int, default=None,
                    help="rounds at most (default 11, quick 3)")
    ap.add_argument("--rows", default=None, help="regex on 'workload | shape | pass'")
    ap.add_argument("--markdown", action="store_true", help="the final table in Markdown")
    ap.add_argument("--contention", nargs="?", const="both", default=None,
                    choices=("both", "process", "runtime"))
    ap.add_argument("--pin", choices=("on", "off", "both"), default=None,
                    help="run with POOLND_PIN_THREADS=1/0, one subprocess per setting")
    ap.add_argument("--gap", type=float, default=0.05,
                    help="settle pause before each timed call, s (default 0.05, as _timing's)")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))   # so that cleanup runs
    if args.pin:
        return pinned(args, sys.argv[1:] if argv is None else list(argv))
    rows, head, end = run(args)
    print("\nMeasured with `python benchmarks/bench_family.py"
          f"{' --contention' if args.contention else ''}` on {head} at the start; {end}.\n")
    print(table(rows, args.markdown))
    missed = [r for r in rows if r["met"] is False]
    print(f"\n{len(missed)} of {len(rows)} rows miss their goal"
          + (":" if missed else "."))
    for r in missed:
        print(f"  {r['name']} | {r['what']} | {r['pass_name']}: x{_x(r['ratio_p25'])} "
              f"{r['peer']}, roofline {r['roofline']:.0%} (goal {r['goal']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(header=head, end=end, rows=rows), f)
    return 0


def pinned(args, argv):
    """One subprocess per pinning setting, then their ratios side by side."""
    settings = {"on": ["1"], "off": ["0"], "both": ["1", "0"]}[args.pin]
    rest, skip = [], False
    for a in argv:                               # drop --pin and its value
        if skip:
            skip = False
            continue
        if a == "--pin":
            skip = True
            continue
        if a.startswith("--pin="):
            continue
        rest.append(a)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in settings:
            path = os.path.join(tmp, f"pin{s}.json")
            env = dict(os.environ, POOLND_PIN_THREADS=s)
            print(f"\n## POOLND_PIN_THREADS={s}", flush=True)
            rc = subprocess.call([sys.executable, os.path.abspath(__file__), *rest, "--json",
                                  path], env=env)
            if rc:
                return rc
            with open(path) as f:
                results[s] = json.load(f)
    if len(settings) == 2:
        print("\n## pinned (1) against unpinned (0): poolnd / peer, p25 (median); poolnd p25 ms")
        print("| workload | shape, layout, dtype | pass | pinned | unpinned | pinned ms | "
              "unpinned ms |\n|---|---|---|---:|---:|---:|---:|")
        for a, b in zip(results["1"]["rows"], results["0"]["rows"]):
            print(f"| {a['name']} | {a['what']} | {a['pass_name']} | {_x(a['ratio_p25'])} "
                  f"({_x(a['ratio_med'])}) | {_x(b['ratio_p25'])} ({_x(b['ratio_med'])}) | "
                  f"{_ms(a['ours_p25'])} | {_ms(b['ours_p25'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
