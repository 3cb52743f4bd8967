"""Interleaved timing for ``poolnd bench`` and the scripts in ``benchmarks/``: every contender
runs once per round, in rotating order, so that machine noise hits all of them alike. Report
medians and 25th percentiles, and ratios against a peer measured in the same run, never a lone
absolute time."""
from __future__ import annotations

import os
import statistics
import time

import numpy as np


def interleaved(contenders: dict, repeats: int = 9, warmup: int = 1, gap: float = 0.05) -> dict:
    """``{name: fn}`` -> ``{name: [seconds, ...]}``; each ``fn()`` is one timed call.

    ``gap`` seconds of sleep separate the calls: thread pools of other runtimes in the process
    (PyTorch's OpenMP, XLA's Eigen pool, Numba's) spin for a while after their work, and on a
    2-core machine that spinning would be charged to whichever contender runs next."""
    names = list(contenders)
    for _ in range(warmup):
        for n in names:
            contenders[n]()
    times = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            time.sleep(gap)
            t0 = time.perf_counter()
            contenders[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def p25(xs):
    return statistics.quantiles(xs, n=4)[0] if len(xs) > 1 else xs[0]


def summarize(times: dict, peer: str) -> list[dict]:
    """Rows with median, p25 and their ratios to ``peer``."""
    pm, pq = statistics.median(times[peer]), p25(times[peer])
    rows = []
    for n, xs in times.items():
        m, q = statistics.median(xs), p25(xs)
        rows.append(dict(name=n, median_ms=m * 1e3, p25_ms=q * 1e3, ratio_median=m / pm,
                         ratio_p25=q / pq))
    return rows


def load_average() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def layer_contenders(op, shape, kw, engines, torch=None, label=str):
    """Timed calls for one 2-d NCHW float32 pool (``op`` "max" or "avg", ``kw`` kernel_size,
    stride and optional padding): ``(forward, backward)`` dicts of zero-argument callables, one
    per poolnd engine (named ``label(engine)``) and PyTorch's when ``torch`` is given. Forward is
    the layer's (it keeps what backward needs), so PyTorch's max forward returns indices too;
    backward is PyTorch's ``*_backward`` op on the same gradient."""
    import poolnd
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    cls = poolnd.MaxPool2d if op == "max" else poolnd.AvgPool2d
    fwd, bwd = {}, {}
    dy = None
    for e in engines:
        layer = cls(engine=e, **kw)
        y = layer.forward(x)
        dy = np.ones_like(y)
        fwd[label(e)] = lambda layer=layer: layer.forward(x)
        bwd[label(e)] = lambda layer=layer: layer.backward(dy)
    if torch is not None:
        F = torch.nn.functional
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
        ks, st, pd = kw["kernel_size"], kw["stride"], kw.get("padding", 0)
        if op == "max":
            _, idx = F.max_pool2d(xt, ks, st, pd, return_indices=True)
            fwd["torch"] = lambda: F.max_pool2d(xt, ks, st, pd, return_indices=True)
            bwd["torch"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                dyt, xt, [ks] * 2, [st] * 2, [pd] * 2, [1, 1], False, idx)
        else:
            fwd["torch"] = lambda: F.avg_pool2d(xt, ks, st, pd)
            bwd["torch"] = lambda: torch.ops.aten.avg_pool2d_backward(
                dyt, xt, [ks] * 2, [st] * 2, [pd] * 2, False, True, None)
    return fwd, bwd
