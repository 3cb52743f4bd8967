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
from ._common import acc_dtype, arg_dtype, identity

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
# rank reductions: median, mode, and max/min that skip NaN (nan_policy="omit")
# ----------------------------------------------------------------------------------------------

def _is_nan(v) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def choose(mode: str, values: list):
    """The value a window's reducer picks from its (non-NaN) ``values``: the lower median (the
    ceil(n/2)-th smallest), the mode (most frequent; the smallest of tied values), the max or
    the min. Values compare with ``==`` and ``<``, so -0.0 and 0.0 are one value."""
    ordered = sorted(values)
    if mode == "median":
        return ordered[(len(ordered) - 1) // 2]
    if mode == "max":
        return ordered[-1]
    if mode == "min":
        return ordered[0]
    best, best_count = None, 0
    for v in ordered:                          # ascending: a later value must count strictly more
        count = sum(1 for u in ordered if u == v)
        if count > best_count:
            best, best_count = v, count
    return best


def rank_forward(x, g, *, mode, omit, with_arg):
    """``mode`` in "median", "mode", "max", "min" over the elements of each window (padding never
    counts). A NaN makes the result NaN (at the last NaN's tap), unless ``omit`` skips NaNs; a
    window of NaNs only still gives NaN there. Otherwise the chosen tap is the first (scan
    order) holding the chosen value. The result is always the element at the chosen tap. A
    window wholly in padding gives max's identity and ``arg = -1`` (only max and min get here
    with one)."""
    y = np.empty((x.shape[0],) + g.out_size + x.shape[-1:], dtype=x.dtype)
    arg = np.full(y.shape, -1, dtype=arg_dtype(g.taps))
    for b, c in _planes(x):
        for o in _outputs(g):
            taps = [(t, x[(b,) + pos + (c,)]) for t, pos in _window(g, o)]
            nan_taps = [t for t, v in taps if _is_nan(v)]
            values = [v for t, v in taps if not _is_nan(v)]
            at = (b,) + o + (c,)
            if not taps:                            # wholly in padding: max/min's identity
                y[at] = identity(x.dtype, mode == "min")
            elif nan_taps and (not omit or not values):       # NaN: the last NaN, as max
                y[at], arg[at] = dict(taps)[nan_taps[-1]], nan_taps[-1]
            else:
                chosen = choose(mode, values)
                t, v = next((t, v) for t, v in taps if v == chosen)   # the first that holds it
                y[at], arg[at] = v, t
    return y, (arg if with_arg else None)


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
