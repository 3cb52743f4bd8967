"""The compiled rank reductions: median, mode, and max/min skipping NaN (nan_policy="omit").

Part of the Numba engine (:mod:`._numba` loads it on the first rank call). Every kernel and
every helper it calls lives in this file, as Numba's cache needs. Kernels are serial, ``nogil``,
cached, take a row range ``[r0, r1)`` and run on :mod:`._numba`'s thread pool (``_pool.run``);
none is a parfor.

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

import numpy as np
from numba import njit

from .._geometry import Geometry
from ._common import arg_dtype, identity
from ._numba import _CACHE, _dummy, _k2_fast, _pool, _tables, _widen

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
# kernels
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _rank_nd(x, y, arg, offs, mode, omit, with_arg, ident, r0, r1):
    """Any window, any number of dims: x (B, P, T), y and arg (B, Q, T), offs (Q, taps) the
    in-plane offset of each tap (-1 in the padding). Rows r = b * Q + q."""
    T = x.shape[2]
    Q, K = offs.shape
    a = np.empty(K, dtype=x.dtype)
    for r in range(r0, r1):
        b = r // Q
        q = r % Q
        for c in range(T):
            n = 0
            last_nan = -1
            seen = False
            for t in range(K):
                o = offs[q, t]
                if o >= 0:
                    seen = True
                    v = x[b, o, c]
                    if v != v:
                        last_nan = t
                    else:
                        a[n] = v
                        n += 1
            if not seen:                         # wholly in padding (max/min only)
                y[b, q, c] = ident
                if with_arg:
                    arg[b, q, c] = -1
                continue
            if last_nan >= 0 and (n == 0 or not omit):
                tap = last_nan
            else:
                chosen = _pick(a, n, mode)
                tap = 0
                for t in range(K):
                    o = offs[q, t]
                    if o >= 0 and x[b, o, c] == chosen:
                        tap = t
                        break
            y[b, q, c] = x[b, offs[q, tap], c]
            if with_arg:
                arg[b, q, c] = tap


@njit(cache=_CACHE, nogil=True)
def _rank_k2(x, y, arg, kd, mode, omit, with_arg, r0, r1):
    """Windows 2 x 2 (kd = 1) or 2 x 2 x 2 (kd = 2), stride = kernel, no padding, all inside:
    x (B, D, H, W), y and arg (B, OD, OH, OW); rows r = (b * OD + od) * OH + oh. The 4 or 8
    values are read straight from the rows (tap t = 4 i + 2 j + l)."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    K = 4 * kd
    w = np.empty(8, dtype=x.dtype)
    a = np.empty(8, dtype=x.dtype)
    for r in range(r0, r1):
        oh = r % OH
        od = (r // OH) % OD
        b = r // (OH * OD)
        for q in range(OW):
            for i in range(kd):
                for j in range(2):
                    row = x[b, kd * od + i, 2 * oh + j]
                    w[4 * i + 2 * j] = row[2 * q]
                    w[4 * i + 2 * j + 1] = row[2 * q + 1]
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
                tap = last_nan
            else:
                chosen = _pick(a, n, mode)
                tap = 0
                while w[tap] != chosen:
                    tap += 1
            y[b, od, oh, q] = w[tap]
            if with_arg:
                arg[b, od, oh, q] = tap


# ----------------------------------------------------------------------------------------------
# Python side: the dispatch table
# ----------------------------------------------------------------------------------------------

def _run_k2(xw, y, arg, g, code, omit, with_arg, ident):
    tb = _tables(g)
    B = xw.shape[0]
    OD, OH, _ = tb["out3"]
    adt = arg.dtype
    _pool.run(_rank_k2, B * OD * OH, y.size * 4 * _k2_fast(g), xw.reshape((B,) + tb["in3"]),
              y.reshape((B,) + tb["out3"]),
              arg.reshape((B,) + tb["out3"]) if with_arg else _dummy(4, adt), _k2_fast(g),
              code, omit, with_arg)


def _run_nd(xw, y, arg, g, code, omit, with_arg, ident):
    B, T = xw.shape[0], xw.shape[-1]
    offs = g.tap_offsets()
    Q, K = offs.shape
    _pool.run(_rank_nd, B * Q, y.size * K, xw.reshape(B, -1, T), y.reshape(B, Q, T),
              arg.reshape(B, Q, T) if with_arg else _dummy(3, arg.dtype), offs, code, omit,
              with_arg, ident)


#: (when, kernel): the first row whose test holds runs. ``T`` is the channels-last width
#: (1: channels-first).
_KERNELS = (
    (lambda g, T: T == 1 and g.ndim <= 3 and bool(_k2_fast(g)), _run_k2),   # 2x2, 2x2x2 tiles
    (lambda g, T: True, _run_nd),                                           # any other window
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
        run = next(run for when, run in _KERNELS if when(g, T))
        run(xw, y, arg, g, _CODES[mode], bool(omit), bool(with_arg), ident)
    return y.astype(dtype, copy=False), (arg if with_arg else None)


