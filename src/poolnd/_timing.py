"""Interleaved timing for ``poolnd bench`` and the scripts in ``benchmarks/``: every contender
runs once per round, in rotating order, so that machine noise hits all of them alike. Report
medians and 25th percentiles, and ratios against a peer measured in the same run, never a lone
absolute time."""
from __future__ import annotations

import os
import statistics
import time


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
