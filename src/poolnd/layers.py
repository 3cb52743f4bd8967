"""Layers with ``forward`` and ``backward`` (torch.nn names, constructor arguments, attributes
and repr).

``__init__`` validates its arguments once. ``forward(x)`` runs the same call as
:func:`poolnd.vjp` does (``_vjp.run``) and keeps the pullback it returns, replacing the one
before; ``backward(dy)`` calls that pullback. A layer therefore keeps its last forward only: for a
layer used twice in a network, or from several threads, use :func:`poolnd.vjp`, whose pullbacks
are independent. Layers do no math of their own.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import _args, _family, _pool, _vjp
from . import functional as F

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Pool",
           "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "FractionalMaxPool2d",
           "FractionalMaxPool3d"]


def _ntuple(value, n):
    """torch's ``_single``/``_pair``/``_triple``: an iterable as a tuple, else ``n`` copies
    (a string, poolnd's padding extension, stays as it is)."""
    if isinstance(value, str):
        return value
    return tuple(value) if isinstance(value, Iterable) else (value,) * n


def _fmt(value):
    """A value as torch's ``extra_repr`` prints it (``str.format``), strings quoted."""
    return repr(value) if isinstance(value, str) else str(value)


def _is_default(value, default):
    return value is default or (not isinstance(value, np.ndarray) and type(value) is
                                type(default) and value == default)


class _Attr:
    """A constructor argument as a read-only attribute (torch.nn's name and value)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, cls=None):
        return self if obj is None else obj._attrs[self.name]

    def __set__(self, obj, value):
        _args.fail(type(obj).__name__, f"{self.name}={value!r} cannot be set: a layer's "
                   f"arguments are checked once, when it is built; build a new "
                   f"{type(obj).__name__}(...) instead", AttributeError)


class _Layer:
    """Shared machinery: torch.nn's attributes and repr, the last forward's pullback, backward.

    Subclasses name ``_torch`` (torch.nn's attributes, in its ``__init__`` order), ``_shown``
    (those torch's ``repr`` prints, in its order) and ``_own`` (poolnd's own arguments and their
    defaults, appended to the repr when not default); each becomes a read-only attribute."""

    _torch: tuple = ()
    _shown: tuple = ()
    _own: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls._torch + tuple(cls._own):
            if not isinstance(getattr(cls, name, None), _Attr):
                attr = _Attr()
                attr.__set_name__(cls, name)
                setattr(cls, name, attr)

    def _keep(self, attrs: dict, **given):
        """``attrs``: every attribute's value; ``given``: those of poolnd's own arguments whose
        attribute is not the value passed (the repr shows what was passed)."""
        self._attrs = attrs
        passed = {k: given.get(k, attrs[k]) for k in self._own}
        self._extras = {k: v for k, v in passed.items() if not _is_default(v, self._own[k])}
        self._pullback = None

    def _run(self, driver, *args, **kwargs):
        result, self._pullback = _vjp.run(driver, *args, **kwargs)
        return result

    @property
    def _saved(self):
        """The frozen record of the last forward (``None`` before one), that backward reads."""
        return None if self._pullback is None else self._pullback._record

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def backward(self, dy):
        """Gradient w.r.t. the input of the last forward: same shape, dtype and layout as that
        input; ``dy`` has the shape and layout of the output values. This is the pullback
        :func:`poolnd.vjp` returns for that call; only the last forward is kept."""
        if self._pullback is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no saved forward; call forward(x) "
                               f"before backward(dy)")
        return self._pullback(dy)

    def _extra_repr(self, name, value):
        return f"{name}={value!r}"

    def __repr__(self):
        args = [f"{k}={_fmt(self._attrs[k])}" for k in self._shown]
        args += [self._extra_repr(k, v) for k, v in self._extras.items()]
        return f"{type(self).__name__}({', '.join(args)})"


class _FixedLayer(_Layer):
    """The fixed-window layers: one normalized call (``_args.Params``) built in ``__init__``."""

    _params: _args.Params

    def forward(self, input):
        """Pool ``input`` and keep its pullback for :meth:`backward` (replacing the last one).
        Returns ``y`` (or ``(y, indices)`` with ``return_indices=True``)."""
        return self._run(_pool.forward, self._params, input)


_LAYOUT_ENGINE = dict(layout=None, engine=None)
_LAYOUT_ROUNDING_ENGINE = dict(layout=None, rounding="trunc", engine=None)


class _MaxPoolNd(_FixedLayer):
    _k: int
    _torch = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
    _shown = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    _own = dict(nan_policy="propagate", **_LAYOUT_ENGINE)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False, *, nan_policy="propagate", layout=None, engine=None):
        self._params = F.max_params(type(self).__name__, self._k, kernel_size, stride, padding,
                                    dilation, ceil_mode, return_indices, layout, engine,
                                    nan_policy)
        self._keep(dict(kernel_size=kernel_size,
                        stride=stride if stride is not None else kernel_size, padding=padding,
                        dilation=dilation, return_indices=return_indices, ceil_mode=ceil_mode,
                        nan_policy=nan_policy, layout=layout, engine=engine))


class _AvgPoolNd(_FixedLayer):
    """torch's ``AvgPool1d`` stores ``_single`` tuples and has no ``divisor_override`` (poolnd's
    own argument there); ``AvgPool2d``/``3d`` store the arguments as given."""

    _k: int
    _torch = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
              "divisor_override")
    _shown = ("kernel_size", "stride", "padding")
    _own = dict(dilation=1, nan_policy="propagate", **_LAYOUT_ROUNDING_ENGINE)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *, dilation=1,
                 nan_policy="propagate", layout=None, rounding="trunc", engine=None):
        self._params = F.avg_params(type(self).__name__, self._k, kernel_size, stride, padding,
                                    ceil_mode, count_include_pad, divisor_override, dilation,
                                    layout, engine, nan_policy, rounding)
        size = (lambda v: _ntuple(v, 1)) if self._k == 1 else (lambda v: v)
        self._keep(dict(kernel_size=size(kernel_size),
                        stride=size(stride if stride is not None else kernel_size),
                        padding=size(padding), ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad, divisor_override=divisor_override,
                        dilation=dilation, nan_policy=nan_policy, layout=layout,
                        rounding=rounding, engine=engine))


def _doc(cls, fn_name, call=None):
    call = call or f"{cls}(2)"
    return (f"Layer form of :func:`poolnd.{fn_name}` (same arguments), with ``forward(x)`` and "
            f"``backward(dy)``; torch.nn's attributes and repr.\n\n"
            f"    {_KEEPS}\n\n"
            f"    Examples\n    --------\n"
            f"    >>> import numpy as np, poolnd\n"
            f"    >>> layer = poolnd.{call}\n"
            f"    >>> x = np.arange(8.0).reshape(1, 1, *[2] * {int(cls[-2]) - 1}, -1)\n"
            f"    >>> y = layer.forward(x)\n"
            f"    >>> layer.backward(np.ones_like(y)).shape == x.shape\n"
            f"    True\n")


_KEEPS = ("A layer keeps its last forward only: ``backward`` is the gradient of the last call "
          "to ``forward``.\n    For a layer used twice in a network, or from several threads, use "
          ":func:`poolnd.vjp`,\n    whose pullbacks are independent of each other.")


class MaxPool1d(_MaxPoolNd):
    __doc__ = _doc("MaxPool1d", "max_pool1d")
    _k = 1


class MaxPool2d(_MaxPoolNd):
    __doc__ = _doc("MaxPool2d", "max_pool2d")
    _k = 2


class MaxPool3d(_MaxPoolNd):
    __doc__ = _doc("MaxPool3d", "max_pool3d")
    _k = 3


class AvgPool1d(_AvgPoolNd):
    __doc__ = _doc("AvgPool1d", "avg_pool1d")
    _k = 1
    _torch = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
    _own = dict(divisor_override=None, dilation=1, nan_policy="propagate",
                **_LAYOUT_ROUNDING_ENGINE)


class AvgPool2d(_AvgPoolNd):
    __doc__ = _doc("AvgPool2d", "avg_pool2d")
    _k = 2


class AvgPool3d(_AvgPoolNd):
    __doc__ = _doc("AvgPool3d", "avg_pool3d")
    _k = 3


class Pool(_FixedLayer):
    """Layer form of :func:`poolnd.pool`: any number of spatial dims, modes max, avg, min, sum,
    lp, median, mode. Its attributes and repr follow torch.nn's ``MaxPool*`` (``stride`` is ``kernel_size``
    when not given); the mode's own arguments are appended when not default.

    A layer keeps its last forward only: ``backward`` is the gradient of the last call to
    ``forward``. For a layer used twice in a network, or from several threads, use
    :func:`poolnd.vjp`, whose pullbacks are independent of each other.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> layer = poolnd.Pool("min", 2, spatial_dims=1)
    >>> layer
    Pool(mode='min', kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False,
         spatial_dims=1)
    >>> layer.forward(np.array([[[3.0, 1.0, 2.0, 5.0]]]))
    array([[[1., 2.]]])
    >>> layer.backward(np.array([[[10.0, 20.0]]]))
    array([[[ 0., 10., 20.,  0.]]])
    """

    _torch = ("mode", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "spatial_dims")
    _shown = _torch
    _own = dict(return_indices=False, count_include_pad=True, divisor_override=None,
                norm_type=None, nan_policy="propagate", **_LAYOUT_ROUNDING_ENGINE)

    def __init__(self, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                 spatial_dims, layout=None, return_indices=False, count_include_pad=True,
                 divisor_override=None, norm_type=None, nan_policy="propagate", rounding="trunc",
                 engine=None):
        self._params = _vjp.pool_params(
            "Pool", mode, kernel_size, stride, padding, dilation, ceil_mode,
            spatial_dims=spatial_dims, layout=layout, return_indices=return_indices,
            count_include_pad=count_include_pad, divisor_override=divisor_override,
            norm_type=norm_type, nan_policy=nan_policy, rounding=rounding, engine=engine)
        self._keep(dict(mode=mode, kernel_size=kernel_size,
                        stride=stride if stride is not None else kernel_size, padding=padding,
                        dilation=dilation, ceil_mode=ceil_mode, spatial_dims=spatial_dims,
                        return_indices=return_indices, count_include_pad=count_include_pad,
                        divisor_override=divisor_override, norm_type=norm_type,
                        nan_policy=nan_policy, layout=layout, rounding=rounding, engine=engine))


class _LPPoolNd(_FixedLayer):
    _k: int
    _torch = ("norm_type", "kernel_size", "stride", "ceil_mode")
    _shown = _torch
    _own = dict(dilation=1, **_LAYOUT_ENGINE)

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, *, dilation=1,
                 layout=None, engine=None):
        self._params = F.lp_params(type(self).__name__, self._k, norm_type, kernel_size, stride,
                                   ceil_mode, dilation, layout, engine)
        self._keep(dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride,
                        ceil_mode=ceil_mode, dilation=dilation, layout=layout, engine=engine))


class LPPool1d(_LPPoolNd):
    __doc__ = _doc("LPPool1d", "lp_pool1d", "LPPool1d(2, 2)")
    _k = 1


class LPPool2d(_LPPoolNd):
    __doc__ = _doc("LPPool2d", "lp_pool2d", "LPPool2d(2, 2)")
    _k = 2


class LPPool3d(_LPPoolNd):
    __doc__ = _doc("LPPool3d", "lp_pool3d", "LPPool3d(2, 2)")
    _k = 3


class _AdaptiveNd(_Layer):
    _k: int
    _mode: str
    _shown = ("output_size",)
    _own = _LAYOUT_ENGINE

    def _check(self, output_size, return_indices, layout, engine, rounding="trunc"):
        op = type(self).__name__
        _args.adaptive_output_size(op, output_size, self._k)
        _args.check_bool(op, "return_indices", return_indices)
        _args.parse_layout(op, layout, self._k)
        _args.check_rounding(op, rounding)
        _args.check_engine(op, engine)

    def forward(self, input):
        """Pool ``input`` and keep its pullback for :meth:`backward` (replacing the last one)."""
        a = self._attrs
        return self._run(_family.adaptive, type(self).__name__, self._mode, self._k, input,
                         a["output_size"], a.get("return_indices", False), a["layout"],
                         a["engine"], rounding=a.get("rounding", "trunc"))


class _AdaptiveMaxPoolNd(_AdaptiveNd):
    _mode = "max"
    _torch = ("output_size", "return_indices")

    def __init__(self, output_size, return_indices=False, *, layout=None, engine=None):
        self._check(output_size, return_indices, layout, engine)
        self._keep(dict(output_size=output_size, return_indices=return_indices, layout=layout,
                        engine=engine))


class _AdaptiveAvgPoolNd(_AdaptiveNd):
    _mode = "avg"
    _torch = ("output_size",)
    _own = _LAYOUT_ROUNDING_ENGINE

    def __init__(self, output_size, *, layout=None, rounding="trunc", engine=None):
        self._check(output_size, False, layout, engine, rounding)
        self._keep(dict(output_size=output_size, layout=layout, rounding=rounding,
                        engine=engine))


def _family_doc(cls, fn_name, call):
    return (f"Layer form of :func:`poolnd.{fn_name}` (same arguments), with ``forward`` and "
            f"``backward(dy)``; torch.nn's attributes and repr.\n\n"
            f"    {_KEEPS}\n\n"
            f"    Examples\n    --------\n"
            f"    >>> import numpy as np, poolnd\n"
            f"    >>> layer = poolnd.{call}\n"
            f"    >>> x = np.random.default_rng(0).random((1, 2) + (5,) * {int(cls[-2])})\n"
            f"    >>> y = layer.forward(x)\n"
            f"    >>> layer.backward(np.ones_like(y)).shape == x.shape\n"
            f"    True\n")


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    __doc__ = _family_doc("AdaptiveMaxPool1d", "adaptive_max_pool1d", "AdaptiveMaxPool1d(3)")
    _k = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    __doc__ = _family_doc("AdaptiveMaxPool2d", "adaptive_max_pool2d", "AdaptiveMaxPool2d(3)")
    _k = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    __doc__ = _family_doc("AdaptiveMaxPool3d", "adaptive_max_pool3d", "AdaptiveMaxPool3d(3)")
    _k = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    __doc__ = _family_doc("AdaptiveAvgPool1d", "adaptive_avg_pool1d", "AdaptiveAvgPool1d(3)")
    _k = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    __doc__ = _family_doc("AdaptiveAvgPool2d", "adaptive_avg_pool2d", "AdaptiveAvgPool2d(3)")
    _k = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    __doc__ = _family_doc("AdaptiveAvgPool3d", "adaptive_avg_pool3d", "AdaptiveAvgPool3d(3)")
    _k = 3


class _FractionalMaxPoolNd(_Layer):
    """torch's repr of ``FractionalMaxPool*`` shows no arguments; poolnd's shows its window
    arguments (torch's attribute values) in the same style, then its own."""

    _k: int
    _torch = ("kernel_size", "return_indices", "_random_samples", "output_size",
              "output_ratio")
    _shown = ("kernel_size", "output_size", "output_ratio")
    _own = dict(rng=None, **_LAYOUT_ENGINE)

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                 _random_samples=None, *, layout=None, engine=None, rng=None):
        op = type(self).__name__
        k = self._k
        _args.int_tuple(op, "kernel_size", kernel_size, k, 1)
        if output_size is None and output_ratio is None:
            _args.fail(op, "needs output_size or output_ratio (neither was given)")
        if output_size is not None and output_ratio is not None:
            _args.fail(op, "takes only one of output_size and output_ratio, got both")
        if output_size is not None:
            _args.int_tuple(op, "output_size", output_size, k, 0)
        else:                                  # the ratio's checks need no input
            _args.fractional_output_size(op, k, (1 << 30,) * k, (1,) * k, None, output_ratio)
        _args.check_bool(op, "return_indices", return_indices)
        _args.parse_layout(op, layout, k)
        _args.check_engine(op, engine)
        self._call = (kernel_size, output_size, output_ratio, return_indices, _random_samples,
                      layout, engine)
        self._keep(dict(kernel_size=_ntuple(kernel_size, k), return_indices=return_indices,
                        _random_samples=_random_samples,
                        output_size=None if output_size is None else _ntuple(output_size, k),
                        output_ratio=None if output_ratio is None else _ntuple(output_ratio, k),
                        rng=_args.check_rng(op, rng), layout=layout, engine=engine), rng=rng)

    def _extra_repr(self, name, value):
        if name == "rng":                     # a Generator's repr holds its address
            return f"rng={type(value).__name__}({type(value.bit_generator).__name__})"
        return super()._extra_repr(name, value)

    def forward(self, input):
        """Pool ``input`` (fresh samples from ``rng`` on every call unless ``_random_samples``
        was given) and keep its pullback for :meth:`backward` (replacing the last one)."""
        return self._run(_family.fractional, type(self).__name__, self._k, input, *self._call,
                         rng=self._attrs["rng"])


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    __doc__ = _family_doc("FractionalMaxPool2d", "fractional_max_pool2d",
                          "FractionalMaxPool2d(2, output_size=3)")
    _k = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    __doc__ = _family_doc("FractionalMaxPool3d", "fractional_max_pool3d",
                          "FractionalMaxPool3d(2, output_ratio=0.6)")
    _k = 3


class _MaxUnpoolNd(_Layer):
    _k: int
    _torch = ("kernel_size", "stride", "padding")
    _shown = _torch
    _own = _LAYOUT_ENGINE

    def __init__(self, kernel_size, stride=None, padding=0, *, layout=None, engine=None):
        op = type(self).__name__
        k = self._k
        _args.int_tuple(op, "kernel_size", kernel_size, k, 1)
        if stride is not None:
            _args.int_tuple(op, "stride", stride, k, 1)
        _args.int_tuple(op, "padding", padding, k, 0)
        _args.parse_layout(op, layout, k)
        _args.check_engine(op, engine)
        self._call = (kernel_size, stride, padding)
        self._keep(dict(kernel_size=_ntuple(kernel_size, k),
                        stride=_ntuple(stride if stride is not None else kernel_size, k),
                        padding=_ntuple(padding, k), layout=layout, engine=engine))

    def forward(self, input, indices, output_size=None):
        """Unpool ``input`` at ``indices`` (see :func:`poolnd.max_unpool2d`) and keep the
        pullback (``dy`` gathered at the same indices) for :meth:`backward`."""
        return self._run(_family.unpool, type(self).__name__, self._k, input, indices,
                         *self._call, output_size, self._attrs["layout"], self._attrs["engine"])


def _unpool_doc(cls, k):
    return (f"Layer form of :func:`poolnd.max_unpool{k}d`: ``forward(x, indices, "
            f"output_size=None)`` and ``backward(dy)`` (the gradient w.r.t. ``x``: ``dy`` "
            f"gathered at ``indices``); torch.nn's attributes and repr.\n\n"
            f"    {_KEEPS}\n\n"
            f"    Examples\n    --------\n"
            f"    >>> import numpy as np, poolnd\n"
            f"    >>> x = np.random.default_rng(0).random((1, 2) + (4,) * {k})\n"
            f"    >>> y, i = poolnd.max_pool{k}d(x, 2, return_indices=True)\n"
            f"    >>> unpool = poolnd.{cls}(2)\n"
            f"    >>> z = unpool.forward(y, i)\n"
            f"    >>> bool((unpool.backward(z) == y).all())\n"
            f"    True\n")


class MaxUnpool1d(_MaxUnpoolNd):
    __doc__ = _unpool_doc("MaxUnpool1d", 1)
    _k = 1


class MaxUnpool2d(_MaxUnpoolNd):
    __doc__ = _unpool_doc("MaxUnpool2d", 2)
    _k = 2


class MaxUnpool3d(_MaxUnpoolNd):
    __doc__ = _unpool_doc("MaxUnpool3d", 3)
    _k = 3
