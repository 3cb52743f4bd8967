"""Image and label reductions (API.md section 7): modes "median" and "mode", and
nan_policy="omit" for max, min, avg, sum, median, mode, against the brute-force oracle
``naive_images`` (which imports nothing from poolnd), on every engine."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import poolnd
import naive_images as naive
from conftest import ENGINES

FLOATS = ("float16", "float32", "float64")
INTS = ("uint8", "uint16", "uint32", "uint64", "int8", "int32")
PICKS = ("median", "mode", "max", "min")         # modes that pick an element
SPATIAL = {1: "W", 2: "HW", 3: "DHW", 4: "ZYXW"}


def _config(rng):
    """A random call with at least one output (drawn again until it has one)."""
    while True:
        cfg = _draw_config(rng)
        out = naive.geometry(cfg["x"].shape[-cfg["k"]:], cfg["kernel"], cfg["stride"],
                             cfg["padding"], cfg["dilation"], cfg["ceil_mode"])[-1]
        if min(out) >= 1:
            return cfg


def _draw_config(rng):
    """A random call: dims 1-4, sizes 1-6, kernel/stride/dilation/padding forms, ceil mode,
    batched or not, channels-first or -last, a dtype, small value ranges (many ties), NaN."""
    k = int(rng.integers(1, 5))
    big = {1: 9, 2: 7, 3: 5, 4: 4}[k]
    size = tuple(int(v) for v in rng.integers(1, big, k))
    kernel = tuple(int(v) for v in rng.integers(1, 4, k))
    stride = tuple(int(v) for v in rng.integers(1, 3, k))
    dilation = tuple(int(v) for v in rng.integers(1, 3, k)) if rng.random() < 0.3 else 1
    form = rng.integers(4)
    if form == 0:
        padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    elif form == 1:
        padding = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in kernel)
    else:
        padding = ("same", "same_lower", "valid", "same")[int(rng.integers(4))]
    mode = ("median", "mode", "max", "min", "avg", "sum")[int(rng.integers(6))]
    dtype = (FLOATS + INTS)[int(rng.integers(len(FLOATS) + len(INTS)))]
    if mode in ("avg", "sum") and dtype not in FLOATS and rng.random() < 0.5:
        dtype = FLOATS[int(rng.integers(3))]
    batched = rng.random() < 0.6
    channels_last = rng.random() < 0.4
    lead = (2, 2) if batched else (2,)
    lo, hi = (0, 4) if rng.random() < 0.7 else (-3, 4)
    if dtype.startswith("u"):
        lo = 0
    x = rng.integers(lo, hi, size=lead + size).astype(dtype)
    if dtype in FLOATS:
        x[rng.random(x.shape) < 0.2] = np.nan
        x[rng.random(x.shape) < 0.05] = -0.0
    return dict(k=k, kernel=kernel, stride=stride, dilation=dilation, padding=padding,
                ceil_mode=bool(rng.random() < 0.4), mode=mode, x=x, batched=batched,
                channels_last=channels_last,
                nan_policy=("propagate", "omit")[int(rng.integers(2))],
                count_include_pad=bool(mode != "avg" or rng.random() < 0.7))


def _layout(cfg):
    sp = SPATIAL[cfg["k"]]
    if not cfg["channels_last"]:
        return None if cfg["k"] <= 3 else ("NC" if cfg["batched"] else "C") + sp
    return ("N" if cfg["batched"] else "") + sp + "C"


def _to_layout(a, cfg):
    return np.ascontiguousarray(np.moveaxis(a, -cfg["k"] - 1, -1)) if cfg["channels_last"] else a


def _call(cfg, engine, x=None):
    kw = dict(spatial_dims=cfg["k"], layout=_layout(cfg), nan_policy=cfg["nan_policy"],
              engine=engine)
    if cfg["mode"] in PICKS:
        kw["return_indices"] = True
    if not cfg["count_include_pad"]:
        kw["count_include_pad"] = False
    layer = poolnd.Pool(cfg["mode"], cfg["kernel"], cfg["stride"], cfg["padding"],
                        cfg["dilation"], cfg["ceil_mode"], **kw)
    return layer, layer.forward(_to_layout(cfg["x"], cfg) if x is None else x)


def _same_floats(a, b, dtype):
    tol = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol, atol=tol,
                               equal_nan=True)


@pytest.mark.parametrize("seed", range(200))
def test_against_the_oracle_on_every_engine(seed):
    rng = np.random.default_rng(1000 + seed)
    cfg = _config(rng)
    x = cfg["x"]
    dtype = x.dtype.name
    try:
        want, want_idx, want_back = naive.pool(
            x, cfg["mode"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
            cfg["ceil_mode"], k=cfg["k"], nan_policy=cfg["nan_policy"],
            count_include_pad=cfg["count_include_pad"])
    except naive.EmptyWindow:
        for engine in ENGINES:          # a window without input: no median, mode or average
            with pytest.raises(ValueError, match="holds no input element"):
                _call(cfg, engine)
        return
    dy = rng.integers(-3, 4, size=want.shape).astype(np.float64)
    results = {}
    for engine in ENGINES:
        layer, got = _call(cfg, engine)
        y, idx = got if isinstance(got, tuple) else (got, None)
        y = np.moveaxis(y, -1, -cfg["k"] - 1) if cfg["channels_last"] else y
        assert y.shape == want.shape and y.dtype == want.dtype, (engine, y.shape, y.dtype)
        if cfg["mode"] in ("avg", "sum") and dtype in FLOATS:
            _same_floats(y, want, dtype)
        else:                           # an element (or an exact integer): the same bits
            assert y.tobytes() == want.tobytes(), (engine, y, want)
        if idx is not None:
            idx = np.moveaxis(idx, -1, -cfg["k"] - 1) if cfg["channels_last"] else idx
            np.testing.assert_array_equal(idx, want_idx)
        dx = None
        if dtype in FLOATS:
            dx = layer.backward(_to_layout(dy.astype(dtype), cfg))
            dx = np.moveaxis(dx, -1, -cfg["k"] - 1) if cfg["channels_last"] else dx
            assert dx.shape == x.shape and dx.dtype == x.dtype
            wdx = want_back(dy.astype(dtype).astype(np.float64))
            if cfg["mode"] in ("avg", "sum"):
                _same_floats(dx, wdx, dtype)
            else:                       # integer dy: routed sums are exact
                np.testing.assert_array_equal(dx, wdx)
        results[engine] = (y, idx, dx)
    ref = results["reference"]
    for engine, (y, idx, dx) in results.items():        # engines agree bit for bit
        if cfg["mode"] in PICKS:
            assert y.tobytes() == ref[0].tobytes()
            if dx is not None:
                assert dx.tobytes() == ref[2].tobytes()


def _labels(rng, shape, dtype):
    """Label ids near the top of the dtype (no float could hold them), few per window."""
    top = np.iinfo(dtype).max
    ids = np.array([top, top - 1, top - 2, 1, 0], dtype=dtype)
    return ids[rng.integers(0, len(ids), size=shape)]


@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
@pytest.mark.parametrize("k,layout", [(2, None), (3, None), (2, "HWC"), (3, "DHWC")])
def test_label_mode_2x2_and_2x2x2(dtype, k, layout, rng):
    shape = (2, 1) + (6, 8, 4)[:k] if layout is None else (6, 8, 4)[:k] + (2,)
    x = _labels(rng, shape, np.dtype(dtype))
    lead_first = x if layout is None else np.moveaxis(x, -1, 0)
    want, want_idx, _ = naive.pool(lead_first, "mode", 2, k=k)
    for engine in ENGINES:
        y, idx = poolnd.pool(x, "mode", 2, spatial_dims=k, layout=layout, return_indices=True,
                             engine=engine)
        if layout is not None:
            y, idx = np.moveaxis(y, -1, 0), np.moveaxis(idx, -1, 0)
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(idx, want_idx)


@pytest.mark.parametrize("kernel,k", [(3, 2), (2, 3), (3, 3), (6, 2), (5, 1)])
def test_median_and_mode_windows_of_every_kernel_path(kernel, k, rng):
    """3x3 (the selection network), 2x2x2, 3x3x3 and larger windows (Wirth's selection, the
    sorted mode beyond 8 and beyond 32 elements), NaN and ties, with and without omit."""
    x = rng.integers(0, 3, size=(2, 3) + (7, 8, 7)[:k]).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    for mode in ("median", "mode"):
        for policy in ("propagate", "omit"):
            want, want_idx, _ = naive.pool(x, mode, kernel, 1, kernel // 2, k=k,
                                           nan_policy=policy)
            for engine in ENGINES:
                y, idx = poolnd.pool(x, mode, kernel, 1, kernel // 2, spatial_dims=k,
                                     nan_policy=policy, return_indices=True, engine=engine)
                assert y.tobytes() == want.tobytes(), (mode, policy, engine)
                np.testing.assert_array_equal(idx, want_idx)


def test_kernels_that_are_mostly_padding_stay_cheap(rng):
    """Pair padding far beyond the input: the box path, whose cost follows the input and output
    sizes; the windows' median, mode and NaN-skipping max are the oracle's."""
    x = rng.integers(0, 3, size=(1, 2, 5, 6)).astype(np.float64)
    x[rng.random(x.shape) < 0.2] = np.nan
    kernel, stride, pads = (300, 3), (100, 1), ((150, 149), (1, 1))
    for mode, policy in (("median", "omit"), ("mode", "propagate"), ("max", "omit"),
                         ("mode", "omit")):
        want, want_idx, back = naive.pool(x, mode, kernel, stride, pads, k=2,
                                          nan_policy=policy)
        for engine in ENGINES:
            y, idx = poolnd.pool(x, mode, kernel, stride, pads, spatial_dims=2,
                                 nan_policy=policy, return_indices=True, engine=engine)
            assert y.tobytes() == want.tobytes(), (mode, policy, engine)
            np.testing.assert_array_equal(idx, want_idx)
    huge = poolnd.pool(x, "median", 10**9, 1, ((5 * 10**8, 5 * 10**8 - 1),) * 2, spatial_dims=2)
    assert huge.shape == x.shape


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("k,kernel,stride,padding", [(2, 3, 2, 1), (1, 4, 1, ((1, 2),)),
                                                     (3, 2, 1, "same")])
def test_median_backward_by_finite_differences(engine, k, kernel, stride, padding, rng):
    shape = (1, 2) + (5, 6, 4)[:k]
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 7.0  # tie-free
    assert np.unique(x).size == x.size
    y, pullback = poolnd.vjp(poolnd.pool, x, "median", kernel, stride, padding,
                             spatial_dims=k, engine=engine)
    g = rng.standard_normal(y.shape)
    dx = pullback(g)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (np.sum(poolnd.pool(xp, "median", kernel, stride, padding, spatial_dims=k,
                                     engine=engine) * g)
                  - np.sum(poolnd.pool(xm, "median", kernel, stride, padding, spatial_dims=k,
                                       engine=engine) * g)) / (2 * eps)
    np.testing.assert_allclose(dx, num, atol=1e-6)
    assert np.abs(dx).sum() > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_mode_backward_is_zero(engine, rng):
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(np.float32)
    layer = poolnd.Pool("mode", 3, 1, 1, spatial_dims=2, layout="NHWC", engine=engine)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == x.dtype and not dx.any()


@pytest.mark.parametrize("engine", ENGINES)
def test_omit_front_ends_layers_and_vjp(engine, rng):
    """max_pool*/avg_pool* take nan_policy keyword-only; their layers and vjp build the same
    call; NaN inputs get no gradient."""
    x = rng.standard_normal((2, 3, 6, 6))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, 0, :2, :2] = np.nan                         # one window of NaNs only
    for front, mode, kw in ((poolnd.max_pool2d, "max", {}),
                            (poolnd.avg_pool2d, "avg", dict(count_include_pad=False))):
        y = front(x, 2, 2, nan_policy="omit", engine=engine, **kw)
        want, _, back = naive.pool(x, mode, 2, 2, k=2, nan_policy="omit", **kw)
        np.testing.assert_allclose(y, want, equal_nan=True, rtol=1e-12)
        assert np.isnan(y[0, 0, 0, 0])
        y2, pullback = poolnd.vjp(front, x, 2, 2, nan_policy="omit", engine=engine, **kw)
        np.testing.assert_array_equal(y, y2)
        dy = rng.standard_normal(y.shape)
        dx = pullback(dy)
        np.testing.assert_allclose(dx, back(dy), rtol=1e-12, atol=1e-15)
        assert not dx[np.isnan(x)].any()
    layer = poolnd.MaxPool2d(2, nan_policy="omit", engine=engine)
    assert "nan_policy='omit'" in repr(layer) and layer.nan_policy == "omit"
    np.testing.assert_array_equal(layer.forward(x), poolnd.max_pool2d(x, 2, nan_policy="omit"))
    assert "nan_policy" not in repr(poolnd.AvgPool2d(2))


def test_omit_divisor_counts_padding_but_never_the_ceil_overhang():
    x = np.array([[[np.nan, 2.0, 4.0, np.nan, 6.0]]])
    for engine in ENGINES:
        y = poolnd.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True, nan_policy="omit",
                              engine=engine)
        # windows [pad, nan, 2] -> 2 / 2; [2, 4, nan] -> 6 / 2; [nan, 6, pad] -> 6 / 2
        np.testing.assert_array_equal(y, [[[1.0, 3.0, 3.0]]])
        y = poolnd.avg_pool1d(x, 2, 2, ceil_mode=True, nan_policy="omit", engine=engine)
        np.testing.assert_array_equal(y, [[[2.0, 4.0, 6.0]]])   # overhang: divisor 1
        y = poolnd.avg_pool1d(x, 2, 2, divisor_override=4, nan_policy="omit", engine=engine)
        np.testing.assert_array_equal(y, [[[0.5, 1.0]]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("k", [2, 3])
def test_omit_on_2x2_tiles_where_the_nan_check_is_fused(dtype, k, rng):
    """The numba engine's 2x2 and 2x2x2 tiles check for NaN as they pool: without NaN the
    result is propagate's, bit for bit (inf included); with one NaN (of either sign)
    anywhere, the omitting result."""
    x = rng.standard_normal((2, 3) + (6, 8, 4)[:k]).astype(dtype)
    x[0, 1, 0, 0], x[1, 0, 1, 1] = np.inf, -np.inf
    for mode in ("max", "min", "avg", "sum"):
        for engine in ENGINES:
            a = poolnd.pool(x, mode, 2, spatial_dims=k, engine=engine)
            b = poolnd.pool(x, mode, 2, spatial_dims=k, engine=engine, nan_policy="omit")
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        for where, bad in (((0, 0) + (0,) * k, np.nan), ((1, 2) + (-1,) * k, -np.nan)):
            z = x.copy()
            z[where] = bad
            want, _, _ = naive.pool(z, mode, 2, k=k, nan_policy="omit")
            for engine in ENGINES:
                got = poolnd.pool(z, mode, 2, spatial_dims=k, engine=engine, nan_policy="omit")
                _same_floats(got, want, dtype)
                assert not np.isnan(got).any()


def test_integer_inputs_hold_no_nan(rng):
    x = rng.integers(0, 50, size=(2, 3, 7, 7)).astype(np.int32)
    for mode in ("max", "min", "avg", "sum", "median", "mode"):
        a = poolnd.pool(x, mode, 3, 2, 1, spatial_dims=2, nan_policy="omit")
        b = poolnd.pool(x, mode, 3, 2, 1, spatial_dims=2)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_dask_arrays_take_the_new_modes(rng):
    da = pytest.importorskip("dask.array")
    x = rng.integers(0, 4, size=(1, 2, 9, 10)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    for mode in ("median", "mode", "avg"):
        lazy = poolnd.pool(da.from_array(x, chunks=(1, 1, 4, 3)), mode, 3, 2, 1,
                           spatial_dims=2, nan_policy="omit")
        want = poolnd.pool(x, mode, 3, 2, 1, spatial_dims=2, nan_policy="omit")
        assert lazy.compute().tobytes() == want.tobytes()


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------

_arrays = st.tuples(st.integers(1, 3), st.integers(2, 7), st.integers(2, 7),
                    st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**31 - 1))


def _draw(c, h, w, seed, nan=False, lo=0, hi=6):
    rng = np.random.default_rng(seed)
    x = rng.integers(lo, hi, size=(1, c, h, w)).astype(np.float64)
    if nan:
        x[rng.random(x.shape) < 0.25] = np.nan
    return x


@given(_arrays)
def test_median_lies_between_min_and_max(args):
    c, h, w, k, s, seed = args
    x = _draw(c, h, w, seed, lo=-5)
    pad = k // 2
    med = poolnd.pool(x, "median", k, s, pad, spatial_dims=2)
    lo = poolnd.pool(x, "min", k, s, pad, spatial_dims=2)
    hi = poolnd.pool(x, "max", k, s, pad, spatial_dims=2)
    assert (lo <= med).all() and (med <= hi).all()


@given(_arrays, st.integers(-3, 3))
def test_mode_of_a_constant_window_is_that_constant(args, value):
    c, h, w, k, s, _ = args
    x = np.full((1, c, h, w), value, dtype=np.int8)
    for engine in ENGINES:
        y, idx = poolnd.pool(x, "mode", k, s, k // 2, spatial_dims=2, engine=engine,
                             return_indices=True)
        assert (y == value).all()
        first = poolnd.pool(x, "max", k, s, k // 2, spatial_dims=2, engine=engine,
                            return_indices=True)[1]
        np.testing.assert_array_equal(idx, first)          # the first tap inside the input


@given(_arrays, st.sampled_from(["max", "min", "avg", "sum", "median", "mode"]))
def test_without_nan_omit_equals_propagate(args, mode):
    c, h, w, k, s, seed = args
    x = _draw(c, h, w, seed) / 3
    kw = dict(return_indices=True) if mode in PICKS else {}
    for engine in ENGINES:
        a = poolnd.pool(x, mode, k, s, k // 2, spatial_dims=2, engine=engine, **kw)
        b = poolnd.pool(x, mode, k, s, k // 2, spatial_dims=2, engine=engine,
                        nan_policy="omit", **kw)
        for u, v in zip(a if kw else (a,), b if kw else (b,)):
            assert u.dtype == v.dtype and u.tobytes() == v.tobytes()


@given(_arrays)
def test_omit_gives_nan_only_where_a_window_is_all_nan(args):
    c, h, w, k, s, seed = args
    x = _draw(c, h, w, seed, nan=True)
    all_nan = poolnd.pool(np.isnan(x).astype(np.int8), "min", k, s, k // 2, spatial_dims=2) == 1
    for mode in ("max", "min", "avg", "sum", "median", "mode"):
        y = poolnd.pool(x, mode, k, s, k // 2, spatial_dims=2, nan_policy="omit")
        np.testing.assert_array_equal(np.isnan(y), all_nan)


# ----------------------------------------------------------------------------------------------
# rejections: the argument, the value and the rule
# ----------------------------------------------------------------------------------------------

X = np.zeros((1, 1, 4, 4))

REJECT = [
    (lambda: poolnd.pool(X, "medain", 2, spatial_dims=2), ValueError, "mode='medain'"),
    (lambda: poolnd.pool(X, "max", 2, spatial_dims=2, nan_policy="ignore"), ValueError,
     "nan_policy='ignore' must be one of"),
    (lambda: poolnd.pool(X, "max", 2, spatial_dims=2, nan_policy=None), TypeError,
     "nan_policy must be a string"),
    (lambda: poolnd.max_pool2d(X, 2, nan_policy="raise"), ValueError, "nan_policy='raise'"),
    (lambda: poolnd.avg_pool1d(X[0], 2, nan_policy=True), TypeError, "nan_policy"),
    (lambda: poolnd.AvgPool3d(2, nan_policy="drop"), ValueError, "AvgPool3d: nan_policy="),
    (lambda: poolnd.pool(X, "lp", 2, spatial_dims=2, norm_type=2, nan_policy="omit"),
     ValueError, "nan_policy='omit' does not apply to mode 'lp'"),
    (lambda: poolnd.pool(X, "median", 2, spatial_dims=2, count_include_pad=False), ValueError,
     "count_include_pad=False does not apply to mode 'median'"),
    (lambda: poolnd.Pool("mode", 2, spatial_dims=2, count_include_pad=False), ValueError,
     "Pool: count_include_pad=False does not apply to mode 'mode'"),
    (lambda: poolnd.pool(X, "median", 2, spatial_dims=2, divisor_override=2), ValueError,
     "divisor_override=2 applies to mode 'avg' only, got mode='median'"),
    (lambda: poolnd.pool(X, "mode", 2, spatial_dims=2, norm_type=2), ValueError,
     "norm_type=2 applies to mode 'lp' only, got mode='mode'"),
    (lambda: poolnd.pool(X, "median", 2, 1, ((0, 3), (0, 0)), spatial_dims=2), ValueError,
     "so its median is undefined"),
    (lambda: poolnd.pool(X, "sum", 2, spatial_dims=2, return_indices=True), ValueError,
     "return_indices=True needs mode 'max', 'min', 'median' or 'mode'"),
]


@pytest.mark.parametrize("i", range(len(REJECT)))
def test_rejections_name_the_argument_and_the_rule(i):
    fn, exc, text = REJECT[i]
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        fn()
