"""Kernels: nan_policy="omit" without NaN, the NaN check fused into any forward kernel."""
from __future__ import annotations


import numba
from numba import njit

from ._compile import _CACHE, _noalias
from ._k_rows import MIN
from ._k_small import _k2_2d_skip_row, _k2_2d_sum_row, _k2_3d_skip_row, _k2_3d_sum_row


# ----------------------------------------------------------------------------------------------
# nan_policy="omit" without NaN: any forward kernel with the NaN check fused in
# ----------------------------------------------------------------------------------------------
# Under "propagate" a max, min, sum or average is NaN exactly where its window holds a NaN, so
# when no output is NaN the propagating result is already the omitting one. These run a kernel
# on blocks of its work items and scan each block's outputs right after they are written, while
# in L1 (a second pass over the whole output cost 10-15%): ``bits`` is the flat output viewed as
# signed integers of its width, OR-reduced so that the sign bit says whether one was a NaN
# (``_scan_block``). ``starts[i]`` is the flat output index
# where work item i begins (``starts[n]`` = the output's size).

@njit(cache=_CACHE, inline="always")
def _scan_block(bits, a, b, magnitude, inf, top):
    """``top`` OR'ed with ``(bits[i] & magnitude) + (magnitude - inf)`` over ``bits[a:b]``:
    the sign bit of the result is set exactly when one of them is a NaN's bits (a NaN's
    magnitude exceeds inf's, and the carry then reaches the sign bit; the sum of any other
    magnitude stays below it). An OR reduction, unsigned indices (no negative-index
    wraparound) and the bits' own width (Numba widens int32 to int64) let it vectorize. No
    builtin max or min: the no-alias target lacks them."""
    t = bits.dtype.type
    carry = t(magnitude - inf)
    for i in range(numba.uint64(a), numba.uint64(b)):
        top = t(top | t(t(bits[i] & magnitude) + carry))
    return top


@njit(cache=_CACHE, inline="always")
def _block_end(starts, rb, r1):
    re = rb + 1
    while re < r1 and starts[re] - starts[rb] < 16384:
        re += 1
    return re


@njit(cache=_CACHE, nogil=True)
def _checked_run(kernel, args, bits, starts, magnitude, inf, nan, r0, r1):
    """``kernel(*args, r0, r1)`` (any forward kernel of the engine) with the NaN check:
    ``nan[0]`` set when an output of items r0 .. r1-1 is NaN."""
    top = bits.dtype.type(0)
    rb = r0
    while rb < r1:
        re = _block_end(starts, rb, r1)
        kernel(*args, rb, re)
        top = _scan_block(bits, starts[rb], starts[re], magnitude, inf, top)
        rb = re
    if top < 0:
        nan[0] = True


@njit(cache=_CACHE, nogil=True)
def _k2_2d_omit(x, y, op, div, nan, r0, r1):
    """nan_policy="omit"'s 2x2 max (min) itself, in one pass at the cost of "propagate": the
    NaN-skipping select (``_over_skip``) gives the exact omitting result with or without a
    NaN, so ``nan`` stays False and the driver takes it as it is (a check on this most
    memory-bound pool cost 15-22%)."""
    minimum = op == MIN
    for r in range(r0, r1):
        _k2_2d_skip_row(x, y, minimum, r)


@njit(cache=_CACHE, nogil=True)
def _k2_3d_omit(x, y, op, div, nan, r0, r1):
    """As _k2_2d_omit for 2x2x2 windows."""
    minimum = op == MIN
    for r in range(r0, r1):
        _k2_3d_skip_row(x, y, minimum, r)


@njit(cache=_CACHE, inline="always")
def _nan_in(flat, a, b, bad):
    """``bad`` or'ed with whether ``flat[a:b]`` holds a NaN (unsigned indices: it vectorizes;
    a float compare, as no-alias kernels cannot view floats as integers)."""
    for i in range(numba.uint64(a), numba.uint64(b)):
        bad |= flat[i] != flat[i]
    return bad


@_noalias
def _k2_2d_sum_checked(x, y, op, div, nan, r0, r1):
    """_k2_2d_sum with the NaN check in its row loop (the row flags a NaN sum as it writes it:
    one compare per output, in registers, 1.04x the plain kernel at two threads; the block scan
    of _k2_3d_sum_checked cost 1.11-1.13x here). A no-alias kernel cannot be passed to
    _checked_run: the two compile for different targets. (For the 2x2 max the in-row flag cost
    1.21-1.39x and _checked_run's scan 1.15-1.22x: the max skips NaN in its select instead,
    _k2_2d_omit. A one-pass NaN-skipping sum, as that, ran 3.4x: its select and count did not
    vectorize.)"""
    bad = False
    for r in range(r0, r1):
        bad |= _k2_2d_sum_row(x, y, div, r)
    if bad:
        nan[0] = True


@_noalias
def _k2_3d_sum_checked(x, y, op, div, nan, r0, r1):
    """_k2_3d_sum with the NaN check: the rows are written in blocks of about 4096 outputs,
    and each block, still in L1, is scanned for a NaN by the kernel's next loop. The 2-d
    kernel's in-row flag cost 1.6x here on one thread (1.27-1.33x at two threads: the eight
    loads leave no room for it); this, 1.03-1.04x at two threads."""
    OW = y.shape[3]
    flat = y.reshape(-1)
    per = 4096 // OW + 1
    bad = False
    rb = r0
    while rb < r1:
        re = rb + per if rb + per < r1 else r1
        for r in range(rb, re):
            _k2_3d_sum_row(x, y, div, r)
        bad = _nan_in(flat, rb * OW, re * OW, bad)
        rb = re
    if bad:
        nan[0] = True
