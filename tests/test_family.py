"""LP, adaptive, fractional and unpool ops: reject parity with PyTorch, finite-difference and
adjoint gradient checks, ONNX semantics against the independent oracle, NaN/tie/integer cases,
engine agreement and the layers' plumbing."""
import pickle

import numpy as np
import pytest

import naive_family
import poolnd

torch = pytest.importorskip("torch")
F = torch.nn.functional

X4 = np.arange(1.0, 36.0).reshape(1, 1, 5, 7)
X5 = np.arange(1.0, 61.0).reshape(1, 1, 3, 4, 5)
Y4, I4 = poolnd.max_pool2d(X4, 2, return_indices=True)           # (1, 1, 2, 3)
S2 = np.full((1, 1, 2), 0.5)

# (id, op, args, kwargs, exception type, text the message must contain)
REJECTED_BY_TORCH = [
    ("lp stride 0", "lp_pool2d", (X4, 2, 2, 0), {}, ValueError, "stride=0"),
    ("lp kernel tuple length", "lp_pool2d", (X4, 2, (2, 2, 2)), {}, ValueError, "kernel_size"),
    ("lp output too small", "lp_pool2d", (X4, 2, 6), {}, ValueError, "too small"),
    ("lp 3-d input to 2-d", "lp_pool2d", (X4[0, 0], 2, 2), {}, ValueError, "got 2-D"),
    ("adaptive max output_size length", "adaptive_max_pool2d", (X4, (3,)), {}, ValueError,
     "have 2 entries"),
    ("adaptive avg output_size length", "adaptive_avg_pool2d", (X4, (3, 4, 5)), {}, ValueError,
     "have 2 entries"),
    ("adaptive negative output", "adaptive_avg_pool2d", (X4, (-1, 4)), {}, ValueError, ">= 0"),
    ("adaptive float output", "adaptive_max_pool1d", (X4[0], 2.0), {}, TypeError,
     "output_size"),
    ("adaptive empty spatial", "adaptive_max_pool2d", (X4[:, :, :0], 2), {}, ValueError,
     "empty spatial"),
    ("adaptive max empty channels", "adaptive_max_pool2d", (X4[:, :0], 2), {}, ValueError,
     "empty channel"),
    ("adaptive 1-d input", "adaptive_avg_pool1d", (X4[0, 0, 0], 2), {}, ValueError, "got 1-D"),
    ("unpool output_size too large", "max_unpool2d", (Y4, I4, 2), {"output_size": (6, 9)},
     ValueError, "strictly between"),
    ("unpool output_size too small", "max_unpool2d", (Y4, I4, 2), {"output_size": (2, 6)},
     ValueError, "strictly between"),
    ("unpool output_size length", "max_unpool2d", (Y4, I4, 2), {"output_size": (1, 5, 7)},
     ValueError, "entries"),
    ("unpool index out of plane", "max_unpool2d", (Y4, I4 + 30, 2), {}, ValueError,
     "must lie in [0, 24)"),
    ("unpool negative index", "max_unpool2d", (Y4, I4 - 10, 2), {}, ValueError, "got -"),
    ("unpool int32 indices", "max_unpool2d", (Y4, I4.astype(np.int32), 2), {}, TypeError,
     "int64"),
    ("unpool indices shape", "max_unpool2d", (Y4, I4[:, :, :1], 2), {}, ValueError,
     "shape of input"),
    ("unpool empty channels", "max_unpool2d", (Y4[:, :0], I4[:, :0], 2), {}, ValueError,
     "empty channel"),
    ("unpool stride 0", "max_unpool2d", (Y4, I4, 2, 0), {}, ValueError, "stride=0"),
    ("unpool negative output", "max_unpool2d", (Y4, I4, 2), {"output_size": (-1, 6)},
     ValueError, "strictly between"),
    ("fractional no size", "fractional_max_pool2d", (X4, 2), {}, ValueError,
     "output_size or output_ratio"),
    ("fractional output too large", "fractional_max_pool2d", (X4, 2), {"output_size": (5, 6)},
     ValueError, "does not fit"),
    ("fractional 3-d output + kernel - 1 == input", "fractional_max_pool3d", (X5, 1),
     {"output_size": (3, 3, 3)}, ValueError, "does not fit"),
    ("fractional samples shape", "fractional_max_pool2d", (X4, 2),
     {"output_size": 3, "_random_samples": np.full((1, 1, 3), 0.5)}, ValueError,
     "_random_samples of shape"),
    ("fractional samples batch", "fractional_max_pool2d", (np.concatenate([X4, X4]), 2),
     {"output_size": 3, "_random_samples": S2}, ValueError, "at least N = 2"),
    ("fractional samples channels", "fractional_max_pool2d", (X4, 2),
     {"output_size": 3, "_random_samples": np.full((1, 2, 2), 0.5)}, ValueError, "C = 1"),
    ("fractional samples dtype", "fractional_max_pool2d", (X4, 2),
     {"output_size": 3, "_random_samples": S2.astype(np.float32)}, TypeError, "dtype float64"),
    ("fractional empty channels", "fractional_max_pool2d", (X4[:, :0], 2),
     {"output_size": 3}, ValueError, "empty channel"),
]


def _to_torch(a):
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("case", REJECTED_BY_TORCH, ids=[c[0] for c in REJECTED_BY_TORCH])
def test_reject_parity(case):
    _, name, args, kwargs, exc, text = case
    with pytest.raises((RuntimeError, TypeError, ValueError, IndexError, NotImplementedError)):
        getattr(F, name)(*[_to_torch(a) for a in args],
                         **{k: _to_torch(v) for k, v in kwargs.items()})
    with pytest.raises(exc) as info:
        getattr(poolnd, name)(*args, **kwargs)
    assert str(info.value).startswith(name + ": "), str(info.value)
    assert text in str(info.value), str(info.value)


LAYER_REJECTS_LIKE_TORCH = [
    ("ratio 1", lambda m: m.FractionalMaxPool2d(2, output_ratio=1.0), ValueError, "between 0"),
    ("ratio 0", lambda m: m.FractionalMaxPool2d(2, output_ratio=0.0), ValueError, "between 0"),
    ("size and ratio", lambda m: m.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5),
     ValueError, "only one of"),
    ("neither", lambda m: m.FractionalMaxPool3d(2), ValueError, "output_size or output_ratio"),
]


@pytest.mark.parametrize("case", LAYER_REJECTS_LIKE_TORCH,
                         ids=[c[0] for c in LAYER_REJECTS_LIKE_TORCH])
def test_layer_reject_parity(case):
    _, make, exc, text = case
    with pytest.raises((ValueError, TypeError)):
        make(torch.nn)
    with pytest.raises(exc) as info:
        make(poolnd)
    assert text in str(info.value)


POOLND_ONLY = [
    ("lp norm 0", lambda: poolnd.lp_pool2d(X4, 0, 2), ValueError,
     "norm_type=0 must be a finite nonzero number or inf"),
    ("lp norm -inf", lambda: poolnd.lp_pool1d(X4[0], -np.inf, 2), ValueError, "norm_type=-inf"),
    ("lp norm nan", lambda: poolnd.LPPool2d(float("nan"), 2), ValueError, "norm_type=nan"),
    ("lp norm str", lambda: poolnd.lp_pool2d(X4, "2", 2), TypeError, "norm_type"),
    ("lp norm bool", lambda: poolnd.lp_pool2d(X4, True, 2), TypeError, "norm_type"),
    ("lp integer input", lambda: poolnd.lp_pool2d(X4.astype(np.int32), 2, 2), TypeError,
     "dtype int32"),
    ("pool lp without norm", lambda: poolnd.pool(X4, "lp", 2, spatial_dims=2), ValueError,
     "needs norm_type"),
    ("pool norm with max", lambda: poolnd.pool(X4, "max", 2, spatial_dims=2, norm_type=2),
     ValueError, "mode 'lp' only"),
    ("pool lp count_include_pad", lambda: poolnd.pool(X4, "lp", 2, spatial_dims=2, norm_type=2,
                                                      count_include_pad=False),
     ValueError, "count_include_pad=False"),
    ("adaptive_pool mode", lambda: poolnd.adaptive_pool(X4, "min", 2, spatial_dims=2),
     ValueError, "mode='min'"),
    ("adaptive indices with avg", lambda: poolnd.adaptive_pool(X4, "avg", 2, spatial_dims=2,
                                                               return_indices=True),
     ValueError, "return_indices"),
    ("adaptive layer output_size", lambda: poolnd.AdaptiveAvgPool2d((2, 2, 2)), ValueError,
     "have 2 entries"),
    ("fractional kernel 0", lambda: poolnd.fractional_max_pool2d(X4, 0, output_size=2),
     ValueError, "kernel_size=0"),
    ("fractional samples range", lambda: poolnd.fractional_max_pool2d(
        X4, 2, output_size=3, _random_samples=np.full((1, 1, 2), 1.0)), ValueError, "[0, 1)"),
    ("fractional functional ratio >= 1", lambda: poolnd.fractional_max_pool2d(
        X4, 1, output_ratio=1.0), ValueError, "between 0 and 1"),
    ("fractional rng type", lambda: poolnd.fractional_max_pool2d(X4, 2, output_size=3, rng=3),
     TypeError, "rng"),
    ("unpool kernel 0", lambda: poolnd.max_unpool2d(Y4, I4, 0), ValueError, "kernel_size=0"),
    ("unpool negative padding", lambda: poolnd.max_unpool2d(Y4, I4, 2, padding=-1), ValueError,
     "padding=-1"),
    ("unpool float indices", lambda: poolnd.max_unpool2d(Y4, I4.astype(float), 2), TypeError,
     "int64"),
    ("unpool layer backward first", lambda: poolnd.MaxUnpool2d(2).backward(X4), RuntimeError,
     "call forward"),
    ("adaptive layer backward dy", lambda: _adaptive_backward_wrong_shape(), ValueError,
     "dy of shape"),
]


def _adaptive_backward_wrong_shape():
    layer = poolnd.AdaptiveMaxPool2d(2)
    layer.forward(X4)
    layer.backward(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("case", POOLND_ONLY, ids=[c[0] for c in POOLND_ONLY])
def test_poolnd_specific_errors(case):
    _, fn, exc, text = case
    with pytest.raises(exc) as info:
        fn()
    assert text in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------
# gradients: finite differences (float64) and adjoint identities
# ----------------------------------------------------------------------------------------------

def _fd_check(layer, x, rng, eps=1e-6, **fwd):
    y = layer.forward(x, **fwd)
    y = y[0] if isinstance(y, tuple) else y
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    num = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        fp = layer.forward(xp, **fwd)
        fm = layer.forward(xm, **fwd)
        fp = fp[0] if isinstance(fp, tuple) else fp
        fm = fm[0] if isinstance(fm, tuple) else fm
        num.flat[i] = np.sum((fp - fm) * dy) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-7)


def _tie_free(rng, shape):
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.37 + 0.5


LP_GEOMETRIES = [
    dict(norm_type=2, kernel_size=2), dict(norm_type=3, kernel_size=3, stride=2, ceil_mode=True),
    dict(norm_type=1.5, kernel_size=(2, 3), stride=1), dict(norm_type=float("inf"),
                                                            kernel_size=2, stride=1),
]


@pytest.mark.parametrize("geo", LP_GEOMETRIES, ids=str)
def test_lp_finite_differences(engine, geo, rng):
    x = _tie_free(rng, (2, 2, 5, 6))
    x[0, 0] *= -1                                       # negatives too: the |x| definition
    _fd_check(poolnd.LPPool2d(engine=engine, **geo), x, rng)


def test_lp_padded_dilated_finite_differences(engine, rng):
    x = _tie_free(rng, (1, 2, 6, 5)) - 8
    layer = poolnd.Pool("lp", 3, 2, padding=((2, 0), (1, 1)), dilation=(1, 2), ceil_mode=True,
                        spatial_dims=2, norm_type=2.5, engine=engine)
    _fd_check(layer, x, rng)


@pytest.mark.parametrize("out", [3, (2, 4), (None, 9)], ids=str)
def test_adaptive_max_finite_differences(engine, out, rng):
    _fd_check(poolnd.AdaptiveMaxPool2d(out, engine=engine), _tie_free(rng, (2, 2, 5, 6)), rng)


def test_adaptive_avg_finite_differences(engine, rng):
    _fd_check(poolnd.AdaptiveAvgPool3d((2, None, 4), engine=engine),
              rng.standard_normal((1, 2, 3, 4, 5)), rng)


def test_fractional_finite_differences(engine, rng):
    x = _tie_free(rng, (2, 2, 7, 8))
    layer = poolnd.FractionalMaxPool2d(3, output_size=(4, 5),
                                       _random_samples=rng.random((2, 2, 2)), engine=engine)
    _fd_check(layer, x, rng)


def test_adjoints(engine, rng):
    """<A x, y> == <x, A^T y> for the linear ops: adaptive avg and unpool."""
    x = rng.standard_normal((2, 3, 7, 5))
    layer = poolnd.AdaptiveAvgPool2d((3, 4), engine=engine)
    y = rng.standard_normal(layer.forward(x).shape)
    np.testing.assert_allclose(np.vdot(layer.forward(x), y), np.vdot(x, layer.backward(y)))
    pooled, idx = poolnd.max_pool2d(x, 2, return_indices=True)
    unpool = poolnd.MaxUnpool2d(2, engine=engine)
    z = unpool.forward(pooled, idx, output_size=(7, 5))
    w = rng.standard_normal(z.shape)
    np.testing.assert_allclose(np.vdot(z, w), np.vdot(pooled, unpool.backward(w)))


# ----------------------------------------------------------------------------------------------
# ONNX semantics, against the oracle written from the operator spec
# ----------------------------------------------------------------------------------------------

ONNX_LP = [
    dict(p=2, kernel=(3, 2), strides=(1, 2), pads=((1, 2), (0, 1)), dil=(1, 1), ceil=False),
    dict(p=3, kernel=(2, 2), strides=(2, 2), pads=((0, 3), (2, 0)), dil=(2, 1), ceil=True),
    dict(p=1, kernel=(3, 3), strides=(2, 1), pads="same_lower", dil=(1, 1), ceil=False),
    dict(p=1.5, kernel=(2, 3), strides=(3, 2), pads="same", dil=(1, 2), ceil=False),
    dict(p=float("inf"), kernel=(2, 2), strides=(1, 1), pads=((1, 1), (3, 0)), dil=(1, 2),
         ceil=True),
]


def _same(size, k, s, d, lower):
    out = -(-size // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
    a, b = total // 2, total - total // 2
    return (b, a) if lower else (a, b)


@pytest.mark.parametrize("case", ONNX_LP, ids=str)
def test_lp_onnx_semantics(engine, case, rng):
    """Negative inputs use |x|; explicit begin/end pads, SAME_UPPER/SAME_LOWER and dilations as
    in ONNX LpPool."""
    x = rng.standard_normal((2, 2, 7, 6)) * 3
    if isinstance(case["pads"], str):
        pairs = [_same(L, k, s, d, case["pads"] == "same_lower") for L, k, s, d in
                 zip(x.shape[2:], case["kernel"], case["strides"], case["dil"])]
    else:
        pairs = case["pads"]
    want = naive_family.lp_onnx(x, case["p"], case["kernel"], case["strides"],
                                [b for b, _ in pairs], [a for _, a in pairs], case["dil"],
                                case["ceil"])
    got = poolnd.pool(x, "lp", case["kernel"], case["strides"], case["pads"], case["dil"],
                      case["ceil"], spatial_dims=2, norm_type=case["p"], engine=engine)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_lp_matches_torch_on_abs(engine, rng):
    """For any sign, poolnd's LP equals PyTorch's LP of |x|."""
    x = rng.standard_normal((2, 3, 8, 7))
    for p in (1, 2, 3.5):
        want = F.lp_pool2d(torch.from_numpy(np.abs(x)), p, 3, 2, ceil_mode=True).numpy()
        np.testing.assert_allclose(poolnd.lp_pool2d(x, p, 3, 2, True, engine=engine), want,
                                   rtol=1e-12)


@pytest.mark.parametrize("order", [0, 1])
def test_unpool_consumes_onnx_flat_indices(engine, order, rng):
    """ONNX MaxPool indices (flat over the tensor, row- or column-major spatial part) turned into
    per-plane ones with indices_from_flat give ONNX MaxUnpool's result."""
    x = rng.standard_normal((2, 3, 6, 7))
    y, idx = poolnd.max_pool2d(x, 3, 2, 1, return_indices=True)
    flat = poolnd.indices_to_flat(idx, x.shape, storage_order=order)
    got = poolnd.max_unpool2d(y, poolnd.indices_from_flat(flat, x.shape, storage_order=order),
                              3, 2, 1, output_size=(6, 7), engine=engine)
    row_major = poolnd.indices_to_flat(idx, x.shape)        # the oracle writes row-major
    np.testing.assert_array_equal(got, naive_family.unpool_flat(y, row_major, x.shape))


def test_generic_adaptive_4d_and_layouts(engine, rng):
    x = rng.standard_normal((2, 3, 4, 5, 3, 6))
    for mode in ("max", "avg"):
        want, want_idx = naive_family.adaptive(x, (3, 2, 3, 4), mode)
        got = poolnd.adaptive_pool(x, mode, (3, 2, None, 4), spatial_dims=4, engine=engine,
                                   return_indices=mode == "max")
        if mode == "max":
            got, idx = got
            np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        cl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        got_cl = poolnd.adaptive_pool(cl, mode, (3, 2, None, 4), spatial_dims=4,
                                      layout="NADHWC",
                                      engine=engine)
        np.testing.assert_allclose(np.moveaxis(got_cl, -1, 1), want, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# NaN, ties, -inf, integers, engine agreement
# ----------------------------------------------------------------------------------------------

def test_adaptive_max_nan_ties_inf(engine, rng):
    x = rng.integers(-2, 3, size=(2, 3, 7, 9)).astype(np.float64)
    x[0, 0, 1, 2] = x[0, 0, 5, 5] = x[1, 2, 0, 0] = np.nan
    x[1, 1] = -np.inf
    want, want_idx = naive_family.adaptive(x, (3, 4), "max")
    got, idx = poolnd.adaptive_max_pool2d(x, (3, 4), True, engine=engine)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(idx, want_idx)
    ty, ti = F.adaptive_max_pool2d(torch.from_numpy(x), (3, 4), True)
    np.testing.assert_array_equal(idx, ti.numpy())


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
def test_max_family_integers_exact(engine, dtype, rng):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=(2, 3, 7, 6), dtype=dtype, endpoint=True)
    xf = x.astype(np.float64) if dtype != "int64" else None
    y, idx = poolnd.adaptive_max_pool2d(x, (3, 4), True, engine=engine)
    assert y.dtype == x.dtype
    _, want_idx = naive_family.adaptive(x, (3, 4), "max")
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(y, np.take_along_axis(x.reshape(2, 3, -1),
                                                        idx.reshape(2, 3, -1), 2).reshape(y.shape))
    s = rng.random((2, 3, 2))
    fy, fi = poolnd.fractional_max_pool2d(x, 2, output_size=(4, 3), return_indices=True,
                                          _random_samples=s, engine=engine)
    if xf is not None:
        ry, ri = poolnd.fractional_max_pool2d(xf, 2, output_size=(4, 3), return_indices=True,
                                              _random_samples=s, engine=engine)
        np.testing.assert_array_equal(fi, ri)
        np.testing.assert_array_equal(fy, ry.astype(dtype))
    z = poolnd.max_unpool2d(fy, fi, 2, output_size=(7, 6), engine=engine)
    assert z.dtype == x.dtype
    np.testing.assert_array_equal(z, naive_family.unpool(fy, fi, (7, 6)))


def test_adaptive_avg_integer_truncates(engine):
    x = np.array([[[-7, 2, 3, -1, 5]]], dtype=np.int32)
    got = poolnd.adaptive_avg_pool1d(x, 2, engine=engine)
    # windows [0, 3) and [2, 5): sums -2 and 7, over 3, truncated toward zero
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array([[[int(-2 / 3), int(7 / 3)]]]))


def test_engines_agree_bit_for_bit(rng):
    x = rng.standard_normal((3, 4, 9, 11)).astype(np.float32)
    x[0, 0, :2] = -0.0
    x[1, 1, 3, 3] = np.nan
    s = rng.random((3, 4, 2)).astype(np.float32)
    results = {}
    for e in poolnd.engines.available():
        a = poolnd.adaptive_max_pool2d(x, (4, 5), True, engine=e)
        f = poolnd.fractional_max_pool2d(x, 2, output_size=(5, 6), return_indices=True,
                                         _random_samples=s, engine=e)
        u = poolnd.max_unpool2d(f[0], f[1], 2, output_size=(10, 12), engine=e)
        results[e] = [a[0], a[1], f[0], f[1], u]
    ref = results.pop("reference")
    for e, res in results.items():
        for r, w in zip(res, ref):
            assert r.tobytes() == w.tobytes(), e


def test_float16_accumulates_in_float32(engine):
    x = np.full((1, 1, 4096), 1.0, dtype=np.float16)
    x[0, 0, 0] = 2048
    got = poolnd.adaptive_avg_pool1d(x, 1, engine=engine)
    assert got.dtype == np.float16
    assert got[0, 0, 0] == np.float16((2048 + 4095) / 4096)


# ----------------------------------------------------------------------------------------------
# fractional samples from rng; layers' plumbing
# ----------------------------------------------------------------------------------------------

def test_fractional_rng(engine):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
    a = poolnd.fractional_max_pool2d(x, 2, output_ratio=0.6, rng=np.random.default_rng(7),
                                     engine=engine)
    b = poolnd.fractional_max_pool2d(x, 2, output_ratio=0.6, rng=np.random.default_rng(7),
                                     engine=engine)
    assert a.shape == (2, 3, 5, 5)
    np.testing.assert_array_equal(a, b)
    layer = poolnd.FractionalMaxPool2d(2, output_ratio=(0.5, 0.7), rng=np.random.default_rng(1),
                                       return_indices=True, engine=engine)
    (y1, i1), (y2, i2) = layer(x), layer(x)
    assert y1.shape == y2.shape == (2, 3, 4, 6)
    assert not np.array_equal(i1, i2)          # fresh samples on every forward, as in torch


LAYERS = [
    poolnd.LPPool2d(2, 3, stride=2, ceil_mode=True),
    poolnd.LPPool1d(float("inf"), 2, layout="NWC"),
    poolnd.AdaptiveMaxPool2d((3, None), return_indices=True),
    poolnd.AdaptiveAvgPool3d(2, layout="NDHWC", engine="numpy"),
    poolnd.FractionalMaxPool2d(2, output_size=3),
    poolnd.FractionalMaxPool3d((1, 2, 2), output_ratio=0.6),
    poolnd.MaxUnpool2d(2, stride=1, padding=1),
    poolnd.Pool("lp", 2, spatial_dims=4, norm_type=3),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_layer_repr_and_pickle(layer):
    rebuilt = eval(repr(layer), {"poolnd": poolnd, "inf": float("inf")},
                   {k: getattr(poolnd, k) for k in poolnd.__all__})
    assert repr(rebuilt) == repr(layer)
    assert repr(pickle.loads(pickle.dumps(layer))) == repr(layer)


def test_layer_backward_keeps_layout_and_dtype(engine, rng):
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)          # NHWC
    for layer in (poolnd.AdaptiveMaxPool2d(2, layout="NHWC", engine=engine),
                  poolnd.AdaptiveAvgPool2d((4, 2), layout="NHWC", engine=engine),
                  poolnd.LPPool2d(2, 2, layout="NHWC", engine=engine),
                  poolnd.FractionalMaxPool2d(2, output_size=3, layout="NHWC", engine=engine)):
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(y))
        assert dx.shape == x.shape and dx.dtype == x.dtype
