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

import bisect
import functools
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Geometry", "windows", "output_size", "same_pads", "TapRange", "Block", "chunk_blocks",
           "adaptive_chunk_blocks", "chunk_pieces"]


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
        if "wasteful" not in self._cache:        # asked on every forward and backward
            reach = math.prod(min(k, -(-L // dl)) for k, L, dl in zip(self.kernel, self.in_size,
                                                                       self.dilation))
            self._cache["wasteful"] = self.taps > 256 and self.taps > 4 * reach
        return self._cache["wasteful"]

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

    def tap_positions(self) -> np.ndarray:
        """Per dim, the input position of tap ``j`` of output ``o``: int64
        ``(ndim, max(out_size), max(kernel))``, ``-1`` where it lies in the padding (or the
        ceil-mode overhang, or past this dim's outputs or kernel). Small: the sum, not the
        product, of the dims' sizes."""
        if "positions" not in self._cache:
            pos = np.full((self.ndim, max(self.out_size), max(self.kernel)), -1, dtype=np.int64)
            for d in range(self.ndim):
                o = np.arange(self.out_size[d], dtype=np.int64)[:, None]
                z = o * self.stride[d] - self.pad_before[d] + (
                    np.arange(self.kernel[d], dtype=np.int64)[None, :] * self.dilation[d])
                pos[d, :self.out_size[d], :self.kernel[d]] = np.where(
                    (z >= 0) & (z < self.in_size[d]), z, -1)
            self._cache["positions"] = pos
        return self._cache["positions"]

    def tap_offsets(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The flat in-plane input offset of every tap of the outputs ``start <= q < stop``
        (row-major flat output index): int64 ``(stop - start, taps)``, taps row-major, ``-1``
        where the tap lies in the padding. The rank reductions (median, mode) gather their
        windows with it, a block of outputs at a time."""
        stop = math.prod(self.out_size) if stop is None else stop
        pos = self.tap_positions()
        o = np.unravel_index(np.arange(start, stop, dtype=np.int64), self.out_size)
        j = np.unravel_index(np.arange(self.taps, dtype=np.int64), self.kernel)
        off = np.zeros((stop - start, self.taps), dtype=np.int64)
        inside = np.ones(off.shape, dtype=bool)
        plane_stride = 1
        for d in reversed(range(self.ndim)):
            z = pos[d][o[d][:, None], j[d][None, :]]
            off += z * plane_stride
            inside &= z >= 0
            plane_stride *= self.in_size[d]
        return np.where(inside, off, -1)

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
        flat_arg, flat_idx = np.ascontiguousarray(arg).reshape(-1), idx.reshape(-1)
        step = 1 << 20                   # take() converts its indices to intp: in chunks
        for i in range(0, flat_idx.size, step):
            np.take(tab, flat_arg[i:i + step], out=flat_idx[i:i + step], mode="wrap")
        idx += base                                       # (-1 wrapped to tab[taps] above)
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


# ----------------------------------------------------------------------------------------------
# chunked pools (the Dask front door): which outputs each block computes and what it reads
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """One output block of a chunked pool along one dim: outputs ``out_lo <= o < out_hi`` are
    computed from the input ``[in_lo, in_hi)`` alone, pooled with the pads ``(pad_before,
    pad_after)`` (and the call's kernel, stride, dilation and ceil mode), which give exactly
    those outputs, reading the same taps with the same divisors as the whole-array call."""

    out_lo: int
    out_hi: int
    in_lo: int
    in_hi: int
    pad_before: int = 0
    pad_after: int = 0


def _merge_empty(spans, hull):
    """Output spans ``[(o0, o1), ...]`` without empty ones, and with a span whose windows read
    no input (``hull(o0, o1)`` empty: all of it in the left or right padding) merged into its
    neighbour."""
    spans = [sp for sp in spans if sp[1] > sp[0]]
    while len(spans) > 1 and hull(*spans[0])[0] >= hull(*spans[0])[1]:
        spans[:2] = [(spans[0][0], spans[1][1])]
    while len(spans) > 1 and hull(*spans[-1])[0] >= hull(*spans[-1])[1]:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    return spans


def chunk_blocks(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
                 ceil_mode: bool, bounds: tuple[int, ...]) -> tuple[Block, ...]:
    """Output blocks of a fixed-window pool along one dim whose input is chunked at ``bounds``
    (``0 = b_0 < b_1 < ... < b_m = size``).

    Output ``o`` reads ``[o * stride - before, o * stride - before + dilation * (kernel - 1)
    + 1)``. Block ``i`` holds the outputs whose window starts in chunk ``i`` (the first block
    also those starting in the left pad, the last those starting past the input), so there are
    about ``chunk / stride`` outputs per block and at most one block per chunk; it reads the hull
    of those of its windows that overlap the input, clipped to it: its own chunk plus exactly
    the halo its windows need.
    Its pads are what its windows hang over that hull, except that a ceil-mode window running
    past the padded input keeps the call's own ``after`` (so its divisor counts the same taps).
    A block whose windows all lie in the padding joins its neighbour; when every window does,
    the one block is the whole dim with the call's own pads.
    """
    n = output_size(size, kernel, stride, dilation, before, after, ceil_mode)
    span = dilation * (kernel - 1) + 1

    def hull(o0, o1):         # what the windows o0 <= o < o1 that overlap the input read
        first = max(o0, (before - span) // stride + 1)
        last = min(o1 - 1, -(-(size + before) // stride) - 1)
        if first > last:
            return 0, 0
        return max(0, first * stride - before), min(size, last * stride - before + span)

    cuts = [0] + [min(n, max(0, -(-(b + before) // stride))) for b in bounds[1:-1]] + [n]
    spans = _merge_empty(list(zip(cuts[:-1], cuts[1:])), hull)
    lo, hi = hull(*spans[0])
    if len(spans) == 1 and lo >= hi:
        return (Block(0, n, 0, size, before, after),)
    blocks = []
    for o0, o1 in spans:
        lo, hi = hull(o0, o1)
        end = (o1 - 1) * stride - before + span
        pad_after = size + after - hi if end > size + after else end - hi
        blocks.append(Block(o0, o1, lo, hi, lo - (o0 * stride - before), pad_after))
    return tuple(blocks)


def adaptive_chunk_blocks(size: int, out: int, bounds: tuple[int, ...]) -> tuple[Block, ...]:
    """Output blocks of an adaptive pool along one dim (PyTorch's windows ``[floor(o * size /
    out), ceil((o + 1) * size / out))``) whose input is chunked at ``bounds``: block ``i`` holds
    the outputs whose window starts in chunk ``i`` and reads the hull of their windows. No pads:
    adaptive windows lie inside the input. ``out == 0`` gives one empty block reading one element.
    """
    if out == 0:
        return (Block(0, 0, 0, min(size, 1)),)

    def hull(o0, o1):
        return (o0 * size) // out, -(-o1 * size // out)

    cuts = [0] + [min(out, -(-b * out // size)) for b in bounds[1:-1]] + [out]
    return tuple(Block(o0, o1, *hull(o0, o1))
                 for o0, o1 in _merge_empty(list(zip(cuts[:-1], cuts[1:])), hull))


def chunk_pieces(bounds: tuple[int, ...], lo: int, hi: int) -> tuple[tuple[int, slice, slice], ...]:
    """The chunks (of a dim chunked at ``bounds``) that ``[lo, hi)`` overlaps, as ``(chunk
    index, slice inside the chunk, slice inside [lo, hi))``, in order."""
    pieces = []
    c = max(0, bisect.bisect_right(bounds, lo) - 1)      # the chunk holding lo
    while c < len(bounds) - 1 and bounds[c] < hi:
        a, b = max(lo, bounds[c]), min(hi, bounds[c + 1])
        if a < b:
            pieces.append((c, slice(a - bounds[c], b - bounds[c]), slice(a - lo, b - lo)))
        c += 1
    return tuple(pieces)
