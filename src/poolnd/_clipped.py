"""Fixed pools whose kernel is mostly padding, on the box-window engines.

A window-scanning engine loops over every tap of a window, so a kernel of 10**9 taps on an 8x8
input (possible with pair or string padding) costs 10**9 steps per window although at most 64 of
them read the input. When :attr:`Geometry.wasteful <poolnd._geometry.Geometry.wasteful>` says so,
the driver wraps the engine in :class:`Clipped`, which cuts every window to its taps inside the
input (a box, after re-indexing an axis with dilation so that a window's every-``dilation``-th
elements stand side by side) and runs the engines' box reductions, the ones the adaptive pools
use. The cost is then bounded by the input and output sizes. Results are the same numbers: the
same elements, scanned in the same row-major order (first maximum, last NaN), the same divisors.

This module composes engine calls; it holds no kernel and checks no argument.
"""
from __future__ import annotations

import numpy as np

from ._boxes import Boxes
from ._geometry import Geometry
from .engines._common import acc_dtype, divide, identity, trunc_divide


class Clipped:
    """The engine protocol (``max_forward`` ... ``avg_backward``) over ``base``'s box
    reductions. ``max_forward``'s ``arg`` is already PyTorch's per-plane index (int64), which
    ``plane_arg = True`` tells the driver."""

    plane_arg = True

    def __init__(self, base):
        self.base = base
        self.name = base.name
        self.channels_last = getattr(base, "channels_last", False)

    # -- the re-indexed input and its boxes ------------------------------------------------

    @staticmethod
    def _plan(g: Geometry):
        if "clipped" not in g._cache:
            starts, sizes, empty, maps = g.clipped_boxes()
            in_t = tuple(L if m is None else m.size for L, m in zip(g.in_size, maps))
            boxes = Boxes(in_t, g.out_size, tuple(s[None] for s in starts),
                          tuple(n[None] for n in sizes))
            mask = None
            if any(e.any() for e in empty):          # windows that miss the input
                mask = np.zeros(g.out_size, dtype=bool)
                for d, e in enumerate(empty):
                    shape = [1] * g.ndim
                    shape[d] = -1
                    mask = mask | e.reshape(shape)
                mask = mask[None, ..., None]
            g._cache["clipped"] = (boxes, maps, mask)
        return g._cache["clipped"]

    @staticmethod
    def _gather(x: np.ndarray, maps) -> np.ndarray:
        """``x`` (B, *spatial, T) re-indexed along every dilated axis (holes read element 0,
        which no box covers)."""
        for d, m in enumerate(maps):
            if m is not None:
                x = np.take(x, np.maximum(m, 0), axis=1 + d)
        return x

    @staticmethod
    def _scatter_back(dx_t: np.ndarray, maps, in_size) -> np.ndarray:
        """The re-indexed gradient back on the input's axes."""
        for d, m in enumerate(maps):
            if m is not None:
                where = np.empty(in_size[d], dtype=np.int64)
                where[m[m >= 0]] = np.nonzero(m >= 0)[0]
                dx_t = np.take(dx_t, where, axis=1 + d)
        return dx_t

    @staticmethod
    def _plane_index(idx_t: np.ndarray, boxes: Boxes, maps, in_size) -> np.ndarray:
        """Per-plane flat indices in the re-indexed plane -> in the input's plane."""
        if all(m is None for m in maps):
            return idx_t
        coords = np.unravel_index(idx_t, boxes.in_size)
        coords = [c if m is None else m[c] for c, m in zip(coords, maps)]
        return np.ravel_multi_index(coords, in_size).astype(np.int64)

    # -- the protocol ------------------------------------------------------------------------

    def max_forward(self, x, g: Geometry, *, minimum, with_arg):
        boxes, maps, mask = self._plan(g)
        xt = self._gather(x, maps)
        if minimum:       # the first minimum (last NaN) of x is the first maximum of its mirror
            xt = -xt if x.dtype.kind == "f" else ~xt
        y, idx = self.base.box_max(xt, boxes, with_arg=True)
        if minimum:
            y = -y if x.dtype.kind == "f" else ~y
        y = np.ascontiguousarray(y, dtype=x.dtype)
        idx = self._plane_index(idx, boxes, maps, g.in_size)
        if mask is not None:
            y[np.broadcast_to(mask, y.shape)] = identity(x.dtype, minimum)
            idx[np.broadcast_to(mask, idx.shape)] = -1
        return y, (idx if with_arg else None)

    def rank_forward(self, x, g: Geometry, *, mode, omit, with_arg):
        """Median, mode (and max/min skipping NaN) over the clipped boxes. A box's elements are
        all inside the input and keep the window's scan order, so the reduction is that of the
        window. Outputs with the same box along every dim share one reduction: the boxes are
        gathered per distinct (start, size) combination, so the cost follows the outputs and
        the elements a box holds, never the kernel. The reduction is the NumPy engine's
        :func:`~poolnd.engines._numpy.reduce_taps` for every base engine: its result is an
        element picked by the one rule, so every engine gives the same bits."""
        from .engines._numpy import reduce_taps
        boxes, maps, mask = self._plan(g)
        xt = self._gather(x, maps)
        B, T = x.shape[0], x.shape[-1]
        y = np.empty((B,) + g.out_size + (T,), dtype=x.dtype)
        idx = np.empty(y.shape, dtype=np.int64)
        uniq = [np.unique(np.stack([st[0], n[0]]), axis=1, return_inverse=True)
                for st, n in zip(boxes.starts, boxes.sizes)]
        for combo in np.ndindex(*(u[0].shape[1] for u in uniq)):
            starts = [int(u[0][0, c]) for u, c in zip(uniq, combo)]
            sizes = [int(u[0][1, c]) for u, c in zip(uniq, combo)]
            box = xt[(slice(None),) + tuple(slice(a, a + n) for a, n in zip(starts, sizes))]
            w = np.moveaxis(box.reshape(B, -1, T), 1, -1)                 # (B, T, taps)
            value, tap = reduce_taps(w, np.ones((), dtype=bool), mode, omit)
            # the tap as a position of the re-indexed plane
            local = np.unravel_index(tap, sizes)
            flat = np.ravel_multi_index([a + c for a, c in zip(starts, local)], boxes.in_size)
            where = np.ix_(*(np.asarray(u[1]).reshape(-1) == c for u, c in zip(uniq, combo)))
            sel = (slice(None),) + where + (slice(None),)
            shape = (B,) + (1,) * g.ndim + (T,)
            y[sel] = value.reshape(shape)
            idx[sel] = flat.reshape(shape)
        idx = self._plane_index(idx, boxes, maps, g.in_size)
        if mask is not None:                  # windows that miss the input: max's identity
            y[np.broadcast_to(mask, y.shape)] = identity(x.dtype, mode == "min")
            idx[np.broadcast_to(mask, idx.shape)] = -1
        return y, (idx if with_arg else None)

    def max_backward(self, dy, arg, g: Geometry):
        dy = dy.copy()
        dy[arg < 0] = 0
        return self.base.scatter_add(dy, np.maximum(arg, 0), g.in_size)

    def _divisor(self, g: Geometry, count_include_pad, divisor_override):
        if divisor_override:
            return np.asarray(divisor_override, dtype=np.int64)
        return g.divisor(count_include_pad)[None, ..., None]

    def avg_forward(self, x, g: Geometry, *, count_include_pad, divisor_override):
        boxes, maps, mask = self._plan(g)
        s = self.base.box_sum(self._gather(x, maps), boxes)
        if mask is not None:
            s[np.broadcast_to(mask, s.shape)] = 0
        d = self._divisor(g, count_include_pad, divisor_override)
        if mask is not None and not divisor_override:
            d = np.where(d == 0, 1, d)           # a window of only padding: sum 0
        return divide(s, d, x.dtype)

    def avg_backward(self, dy, g: Geometry, *, count_include_pad, divisor_override):
        boxes, maps, mask = self._plan(g)
        d = self._divisor(g, count_include_pad, divisor_override)
        if mask is not None and not divisor_override:
            d = np.where(d == 0, 1, d)
        acc = acc_dtype(dy.dtype)
        dyw = dy.astype(acc)
        if dy.dtype.kind in "iu":
            share = trunc_divide(dyw, d)
        else:
            share = dyw / d.astype(acc)
        if mask is not None:
            share[np.broadcast_to(mask, share.shape)] = 0
        dx_t = self.base.box_spread(np.ascontiguousarray(share), boxes)
        return self._scatter_back(dx_t, maps, g.in_size).astype(dy.dtype, copy=False)
