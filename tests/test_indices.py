"""ONNX's flat indices. The expected formula is written here from the ONNX MaxPool spec
("flattened indices ... of the input tensor"; storage_order 0 row major, 1 column major)."""
import numpy as np
import pytest

import poolnd


def onnx_flat(per_plane, input_shape, storage_order):
    n_, c_ = input_shape[:2]
    spatial = input_shape[2:]
    out = np.empty_like(per_plane)
    for pos in np.ndindex(per_plane.shape):
        n, c = pos[:2]
        coords = np.unravel_index(per_plane[pos], spatial)          # row-major in the plane
        if storage_order == 0:
            off = np.ravel_multi_index(coords, spatial)
        else:
            off = np.ravel_multi_index(coords, spatial, order="F")
        out[pos] = (n * c_ + c) * int(np.prod(spatial)) + off
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("storage_order", [0, 1])
def test_flat_indices_match_the_onnx_formula_and_round_trip(k, storage_order, rng):
    x = rng.standard_normal((2, 3) + tuple(rng.integers(3, 7, size=k)))
    _, idx = poolnd.pool(x, "max", 2, 1, spatial_dims=k, return_indices=True)
    flat = poolnd.indices_to_flat(idx, x.shape, storage_order)
    np.testing.assert_array_equal(flat, onnx_flat(idx, x.shape, storage_order))
    # the flat index picks the max out of the whole flattened tensor
    y = poolnd.pool(x, "max", 2, 1, spatial_dims=k)
    flat_rowmajor = poolnd.indices_to_flat(idx, x.shape, 0)
    np.testing.assert_array_equal(x.reshape(-1)[flat_rowmajor], y)
    np.testing.assert_array_equal(poolnd.indices_from_flat(flat, x.shape, storage_order), idx)


def test_from_flat_rejects_an_index_outside_its_plane():
    with pytest.raises(ValueError, match="not inside its own"):
        poolnd.indices_from_flat(np.array([[[[20]]]]), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="storage_order=2"):
        poolnd.indices_to_flat(np.zeros((1, 1, 1, 1), int), (1, 1, 4, 4), 2)
    with pytest.raises(TypeError, match="integer dtype"):
        poolnd.indices_to_flat(np.zeros((1, 1, 1, 1)), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"lie in \[0, 16\)"):
        poolnd.indices_to_flat(np.full((1, 1, 1, 1), 16), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="must be \\(N, C, \\*out\\)"):
        poolnd.indices_to_flat(np.zeros((1, 2, 1, 1), int), (1, 1, 4, 4))
