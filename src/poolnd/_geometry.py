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
                L, s, dil, pb, pa = (self.in_size[d], self.stride[d], self.dilation[d],
                                     self.pad_before[d], self.pad_after[d])
                lo, hi = (-pb, L + pa) if include_pad else (0, L)
                o = np.arange(self.out_size[d])[:, None]
                pos = o * s - pb + np.arange(self.kernel[d])[None, :] * dil
                res.append(((pos >= lo) & (pos < hi)).sum(axis=1).astype(np.int64))
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
        dilation)."""
        return bool((self.first_taps() < 0).any())

    def plane_indices(self, arg: np.ndarray) -> np.ndarray:
        """PyTorch's indices from window-local argmax ``arg`` (canonical shape
        ``(B, *out_size, T)``): the flat row-major offset of the chosen element inside its own
        input plane, int64; ``-1`` where ``arg`` is ``-1`` (an all-padding window)."""
        arg = np.asarray(arg, dtype=np.int64)
        idx = np.zeros(arg.shape, dtype=np.int64)
        rest = arg.copy()
        plane_stride = 1
        for d in reversed(range(self.ndim)):
            j = rest % self.kernel[d]
            rest //= self.kernel[d]
            shape = [1] * (self.ndim + 2)
            shape[d + 1] = -1
            o = np.arange(self.out_size[d], dtype=np.int64).reshape(shape)
            pos = o * self.stride[d] - self.pad_before[d] + j * self.dilation[d]
            idx += pos * plane_stride
            plane_stride *= self.in_size[d]
        idx[arg < 0] = -1
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
