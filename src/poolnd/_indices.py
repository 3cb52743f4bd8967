"""Index conventions: PyTorch's per-plane indices <-> ONNX's flat indices.

PyTorch (and every poolnd op) gives, for each output, the flat row-major offset of the chosen
element inside its own ``(*spatial)`` input plane. ONNX MaxPool's ``Indices`` are flat over the
whole ``(N, C, *spatial)`` input: ``(n * C + c) * plane_size + spatial_offset``, where the spatial
offset is row-major (``storage_order=0``) or column-major (``storage_order=1``: the first spatial
dim varies fastest).
"""
from __future__ import annotations

import math

import numpy as np

from ._args import _is_int, fail

__all__ = ["indices_to_flat", "indices_from_flat"]


def _check(op, indices, input_shape, storage_order):
    if not isinstance(input_shape, (tuple, list)) or not all(_is_int(s) for s in input_shape):
        fail(op, f"input_shape must be a tuple of ints (N, C, *spatial), got {input_shape!r}",
             TypeError)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) < 3 or any(s < 0 for s in input_shape):
        fail(op, f"input_shape={input_shape} must be (N, C, *spatial) with at least one spatial "
                 f"dim and no negative size")
    if not _is_int(storage_order) or storage_order not in (0, 1):
        fail(op, f"storage_order={storage_order!r} must be 0 (row-major) or 1 (column-major)")
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        fail(op, f"indices must have an integer dtype, got {idx.dtype}", TypeError)
    if idx.ndim != len(input_shape) or idx.shape[:2] != input_shape[:2]:
        fail(op, f"indices of shape {idx.shape} must be (N, C, *out) with the N, C of "
                 f"input_shape={input_shape}")
    return idx.astype(np.int64, copy=False), input_shape, int(storage_order)


def _plane_strides(spatial, storage_order):
    """Strides (in elements) of each spatial dim inside one plane, row- or column-major."""
    order = range(len(spatial)) if storage_order else reversed(range(len(spatial)))
    strides, acc = [0] * len(spatial), 1
    for d in order:
        strides[d] = acc
        acc *= spatial[d]
    return strides


def _reorder(offset, spatial, src_order, dst_order):
    """Re-express in-plane offsets written in ``src_order`` in ``dst_order``."""
    if src_order == dst_order:
        return offset
    src, dst = _plane_strides(spatial, src_order), _plane_strides(spatial, dst_order)
    out = np.zeros_like(offset)
    for d in range(len(spatial)):
        out += (offset // src[d]) % spatial[d] * dst[d]
    return out


def _planes(idx, input_shape):
    n, c = input_shape[:2]
    shape = (n, c) + (1,) * (idx.ndim - 2)
    return np.arange(n * c, dtype=np.int64).reshape(shape)


def indices_to_flat(indices, input_shape, storage_order=0):
    """PyTorch's per-plane indices -> ONNX MaxPool's flat indices.

    Parameters
    ----------
    indices : int array, shape ``(N, C, *out)`` (channels-first)
        As returned with ``return_indices=True``.
    input_shape : tuple of ints
        Shape of the pooled input, channels-first ``(N, C, *spatial)``.
    storage_order : {0, 1}
        ONNX's attribute: 0 row-major, 1 column-major spatial offsets.

    Returns
    -------
    ndarray of int64, same shape: ``(n * C + c) * prod(spatial) + spatial_offset``.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> x = np.arange(32.0).reshape(2, 1, 4, 4)
    >>> y, idx = poolnd.max_pool2d(x, 2, return_indices=True)
    >>> idx[1].ravel()
    array([ 5,  7, 13, 15])
    >>> poolnd.indices_to_flat(idx, x.shape)[1].ravel()
    array([21, 23, 29, 31])
    >>> poolnd.indices_to_flat(idx, x.shape, storage_order=1)[1].ravel()
    array([21, 29, 23, 31])
    """
    op = "indices_to_flat"
    idx, input_shape, order = _check(op, indices, input_shape, storage_order)
    spatial = input_shape[2:]
    plane = math.prod(spatial)
    if idx.size and (idx.min() < 0 or idx.max() >= plane):
        fail(op, f"indices must lie in [0, {plane}) (the spatial plane of input_shape="
                 f"{input_shape}), got values in [{idx.min()}, {idx.max()}]")
    return _planes(idx, input_shape) * plane + _reorder(idx, spatial, 0, order)


def indices_from_flat(indices, input_shape, storage_order=0):
    """ONNX MaxPool's flat indices -> PyTorch's per-plane indices (the inverse of
    :func:`indices_to_flat`; arguments the same).

    Raises ``ValueError`` when an index does not lie in its own ``(n, c)`` plane.

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> flat = np.array([[[[5, 7], [13, 15]]]])       # column-major offsets in a 4x4 plane
    >>> poolnd.indices_from_flat(flat, (1, 1, 4, 4), storage_order=1)
    array([[[[ 5, 13],
             [ 7, 15]]]])
    """
    op = "indices_from_flat"
    idx, input_shape, order = _check(op, indices, input_shape, storage_order)
    spatial = input_shape[2:]
    plane = math.prod(spatial)
    planes = _planes(idx, input_shape)
    bad = (idx < planes * plane) | (idx >= (planes + 1) * plane)
    if bad.any():
        where = tuple(int(i[0]) for i in np.nonzero(bad))
        fail(op, f"flat index {int(idx[where])} at position {where} is not inside its own "
                 f"(n, c) plane [{int(planes[where[:2]].ravel()[0]) * plane}, "
                 f"{(int(planes[where[:2]].ravel()[0]) + 1) * plane}) of input_shape={input_shape}")
    return _reorder(idx - planes * plane, spatial, order, 0)
