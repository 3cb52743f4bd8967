"""The Python side's view of a geometry: the plain-int tables the kernels read and the tests
that say which kernel family applies (cached on the geometry)."""
from __future__ import annotations

import numpy as np

from ..._geometry import Geometry
from .._common import acc_dtype
from ._k_half import widen


def _tables(g: Geometry) -> dict:
    """Plain-int tables the kernels read, cached on the geometry."""
    if "numba" in g._cache:
        return g._cache["numba"]
    t = {}
    if g.ndim <= 3:
        pad = 3 - g.ndim
        ones, zeros = (1,) * pad, (0,) * pad
        t["in3"] = ones + g.in_size
        t["out3"] = ones + g.out_size
        t["geo"] = np.array(ones + g.kernel + ones + g.stride + ones + g.dilation + zeros
                            + g.pad_before, dtype=np.int64)
        ranges = g.tap_ranges(g.ndim - 1)
        t["wtab"] = np.array([(r.o_lo, r.o_hi, r.i_lo) for r in ranges],
                             dtype=np.int64).reshape(-1, 3)
        wfirst = np.full(g.out_size[-1], -1, dtype=np.int64)
        for j in reversed(range(len(ranges))):
            wfirst[ranges[j].o_lo:ranges[j].o_hi] = j
        t["wfirst"] = wfirst
    else:
        width = max(max(g.out_size), 1)
        kmax = max(g.kernel)
        pos = np.full((g.ndim, width, kmax), -1, dtype=np.int64)
        for d in range(g.ndim):
            o = np.arange(g.out_size[d])[:, None]
            z = o * g.stride[d] - g.pad_before[d] + np.arange(g.kernel[d])[None] * g.dilation[d]
            pos[d, :g.out_size[d], :g.kernel[d]] = np.where((z >= 0) & (z < g.in_size[d]), z, -1)
        t["pos"] = pos
        t["kern"] = np.array(g.kernel, dtype=np.int64)
        t["outsh"] = np.array(g.out_size, dtype=np.int64)
        instr = np.ones(g.ndim, dtype=np.int64)
        for d in range(g.ndim - 2, -1, -1):
            instr[d] = instr[d + 1] * g.in_size[d + 1]
        t["instr"] = instr
    g._cache["numba"] = t
    return t


def _k2_fast(g: Geometry):
    """kd (1 or 2) when the 3-d view is a 2x2(x2) pool with stride = kernel, no dilation or
    padding and every window inside the input (the literal fast kernel applies), else 0."""
    if "k2" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        inside = all(o * k <= n for o, k, n in zip(tb["out3"], (kd, kh, kw), tb["in3"]))
        ok = (kh == kw == sh == sw == 2 and kd == sd and kd in (1, 2) and dd == dh == dw == 1
              and pd == ph == pw == 0 and inside)
        g._cache["k2"] = kd if ok else 0
    return g._cache["k2"]


def _tiles(g: Geometry) -> bool:
    """Whether the 3-d view is a non-overlapping kh x kw pool (stride = kernel, no padding or
    dilation, every window inside, depth untouched) larger than the 2x2 literal kernel's."""
    if "tiles" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        _, OH, OW = tb["out3"]
        _, H, W = tb["in3"]
        g._cache["tiles"] = (kd == sd == 1 and pd == 0 and tb["out3"][0] == tb["in3"][0]
                             and kh == sh and kw == sw and dh == dw == 1 and ph == pw == 0
                             and OH * kh <= H and OW * kw <= W and kh * kw > 4
                             and not any(g.pad_after))
    return g._cache["tiles"]


def _boxes(g: Geometry) -> bool:
    """Whether the 3-d view is non-overlapping kd x kh x kw boxes of more than one tap
    (stride = kernel, no padding or dilation, every window inside): :mod:`._k_ints`."""
    if "boxes" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        inside = all(o * k <= n for o, k, n in zip(tb["out3"], (kd, kh, kw), tb["in3"]))
        g._cache["boxes"] = (kd == sd and kh == sh and kw == sw and dd == dh == dw == 1
                             and pd == ph == pw == 0 and inside and kd * kh * kw > 1
                             and not any(g.pad_after))
    return g._cache["boxes"]


def _global(g: Geometry) -> bool:
    """Whether every window is its whole plane: one output per dim, kernel = input size, no
    padding or dilation (global pools, adaptive pools to size 1)."""
    return (all(o == 1 for o in g.out_size) and tuple(g.kernel) == tuple(g.in_size)
            and not any(g.pad_before) and not any(g.pad_after)
            and all(d == 1 for d in g.dilation))


def _k3_fast(g: Geometry) -> bool:
    """Whether the 3x3 kernels apply: kernel 3x3 over H, W, no dilation, W stride 1 or 2, and
    depth untouched (kernel 1, stride 1, no padding: output depth = input depth, which the
    kernel indexes directly)."""
    if "k3" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        g._cache["k3"] = (kd == 1 and sd == 1 and pd == 0 and tb["out3"][0] == tb["in3"][0]
                          and kh == kw == 3 and dh == dw == 1 and sw in (1, 2))
    return g._cache["k3"]


def _counts3(g: Geometry, include_pad: bool, dtype):
    """Per-dim divisor counts of the 3-d view, in ``dtype`` (the division's dtype)."""
    c = g.counts(include_pad)
    ones = (np.ones(1, dtype=np.int64),) * (3 - g.ndim)
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in ones + c)


def _acc(x):
    """``x`` C-contiguous in its accumulation dtype. Numba has no float16 arithmetic: float16
    runs as float32 (exact) and its results go back, both casts :mod:`._k_half`'s (bit for
    bit NumPy's, 5x faster)."""
    if x.dtype == np.float16:
        return widen(np.ascontiguousarray(x))
    return np.ascontiguousarray(x, dtype=acc_dtype(x.dtype))


def _dummy(ndim, dtype=np.int8):
    return np.empty((1,) * ndim, dtype=dtype)
