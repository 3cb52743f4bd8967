"""The NumPy engine: vectorized over every output at once, one Python iteration per kernel tap.

Arrays are canonical ``(B, *spatial, T)`` (channels-first with ``T = 1``, or channels-last).

For each tap, the outputs whose tap lands inside the input form a strided block of the input
(``Geometry.tap_slices``); the engine combines that block into the output in place. No padded copy
and no im2col: extra memory is a few output-sized temporaries. Taps are visited in row-major window
order, so ties and NaN resolve exactly as in the reference engine.
"""
from __future__ import annotations

import math

import numpy as np

from .._geometry import Geometry
from ._common import acc_dtype, arg_dtype, divide, identity

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


def avg_forward(x, g: Geometry, *, count_include_pad, divisor_override):
    s = np.zeros((x.shape[0],) + g.out_size + x.shape[-1:], dtype=acc_dtype(x.dtype))
    for _, osl, isl in g.tap_slices():
        block = s[_ALL + osl]
        np.add(block, x[_ALL + isl], out=block, casting="unsafe")
    return divide(s, _divisor(g, count_include_pad, divisor_override), x.dtype)


def avg_backward(dy, g: Geometry, *, count_include_pad, divisor_override):
    acc = acc_dtype(dy.dtype)
    share = divide(dy.astype(acc), _divisor(g, count_include_pad, divisor_override), acc)
    dx = np.zeros((dy.shape[0],) + g.in_size + dy.shape[-1:], dtype=acc)
    for _, osl, isl in g.tap_slices():
        block = dx[_ALL + isl]
        np.add(block, share[_ALL + osl], out=block)
    return dx.astype(dy.dtype, copy=False)


# ----------------------------------------------------------------------------------------------
# rank reductions: median, mode, and max/min that skip NaN (nan_policy="omit")
# ----------------------------------------------------------------------------------------------

_CHUNK = 1 << 22                  # gathered window elements per step (memory stays bounded)


def reduce_taps(w, valid, mode, omit):
    """Reduce the last axis of ``w`` (``(..., taps)``, taps in scan order) whose elements
    ``valid`` (broadcastable to ``w``) marks as inside the input -> ``(value, tap)``.

    The reducer's rule (the reference engine's :func:`~._reference.rank_forward`): a NaN makes
    the result NaN at the last NaN's tap unless ``omit`` skips NaNs (a window of NaNs only
    still gives NaN there); otherwise the value is the lower median, the mode (smallest of tied
    values), the max or the min of the rest, and the tap is the first that holds it. The value
    is always the element at the tap. A window with no valid element gives max's identity and
    tap -1. Vectorized: one ``np.sort`` over the taps, then run lengths for the mode."""
    K = w.shape[-1]
    valid = np.broadcast_to(valid, w.shape)
    is_float = w.dtype.kind == "f"
    nan = (w != w) & valid if is_float else None
    keep = valid & ~nan if is_float else valid
    m = keep.sum(-1)                                    # kept (non-NaN) elements per window
    # what is not kept sorts after every kept element (NaN for floats, the largest integer:
    # the m smallest entries are then the kept values whatever ties the filler makes)
    filler = np.nan if is_float else np.iinfo(w.dtype).max
    s = np.sort(np.where(keep, w, w.dtype.type(filler)), axis=-1)
    if mode == "mode":
        i = np.arange(K)
        new_run = np.ones(s.shape, dtype=bool)
        new_run[..., 1:] = s[..., 1:] != s[..., :-1]
        start = np.maximum.accumulate(np.where(new_run, i, 0), axis=-1)
        run = np.where(i < m[..., None], i - start + 1, 0)
        k = run.argmax(-1)            # the first longest run: the smallest most frequent value
    else:
        k = {"median": (m - 1) // 2, "max": m - 1, "min": np.zeros_like(m)}[mode]
    chosen = np.take_along_axis(s, np.maximum(k, 0)[..., None], -1)
    tap = ((w == chosen) & keep).argmax(-1)
    if is_float:
        has_nan = nan.any(-1)
        last_nan = K - 1 - nan[..., ::-1].argmax(-1)
        tap = np.where(has_nan & ((not omit) | (m == 0)), last_nan, tap)
    value = np.take_along_axis(w, tap[..., None], -1)[..., 0]
    empty = ~valid.any(-1)
    if empty.any():
        value = np.where(empty, identity(w.dtype, mode == "min"), value)
        tap = np.where(empty, -1, tap)
    return value, tap


def rank_forward(x, g: Geometry, *, mode, omit, with_arg):
    """Median, mode (and max/min skipping NaN) of every window: the window taps are gathered
    into a ``(B, outputs, T, taps)`` array a chunk of outputs at a time and reduced by
    :func:`reduce_taps`."""
    B, T = x.shape[0], x.shape[-1]
    Q, K = math.prod(g.out_size), g.taps
    xf = x.reshape(B, -1, T)
    y = np.empty((B, Q, T), dtype=x.dtype)
    arg = np.empty((B, Q, T), dtype=arg_dtype(g.taps))
    rows = max(1, _CHUNK // max(1, B * K * T))
    for q0 in range(0, Q, rows):
        sl = slice(q0, min(Q, q0 + rows))
        offs = g.tap_offsets(sl.start, sl.stop)                         # (nq, K)
        w = np.moveaxis(xf[:, np.maximum(offs, 0), :], 2, -1)           # (B, nq, T, K)
        y[:, sl], arg[:, sl] = reduce_taps(w, (offs >= 0)[:, None, :], mode, omit)
    shape = (B,) + g.out_size + (T,)
    return y.reshape(shape), (arg.reshape(shape) if with_arg else None)


# ----------------------------------------------------------------------------------------------
# box windows (adaptive, fractional pools) and index scatter/gather (unpool, their backward)
# ----------------------------------------------------------------------------------------------

def _take(v4, pos):
    """``v4[b, p, pos[b or 0, o], q]`` -> ``(B, P, O, Q)``."""
    if pos.shape[0] == 1:
        return v4[:, :, pos[0], :]
    return np.take_along_axis(v4, pos[:, None, :, None], axis=2)


class _Axis:
    """The three axis primitives of :mod:`._separable`, one Python step per window tap."""

    @staticmethod
    def axis_max(v4, c4, starts, sizes, max_size, mult, with_arg, any_order=False):
        # any_order: never asked of this engine (no first_axis_first)
        B, P, _, Q = v4.shape
        shape = (B, P, starts.shape[1], Q)
        y = np.empty(shape, dtype=v4.dtype)
        idx = np.zeros(shape, dtype=np.int64) if with_arg else None
        is_float = v4.dtype.kind == "f"
        for t in range(max_size):
            pos = starts + np.minimum(t, sizes - 1)          # repeats the last tap: harmless
            v = _take(v4, pos)
            if with_arg:
                cand = pos[:, None, :, None] * mult
                if c4 is not None:
                    cand = cand + _take(c4, pos)
            if t == 0:
                y[...] = v
                if with_arg:
                    idx[...] = cand
                continue
            take = np.greater(v, y)
            if is_float:
                take |= np.not_equal(v, v)
            take &= (t < sizes)[:, None, :, None]
            np.copyto(y, v, where=take)
            if with_arg:
                np.copyto(idx, np.broadcast_to(cand, shape), where=take)
        return y, idx

    @staticmethod
    def axis_sum(v4, starts, sizes, max_size):
        B, P, _, Q = v4.shape
        s = np.zeros((B, P, starts.shape[1], Q), dtype=v4.dtype)
        for t in range(max_size):
            pos = starts + np.minimum(t, sizes - 1)
            np.add(s, _take(v4, pos), out=s, where=(t < sizes)[:, None, :, None])
        return s

    @staticmethod
    def axis_spread(g4, starts, sizes, length):
        B, P, _, Q = g4.shape
        out = np.zeros((B, P, length, Q), dtype=g4.dtype)
        for t in range(int(sizes.max()) if sizes.size else 0):
            pos = starts + np.minimum(t, sizes - 1)
            v = np.where((t < sizes)[:, None, :, None], g4, 0)
            if pos.shape[0] == 1:
                np.add.at(out, (slice(None), slice(None), pos[0]), v)
            else:
                np.add.at(out, (np.arange(B)[:, None], slice(None), pos),
                          v.transpose(0, 2, 1, 3))
        return out


def box_max(x, boxes, *, with_arg):
    from ._separable import box_max as compose
    return compose(_Axis, x, boxes, with_arg)


def box_sum(x, boxes):
    from ._separable import box_sum as compose
    return compose(_Axis, x.astype(acc_dtype(x.dtype), copy=False), boxes)


def box_spread(g, boxes):
    from ._separable import box_spread as compose
    return compose(_Axis, g, boxes)


def _flat(idx, plane):
    """Per-plane indices of a canonical ``(B, *out, T)`` array -> flat offsets into a
    ``(B, plane, T)`` array."""
    B, T = idx.shape[0], idx.shape[-1]
    b = np.arange(B, dtype=np.int64).reshape((B,) + (1,) * (idx.ndim - 1))
    t = np.arange(T, dtype=np.int64)
    return ((b * plane + idx) * T + t).ravel()


def scatter_add(dy, idx, in_size):
    """``dx[b, idx[b, o, t], t] += dy[b, o, t]`` over a zero ``(B, *in_size, T)`` array."""
    acc = acc_dtype(dy.dtype)
    plane = int(np.prod(in_size))
    dx = np.zeros((dy.shape[0],) + tuple(in_size) + dy.shape[-1:], dtype=acc)
    np.add.at(dx.reshape(-1), _flat(idx, plane), dy.astype(acc, copy=False).ravel())
    return dx.astype(dy.dtype, copy=False)


def scatter_set(x, idx, out_size):
    """``y[b, idx[b, o, t], t] = x[b, o, t]`` over zeros; of repeated indices the last in
    row-major order wins."""
    plane = int(np.prod(out_size))
    y = np.zeros((x.shape[0],) + tuple(out_size) + x.shape[-1:], dtype=x.dtype)
    flat = _flat(idx, plane)
    _, first_of_reversed = np.unique(flat[::-1], return_index=True)
    last = flat.size - 1 - first_of_reversed
    y.reshape(-1)[flat[last]] = x.reshape(-1)[last]
    return y


def gather(src, idx):
    """``out[b, o, t] = src[b, idx[b, o, t], t]``."""
    plane = int(np.prod(src.shape[1:-1]))
    return src.reshape(-1)[_flat(idx, plane)].reshape(idx.shape)
