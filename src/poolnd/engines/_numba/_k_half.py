"""Kernels: float16 <-> float32, bit for bit what NumPy's ``astype`` gives.

Numba has no float16 arithmetic, so the engine runs float16 as float32 (exact: every float16 is a
float32) and rounds the results back. NumPy's casts run 2.6-5 ns per element on this project's
machines (a software loop), more than the pooling itself on most float16 rows. These kernels use
the CPU's own conversion (LLVM's ``fpext`` / ``fptrunc`` of ``half``: F16C's ``vcvtph2ps`` /
``vcvtps2ph`` on x86-64, vectorized), about 0.3 ns per element on one thread.

The one difference between the hardware and NumPy is NaN: the hardware quiets a signaling NaN,
NumPy keeps its payload as it is. Each kernel takes ``keep_nan`` (what NumPy does here, probed
once: :func:`_numpy_keeps_nan`) and, where set, builds the NaN's bits as NumPy does, so the result
is NumPy's for all 65,536 float16 values and every float32 (the tests check both).

Where the CPU has no such conversion (x86-64 without F16C: LLVM would call a runtime helper
Numba does not link), or under ``NUMBA_DISABLE_JIT=1`` (no intrinsics in plain Python), the
functions below are NumPy's casts.
"""
from __future__ import annotations

import functools
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._compile import _CACHE


@intrinsic
def _h2f_bits(typingctx, h):
    """The float32 bits of the float16 whose bits are ``h`` (uint16), by the CPU's conversion."""
    def codegen(context, builder, sig, args):
        f = builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        return builder.bitcast(f, ir.IntType(32))
    return types.uint32(types.uint16), codegen


@intrinsic
def _f2h_bits(typingctx, f):
    """The float16 bits (round to nearest even) of the float32 whose bits are ``f`` (uint32)."""
    def codegen(context, builder, sig, args):
        h = builder.fptrunc(builder.bitcast(args[0], ir.FloatType()), ir.HalfType())
        return builder.bitcast(h, ir.IntType(16))
    return types.uint16(types.uint32), codegen


@njit(cache=_CACHE, inline="always")
def _signaling(v, mag, first, count):
    """Whether the magnitude bits of ``v`` (v & mag) lie in [first, first + count): the
    signaling NaN (float16 0x7C01..0x7DFF, float32 0x7F800001..0x7FBFFFFF)."""
    d = np.int64(v & mag) - first
    return (d >= 0) & (d < count)


@njit(cache=_CACHE, inline="always")
def _any_signaling(s, mag, first, count):
    found = False
    for i in range(s.size):
        found |= _signaling(s[i], mag, first, count)
    return found


@njit(cache=_CACHE, nogil=True)
def _widen_k(s, d, keep_nan, r0, r1):
    """d[i] = the float32 bits of float16 s[i] (both flat, as uint16 / uint32), i in [r0, r1).
    The CPU's conversion first (vectorized); then, with ``keep_nan``, a scan for signaling NaN
    and, only where there is one, their quiet bit taken back off. (One loop with the fix in
    it ran 0.24 ns per element in cache, these 0.11 without a signaling NaN.)"""
    s, d = s[r0:r1], d[r0:r1]      # from 0: no negative-index wrap, so the loops vectorize
    for i in range(s.size):
        d[i] = _h2f_bits(s[i])
    if keep_nan and _any_signaling(s, 0x7FFF, 0x7C01, 0x1FF):
        for i in range(s.size):
            if _signaling(s[i], 0x7FFF, 0x7C01, 0x1FF):
                d[i] ^= np.uint32(0x400000)


@njit(cache=_CACHE, nogil=True)
def _narrow_k(s, d, keep_nan, r0, r1):
    """d[i] = the float16 bits of float32 s[i] (both flat, as uint32 / uint16), i in [r0, r1);
    with ``keep_nan``, a signaling NaN as NumPy narrows it (the CPU's way, then a scan, as
    _widen_k): its payload's top ten bits, or 1 where those are all zero."""
    s, d = s[r0:r1], d[r0:r1]
    for i in range(s.size):
        d[i] = _f2h_bits(s[i])
    if keep_nan and _any_signaling(s, 0x7FFFFFFF, 0x7F800001, 0x3FFFFF):
        for i in range(s.size):
            f = s[i]
            if _signaling(f, 0x7FFFFFFF, 0x7F800001, 0x3FFFFF):
                m = (f & 0x7FFFFF) >> 13
                d[i] = np.uint16(((f >> 16) & 0x8000) | 0x7C00 | (m if m != 0 else 1))


@functools.lru_cache(maxsize=None)
def _hardware() -> bool:
    """Whether the kernels can run: compiled, on a CPU whose conversion LLVM emits inline."""
    if numba.config.DISABLE_JIT:
        return False
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        from llvmlite import binding
        return "+f16c" in binding.get_host_cpu_features().flatten().split(",")
    return machine in ("aarch64", "arm64")


@functools.lru_cache(maxsize=None)
def _numpy_keeps_nan() -> tuple:
    """(widening, narrowing): whether NumPy keeps a signaling NaN's payload as it is."""
    h = np.array([0x7C01], dtype=np.uint16).view(np.float16)
    f = np.array([0x7F802000], dtype=np.uint32).view(np.float32)
    return (int(h.astype(np.float32).view(np.uint32)[0]) == 0x7F802000,
            int(f.astype(np.float16).view(np.uint16)[0]) == 0x7C01)


def widen(x):
    """``x`` as float32 if it is float16 (NumPy's ``x.astype(np.float32)``), else ``x``."""
    if x.dtype != np.float16:
        return x
    if not (_hardware() and x.flags.c_contiguous):
        return x.astype(np.float32)
    from ._threadpool import _pool
    y = np.empty(x.shape, dtype=np.float32)
    _pool.run(_widen_k, x.size, x.size, x.reshape(-1).view(np.uint16),
              y.reshape(-1).view(np.uint32), _numpy_keeps_nan()[0])
    return y


def narrow(y, dtype):
    """``y.astype(dtype, copy=False)``, float32 -> float16 by the kernel above."""
    if not (dtype == np.float16 and y.dtype == np.float32 and _hardware()
            and y.flags.c_contiguous):
        return y.astype(dtype, copy=False)
    from ._threadpool import _pool
    out = np.empty(y.shape, dtype=np.float16)
    _pool.run(_narrow_k, y.size, y.size, y.reshape(-1).view(np.uint32),
              out.reshape(-1).view(np.uint16), _numpy_keeps_nan()[1])
    return out
