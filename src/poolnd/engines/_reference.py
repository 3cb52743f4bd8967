"""The reference engine: the pooling chapter's naive loops, written to be read, never optimized.

For every plane, every output position and every kernel tap, it computes the input position
``o * stride - pad_before + j * dilation`` and skips taps that fall in the padding. It is the
executable specification the other engines are tested against; it is slow by design (use it on
small arrays). Arrays are canonical ``(B, *spatial, T)``: each ``(b, ..., c)`` is one plane.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._geometry import Geometry
from ._common import acc_dtype, arg_dtype

name = "reference"
channels_last = True


def _window(g: Geometry, o: tuple[int, ...]):
    """Yield ``(t, position)`` for the taps of output ``o`` that land inside the input, in
    row-major order; ``t`` is the tap's flat index in the window."""
    for t, j in enumerate(itertools.product(*(range(k) for k in g.kernel))):
        pos = tuple(o[d] * g.stride[d] - g.pad_before[d] + j[d] * g.dilation[d]
                    for d in range(g.ndim))
        if all(0 <= pos[d] < g.in_size[d] for d in range(g.ndim)):
            yield t, pos


def _divisor(g: Geometry, o, count_include_pad: bool, divisor_override) -> int:
    if divisor_override is not None:
        return divisor_override
    count = 1
    for d in range(g.ndim):
        lo, hi = ((-g.pad_before[d], g.in_size[d] + g.pad_after[d]) if count_include_pad
                  else (0, g.in_size[d]))
        starts = o[d] * g.stride[d] - g.pad_before[d]
        count *= sum(1 for j in range(g.kernel[d]) if lo <= starts + j * g.dilation[d] < hi)
    return count


def _planes(a):
    """Every plane ``(b, c)`` of a canonical ``(B, *spatial, T)`` array."""
    return itertools.product(range(a.shape[0]), range(a.shape[-1]))


def _outputs(g: Geometry):
    return itertools.product(*(range(n) for n in g.out_size))


def max_forward(x, g, *, minimum, with_arg):
    y = np.empty((x.shape[0],) + g.out_size + x.shape[-1:], dtype=x.dtype)
    arg = np.full(y.shape, -1, dtype=arg_dtype(g.taps))
    is_float = x.dtype.kind == "f"
    for b, c in _planes(x):
        for o in _outputs(g):
            best, best_t = None, -1
            for t, pos in _window(g, o):
                v = x[(b,) + pos + (c,)]
                if (best is None                               # the first tap inside the input
                        or (is_float and math.isnan(v))        # a NaN always takes over
                        or (v < best if minimum else v > best)):   # strictly better: ties keep
                    best, best_t = v, t
            if best is None:                   # the window lies wholly in padding
                best = np.inf if minimum else -np.inf
                if not is_float:
                    info = np.iinfo(x.dtype)
                    best = info.max if minimum else info.min
            y[(b,) + o + (c,)] = best
            arg[(b,) + o + (c,)] = best_t
    return y, (arg if with_arg else None)


def max_backward(dy, arg, g):
    acc = acc_dtype(dy.dtype)
    dx = np.zeros((dy.shape[0],) + g.in_size + dy.shape[-1:], dtype=acc)
    for b, c in _planes(dy):
        for o in _outputs(g):
            for t, pos in _window(g, o):
                if t == arg[(b,) + o + (c,)]:
                    dx[(b,) + pos + (c,)] += dy[(b,) + o + (c,)]
    return dx.astype(dy.dtype)


def _divide(s, d, dtype):
    if np.dtype(dtype).kind in "iu":                      # C-style: truncate toward zero
        q = abs(int(s)) // abs(d)
        return q if (s >= 0) == (d > 0) else -q
    return acc_dtype(dtype).type(s) / acc_dtype(dtype).type(d)


def avg_forward(x, g, *, count_include_pad, divisor_override):
    acc = acc_dtype(x.dtype)
    y = np.empty((x.shape[0],) + g.out_size + x.shape[-1:], dtype=x.dtype)
    for b, c in _planes(x):
        for o in _outputs(g):
            s = acc.type(0)
            for _, pos in _window(g, o):
                s = s + acc.type(x[(b,) + pos + (c,)])
            y[(b,) + o + (c,)] = _divide(s, _divisor(g, o, count_include_pad, divisor_override),
                                  x.dtype)
    return y


def avg_backward(dy, g, *, count_include_pad, divisor_override):
    acc = acc_dtype(dy.dtype)
    dx = np.zeros((dy.shape[0],) + g.in_size + dy.shape[-1:], dtype=acc)
    for b, c in _planes(dy):
        for o in _outputs(g):
            share = _divide(acc.type(dy[(b,) + o + (c,)]),
                            _divisor(g, o, count_include_pad, divisor_override), dy.dtype)
            for _, pos in _window(g, o):
                dx[(b,) + pos + (c,)] += share
    return dx.astype(dy.dtype)
