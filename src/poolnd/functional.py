"""Thin functional front ends with torch.nn.functional's names and signatures.

Each body is one call into the generic driver (``_pool``); each docstring comes from one family
template (``_docs``). Nothing here checks arguments or computes.
"""
from __future__ import annotations

from . import _args, _docs, _pool

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "global_max_pool", "global_avg_pool"]


def _max(name, k, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
         layout, engine):
    p = _args.normalize(name, "max", k, kernel_size, stride, padding, dilation, ceil_mode,
                        layout=layout, return_indices=return_indices, engine=engine)
    return _pool.forward(p, input)


def _avg(name, k, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
         divisor_override, dilation, layout, engine):
    p = _args.normalize(name, "avg", k, kernel_size, stride, padding, dilation, ceil_mode,
                        layout=layout, count_include_pad=count_include_pad,
                        divisor_override=divisor_override, engine=engine,
                        input_at_least_kernel=k == 3)
    return _pool.forward(p, input)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, layout=None, engine=None):
    return _max("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, layout=None, engine=None):
    return _max("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, layout=None, engine=None):
    return _max("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1, layout=None,
               engine=None):
    return _avg("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1, layout=None,
               engine=None):
    return _avg("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1, layout=None,
               engine=None):
    return _avg("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine)


def global_max_pool(input, *, spatial_dims=None, layout=None, engine=None):
    """Max over each whole spatial plane, keeping the pooled dims with size 1 (ONNX GlobalMaxPool).

    Parameters
    ----------
    input : array_like, shape ``(N, C, *spatial)``, or as ``layout`` names its axes
    spatial_dims : int, optional
        How many spatial dims; default from ``layout``, else ``input.ndim - 2``.
    layout : str, optional
        Axis letters, as in :func:`max_pool2d`; default channels-first.
    engine : str, optional

    Returns
    -------
    y : ndarray, the input's shape with every spatial dim 1 (NaN wins, as in :func:`max_pool2d`)

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> poolnd.global_max_pool(np.arange(12.0).reshape(1, 2, 2, 3))
    array([[[[ 5.]],
    <BLANKLINE>
            [[11.]]]])
    """
    return _pool.global_pool("global_max_pool", "max", input, spatial_dims, layout, engine)


def global_avg_pool(input, *, spatial_dims=None, layout=None, engine=None):
    """Mean over each whole spatial plane, keeping the pooled dims with size 1 (ONNX
    GlobalAveragePool). Arguments as :func:`global_max_pool`.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> poolnd.global_avg_pool(np.arange(12.0).reshape(1, 2, 2, 3), layout="NHWC")
    array([[[[4.5, 5.5, 6.5]]]])
    """
    return _pool.global_pool("global_avg_pool", "avg", input, spatial_dims, layout, engine)


_EXAMPLES = {
    ("max", 1): "array([[[1., 3., 5., 7.]]])",
    ("max", 2): "array([[[[ 5.,  7.],\n         [13., 15.]]]])",
    ("max", 3): "array([[[[[7.]]]]])",
    ("avg", 1): "array([[[0.5, 2.5, 4.5, 6.5]]])",
    ("avg", 2): "array([[[[ 2.5,  4.5],\n         [10.5, 12.5]]]])",
    ("avg", 3): "array([[[[[3.5]]]]])",
}
for _k, _f in ((1, max_pool1d), (2, max_pool2d), (3, max_pool3d)):
    _f.__doc__ = _docs.max_doc(_k, _EXAMPLES[("max", _k)])
for _k, _f in ((1, avg_pool1d), (2, avg_pool2d), (3, avg_pool3d)):
    _f.__doc__ = _docs.avg_doc(_k, _EXAMPLES[("avg", _k)])
del _k, _f
