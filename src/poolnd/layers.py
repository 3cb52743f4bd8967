"""Layers with ``forward`` and ``backward`` (torch.nn names and constructor arguments).

``__init__`` validates its arguments once; ``forward(x)`` pools and overwrites a small saved record
(geometry, window-local argmax, input shape/dtype/layout, engine); ``backward(dy)`` returns the
gradient w.r.t. that input from the record alone. Layers do no math of their own.
"""
from __future__ import annotations

from . import _args, _pool

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Pool"]


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
    """Layer form of :func:`poolnd.pool`: any number of spatial dims, modes max, avg, min, sum.

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
                 divisor_override=None, engine=None):
        ctor = dict(mode=mode, kernel_size=kernel_size, stride=stride, padding=padding,
                    dilation=dilation, ceil_mode=ceil_mode, spatial_dims=spatial_dims,
                    layout=layout, return_indices=return_indices,
                    count_include_pad=count_include_pad, divisor_override=divisor_override,
                    engine=engine)
        self._setup(ctor, dict(_AVG_DEFAULTS, return_indices=False), op="Pool", mode=mode,
                    k=spatial_dims, kernel_size=kernel_size, stride=stride, padding=padding,
                    dilation=dilation, ceil_mode=ceil_mode, layout=layout,
                    return_indices=return_indices, count_include_pad=count_include_pad,
                    divisor_override=divisor_override, engine=engine, torch_empty_rule="any")
