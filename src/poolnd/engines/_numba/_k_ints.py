"""Kernels: integer (image) data over non-overlapping boxes, rows first.

A box pool (stride = kernel, no padding or dilation, every window inside) of uint8 or uint16
images is what a pyramid level is. For integers the order of a window's taps does not change
its result: integer sums are exact in any order (in an accumulator wide enough for the box),
and a max or min has no NaN and no signed zeros to choose between. So these kernels take the
order that vectorizes best: each output row first combines its ``kd * kh`` input rows
element by element (contiguous, full-width vector loops: one temporary row, in L1), then
reduces each box's ``kw`` columns of that row. Floats keep the row-major order of the other
kernels (a float sum's rounding, a NaN's payload and the sign of a zero depend on it).

Measured on one thread (64x1024x1024 uint8): the 4x4 mean 119 -> 8.8 ms and the 4x4 max
78 -> 6.3 ms against the generic tiles kernel; the 2x2 mean 13.5 -> 9.2 ms against the
narrow-lane 2x2 kernel these replace, which summed each box's four values in place.
"""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_rows import MIN, _split_row


@njit(cache=_CACHE, inline="always")
def _pick(u, v, minimum):
    """The larger (smaller) of two integers, branch-free in ``minimum``."""
    return u if ((u > v) & (not minimum)) | ((u < v) & minimum) else v


@njit(cache=_CACHE, inline="always")
def _cols_best(src, o, OW, kw, minimum):
    """o[q] = max (min) of src[q*kw : q*kw + kw] for q < OW; literal strides for kw 2 and 4
    (LLVM then vectorizes their interleaved loads)."""
    if kw == 2:
        for q in range(OW):
            o[q] = _pick(src[2 * q + 1], src[2 * q], minimum)
    elif kw == 4:
        for q in range(OW):
            a = _pick(src[4 * q + 1], src[4 * q], minimum)
            c = _pick(src[4 * q + 3], src[4 * q + 2], minimum)
            o[q] = _pick(c, a, minimum)
    else:
        for q in range(OW):
            a = src[q * kw]
            for j in range(1, kw):
                a = _pick(src[q * kw + j], a, minimum)
            o[q] = a


@njit(cache=_CACHE, inline="always")
def _rows2_best(a, c, o, OW, kw, minimum):
    """o[q] = max (min) of the 2 x kw box at q of rows a and c, in one pass (2x2: no
    temporary row)."""
    if kw == 2:
        for q in range(OW):
            o[q] = _pick(_pick(a[2 * q + 1], a[2 * q], minimum),
                         _pick(c[2 * q + 1], c[2 * q], minimum), minimum)
    else:
        for q in range(OW):
            m = _pick(a[q * kw], c[q * kw], minimum)
            for j in range(1, kw):
                m = _pick(_pick(a[q * kw + j], c[q * kw + j], minimum), m, minimum)
            o[q] = m


@njit(cache=_CACHE, nogil=True)
def _boxes_int_best(x, y, kd, kh, kw, op, r0, r1):
    """Max/min (op MAX/MIN) of integer ``kd x kh x kw`` boxes, output rows r0 .. r1-1 of
    x (B, D, H, W) -> y (B, OD, OH, OW). Two rows (2x2) go straight into the output; the
    rows of one slice otherwise two at a time, one pass over the temporary row per pair (one
    thread, against one row per pass: 2x2 uint8 0.91x, 4x4 0.62x, uint16 0.69x and 0.78x)."""
    minimum = op == MIN
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    n = OW * kw
    tr = np.empty(n, dtype=x.dtype)
    nrows = kd * kh
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        if nrows == 1:
            _cols_best(x[b, od, oh], y[b, od, oh], OW, kw, minimum)
            continue
        if nrows == 2:
            if kd == 2:
                ra, rc = x[b, 2 * od, oh], x[b, 2 * od + 1, oh]
            else:
                ra, rc = x[b, od, 2 * oh], x[b, od, 2 * oh + 1]
            _rows2_best(ra, rc, y[b, od, oh], OW, kw, minimum)
            continue
        if kd > 1:                        # one row per pass (pairs of rows of two slices
            first = True                  # took 2.2x the time on 2x2x2 uint8, one thread)
            for i in range(kd):
                for j in range(kh):
                    row = x[b, od * kd + i, oh * kh + j]
                    if first:
                        for w in range(n):
                            tr[w] = row[w]
                        first = False
                    else:
                        for w in range(n):
                            tr[w] = _pick(row[w], tr[w], minimum)
            _cols_best(tr, y[b, od, oh], OW, kw, minimum)
            continue
        m = 0
        while m < nrows:
            ra = x[b, od * kd + m // kh, oh * kh + m % kh]
            if m + 1 < nrows:
                rc = x[b, od * kd + (m + 1) // kh, oh * kh + (m + 1) % kh]
                if m == 0:
                    for w in range(n):
                        tr[w] = _pick(rc[w], ra[w], minimum)
                else:
                    for w in range(n):
                        tr[w] = _pick(_pick(rc[w], ra[w], minimum), tr[w], minimum)
                m += 2
            else:
                for w in range(n):
                    tr[w] = _pick(ra[w], tr[w], minimum)
                m += 1
        _cols_best(tr, y[b, od, oh], OW, kw, minimum)


@njit(cache=_CACHE, inline="always")
def _shift_div(s, k, nearest, t):
    """Unsigned ``s`` over ``2**k``: truncated (``s >> k``) or rounded half to even, in the
    accumulator type ``t`` (the bits of ``_int_div``, without a division)."""
    q = t(s >> k)
    if nearest and k > 0:
        rem = t(s - t(q << k))
        half = t(t(1) << (k - 1))
        q = t(q + t((rem > half) | ((rem == half) & (t(q & t(1)) == t(1)))))
    return q


@njit(cache=_CACHE, inline="always")
def _cols_mean(src, o, OW, kw, k, nearest, t):
    """o[q] = the sum of src[q*kw : q*kw + kw] (in ``t``) over ``2**k`` (``_shift_div``)."""
    if kw == 2:
        for q in range(OW):
            o[q] = _shift_div(t(t(src[2 * q]) + t(src[2 * q + 1])), k, nearest, t)
    elif kw == 4:
        for q in range(OW):
            s = t(t(t(src[4 * q]) + t(src[4 * q + 1])) + t(t(src[4 * q + 2]) + t(src[4 * q + 3])))
            o[q] = _shift_div(s, k, nearest, t)
    else:
        for q in range(OW):
            s = t(0)
            for j in range(kw):
                s = t(s + t(src[q * kw + j]))
            o[q] = _shift_div(s, k, nearest, t)


@njit(cache=_CACHE, nogil=True)
def _boxes_umean(x, y, kd, kh, kw, acc, k, nearest, r0, r1):
    """The mean of unsigned integer boxes (uint8, uint16) over a power-of-two divisor
    ``2**k``: summed in ``acc``'s dtype (uint16 for uint8, uint32 for uint16: exact for boxes
    of up to 257 and 65537 taps), then shifted, truncating or half to even. Every step is cast
    back to that dtype (Numba would widen each to int64), so the loops run on narrow vector
    lanes: the generic rows' int64 sum and division ran 7.7x tinybrain's time on uint8."""
    t = acc.dtype.type
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    n = OW * kw
    tr = np.empty(n, dtype=acc.dtype)
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        first = True
        for i in range(kd):
            for j in range(kh):
                row = x[b, od * kd + i, oh * kh + j]
                if first:
                    for w in range(n):
                        tr[w] = t(row[w])
                    first = False
                else:
                    for w in range(n):
                        tr[w] = t(tr[w] + t(row[w]))
        _cols_mean(tr, y[b, od, oh], OW, kw, k, nearest, t)
