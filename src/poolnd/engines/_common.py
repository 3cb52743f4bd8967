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


def _half_even(q, rem, e):
    """Floor quotient ``q`` and remainder ``0 <= rem < e`` of ``S / e`` (``e > 0``) -> ``S / e``
    rounded half to even: up where ``2 * rem > e``, or ``== e`` and ``q`` is odd (compared as
    ``rem`` against ``e - rem``, so nothing overflows; ``q & 1`` is the parity of a negative
    ``q`` too)."""
    up = e - rem
    half_up = (rem > up) | ((rem == up) & ((q & 1) == 1))
    return q + half_up.astype(q.dtype)


def exact_int_pool(window_sum, x: np.ndarray, divisor, out_dtype,
                   rounding: str = "trunc") -> np.ndarray:
    """Window sums (``divisor`` None) or averages of an integer ``x``, exact for every integer
    dtype: truncated toward zero (``rounding="trunc"``, PyTorch's integer average) or rounded
    half to even (``"nearest"``, TensorStore's downsampling: ``(2k+1)/2`` goes to the even one of
    ``k`` and ``k+1``, for sums and divisors of either sign: ``round(-v) = -round(v)``).

    ``window_sum(a)`` gives the int64 window sums of an int64 array shaped like ``x`` (an
    engine's sum). Inputs narrower than 64 bits are summed in int64 directly: a window would
    need 2**31 elements to overflow it. 64-bit inputs are split into 32-bit halves,
    ``x = hi * 2**32 + lo``, each summed in int64 without overflow, and the quotient
    ``(SH * 2**32 + SL) / d`` is taken by long division in two 32-bit digits, so an average of
    values near 2**63 or 2**64 is exact (no float round trip). A sum (``divisor`` None) wraps
    modulo 2**64 as ``np.sum`` does. Both roundings start from the floor quotient and the
    remainder of ``S / |d|`` and negate for ``d < 0``."""
    nearest = rounding == "nearest"
    if x.dtype.itemsize < 8:
        s = window_sum(x.astype(np.int64))
        if divisor is None:
            return s.astype(out_dtype)
        if not nearest:
            return trunc_divide(s, divisor).astype(out_dtype)
        d = np.asarray(divisor, dtype=np.int64)
        e = np.abs(d)
        q = np.floor_divide(s, e)
        q = _half_even(q, s - q * e, e)
        return np.where(d < 0, -q, q).astype(out_dtype)
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
        q = np.vectorize(lambda a, b: _py_divide(int(a), int(b), nearest),
                         otypes=[object])(s, d)
        return np.array([int(v) % (1 << 64) if unsigned else int(v) for v in q.ravel()],
                        dtype=np.uint64 if unsigned else np.int64).reshape(q.shape).astype(
            out_dtype, copy=False)
    q1 = np.floor_divide(sh, e)                      # long division, floor: digit 1
    t = ((sh - q1 * e) << 32) + sl                   # < e * 2**32 < 2**63
    q2 = np.floor_divide(t, e)                       # digit 2, in [0, 2**32)
    rem = t - q2 * e                                 # S = (q1 * 2**32 + q2) * e + rem
    neg = sh < 0
    with np.errstate(over="ignore"):
        if nearest:                                  # the parity of the floor is q2's
            q2 = _half_even(q2, rem, e)  # q2 + 1 <= 2**32: carries into q1 below
        if unsigned:
            q = (q1.astype(np.uint64) << np.uint64(32)) + q2.astype(np.uint64)
        else:
            q = (q1 << 32) + q2
            if not nearest:
                q += neg & (rem != 0)                # floor -> toward zero for S < 0
        if (d < 0).any():
            q = np.where(d < 0, -q.view(np.int64), q.view(np.int64)).view(q.dtype)
    return q.astype(out_dtype, copy=False)


def _py_divide(s: int, d: int, nearest: bool) -> int:
    """``s / d`` of Python integers, truncated toward zero or rounded half to even."""
    if not nearest:
        return abs(s) // abs(d) * (1 if (s < 0) == (d < 0) else -1)
    q, r = divmod(s, abs(d))                         # floor, 0 <= r < |d|
    if 2 * r > abs(d) or (2 * r == abs(d) and q % 2 == 1):
        q += 1
    return -q if d < 0 else q
