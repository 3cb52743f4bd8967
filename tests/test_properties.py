"""Hypothesis invariants: output shape = brute-force window count; kernel 1 stride 1 is the
identity; permuting the layout commutes with pooling; max backward conserves sum(dout) when
stride = kernel; max >= avg >= min on unpadded windows; adaptive windows cover the input;
unpool then pool round-trips."""
import numpy as np
from hypothesis import given, strategies as st

import poolnd
import naive

dims = st.integers(1, 3)


@st.composite
def geometry_case(draw):
    k = draw(dims)
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(k))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(k))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(k))
    pads = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(k))
    size = tuple(draw(st.integers(1, 9)) for _ in range(k))
    return k, kernel, stride, dilation, pads, size, draw(st.booleans())


@given(geometry_case())
def test_output_shape_is_brute_force_window_count(case):
    k, kernel, stride, dilation, pads, size, ceil = case
    expect = tuple(naive.count_windows(L, kk, s, d, b, a, ceil)
                   for L, kk, s, d, (b, a) in zip(size, kernel, stride, dilation, pads))
    x = np.zeros((1, 1) + size)
    if min(expect) < 1:
        try:
            poolnd.pool(x, "max", kernel, stride, pads, dilation, ceil, spatial_dims=k)
        except ValueError:
            return
        raise AssertionError("no error for an empty output")
    y = poolnd.pool(x, "max", kernel, stride, pads, dilation, ceil, spatial_dims=k)
    assert y.shape[2:] == expect


@given(dims, st.sampled_from(["max", "min", "avg", "sum"]),
       st.sampled_from(["float32", "float64", "int32", "float16"]), st.integers(0, 2**31))
def test_kernel_one_stride_one_is_identity(k, mode, dtype, seed):
    x = np.random.default_rng(seed).integers(-9, 9, size=(2, 3) + (4,) * k).astype(dtype)
    y = poolnd.pool(x, mode, 1, 1, spatial_dims=k)
    # an integer sum widens as np.sum does (API.md section 5)
    assert y.dtype == (np.sum(x[..., :1], axis=-1).dtype if mode == "sum" else x.dtype)
    np.testing.assert_array_equal(y, x)


@given(dims, st.sampled_from(["max", "min", "avg", "sum"]), st.integers(0, 2**31))
def test_layout_permutation_commutes(k, mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3) + tuple(rng.integers(3, 7, size=k)))
    letters = list("NC" + "DHW"[-k:])
    perm = rng.permutation(len(letters))
    layout = "".join(letters[i] for i in perm)
    kw = dict(kernel_size=2, stride=1, padding=1, spatial_dims=k)
    y_cf = poolnd.pool(x, mode, **kw)
    y = poolnd.pool(x.transpose(perm), mode, layout=layout, **kw)
    np.testing.assert_allclose(y, y_cf.transpose(perm), rtol=1e-12)


@given(dims, st.integers(1, 3), st.integers(0, 2**31))
def test_max_backward_conserves_sum_when_stride_is_kernel(k, kern, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + tuple(rng.integers(kern, 3 * kern + 1, size=k)))
    layer = poolnd.MaxPool1d(kern) if k == 1 else (poolnd.MaxPool2d(kern) if k == 2
                                                   else poolnd.MaxPool3d(kern))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    assert np.sum(layer.backward(dy)) == np.sum(dy) or np.isclose(np.sum(layer.backward(dy)),
                                                                  np.sum(dy), rtol=1e-12)


@given(dims, st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31))
def test_max_ge_avg_ge_min(k, kern, stride, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2) + tuple(rng.integers(kern, kern + 5, size=k)))
    args = dict(kernel_size=kern, stride=stride, spatial_dims=k)
    mx, av, mn = (poolnd.pool(x, m, **args) for m in ("max", "avg", "min"))
    assert np.all(mx >= av - 1e-12) and np.all(av >= mn - 1e-12)


# ----------------------------------------------------------------------------------------------
# the rest of the family
# ----------------------------------------------------------------------------------------------

@given(st.integers(1, 4), st.data())
def test_adaptive_covers_every_input_and_has_the_requested_shape(k, data):
    """Every input element lies in some window (a gradient of ones reaches all of it), the
    output has exactly output_size, and output = input size is the identity."""
    size = tuple(data.draw(st.integers(1, 7)) for _ in range(k))
    out = tuple(data.draw(st.integers(1, 9)) for _ in range(k))
    x = np.random.default_rng(sum(size)).standard_normal((2, 1) + size)
    y = poolnd.adaptive_pool(x, "avg", out, spatial_dims=k)
    assert y.shape == (2, 1) + out
    np.testing.assert_array_equal(poolnd.adaptive_pool(x, "max", size, spatial_dims=k), x)
    np.testing.assert_allclose(poolnd.adaptive_pool(x, "avg", size, spatial_dims=k), x)
    lay = {1: poolnd.AdaptiveAvgPool1d, 2: poolnd.AdaptiveAvgPool2d,
           3: poolnd.AdaptiveAvgPool3d}.get(k)
    if lay is not None:
        a = lay(out)
        a.forward(x)
        assert (a.backward(np.ones((2, 1) + out)) > 0).all()


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.data())
def test_unpool_then_pool_round_trips(k, kernel, extra_stride, data):
    """With stride >= kernel the windows are disjoint: pooling the unpooled maxima gives the
    maxima back (values and indices), for positive inputs."""
    stride = kernel + extra_stride
    size = tuple(data.draw(st.integers(kernel, 8)) for _ in range(k))
    x = np.random.default_rng(len(size) + kernel).random((2, 3) + size) + 1
    mp = getattr(poolnd, f"max_pool{k}d")
    y, idx = mp(x, kernel, stride, return_indices=True)
    z = getattr(poolnd, f"max_unpool{k}d")(y, idx, kernel, stride, output_size=size)
    y2, idx2 = mp(z, kernel, stride, return_indices=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(idx2, idx)
