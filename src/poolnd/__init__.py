"""poolnd: pooling layers for NumPy.

Every pooling op of PyTorch (with its numbers), in any number of spatial dims and any axis layout,
forward and backward. Public names only; nothing heavy is imported here.

>>> import numpy as np, poolnd
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> poolnd.max_pool2d(x, 2)
array([[[[ 5.,  7.],
         [13., 15.]]]])
"""
from ._indices import indices_from_flat, indices_to_flat
from ._pool import pool
from .functional import (avg_pool1d, avg_pool2d, avg_pool3d, global_avg_pool, global_max_pool,
                         max_pool1d, max_pool2d, max_pool3d)
from .layers import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d, Pool

__version__ = "0.1.0"

__all__ = [
    "pool", "Pool",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "global_max_pool", "global_avg_pool",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "indices_to_flat", "indices_from_flat",
    "__version__",
]
