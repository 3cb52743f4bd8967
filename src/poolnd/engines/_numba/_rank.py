"""The compiled rank reductions: median, mode, and max/min skipping NaN (nan_policy="omit").

Part of the Numba engine (its ``__init__`` loads it on the first rank call). Kernels are
serial, ``nogil``, cached, take a row range ``[r0, r1)`` and run on the engine's thread pool
(``_pool.run``); none is a parfor.

The rule, as in the reference engine's ``rank_forward``: padded positions never count; a NaN
makes the result NaN at the window's last NaN unless ``omit`` skips NaNs (a window of NaNs only
still gives NaN there); otherwise the reducer picks a value from the kept elements (the lower
median, the mode with the smallest of tied values, the max, the min) and the result is the
first element in scan order that equals it, with that tap as ``arg``. Values are compared with
``<`` and ``==`` only, so every path is exact in every dtype and agrees bit for bit.

How a window is reduced (``_pick``):

- median of 9 (3x3, all inside, no NaN): a 19-exchange selection network (Paeth's); other
  sizes: Wirth's selection (a partial quicksort; only the side holding the rank is kept);
- mode of up to 8 elements (2x2, 2x2x2): compare and count, every element against every other
  (COUNTLESS's idea: a value seen twice in 4 wins); more: an insertion sort (or ``np.sort``
  past 32) and the longest run;
- max, min: one scan.

Which kernel runs is one table, :data:`_KERNELS`, read top to bottom by :func:`rank_forward`.
"""
from __future__ import annotations

__all__ = ["rank_forward"]

import math

import numpy as np
from numba import njit

from ..._geometry import Geometry
from .._common import arg_dtype, identity
from ._compile import _CACHE
from ._k_half import narrow as _narrow, widen as _widen
from ._plan import _dummy, _k2_fast, _tables
from ._threadpool import _pool

MEDIAN, MODE, MAX, MIN = 0, 1, 2, 3
_CODES = {"median": MEDIAN, "mode": MODE, "max": MAX, "min": MIN}


# ----------------------------------------------------------------------------------------------
# one window's kept (non-NaN, inside) values a[0:n] -> the chosen value
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _sort2(a, i, j):
    u, v = a[i], a[j]
    if v < u:
        a[i], a[j] = v, u


@njit(cache=_CACHE)
def _median9(a):
    """The 5th smallest of a[0:9] by Paeth's selection network (19 exchanges; a is
    reordered)."""
    _sort2(a, 1, 2); _sort2(a, 4, 5); _sort2(a, 7, 8)        # noqa: E702
    _sort2(a, 0, 1); _sort2(a, 3, 4); _sort2(a, 6, 7)        # noqa: E702
    _sort2(a, 1, 2); _sort2(a, 4, 5); _sort2(a, 7, 8)        # noqa: E702
    _sort2(a, 0, 3); _sort2(a, 5, 8); _sort2(a, 4, 7)        # noqa: E702
    _sort2(a, 3, 6); _sort2(a, 1, 4); _sort2(a, 2, 5)        # noqa: E702
    _sort2(a, 4, 7); _sort2(a, 4, 2); _sort2(a, 6, 4)        # noqa: E702
    _sort2(a, 4, 2)
    return a[4]


@njit(cache=_CACHE)
def _kth(a, n, k):
    """The k-th smallest (0-based) of a[0:n] by Wirth's selection: partition around a pivot,
    keep only the part that holds position k (a is reordered)."""
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[k]
        i, j = lo, hi
        while True:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(cache=_CACHE)
def _mode_small(a, n):
    """Most frequent of a[0:n] (n <= 8), the smallest of tied values: count each against all."""
    best = a[0]
    best_count = 0
    for i in range(n):
        v = a[i]
        c = 0
        for j in range(n):
            c += a[j] == v
        if c > best_count or (c == best_count and v < best):
            best = v
            best_count = c
    return best


@njit(cache=_CACHE)
def _mode_sorted(a, n):
    """Most frequent of a[0:n], the smallest of tied values: sort, then the first longest run."""
    if n <= 32:
        for i in range(1, n):                  # insertion sort
            v = a[i]
            j = i - 1
            while j >= 0 and v < a[j]:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = v
        s = a
    else:
        s = np.sort(a[:n])
    best = s[0]
    best_count = 0
    run = 0
    for i in range(n):
        run = run + 1 if i > 0 and s[i] == s[i - 1] else 1
        if run > best_count:
            best = s[i]
            best_count = run
    return best


@njit(cache=_CACHE)
def _pick(a, n, mode):
    """The value the reducer ``mode`` picks from a[0:n] (n >= 1; a may be reordered)."""
    if mode == MEDIAN:
        if n == 9:
            return _median9(a)
        return _kth(a, n, (n - 1) // 2)
    if mode == MODE:
        if n <= 8:
            return _mode_small(a, n)
        return _mode_sorted(a, n)
    best = a[0]
    for i in range(1, n):
        v = a[i]
        if (v > best) if mode == MAX else (v < best):
            best = v
    return best


# ----------------------------------------------------------------------------------------------
# straight-line forms for full windows without NaN (no arrays: LLVM keeps them in registers)
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _lohi(u, v):
    return (v, u) if v < u else (u, v)


@njit(cache=_CACHE, inline="always")
def _med9s(p0, p1, p2, p3, p4, p5, p6, p7, p8):
    """The 5th smallest of nine values: Paeth's network on scalars (as :func:`_median9`)."""
    p1, p2 = _lohi(p1, p2); p4, p5 = _lohi(p4, p5); p7, p8 = _lohi(p7, p8)   # noqa: E702
    p0, p1 = _lohi(p0, p1); p3, p4 = _lohi(p3, p4); p6, p7 = _lohi(p6, p7)   # noqa: E702
    p1, p2 = _lohi(p1, p2); p4, p5 = _lohi(p4, p5); p7, p8 = _lohi(p7, p8)   # noqa: E702
    p0, p3 = _lohi(p0, p3); p5, p8 = _lohi(p5, p8); p4, p7 = _lohi(p4, p7)   # noqa: E702
    p3, p6 = _lohi(p3, p6); p1, p4 = _lohi(p1, p4); p2, p5 = _lohi(p2, p5)   # noqa: E702
    p4, p7 = _lohi(p4, p7); p4, p2 = _lohi(p4, p2); p6, p4 = _lohi(p6, p4)   # noqa: E702
    p4, p2 = _lohi(p4, p2)
    return p4


@njit(cache=_CACHE, inline="always")
def _take(best, best_count, v, count):
    """The running mode after seeing ``v`` ``count`` times: more often, or as often and
    smaller."""
    take = (count > best_count) | ((count == best_count) & (v < best))
    return (v if take else best), (count if take else best_count)


@njit(cache=_CACHE, inline="always")
def _min2(u, v):
    return v if v < u else u


@njit(cache=_CACHE, inline="always")
def _mode4(a, b, c, d, big):
    """Most frequent of four values, the smallest of tied ones, in six comparisons (COUNTLESS's
    observation: among four, a value seen twice wins unless another is seen twice too). The
    values that occur more than once are those of the equal pairs: the smallest of them wins;
    with no equal pair every value is seen once and the smallest of all wins. ``big``: a value
    no smaller than any (the dtype's largest)."""
    ab, ac, ad, bc, bd, cd = a == b, a == c, a == d, b == c, b == d, c == d
    in_pair = _min2(_min2(a if (ab | ac | ad) else big, b if (bc | bd) else big),
                    c if cd else big)
    if ab | ac | ad | bc | bd | cd:
        return in_pair
    return _min2(_min2(a, b), _min2(c, d))


@njit(cache=_CACHE, inline="always")
def _count8(v, a0, a1, a2, a3, a4, a5, a6, a7):
    """How many of a0..a7 equal v (0 + ...: a count also when run as Python, where
    bool + bool is a bool)."""
    return (0 + (v == a0) + (v == a1) + (v == a2) + (v == a3) + (v == a4) + (v == a5)
            + (v == a6) + (v == a7))


@njit(cache=_CACHE, inline="always")
def _mode8(a0, a1, a2, a3, a4, a5, a6, a7):
    """Most frequent of eight values, the smallest of tied ones: compare and count."""
    best, n = a0, _count8(a0, a0, a1, a2, a3, a4, a5, a6, a7)
    best, n = _take(best, n, a1, _count8(a1, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a2, _count8(a2, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a3, _count8(a3, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a4, _count8(a4, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a5, _count8(a5, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a6, _count8(a6, a0, a1, a2, a3, a4, a5, a6, a7))
    best, n = _take(best, n, a7, _count8(a7, a0, a1, a2, a3, a4, a5, a6, a7))
    return best


@njit(cache=_CACHE, inline="always")
def _first(m, v, t, at, out):
    """Scanning taps from the last to the first: ``t`` and ``v`` replace ``at`` and ``out``
    where ``v == m``, so the first tap holding ``m`` is left."""
    hit = v == m
    return (t if hit else at), (v if hit else out)


# ----------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE)
def _window_offsets(q, pos, kern, outsh, instr, o, j, offs):
    """offs[t] = flat in-plane offset of tap t of flat output q, -1 in the padding; the taps
    in row-major order by an odometer over the kernel (no division per tap). ``o`` and ``j``
    are scratch of one entry per dim. -> whether any tap lies inside the input."""
    k = kern.shape[0]
    for d in range(k - 1, -1, -1):
        o[d] = q % outsh[d]
        q //= outsh[d]
        j[d] = 0
    seen = False
    for t in range(offs.shape[0]):
        off = 0
        for d in range(k):
            z = pos[d, o[d], j[d]]
            if z < 0:
                off = -1
                break
            off += z * instr[d]
        offs[t] = off
        seen |= off >= 0
        d = k - 1
        while d >= 0:
            j[d] += 1
            if j[d] < kern[d]:
                break
            j[d] = 0
            d -= 1
    return seen


@njit(cache=_CACHE, nogil=True)
def _rank_nd(x, y, arg, pos, kern, outsh, instr, mode, omit, with_arg, ident, r0, r1):
    """Any window, any number of dims: x (B, P, T), y and arg (B, Q, T); pos[d, o, j] the
    input position of tap j of output o along dim d (-1 in the padding), kern, outsh and
    instr the kernel, output shape and input strides (in elements). Rows r = b * Q + q."""
    T = x.shape[2]
    Q = y.shape[1]
    K = 1
    for d in range(kern.shape[0]):
        K *= kern[d]
    offs = np.empty(K, dtype=np.int64)
    o_d = np.empty(kern.shape[0], dtype=np.int64)        # the output's index per dim
    j_d = np.empty(kern.shape[0], dtype=np.int64)        # the tap's index per dim
    a = np.empty(K, dtype=x.dtype)
    for r in range(r0, r1):
        b = r // Q
        q = r % Q
        seen = _window_offsets(q, pos, kern, outsh, instr, o_d, j_d, offs)
        for c in range(T):
            if not seen:                         # wholly in padding (max/min only)
                y[b, q, c] = ident
                if with_arg:
                    arg[b, q, c] = -1
                continue
            n = 0
            last_nan = -1
            for t in range(K):
                o = offs[t]
                if o >= 0:
                    v = x[b, o, c]
                    if v != v:
                        last_nan = t
                    else:
                        a[n] = v
                        n += 1
            if last_nan >= 0 and (n == 0 or not omit):
                tap = last_nan
            else:
                chosen = _pick(a, n, mode)
                tap = 0
                for t in range(K):
                    o = offs[t]
                    if o >= 0 and x[b, o, c] == chosen:
                        tap = t
                        break
            y[b, q, c] = x[b, offs[tap], c]
            if with_arg:
                arg[b, q, c] = tap


@njit(cache=_CACHE)
def _rank_buffer(w, K, a, mode, omit):
    """The rule on window values w[0:K] (all inside): -> the chosen tap."""
    n = 0
    last_nan = -1
    for t in range(K):
        v = w[t]
        if v != v:
            last_nan = t
        else:
            a[n] = v
            n += 1
    if last_nan >= 0 and (n == 0 or not omit):
        return last_nan
    chosen = _pick(a, n, mode)
    tap = 0
    while w[tap] != chosen:
        tap += 1
    return tap


@njit(cache=_CACHE, nogil=True)
def _rank_k2(x, y, arg, kd, mode, omit, with_arg, exact, big, r0, r1):
    """Windows 2 x 2 (kd = 1) or 2 x 2 x 2 (kd = 2), stride = kernel, no padding, all inside:
    x (B, D, H, W), y and arg (B, OD, OH, OW); rows r = (b * OD + od) * OH + oh; tap
    t = 4 i + 2 j + l. The mode of a window without NaN is straight-line compare and count
    (:func:`_mode4`, :func:`_mode8`); a window with a NaN, and the median, take the general
    rule on a buffer. ``exact``: values equal only when their bits are (integers), so the
    first tap holding the mode is looked for only when ``arg`` is asked for."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    K = 4 * kd
    w = np.empty(8, dtype=x.dtype)
    a = np.empty(8, dtype=x.dtype)
    for r in range(r0, r1):
        oh = r % OH
        od = (r // OH) % OD
        b = r // (OH * OD)
        r0_ = x[b, kd * od, 2 * oh]
        r1_ = x[b, kd * od, 2 * oh + 1]
        r2_ = x[b, kd * od + kd - 1, 2 * oh]          # kd = 1: the rows above again (unused)
        r3_ = x[b, kd * od + kd - 1, 2 * oh + 1]
        yr = y[b, od, oh]
        for q in range(OW):
            v0, v1, v2, v3 = r0_[2 * q], r0_[2 * q + 1], r1_[2 * q], r1_[2 * q + 1]
            v4, v5, v6, v7 = r2_[2 * q], r2_[2 * q + 1], r3_[2 * q], r3_[2 * q + 1]
            nan = (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
            if kd == 2:
                nan |= (v4 != v4) | (v5 != v5) | (v6 != v6) | (v7 != v7)
            if mode == MODE and not nan:
                m = _mode4(v0, v1, v2, v3, big) if kd == 1 else _mode8(v0, v1, v2, v3, v4, v5,
                                                                        v6, v7)
                tap, out = 0, m
                if exact and not with_arg:
                    yr[q] = m
                    continue
                if kd == 2:
                    tap, out = _first(m, v7, 7, tap, out)
                    tap, out = _first(m, v6, 6, tap, out)
                    tap, out = _first(m, v5, 5, tap, out)
                    tap, out = _first(m, v4, 4, tap, out)
                tap, out = _first(m, v3, 3, tap, out)
                tap, out = _first(m, v2, 2, tap, out)
                tap, out = _first(m, v1, 1, tap, out)
                tap, out = _first(m, v0, 0, tap, out)
            else:
                w[0], w[1], w[2], w[3] = v0, v1, v2, v3
                w[4], w[5], w[6], w[7] = v4, v5, v6, v7
                tap = _rank_buffer(w, K, a, mode, omit)
                out = w[tap]
            yr[q] = out
            if with_arg:
                arg[b, od, oh, q] = tap


@njit(cache=_CACHE, nogil=True)
def _mode2x2_int(x, y, big, r0, r1):
    """The label case alone: the mode of 2 x 2 windows of integers (no NaN; equal values have
    equal bits, so the mode is the output), stride 2, no indices. One straight loop per row
    that LLVM vectorizes. Shapes and rows as :func:`_rank_k2` with kd = 1."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    for r in range(r0, r1):
        oh = r % OH
        od = (r // OH) % OD
        b = r // (OH * OD)
        top = x[b, od, 2 * oh]
        bottom = x[b, od, 2 * oh + 1]
        yr = y[b, od, oh]
        for q in range(OW):
            yr[q] = _mode4(top[2 * q], top[2 * q + 1], bottom[2 * q], bottom[2 * q + 1], big)


@njit(cache=_CACHE)
def _window2(x, b, d, h0, w0, a, mode, omit):
    """The rule on the 3 x 3 window at rows h0.., columns w0.. of plane (b, d), cut to the
    input: -> (tap, value)."""
    H, W = x.shape[2], x.shape[3]
    n = 0
    last_nan = -1
    for i in range(3):
        for j in range(3):
            h, c = h0 + i, w0 + j
            if 0 <= h < H and 0 <= c < W:
                v = x[b, d, h, c]
                if v != v:
                    last_nan = 3 * i + j
                else:
                    a[n] = v
                    n += 1
    if last_nan >= 0 and (n == 0 or not omit):
        return last_nan, x[b, d, h0 + last_nan // 3, w0 + last_nan % 3]
    chosen = _pick(a, n, mode)
    for i in range(3):
        for j in range(3):
            h, c = h0 + i, w0 + j
            if 0 <= h < H and 0 <= c < W and x[b, d, h, c] == chosen:
                return 3 * i + j, x[b, d, h, c]
    return 0, chosen                           # not reached: the chosen value is in the window


@njit(cache=_CACHE, nogil=True)
def _median3x3(x, y, arg, sh, sw, ph, pw, omit, with_arg, r0, r1):
    """Median of 3 x 3 windows (no dilation, depth untouched): x (B, D, H, W), y and arg
    (B, D, OH, OW); rows r = (b * D + d) * OH + oh. Windows inside the input without NaN take
    the scalar network :func:`_med9s`; the rest (edges, NaN) the general rule."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    a = np.empty(9, dtype=x.dtype)
    for r in range(r0, r1):
        oh = r % OH
        d = (r // OH) % D
        b = r // (OH * D)
        h0 = oh * sh - ph
        yr = y[b, d, oh]
        full_rows = h0 >= 0 and h0 + 3 <= H
        ra = x[b, d, min(max(h0, 0), H - 1)]            # rows clamped: read only when full
        rb = x[b, d, min(max(h0 + 1, 0), H - 1)]
        rc = x[b, d, min(max(h0 + 2, 0), H - 1)]
        for q in range(OW):
            w0 = q * sw - pw
            if full_rows and w0 >= 0 and w0 + 3 <= W:
                p0, p1, p2 = ra[w0], ra[w0 + 1], ra[w0 + 2]
                p3, p4, p5 = rb[w0], rb[w0 + 1], rb[w0 + 2]
                p6, p7, p8 = rc[w0], rc[w0 + 1], rc[w0 + 2]
                nan = ((p0 != p0) | (p1 != p1) | (p2 != p2) | (p3 != p3) | (p4 != p4)
                       | (p5 != p5) | (p6 != p6) | (p7 != p7) | (p8 != p8))
                if not nan:
                    m = _med9s(p0, p1, p2, p3, p4, p5, p6, p7, p8)
                    tap, out = 8, p8
                    tap, out = _first(m, p7, 7, tap, out)
                    tap, out = _first(m, p6, 6, tap, out)
                    tap, out = _first(m, p5, 5, tap, out)
                    tap, out = _first(m, p4, 4, tap, out)
                    tap, out = _first(m, p3, 3, tap, out)
                    tap, out = _first(m, p2, 2, tap, out)
                    tap, out = _first(m, p1, 1, tap, out)
                    tap, out = _first(m, p0, 0, tap, out)
                    yr[q] = out
                    if with_arg:
                        arg[b, d, oh, q] = tap
                    continue
            tap, out = _window2(x, b, d, h0, w0, a, MEDIAN, omit)
            yr[q] = out
            if with_arg:
                arg[b, d, oh, q] = tap


# ----------------------------------------------------------------------------------------------
# Python side: the dispatch table
# ----------------------------------------------------------------------------------------------

def _run_mode2x2_int(xw, y, arg, g, code, omit, with_arg, ident):
    tb = _tables(g)
    B = xw.shape[0]
    OD, OH, _ = tb["out3"]
    _pool.run(_mode2x2_int, B * OD * OH, y.size * 4, xw.reshape((B,) + tb["in3"]),
              y.reshape((B,) + tb["out3"]), identity(xw.dtype, True))


def _run_k2(xw, y, arg, g, code, omit, with_arg, ident):
    tb = _tables(g)
    B = xw.shape[0]
    OD, OH, _ = tb["out3"]
    adt = arg.dtype
    _pool.run(_rank_k2, B * OD * OH, y.size * 4 * _k2_fast(g), xw.reshape((B,) + tb["in3"]),
              y.reshape((B,) + tb["out3"]),
              arg.reshape((B,) + tb["out3"]) if with_arg else _dummy(4, adt), _k2_fast(g),
              code, omit, with_arg, xw.dtype.kind in "iu", identity(xw.dtype, True))


def _median3x3_fits(g: Geometry, T: int, code: int) -> bool:
    """Median, channels-first, a 3 x 3 kernel over H, W without dilation, depth untouched."""
    if not (code == MEDIAN and T == 1 and 2 <= g.ndim <= 3):
        return False
    tb = _tables(g)
    kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
    return (kd == 1 and sd == 1 and pd == 0 and tb["out3"][0] == tb["in3"][0]
            and kh == kw == 3 and dh == dw == 1)


def _run_median3x3(xw, y, arg, g, code, omit, with_arg, ident):
    tb = _tables(g)
    B = xw.shape[0]
    D, OH = tb["out3"][0], tb["out3"][1]
    geo = tb["geo"]
    _pool.run(_median3x3, B * D * OH, y.size * 9, xw.reshape((B,) + tb["in3"]),
              y.reshape((B,) + tb["out3"]),
              arg.reshape((B,) + tb["out3"]) if with_arg else _dummy(4, arg.dtype),
              int(geo[4]), int(geo[5]), int(geo[10]), int(geo[11]), omit, with_arg)


def _run_nd(xw, y, arg, g, code, omit, with_arg, ident):
    B, T = xw.shape[0], xw.shape[-1]
    Q, K = math.prod(g.out_size), g.taps
    instr = np.ones(g.ndim, dtype=np.int64)
    for d in range(g.ndim - 2, -1, -1):
        instr[d] = instr[d + 1] * g.in_size[d + 1]
    _pool.run(_rank_nd, B * Q, y.size * K, xw.reshape(B, -1, T), y.reshape(B, Q, T),
              arg.reshape(B, Q, T) if with_arg else _dummy(3, arg.dtype), g.tap_positions(),
              np.array(g.kernel, dtype=np.int64), np.array(g.out_size, dtype=np.int64), instr,
              code, omit, with_arg, ident)


#: (when(g, T, code, kind, with_arg), runner): the first row whose test holds runs. ``T`` is
#: the channels-last width (1: channels-first), ``code`` the reducer (MEDIAN, MODE, MAX, MIN),
#: ``kind`` the dtype's kind ("f", "i", "u"), ``with_arg`` whether indices are wanted.
_KERNELS = (
    (lambda g, T, code, kind, with_arg: code == MODE and kind in "iu" and not with_arg
     and T == 1 and g.ndim <= 3 and _k2_fast(g) == 1, _run_mode2x2_int),   # 2x2 labels
    (lambda g, T, code, kind, with_arg: T == 1 and g.ndim <= 3 and code in (MEDIAN, MODE)
     and bool(_k2_fast(g)), _run_k2),                         # 2x2, 2x2x2 tiles: mode, median
    (lambda g, T, code, kind, with_arg: _median3x3_fits(g, T, code),
     _run_median3x3),                                         # 3x3 median, any stride and pad
    (lambda g, T, code, kind, with_arg: True, _run_nd),       # any other window
)


def rank_forward(x, g: Geometry, *, mode, omit, with_arg):
    """The engine protocol's rank reduction (see :mod:`._reference`'s ``rank_forward``)."""
    dtype = x.dtype
    xw = _widen(x)                  # float16 as float32: exact, and Numba has no float16
    T = x.shape[-1]
    y = np.empty((x.shape[0],) + g.out_size + (T,), dtype=xw.dtype)
    arg = np.empty(y.shape, dtype=arg_dtype(g.taps)) if with_arg else _dummy(1, np.int8)
    ident = identity(xw.dtype, mode == "min")
    if y.size:
        code = _CODES[mode]
        run = next(run for when, run in _KERNELS if when(g, T, code, xw.dtype.kind, with_arg))
        run(xw, y, arg, g, code, bool(omit), bool(with_arg), ident)
    return _narrow(y, dtype), (arg if with_arg else None)


