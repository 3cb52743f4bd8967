"""Kernels: stride-1 window sums over a whole zero-padded plane, as one flat vector.

A stride-1 average of small planes (8x512x20x20, 5x5 windows: YOLO's SPP, Inception) spent its
time in per-tap calls over rows of 20 outputs: the generic rows run one out-of-line loop per tap
and output row, 25 of them per row for a 5x5 window. Here each plane (or volume) is first
copied into a zero-padded scratch ``(Dp, Hp, Wp)`` (the padding the windows see, in the
accumulation dtype), and the outputs are laid out with the padded row pitch: output
``(od, oh, ow)`` sits at ``(od*Hp + oh)*Wp + ow`` and its tap ``(i, j, l)`` at that index plus
``(i*dd*Hp + j*dh)*Wp + l*dw``. Each tap is then one long loop over the whole plane (``n`` of
about ``OD*Hp*Wp`` outputs, the positions between rows computed and dropped). Taps are added
in row-major order from 0, as in every other kernel, so the sums are the same bit for bit: the
padded zeros add nothing, because a sum that starts at +0 is never -0 and ``s + 0 == s``
otherwise (NaN and inf included). The cost per output still grows with the window (this is not a
running sum: that would change the rounding, API.md section 8), but each tap costs about one
vector add per 8 outputs.
"""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_rows import _int_div


#: the largest padded plane (elements) a work item's scratch may hold: two of them per thread
#: (the padded input, the pitched sums) stay in L2; larger planes take the generic rows, whose
#: per-tap loops are long enough there
PLANE_LIMIT = 1 << 15


@njit(cache=_CACHE, inline="always")
def _add_run(acc, a, n, m):
    """acc[o] += a[o], a[o + 1], ..., a[o + m - 1] (m <= 7), in that order, for o < n: one pass
    over ``acc`` with the running sum in a register, one source with literal offsets (so LLVM
    sees m loads of one array, and that no index is negative)."""
    if m == 7:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            s += a[o + 2]
            s += a[o + 3]
            s += a[o + 4]
            s += a[o + 5]
            s += a[o + 6]
            acc[o] = s
    elif m == 6:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            s += a[o + 2]
            s += a[o + 3]
            s += a[o + 4]
            s += a[o + 5]
            acc[o] = s
    elif m == 5:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            s += a[o + 2]
            s += a[o + 3]
            s += a[o + 4]
            acc[o] = s
    elif m == 4:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            s += a[o + 2]
            s += a[o + 3]
            acc[o] = s
    elif m == 3:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            s += a[o + 2]
            acc[o] = s
    elif m == 2:
        for o in range(n):
            s = acc[o]
            s += a[o]
            s += a[o + 1]
            acc[o] = s
    elif m == 1:
        for o in range(n):
            s = acc[o]
            s += a[o]
            acc[o] = s


@njit(cache=_CACHE)
def _taps_row(acc, src, n, kw, dw):
    """acc[o] += src[o + l*dw] for l = 0 .. kw-1, in that order, for o < n. Contiguous taps
    (dw 1) go in runs of up to 7 (``_add_run``); dilated ones one pass per tap, each its own
    slice indexed by ``o`` alone (an index ``o + l*dw`` may be negative for all Numba knows,
    and its wraparound check stops LLVM from vectorizing). One thread, 4096 planes of 20x20:
    runs of 7 took 0.63-0.83x the time of one pass per tap (3x3 to 13x13), and runs over one
    slice per tap (7 sources: beyond LLVM's runtime alias checks) 1.1-1.3x."""
    if dw == 1:
        l = 0
        while l < kw:
            m = kw - l if kw - l < 7 else 7
            _add_run(acc, src[l:], n, m)
            l += m
        return
    for l in range(kw):
        a = src[l * dw:]
        for o in range(n):
            acc[o] += a[o]


@njit(cache=_CACHE, nogil=True)
def _plane_sum_cf(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    """Stride-1 averages (sum over the divisor ``cd[od]*ch[oh]*cw[ow]`` or ``override``) of
    planes r0 .. r1-1 of x (B, D, H, W) -> y (B, OD, OH, OW); integers divide by ``_int_div``
    (``is_int``: 1 truncating, 2 half to even)."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw = geo[0], geo[1], geo[2]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    Dp, Hp, Wp = OD + (kd - 1) * dd, OH + (kh - 1) * dh, OW + (kw - 1) * dw
    xp = np.zeros(Dp * Hp * Wp, dtype=acc_proto.dtype)     # the borders stay 0
    n = ((OD - 1) * Hp + OH - 1) * Wp + OW
    acc = np.empty(n, dtype=acc_proto.dtype)
    for b in range(r0, r1):
        for d in range(D):
            for h in range(H):
                dst = xp[((d + pd) * Hp + h + ph) * Wp + pw:]
                src = x[b, d, h]
                for w in range(W):
                    dst[w] = src[w]
        acc[:] = 0
        for i in range(kd):
            for j in range(kh):
                _taps_row(acc, xp[(i * dd * Hp + j * dh) * Wp:], n, kw, dw)
        for od in range(OD):
            for oh in range(OH):
                a = acc[(od * Hp + oh) * Wp:]
                out = y[b, od, oh]
                for ow in range(OW):
                    dv = override if override != 0 else cd[od] * ch[oh] * cw[ow]
                    if is_int:
                        out[ow] = _int_div(a[ow], dv, is_int)
                    else:
                        out[ow] = a[ow] / dv
