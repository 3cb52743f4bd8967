"""Thin functional front ends with torch.nn.functional's names and signatures.

Each body is one call into the generic driver (``_pool``); each docstring comes from one family
template (``_docs``). Nothing here checks arguments or computes.
"""
from __future__ import annotations

from . import _args, _docs, _family, _pool
from ._family import adaptive_pool

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "global_max_pool", "global_avg_pool", "lp_pool1d", "lp_pool2d", "lp_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_pool",
           "max_unpool1d", "max_unpool2d", "max_unpool3d",
           "fractional_max_pool2d", "fractional_max_pool3d"]


def max_params(name, k, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
               layout, engine, nan_policy="propagate"):
    """The normalized call of ``max_pool{k}d`` (also built by its layer and by ``vjp``)."""
    return _args.normalize(name, "max", k, kernel_size, stride, padding, dilation, ceil_mode,
                           layout=layout, return_indices=return_indices, engine=engine,
                           nan_policy=nan_policy)


def avg_params(name, k, kernel_size, stride, padding, ceil_mode, count_include_pad,
               divisor_override, dilation, layout, engine, nan_policy="propagate",
               rounding="trunc"):
    """The normalized call of ``avg_pool{k}d`` (also built by its layer and by ``vjp``)."""
    return _args.normalize(name, "avg", k, kernel_size, stride, padding, dilation, ceil_mode,
                           layout=layout, count_include_pad=count_include_pad,
                           divisor_override=divisor_override, engine=engine,
                           input_at_least_kernel=k == 3, nan_policy=nan_policy,
                           rounding=rounding)


def _max(name, k, input, *args):
    return _pool.front(max_params(name, k, *args), input)


def _avg(name, k, input, *args):
    return _pool.front(avg_params(name, k, *args), input)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, nan_policy="propagate", layout=None, engine=None):
    return _max("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine, nan_policy)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, nan_policy="propagate", layout=None, engine=None):
    return _max("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine, nan_policy)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, nan_policy="propagate", layout=None, engine=None):
    return _max("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices, layout, engine, nan_policy)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1,
               nan_policy="propagate", layout=None, rounding="trunc", engine=None):
    return _avg("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine, nan_policy,
                rounding)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1,
               nan_policy="propagate", layout=None, rounding="trunc", engine=None):
    return _avg("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine, nan_policy,
                rounding)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, dilation=1,
               nan_policy="propagate", layout=None, rounding="trunc", engine=None):
    return _avg("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, dilation, layout, engine, nan_policy,
                rounding)


def global_max_pool(input, *, spatial_dims=None, layout=None, engine=None):
    """Max over each whole spatial plane, keeping the pooled dims with size 1 (ONNX GlobalMaxPool).

    Parameters
    ----------
    input : array_like, shape ``(N, C, *spatial)``, or as ``layout`` names its axes
    spatial_dims : int, optional
        How many spatial dims; default from ``layout``, else ``input.ndim - 2``.
    layout : str, optional
        Axis letters, as in :func:`max_pool2d` (``N`` and ``C`` may be left out: ``"HW"``,
        ``"ZYXC"``); default channels-first.
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


def global_avg_pool(input, *, spatial_dims=None, layout=None, rounding="trunc", engine=None):
    """Mean over each whole spatial plane, keeping the pooled dims with size 1 (ONNX
    GlobalAveragePool). Arguments as :func:`global_max_pool`, and ``rounding`` ("trunc" or
    "nearest"), as in :func:`avg_pool2d`: how a mean of integers rounds (toward zero, or to
    nearest with ties to even, exactly).

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> poolnd.global_avg_pool(np.arange(12.0).reshape(1, 2, 2, 3), layout="NHWC")
    array([[[[4.5, 5.5, 6.5]]]])
    >>> img = np.array([[1, 2], [4, 4]], dtype=np.uint8)          # mean 2.75, a plain image
    >>> poolnd.global_avg_pool(img, layout="HW"), poolnd.global_avg_pool(img, layout="HW",
    ...                                                                  rounding="nearest")
    (array([[2]], dtype=uint8), array([[3]], dtype=uint8))
    """
    return _pool.global_pool("global_avg_pool", "avg", input, spatial_dims, layout, engine,
                             rounding)


def lp_params(name, k, norm_type, kernel_size, stride, ceil_mode, dilation, layout, engine):
    """The normalized call of ``lp_pool{k}d`` (also built by its layer and by ``vjp``)."""
    return _args.normalize(name, "lp", k, kernel_size, stride, 0, dilation, ceil_mode,
                           layout=layout, norm_type=norm_type, engine=engine)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, dilation=1,
              layout=None, engine=None):
    return _pool.front(lp_params("lp_pool1d", 1, norm_type, kernel_size, stride, ceil_mode,
                                 dilation, layout, engine), input)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, dilation=1,
              layout=None, engine=None):
    return _pool.front(lp_params("lp_pool2d", 2, norm_type, kernel_size, stride, ceil_mode,
                                 dilation, layout, engine), input)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, dilation=1,
              layout=None, engine=None):
    return _pool.front(lp_params("lp_pool3d", 3, norm_type, kernel_size, stride, ceil_mode,
                                 dilation, layout, engine), input)


def adaptive_max_pool1d(input, output_size, return_indices=False, *, layout=None, engine=None):
    return _family.adaptive("adaptive_max_pool1d", "max", 1, input, output_size, return_indices,
                            layout, engine)


def adaptive_max_pool2d(input, output_size, return_indices=False, *, layout=None, engine=None):
    return _family.adaptive("adaptive_max_pool2d", "max", 2, input, output_size, return_indices,
                            layout, engine)


def adaptive_max_pool3d(input, output_size, return_indices=False, *, layout=None, engine=None):
    return _family.adaptive("adaptive_max_pool3d", "max", 3, input, output_size, return_indices,
                            layout, engine)


def adaptive_avg_pool1d(input, output_size, *, layout=None, rounding="trunc", engine=None):
    return _family.adaptive("adaptive_avg_pool1d", "avg", 1, input, output_size, False, layout,
                            engine, rounding=rounding)


def adaptive_avg_pool2d(input, output_size, *, layout=None, rounding="trunc", engine=None):
    return _family.adaptive("adaptive_avg_pool2d", "avg", 2, input, output_size, False, layout,
                            engine, rounding=rounding)


def adaptive_avg_pool3d(input, output_size, *, layout=None, rounding="trunc", engine=None):
    return _family.adaptive("adaptive_avg_pool3d", "avg", 3, input, output_size, False, layout,
                            engine, rounding=rounding)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 layout=None, engine=None):
    return _family.unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                          output_size, layout, engine)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 layout=None, engine=None):
    return _family.unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                          output_size, layout, engine)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 layout=None, engine=None):
    return _family.unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding,
                          output_size, layout, engine)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None, *, layout=None,
                          engine=None, rng=None):
    return _family.fractional("fractional_max_pool2d", 2, input, kernel_size, output_size,
                              output_ratio, return_indices, _random_samples, layout, engine, rng)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None, *, layout=None,
                          engine=None, rng=None):
    return _family.fractional("fractional_max_pool3d", 3, input, kernel_size, output_size,
                              output_ratio, return_indices, _random_samples, layout, engine, rng)


_EXAMPLES = {
    ("max plain", 1): "array([1., 3., 5., 7.])",
    ("max plain", 2): "array([[ 5.,  7.],\n       [13., 15.]])",
    ("max plain", 3): "array([[[7.]]])",
    ("avg plain", 1): "array([0.5, 2.5, 4.5, 6.5])",
    ("avg plain", 2): "array([[ 2.5,  4.5],\n       [10.5, 12.5]])",
    ("avg plain", 3): "array([[[3.5]]])",
    # (offset, the exact window means of x + offset, rounded half to even: "trunc" gives 1 less)
    ("avg nearest", 1): (1, "1.5, 3.5, 5.5, 7.5", "array([[[2, 4, 6, 8]]], dtype=uint8)"),
    ("avg nearest", 2): (1, "3.5, 5.5, 11.5, 13.5",
                         "array([[[[ 4,  6],\n         [12, 14]]]], dtype=uint8)"),
    ("avg nearest", 3): (2, "5.5", "array([[[[[6]]]]], dtype=uint8)"),
    ("max", 1): "array([[[1., 3., 5., 7.]]])",
    ("max", 2): "array([[[[ 5.,  7.],\n         [13., 15.]]]])",
    ("max", 3): "array([[[[[7.]]]]])",
    ("avg", 1): "array([[[0.5, 2.5, 4.5, 6.5]]])",
    ("avg", 2): "array([[[[ 2.5,  4.5],\n         [10.5, 12.5]]]])",
    ("avg", 3): "array([[[[[3.5]]]]])",
    ('lp', 1): 'array([[[ 1.,  5.,  9., 13.]]])',
    ('amax', 1): 'array([[[3., 7.]]])',
    ('aavg', 1): 'array([[[1.5, 5.5]]])',
    ('unpool', 1): 'array([[[0., 1., 0., 3., 0., 5., 0., 7.]]])',
    ('lp', 2): 'array([[[[10., 18.],\n         [42., 50.]]]])',
    ('amax', 2): 'array([[[[ 5.,  7.],\n         [13., 15.]]]])',
    ('aavg', 2): 'array([[[[ 2.5,  4.5],\n         [10.5, 12.5]]]])',
    ('unpool', 2): 'array([[[[ 0.,  0.,  0.,  0.],\n         [ 0.,  5.,  0.,  7.],\n         [ 0.,  0.,  0.,  0.],\n         [ 0., 13.,  0., 15.]]]])',
    ('lp', 3): 'array([[[[[28.]]]]])',
    ('amax', 3): 'array([[[[[7.]]]]])',
    ('aavg', 3): 'array([[[[[3.5]]]]])',
    ('unpool', 3): 'array([[[[[0., 0.],\n          [0., 0.]],\n\n         [[0., 0.],\n          [0., 7.]]]]])',
    ('frac', 2): 'array([[[[ 6.,  8.,  9.],\n         [16., 18., 19.],\n         [21., 23., 24.]]]])',
    ('frac', 3): 'array([[[[[21., 23.],\n          [29., 31.]],\n\n         [[53., 55.],\n          [61., 63.]]]]])',
}
for _k, _f in ((1, max_pool1d), (2, max_pool2d), (3, max_pool3d)):
    _f.__doc__ = _docs.max_doc(_k, _EXAMPLES[("max", _k)], _EXAMPLES[("max plain", _k)])
for _k, _f in ((1, avg_pool1d), (2, avg_pool2d), (3, avg_pool3d)):
    _f.__doc__ = _docs.avg_doc(_k, _EXAMPLES[("avg", _k)], _EXAMPLES[("avg plain", _k)],
                               _EXAMPLES[("avg nearest", _k)])
del _k, _f

for _k, _f in ((1, lp_pool1d), (2, lp_pool2d), (3, lp_pool3d)):
    _f.__doc__ = _docs.lp_doc(_k, _EXAMPLES[("lp", _k)])
for _k, _f in ((1, adaptive_max_pool1d), (2, adaptive_max_pool2d), (3, adaptive_max_pool3d)):
    _f.__doc__ = _docs.adaptive_doc(_k, "max", _EXAMPLES[("amax", _k)])
for _k, _f in ((1, adaptive_avg_pool1d), (2, adaptive_avg_pool2d), (3, adaptive_avg_pool3d)):
    _f.__doc__ = _docs.adaptive_doc(_k, "avg", _EXAMPLES[("aavg", _k)])
for _k, _f in ((1, max_unpool1d), (2, max_unpool2d), (3, max_unpool3d)):
    _f.__doc__ = _docs.unpool_doc(_k, _EXAMPLES[("unpool", _k)])
for _k, _f in ((2, fractional_max_pool2d), (3, fractional_max_pool3d)):
    _f.__doc__ = _docs.fractional_doc(_k, _EXAMPLES[("frac", _k)])
del _k, _f
