"""Layers with ``forward`` and ``backward`` (torch.nn names and constructor arguments).

``__init__`` validates its arguments once; ``forward(x)`` pools and overwrites a small saved record
(geometry, window-local argmax, input shape/dtype/layout, engine); ``backward(dy)`` returns the
gradient w.r.t. that input from the record alone. Layers do no math of their own.
"""
from __future__ import annotations

import numpy as np

from . import _args, _dask, _family, _pool

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Pool",
           "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "FractionalMaxPool2d",
           "FractionalMaxPool3d"]


class _Layer:
    """Shared machinery: a normalized call, the saved record, forward/backward, repr."""

    _params: _args.Params
    _ctor: dict

    def _setup(self, ctor: dict, defaults: dict, **normalize_args):
        self._ctor = {k: v for k, v in ctor.items() if defaults.get(k, object()) != v
                      or k in ("kernel_size", "mode")}
        self._params = _args.normalize(**normalize_args)
        self._saved = None

    def forward(self, input):
        """Pool ``input`` and keep what :meth:`backward` needs. Returns ``y`` (or ``(y, indices)``
        with ``return_indices=True``)."""
        _dask.refuse(self._params.op, input)
        result, self._saved = _pool.forward(self._params, input, keep=True)
        return result

    __call__ = forward

    def backward(self, dy):
        """Gradient w.r.t. the input of the last :meth:`forward`: same shape, dtype and layout as
        that input. ``dy`` has the output's shape and layout."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no saved forward; call forward(x) "
                               f"before backward(dy)")
        return _pool.backward(self._saved, dy)

    def __repr__(self):
        args = [repr(self._ctor[k]) for k in ("mode", "kernel_size") if k in self._ctor]
        args += [f"{k}={v!r}" for k, v in self._ctor.items() if k not in ("mode", "kernel_size")]
        return f"{type(self).__name__}({', '.join(args)})"


_MAX_DEFAULTS = dict(stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                     layout=None, engine=None)
_AVG_DEFAULTS = dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None, dilation=1, layout=None, engine=None)


class _MaxPoolNd(_Layer):
    _k: int

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False, *, layout=None, engine=None):
        ctor = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    return_indices=return_indices, ceil_mode=ceil_mode, layout=layout,
                    engine=engine)
        self._setup(ctor, _MAX_DEFAULTS, op=type(self).__name__, mode="max", k=self._k,
                    kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode, layout=layout, return_indices=return_indices,
                    engine=engine)


class _AvgPoolNd(_Layer):
    _k: int

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *, dilation=1, layout=None,
                 engine=None):
        ctor = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override,
                    dilation=dilation, layout=layout, engine=engine)
        self._setup(ctor, _AVG_DEFAULTS, op=type(self).__name__, mode="avg", k=self._k,
                    kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode, layout=layout, count_include_pad=count_include_pad,
                    divisor_override=divisor_override, engine=engine,
                    input_at_least_kernel=self._k == 3)


def _doc(cls, fn_name):
    return (f"Layer form of :func:`poolnd.{fn_name}` (same arguments), with ``forward(x)`` and "
            f"``backward(dy)``.\n\n"
            f"    Examples\n    --------\n"
            f"    >>> import numpy as np, poolnd\n"
            f"    >>> layer = poolnd.{cls}(2)\n"
            f"    >>> x = np.arange(8.0).reshape(1, 1, *[2] * {int(cls[-2]) - 1}, -1)\n"
            f"    >>> y = layer.forward(x)\n"
            f"    >>> layer.backward(np.ones_like(y)).shape == x.shape\n"
            f"    True\n")


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


class AvgPool2d(_AvgPoolNd):
    __doc__ = _doc("AvgPool2d", "avg_pool2d")
    _k = 2


class AvgPool3d(_AvgPoolNd):
    __doc__ = _doc("AvgPool3d", "avg_pool3d")
    _k = 3


class Pool(_Layer):
    """Layer form of :func:`poolnd.pool`: any number of spatial dims, modes max, avg, min, sum,
    lp.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> layer = poolnd.Pool("min", 2, spatial_dims=1)
    >>> layer.forward(np.array([[[3.0, 1.0, 2.0, 5.0]]]))
    array([[[1., 2.]]])
    >>> layer.backward(np.array([[[10.0, 20.0]]]))
    array([[[ 0., 10., 20.,  0.]]])
    """

    def __init__(self, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                 spatial_dims, layout=None, return_indices=False, count_include_pad=True,
                 divisor_override=None, norm_type=None, engine=None):
        ctor = dict(mode=mode, kernel_size=kernel_size, stride=stride, padding=padding,
                    dilation=dilation, ceil_mode=ceil_mode, spatial_dims=spatial_dims,
                    layout=layout, return_indices=return_indices,
                    count_include_pad=count_include_pad, divisor_override=divisor_override,
                    norm_type=norm_type, engine=engine)
        self._setup(ctor, dict(_AVG_DEFAULTS, return_indices=False, norm_type=None), op="Pool",
                    mode=mode, norm_type=norm_type,
                    k=spatial_dims, kernel_size=kernel_size, stride=stride, padding=padding,
                    dilation=dilation, ceil_mode=ceil_mode, layout=layout,
                    return_indices=return_indices, count_include_pad=count_include_pad,
                    divisor_override=divisor_override, engine=engine, torch_empty_rule="any")


_LP_DEFAULTS = dict(stride=None, ceil_mode=False, dilation=1, layout=None, engine=None)


class _LPPoolNd(_Layer):
    _k: int

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, *, dilation=1,
                 layout=None, engine=None):
        ctor = dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride,
                    ceil_mode=ceil_mode, dilation=dilation, layout=layout, engine=engine)
        self._setup(ctor, _LP_DEFAULTS, op=type(self).__name__, mode="lp", k=self._k,
                    kernel_size=kernel_size, stride=stride, padding=0, dilation=dilation,
                    ceil_mode=ceil_mode, layout=layout, norm_type=norm_type, engine=engine)

    def __repr__(self):
        rest = [f"{k}={v!r}" for k, v in self._ctor.items() if k not in ("norm_type",
                                                                          "kernel_size")]
        return (f"{type(self).__name__}({self._ctor['norm_type']!r}, "
                f"{', '.join([repr(self._ctor['kernel_size'])] + rest)})")


class LPPool1d(_LPPoolNd):
    __doc__ = _doc("LPPool1d", "lp_pool1d").replace("(2)", "(2, 2)")
    _k = 1


class LPPool2d(_LPPoolNd):
    __doc__ = _doc("LPPool2d", "lp_pool2d").replace("(2)", "(2, 2)")
    _k = 2


class LPPool3d(_LPPoolNd):
    __doc__ = _doc("LPPool3d", "lp_pool3d").replace("(2)", "(2, 2)")
    _k = 3


class _FamilyLayer:
    """Layers of the ops without a fixed window: forward keeps a :class:`_family.Record`."""

    _ctor: dict
    _first: tuple = ()

    def _init(self, ctor: dict, defaults: dict):
        def is_default(key, v):
            d = defaults.get(key, object())
            return d is v or (not isinstance(v, np.ndarray) and d == v)
        self._ctor = {k: v for k, v in ctor.items() if k in self._first or not is_default(k, v)}
        self._saved = None

    def backward(self, dy):
        """Gradient w.r.t. the input of the last forward: same shape, dtype and layout as that
        input. ``dy`` has the output's shape and layout."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no saved forward; call forward(x) "
                               f"before backward(dy)")
        return _family.backward(self._saved, dy)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self):
        args = [repr(self._ctor[k]) for k in self._first]
        args += [f"{k}={v!r}" for k, v in self._ctor.items() if k not in self._first]
        return f"{type(self).__name__}({', '.join(args)})"


class _AdaptiveNd(_FamilyLayer):
    _k: int
    _mode: str
    _first = ("output_size",)

    def _check(self, output_size, return_indices, layout, engine):
        op = type(self).__name__
        _args.adaptive_output_size(op, output_size, self._k)
        _args.check_bool(op, "return_indices", return_indices)
        _args.parse_layout(op, layout, self._k)
        _args.check_engine(op, engine)

    def forward(self, input):
        """Pool ``input`` and keep what :meth:`backward` needs."""
        c = self._ctor
        result, self._saved = _family.adaptive(
            type(self).__name__, self._mode, self._k, input, c["output_size"],
            c.get("return_indices", False), c.get("layout"), c.get("engine"), keep=True)
        return result


class _AdaptiveMaxPoolNd(_AdaptiveNd):
    _mode = "max"

    def __init__(self, output_size, return_indices=False, *, layout=None, engine=None):
        self._check(output_size, return_indices, layout, engine)
        self._init(dict(output_size=output_size, return_indices=return_indices, layout=layout,
                        engine=engine), dict(return_indices=False, layout=None, engine=None))


class _AdaptiveAvgPoolNd(_AdaptiveNd):
    _mode = "avg"

    def __init__(self, output_size, *, layout=None, engine=None):
        self._check(output_size, False, layout, engine)
        self._init(dict(output_size=output_size, layout=layout, engine=engine),
                   dict(layout=None, engine=None))


def _family_doc(cls, fn_name, call):
    return (f"Layer form of :func:`poolnd.{fn_name}` (same arguments), with ``forward`` and "
            f"``backward(dy)``.\n\n"
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


class _FractionalMaxPoolNd(_FamilyLayer):
    _k: int
    _first = ("kernel_size",)

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
        self._rng = _args.check_rng(op, rng)
        self._init(dict(kernel_size=kernel_size, output_size=output_size,
                        output_ratio=output_ratio, return_indices=return_indices,
                        _random_samples=_random_samples, layout=layout, engine=engine),
                   dict(output_size=None, output_ratio=None, return_indices=False,
                        _random_samples=None, layout=None, engine=None))

    def forward(self, input):
        """Pool ``input`` (fresh samples from ``rng`` on every call unless ``_random_samples``
        was given) and keep what :meth:`backward` needs."""
        c = self._ctor
        result, self._saved = _family.fractional(
            type(self).__name__, self._k, input, c["kernel_size"], c.get("output_size"),
            c.get("output_ratio"), c.get("return_indices", False), c.get("_random_samples"),
            c.get("layout"), c.get("engine"), self._rng, keep=True)
        return result


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    __doc__ = _family_doc("FractionalMaxPool2d", "fractional_max_pool2d",
                          "FractionalMaxPool2d(2, output_size=3)")
    _k = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    __doc__ = _family_doc("FractionalMaxPool3d", "fractional_max_pool3d",
                          "FractionalMaxPool3d(2, output_ratio=0.6)")
    _k = 3


class _MaxUnpoolNd(_FamilyLayer):
    _k: int
    _first = ("kernel_size",)

    def __init__(self, kernel_size, stride=None, padding=0, *, layout=None, engine=None):
        op = type(self).__name__
        _args.int_tuple(op, "kernel_size", kernel_size, self._k, 1)
        if stride is not None:
            _args.int_tuple(op, "stride", stride, self._k, 1)
        _args.int_tuple(op, "padding", padding, self._k, 0)
        _args.parse_layout(op, layout, self._k)
        _args.check_engine(op, engine)
        self._init(dict(kernel_size=kernel_size, stride=stride, padding=padding, layout=layout,
                        engine=engine), dict(stride=None, padding=0, layout=None, engine=None))

    def forward(self, input, indices, output_size=None):
        """Unpool ``input`` at ``indices`` (see :func:`poolnd.max_unpool2d`); :meth:`backward`
        then gathers ``dy`` at the same indices."""
        c = self._ctor
        y, self._saved = _family.unpool(
            type(self).__name__, self._k, input, indices, c["kernel_size"], c.get("stride"),
            c.get("padding", 0), output_size, c.get("layout"), c.get("engine"), keep=True)
        return y


def _unpool_doc(cls, k):
    return (f"Layer form of :func:`poolnd.max_unpool{k}d`: ``forward(x, indices, "
            f"output_size=None)`` and ``backward(dy)`` (the gradient w.r.t. ``x``: ``dy`` "
            f"gathered at ``indices``).\n\n"
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
