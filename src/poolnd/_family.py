"""The drivers of the ops without a fixed window: adaptive max/avg, fractional max, max unpool.

As in ``_pool``: check (``_args``) -> windows (``_boxes``) -> canonical layout -> engine -> layout
out. Every forward can keep a :class:`Record` from which :func:`backward` computes the gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _args, _boxes, _dask, _pool, engines
from ._layout import Layout
from .engines._common import acc_dtype, divide, exact_int_pool


@dataclass(frozen=True, eq=False)
class Record:
    """What a layer keeps from its last forward. ``kind`` is "max" (route ``dy`` to ``idx``),
    "avg" (spread ``dy / count`` over ``boxes``) or "unpool" (gather ``dy`` at ``idx``)."""

    op: str
    kind: str
    layout: Layout
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: np.dtype
    engine: str
    channels_last: bool
    boxes: _boxes.Boxes | None = None
    idx: np.ndarray | None = None        # canonical, int64 per-plane indices


def _engine(engine):
    name = engine or engines.default()
    return name, engines.get(name)


def _box_forward(op, kind, x, lay, boxes, eng_name, eng, return_indices, keep, cl_ok=True,
                 rounding="trunc"):
    xc, cl = lay.to_canonical(x, channels_last_ok=cl_ok and eng.channels_last)
    idx = None
    with np.errstate(all="ignore"):
        if kind == "max":
            yc, idx = eng.box_max(xc, boxes, with_arg=return_indices or keep)
        elif x.dtype.kind in "iu" and (x.dtype.itemsize == 8 or rounding == "nearest"):
            yc = exact_int_pool(lambda a: eng.box_sum(a, boxes), xc,   # exact, never wraps
                                boxes.counts()[..., None], x.dtype, rounding)
        else:
            yc = divide(eng.box_sum(xc, boxes), boxes.counts()[..., None], x.dtype)
    y = lay.from_canonical(yc, x.shape, cl)
    result = (y, lay.from_canonical(idx, x.shape, cl)) if return_indices else y
    if not keep:
        return result
    if return_indices and np.may_share_memory(result[1], idx):
        idx = idx.copy()                   # the record owns its indices
    return result, Record(op, kind, lay, x.shape, y.shape, x.dtype, eng_name, cl, boxes,
                          idx if kind == "max" else None)


def adaptive(op: str, mode: str, k: int, input, output_size, return_indices=False, layout=None,
             engine=None, keep=False, rounding="trunc"):
    """``adaptive_{max,avg}_pool{k}d``: output ``o`` reads ``[floor(o*L/O), ceil((o+1)*L/O))``."""
    if _dask.is_dask_array(input):
        return _dask.adaptive(op, mode, k, input, output_size, return_indices, layout, engine, keep,
                              rounding)
    x, lay, out, engine, return_indices, fixed = adaptive_plan(op, mode, k, input, output_size,
                                                               return_indices, layout, engine,
                                                               rounding)
    if fixed is not None:
        return _pool.forward(fixed, x, keep=keep)
    _args.check_fits(op, lay, x.shape, out, x.dtype.itemsize + (8 if return_indices else 0))
    eng_name, eng = _engine(engine)
    return _box_forward(op, mode, x, lay, _boxes.adaptive(lay.spatial_shape(x.shape), out),
                        eng_name, eng, return_indices, keep, rounding=rounding)


def adaptive_plan(op: str, mode: str, k: int, input, output_size, return_indices, layout, engine,
                  rounding="trunc"):
    """The checks of an adaptive pool and its output size: -> ``(x, layout, out, engine,
    return_indices, fixed)``; ``fixed`` is the fixed pool's ``Params`` when the windows are
    equal and tile the input (then exactly a pool with kernel = stride = L / O, whose kernels
    are faster than the per-axis ones; to size 1: one window per plane), else None."""
    requested = _args.adaptive_output_size(op, output_size, k)
    rounding = _args.check_rounding(op, rounding)
    return_indices = _args.check_bool(op, "return_indices", return_indices)
    if return_indices and mode != "max":
        _args.fail(op, "return_indices=True needs mode 'max'")
    engine = _args.check_engine(op, engine)
    x, lay = _args.bind_plain(op, k, layout, input, empty="N" if mode == "max" else "NC")
    spatial = lay.spatial_shape(x.shape)
    out = tuple(L if o is None else o for o, L in zip(requested, spatial))
    fixed = None
    if all(o > 0 and L % o == 0 for o, L in zip(out, spatial)):
        tile = tuple(L // o for o, L in zip(out, spatial))
        fixed = _args.normalize(op, mode, k, tile, tile, 0, 1, False, layout=lay,
                                return_indices=return_indices, engine=engine,
                                torch_empty_rule="any", rounding=rounding)
    return x, lay, out, engine, return_indices, fixed


def adaptive_pool(input, mode, output_size, *, spatial_dims, layout=None, return_indices=False,
                  rounding="trunc", engine=None):
    """Adaptive pooling over any number of spatial dims: mode "max" or "avg".

    Output position ``o`` of a spatial dim of input length ``L`` and output length ``O`` pools
    the input interval ``[floor(o * L / O), ceil((o + 1) * L / O))`` (PyTorch's rule), so the
    output has exactly ``output_size`` whatever the input size.

    Parameters
    ----------
    input : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``, or as ``layout`` says
    mode : {"max", "avg"}
    output_size : int or tuple of ``spatial_dims`` entries, each an int >= 0 or None
        None keeps that dim's input size.
    spatial_dims : int
        Number of spatial dims (1, 2, 3, 4, ...).
    layout : str, optional
        Axis letters, as in :func:`poolnd.pool`.
    return_indices : bool
        mode "max" only: also return int64 indices, the flat offset of the chosen element in its
        own input plane (PyTorch's convention).
    rounding : {"trunc", "nearest"}
        How an integer average rounds: toward zero (default) or to nearest, ties to even, from
        the exact sum. Accepted by mode "max" too, where it changes nothing; so are float inputs.
    engine : {"numba", "numpy", "reference"}, optional

    Returns
    -------
    y : ndarray, or ``(y, indices)``

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> x = np.arange(24.0).reshape(1, 1, 2, 3, 4)
    >>> poolnd.adaptive_pool(x, "max", (1, None, 2), spatial_dims=3)[0, 0]
    array([[[13., 15.],
            [17., 19.],
            [21., 23.]]])
    """
    return adaptive_pool_call(input, mode, output_size, spatial_dims, layout, return_indices,
                              engine, rounding=rounding)


def adaptive_pool_call(input, mode, output_size, spatial_dims, layout=None, return_indices=False,
                       engine=None, keep=False, rounding="trunc"):
    """:func:`adaptive_pool` with its checks, and a ``keep`` form for ``vjp``."""
    if mode not in ("max", "avg"):
        _args.fail("adaptive_pool", f"mode={mode!r} must be 'max' or 'avg'")
    spatial_dims = _args.check_spatial_dims("adaptive_pool", spatial_dims)
    return adaptive("adaptive_pool", mode, spatial_dims, input, output_size,
                    return_indices, layout, engine, keep=keep, rounding=rounding)


def fractional(op: str, k: int, input, kernel_size, output_size=None, output_ratio=None,
               return_indices=False, samples=None, layout=None, engine=None, rng=None,
               keep=False):
    """``fractional_max_pool{k}d``: windows of size ``kernel_size`` at PyTorch's pseudo-random
    starts, made from one sample in [0, 1) per plane and spatial dim."""
    _dask.refuse(op, input, samples)
    kernel = _args.int_tuple(op, "kernel_size", kernel_size, k, 1)
    return_indices = _args.check_bool(op, "return_indices", return_indices)
    eng_name, eng = _engine(_args.check_engine(op, engine))
    x, lay = _args.bind_plain(op, k, layout, input)
    spatial = lay.spatial_shape(x.shape)
    out = _args.fractional_output_size(op, k, spatial, kernel, output_size, output_ratio)
    n, c = lay.batch_channels(x.shape)
    sdtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if samples is None:
        samples = draw_samples(_args.check_rng(op, rng), n, c, k, sdtype)
    else:
        samples = _args.check_samples(op, samples, n, c, k, sdtype)
    boxes = _boxes.fractional(np.ascontiguousarray(samples).reshape(n * c, k), spatial, out,
                              kernel)
    return _box_forward(op, "max", x, lay, boxes, eng_name, eng, return_indices, keep,
                        cl_ok=False)


def draw_samples(rng: np.random.Generator, n: int, c: int, k: int, dtype) -> np.ndarray:
    """Uniform samples in [0, 1) of shape ``(n, c, k)`` and ``dtype`` (rounding to float16 or
    float32 never reaches 1)."""
    dtype = np.dtype(dtype)
    s = rng.random((n, c, k)).astype(dtype)
    return np.minimum(s, np.nextafter(dtype.type(1), dtype.type(0)))


def unpool(op: str, k: int, input, indices, kernel_size, stride=None, padding=0,
           output_size=None, layout=None, engine=None, keep=False):
    """``max_unpool{k}d``: zeros of the output size with ``input`` written at ``indices``."""
    _dask.refuse(op, input, indices)
    kernel = _args.int_tuple(op, "kernel_size", kernel_size, k, 1)
    stride = kernel if stride is None else _args.int_tuple(op, "stride", stride, k, 1)
    pads = _args.int_tuple(op, "padding", padding, k, 0)
    eng_name, eng = _engine(_args.check_engine(op, engine))
    x, lay = _args.bind_plain(op, k, layout, input)
    idx = _args.check_indices(op, indices, x.shape)
    out = _args.unpool_output_size(op, lay, lay.spatial_shape(x.shape), kernel, stride, pads,
                                   output_size, k)
    _args.check_fits(op, lay, x.shape, out, x.dtype.itemsize)
    _args.check_unpool_indices(op, idx, out)
    xc, cl = lay.to_canonical(x, channels_last_ok=eng.channels_last)
    ic, _ = lay.to_canonical(idx, channels_last_ok=cl)
    if keep and np.may_share_memory(ic, idx):
        ic = ic.copy()                     # the record owns the indices it gathers at
    y = lay.from_canonical(eng.scatter_set(xc, ic, out), x.shape, cl)
    if not keep:
        return y
    return y, Record(op, "unpool", lay, x.shape, y.shape, x.dtype, eng_name, cl, None, ic)


def backward(rec, dy):
    """Gradient w.r.t. the input of the forward that made ``rec`` (a :class:`Record`, or the
    fixed-window driver's record for adaptive pools whose windows tile the input)."""
    if isinstance(rec, _pool.Saved):
        return _pool.backward(rec, dy)
    _args.check_grad_dtype(rec.op, rec.dtype)
    dy = _args.check_grad(rec.op, dy, rec.output_shape)
    dyc, _ = rec.layout.to_canonical(dy.astype(rec.dtype, copy=False),
                                     channels_last_ok=rec.channels_last)
    eng = engines.get(rec.engine)
    with np.errstate(all="ignore"):
        if rec.kind == "max":
            dxc = eng.scatter_add(dyc, rec.idx, rec.boxes.in_size)
        elif rec.kind == "avg":
            acc = acc_dtype(rec.dtype)
            share = divide(dyc.astype(acc), rec.boxes.counts()[..., None], acc)
            dxc = eng.box_spread(share, rec.boxes).astype(rec.dtype, copy=False)
        else:
            dxc = eng.gather(dyc, rec.idx)
    return rec.layout.from_canonical(dxc, rec.input_shape, rec.channels_last)
