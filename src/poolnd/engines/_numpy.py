"""The NumPy engine: vectorized over every output at once, one Python iteration per kernel tap.

Arrays are canonical ``(B, *spatial, T)`` (channels-first with ``T = 1``, or channels-last).

For each tap, the outputs whose tap lands inside the input form a strided block of the input
(``Geometry.tap_slices``); the engine combines that block into the output in place. No padded copy
and no im2col: extra memory is a few output-sized temporaries. Taps are visited in row-major window
order, so ties and NaN resolve exactly as in the reference engine.
"""
from __future__ import annotations

import numpy as np

from .._geometry import Geometry
from ._common import acc_dtype, arg_dtype, identity, trunc_divide

name = "numpy"
channels_last = True        # pools (N, *spatial, C) arrays in place

_ALL = (slice(None),)


def max_forward(x, g: Geometry, *, minimum, with_arg):
    y = np.empty((x.shape[0],) + g.out_size + x.shape[-1:], dtype=x.dtype)
    arg = np.empty(y.shape, dtype=arg_dtype(g.taps)) if with_arg else None
    taps = g.tap_slices()
    first_covers_all = bool(taps) and taps[0][0] == 0 and all(
        sl.start == 0 and sl.stop == n for sl, n in zip(taps[0][1], g.out_size))
    if first_covers_all:              # tap 0 is every window's first tap: start from it
        y[...] = x[_ALL + taps[0][2]]
        if with_arg:
            arg[...] = 0
        taps = taps[1:]
    else:
        y[...] = identity(x.dtype, minimum)
        if with_arg:
            arg[...] = g.first_taps()[..., None]
    is_float = x.dtype.kind == "f"
    better = np.less if minimum else np.greater
    take_buf = np.empty(y.shape, dtype=bool)       # reused: no fresh temporaries per tap
    nan_buf = np.empty(y.shape, dtype=bool) if is_float else None
    for t, osl, isl in taps:
        v = x[_ALL + isl]
        best = y[_ALL + osl]
        take = take_buf[_ALL + osl]
        better(v, best, out=take)
        if is_float:
            nan = nan_buf[_ALL + osl]
            # v != v, not np.isnan: NumPy 2.4's isnan/isfinite/signbit write wrong values into
            # a strided bool out= (seen with 2.4.6); not_equal is correct there
            np.not_equal(v, v, out=nan)
            take |= nan
        np.copyto(best, v, where=take)
        if with_arg:
            np.copyto(arg[_ALL + osl], t, where=take, casting="unsafe")
    return y, arg


def max_backward(dy, arg, g: Geometry):
    acc = acc_dtype(dy.dtype)
    dx = np.zeros((dy.shape[0],) + g.in_size + dy.shape[-1:], dtype=acc)
    mask_buf = np.empty(dy.shape, dtype=bool)
    part_buf = np.empty(dy.shape, dtype=acc)
    for t, osl, isl in g.tap_slices():
        mask = mask_buf[_ALL + osl]
        part = part_buf[_ALL + osl]
        np.equal(arg[_ALL + osl], t, out=mask)
        np.multiply(dy[_ALL + osl], mask, out=part, casting="unsafe")
        block = dx[_ALL + isl]
        np.add(block, part, out=block)
    return dx.astype(dy.dtype, copy=False)


def _divisor(g: Geometry, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    return g.divisor(count_include_pad)[..., None]


def _divide(s, div, dtype):
    if np.dtype(dtype).kind in "iu":
        return trunc_divide(s, div).astype(dtype)
    acc = s.dtype
    return np.divide(s, np.asarray(div).astype(acc), out=s).astype(dtype, copy=False)


def avg_forward(x, g: Geometry, *, count_include_pad, divisor_override):
    s = np.zeros((x.shape[0],) + g.out_size + x.shape[-1:], dtype=acc_dtype(x.dtype))
    for _, osl, isl in g.tap_slices():
        block = s[_ALL + osl]
        np.add(block, x[_ALL + isl], out=block, casting="unsafe")
    return _divide(s, _divisor(g, count_include_pad, divisor_override), x.dtype)


def avg_backward(dy, g: Geometry, *, count_include_pad, divisor_override):
    acc = acc_dtype(dy.dtype)
    share = _divide(dy.astype(acc), _divisor(g, count_include_pad, divisor_override), acc)
    dx = np.zeros((dy.shape[0],) + g.in_size + dy.shape[-1:], dtype=acc)
    for _, osl, isl in g.tap_slices():
        block = dx[_ALL + isl]
        np.add(block, share[_ALL + osl], out=block)
    return dx.astype(dy.dtype, copy=False)
