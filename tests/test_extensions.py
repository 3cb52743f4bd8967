"""What PyTorch cannot judge: TensorFlow/ONNX padding ("valid", "same", "same_lower", pairs),
dilated averages, min and sum modes, 4-d and 5-d spatial pools, arbitrary layouts, global pools.
The judge is the independent brute-force oracle ``tests/naive.py``."""
import math

import numpy as np
import pytest

import poolnd
import naive

EXTRA = "ABEFG"


def _pads_for(padding, size, kernel, stride, dilation):
    if padding == "valid":
        return tuple((0, 0) for _ in size)
    if padding in ("same", "same_lower"):
        return tuple(naive.same_pads(L, k, s, d, padding == "same_lower")
                     for L, k, s, d in zip(size, kernel, stride, dilation))
    return padding


def _random_case(rng, k=None):
    k = k or int(rng.integers(1, 5))
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=k))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=k))
    size = tuple(int(v) for v in rng.integers(1, 7 if k < 4 else 5, size=k))
    r = rng.random()
    if r < 0.25:
        padding = "same"
    elif r < 0.4:
        padding = "same_lower"
    elif r < 0.5:
        padding = "valid"
    else:
        padding = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(k))
    mode = str(rng.choice(["max", "min", "avg", "sum"]))
    return dict(k=k, kernel=kernel, stride=stride, dilation=dilation, size=size, padding=padding,
                mode=mode, ceil_mode=bool(rng.random() < 0.4),
                count_include_pad=bool(rng.random() < 0.5))


def _spatial_letters(k):
    return {1: "W", 2: "HW", 3: "DHW"}.get(k) or EXTRA[:k - 3] + "DHW"


def _layout(rng, k, batched):
    letters = list(("N" if batched else "") + "C" + _spatial_letters(k))
    rng.shuffle(letters)
    return "".join(letters)


@pytest.mark.parametrize("seed", range(25))
def test_extended_padding_modes_and_dims_against_naive(seed, fast_engine):
    rng = np.random.default_rng([seed, 42])
    for _ in range(12):
        case = _random_case(rng)
        k, mode = case["k"], case["mode"]
        batched = rng.random() < 0.8
        x_cf = rng.standard_normal(((2,) if batched else ()) + (2,) + case["size"])
        pads = _pads_for(case["padding"], case["size"], case["kernel"], case["stride"],
                         case["dilation"])
        counts = [naive.count_windows(L, kk, s, d, b, a, case["ceil_mode"])
                  for L, kk, s, d, (b, a) in zip(case["size"], case["kernel"], case["stride"],
                                                 case["dilation"], pads)]
        # layout: for k <= 3 any permutation; beyond, spatial axes keep their written order
        layout = _layout(rng, k, batched)
        canon = ("N" if batched else "") + "C" + (_spatial_letters(k) if k <= 3 else
                                                   "".join(c for c in layout if c not in "NC"))
        x = np.transpose(x_cf, [canon.index(c) for c in layout])
        kw = dict(spatial_dims=k, layout=layout, engine=fast_engine, dilation=case["dilation"],
                  ceil_mode=case["ceil_mode"])
        if mode in ("max", "min"):
            kw["return_indices"] = True
        if mode == "avg":
            kw["count_include_pad"] = case["count_include_pad"]
        if k > 3:   # the naive oracle reads the spatial order the layout wrote
            pass
        call = lambda: poolnd.pool(x, mode, case["kernel"], case["stride"], case["padding"], **kw)
        ny, nidx, empty = naive.pool(x_cf, mode, case["kernel"], case["stride"],
                                     case["dilation"], pads, case["ceil_mode"],
                                     case["count_include_pad"])
        if min(counts) < 1 or (mode == "avg" and not case["count_include_pad"] and empty.any()):
            with pytest.raises(ValueError):
                call()
            continue
        layer = poolnd.Pool(mode, case["kernel"], case["stride"], case["padding"], **kw)
        out = layer.forward(x)
        y, idx = out if mode in ("max", "min") else (out, None)
        back = lambda a: np.transpose(a, [layout.index(c) for c in canon])
        assert back(y).shape == ny.shape
        if mode in ("max", "min"):
            np.testing.assert_array_equal(back(y), ny)
            np.testing.assert_array_equal(back(idx), nidx)
        else:
            np.testing.assert_allclose(back(y), ny, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(call()[0] if idx is not None else call(), y)
        dy_cf = rng.standard_normal(ny.shape)
        dx = layer.backward(np.transpose(dy_cf, [canon.index(c) for c in layout]))
        ndx = naive.pool_backward(x_cf.shape, dy_cf, mode, case["kernel"], case["stride"],
                                  case["dilation"], pads, case["ceil_mode"],
                                  case["count_include_pad"], indices=nidx)
        np.testing.assert_allclose(back(dx), ndx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L,k,s", [(7, 3, 2), (8, 3, 2), (5, 4, 3), (1, 3, 1), (6, 2, 4)])
def test_same_padding_output_is_ceil_of_input_over_stride(L, k, s, fast_engine):
    x = np.arange(float(L)).reshape(1, 1, L)
    for pad in ("same", "same_lower"):
        y = poolnd.max_pool1d(x, k, s, pad, engine=fast_engine)
        assert y.shape[-1] == math.ceil(L / s)


def test_same_upper_and_lower_put_the_odd_pad_at_opposite_ends():
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)          # k=2 s=1 "same": total pad 1
    upper = poolnd.pool(x, "sum", 2, 1, "same", spatial_dims=1)
    lower = poolnd.pool(x, "sum", 2, 1, "same_lower", spatial_dims=1)
    assert upper.ravel().tolist() == [3.0, 5.0, 7.0, 4.0]       # pad after
    assert lower.ravel().tolist() == [1.0, 3.0, 5.0, 7.0]       # pad before


@pytest.mark.parametrize("layout,k", [("NCHW", 2), ("NHWC", 2), ("HWCN", 2), ("NCDHW", 3),
                                      ("NDHWC", 3), ("NWC", 1), ("CHW", 2)])
def test_global_pools(layout, k, fast_engine, rng):
    shape = tuple(rng.integers(1, 5, size=len(layout)))
    x = rng.standard_normal(shape)
    axes = tuple(i for i, c in enumerate(layout) if c not in "NC")
    np.testing.assert_array_equal(
        poolnd.global_max_pool(x, layout=layout, engine=fast_engine), x.max(axis=axes,
                                                                            keepdims=True))
    np.testing.assert_allclose(
        poolnd.global_avg_pool(x, layout=layout, engine=fast_engine),
        x.mean(axis=axes, keepdims=True), rtol=1e-12)


def test_global_pool_default_is_channels_first_any_rank(rng):
    x = rng.standard_normal((2, 3, 2, 3, 2, 2))
    np.testing.assert_array_equal(poolnd.global_max_pool(x),
                                  x.max(axis=(2, 3, 4, 5), keepdims=True))
    # spatial_dims=3 on a 4-d array: unbatched (C, D, H, W)
    u = x[0, 0]                                                  # (C, D, H, W) = (3, 2, 2, 2)
    np.testing.assert_array_equal(poolnd.global_max_pool(u, spatial_dims=3),
                                  u.max(axis=(1, 2, 3), keepdims=True))
    with pytest.raises(ValueError, match="global_max_pool: expected a 3-D"):
        poolnd.global_max_pool(x, spatial_dims=2)


def test_chapter_layout_hwcn(rng):
    """The chapter's H1 x W1 x Depth x N layout equals pooling the transposed NCHW array."""
    x = rng.standard_normal((6, 8, 3, 2))                       # H, W, C, N
    y = poolnd.max_pool2d(x, 2, layout="HWCN")
    ref = poolnd.max_pool2d(x.transpose(3, 2, 0, 1), 2).transpose(2, 3, 1, 0)
    assert y.shape == (3, 4, 3, 2)
    np.testing.assert_array_equal(y, ref)
