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
        q = q if (s >= 0) == (d > 0) else -q
        # a quotient outside the dtype (a negative divisor_override on unsigned input) wraps
        # modulo 2**bits, as the other engines' cast does, instead of raising
        return np.array(q % (1 << 64), dtype=np.uint64).astype(dtype)
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


# ----------------------------------------------------------------------------------------------
# box windows (adaptive, fractional pools) and index scatter/gather (unpool, their backward)
# ----------------------------------------------------------------------------------------------

def _box(boxes, plane: int, o: tuple[int, ...]):
    """Yield ``(flat, position)`` of every input element of box window ``o`` of plane
    ``plane`` (canonical batch index), in row-major order."""
    ranges = []
    for d in range(boxes.ndim):
        row = plane if boxes.starts[d].shape[0] > 1 else 0
        s = int(boxes.starts[d][row, o[d]])
        ranges.append(range(s, s + int(boxes.sizes[d][row, o[d]])))
    for pos in itertools.product(*ranges):
        yield int(np.ravel_multi_index(pos, boxes.in_size)), pos


def _box_outputs(boxes):
    return itertools.product(*(range(n) for n in boxes.out_size))


def box_max(x, boxes, *, with_arg):
    y = np.empty((x.shape[0],) + boxes.out_size + x.shape[-1:], dtype=x.dtype)
    idx = np.empty(y.shape, dtype=np.int64)
    is_float = x.dtype.kind == "f"
    for b, c in _planes(x):
        for o in _box_outputs(boxes):
            best, best_i = None, -1
            for i, pos in _box(boxes, b, o):
                v = x[(b,) + pos + (c,)]
                if best is None or (is_float and math.isnan(v)) or v > best:
                    best, best_i = v, i
            y[(b,) + o + (c,)] = best
            idx[(b,) + o + (c,)] = best_i
    return y, (idx if with_arg else None)


def box_sum(x, boxes):
    acc = acc_dtype(x.dtype)
    s = np.zeros((x.shape[0],) + boxes.out_size + x.shape[-1:], dtype=acc)
    for b, c in _planes(x):
        for o in _box_outputs(boxes):
            for _, pos in _box(boxes, b, o):
                s[(b,) + o + (c,)] += acc.type(x[(b,) + pos + (c,)])
    return s


def box_spread(g, boxes):
    dx = np.zeros((g.shape[0],) + boxes.in_size + g.shape[-1:], dtype=g.dtype)
    for b, c in _planes(g):
        for o in _box_outputs(boxes):
            for _, pos in _box(boxes, b, o):
                dx[(b,) + pos + (c,)] += g[(b,) + o + (c,)]
    return dx


def _each(a):
    """Every ``(b, o, t)`` of a canonical ``(B, *out, T)`` array, the output in row-major order."""
    for b, c in _planes(a):
        for o in itertools.product(*(range(n) for n in a.shape[1:-1])):
            yield (b,) + o + (c,), b, c


def scatter_add(dy, idx, in_size):
    acc = acc_dtype(dy.dtype)
    dx = np.zeros((dy.shape[0],) + tuple(in_size) + dy.shape[-1:], dtype=acc)
    for at, b, c in _each(dy):
        pos = np.unravel_index(int(idx[at]), in_size)
        dx[(b,) + pos + (c,)] += dy[at]
    return dx.astype(dy.dtype)


def scatter_set(x, idx, out_size):
    y = np.zeros((x.shape[0],) + tuple(out_size) + x.shape[-1:], dtype=x.dtype)
    for at, b, c in _each(x):                       # in order: the last write wins
        y[(b,) + np.unravel_index(int(idx[at]), out_size) + (c,)] = x[at]
    return y


def gather(src, idx):
    out = np.empty(idx.shape, dtype=src.dtype)
    for at, b, c in _each(idx):
        out[at] = src[(b,) + np.unravel_index(int(idx[at]), src.shape[1:-1]) + (c,)]
    return out
