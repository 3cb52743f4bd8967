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
