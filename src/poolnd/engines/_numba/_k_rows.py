"""Kernels: the generic channels-first family (any window of 1-3 dims), one output row at a
time, with the row primitives the other families share (``_better``, ``_row_*``)."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE


MAX, MIN, SUM = 0, 1, 2


# ----------------------------------------------------------------------------------------------
# inner loops: one output row segment against one tap's input segment
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _better(v, b, op):
    """Whether v replaces the running best b: strictly better, or NaN. Branch-free in ``op``
    (loop-invariant flags, not an if): LLVM then vectorizes even the argmax loops."""
    return ((v > b) & (op == MAX)) | ((v < b) & (op != MAX)) | (v != v)


@njit(cache=_CACHE, inline="always")
def _beats(v, t, bv, bt, op):
    """Whether candidate (v, flat tap t) beats the best so far (bv, tap bt), the two taken in
    any order: a NaN beats a number and the later NaN another; else the better value, or the
    earlier tap of an equal one. The in-order scan's winner (``_better``: the last NaN, else
    the first best) is the best of a window's taps under this order, so a window reduced in
    parts, in any order (columns before rows, one axis after another), picks the same
    element. Branch-free (random data mispredicts every branch)."""
    better = ((v > bv) & (op == MAX)) | ((v < bv) & (op != MAX)) | ((v == bv) & (t < bt))
    return ((v != v) & ((bv == bv) | (t > bt))) | ((v == v) & (bv == bv) & better)


@njit(cache=_CACHE, inline="always")
def _scan4(sa, sb, sc, sd, n, op):
    """Four in-order scans side by side: the best of each of sa[:n], sb[:n], sc[:n], sd[:n]
    (``_better``: the first best, or the last NaN) and its position, as four independent
    select chains (one chain alone is latency-bound on short scans). Inlined: the positions
    cost nothing where a caller drops them."""
    va, vb, vc, vd = sa[0], sb[0], sc[0], sd[0]
    ja = jb = jc = jd = 0
    for j in range(1, n):
        v = sa[j]
        tk = _better(v, va, op)
        va = v if tk else va
        ja = j if tk else ja
        v = sb[j]
        tk = _better(v, vb, op)
        vb = v if tk else vb
        jb = j if tk else jb
        v = sc[j]
        tk = _better(v, vc, op)
        vc = v if tk else vc
        jc = j if tk else jc
        v = sd[j]
        tk = _better(v, vd, op)
        vd = v if tk else vd
        jd = j if tk else jd
    return va, vb, vc, vd, ja, jb, jc, jd


@njit(cache=_CACHE)
def _row_best(acc, src, n, s, op):
    """acc[q] = best(acc[q], src[q*s]) for q < n."""
    if s == 1:
        for q in range(n):
            v = src[q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b
    elif s == 2:
        for q in range(n):
            v = src[2 * q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b
    else:
        for q in range(n):
            v = src[s * q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b


@njit(cache=_CACHE)
def _row_best_arg(acc, arow, src, n, s, op, t):
    """As _row_best, recording tap ``t`` where it takes over."""
    if s == 1:
        for q in range(n):
            v = src[q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]
    elif s == 2:
        for q in range(n):
            v = src[2 * q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]
    else:
        for q in range(n):
            v = src[s * q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]


@njit(cache=_CACHE)
def _row_sum(acc, src, n, s):
    if s == 1:
        for q in range(n):
            acc[q] += src[q]
    elif s == 2:
        for q in range(n):
            acc[q] += src[2 * q]
    else:
        for q in range(n):
            acc[q] += src[s * q]


@njit(cache=_CACHE, inline="always")
def _split_row(r, OD, OH):
    """Flat output row r -> (plane b, depth od, row oh)."""
    return r // (OD * OH), (r // OH) % OD, r % OH


@njit(cache=_CACHE, inline="always")
def _trunc_div(s, d):
    q = s // d
    if q * d != s and ((s < 0) != (d < 0)):
        q += 1
    return q


@njit(cache=_CACHE, inline="always")
def _int_div(s, d, is_int):
    """An integer window sum ``s`` over its divisor ``d``: truncated toward zero (``is_int``
    1, C's ``/``) or rounded half to even (``is_int`` 2: the floor quotient and remainder of
    ``s / |d|``, up where the remainder passes half of ``|d|`` or equals it with an odd
    quotient, then the sign of ``d``; :func:`~poolnd.engines._common.exact_int_pool`'s rule)."""
    if is_int == 2:
        e = -d if d < 0 else d
        q = s // e
        rem = s - q * e
        up = e - rem
        if rem > up or (rem == up and q % 2 == 1):     # % 2: typed for floats too
            q += 1
        return -q if d < 0 else q
    return _trunc_div(s, d)


@njit(cache=_CACHE, inline="always")
def _first_in(o, s, p, dl, k, size):
    """First tap j with o*s - p + j*dl inside [0, size), or -1."""
    for j in range(k):
        i = o * s - p + j * dl
        if 0 <= i < size:
            return j
    return -1


# ----------------------------------------------------------------------------------------------
# one input row against one output row: every W tap of the row, in tap order
# wtab[l] = (o_lo, o_hi, i_lo): outputs o_lo <= q < o_hi read input column i_lo + (q - o_lo)*sw
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE)
def _interior(wtab, kw):
    """Outputs where every W tap lies inside the row: [q_lo, q_hi) (may be empty)."""
    q_lo, q_hi = wtab[0, 0], wtab[0, 1]
    for l in range(1, kw):
        q_lo = max(q_lo, wtab[l, 0])
        q_hi = min(q_hi, wtab[l, 1])
    return q_lo, q_hi


@njit(cache=_CACHE)
def _best_fused(acc, src, n, kw, sw, dw, op):
    """acc[q] = best over l of src[q*sw + l*dw], all taps inside (the interior)."""
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[2 * q]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 1]
            b = v if _better(v, b, op) else b
            acc[q] = b
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[2 * q]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 1]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 2]
            b = v if _better(v, b, op) else b
            acc[q] = b
    elif kw == 3 and sw == 1 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[q]
            b = v if _better(v, b, op) else b
            v = src[q + 1]
            b = v if _better(v, b, op) else b
            v = src[q + 2]
            b = v if _better(v, b, op) else b
            acc[q] = b
    else:
        for l in range(kw):
            _row_best(acc, src[l * dw:], n, sw, op)


@njit(cache=_CACHE)
def _best_fused_arg(acc, arow, src, n, kw, sw, dw, op, t0):
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            a = arow[q]
            v = src[2 * q]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 if tk else a
            v = src[2 * q + 1]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 1 if tk else a
            acc[q] = b
            arow[q] = a
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            a = arow[q]
            v = src[2 * q]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 if tk else a
            v = src[2 * q + 1]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 1 if tk else a
            v = src[2 * q + 2]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 2 if tk else a
            acc[q] = b
            arow[q] = a
    else:
        for l in range(kw):
            _row_best_arg(acc, arow, src[l * dw:], n, sw, op, t0 + l)


@njit(cache=_CACHE)
def _sum_fused(acc, src, n, kw, sw, dw):
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            b += src[2 * q]
            b += src[2 * q + 1]
            acc[q] = b
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            b += src[2 * q]
            b += src[2 * q + 1]
            b += src[2 * q + 2]
            acc[q] = b
    else:
        for l in range(kw):
            _row_sum(acc, src[l * dw:], n, sw)


@njit(cache=_CACHE)
def _row_best_apply(acc, xrow, wtab, kw, sw, dw, op):
    """Apply the W taps of one input row to one output row (max/min values only). Outputs
    whose taps all lie inside the row (the interior) take them in one fused loop; the edge
    outputs take them tap by tap. Either way each output sees its taps in order."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_best(acc[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw, op)
    if fused:
        _best_fused(acc[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:], q_hi - q_lo, kw,
                    sw, dw, op)


@njit(cache=_CACHE)
def _row_arg_apply(acc, arow, xrow, wtab, kw, sw, dw, op, t0):
    """As _row_best_apply, recording the window-local tap (t0 + l) that takes over."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_best_arg(acc[a0:], arow[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw, op,
                              t0 + l)
    if fused:
        _best_fused_arg(acc[q_lo:], arow[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:],
                        q_hi - q_lo, kw, sw, dw, op, t0)


@njit(cache=_CACHE)
def _row_sum_apply(acc, xrow, wtab, kw, sw, dw):
    """As _row_best_apply for sums."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_sum(acc[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw)
    if fused:
        _sum_fused(acc[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:], q_hi - q_lo, kw,
                   sw, dw)


# ----------------------------------------------------------------------------------------------
# channels-first: x (B, D, H, W), outputs (B, OD, OH, OW)
# geo = [kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw]
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _best_cf(x, y, geo, wtab, op, ident, r0, r1):
    """Max or min of every window, for output rows r0 .. r1-1."""
    B, D, H, W = x.shape
    OD, OH = y.shape[1], y.shape[2]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc = y[b, od, oh]
        acc[:] = ident
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_best_apply(acc, x[b, zd, zh], wtab, kw, sw, dw, op)


@njit(cache=_CACHE, nogil=True)
def _best_arg_cf(x, y, arg, geo, wtab, wfirst, op, ident, r0, r1):
    """As _best_cf, also recording the window-local argmax (the first tap inside the input
    until another takes over)."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc = y[b, od, oh]
        acc[:] = ident
        arow = arg[b, od, oh]
        fi = _first_in(od, sd, pd, dd, kd, D)
        fj = _first_in(oh, sh, ph, dh, kh, H)
        for q in range(OW):
            arow[q] = (fi * kh + fj) * kw + wfirst[q] if (fi >= 0 and fj >= 0 and
                                                          wfirst[q] >= 0) else -1
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_arg_apply(acc, arow, x[b, zd, zh], wtab, kw, sw, dw, op, (i * kh + j) * kw)


@njit(cache=_CACHE, nogil=True)
def _avg_cf(x, y, geo, wtab, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    """Window sums in the accumulation dtype, divided per output row; parallel over rows."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    acc = np.empty(OW, dtype=acc_proto.dtype)
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc[:] = 0
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_sum_apply(acc, x[b, zd, zh], wtab, kw, sw, dw)
        _finish_row(acc, y[b, od, oh], cd[od] * ch[oh], cw, override, is_int)


@njit(cache=_CACHE)
def _finish_row(acc, out, c_outer, cw, override, is_int):
    """out[q] = acc[q] / divisor: the divisor is ``override`` if nonzero, else
    ``c_outer * cw[q]``; integers (``is_int`` 1 or 2) divide as ``_int_div`` says."""
    n = out.shape[0]
    for q in range(n):
        d = override if override != 0 else c_outer * cw[q]
        if is_int:
            out[q] = _int_div(acc[q], d, is_int)
        else:
            out[q] = acc[q] / d


@njit(cache=_CACHE)
def _scatter_segment(dst, g, arow, a0, a1, lo, st, sw, with_arg, t):
    """Tap t (first output lo, input column st): dst[col(q)] += g[q] for a0 <= q < a1 (only
    where arow[q] == t, with_arg)."""
    if a1 <= a0:
        return
    d = dst[st + (a0 - lo) * sw:]
    if with_arg:
        for q in range(a1 - a0):
            d[sw * q] += g[a0 + q] if arow[a0 + q] == t else 0
    elif sw == 1:
        for q in range(a1 - a0):
            d[q] += g[a0 + q]
    else:
        for q in range(a1 - a0):
            d[sw * q] += g[a0 + q]


@njit(cache=_CACHE)
def _share_row(out, g, c_outer, cw, override):
    """out[q] = g[q] / divisor; c_outer, cw and override come in g's float dtype, so the
    division runs in that dtype (as PyTorch's gradOutput / divide_factor)."""
    n = out.shape[0]
    if override != 0:
        for q in range(n):
            out[q] = g[q] / override
    else:
        for q in range(n):
            out[q] = g[q] / (c_outer * cw[q])


@njit(cache=_CACHE, nogil=True)
def _back_cf(dy, dx, geo, wtab, cd, ch, cw, override, r0, r1):
    """Averages' gradient by gathering: each input row is owned by one thread, zeroed, and
    receives every covering window's share dy / divisor (cd, ch, cw, override in dy's dtype) in
    a fixed order (taps i, j, l ascending): deterministic for any thread count, dx written once."""
    B, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, pd, ph = geo[6], geo[7], geo[9], geo[10]
    share = np.empty(OW, dtype=dy.dtype)
    for r in range(r0, r1):
        b = r // (D * H)
        zd = (r // H) % D
        zh = r % H
        dst = dx[b, zd, zh]
        dst[:] = 0
        for i in range(kd):
            nd = zd + pd - i * dd
            if nd < 0 or nd % sd != 0 or nd // sd >= OD:
                continue
            od = nd // sd
            for j in range(kh):
                nh = zh + ph - j * dh
                if nh < 0 or nh % sh != 0 or nh // sh >= OH:
                    continue
                oh = nh // sh
                _share_row(share, dy[b, od, oh], cd[od] * ch[oh], cw, override)
                for l in range(kw):
                    lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
                    _scatter_segment(dst, share, share, lo, hi, lo, st, sw, False, 0)


@njit(cache=_CACHE, nogil=True)
def _route_cf(dy, arg, dx, dbase, hbase, wbase, toff, r0, r1):
    """Max/min gradient: each output's dy goes to the input its window chose, at in-plane offset
    dbase[od] + hbase[oh] + wbase[ow] + toff[tap]. One thread owns whole planes and scans their
    outputs in order, so overlapping windows sum in a fixed order (deterministic). ``dx`` comes
    uninitialized: each plane is zeroed here, right before its scatter, while it is in cache
    (one pass over fresh memory instead of calloc's zero pages and a second pass)."""
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    for b in range(r0, r1):
        plane = dx[b]
        for i in range(plane.shape[0]):
            plane[i] = 0
        for od in range(OD):
            for oh in range(OH):
                base = dbase[od] + hbase[oh]
                g = dy[b, od, oh]
                a = arg[b, od, oh]
                for q in range(OW):
                    t = a[q]
                    if t >= 0:
                        plane[base + wbase[q] + toff[t]] += g[q]


@njit(cache=_CACHE, nogil=True)
def _route_cl(dy, arg, dx, dbase, hbase, wbase, toff, cs, r0, r1):
    """As _route_cf for channels-last (N, OD, OH, OW, C) into dx (N, D*H*W, C); threads own
    blocks of ``cs`` channels of one image."""
    C = dy.shape[4]
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    nb = (C + cs - 1) // cs
    for p in range(r0, r1):
        n = p // nb
        c0 = (p % nb) * cs
        c1 = min(C, c0 + cs)
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    base = dbase[od] + hbase[oh] + wbase[ow]
                    g = dy[n, od, oh, ow]
                    a = arg[n, od, oh, ow]
                    for c in range(c0, c1):
                        t = a[c]
                        if t >= 0:
                            dx[n, base + toff[t], c] += g[c]
