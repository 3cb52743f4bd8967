"""poolnd: pooling layers for NumPy.

Every pooling op of PyTorch (with its numbers), in any number of spatial dims and any axis layout,
forward and backward (``vjp(op, x, ...)`` for any functional op, or a layer's ``backward``).
Public names only; nothing heavy is imported here.

>>> import numpy as np, poolnd
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> poolnd.max_pool2d(x, 2)
array([[[[ 5.,  7.],
         [13., 15.]]]])
"""
from ._indices import indices_from_flat, indices_to_flat
from ._pool import pool
from ._vjp import vjp
from .functional import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
                         adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d,
                         adaptive_pool, avg_pool1d, avg_pool2d, avg_pool3d,
                         fractional_max_pool2d, fractional_max_pool3d, global_avg_pool,
                         global_max_pool, lp_pool1d, lp_pool2d, lp_pool3d, max_pool1d,
                         max_pool2d, max_pool3d, max_unpool1d, max_unpool2d, max_unpool3d)
from .layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                     AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                     FractionalMaxPool2d, FractionalMaxPool3d, LPPool1d, LPPool2d, LPPool3d,
                     MaxPool1d, MaxPool2d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d, Pool)

__version__ = "0.1.0"


def __getattr__(name):
    # ``poolnd.pyramid`` needs Dask and Zarr (the ``dask`` extra): imported on first use only,
    # so that ``import poolnd`` stays light. Its room is ``_pyramid`` (a public submodule named
    # ``pyramid`` would replace this function with itself as an attribute once imported).
    if name == "pyramid":
        from ._pyramid import pyramid
        globals()["pyramid"] = pyramid
        return pyramid
    raise AttributeError(f"module 'poolnd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"pyramid"})

__all__ = [
    "pool", "Pool", "vjp", "pyramid",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "global_max_pool", "global_avg_pool",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_pool",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "fractional_max_pool2d", "fractional_max_pool3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "LPPool1d", "LPPool2d", "LPPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "FractionalMaxPool2d", "FractionalMaxPool3d",
    "indices_to_flat", "indices_from_flat",
    "__version__",
]
