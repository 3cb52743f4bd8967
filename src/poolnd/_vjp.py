"""The stateless backward: ``vjp(op, x, *args, **kwargs) -> (y, pullback)``.

One path makes every gradient, for the functional ops and for the layers alike: a driver runs the
forward with ``keep=True`` and hands back its record (``_pool.Saved`` or ``_family.Record``, frozen
dataclasses that own their arrays: none is a view of the caller's input, indices or results);
:func:`run` wraps it in a :class:`Pullback`. A layer's ``forward`` calls :func:`run` and stores
the pullback; its ``backward`` calls it. Nothing else is stored anywhere, so any number of
pullbacks may be alive, called in any order, from any thread.

:func:`vjp` binds the op's own signature and looks the op up in one table, from the public
function to its normalized call; the argument checks stay where the op's front end has them.
Two front ends live in the drivers and have no ``keep=True`` form yet: :func:`pool_params`
makes the ``_args.normalize`` call of ``_pool.pool``, the global pools' builder the two lines of
``_pool.global_pool``.
"""
from __future__ import annotations

import inspect

from . import _args, _dask, _family, _pool
from . import functional as F

__all__ = ["vjp", "Pullback", "run", "pool_params"]


class Pullback:
    """``dy -> dx`` for one forward call: the gradient w.r.t. that call's input ``x`` (same
    shape, dtype and layout as ``x``; ``dy`` has the shape and layout of the output values).

    It holds only a frozen record of its own call, so it may be called any number of times, in
    any order with other pullbacks, from any thread; it pickles with its record."""

    __slots__ = ("_record",)

    def __init__(self, record):
        object.__setattr__(self, "_record", record)

    def __call__(self, dy):
        return _family.backward(self._record, dy)

    def __setattr__(self, name, value):
        _args.fail("Pullback", f"{name}={value!r} cannot be set: a pullback is immutable",
                   AttributeError)

    def __reduce__(self):
        return Pullback, (self._record,)

    def __repr__(self):
        r = self._record
        op = r.params.op if isinstance(r, _pool.Saved) else r.op
        return f"<Pullback of {op}: dy {r.output_shape} -> dx {r.input_shape} {r.dtype}>"


def run(driver, *args, **kwargs):
    """``driver(*args, **kwargs, keep=True)`` -> ``(result, Pullback)``: the one place where a
    forward record becomes a backward, for :func:`vjp` and for every layer. A Dask array is
    refused here: a backward needs the whole forward in memory."""
    op = getattr(args[0], "op", args[0] if isinstance(args[0], str) else "vjp")
    _dask.refuse(op, *args, *kwargs.values())
    result, record = driver(*args, **kwargs, keep=True)
    return result, Pullback(record)


def pool_params(op, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                spatial_dims, layout=None, return_indices=False, count_include_pad=True,
                divisor_override=None, norm_type=None, nan_policy="propagate",
                rounding="trunc", engine=None):
    """The normalized call of :func:`poolnd.pool` (``op`` names it in errors: "pool", "Pool").
    The same ``_args.normalize`` call as ``_pool.pool`` makes (see the module notes); the
    ``Pool`` layer builds it too."""
    return _args.normalize(op, mode, spatial_dims, kernel_size, stride, padding, dilation,
                           ceil_mode, layout=layout, return_indices=return_indices,
                           count_include_pad=count_include_pad,
                           divisor_override=divisor_override, norm_type=norm_type,
                           nan_policy=nan_policy, engine=engine, torch_empty_rule="any",
                           rounding=rounding)


# ----------------------------------------------------------------------------------------------
# the table: public function -> its call with keep=True. Each builder takes the op's bound
# arguments by name (the op's own signature, defaults applied) and returns (result, Pullback).
# ----------------------------------------------------------------------------------------------

def _fixed(params, name, k):
    def build(input, **kw):
        return run(_pool.forward, params(name, k, **kw), input)
    return build


def _adaptive(name, mode, k):
    def build(input, **kw):
        return run(_family.adaptive, name, mode, k, input, **kw)
    return build


def _unpool(name, k):
    def build(input, **kw):
        return run(_family.unpool, name, k, input, **kw)
    return build


def _fractional(name, k):
    def build(input, _random_samples, **kw):
        return run(_family.fractional, name, k, input, samples=_random_samples, **kw)
    return build


def _global(name, mode):
    def build(input, spatial_dims, layout, engine, rounding="trunc"):
        x, p = _args.normalize_global(name, mode, input, spatial_dims, layout, engine, rounding)
        return run(_pool.forward, p, x)
    return build


def _pool_build(input, **kw):
    return run(_pool.forward, pool_params("pool", **kw), input)


def _adaptive_pool_build(input, mode, output_size, spatial_dims, layout, return_indices, engine,
                         rounding):
    return run(_family.adaptive_pool_call, input, mode, output_size, spatial_dims, layout,
               return_indices, engine, rounding=rounding)


_BUILDERS = {
    F.max_pool1d: _fixed(F.max_params, "max_pool1d", 1),
    F.max_pool2d: _fixed(F.max_params, "max_pool2d", 2),
    F.max_pool3d: _fixed(F.max_params, "max_pool3d", 3),
    F.avg_pool1d: _fixed(F.avg_params, "avg_pool1d", 1),
    F.avg_pool2d: _fixed(F.avg_params, "avg_pool2d", 2),
    F.avg_pool3d: _fixed(F.avg_params, "avg_pool3d", 3),
    F.lp_pool1d: _fixed(F.lp_params, "lp_pool1d", 1),
    F.lp_pool2d: _fixed(F.lp_params, "lp_pool2d", 2),
    F.lp_pool3d: _fixed(F.lp_params, "lp_pool3d", 3),
    _pool.pool: _pool_build,
    F.global_max_pool: _global("global_max_pool", "max"),
    F.global_avg_pool: _global("global_avg_pool", "avg"),
    F.adaptive_max_pool1d: _adaptive("adaptive_max_pool1d", "max", 1),
    F.adaptive_max_pool2d: _adaptive("adaptive_max_pool2d", "max", 2),
    F.adaptive_max_pool3d: _adaptive("adaptive_max_pool3d", "max", 3),
    F.adaptive_avg_pool1d: _adaptive("adaptive_avg_pool1d", "avg", 1),
    F.adaptive_avg_pool2d: _adaptive("adaptive_avg_pool2d", "avg", 2),
    F.adaptive_avg_pool3d: _adaptive("adaptive_avg_pool3d", "avg", 3),
    _family.adaptive_pool: _adaptive_pool_build,
    F.max_unpool1d: _unpool("max_unpool1d", 1),
    F.max_unpool2d: _unpool("max_unpool2d", 2),
    F.max_unpool3d: _unpool("max_unpool3d", 3),
    F.fractional_max_pool2d: _fractional("fractional_max_pool2d", 2),
    F.fractional_max_pool3d: _fractional("fractional_max_pool3d", 3),
}
_SIGNATURES = {op: inspect.signature(op) for op in _BUILDERS}


def vjp(op, x, *args, **kwargs):
    """Forward and a stateless backward of one pooling call: ``y, pullback = vjp(op, x, ...)``.

    Parameters
    ----------
    op : a public functional op of poolnd
        ``poolnd.max_pool2d``, ``poolnd.pool``, ``poolnd.adaptive_avg_pool3d``,
        ``poolnd.max_unpool2d``, ``poolnd.fractional_max_pool2d``, ... (every op in
        ``poolnd.functional``, plus :func:`poolnd.pool` and :func:`poolnd.adaptive_pool`).
    x : array_like
        The input the gradient is taken with respect to (for ``max_unpool*``: the values, with
        ``indices`` among ``args``).
    *args, **kwargs
        The op's other arguments, exactly as ``op(x, *args, **kwargs)`` takes them.

    Returns
    -------
    y : ndarray, or ``(y, indices)``
        Exactly what ``op(x, *args, **kwargs)`` returns.
    pullback : callable ``dy -> dx``
        The gradient w.r.t. ``x`` (same shape, dtype and layout as ``x``) for ``dy`` of the
        shape of the output values. It keeps only its own frozen record: any number of pullbacks
        may be alive, called in any order and from any thread, and later in-place changes to
        ``x`` or ``y`` never change what it returns. A layer's ``backward`` is this pullback
        for the layer's last forward.

    Raises
    ------
    TypeError
        ``op`` is not one of poolnd's functional ops, or the arguments do not fit its signature.
    ValueError, TypeError
        Whatever ``op`` raises for these arguments.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> x = np.array([[[1.0, 3.0, 2.0, 0.0]]])
    >>> y, pullback = poolnd.vjp(poolnd.max_pool1d, x, 2)
    >>> y
    array([[[3., 2.]]])
    >>> pullback(np.array([[[10.0, 20.0]]]))
    array([[[ 0., 10., 20.,  0.]]])
    """
    try:
        build = _BUILDERS.get(op)
    except TypeError:                      # an unhashable op
        build = None
    if build is None:
        _args.fail("vjp", f"op={op!r} must be one of poolnd's functional ops "
                          f"(poolnd.max_pool2d, poolnd.pool, ...): it is not in vjp's table",
                   TypeError)
    name = op.__name__
    try:
        bound = _SIGNATURES[op].bind(x, *args, **kwargs)
    except TypeError as e:
        _args.fail(name, f"{e} (signature {name}{_SIGNATURES[op]})", TypeError)
    bound.apply_defaults()
    return build(**bound.arguments)
