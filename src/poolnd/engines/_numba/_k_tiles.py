"""Kernels: non-overlapping tiles larger than 2x2, and global windows."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_half import _widen_k
from ._k_rows import MAX, SUM, _beats, _better, _scan4, _split_row
from ._k_small import _into


# ----------------------------------------------------------------------------------------------
# non-overlapping windows (stride = kernel, no padding or dilation): downsampling
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _tile_pass(src, h, n, kw, op, zero):
    """h[m] = reduction of src[m*kw : m*kw + kw] for m < n, taps outermost (n-long loops):
    the running best in tap order, or the sum from ``zero`` (op SUM). Tiles 4 and 8 wide:
    each output's taps written out, in the same order (LLVM then loads them as one interleaved
    group, vectorized across the outputs: 8-wide sums of 16.7M float32 on one thread took 2.7
    ms against 21; 16x64x112x112 8x8 max tiles 9.1 -> 3.0 ms, two threads)."""
    if op == SUM and kw == 8:
        for m in range(n):
            c = 8 * m
            h[m] = (((((((zero + src[c]) + src[c + 1]) + src[c + 2]) + src[c + 3]) +
                       src[c + 4]) + src[c + 5]) + src[c + 6]) + src[c + 7]
    elif op == SUM and kw == 4:
        for m in range(n):
            c = 4 * m
            h[m] = (((zero + src[c]) + src[c + 1]) + src[c + 2]) + src[c + 3]
    elif kw == 8:                       # max/min, the same written out: the best in order
        for m in range(n):
            c = 8 * m
            t = src[c]
            t = _pick_best(src[c + 1], t, op)
            t = _pick_best(src[c + 2], t, op)
            t = _pick_best(src[c + 3], t, op)
            t = _pick_best(src[c + 4], t, op)
            t = _pick_best(src[c + 5], t, op)
            t = _pick_best(src[c + 6], t, op)
            h[m] = _pick_best(src[c + 7], t, op)
    elif kw == 4:
        for m in range(n):
            c = 4 * m
            t = _pick_best(src[c + 1], src[c], op)
            t = _pick_best(src[c + 2], t, op)
            h[m] = _pick_best(src[c + 3], t, op)
    elif op == SUM:
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


@njit(cache=_CACHE, inline="always")
def _pick_best(v, t, op):
    """v if it replaces the running best t (``_better``), else t."""
    return v if _better(v, t, op) else t


@njit(cache=_CACHE, inline="always")
def _tile_add(row, o, n, kw):
    """o[m] += row[m*kw + j] for j = 0 .. kw-1 in order, m < n: for tiles 4 and 8 wide each
    output's taps written out (vectorized as interleaved loads, as in _tile_pass: adaptive avg
    56->7 4.5 -> 2.2 ms); for wider tiles or short rows the kw taps in a register loop, in the
    same order; else a loop over m per tap. (One thread, same-process A/B before the written-out
    forms: the register loop took 0.70x the time on 8x8 tiles of 56-wide rows, 0.45x on 16x16
    of 64-wide rows, but 1.1-1.35x on 3x3 tiles of rows 14 outputs and longer.)"""
    if kw == 8:                         # written out: an interleaved, vectorized load
        for m in range(n):
            c = 8 * m
            o[m] = (((((((o[m] + row[c]) + row[c + 1]) + row[c + 2]) + row[c + 3]) +
                       row[c + 4]) + row[c + 5]) + row[c + 6]) + row[c + 7]
    elif kw == 4:
        for m in range(n):
            c = 4 * m
            o[m] = (((o[m] + row[c]) + row[c + 1]) + row[c + 2]) + row[c + 3]
    elif kw > 8 or n <= 8:
        for m in range(n):
            t = o[m]
            for j in range(m * kw, m * kw + kw):
                t += row[j]
            o[m] = t
    else:
        for j in range(kw):
            a = row[j:]
            for m in range(n):
                o[m] += a[m * kw]


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
    zero = div[0] - div[0]           # in div's dtype (div[0] * 0 is float64)
    if op == SUM:
        for i in range(r0, r1):
            b = i // D
            d = i - b * D
            for oh in range(OH):
                o = y[b, d, oh]
                _tile_pass(x[b, d, oh * kh], o, OW, kw, op, zero)
                for ii in range(1, kh):
                    row = x[b, d, oh * kh + ii]
                    _tile_add(row, o, OW, kw)
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
    zero = div[0] - div[0]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        o = y[b, od, oh]
        _tile_pass(x[b, od * kd, oh * kh], o, OW, kw, SUM, zero)
        for i in range(kd):
            for ii in range(kh):
                if i == 0 and ii == 0:
                    continue
                _tile_add(x[b, od * kd + i, oh * kh + ii], o, OW, kw)
        for q in range(OW):
            o[q] = o[q] / div[0]


@njit(cache=_CACHE, nogil=True)
def _tiles_arg_cf(x, y, arg, kh, kw, op, r0, r1):
    """_tiles_cf for max/min with the window-local argmax (tap t*kw + j), columns first: down
    each column of a tile row, the best of its kh taps and their row (whole input rows at a
    time, vectorized along W), then across each tile's kw columns (``_beats``). The
    row-major scan's winner is the last NaN if there is one, else the first best: per column
    the last NaN or the first best, then across the columns the NaN with the largest tap, or
    the best value with the smallest tap, is the same element, bit for bit. (The row-first
    order, a latency-bound scan of kw taps per tile and row, took 9.1 ms against these 3.7 for
    16x64x112x112 float32 8x8 tiles on two threads.)"""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    n = OW * kw                             # the columns the tiles cover
    cv = np.empty(n, dtype=y.dtype)         # per column: the best of the rows so far
    ct = np.empty(n, dtype=arg.dtype)       # ... and its row in the tile, times kw
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        for oh in range(OH):
            row = x[b, d, oh * kh]
            for c in range(n):
                cv[c] = row[c]
                ct[c] = 0
            for t in range(1, kh):
                row = x[b, d, oh * kh + t]
                tk_ = t * kw
                for c in range(n):
                    v = row[c]
                    bv = cv[c]
                    tk = _better(v, bv, op)
                    cv[c] = v if tk else bv
                    ct[c] = tk_ if tk else ct[c]
            o = y[b, d, oh]
            a = arg[b, d, oh]
            for q in range(OW):
                o[q] = cv[q * kw]
                a[q] = ct[q * kw]
            for j in range(1, kw):              # tiles inner: independent select chains
                for q in range(OW):
                    v = cv[q * kw + j]
                    t = ct[q * kw + j] + j
                    bv = o[q]
                    bt = a[q]
                    w = _beats(v, t, bv, bt, op)
                    o[q] = v if w else bv
                    a[q] = t if w else bt


@njit(cache=_CACHE, nogil=True)
def _boxes_back_cf(dy, dx, kd, kh, kw, div, r0, r1):
    """Average backward of non-overlapping kd x kh x kw boxes (tiles: kd = 1): every input of
    a box gets its dy / div[0] (in dy's dtype, as PyTorch divides); inputs outside every box
    get 0. One write per input, an input row per work item."""
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

#: planes smaller than this scan four at a time in _global_best_cf (one thread, same-process
#: A/B against the 16 lanes: 9, 25, 49 elements 0.61x, 0.36x, 0.80x the time; at 100 even)
SMALL_PLANE = 64


@njit(cache=_CACHE, nogil=True)
def _global_best_cf(x, y, arg, op, with_arg, r0, r1):
    """Best of each whole plane x[b] (B, P): y[b], and with ``with_arg`` its flat position (the
    window-local tap of a window that is the plane). Sixteen lanes scan positions i = j mod 16
    in order (a loop LLVM vectorizes), each keeping its first best / last NaN and where; the
    lanes then combine by (value, position) into exactly the sequential scan's winner: the
    largest value at its smallest position, or the NaN at the largest position. Planes of
    fewer than SMALL_PLANE elements are scanned four at a time instead, each in order: four
    independent select chains (one chain and the lanes' combine both cost more there)."""
    P = x.shape[1]
    L = 16
    bv = np.empty(L, dtype=x.dtype)
    bi = np.empty(L, dtype=np.int64)
    small = P < SMALL_PLANE
    b0 = r0
    if small:                         # small planes: four scans side by side
        while not with_arg and b0 + 8 <= r1:     # values only: eight, no positions
            v0, v1, v2, v3 = x[b0, 0], x[b0 + 1, 0], x[b0 + 2, 0], x[b0 + 3, 0]
            v4, v5, v6, v7 = x[b0 + 4, 0], x[b0 + 5, 0], x[b0 + 6, 0], x[b0 + 7, 0]
            for i in range(1, P):
                v = x[b0, i]
                v0 = v if _better(v, v0, op) else v0
                v = x[b0 + 1, i]
                v1 = v if _better(v, v1, op) else v1
                v = x[b0 + 2, i]
                v2 = v if _better(v, v2, op) else v2
                v = x[b0 + 3, i]
                v3 = v if _better(v, v3, op) else v3
                v = x[b0 + 4, i]
                v4 = v if _better(v, v4, op) else v4
                v = x[b0 + 5, i]
                v5 = v if _better(v, v5, op) else v5
                v = x[b0 + 6, i]
                v6 = v if _better(v, v6, op) else v6
                v = x[b0 + 7, i]
                v7 = v if _better(v, v7, op) else v7
            y[b0], y[b0 + 1], y[b0 + 2], y[b0 + 3] = v0, v1, v2, v3
            y[b0 + 4], y[b0 + 5], y[b0 + 6], y[b0 + 7] = v4, v5, v6, v7
            b0 += 8
        while b0 + 4 <= r1:
            va, vb, vc, vd, ia, ib, ic, id_ = _scan4(x[b0], x[b0 + 1], x[b0 + 2], x[b0 + 3],
                                                     P, op)
            y[b0], y[b0 + 1], y[b0 + 2], y[b0 + 3] = va, vb, vc, vd
            if with_arg:
                arg[b0], arg[b0 + 1], arg[b0 + 2], arg[b0 + 3] = ia, ib, ic, id_
            b0 += 4
    for b in range(b0, r1):
        row = x[b]
        if small:
            v0 = row[0]
            i0 = 0
            for i in range(1, P):
                v = row[i]
                tk = _better(v, v0, op)
                v0 = v if tk else v0
                i0 = i if tk else i0
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
    window (a window's sum must not depend on the kernel path), divided by div[0]. Eight
    planes at a time: eight independent sums keep the adders busy, each in its own sequential
    order (four at a time took 1.5x the time on 7x7 planes, one thread)."""
    P = x.shape[1]
    zero = div[0] - div[0]
    b = r0
    while b + 8 <= r1:
        x0, x1, x2, x3 = x[b], x[b + 1], x[b + 2], x[b + 3]
        x4, x5, x6, x7 = x[b + 4], x[b + 5], x[b + 6], x[b + 7]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
        for i in range(P):
            s0 += x0[i]
            s1 += x1[i]
            s2 += x2[i]
            s3 += x3[i]
            s4 += x4[i]
            s5 += x5[i]
            s6 += x6[i]
            s7 += x7[i]
        y[b] = s0 / div[0]
        y[b + 1] = s1 / div[0]
        y[b + 2] = s2 / div[0]
        y[b + 3] = s3 / div[0]
        y[b + 4] = s4 / div[0]
        y[b + 5] = s5 / div[0]
        y[b + 6] = s6 / div[0]
        y[b + 7] = s7 / div[0]
        b += 8
    for b in range(b, r1):
        row = x[b]
        s0 = zero
        for i in range(P):
            s0 += row[i]
        y[b] = s0 / div[0]


# ----------------------------------------------------------------------------------------------
# float16 averages over tiles and whole planes: widened a block of planes at a time
# ----------------------------------------------------------------------------------------------

#: float32 elements of the per-thread scratch a block of float16 planes is widened into (256 KB:
#: it stays in cache between the widening and the sum)
HALF_BLOCK = 1 << 16


@njit(cache=_CACHE, nogil=True)
def _global_sum_half(xh, y, div, keep_nan, r0, r1):
    """_global_sum_cf of float16 planes: ``xh`` their bits (uint16, (B, P)), widened into a
    scratch (_k_half's conversion) a block of planes at a time, each block then summed by
    _global_sum_cf itself: the same sums, without writing and reading back the whole widened
    input (a ResNet-50 head's 3.2M values: a widening pass cost more than the sum)."""
    P = xh.shape[1]
    m = max(8, HALF_BLOCK // max(P, 1))
    s = np.empty(m * P, dtype=np.float32)
    sb = s.view(np.uint32)
    xf = xh.reshape(xh.size)
    for b0 in range(r0, r1, m):
        n = min(m, r1 - b0)
        _widen_k(xf[b0 * P:(b0 + n) * P], sb, keep_nan, 0, n * P)
        _global_sum_cf(s[:n * P].reshape(n, P), y[b0:b0 + n], div, 0, n)


@njit(cache=_CACHE, nogil=True)
def _tiles_sum_half(xh, y, kh, kw, div, keep_nan, r0, r1):
    """_tiles_cf's average (op SUM) of float16 planes, as _global_sum_half: ``xh`` the bits
    (uint16, (B, D, H, W)), work items the B*D planes, each block widened then averaged by
    _tiles_cf itself."""
    B, D, H, W = xh.shape
    OH, OW = y.shape[2], y.shape[3]
    P = H * W
    m = max(1, HALF_BLOCK // max(P, 1))
    s = np.empty(m * P, dtype=np.float32)
    sb = s.view(np.uint32)
    xf = xh.reshape(xh.size)
    y4 = y.reshape(B * D, 1, OH, OW)
    for i0 in range(r0, r1, m):
        n = min(m, r1 - i0)
        _widen_k(xf[i0 * P:(i0 + n) * P], sb, keep_nan, 0, n * P)
        _tiles_cf(s[:n * P].reshape(n, 1, H, W), y4[i0:i0 + n], kh, kw, SUM, div, 0, n)
