"""Kernels: non-overlapping tiles larger than 2x2, and global windows."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_rows import MAX, SUM, _better, _split_row
from ._k_small import _into


# ----------------------------------------------------------------------------------------------
# non-overlapping windows (stride = kernel, no padding or dilation): downsampling
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _tile_pass(src, h, n, kw, op, zero):
    """h[m] = reduction of src[m*kw : m*kw + kw] for m < n, taps outermost (n-long loops):
    the running best in tap order, or the sum from ``zero`` (op SUM)."""
    if op == SUM:
        for m in range(n):
            h[m] = zero + src[m * kw]
        for j in range(1, kw):
            a = src[j:]
            for m in range(n):
                h[m] += a[m * kw]
    else:
        for m in range(n):
            h[m] = src[m * kw]
        for j in range(1, kw):
            a = src[j:]
            for m in range(n):
                v = a[m * kw]
                bv = h[m]
                h[m] = v if _better(v, bv, op) else bv


@njit(cache=_CACHE, nogil=True)
def _tiles_cf(x, y, kh, kw, op, div, r0, r1):
    """Max/min, or the average (op SUM, divided by div[0]), of kh x kw tiles (stride = kernel,
    no padding, every window inside), values only, one plane per work item. Each input row
    first reduces its kw-wide tiles (with W == OW*kw the plane is one flat row of tiles: kw
    long loops instead of a short loop per tap and output row), then each output row combines
    its kh rows in order: row-major order for max/min, so their results are exact. Sums add
    every tap into the output row in row-major order from 0, as every average kernel does (a
    window's sum must not depend on the kernel path: a chunked call must equal a whole one)."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    zero = div[0] * 0
    if op == SUM:
        for i in range(r0, r1):
            b = i // D
            d = i - b * D
            for oh in range(OH):
                o = y[b, d, oh]
                _tile_pass(x[b, d, oh * kh], o, OW, kw, op, zero)
                for ii in range(1, kh):
                    row = x[b, d, oh * kh + ii]
                    for j in range(kw):
                        a = row[j:]
                        for q in range(OW):
                            o[q] += a[q * kw]
                for q in range(OW):
                    o[q] = o[q] / div[0]
        return
    rows = OH * kh
    hf = np.empty(rows * OW, dtype=y.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        if W == OW * kw:
            _tile_pass(x[b, d].reshape(H * W), hf, rows * OW, kw, op, zero)
        else:
            for r in range(rows):
                _tile_pass(x[b, d, r], hf[r * OW:], OW, kw, op, zero)
        for oh in range(OH):
            o = y[b, d, oh]
            for ii in range(kh):
                _into(o, hf[(oh * kh + ii) * OW:], ii == 0, op, False)
            if op == SUM:
                for q in range(OW):
                    o[q] = o[q] / div[0]


@njit(cache=_CACHE, nogil=True)
def _boxes_sum_cf(x, y, kd, kh, kw, div, r0, r1):
    """The average (the sum divided by div[0]) of kd x kh x kw boxes, kd > 1 (stride = kernel,
    no padding or dilation, every window inside; _tiles_cf is the kd = 1 case), one output row
    per work item. Every tap is added into the output row in row-major order (depth, height,
    width) from 0, as every average kernel does; each tap row's tiles in kw loops over the
    outputs (_tile_pass's order)."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    zero = div[0] * 0
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        o = y[b, od, oh]
        _tile_pass(x[b, od * kd, oh * kh], o, OW, kw, SUM, zero)
        for i in range(kd):
            for ii in range(kh):
                if i == 0 and ii == 0:
                    continue
                row = x[b, od * kd + i, oh * kh + ii]
                for q in range(OW):
                    t = o[q]
                    for j in range(q * kw, q * kw + kw):
                        t += row[j]
                    o[q] = t
        for q in range(OW):
            o[q] = o[q] / div[0]


@njit(cache=_CACHE, nogil=True)
def _tiles_arg_cf(x, y, arg, kh, kw, op, r0, r1):
    """_tiles_cf for max/min with the window-local argmax (tap i*kw + j): each row's tile
    winner and its column first, then the rows in order, as the row-major scan picks them.
    (A tap-outer loop like _tiles_cf's, with two store streams, ran 1.7x slower than this.)"""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    rows = OH * kh
    M = rows * OW
    hf = np.empty(M, dtype=y.dtype)
    hj = np.empty(M, dtype=arg.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        for r in range(rows):                 # each tile of each row, scanned in order
            row = x[b, d, r]
            h = hf[r * OW:]
            hc = hj[r * OW:]
            for q in range(OW):
                s = row[q * kw:]
                bv = s[0]
                bj = 0
                for j in range(1, kw):
                    v = s[j]
                    tk = _better(v, bv, op)
                    bv = v if tk else bv
                    bj = j if tk else bj
                h[q] = bv
                hc[q] = bj
        for oh in range(OH):
            o = y[b, d, oh]
            a = arg[b, d, oh]
            h = hf[oh * kh * OW:]
            hc = hj[oh * kh * OW:]
            for q in range(OW):
                o[q] = h[q]
                a[q] = hc[q]
            for ii in range(1, kh):
                h = hf[(oh * kh + ii) * OW:]
                hc = hj[(oh * kh + ii) * OW:]
                base = ii * kw
                for q in range(OW):
                    v = h[q]
                    bv = o[q]
                    tk = _better(v, bv, op)
                    o[q] = v if tk else bv
                    a[q] = (base + hc[q]) if tk else a[q]


@njit(cache=_CACHE, nogil=True)
def _tiles_back_cf(dy, dx, kh, kw, div, r0, r1):
    """Average backward of non-overlapping tiles: every input of a tile gets its dy / div[0]
    (in dy's dtype, as PyTorch divides); inputs outside every tile get 0. One write per
    input, a plane per work item."""
    B, D, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        for r in range(H):
            out = dx[b, d, r]
            oh = r // kh
            if oh >= OH:
                for c in range(W):
                    out[c] = 0
                continue
            g = dy[b, d, oh]
            for q in range(OW):
                share = g[q] / div[0]
                seg = out[q * kw:]
                for j in range(kw):
                    seg[j] = share
            for c in range(OW * kw, W):
                out[c] = 0


@njit(cache=_CACHE, nogil=True)
def _boxes_back_cf(dy, dx, kd, kh, kw, div, r0, r1):
    """_tiles_back_cf for kd x kh x kw boxes, kd > 1: every input of a box gets its dy /
    div[0], inputs outside every box 0; one input row per work item."""
    B, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    for i in range(r0, r1):
        b, d, r = _split_row(i, D, H)
        out = dx[b, d, r]
        od = d // kd
        oh = r // kh
        if od >= OD or oh >= OH:
            for c in range(W):
                out[c] = 0
            continue
        g = dy[b, od, oh]
        for q in range(OW):
            share = g[q] / div[0]
            seg = out[q * kw:]
            for j in range(kw):
                seg[j] = share
        for c in range(OW * kw, W):
            out[c] = 0


# ----------------------------------------------------------------------------------------------
# global windows (one window covering each whole channels-first plane)
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _global_best_cf(x, y, arg, op, with_arg, r0, r1):
    """Best of each whole plane x[b] (B, P): y[b], and with ``with_arg`` its flat position (the
    window-local tap of a window that is the plane). Sixteen lanes scan positions i = j mod 16
    in order (a loop LLVM vectorizes), each keeping its first best / last NaN and where; the
    lanes then combine by (value, position) into exactly the sequential scan's winner: the
    largest value at its smallest position, or the NaN at the largest position."""
    P = x.shape[1]
    L = 16
    bv = np.empty(L, dtype=x.dtype)
    bi = np.empty(L, dtype=np.int64)
    for b in range(r0, r1):
        row = x[b]
        if P < 2 * L:
            v0 = row[0]
            i0 = 0
            for i in range(1, P):
                v = row[i]
                if _better(v, v0, op):
                    v0 = v
                    i0 = i
        else:
            for j in range(L):
                bv[j] = row[j]
                bi[j] = j
            n = P - P % L
            for i in range(L, n, L):
                for j in range(L):
                    v = row[i + j]
                    tk = _better(v, bv[j], op)
                    bv[j] = v if tk else bv[j]
                    bi[j] = (i + j) if tk else bi[j]
            for i in range(n, P):                 # the tail joins lanes 0 .. P - n - 1
                v = row[i]
                if _better(v, bv[i - n], op):
                    bv[i - n] = v
                    bi[i - n] = i
            v0 = bv[0]
            i0 = bi[0]
            for j in range(1, L):
                v = bv[j]
                i = bi[j]
                if v != v:
                    take = v0 == v0 or i > i0
                elif v0 != v0:
                    take = False
                elif op == MAX:
                    take = v > v0 or (v == v0 and i < i0)
                else:
                    take = v < v0 or (v == v0 and i < i0)
                if take:
                    v0 = v
                    i0 = i
        y[b] = v0
        if with_arg:
            arg[b] = i0


@njit(cache=_CACHE, nogil=True)
def _global_sum_cf(x, y, div, r0, r1):
    """Sum of each whole plane (float dtypes) in order from 0, as every average kernel sums a
    window (a window's sum must not depend on the kernel path), divided by div[0]. Four planes
    at a time: four independent sums keep the adder busy, each in its own sequential order."""
    P = x.shape[1]
    b = r0
    while b + 4 <= r1:
        x0, x1, x2, x3 = x[b], x[b + 1], x[b + 2], x[b + 3]
        s0 = div[0] - div[0]
        s1 = div[0] - div[0]
        s2 = div[0] - div[0]
        s3 = div[0] - div[0]
        for i in range(P):
            s0 += x0[i]
            s1 += x1[i]
            s2 += x2[i]
            s3 += x3[i]
        y[b] = s0 / div[0]
        y[b + 1] = s1 / div[0]
        y[b + 2] = s2 / div[0]
        y[b + 3] = s3 / div[0]
        b += 4
    for b in range(b, r1):
        row = x[b]
        s0 = div[0] - div[0]
        for i in range(P):
            s0 += row[i]
        y[b] = s0 / div[0]
