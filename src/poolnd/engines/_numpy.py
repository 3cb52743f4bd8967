"""The NumPy engine: vectorized over every output at once, one Python iteration per kernel tap.

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

_ALL = (slice(None),)


def max_forward(x, g: Geometry, *, minimum, with_arg):
    y = np.full((x.shape[0],) + g.out_size, identity(x.dtype, minimum), dtype=x.dtype)
    arg = None
    if with_arg:
        arg = np.empty(y.shape, dtype=arg_dtype(g.taps))
        arg[...] = g.first_taps()
    is_float = x.dtype.kind == "f"
    better = np.less if minimum else np.greater
    for t, osl, isl in g.tap_slices():
        v = x[_ALL + isl]
        best = y[_ALL + osl]
        take = better(v, best)
        if is_float:
            take |= np.isnan(v)
        np.copyto(best, v, where=take)
        if with_arg:
            np.copyto(arg[_ALL + osl], t, where=take, casting="unsafe")
    return y, arg


def max_backward(dy, arg, g: Geometry):
    acc = acc_dtype(dy.dtype)
    dx = np.zeros((dy.shape[0],) + g.in_size, dtype=acc)
    for t, osl, isl in g.tap_slices():
        a = arg[_ALL + osl]
        np.add(dx[_ALL + isl], np.where(a == t, dy[_ALL + osl], 0), out=dx[_ALL + isl],
               casting="unsafe")
    return dx.astype(dy.dtype, copy=False)


def _divisor(g: Geometry, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    return g.divisor(count_include_pad)


def _divide(s, div, dtype):
    if np.dtype(dtype).kind in "iu":
        return trunc_divide(s, div).astype(dtype)
    acc = s.dtype
    return np.divide(s, np.asarray(div).astype(acc), out=s).astype(dtype, copy=False)


def avg_forward(x, g: Geometry, *, count_include_pad, divisor_override):
    s = np.zeros((x.shape[0],) + g.out_size, dtype=acc_dtype(x.dtype))
    for _, osl, isl in g.tap_slices():
        block = s[_ALL + osl]
        np.add(block, x[_ALL + isl], out=block, casting="unsafe")
    return _divide(s, _divisor(g, count_include_pad, divisor_override), x.dtype)


def avg_backward(dy, g: Geometry, *, count_include_pad, divisor_override):
    acc = acc_dtype(dy.dtype)
    share = _divide(dy.astype(acc), _divisor(g, count_include_pad, divisor_override), acc)
    dx = np.zeros((dy.shape[0],) + g.in_size, dtype=acc)
    for _, osl, isl in g.tap_slices():
        block = dx[_ALL + isl]
        np.add(block, share[_ALL + osl], out=block)
    return dx.astype(dy.dtype, copy=False)
