"""Kernels: box windows along one axis (adaptive, fractional pools, kernels mostly padding)
and index scatter/gather (unpool, the box pools' max backward)."""
from __future__ import annotations


import numba
from numba import njit

from ._compile import _CACHE
from ._k_rows import MAX, _beats, _scan4


# ----------------------------------------------------------------------------------------------
# box windows (adaptive, fractional pools): one axis of (B, P, L, Q) per call, rows r = b*P + p
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _four_rows(a, r, n):
    """Rows r .. r+3 of ``a`` (B, P, n, 1), counted over B*P, as four flat views."""
    P = a.shape[1]
    return (a[r // P, r % P].reshape(n), a[(r + 1) // P, (r + 1) % P].reshape(n),
            a[(r + 2) // P, (r + 2) % P].reshape(n), a[(r + 3) // P, (r + 3) % P].reshape(n))


@njit(cache=_CACHE, inline="always")
def _box_row(v, y, r, per_plane):
    """Row r (over B*P) of an axis pass -> (b, p, the row of starts/sizes, source, dest)."""
    P = v.shape[1]
    b = r // P
    p = r - b * P
    return b, p, (b if per_plane else 0), v[b, p], y[b, p]


@njit(cache=_CACHE, nogil=True)
def _axis_max(v, c, y, idx, starts, sizes, mult, has_carry, with_arg, r0, r1):
    """y[b, p, o, :] = best of v[b, p, s:s+n, :] scanned in order, idx its index (position *
    mult + the carried index c there). Q == 1 (the last axis of a channels-first array) keeps
    the running best in registers; otherwise rows of Q are combined, vectorized over Q."""
    L, Q = v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    r4 = r0
    if Q == 1 and not per_plane and not has_carry:
        # along the last axis, the same windows in every row: four rows side by side, four
        # independent select chains (_scan4; one row's short windows are latency-bound: 112
        # -> 17 windows, one thread, took 2.8x the time one row at a time, 1.8x with indices)
        while r4 + 4 <= r1:
            sa, sb, sc, sd = _four_rows(v, r4, L)
            da, db, dc, dd = _four_rows(y, r4, O)
            if with_arg:
                ia, ib, ic, id_ = _four_rows(idx, r4, O)
                for o in range(O):
                    s = starts[0, o]
                    da[o], db[o], dc[o], dd[o], ja, jb, jc, jd = _scan4(
                        sa[s:], sb[s:], sc[s:], sd[s:], sizes[0, o], MAX)
                    ia[o], ib[o], ic[o], id_[o] = ((s + ja) * mult, (s + jb) * mult,
                                                   (s + jc) * mult, (s + jd) * mult)
            else:
                for o in range(O):
                    s = starts[0, o]
                    da[o], db[o], dc[o], dd[o], _, _, _, _ = _scan4(
                        sa[s:], sb[s:], sc[s:], sd[s:], sizes[0, o], MAX)
            r4 += 4
    for r in range(r4, r1):
        b, p, row, src, dst = _box_row(v, y, r, per_plane)
        if Q == 1:
            s1 = src.reshape(L)
            d1 = dst.reshape(O)
            c1 = c[b, p].reshape(L) if has_carry else c.reshape(1)
            i1 = idx[b, p].reshape(O) if with_arg else idx.reshape(1)
            for o in range(O):
                s = starts[row, o]
                bv = s1[s]
                bj = s
                for j in range(s + 1, s + sizes[row, o]):
                    val = s1[j]
                    if val > bv or val != val:
                        bv = val
                        bj = j
                d1[o] = bv
                if with_arg:
                    i1[o] = bj * mult + (c1[bj] if has_carry else 0)
            continue
        for o in range(O):
            s = starts[row, o]
            d = dst[o]
            a = src[s]
            for q in range(Q):
                d[q] = a[q]
            if with_arg:
                io = idx[b, p, o]
                for q in range(Q):
                    io[q] = s * mult + (c[b, p, s, q] if has_carry else 0)
            for j in range(s + 1, s + sizes[row, o]):
                a = src[j]
                if with_arg:
                    io = idx[b, p, o]
                    for q in range(Q):
                        val = a[q]
                        if val > d[q] or val != val:
                            d[q] = val
                            io[q] = j * mult + (c[b, p, j, q] if has_carry else 0)
                else:
                    for q in range(Q):
                        val = a[q]
                        bv = d[q]
                        d[q] = val if (val > bv) | (val != val) else bv


@njit(cache=_CACHE, nogil=True)
def _axis_max_any(v, c, y, idx, starts, sizes, mult, r0, r1):
    """_axis_max's pass with a carried index ``c`` that may come from any axis (an earlier
    axis reduced first: ``_separable``'s ``first_axis_first``): candidates from different
    places of the plane, compared by value and flat index (``_beats``), so the winner is the
    row-major scan's whatever the order. Its own kernel: in _axis_max's body the extra
    branches stopped LLVM unswitching and vectorizing the other loops (the channels-last pass
    along W took 4.4 ms against 1.9)."""
    L, Q = v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b, p, row, src, dst = _box_row(v, y, r, per_plane)
        if Q == 1:
            s1 = src.reshape(L)
            c1 = c[b, p].reshape(L)
            d1 = dst.reshape(O)
            i1 = idx[b, p].reshape(O)
            for o in range(O):
                s = starts[row, o]
                bv = s1[s]
                bt = s * mult + c1[s]
                for j in range(s + 1, s + sizes[row, o]):
                    val = s1[j]
                    t = j * mult + c1[j]
                    w = _beats(val, t, bv, bt, MAX)
                    bv = val if w else bv
                    bt = t if w else bt
                d1[o] = bv
                i1[o] = bt
            continue
        for o in range(O):
            s = starts[row, o]
            d = dst[o]
            io = idx[b, p, o]
            a = src[s]
            cs = c[b, p, s]
            for q in range(Q):
                d[q] = a[q]
                io[q] = s * mult + cs[q]
            for j in range(s + 1, s + sizes[row, o]):
                a = src[j]
                cj = c[b, p, j]
                for q in range(Q):
                    val = a[q]
                    bv = d[q]
                    t = j * mult + cj[q]
                    w = _beats(val, t, bv, io[q], MAX)
                    d[q] = val if w else bv
                    io[q] = t if w else io[q]


@njit(cache=_CACHE, nogil=True)
def _axis_sum(v, y, starts, sizes, r0, r1):
    L, Q = v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b, p, row, src, dst = _box_row(v, y, r, per_plane)
        if Q == 1:
            s1 = src.reshape(L)
            d1 = dst.reshape(O)
            for o in range(O):
                s = starts[row, o]
                d1[o] = s1[s] + 0         # + 0: a sum of -0s is +0, as when summing from 0
                t = d1[o]                 # the running sum in v's dtype, as with Q > 1
                for j in range(s + 1, s + sizes[row, o]):
                    t += s1[j]
                d1[o] = t
            continue
        for o in range(O):
            s = starts[row, o]
            d = dst[o]
            a = src[s]
            for q in range(Q):
                d[q] = a[q] + 0
            for j in range(s + 1, s + sizes[row, o]):
                a = src[j]
                for q in range(Q):
                    d[q] += a[q]


@njit(cache=_CACHE, nogil=True)
def _axis_spread(g, out, starts, sizes, r0, r1):
    P, O, Q = g.shape[1], g.shape[2], g.shape[3]
    L = out.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = g[b, p]
        dst = out[b, p]
        if Q == 1:
            s1 = src.reshape(O)
            d1 = dst.reshape(L)
            for o in range(O):
                s = starts[row, o]
                t = s1[o]
                for j in range(s, s + sizes[row, o]):
                    d1[j] += t
            continue
        for o in range(O):
            s = starts[row, o]
            a = src[o]
            for j in range(s, s + sizes[row, o]):
                d = dst[j]
                for q in range(Q):
                    d[q] += a[q]


# ----------------------------------------------------------------------------------------------
# index scatter/gather over (B, plane, T) arrays: unpool and the box pools' max backward
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _scatter(src, idx, dst, accumulate, r0, r1):
    """dst[b, idx[b, o, t], t] = (or +=) src[b, o, t], in order (a repeated index: the last
    write wins, or the sums add in order). ``dst`` comes uninitialized: each plane is zeroed
    here, right before its scatter, while it is in cache. Flat views and unsigned indices
    (validated by the caller: no wraparound check): 2x2 unpool of 16x64x56x56 at two threads
    took 20 ms with the 3-d indexing and a zeroing loop per element."""
    O, T = src.shape[1], src.shape[2]
    for b in range(r0, r1):
        pl = dst[b].reshape(-1)
        pl[:] = 0
        s = src[b].reshape(-1)
        ix = idx[b].reshape(-1)
        if T == 1:
            for o in range(O):
                k = numba.uint64(ix[o])
                if accumulate:
                    pl[k] += s[o]
                else:
                    pl[k] = s[o]
        else:
            for o in range(O):
                for t in range(T):
                    j = o * T + t
                    k = numba.uint64(ix[j] * T + t)
                    if accumulate:
                        pl[k] += s[j]
                    else:
                        pl[k] = s[j]


@njit(cache=_CACHE, nogil=True)
def _gather(src, idx, out, r0, r1):
    """out[b, o, t] = src[b, idx[b, o, t], t]: flat views, unsigned indices (validated when
    they were taken), as _scatter."""
    O, T = out.shape[1], out.shape[2]
    for b in range(r0, r1):
        pl = src[b].reshape(-1)
        ix = idx[b].reshape(-1)
        o_ = out[b].reshape(-1)
        if T == 1:
            for o in range(O):
                o_[o] = pl[numba.uint64(ix[o])]
        else:
            for o in range(O):
                for t in range(T):
                    j = o * T + t
                    o_[j] = pl[numba.uint64(ix[j] * T + t)]