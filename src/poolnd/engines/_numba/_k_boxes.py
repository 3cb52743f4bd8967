"""Kernels: box windows along one axis (adaptive, fractional pools, kernels mostly padding)
and index scatter/gather (unpool, the box pools' max backward)."""
from __future__ import annotations


import numba
from numba import njit

from ._compile import _CACHE


# ----------------------------------------------------------------------------------------------
# box windows (adaptive, fractional pools): one axis of (B, P, L, Q) per call, rows r = b*P + p
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _axis_max(v, c, y, idx, starts, sizes, mult, has_carry, with_arg, r0, r1):
    """y[b, p, o, :] = best of v[b, p, s:s+n, :] scanned in order, idx its index (position *
    mult + the carried index c there). Q == 1 (the last axis of a channels-first array) keeps
    the running best in registers; otherwise rows of Q are combined, vectorized over Q."""
    P, L, Q = v.shape[1], v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    r4 = r0
    if Q == 1 and not per_plane and not with_arg:
        # values along the last axis, the same windows in every row: four rows side by side,
        # four independent select chains (one row's short windows are latency-bound: 112 ->
        # 17 windows took 2.2x the time one row at a time, one thread)
        while r4 + 4 <= r1:
            sa = v[r4 // P, r4 % P].reshape(L)
            sb = v[(r4 + 1) // P, (r4 + 1) % P].reshape(L)
            sc = v[(r4 + 2) // P, (r4 + 2) % P].reshape(L)
            sd = v[(r4 + 3) // P, (r4 + 3) % P].reshape(L)
            da = y[r4 // P, r4 % P].reshape(O)
            db = y[(r4 + 1) // P, (r4 + 1) % P].reshape(O)
            dc = y[(r4 + 2) // P, (r4 + 2) % P].reshape(O)
            dd = y[(r4 + 3) // P, (r4 + 3) % P].reshape(O)
            for o in range(O):
                s = starts[0, o]
                va, vb, vc, vd = sa[s], sb[s], sc[s], sd[s]
                for j in range(s + 1, s + sizes[0, o]):
                    t = sa[j]
                    va = t if (t > va) | (t != t) else va
                    t = sb[j]
                    vb = t if (t > vb) | (t != t) else vb
                    t = sc[j]
                    vc = t if (t > vc) | (t != t) else vc
                    t = sd[j]
                    vd = t if (t > vd) | (t != t) else vd
                da[o], db[o], dc[o], dd[o] = va, vb, vc, vd
            r4 += 4
    if Q == 1 and not per_plane and with_arg and not has_carry:
        while r4 + 4 <= r1:                   # the same with positions
            sa = v[r4 // P, r4 % P].reshape(L)
            sb = v[(r4 + 1) // P, (r4 + 1) % P].reshape(L)
            sc = v[(r4 + 2) // P, (r4 + 2) % P].reshape(L)
            sd = v[(r4 + 3) // P, (r4 + 3) % P].reshape(L)
            da = y[r4 // P, r4 % P].reshape(O)
            db = y[(r4 + 1) // P, (r4 + 1) % P].reshape(O)
            dc = y[(r4 + 2) // P, (r4 + 2) % P].reshape(O)
            dd = y[(r4 + 3) // P, (r4 + 3) % P].reshape(O)
            ia = idx[r4 // P, r4 % P].reshape(O)
            ib = idx[(r4 + 1) // P, (r4 + 1) % P].reshape(O)
            ic = idx[(r4 + 2) // P, (r4 + 2) % P].reshape(O)
            id_ = idx[(r4 + 3) // P, (r4 + 3) % P].reshape(O)
            for o in range(O):
                s = starts[0, o]
                va, vb, vc, vd = sa[s], sb[s], sc[s], sd[s]
                ja = jb = jc = jd = s
                for j in range(s + 1, s + sizes[0, o]):
                    t = sa[j]
                    tk = (t > va) | (t != t)
                    va = t if tk else va
                    ja = j if tk else ja
                    t = sb[j]
                    tk = (t > vb) | (t != t)
                    vb = t if tk else vb
                    jb = j if tk else jb
                    t = sc[j]
                    tk = (t > vc) | (t != t)
                    vc = t if tk else vc
                    jc = j if tk else jc
                    t = sd[j]
                    tk = (t > vd) | (t != t)
                    vd = t if tk else vd
                    jd = j if tk else jd
                da[o], db[o], dc[o], dd[o] = va, vb, vc, vd
                ia[o], ib[o], ic[o], id_[o] = ja * mult, jb * mult, jc * mult, jd * mult
            r4 += 4
    for r in range(r4, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = v[b, p]
        dst = y[b, p]
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
def _axis_sum(v, y, starts, sizes, r0, r1):
    P, L, Q = v.shape[1], v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = v[b, p]
        dst = y[b, p]
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