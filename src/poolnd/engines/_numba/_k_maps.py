"""Elementwise passes around a pool: lp_pool's squares (``p = 2``) with the kept input, and
an average backward's shares (dy over each window's divisor).

A layer's ``lp_pool`` forward with ``p = 2`` pools ``x * x`` and keeps a private copy of ``x``
for its backward. NumPy makes them in two passes over ``x`` on one thread; ``square_and_copy``
writes both in one multi-threaded pass (16x64x112x112 float32: 8.8 -> 6.1 ms). Each square is
one IEEE multiply, as ``np.multiply(x, x)`` computes it (no fastmath): the same bits. (Without
the copy NumPy's single pass stays: a threaded pass of its own was faster at the 25th
percentile but slower at the median in the family benchmark, its fresh output's page faults
then split over two threads.)
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._compile import _CACHE


@njit(cache=_CACHE, nogil=True)
def _square_copy_k(x, t, kept, r0, r1):
    """t[i] = x[i] * x[i] and kept[i] = x[i] for i in [r0, r1) (flat arrays): one read of x."""
    x, t, kept = x[r0:r1], t[r0:r1], kept[r0:r1]   # from 0: no negative-index wrap, so the
    for i in range(x.size):                          # loop vectorizes
        v = x[i]
        kept[i] = v
        t[i] = v * v


def square_and_copy(x):
    """``(x * x, a copy of x)`` for a C-contiguous float32 or float64 ``x``; None for any other
    (the caller then uses NumPy).

    >>> import numpy as np
    >>> square_and_copy(np.array([[1.5, -2.0]], np.float32))
    (array([[2.25, 4.  ]], dtype=float32), array([[ 1.5, -2. ]], dtype=float32))
    """
    if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
        return None
    from ._threadpool import _pool
    t, kept = np.empty_like(x), np.empty_like(x)
    _pool.run(_square_copy_k, x.size, x.size, x.reshape(-1), t.reshape(-1), kept.reshape(-1))
    return t, kept


@njit(cache=_CACHE, nogil=True)
def _divide_k(dy, div, out, r0, r1):
    """out[r, p, t] = dy[r, p, t] / div[p] for planes r in [r0, r1): one IEEE division each,
    as ``np.divide`` broadcasting ``div`` (T == 1: a flat row, so the loop vectorizes)."""
    P, T = dy.shape[1], dy.shape[2]
    for r in range(r0, r1):
        if T == 1:
            a, o = dy[r].reshape(P), out[r].reshape(P)
            for p in range(P):
                o[p] = a[p] / div[p]
        else:
            for p in range(P):
                d = div[p]
                a, o = dy[r, p], out[r, p]
                for t in range(T):
                    o[t] = a[t] / d


def divide_planes(dy, div):
    """``dy / div`` for a float ``dy`` of shape ``(B, *spatial, T)`` and ``div``
    of the spatial shape (already in dy's dtype), on the thread pool; NumPy's bits.

    >>> import numpy as np
    >>> divide_planes(np.ones((2, 3, 1), np.float32), np.array([1, 2, 4], np.float32))[1, :, 0]
    array([1.  , 0.5 , 0.25], dtype=float32)
    """
    from ._threadpool import _pool
    dy = np.ascontiguousarray(dy)
    B, T = dy.shape[0], dy.shape[-1]
    P = div.size
    out = np.empty_like(dy)
    _pool.run(_divide_k, B, dy.size, dy.reshape(B, P, T), np.ascontiguousarray(div).reshape(P),
              out.reshape(B, P, T))
    return out
