"""Kernels: channels-last arrays (N, D, H, W, C), vectorized over C."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_rows import MAX, _first_in, _int_div, _row_sum, _split_row


# ----------------------------------------------------------------------------------------------
# channels-last: x (N, D, H, W, C), outputs (N, OD, OH, OW, C); vectorized over C
# ----------------------------------------------------------------------------------------------

# The max (min): each output row (n, od, oh) is one flat ``OW*C`` vector, and so is each input
# row a tap row reads (one view per tap row; the taps of each output column are slices of it),
# with the select written out per ``op`` and inlined. Taps still run in row-major order for each
# output, so ties and NaN are as every other kernel's. One thread, against the per-output loop
# over ``x[n, zd, zh, zw]`` views with the generic ``_row_best``: 0.60-0.80x the time on values,
# 0.63-0.71x with indices (3x3 s2 and s1, 8x8 tiles; 64 and 192 channels). The average keeps its
# per-output accumulator and its out-of-line ``_row_sum``: on the flat row accumulator it ran
# 1.4x (out-of-line) and 2.4x (inlined) slower.

@njit(cache=_CACHE, inline="always")
def _cl_best_into(o, src, C, op):
    if op == MAX:
        for c in range(C):
            v = src[c]
            b = o[c]
            o[c] = v if (v > b) | (v != v) else b
    else:
        for c in range(C):
            v = src[c]
            b = o[c]
            o[c] = v if (v < b) | (v != v) else b


@njit(cache=_CACHE, inline="always")
def _cl_best_arg_into(o, a, src, C, op, t):
    if op == MAX:
        for c in range(C):
            v = src[c]
            b = o[c]
            take = (v > b) | (v != v)
            o[c] = v if take else b
            a[c] = t if take else a[c]
    else:
        for c in range(C):
            v = src[c]
            b = o[c]
            take = (v < b) | (v != v)
            o[c] = v if take else b
            a[c] = t if take else a[c]


@njit(cache=_CACHE, nogil=True)
def _sep_cl(x, y, geo, op, ident, nchunk, r0, r1):
    """Max/min, values only, of 2-d windows (depth untouched: kd = sd = 1, no depth padding),
    separably: first each input row's maxima along W (its kw taps in order, one C vector each),
    then each output's kh rows of them in order. Rows first, then the rows in order, is
    row-major order, so the first best / last NaN rule holds exactly (as in the 3x3 kernels).
    kw + kh vector selects per output instead of kw * kh. Work item i: plane i // nchunk, a
    chunk of its output rows (the rows of maxima it needs are made again by each chunk)."""
    N, D, H, W, C = x.shape
    OH, OW = y.shape[2], y.shape[3]
    kh, kw, sh, sw = geo[1], geo[2], geo[4], geo[5]
    dh, dw, ph, pw = geo[7], geo[8], geo[10], geo[11]
    rows_per = (OH + nchunk - 1) // nchunk
    hb = np.empty((H, OW * C), dtype=y.dtype)
    for i in range(r0, r1):
        plane = i // nchunk
        n = plane // D
        d = plane - n * D
        oh0 = (i - plane * nchunk) * rows_per
        oh1 = min(OH, oh0 + rows_per)
        if oh0 >= oh1:
            continue
        z0 = max(0, oh0 * sh - ph)
        z1 = min(H, (oh1 - 1) * sh - ph + (kh - 1) * dh + 1)
        for z in range(z0, z1):
            row = x[n, d, z].reshape(W * C)
            h = hb[z]
            h[:] = ident
            for ow in range(OW):
                o = h[ow * C:]
                for l in range(kw):
                    zw = ow * sw - pw + l * dw
                    if zw >= 0 and zw < W:
                        _cl_best_into(o, row[zw * C:], C, op)
        for oh in range(oh0, oh1):
            out = y[n, d, oh].reshape(OW * C)
            out[:] = ident
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh >= 0 and zh < H:
                    _cl_best_into(out, hb[zh], OW * C, op)


@njit(cache=_CACHE, nogil=True)
def _best_cl(x, y, arg, geo, op, with_arg, ident, r0, r1):
    N, D, H, W, C = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        out = y[n, od, oh].reshape(OW * C)
        out[:] = ident
        ar = arg[n, od, oh].reshape(OW * C) if with_arg else arg[0, 0, 0].reshape(-1)
        if with_arg:
            fi = _first_in(od, sd, pd, dd, kd, D)
            fj = _first_in(oh, sh, ph, dh, kh, H)
            for ow in range(OW):
                fl = _first_in(ow, sw, pw, dw, kw, W)
                ar[ow * C:(ow + 1) * C] = ((fi * kh + fj) * kw + fl
                                           if (fi >= 0 and fj >= 0 and fl >= 0) else -1)
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                row = x[n, zd, zh].reshape(W * C)
                for ow in range(OW):
                    o = out[ow * C:]
                    for l in range(kw):
                        zw = ow * sw - pw + l * dw
                        if zw < 0 or zw >= W:
                            continue
                        if with_arg:
                            _cl_best_arg_into(o, ar[ow * C:], row[zw * C:], C, op,
                                              (i * kh + j) * kw + l)
                        else:
                            _cl_best_into(o, row[zw * C:], C, op)


@njit(cache=_CACHE, inline="always")
def _avg_cl_rows(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    """The averages of rows r0 .. r1-1 -> whether one was NaN (one compare per output as it is
    written: nan_policy="omit"'s check, dead code when unused)."""
    N, D, H, W, C = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    acc = np.empty(C, dtype=acc_proto.dtype)
    bad = False
    # a 3x3 stride-1 window wholly inside: its nine taps summed in registers, in the same
    # order from 0 as the loop below (Inception's 32x35x35x192 branch: 4.7-5.0 -> 3.2-3.8 ms)
    k3 = (kd == 1) & (kh == 3) & (kw == 3) & (sh == 1) & (sw == 1) & (dh == 1) & (dw == 1) & \
        (is_int == 0)
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        zd0, zh0 = od * sd - pd, oh - ph
        inside = k3 and zd0 >= 0 and zd0 < D and zh0 >= 0 and zh0 + 2 < H
        for ow in range(OW):
            zw0 = ow - pw
            if inside and zw0 >= 0 and zw0 + 2 < W:
                d = override if override != 0 else cd[od] * ch[oh] * cw[ow]
                u, m, w = x[n, zd0, zh0], x[n, zd0, zh0 + 1], x[n, zd0, zh0 + 2]
                u0, u1, u2 = u[zw0], u[zw0 + 1], u[zw0 + 2]
                m0, m1, m2 = m[zw0], m[zw0 + 1], m[zw0 + 2]
                w0, w1, w2 = w[zw0], w[zw0 + 1], w[zw0 + 2]
                out = y[n, od, oh, ow]
                zero = acc_proto[0]
                for c in range(C):
                    v = ((((((((zero + u0[c]) + u1[c]) + u2[c]) + m0[c]) + m1[c]) + m2[c]) +
                          w0[c]) + w1[c]) + w2[c]
                    v = v / d
                    bad |= v != v
                    out[c] = v
                continue
            acc[:] = 0
            for i in range(kd):
                zd = od * sd - pd + i * dd
                if zd < 0 or zd >= D:
                    continue
                for j in range(kh):
                    zh = oh * sh - ph + j * dh
                    if zh < 0 or zh >= H:
                        continue
                    for l in range(kw):
                        zw = ow * sw - pw + l * dw
                        if zw >= 0 and zw < W:
                            _row_sum(acc, x[n, zd, zh, zw], C, 1)
            d = override if override != 0 else cd[od] * ch[oh] * cw[ow]
            out = y[n, od, oh, ow]
            for c in range(C):
                if is_int:
                    out[c] = _int_div(acc[c], d, is_int)
                else:
                    v = acc[c] / d
                    bad |= v != v
                    out[c] = v
    return bad


@njit(cache=_CACHE, nogil=True)
def _avg_cl(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    _avg_cl_rows(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1)


@njit(cache=_CACHE, nogil=True)
def _avg_cl_checked(x, y, geo, cd, ch, cw, override, acc_proto, is_int, nan, r0, r1):
    """_avg_cl with nan_policy="omit"'s NaN check in its division loop (_checked_run's scan of
    the output cost 1.11-1.15x on the 3x3 stride-2 average of 32 channels)."""
    if _avg_cl_rows(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1):
        nan[0] = True


@njit(cache=_CACHE, nogil=True)
def _back_cl(dy, arg, dx, geo, with_arg, cs, r0, r1):
    """Scatter dy (max: to the recorded tap only) over channel blocks of ``cs`` channels: each
    block belongs to one thread, summed in a fixed order."""
    N, D, H, W, C = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    nb = (C + cs - 1) // cs
    for p in range(r0, r1):
        n = p // nb
        c0 = (p % nb) * cs
        c1 = min(C, c0 + cs)
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    g = dy[n, od, oh, ow]
                    for i in range(kd):
                        zd = od * sd - pd + i * dd
                        if zd < 0 or zd >= D:
                            continue
                        for j in range(kh):
                            zh = oh * sh - ph + j * dh
                            if zh < 0 or zh >= H:
                                continue
                            for l in range(kw):
                                zw = ow * sw - pw + l * dw
                                if zw < 0 or zw >= W:
                                    continue
                                dst = dx[n, zd, zh, zw]
                                if with_arg:
                                    t = (i * kh + j) * kw + l
                                    a = arg[n, od, oh, ow]
                                    for c in range(c0, c1):
                                        dst[c] += g[c] if a[c] == t else 0
                                else:
                                    for c in range(c0, c1):
                                        dst[c] += g[c]


@njit(cache=_CACHE, nogil=True)
def _tiles_back_cl(dy, dx, kd, kh, kw, div, r0, r1):
    """Average backward of non-overlapping channels-last boxes (global windows included): each
    input gets its box's dy / div[0], inputs outside every box 0, written once, input rows
    r0 .. r1-1 of N*D*H, as _boxes_back_cf does channels-first. (The scatter it replaces
    zeroed dx first and added into it: 9.8 ms for the ResNet-50 head's 32x7x7x2048.)"""
    N, D, H, W, C = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    sh = np.empty(OW * C, dtype=dx.dtype)
    for r in range(r0, r1):
        n, d, h = _split_row(r, D, H)
        out = dx[n, d, h].reshape(W * C)
        od, oh = d // kd, h // kh
        if od >= OD or oh >= OH:
            out[:] = 0
            continue
        g = dy[n, od, oh].reshape(OW * C)
        for q in range(OW * C):
            sh[q] = g[q] / div[0]
        for ow in range(OW):
            s = sh[ow * C:]
            for j in range(kw):
                o = out[(ow * kw + j) * C:]
                for c in range(C):
                    o[c] = s[c]
        out[OW * kw * C:] = 0
