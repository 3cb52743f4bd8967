"""Dedicated cases: tied maxima, NaN, -inf, integer dtypes, float16, empty batch, non-contiguous
and read-only inputs, windows lying wholly in padding. Checked on every engine against torch (where
torch has the op) or the independent naive oracle."""
import numpy as np
import pytest

import poolnd
import naive

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(fn, x, *a, **kw):
    out = fn(torch.from_numpy(np.ascontiguousarray(x)), *a, **kw)
    return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_tied_maxima_first_wins(k, engine, rng):
    shape = (2, 3) + (6,) * k
    x = rng.integers(0, 3, size=shape).astype(np.float32)      # many ties
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, 3, 1, 1, return_indices=True, engine=engine)
    ty, tidx = _t(getattr(F, f"max_pool{k}d"), x, 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_nan_wins_with_last_nan_index(k, engine, rng):
    shape = (2, 2) + (5,) * k
    x = rng.standard_normal(shape).astype(np.float64)
    x[rng.random(shape) < 0.3] = np.nan
    x[rng.random(shape) < 0.1] = -np.inf
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, 2, 1, 1, 2, ceil_mode=True, return_indices=True,
                                              engine=engine)
    ty, tidx = _t(getattr(F, f"max_pool{k}d"), x, 2, 1, 1, 2, True, return_indices=True)
    np.testing.assert_array_equal(y, ty)                       # NaN == NaN here
    np.testing.assert_array_equal(idx, tidx)
    assert np.isnan(y).any()


def test_all_minus_inf_window_picks_first_valid(engine):
    x = np.full((1, 1, 4, 4), -np.inf)
    y, idx = poolnd.max_pool2d(x, 3, 2, 1, return_indices=True, engine=engine)
    ty, tidx = _t(F.max_pool2d, x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "uint16"])
@pytest.mark.parametrize("k", [2, 3])
def test_integer_max_exact(dtype, k, engine, rng):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=(2, 2) + (5,) * k, dtype=dtype, endpoint=True)
    x.reshape(-1)[:3] = info.min                               # extremes and ties
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, 2, 2, 1, return_indices=True, engine=engine)
    assert y.dtype == x.dtype
    ty, tidx = _t(getattr(F, f"max_pool{k}d"), x.astype(np.int64), 2, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int8"])
def test_integer_max1d_and_min_against_naive(dtype, engine, rng):
    """torch has no integer max_pool1d; the naive oracle decides."""
    x = rng.integers(0, 50, size=(2, 3, 11)).astype(dtype)
    y, idx = poolnd.max_pool1d(x, 3, 2, 1, return_indices=True, engine=engine)
    ny, nidx, _ = naive.pool(x, "max", (3,), (2,), (1,), ((1, 1),))
    np.testing.assert_array_equal(y, ny)
    np.testing.assert_array_equal(idx, nidx)
    y, idx = poolnd.pool(x, "min", 3, 2, 1, spatial_dims=1, return_indices=True, engine=engine)
    ny, nidx, _ = naive.pool(x, "min", (3,), (2,), (1,), ((1, 1),))
    np.testing.assert_array_equal(y, ny)
    np.testing.assert_array_equal(idx, nidx)


def test_int64_average_truncates_like_torch(engine, rng):
    x = rng.integers(-50, 50, size=(2, 3, 7, 7))
    for kw in (dict(), dict(count_include_pad=False), dict(divisor_override=-3),
               dict(ceil_mode=True)):
        y = poolnd.avg_pool2d(x, 3, 2, 1, engine=engine, **kw)
        np.testing.assert_array_equal(y, _t(F.avg_pool2d, x, 3, 2, 1, **kw))


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint8"])
def test_other_integer_averages_against_naive(dtype, engine, rng):
    x = rng.integers(0, 100, size=(2, 2, 6, 5)).astype(dtype)
    y = poolnd.avg_pool2d(x, 3, 2, 1, count_include_pad=False, engine=engine)
    ny, _, _ = naive.pool(x, "avg", (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)),
                          count_include_pad=False)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, ny)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_float16_max_exact_and_avg_close(k, engine, rng):
    x = (rng.standard_normal((2, 2) + (6,) * k) * 100).astype(np.float16)
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, 3, 2, 1, return_indices=True, engine=engine)
    ty, tidx = _t(getattr(F, f"max_pool{k}d"), x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)
    a = getattr(poolnd, f"avg_pool{k}d")(x, 3, 2, 1, engine=engine)
    ta = _t(getattr(F, f"avg_pool{k}d"), x.astype(np.float32), 3, 2, 1)   # float32 oracle
    assert a.dtype == np.float16
    np.testing.assert_allclose(a.astype(np.float32), ta, rtol=1e-3, atol=1e-2)


def test_empty_batch(engine):
    x = np.zeros((0, 3, 5, 5), np.float32)
    y, idx = poolnd.max_pool2d(x, 2, return_indices=True, engine=engine)
    assert y.shape == idx.shape == (0, 3, 2, 2)
    layer = poolnd.AvgPool2d(2, engine=engine)
    y = layer.forward(x)
    assert layer.backward(y).shape == x.shape


def test_non_contiguous_and_read_only_inputs(engine, rng):
    base = rng.standard_normal((4, 6, 12, 10))
    x = base[::2, 1::2, ::-1, ::3]                              # strided, reversed view
    x.flags.writeable = False
    keep = x.copy()
    y = poolnd.max_pool2d(x, 2, 1, 1, engine=engine)
    np.testing.assert_array_equal(y, _t(F.max_pool2d, x, 2, 1, 1))
    a = poolnd.avg_pool2d(x, 3, 1, 1, engine=engine)
    np.testing.assert_allclose(a, _t(F.avg_pool2d, x, 3, 1, 1), rtol=1e-12)
    np.testing.assert_array_equal(x, keep)


def test_unbatched_equals_batch_of_one(engine, rng):
    x = rng.standard_normal((3, 7, 6))
    y, idx = poolnd.max_pool2d(x, 3, 2, 1, return_indices=True, engine=engine)
    yb, idxb = poolnd.max_pool2d(x[None], 3, 2, 1, return_indices=True, engine=engine)
    np.testing.assert_array_equal(y, yb[0])
    np.testing.assert_array_equal(idx, idxb[0])
    ty, tidx = _t(F.max_pool2d, x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)


def test_window_wholly_in_padding(engine):
    """Dilation 3 with pad 1 on a length-2 input: the only window reads positions -1 and 2.
    Value -inf as in torch; index -1 (torch returns 2, outside the plane); no gradient."""
    x = np.array([[[1.0, 2.0]]])
    y, idx = poolnd.max_pool1d(x, 2, 1, 1, 3, return_indices=True, engine=engine)
    ty, _ = _t(F.max_pool1d, x, 2, 1, 1, 3, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    assert idx.tolist() == [[[-1]]]
    layer = poolnd.MaxPool1d(2, 1, 1, 3, engine=engine)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1))), np.zeros_like(x))
    # sum and avg with count_include_pad treat the window as all padding
    s = poolnd.pool(x, "sum", 2, 1, ((1, 1),), 3, spatial_dims=1, engine=engine)
    assert s.tolist() == [[[0.0]]]
    with pytest.raises(ValueError, match="count_include_pad"):
        poolnd.avg_pool1d(x, 2, 1, ((1, 1),), count_include_pad=False, dilation=3)


def test_does_not_hang_or_explode_on_large_kernel_ceil(engine):
    """torch's ceil rule lets a kernel one longer than the input make one window."""
    x = np.arange(3.0).reshape(1, 1, 3)
    y, idx = poolnd.max_pool1d(x, 4, 2, ceil_mode=True, return_indices=True, engine=engine)
    ty, tidx = _t(F.max_pool1d, x, 4, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)
    np.testing.assert_array_equal(poolnd.avg_pool1d(x, 4, 2, ceil_mode=True, engine=engine),
                                  _t(F.avg_pool1d, x, 4, 2, ceil_mode=True))


@pytest.mark.parametrize("stride,padding", [((2, 2, 2), (0, 1, 1)), ((3, 1, 2), 0),
                                            ((1, 2, 1), (0, 1, 1))])
def test_3d_pool_with_depth_kernel_one(stride, padding, engine, rng):
    """Kernel (1, 3, 3) on 3-d input: the depth dim still strides (a 2-d fast path that ignored
    depth stride would read the wrong slices)."""
    x = rng.standard_normal((2, 3, 5, 7, 8))
    y, idx = poolnd.max_pool3d(x, (1, 3, 3), stride, padding, return_indices=True, engine=engine)
    ty, tidx = _t(F.max_pool3d, x, (1, 3, 3), stride, padding, return_indices=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx)
    a = poolnd.avg_pool3d(x, (1, 3, 3), stride, padding, engine=engine)
    np.testing.assert_allclose(a, _t(F.avg_pool3d, x, (1, 3, 3), stride, padding), rtol=1e-12)
    # depth padding through (before, after) pairs: windows wholly in depth padding are -inf
    pads = ((1, 1), (1, 1), (0, 0))
    y2 = poolnd.pool(x, "max", (1, 3, 3), 1, pads, spatial_dims=3, engine=engine)
    assert y2.shape == (2, 3, 7, 7, 6)
    assert np.isneginf(y2[:, :, 0]).all() and np.isneginf(y2[:, :, -1]).all()
    np.testing.assert_array_equal(y2[:, :, 1:-1], poolnd.max_pool3d(x, (1, 3, 3), 1, (0, 1, 0),
                                                                    engine="reference"))


def test_3d_channels_last_with_depth_kernel_one(engine, rng):
    """NDHWC, kernel (1, 2, 2): every depth slice is pooled (a 2-d channels-last fast path must
    not look at depth 0 only)."""
    x = rng.standard_normal((2, 3, 6, 8, 5))                          # N, C, D, H, W
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))              # N, D, H, W, C
    for fn, tfn in ((poolnd.max_pool3d, F.max_pool3d), (poolnd.avg_pool3d, F.avg_pool3d)):
        y = fn(xl, (1, 2, 2), layout="NDHWC", engine=engine)
        np.testing.assert_allclose(y.transpose(0, 4, 1, 2, 3), _t(tfn, x, (1, 2, 2)),
                                   rtol=1e-12)
