"""The window arithmetic, computed once for every op.

What belongs here: output sizes, ``(before, after)`` pads ("same" rules, ceil mode), which window
taps land inside the input, the divisors of averages, and the conversion of a window-local argmax
into PyTorch's per-plane flat indices. What does not: argument checking and error messages
(``_args``), touching array data (engines).

One output position ``o`` (per spatial dim) reads the input positions
``o * stride - pad_before + j * dilation`` for the taps ``j = 0 .. kernel - 1``; positions outside
``[0, size)`` are padding, which holds the mode's identity and is never read by an engine.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Geometry", "windows", "output_size", "same_pads", "TapRange"]


def output_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
                ceil_mode: bool) -> int:
    """Number of windows along one dim (PyTorch's ``pooling_output_shape``, with split pads).

    ``ceil_mode`` rounds up, but the extra partial window is dropped when it would start past the
    input and its left pad, as in PyTorch. With pads beyond PyTorch's limit (pairs, ONNX) that
    rule could also drop a full window; ceil mode never gives fewer windows than floor mode.
    The result may be < 1; the caller rejects that.
    """
    span = size + before + after - dilation * (kernel - 1) - 1     # may be < 0: floor/ceil of it
    floor_out = span // stride + 1
    if not ceil_mode:
        return floor_out
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return max(out, floor_out)


def same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """``(before, after)`` for TensorFlow/ONNX "SAME": output = ceil(size / stride).

    The total pad is ``max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)``; the odd
    one goes at the end (SAME_UPPER) or, with ``lower=True``, at the start (SAME_LOWER).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


@dataclass(frozen=True)
class TapRange:
    """Where one kernel tap ``j`` of one dim reads: outputs ``o_lo <= o < o_hi`` read the input at
    ``i_lo, i_lo + stride, ...`` (every one inside the input)."""

    o_lo: int
    o_hi: int
    i_lo: int

    @property
    def count(self) -> int:
        return self.o_hi - self.o_lo


@dataclass(frozen=True)
class Geometry:
    """Window geometry of one pooling call over ``k`` spatial dims (all tuples have length ``k``)."""

    in_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    out_size: tuple[int, ...]
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def ndim(self) -> int:
        return len(self.in_size)

    @property
    def taps(self) -> int:
        """Number of taps in one window."""
        return math.prod(self.kernel)

    def tap_ranges(self, d: int) -> tuple[TapRange, ...]:
        """For dim ``d``, the :class:`TapRange` of each tap ``j`` (index = ``j``)."""
        key = ("ranges", d)
        if key not in self._cache:
            L, s, dil, pb, n_out = (self.in_size[d], self.stride[d], self.dilation[d],
                                    self.pad_before[d], self.out_size[d])
            ranges = []
            for j in range(self.kernel[d]):
                off = j * dil - pb                      # input position of output 0's tap j
                o_lo = max(0, -(off // s))              # first o with o*s + off >= 0
                o_hi = max(o_lo, min(n_out, (L - 1 - off) // s + 1))  # past the last inside
                ranges.append(TapRange(o_lo, o_hi, o_lo * s + off))
            self._cache[key] = tuple(ranges)
        return self._cache[key]

    def tap_slices(self):
        """Yield ``(t, out_slices, in_slices)`` for every tap (row-major flat index ``t``) that
        reads at least one input element: ``y[out_slices]`` pairs elementwise with
        ``x[in_slices]``. Taps are yielded in row-major window order, PyTorch's scan order."""
        key = "slices"
        if key not in self._cache:
            per_dim = []
            for d in range(self.ndim):
                opts = []
                for r in self.tap_ranges(d):
                    stop = r.i_lo + (r.count - 1) * self.stride[d] + 1
                    opts.append((slice(r.o_lo, r.o_hi), slice(r.i_lo, stop, self.stride[d]),
                                 r.count > 0))
                per_dim.append(opts)
            out = []
            for t, combo in enumerate(np.ndindex(*self.kernel)):
                parts = [per_dim[d][j] for d, j in enumerate(combo)]
                if all(p[2] for p in parts):
                    out.append((t, tuple(p[0] for p in parts), tuple(p[1] for p in parts)))
            self._cache[key] = tuple(out)
        return self._cache[key]

    def tap_bounds(self, d: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """For dim ``d``: per output, ``(first, stop)`` of the taps ``j`` whose position lies in
        ``[lo, hi)``; ``first >= stop`` where none does. Closed form: the cost is the number of
        outputs, whatever the kernel."""
        s, dil, pb, k = self.stride[d], self.dilation[d], self.pad_before[d], self.kernel[d]
        a = np.arange(self.out_size[d], dtype=np.int64) * s - pb     # position of tap 0
        first = np.maximum(0, -((a - lo) // dil))                    # ceil((lo - a) / dil)
        stop = np.minimum(k, (hi - 1 - a) // dil + 1)
        return first, stop

    def inside_bounds(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`tap_bounds` of the taps inside the input."""
        return self.tap_bounds(d, 0, self.in_size[d])

    def counts(self, include_pad: bool) -> tuple[np.ndarray, ...]:
        """Per dim, how many taps of each output's window count toward an average's divisor.

        ``include_pad=True`` counts taps inside ``[-pad_before, size + pad_after)`` (the padded
        input; ceil-mode overhang beyond it is not counted, as in PyTorch); ``False`` counts taps
        inside the input. The divisor of a window is the product over dims.
        """
        key = ("counts", include_pad)
        if key not in self._cache:
            res = []
            for d in range(self.ndim):
                L, pb, pa = self.in_size[d], self.pad_before[d], self.pad_after[d]
                first, stop = self.tap_bounds(d, *((-pb, L + pa) if include_pad else (0, L)))
                res.append(np.maximum(stop - first, 0))
            self._cache[key] = tuple(res)
        return self._cache[key]

    def divisor(self, include_pad: bool) -> np.ndarray:
        """The divisor of every output, shape ``out_size`` (int64): product of :meth:`counts`."""
        key = ("divisor", include_pad)
        if key not in self._cache:
            div = np.ones((), dtype=np.int64)
            for d, c in enumerate(self.counts(include_pad)):
                shape = [1] * self.ndim
                shape[d] = -1
                div = div * c.reshape(shape)
            self._cache[key] = np.broadcast_to(div, self.out_size)
        return self._cache[key]

    def first_taps(self) -> np.ndarray:
        """Row-major flat index of each window's first tap inside the input (shape ``out_size``,
        int64), ``-1`` for a window that lies entirely in padding. PyTorch's max starts there."""
        if "first" not in self._cache:
            first = np.zeros((), dtype=np.int64)
            empty = np.zeros((), dtype=bool)
            tap_stride = 1
            for d in reversed(range(self.ndim)):
                fj = np.full(self.out_size[d], -1, dtype=np.int64)
                for j, r in reversed(list(enumerate(self.tap_ranges(d)))):
                    fj[r.o_lo:r.o_hi] = j
                shape = [1] * self.ndim
                shape[d] = -1
                fj = fj.reshape(shape)
                first = first + fj * tap_stride
                empty = empty | (fj < 0)
                tap_stride *= self.kernel[d]
            self._cache["first"] = np.where(empty, -1, np.broadcast_to(first, self.out_size))
        return self._cache["first"]

    @property
    def has_empty_window(self) -> bool:
        """True when some window reads no input element at all (only possible with large pads or
        dilation): some dim has an output whose taps all miss the input."""
        return any(bool((c == 0).any()) for c in self.counts(False))

    @property
    def wasteful(self) -> bool:
        """True when the kernel is far larger than what any window can read: more than 256 taps
        and over 4x the most input elements a window can hold (a kernel or pad of 10**9 on a
        small input). The window-scanning engines cost a loop per tap; such calls run on the
        box-window path (:meth:`clipped_boxes`), whose cost is bounded by the input and output
        sizes."""
        if self.taps <= 256:
            return False
        reach = math.prod(min(k, -(-L // dl)) for k, L, dl in zip(self.kernel, self.in_size,
                                                                   self.dilation))
        return self.taps > 4 * reach

    def clipped_boxes(self):
        """The windows cut to their taps inside the input, as box windows over a re-indexed
        input: ``(starts, sizes, empty, phase_maps)``. Per dim, ``starts``/``sizes`` are int64
        per output; ``empty`` is True where a window misses the input along that dim (its box
        is then a placeholder ``[0, 1)``). Where ``dilation > 1`` the taps of a window are every
        ``dilation``-th input element; ``phase_maps[d]`` (None for dilation 1) then lists, for
        each position of a re-indexed axis (the ``dilation`` residues one after another, each
        ``ceil(L / dilation)`` long), the input position it holds (-1: none), so that every
        window is an interval of the re-indexed axis."""
        starts, sizes, empty, maps = [], [], [], []
        for d in range(self.ndim):
            L, s, dil, pb = (self.in_size[d], self.stride[d], self.dilation[d],
                             self.pad_before[d])
            first, stop = self.inside_bounds(d)
            miss = stop <= first
            a = np.arange(self.out_size[d], dtype=np.int64) * s - pb
            z0 = a + first * dil                           # first inside position
            n = np.where(miss, 1, stop - first)
            if dil == 1:
                st = np.where(miss, 0, z0)
                maps.append(None)
            else:
                M = -(-L // dil)
                st = np.where(miss, 0, (z0 % dil) * M + z0 // dil)
                p = np.arange(dil * M, dtype=np.int64)
                z = (p // M) + dil * (p % M)
                maps.append(np.where(z < L, z, -1))
            starts.append(st)
            sizes.append(n)
            empty.append(miss)
        return tuple(starts), tuple(sizes), tuple(empty), tuple(maps)

    def plane_indices(self, arg: np.ndarray) -> np.ndarray:
        """PyTorch's indices from window-local argmax ``arg`` (canonical shape
        ``(B, *out_size, T)``): the flat row-major offset of the chosen element inside its own
        input plane, int64; ``-1`` where ``arg`` is ``-1`` (an all-padding window).

        The offset is a part that depends on the tap alone (a table over the ``taps``) plus
        one that depends on the output position alone (one plane, broadcast): the table is
        gathered straight into the result and the plane added in place, so no temporary of the
        output's size is made (PyTorch's own int64 indices cost the same)."""
        taps = self.taps
        tab = np.zeros(taps + 1, dtype=np.int64)        # [taps]: the -1 of an empty window
        base = np.zeros((1,) + self.out_size + (1,), dtype=np.int64)
        t = np.arange(taps, dtype=np.int64)
        plane_stride = 1
        for d in reversed(range(self.ndim)):
            j = t % self.kernel[d]
            t //= self.kernel[d]
            tab[:taps] += j * self.dilation[d] * plane_stride
            shape = [1] * (self.ndim + 2)
            shape[d + 1] = -1
            o = np.arange(self.out_size[d], dtype=np.int64).reshape(shape)
            base += (o * self.stride[d] - self.pad_before[d]) * plane_stride
            plane_stride *= self.in_size[d]
        idx = np.empty(arg.shape, dtype=np.int64)
        np.take(tab, arg, out=idx, mode="wrap")           # -1 wraps to tab[taps]
        idx += base
        if self.has_empty_window:
            idx[np.asarray(arg) < 0] = -1
        return idx


@functools.lru_cache(maxsize=512)
def windows(in_size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
            dilation: tuple[int, ...], pads: tuple[tuple[int, int], ...] | str,
            ceil_mode: bool) -> Geometry:
    """The :class:`Geometry` of one call; memoized on its (hashable, normalized) arguments.

    ``pads`` is a tuple of ``(before, after)`` per dim, or ``"same"`` / ``"same_lower"``.
    """
    if isinstance(pads, str):
        pads = tuple(same_pads(L, k, s, dl, pads == "same_lower")
                     for L, k, s, dl in zip(in_size, kernel, stride, dilation))
    out = tuple(output_size(L, k, s, dl, pb, pa, ceil_mode)
                for L, k, s, dl, (pb, pa) in zip(in_size, kernel, stride, dilation, pads))
    return Geometry(in_size, kernel, stride, dilation, tuple(p[0] for p in pads),
                    tuple(p[1] for p in pads), out)
