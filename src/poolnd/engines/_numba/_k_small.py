"""Kernels: the literal small windows: 2x2 and 2x2x2 tiles (values, indices, average
backward, channels-last) and the 3x3 max/min and average."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE, _noalias
from ._k_half import _widen_k
from ._k_rows import MAX, MIN, SUM, _better, _interior, _split_row


# ----------------------------------------------------------------------------------------------
# the common case, literal: windows 2 x 2 (x 2) with stride = kernel, no padding, all inside
# x (B, D, H, W) with D pooled by kd in {1, 2}; outputs (B, OD, OH, OW)
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _over(u, v, minimum):
    """The running max (min) after ``u``: ``u`` when strictly better or NaN (the engine's
    rule, as ``_better``), branch-free in ``minimum``."""
    return u if ((u > v) & (not minimum)) | ((u < v) & minimum) | (u != u) else v


# The max and the sum rows are separate functions: one row function holding both loops behind
# ``if op == SUM`` made the 2x2 max 1.25x slower on one thread (4.13 -> 3.32 ms for
# 512x112x112 float32; the bool ``minimum`` of ``_over`` 3.16 ms; then, with the sum loop gone
# from the function, 1.34 ms). The 2x2 sum row also says whether it wrote a NaN (one compare per
# output, in registers): nan_policy="omit"'s check (:mod:`._k_check`), dead code elsewhere.

@njit(cache=_CACHE, inline="always")
def _k2_2d_best_row(x, y, minimum, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, od, 2 * oh]
    a1 = x[b, od, 2 * oh + 1]
    for q in range(OW):
        v = a0[2 * q]
        v = _over(a0[2 * q + 1], v, minimum)
        v = _over(a1[2 * q], v, minimum)
        v = _over(a1[2 * q + 1], v, minimum)
        yr[q] = v


@njit(cache=_CACHE, inline="always")
def _over_skip(u, v, minimum):
    """nan_policy="omit"'s running max (min) after ``u``: ``u`` when strictly better, or when
    the running value is NaN. A NaN is kept only while everything so far is NaN, so a window
    gives the first best of its numbers, or the last NaN when it holds nothing else: the rank
    kernels' rule, in one select."""
    return u if ((u > v) & (not minimum)) | ((u < v) & minimum) | (v != v) else v


@njit(cache=_CACHE, inline="always")
def _k2_2d_skip_row(x, y, minimum, r):
    """_k2_2d_best_row skipping NaN (``_over_skip``)."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr, a0, a1 = y[b, od, oh], x[b, od, 2 * oh], x[b, od, 2 * oh + 1]
    for q in range(OW):
        v = _over_skip(a0[2 * q + 1], a0[2 * q], minimum)
        v = _over_skip(a1[2 * q], v, minimum)
        yr[q] = _over_skip(a1[2 * q + 1], v, minimum)


@njit(cache=_CACHE, inline="always")
def _k2_3d_skip_row(x, y, minimum, r):
    """_k2_3d_best_row skipping NaN (``_over_skip``)."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0, a1 = x[b, 2 * od, 2 * oh], x[b, 2 * od, 2 * oh + 1]
    a2, a3 = x[b, 2 * od + 1, 2 * oh], x[b, 2 * od + 1, 2 * oh + 1]
    for q in range(OW):
        v = _over_skip(a0[2 * q + 1], a0[2 * q], minimum)
        v = _over_skip(a1[2 * q + 1], _over_skip(a1[2 * q], v, minimum), minimum)
        v = _over_skip(a2[2 * q + 1], _over_skip(a2[2 * q], v, minimum), minimum)
        yr[q] = _over_skip(a3[2 * q + 1], _over_skip(a3[2 * q], v, minimum), minimum)


@njit(cache=_CACHE, inline="always")
def _k2_2d_sum_row(x, y, div, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, od, 2 * oh]
    a1 = x[b, od, 2 * oh + 1]
    bad = False
    for q in range(OW):
        s = div[0] - div[0]
        s += a0[2 * q]
        s += a0[2 * q + 1]
        s += a1[2 * q]
        s += a1[2 * q + 1]
        bad |= s != s
        yr[q] = s / div[0]
    return bad


@njit(cache=_CACHE, inline="always")
def _k2_3d_best_row(x, y, minimum, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, 2 * od, 2 * oh]
    a1 = x[b, 2 * od, 2 * oh + 1]
    a2 = x[b, 2 * od + 1, 2 * oh]
    a3 = x[b, 2 * od + 1, 2 * oh + 1]
    for q in range(OW):
        v = a0[2 * q]
        v = _over(a0[2 * q + 1], v, minimum)
        v = _over(a1[2 * q], v, minimum)
        v = _over(a1[2 * q + 1], v, minimum)
        v = _over(a2[2 * q], v, minimum)
        v = _over(a2[2 * q + 1], v, minimum)
        v = _over(a3[2 * q], v, minimum)
        v = _over(a3[2 * q + 1], v, minimum)
        yr[q] = v


@njit(cache=_CACHE, inline="always")
def _k2_3d_sum_row(x, y, div, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, 2 * od, 2 * oh]
    a1 = x[b, 2 * od, 2 * oh + 1]
    a2 = x[b, 2 * od + 1, 2 * oh]
    a3 = x[b, 2 * od + 1, 2 * oh + 1]
    for q in range(OW):
        s = div[0] - div[0]
        s += a0[2 * q]
        s += a0[2 * q + 1]
        s += a1[2 * q]
        s += a1[2 * q + 1]
        s += a2[2 * q]
        s += a2[2 * q + 1]
        s += a3[2 * q]
        s += a3[2 * q + 1]
        yr[q] = s / div[0]


@njit(cache=_CACHE, nogil=True)
def _k2_2d(x, y, op, div, r0, r1):
    """Max/min (op MAX/MIN) of 2x2 windows with stride 2, output rows r0 .. r1-1 (``div``
    unused: the sums' signature)."""
    minimum = op == MIN
    for r in range(r0, r1):
        _k2_2d_best_row(x, y, minimum, r)


@_noalias
def _k2_2d_sum(x, y, op, div, r0, r1):
    """The 2x2 average (the sum over ``div`` in the accumulation dtype), compiled with no-alias
    arrays (see ``_noalias``); ``op`` is SUM."""
    for r in range(r0, r1):
        _k2_2d_sum_row(x, y, div, r)


@njit(cache=_CACHE, nogil=True)
def _k2_3d(x, y, op, div, r0, r1):
    """As _k2_2d for 2x2x2 windows."""
    minimum = op == MIN
    for r in range(r0, r1):
        _k2_3d_best_row(x, y, minimum, r)


@_noalias
def _k2_3d_sum(x, y, op, div, r0, r1):
    """As _k2_2d_sum for 2x2x2 windows."""
    for r in range(r0, r1):
        _k2_3d_sum_row(x, y, div, r)


@njit(cache=_CACHE, nogil=True)
def _k2_sum_half(xh, y, kd, div, keep_nan, r0, r1):
    """_k2_2d_sum (kd 1) or _k2_3d_sum (kd 2) of float16 data, ``xh`` its bits (uint16,
    (B, D, H, W)): work items the B*OD output planes, each one's kd input slices widened into a
    scratch (_k_half's conversion) and then summed by the same rows, so the result is the
    float32 kernel's on the widened input without writing and reading back all of it."""
    B, D, H, W = xh.shape
    OD, OH = y.shape[1], y.shape[2]
    n = kd * H * W
    s = np.empty(n, dtype=np.float32)
    sb = s.view(np.uint32)
    s4 = s.reshape(1, kd, H, W)
    xf = xh.reshape(xh.size)
    for i in range(r0, r1):
        b = i // OD
        od = i - b * OD
        start = (b * D + od * kd) * H * W
        _widen_k(xf[start:start + n], sb, keep_nan, 0, n)
        yp = y[b:b + 1, od:od + 1]
        if kd == 2:
            for oh in range(OH):
                _k2_3d_sum_row(s4, yp, div, oh)
        else:
            for oh in range(OH):
                _k2_2d_sum_row(s4, yp, div, oh)


@njit(cache=_CACHE, inline="always")
def _inside(n_out, n_in, s, p, k):
    """(lo, hi): outputs lo <= o < hi have their window [o*s - p, o*s - p + k) inside
    [0, n_in); the others touch the padding or the end."""
    lo = 0
    while lo < n_out and lo * s - p < 0:
        lo += 1
    hi = n_out
    while hi > lo and (hi - 1) * s - p + k > n_in:
        hi -= 1
    return lo, hi


@njit(cache=_CACHE, inline="always")
def _beats(v, b, op, skip):
    """``_better`` (v strictly better, or NaN), or with ``skip`` nan_policy="omit"'s rule of
    ``_over_skip`` (v strictly better, or the running b NaN). Branch-free in both flags; the
    kernels below pass ``skip`` as a literal through an inlined body, so each twin compiles to
    its own select."""
    return (((v > b) & (op == MAX)) | ((v < b) & (op != MAX)) | ((v != v) & (not skip))
            | ((b != b) & skip))


@njit(cache=_CACHE, inline="always")
def _into(o, h, first, op, skip):
    """Row ``h`` into accumulator row ``o`` in scan order: a copy first, then the running best
    (or sum, op SUM). Row-wise partial results compose exactly under either select: the first
    best in scan order, or the last NaN (of all of them, under ``skip``)."""
    if first:
        for q in range(o.shape[0]):
            o[q] = h[q]
    elif op == SUM:
        for q in range(o.shape[0]):
            o[q] += h[q]
    else:
        for q in range(o.shape[0]):
            v = h[q]
            bv = o[q]
            o[q] = v if _beats(v, bv, op, skip) else bv


@njit(cache=_CACHE, inline="always")
def _k3_edge(row, q, sw, pw, op, ident, skip):
    """The best of the in-bounds taps of one row's window q (``ident`` when none is). It starts
    from the first in-bounds tap, not from ``ident``: under ``skip`` an all-NaN window's answer
    is its last NaN, which the identity would beat."""
    W = row.shape[0]
    bv = ident
    first = True
    for l in range(3):
        c = q * sw - pw + l
        if 0 <= c < W:
            v = row[c]
            bv = v if first or _beats(v, bv, op, skip) else bv
            first = False
    return bv


@njit(cache=_CACHE)
def _k3_hrow(row, out, q_lo, q_hi, sw, pw, op, ident, skip):
    """out[q] = best of the in-bounds taps row[q*sw - pw + l], l = 0, 1, 2, in order (``ident``
    when none is in bounds): one input row's horizontal 3-tap maxima. Windows q_lo <= q < q_hi
    lie inside the row."""
    OW = out.shape[0]
    if q_hi > q_lo:
        src = row[q_lo * sw - pw:]
        o = out[q_lo:q_hi]
        if sw == 2:
            for q in range(q_hi - q_lo):
                bv = src[2 * q]
                v = src[2 * q + 1]
                bv = v if _beats(v, bv, op, skip) else bv
                v = src[2 * q + 2]
                o[q] = v if _beats(v, bv, op, skip) else bv
        else:
            for q in range(q_hi - q_lo):
                bv = src[sw * q]
                v = src[sw * q + 1]
                bv = v if _beats(v, bv, op, skip) else bv
                v = src[sw * q + 2]
                o[q] = v if _beats(v, bv, op, skip) else bv
    for q in range(q_lo):                     # the few columns whose window touches padding
        out[q] = _k3_edge(row, q, sw, pw, op, ident, skip)
    for q in range(q_hi, OW):
        out[q] = _k3_edge(row, q, sw, pw, op, ident, skip)


@njit(cache=_CACHE, inline="always")
def _k3_roll(x, y, sh, sw, ph, pw, nchunk, op, ident, skip, r0, r1):
    """Max/min of 3x3 windows (2-d, no dilation, depth untouched), values only. Each input
    row's horizontal 3-tap maxima are computed once into a rolling buffer of three rows
    (slot = row % 3) and combined vertically in row order; with stride 2 an input row serves two
    output rows. Grouping by rows keeps the row-major first-wins/last-NaN result exactly (the
    selection is associative in scan order). Work item i: plane i // nchunk, a chunk of output
    rows i % nchunk."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    rows_per = (OH + nchunk - 1) // nchunk
    buf = np.empty((3, OW), dtype=y.dtype)
    have = np.empty(3, dtype=np.int64)
    for i in range(r0, r1):
        plane = i // nchunk
        b = plane // D
        d = plane - b * D
        oh0 = (i - plane * nchunk) * rows_per
        oh1 = min(OH, oh0 + rows_per)
        have[:] = -(1 << 40)
        for oh in range(oh0, oh1):
            o = y[b, d, oh]
            z0 = oh * sh - ph
            n = 0
            for j in range(3):
                r = z0 + j
                if r < 0 or r >= H:
                    continue
                slot = r % 3
                if have[slot] != r:
                    _k3_hrow(x[b, d, r], buf[slot], q_lo, q_hi, sw, pw, op, ident, skip)
                    have[slot] = r
                _into(o, buf[slot], n == 0, op, skip)
                n += 1
            if n == 0:                        # a window row range wholly in padding
                o[:] = ident


@njit(cache=_CACHE, inline="always")
def _split2(src, ev, od, n):
    """ev[k] = src[2k] (k <= n), od[k] = src[2k + 1] (k < n): a stride-2 pass's even and odd
    elements, so that the loops after it read contiguous memory (and vectorize)."""
    for k in range(n):
        ev[k] = src[2 * k]
        od[k] = src[2 * k + 1]
    ev[n] = src[2 * n]


@njit(cache=_CACHE, nogil=True)
def _k3_roll_cf(x, y, sh, sw, ph, pw, nchunk, op, ident, r0, r1):
    """_k3_roll, propagating NaN."""
    _k3_roll(x, y, sh, sw, ph, pw, nchunk, op, ident, False, r0, r1)


@njit(cache=_CACHE, nogil=True)
def _k3_roll_omit(x, y, sh, sw, ph, pw, nchunk, op, ident, nan, r0, r1):
    """nan_policy="omit"'s _k3_roll_cf itself, with or without a NaN (as ``_k2_2d_omit``):
    ``nan`` stays False."""
    _k3_roll(x, y, sh, sw, ph, pw, nchunk, op, ident, True, r0, r1)


@njit(cache=_CACHE, inline="always")
def _k3_flat(x, y, sh, sw, ph, pw, op, ident, skip, r0, r1):
    """Max/min of 3x3 windows, values only, one plane per work item, for ``W % sw == 0``: the
    plane's horizontal 3-tap maxima in one flat pass over the plane seen as a single row (row
    r's window q is flat window r*(W/sw) + q), the few windows that straddle a row's ends redone
    tap by tap, then each output row combines its three rows' maxima in row order. With stride
    2 the pass first splits the plane into even and odd elements, so that every loop reads
    contiguous memory and vectorizes (a stride-2 loop did not). Grouping by rows keeps the
    row-major first-wins/last-NaN result exactly."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    per = W // sw
    K = H * per
    k_lo, k_hi = _inside(K, H * W, sw, pw, 3)
    n = k_hi - k_lo
    hf = np.empty(K, dtype=y.dtype)
    ev = np.empty(K + 1, dtype=y.dtype)
    od = np.empty(K + 1, dtype=y.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        if n > 0:
            src = x[b, d].reshape(H * W)[k_lo * sw - pw:]
            o = hf[k_lo:]
            if sw == 2:
                _split2(src, ev, od, n)
                e1 = ev[1:]
                for k in range(n):
                    bv = ev[k]
                    v = od[k]
                    bv = v if _beats(v, bv, op, skip) else bv
                    v = e1[k]
                    o[k] = v if _beats(v, bv, op, skip) else bv
            else:
                for k in range(n):
                    bv = src[sw * k]
                    v = src[sw * k + 1]
                    bv = v if _beats(v, bv, op, skip) else bv
                    v = src[sw * k + 2]
                    o[k] = v if _beats(v, bv, op, skip) else bv
        for r in range(H):                    # windows that touch a row's ends
            row = x[b, d, r]
            base = r * per
            for q in range(q_lo):
                hf[base + q] = _k3_edge(row, q, sw, pw, op, ident, skip)
            for q in range(q_hi, OW):
                hf[base + q] = _k3_edge(row, q, sw, pw, op, ident, skip)
        for oh in range(OH):
            o = y[b, d, oh]
            z0 = oh * sh - ph
            if z0 >= 0 and z0 + 2 < H:
                h0 = hf[z0 * per:]
                h1 = hf[(z0 + 1) * per:]
                h2 = hf[(z0 + 2) * per:]
                for q in range(OW):
                    bv = h0[q]
                    v = h1[q]
                    bv = v if _beats(v, bv, op, skip) else bv
                    v = h2[q]
                    o[q] = v if _beats(v, bv, op, skip) else bv
                continue
            rows = 0
            for j in range(3):
                r = z0 + j
                if 0 <= r < H:
                    _into(o, hf[r * per:], rows == 0, op, skip)
                    rows += 1
            if rows == 0:
                o[:] = ident


@njit(cache=_CACHE, nogil=True)
def _k3_flat_cf(x, y, sh, sw, ph, pw, op, ident, r0, r1):
    """_k3_flat, propagating NaN."""
    _k3_flat(x, y, sh, sw, ph, pw, op, ident, False, r0, r1)


@njit(cache=_CACHE, nogil=True)
def _k3_flat_omit(x, y, sh, sw, ph, pw, op, ident, nan, r0, r1):
    """nan_policy="omit"'s _k3_flat_cf itself, with or without a NaN: ``nan`` stays False."""
    _k3_flat(x, y, sh, sw, ph, pw, op, ident, True, r0, r1)


@njit(cache=_CACHE, inline="always")
def _k3_edge_arg(row, q, sw, pw, op, ident):
    """(best, its tap l) of the in-bounds taps of one row's window q, from the first in-bounds
    tap on; (``ident``, -1) when none is in bounds."""
    W = row.shape[0]
    bv = ident
    bl = -1
    for l in range(3):
        c = q * sw - pw + l
        if 0 <= c < W:
            v = row[c]
            if bl < 0 or _better(v, bv, op):
                bv = v
                bl = l
    return bv, bl


@njit(cache=_CACHE)
def _k3_hrow_arg(row, out, oa, q_lo, q_hi, sw, pw, op, ident):
    """_k3_hrow with the tap l (0, 1, 2) of each best (-1: no tap in bounds)."""
    OW = out.shape[0]
    if q_hi > q_lo:
        src = row[q_lo * sw - pw:]
        o = out[q_lo:q_hi]
        a = oa[q_lo:q_hi]
        for q in range(q_hi - q_lo):
            bv = src[sw * q]
            bl = 0
            v = src[sw * q + 1]
            tk = _better(v, bv, op)
            bv = v if tk else bv
            bl = 1 if tk else bl
            v = src[sw * q + 2]
            tk = _better(v, bv, op)
            o[q] = v if tk else bv
            a[q] = 2 if tk else bl
    for q in range(q_lo):
        out[q], oa[q] = _k3_edge_arg(row, q, sw, pw, op, ident)
    for q in range(q_hi, OW):
        out[q], oa[q] = _k3_edge_arg(row, q, sw, pw, op, ident)


@njit(cache=_CACHE, nogil=True)
def _k3_arg_cf(x, y, arg, sh, sw, ph, pw, nchunk, op, ident, r0, r1):
    """_k3_roll's max/min of 3x3 windows with the window-local argmax (tap 3*j + l): each input
    row's 3-tap bests and their taps once, in a rolling buffer, then each output row takes its
    rows in order where strictly better (or NaN): the row-major scan's first best / last NaN.
    A window whose columns are all padding keeps -1 (then every row's are)."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    rows_per = (OH + nchunk - 1) // nchunk
    buf = np.empty((3, OW), dtype=y.dtype)
    bufl = np.empty((3, OW), dtype=np.int64)
    have = np.empty(3, dtype=np.int64)
    for i in range(r0, r1):
        plane = i // nchunk
        b = plane // D
        d = plane - b * D
        oh0 = (i - plane * nchunk) * rows_per
        oh1 = min(OH, oh0 + rows_per)
        have[:] = -(1 << 40)
        for oh in range(oh0, oh1):
            o = y[b, d, oh]
            a = arg[b, d, oh]
            z0 = oh * sh - ph
            n = 0
            for j in range(3):
                r = z0 + j
                if r < 0 or r >= H:
                    continue
                slot = r % 3
                if have[slot] != r:
                    _k3_hrow_arg(x[b, d, r], buf[slot], bufl[slot], q_lo, q_hi, sw, pw, op,
                                 ident)
                    have[slot] = r
                h = buf[slot]
                hl = bufl[slot]
                if n == 0:
                    for q in range(OW):
                        o[q] = h[q]
                        a[q] = 3 * j + hl[q] if hl[q] >= 0 else -1
                else:
                    for q in range(OW):
                        v = h[q]
                        tk = _better(v, o[q], op) & (hl[q] >= 0)
                        o[q] = v if tk else o[q]
                        a[q] = 3 * j + hl[q] if tk else a[q]
                n += 1
            if n == 0:
                o[:] = ident
                a[:] = -1


@njit(cache=_CACHE, nogil=True)
def _k3_flat_arg_cf(x, y, arg, sh, sw, ph, pw, op, ident, r0, r1):
    """_k3_flat with the window-local argmax (tap 3*j + l), one plane per work item, for
    ``W % sw == 0``: the plane's horizontal 3-tap bests and their taps l in one flat pass
    (stride 2: over the even and odd elements, contiguous loops), the windows at a row's ends
    redone tap by tap, then each output row takes its three rows in order where strictly better
    (or NaN). One thread, 4096 planes of 56x56, 3x3 s2 p1: the rolling rows with indices
    (_k3_arg_cf) took 55 ms, the generic rows 80 ms."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    per = W // sw
    K = H * per
    k_lo, k_hi = _inside(K, H * W, sw, pw, 3)
    n = k_hi - k_lo
    hf = np.empty(K, dtype=y.dtype)
    hl = np.empty(K, dtype=np.int32)
    ev = np.empty(K + 1, dtype=y.dtype)
    od = np.empty(K + 1, dtype=y.dtype)
    one, two = np.int32(1), np.int32(2)
    zero = np.int32(0)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        if n > 0:
            src = x[b, d].reshape(H * W)[k_lo * sw - pw:]
            o = hf[k_lo:]
            ol = hl[k_lo:]
            if sw == 2:
                _split2(src, ev, od, n)
                e1 = ev[1:]
                for k in range(n):
                    bv = ev[k]
                    v = od[k]
                    tk = _better(v, bv, op)
                    bv = v if tk else bv
                    l = one if tk else zero
                    v = e1[k]
                    tk = _better(v, bv, op)
                    o[k] = v if tk else bv
                    ol[k] = two if tk else l
            else:
                for k in range(n):
                    bv = src[sw * k]
                    v = src[sw * k + 1]
                    tk = _better(v, bv, op)
                    bv = v if tk else bv
                    l = one if tk else zero
                    v = src[sw * k + 2]
                    tk = _better(v, bv, op)
                    o[k] = v if tk else bv
                    ol[k] = two if tk else l
        for r in range(H):                    # windows that touch a row's ends
            row = x[b, d, r]
            base = r * per
            for q in range(q_lo):
                hf[base + q], hl[base + q] = _k3_edge_arg(row, q, sw, pw, op, ident)
            for q in range(q_hi, OW):
                hf[base + q], hl[base + q] = _k3_edge_arg(row, q, sw, pw, op, ident)
        for oh in range(OH):
            o = y[b, d, oh]
            a = arg[b, d, oh]
            z0 = oh * sh - ph
            if z0 >= 0 and z0 + 2 < H:
                h0, l0 = hf[z0 * per:], hl[z0 * per:]
                h1, l1 = hf[(z0 + 1) * per:], hl[(z0 + 1) * per:]
                h2, l2 = hf[(z0 + 2) * per:], hl[(z0 + 2) * per:]
                for q in range(OW):
                    bv = h0[q]
                    t = l0[q]
                    v = h1[q]
                    tk = _better(v, bv, op) & (l1[q] >= 0)
                    bv = v if tk else bv
                    t = l1[q] + 3 if tk else t
                    v = h2[q]
                    tk = _better(v, bv, op) & (l2[q] >= 0)
                    o[q] = v if tk else bv
                    a[q] = l2[q] + 6 if tk else t
                continue
            m = 0
            for j in range(3):
                r = z0 + j
                if r < 0 or r >= H:
                    continue
                h = hf[r * per:]
                hj = hl[r * per:]
                if m == 0:
                    for q in range(OW):
                        o[q] = h[q]
                        a[q] = 3 * j + hj[q] if hj[q] >= 0 else -1
                else:
                    for q in range(OW):
                        v = h[q]
                        tk = _better(v, o[q], op) & (hj[q] >= 0)
                        o[q] = v if tk else o[q]
                        a[q] = 3 * j + hj[q] if tk else a[q]
                m += 1
            if m == 0:
                o[:] = ident
                a[:] = -1


@njit(cache=_CACHE, nogil=True)
def _depth_best(t, y, kd, sd, dd, pd, op, ident, r0, r1):
    """Max/min over depth of per-slice window results: y[b, od] = the best, in slice order, of
    t[b, z] for the window's slices z = od*sd - pd + i*dd inside [0, D) (``ident`` where none
    is), t (B, D, Q) holding each input slice's 2-d window results and y (B, OD, Q). Slice
    by slice is row-major order slice-major, so the first best / last NaN rule holds exactly.
    Work item: one (b, od)."""
    D = t.shape[1]
    OD = y.shape[1]
    for r in range(r0, r1):
        b = r // OD
        od = r - b * OD
        o = y[b, od]
        n = 0
        for i in range(kd):
            z = od * sd - pd + i * dd
            if 0 <= z < D:
                _into(o, t[b, z], n == 0, op, False)
                n += 1
        if n == 0:
            o[:] = ident


@njit(cache=_CACHE, nogil=True)
def _depth_best_arg(t, ta, y, arg, kd, sd, dd, pd, per, op, ident, r0, r1):
    """_depth_best with the window-local argmax: slice i's 2-d tap ``ta`` becomes tap
    ``i * per + ta`` (``per``: the 2-d window's taps), taken where the slice is strictly better
    (or NaN), so the first best / last NaN of the row-major scan wins, and -1 stays where the
    2-d window is all padding (then so is every slice's)."""
    D = t.shape[1]
    OD, Q = y.shape[1], y.shape[2]
    for r in range(r0, r1):
        b = r // OD
        od = r - b * OD
        o = y[b, od]
        a = arg[b, od]
        n = 0
        for i in range(kd):
            z = od * sd - pd + i * dd
            if z < 0 or z >= D:
                continue
            h = t[b, z]
            ha = ta[b, z]
            base = i * per
            if n == 0:
                for q in range(Q):
                    o[q] = h[q]
                    a[q] = base + ha[q] if ha[q] >= 0 else -1
            else:
                for q in range(Q):
                    v = h[q]
                    tk = _better(v, o[q], op) & (ha[q] >= 0)
                    o[q] = v if tk else o[q]
                    a[q] = base + ha[q] if tk else a[q]
            n += 1
        if n == 0:
            o[:] = ident
            a[:] = -1


@njit(cache=_CACHE, nogil=True)
def _k3_avg_cf(x, y, geo, wtab, ch, cw, override, r0, r1):
    """Averages of 3x3 windows (2-d, no dilation, W stride 1 or 2, any padding), float dtypes:
    interior columns of full rows in one literal 9-tap sum, edges tap by tap, in the same tap
    order; divided by ``override`` or ``ch[oh] * cw[q]`` (counts in the data's dtype)."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    sh, sw, ph, pw = geo[4], geo[5], geo[10], geo[11]
    q_lo, q_hi = _interior(wtab, 3)
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        out = y[b, od, oh]
        z0 = oh * sh - ph
        full = z0 >= 0 and z0 + 2 < H and q_hi - q_lo >= 2
        a0 = q_lo if full else 0
        a1 = q_hi if full else 0
        if full:
            st = wtab[0, 2] + (q_lo - wtab[0, 0]) * sw
            s0 = x[b, od, z0][st:]
            s1 = x[b, od, z0 + 1][st:]
            s2 = x[b, od, z0 + 2][st:]
            o = out[q_lo:]
            for q in range(q_hi - q_lo):
                c = sw * q
                t = override - override
                t += s0[c]
                t += s0[c + 1]
                t += s0[c + 2]
                t += s1[c]
                t += s1[c + 1]
                t += s1[c + 2]
                t += s2[c]
                t += s2[c + 1]
                t += s2[c + 2]
                o[q] = t / (override if override != 0 else ch[oh] * cw[q_lo + q])
        for q in range(OW):                  # rows touching the padding, and edge columns
            if a0 <= q < a1:
                continue
            t = override - override
            for j in range(3):
                if z0 + j < 0 or z0 + j >= H:
                    continue
                row = x[b, od, z0 + j]
                for l in range(3):
                    c = q * sw - pw + l
                    if 0 <= c < W:
                        t += row[c]
            out[q] = t / (override if override != 0 else ch[oh] * cw[q])


# Channels-last 2x2 windows over H, W (stride 2, no padding; depth, if any, untouched: kernel
# 1, stride 1), for rows r0 .. r1-1 of N*OD*OH, vectorized over C. Each output row reads its
# two input rows as flat ``W*C`` vectors (one view per output column, not five: views cost more
# than a 64-channel loop). The max (min) and the average are separate kernels, as the
# channels-first ones: one kernel holding both loops behind ``if op == SUM`` ran the max
# 1.2x slower.

@njit(cache=_CACHE, inline="always")
def _k2_cl_views(x, y, r):
    OD, OH, OW, C = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    W = x.shape[3]
    n, od, oh = _split_row(r, OD, OH)
    return (x[n, od, 2 * oh].reshape(W * C), x[n, od, 2 * oh + 1].reshape(W * C),
            y[n, od, oh].reshape(OW * C), OW, C)


@njit(cache=_CACHE, nogil=True)
def _k2_cl(x, y, op, div, r0, r1):
    """Max/min (op MAX/MIN) of channels-last 2x2 windows (``div`` unused: the sums'
    signature)."""
    minimum = op == MIN
    for r in range(r0, r1):
        top, bot, out, OW, C = _k2_cl_views(x, y, r)
        for ow in range(OW):
            t, u, o = top[2 * C * ow:], bot[2 * C * ow:], out[C * ow:]
            for c in range(C):
                v = _over(t[C + c], t[c], minimum)
                v = _over(u[c], v, minimum)
                o[c] = _over(u[C + c], v, minimum)


@njit(cache=_CACHE, nogil=True)
def _k2_cl_omit(x, y, op, div, nan, r0, r1):
    """nan_policy="omit"'s channels-last 2x2 max (min) in one pass, as _k2_2d_omit: the
    NaN-skipping select gives the exact omitting result with or without a NaN (``nan`` stays
    False)."""
    minimum = op == MIN
    for r in range(r0, r1):
        top, bot, out, OW, C = _k2_cl_views(x, y, r)
        for ow in range(OW):
            t, u, o = top[2 * C * ow:], bot[2 * C * ow:], out[C * ow:]
            for c in range(C):
                v = _over_skip(t[C + c], t[c], minimum)
                v = _over_skip(u[c], v, minimum)
                o[c] = _over_skip(u[C + c], v, minimum)


@njit(cache=_CACHE, inline="always")
def _k2_cl_sum_rows(x, y, div, r0, r1):
    """The channels-last 2x2 average (the sum over ``div``) of rows r0 .. r1-1 -> whether one
    was NaN (one compare per output, in registers; dead code when unused)."""
    bad = False
    for r in range(r0, r1):
        top, bot, out, OW, C = _k2_cl_views(x, y, r)
        for ow in range(OW):
            t, u, o = top[2 * C * ow:], bot[2 * C * ow:], out[C * ow:]
            for c in range(C):
                s = div[0] - div[0]
                s += t[c]
                s += t[C + c]
                s += u[c]
                s += u[C + c]
                bad |= s != s
                o[c] = s / div[0]
    return bad


@njit(cache=_CACHE, nogil=True)
def _k2_cl_sum(x, y, op, div, r0, r1):
    """The channels-last 2x2 average (``op`` is SUM)."""
    _k2_cl_sum_rows(x, y, div, r0, r1)


@njit(cache=_CACHE, nogil=True)
def _k2_cl_sum_checked(x, y, op, div, nan, r0, r1):
    """_k2_cl_sum with nan_policy="omit"'s NaN check in its channel loop."""
    if _k2_cl_sum_rows(x, y, div, r0, r1):
        nan[0] = True


@njit(cache=_CACHE, nogil=True)
def _k2_arg_cl(x, y, arg, op, codes, r0, r1):
    """As _k2_cl for max/min, also recording the window-local argmax (codes[t]: tap t in the
    argmax dtype), for the layers' forward on channels-last input."""
    OD, OH, OW, C = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    W = x.shape[3]
    C2 = 2 * C
    c0, c1, c2, c3 = codes[0], codes[1], codes[2], codes[3]
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        top = x[n, od, 2 * oh].reshape(W * C)
        bot = x[n, od, 2 * oh + 1].reshape(W * C)
        out = y[n, od, oh].reshape(OW * C)
        aout = arg[n, od, oh].reshape(OW * C)
        for ow in range(OW):
            t = top[ow * C2:]
            u = bot[ow * C2:]
            o = out[ow * C:]
            a = aout[ow * C:]
            for c in range(C):
                bv = t[c]
                at = c0
                bv, at = _step(t[C + c], bv, at, c1, op)
                bv, at = _step(u[c], bv, at, c2, op)
                bv, at = _step(u[C + c], bv, at, c3, op)
                o[c] = bv
                a[c] = at


@njit(cache=_CACHE, nogil=True)
def _k2_avg_back_cf(dy, dx, kd, div, r0, r1):
    """Averages' gradient for 2x2(x2) windows, stride = kernel, no padding: every input row
    (r0 .. r1-1 of B*D*H) belongs to at most one window row, so each element is written once:
    dy / div under a window, 0 outside every window."""
    B, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    for r in range(r0, r1):
        b = r // (D * H)
        zd = (r // H) % D
        zh = r % H
        dst = dx[b, zd, zh]
        od = zd // kd
        oh = zh // 2
        if od >= OD or oh >= OH:
            dst[:] = 0
            continue
        g = dy[b, od, oh]
        for q in range(OW):
            v = g[q] / div[0]
            dst[2 * q] = v
            dst[2 * q + 1] = v
        for c in range(2 * OW, W):
            dst[c] = 0


@njit(inline="always")
def _step(v, bv, at, code, op):
    tk = _better(v, bv, op)
    return (v if tk else bv), (code if tk else at)


@njit(cache=_CACHE, inline="always")
def _k2_arg_2d_row(x, y, arg, op, codes, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    ar = arg[b, od, oh]
    a0 = x[b, od, 2 * oh]
    a1 = x[b, od, 2 * oh + 1]
    for q in range(OW):
        bv = a0[2 * q]
        at = codes[0]
        bv, at = _step(a0[2 * q + 1], bv, at, codes[1], op)
        bv, at = _step(a1[2 * q], bv, at, codes[2], op)
        bv, at = _step(a1[2 * q + 1], bv, at, codes[3], op)
        yr[q] = bv
        ar[q] = at


@njit(cache=_CACHE, nogil=True)
def _k2_arg_2d(x, y, arg, op, codes, r0, r1):
    """As _k2_2d for max/min, also recording the window-local argmax (codes[t]:
    tap t in the argmax dtype, so that the selects stay one width)."""
    for r in range(r0, r1):
        _k2_arg_2d_row(x, y, arg, op, codes, r)


@njit(cache=_CACHE, nogil=True)
def _k2_arg_3d(x, y, arg, op, codes, r0, r1):
    """As _k2_arg_2d for 2x2x2 windows."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        yr = y[b, od, oh]
        ar = arg[b, od, oh]
        a0 = x[b, 2 * od, 2 * oh]
        a1 = x[b, 2 * od, 2 * oh + 1]
        a2 = x[b, 2 * od + 1, 2 * oh]
        a3 = x[b, 2 * od + 1, 2 * oh + 1]
        for q in range(OW):
            bv = a0[2 * q]
            at = codes[0]
            bv, at = _step(a0[2 * q + 1], bv, at, codes[1], op)
            bv, at = _step(a1[2 * q], bv, at, codes[2], op)
            bv, at = _step(a1[2 * q + 1], bv, at, codes[3], op)
            bv, at = _step(a2[2 * q], bv, at, codes[4], op)
            bv, at = _step(a2[2 * q + 1], bv, at, codes[5], op)
            bv, at = _step(a3[2 * q], bv, at, codes[6], op)
            bv, at = _step(a3[2 * q + 1], bv, at, codes[7], op)
            yr[q] = bv
            ar[q] = at
