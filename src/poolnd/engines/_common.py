"""Dtype rules shared by every engine: accumulation dtype, identities, integer division.

Averages of float16 accumulate in float32, of integers in int64 (then divide truncating toward
zero, as PyTorch's integer average does); the result is cast back to the input dtype.
"""
from __future__ import annotations

import numpy as np


def acc_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype


def identity(dtype: np.dtype, minimum: bool):
    """The value that never wins: -inf (+inf for min) for floats, the dtype's extreme for ints."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.type(np.inf if minimum else -np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.max if minimum else info.min)


def arg_dtype(taps: int) -> np.dtype:
    """Smallest signed int dtype holding a window-local tap index (and -1)."""
    for dt in (np.int8, np.int16, np.int32):
        if taps <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def trunc_divide(s: np.ndarray, d) -> np.ndarray:
    """Integer ``s / d`` truncated toward zero (C's ``/``), elementwise."""
    q = np.floor_divide(s, d)
    fix = (q * d != s) & ((s < 0) != (np.asarray(d) < 0))
    return q + fix


def divide(s: np.ndarray, d, dtype) -> np.ndarray:
    """Sums ``s`` (accumulation dtype, overwritten) / divisors ``d`` -> ``dtype``: floats divide
    in the accumulation dtype, integers truncate toward zero (PyTorch's integer average)."""
    if np.dtype(dtype).kind in "iu":
        return trunc_divide(s, d).astype(dtype)
    return np.divide(s, np.asarray(d).astype(s.dtype), out=s).astype(dtype, copy=False)


def sum_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of an integer window sum (mode "sum"), as ``np.sum`` gives it: int64, or
    uint64 for unsigned inputs; floats keep their dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return np.dtype(np.uint64)
    if dtype.kind == "i":
        return np.dtype(np.int64)
    return dtype


_LOW = np.int64(0xFFFFFFFF)


def exact_int_pool(window_sum, x: np.ndarray, divisor, out_dtype) -> np.ndarray:
    """Window sums (``divisor`` None) or averages truncated toward zero of an integer ``x``,
    exact for every integer dtype.

    ``window_sum(a)`` gives the int64 window sums of an int64 array shaped like ``x`` (an
    engine's sum). Inputs narrower than 64 bits are summed in int64 directly: a window would
    need 2**31 elements to overflow it. 64-bit inputs are split into 32-bit halves,
    ``x = hi * 2**32 + lo``, each summed in int64 without overflow, and the quotient
    ``(SH * 2**32 + SL) / d`` is taken by long division in two 32-bit digits, so an average of
    values near 2**63 or 2**64 is exact (no float round trip). A sum (``divisor`` None) wraps
    modulo 2**64 as ``np.sum`` does."""
    if x.dtype.itemsize < 8:
        s = window_sum(x.astype(np.int64))
        return s.astype(out_dtype) if divisor is None else trunc_divide(s, divisor).astype(
            out_dtype)
    unsigned = x.dtype.kind == "u"
    hi = (x >> np.array(32, dtype=x.dtype)).astype(np.int64)
    lo = (x & np.array(0xFFFFFFFF, dtype=x.dtype)).astype(np.int64)
    sh, sl = window_sum(hi), window_sum(lo)
    sh += sl >> 32                                  # S = sh * 2**32 + sl, 0 <= sl < 2**32
    sl &= _LOW
    if divisor is None:
        with np.errstate(over="ignore"):
            total = (sh.astype(np.uint64) << np.uint64(32)) + sl.astype(np.uint64)
        return total.astype(out_dtype, copy=False) if unsigned else total.view(np.int64)
    d = np.broadcast_to(np.asarray(divisor, dtype=np.int64), sh.shape)
    e = np.abs(d)
    if int(e.max(initial=1)) >= 1 << 31:            # a huge divisor_override: Python integers
        s = sh.astype(object) * (1 << 32) + sl.astype(object)
        q = np.vectorize(lambda a, b: abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1),
                         otypes=[object])(s, d)
        return np.array([int(v) % (1 << 64) if unsigned else int(v) for v in q.ravel()],
                        dtype=np.uint64 if unsigned else np.int64).reshape(q.shape).astype(
            out_dtype, copy=False)
    q1 = np.floor_divide(sh, e)                      # long division, floor: digit 1
    t = ((sh - q1 * e) << 32) + sl                   # < e * 2**32 < 2**63
    q2 = np.floor_divide(t, e)                       # digit 2, in [0, 2**32)
    rem = t - q2 * e
    neg = sh < 0
    with np.errstate(over="ignore"):
        if unsigned:
            q = (q1.astype(np.uint64) << np.uint64(32)) + q2.astype(np.uint64)
        else:
            q = (q1 << 32) + q2
            q += neg & (rem != 0)                    # floor -> toward zero for S < 0
        if (d < 0).any():
            q = np.where(d < 0, -q.view(np.int64), q.view(np.int64)).view(q.dtype)
    return q.astype(out_dtype, copy=False)
