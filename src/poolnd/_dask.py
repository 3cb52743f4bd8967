"""Dask arrays in, lazy Dask arrays out: the pools on arrays larger than memory.

What belongs here: turning one pool call on a ``dask.array.Array`` into one graph layer of block
tasks, each of which runs the in-memory driver (``_pool.forward``, or the adaptive pools'
``_family`` driver) on one NumPy block. What does not: window arithmetic (the blocks, halos and
pads come from ``_geometry``), argument checks (``_args``, run once on a zero-memory stand-in of
the whole array), and any computing. The driver, the checks and the engines never see a Dask
array; this module sits above them, and Dask is imported only by whoever made the input.

Every fixed-window pool (max, min, avg, sum, lp: every padding form, dilation, ceil mode, layout,
``return_indices``), the global pools and the adaptive pools accept a Dask array. Batch and
channel axes keep their chunks. Along a spatial dim, the output block of input chunk ``i`` holds
the outputs whose window starts in that chunk (about ``chunk / stride`` of them) and reads that
chunk plus exactly the halo its windows need from the chunks after it; one task per output
block (plus two to split values from indices), no rechunking. The computed result equals the in-memory call's bit for
bit: every output element depends only on its own window (the engines sum a window in one fixed
order whatever the array's size or the kernel path), and indices are re-based to the whole plane.

A global pool's window is the whole plane, so its blocks read whole planes (chunk the batch and
channel axes to bound a task's memory).

Examples
--------
>>> import dask.array as da, numpy as np, poolnd
>>> x = da.from_array(np.arange(64.0).reshape(1, 1, 8, 8), chunks=(1, 1, 3, 5))
>>> y = poolnd.avg_pool2d(x, 3, stride=2, padding=1)       # lazy: nothing computed yet
>>> y.chunks
((1,), (1,), (2, 2), (3, 1))
>>> np.array_equal(y.compute(), poolnd.avg_pool2d(x.compute(), 3, stride=2, padding=1))
True
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import sys

import numpy as np

from . import _args, _boxes, _geometry

__all__ = ["is_dask_array", "refuse", "pool", "global_pool", "adaptive"]


def is_dask_array(x) -> bool:
    """Whether ``x`` is a ``dask.array.Array``; never imports Dask (an array of that type can
    only exist once something else imported it)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def refuse(op: str, *arrays) -> None:
    """The ``TypeError`` of the ops that take NumPy arrays only (unpooling, fractional pools,
    layers), raised before anything would turn a Dask array into one big NumPy array."""
    if any(is_dask_array(a) for a in arrays):
        _args.fail(op, "takes NumPy arrays only, got a dask.array.Array; call .compute() "
                       "first (the fixed-window, global and adaptive pools take Dask arrays)",
                   TypeError)


def _stand_in(op: str, x) -> np.ndarray:
    """A zero-memory NumPy array of ``x``'s shape and dtype, for the checks of the whole call."""
    if any(math.isnan(s) for s in x.shape):
        _args.fail(op, f"input of shape {x.shape} has unknown chunk sizes; call "
                       f"x.compute_chunk_sizes() first")
    return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)


def _bounds(chunks: tuple[int, ...]) -> tuple[int, ...]:
    return (0,) + tuple(itertools.accumulate(chunks))


# ----------------------------------------------------------------------------------------------
# the block task: assemble one NumPy block from its chunks, run the driver, re-base indices
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _BlockTask:
    """Computes one output block from the input chunks it is given (in ``pieces`` order).

    ``pieces[i] = (src, dst)``: chunk ``i``'s ``src`` slices go to ``dst`` of the block of
    ``shape``. ``call`` is ``("fixed", Params)`` (the fixed-window driver with the block's pads)
    or ``("box", op, mode, Layout, Boxes, engine, rounding)`` (the adaptive pools' driver with
    the block's windows). With ``return_indices`` the result is ``(y, indices)``, indices
    re-based from the block's plane to the whole plane: block origin ``origin`` and whole plane
    ``plane`` (both in the layout's spatial order), spatial axes ``axes`` of the array."""

    shape: tuple[int, ...]
    pieces: tuple
    call: tuple
    return_indices: bool
    axes: tuple[int, ...]
    origin: tuple[int, ...]
    plane: tuple[int, ...]

    def __call__(self, chunks):
        from . import _family, _pool
        if len(chunks) == 1 and chunks[0].shape == self.shape:
            block = chunks[0]
        else:
            block = np.empty(self.shape, dtype=chunks[0].dtype)
            for (src, dst), c in zip(self.pieces, chunks):
                block[dst] = c[src]
        if self.call[0] == "fixed":
            result = _pool.forward(self.call[1], block)
        else:
            op, mode, lay, boxes, engine, rounding = self.call[1:]
            name, eng = _family._engine(engine)
            result = _family._box_forward(op, mode, block, lay, boxes, name, eng,
                                          self.return_indices, False, rounding=rounding)
        if not self.return_indices:
            return result
        y, idx = result
        return y, _rebase(idx, tuple(self.shape[a] for a in self.axes), self.origin, self.plane)


def _rebase(idx: np.ndarray, block_plane, origin, plane) -> np.ndarray:
    """Flat offsets in a block's spatial plane -> flat offsets in the whole plane (``-1``, an
    all-padding window, stays)."""
    rest = idx.astype(np.int64, copy=True)
    out = np.zeros_like(rest)
    step = 1
    for d in reversed(range(len(plane))):
        pos = rest % block_plane[d]
        rest //= block_plane[d]
        out += (pos + origin[d]) * step
        step *= plane[d]
    out[idx < 0] = -1
    return out


def _graph(op: str, x, lay, plans, call_of, dtype, return_indices: bool, key):
    """The lazy result: one task per output block. ``plans[d]`` are the ``_geometry.Block``s of
    spatial dim ``d`` (canonical order), ``call_of(blocks)`` the driver call of one output block
    (a ``Block`` per spatial dim); ``key`` identifies the call in the graph's name."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    axes = tuple(lay.letters.index(c) for c in lay.spatial)
    plane = tuple(x.shape[a] for a in axes)
    in_bounds = [_bounds(c) for c in x.chunks]
    # per array axis: the output blocks, each as (pieces over input chunks, block length)
    per_axis = []
    for a in range(x.ndim):
        if a in axes:
            blocks = plans[axes.index(a)]
            per_axis.append([(b, _geometry.chunk_pieces(in_bounds[a], b.in_lo, b.in_hi),
                              b.in_hi - b.in_lo) for b in blocks])
        else:
            per_axis.append([(None, ((i, slice(None), slice(None)),), n)
                             for i, n in enumerate(x.chunks[a])])
    out_chunks = tuple(
        tuple(b.out_hi - b.out_lo for b, _, _ in per_axis[a]) if a in axes else x.chunks[a]
        for a in range(x.ndim))
    token = tokenize(x.name, op, key, return_indices, plans)
    name = f"poolnd-{op}-{token}"
    dsk = {}
    for index in itertools.product(*(range(len(p)) for p in per_axis)):
        parts = [per_axis[a][i] for a, i in enumerate(index)]
        blocks = tuple(parts[a][0] for a in axes)
        keys, pieces = [], []
        for combo in itertools.product(*(p[1] for p in parts)):
            keys.append((x.name,) + tuple(c[0] for c in combo))
            pieces.append((tuple(c[1] for c in combo), tuple(c[2] for c in combo)))
        task = _BlockTask(tuple(p[2] for p in parts), tuple(pieces), call_of(blocks),
                          return_indices, axes, tuple(b.in_lo for b in blocks), plane)
        dsk[(name,) + index] = (task, keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    meta = np.empty((0,) * x.ndim, dtype=dtype)
    if not return_indices:
        return da.Array(graph, name, out_chunks, meta=meta)
    outs = []
    for which, part_dtype in ((0, dtype), (1, np.int64)):
        part = f"{name}-{('values', 'indices')[which]}"
        layers, deps = dict(graph.layers), dict(graph.dependencies)
        layers[part] = {(part,) + k[1:]: (operator.getitem, k, which) for k in dsk}
        deps[part] = {name}
        outs.append(da.Array(HighLevelGraph(layers, deps), part, out_chunks,
                             meta=np.empty((0,) * x.ndim, dtype=part_dtype)))
    return tuple(outs)


# ----------------------------------------------------------------------------------------------
# the front doors
# ----------------------------------------------------------------------------------------------

def pool(p: _args.Params, x):
    """The fixed-window call ``p`` on the Dask array ``x``: a lazy array (or ``(values,
    indices)``), equal to ``_pool.forward(p, x.compute())``."""
    from . import _pool
    _, lay, g = _args.bind(p, _stand_in(p.op, x), in_memory=False)   # every check, whole array
    axes = tuple(lay.letters.index(c) for c in lay.spatial)
    plans = [_geometry.chunk_blocks(g.in_size[d], g.kernel[d], g.stride[d], g.dilation[d],
                                    g.pad_before[d], g.pad_after[d], p.ceil_mode,
                                    _bounds(x.chunks[axes[d]]))
             for d in range(g.ndim)]
    base = dataclasses.replace(p, input_at_least_kernel=False)   # a block may be smaller
    calls = {}                     # blocks with the same pads share one Params

    def call_of(blocks):
        pads = tuple((b.pad_before, b.pad_after) for b in blocks)
        if pads not in calls:
            calls[pads] = ("fixed", dataclasses.replace(base, padding=pads))
        return calls[pads]

    # the output dtype, from the driver itself on one element (one window of one input)
    probe = dataclasses.replace(base, return_indices=False, engine="numpy", padding=tuple(
        (0, dl * (k - 1)) for k, dl in zip(p.kernel, p.dilation)), ceil_mode=False)
    dtype = _pool.forward(probe, np.zeros((1,) * x.ndim, dtype=x.dtype)).dtype
    return _graph(p.op, x, lay, plans, call_of, dtype, p.return_indices, repr(p))


def global_pool(op: str, mode: str, x, spatial_dims, layout, engine, rounding="trunc"):
    """``global_{max,avg}_pool`` of a Dask array: the fixed pool whose window is the plane."""
    _, p = _args.normalize_global(op, mode, _stand_in(op, x), spatial_dims, layout, engine,
                                  rounding)
    return pool(p, x)


def adaptive(op: str, mode: str, k: int, x, output_size, return_indices, layout, engine,
             keep: bool, rounding="trunc"):
    """``adaptive_{max,avg}_pool`` of a Dask array (the layers, ``keep=True``, refuse it)."""
    from . import _family
    if keep:
        refuse(op, x)
    x_in, lay, out, engine, return_indices, fixed = _family.adaptive_plan(
        op, mode, k, _stand_in(op, x), output_size, return_indices, layout, engine, rounding)
    if fixed is not None:                 # equal windows tiling the input: the fixed pool
        return pool(fixed, x)
    axes = tuple(lay.letters.index(c) for c in lay.spatial)
    spatial = lay.spatial_shape(x.shape)
    plans = [_geometry.adaptive_chunk_blocks(spatial[d], out[d], _bounds(x.chunks[axes[d]]))
             for d in range(k)]
    whole = _boxes.adaptive(spatial, out)

    def call_of(blocks):
        starts = tuple(s[:, b.out_lo:b.out_hi] - b.in_lo for s, b in zip(whole.starts, blocks))
        sizes = tuple(s[:, b.out_lo:b.out_hi] for s, b in zip(whole.sizes, blocks))
        boxes = _boxes.Boxes(tuple(b.in_hi - b.in_lo for b in blocks),
                             tuple(b.out_hi - b.out_lo for b in blocks), starts, sizes)
        return ("box", op, mode, lay, boxes, engine, rounding)

    return _graph(op, x, lay, plans, call_of, x.dtype, return_indices,
                  repr((mode, out, lay, engine, rounding)))
