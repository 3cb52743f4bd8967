"""Box-window pools (adaptive, fractional) as one reduction per spatial axis.

A box window is a product of intervals, so its max or sum is a max or sum along the last spatial
axis, then along the one before, and so on. The engines supply three axis primitives on arrays
viewed as ``(B, P, L, Q)`` (``B`` planes, the axis to reduce of length ``L``, ``P``/``Q`` the
other axes before/after it); this module composes them over ``(B, *spatial, T)`` arrays.

Why the separable max keeps PyTorch's tie and NaN rule: the row-major scan replaces the best when
``v > best`` or ``v`` is NaN, so it returns the first maximum, or the last NaN. Reducing the last
axis first picks, in every row, that row's first maximum (last NaN); the next axis picks the first
row whose winner is the maximum (the last row holding a NaN) -- the same element as the full
row-major scan. The index rides along: ``index = position * stride_of_axis + carried index``.
An engine may reduce the first axis first instead (``first_axis_first``) if its pass compares
carried candidates by (value, flat index): the last NaN, else the first maximum, whatever order
the candidates come in.
"""
from __future__ import annotations

import math

import numpy as np


def _view(a: np.ndarray, d: int) -> np.ndarray:
    """``(B, *spatial, T)`` -> ``(B, P, L, Q)`` around spatial axis ``d``."""
    sh = a.shape
    return a.reshape(sh[0], math.prod(sh[1:1 + d]), sh[1 + d], math.prod(sh[2 + d:]))


def box_max(ops, x: np.ndarray, boxes, with_arg: bool):
    """Max of every box window; with ``with_arg`` also the int64 flat index of the chosen
    element inside its ``(*spatial)`` plane (PyTorch's convention). The last axis first, or,
    for a channels-first array (``T == 1``) where ``ops.first_axis_first`` (its ``axis_max``
    compares carried candidates by value and flat index, which picks the same element in any
    order), the first: every pass but the last then runs along whole rows, and the last one,
    short windows one element at a time, on the smallest array. (Channels-last arrays run
    along rows of ``T`` in every pass; there the carried comparison costs more than it saves.)"""
    n = boxes.ndim
    first = getattr(ops, "first_axis_first", False) and x.shape[-1] == 1
    order = range(n) if first else reversed(range(n))
    cur, idx = x, None
    for d in order:
        shape = cur.shape[:1 + d] + (boxes.out_size[d],) + cur.shape[2 + d:]
        y4, i4 = ops.axis_max(_view(cur, d), None if idx is None else _view(idx, d),
                              boxes.starts[d], boxes.sizes[d], boxes.max_size(d),
                              math.prod(boxes.in_size[d + 1:]), with_arg,
                              any_order=first and idx is not None)
        cur = y4.reshape(shape)
        idx = i4.reshape(shape) if with_arg else None
    return cur, idx


def box_sum(ops, x: np.ndarray, boxes) -> np.ndarray:
    """Sum of every box window, in the accumulation dtype of ``x`` (``x`` already widened)."""
    cur = x
    for d in reversed(range(boxes.ndim)):
        shape = cur.shape[:1 + d] + (boxes.out_size[d],) + cur.shape[2 + d:]
        cur = ops.axis_sum(_view(cur, d), boxes.starts[d], boxes.sizes[d],
                           boxes.max_size(d)).reshape(shape)
    return cur


def box_spread(ops, g: np.ndarray, boxes) -> np.ndarray:
    """The adjoint of :func:`box_sum`: every window's ``g`` added to each element of the window."""
    cur = g
    for d in range(boxes.ndim):
        shape = cur.shape[:1 + d] + (boxes.in_size[d],) + cur.shape[2 + d:]
        cur = ops.axis_spread(_view(cur, d), boxes.starts[d], boxes.sizes[d],
                              boxes.in_size[d]).reshape(shape)
    return cur
