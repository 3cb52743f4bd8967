"""``rounding="trunc" | "nearest"`` for averages of integers (API.md section 7, issue 11 item 4).

The oracle here is independent of poolnd: windows are enumerated with Python loops (PyTorch's
avg_pool and adaptive rules, written out below), sums are Python integers, and the mean is a
``fractions.Fraction`` rounded by Python's own ``round`` (half to even) or ``int`` (toward zero).
A result outside the dtype (only a small or negative ``divisor_override`` makes one) is wrapped
modulo 2**bits, as the cast to the input dtype does on every path.
"""
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

import poolnd
from conftest import ENGINES

INT_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


# ----------------------------------------------------------------------------------------------
# the oracle
# ----------------------------------------------------------------------------------------------

def rounded(total: int, divisor: int, rounding: str) -> int:
    q = Fraction(total, divisor)
    return round(q) if rounding == "nearest" else int(q)      # round(): half to even


def wrap(v: int, dtype) -> int:
    info = np.iinfo(dtype)
    span = 1 << info.bits
    return (v - info.min) % span + info.min


def fixed_windows(L, k, s, p, ceil_mode, count_include_pad):
    """PyTorch's avg_pool windows along one dim: (first, last + 1, divisor part) per output."""
    num = L + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    wins = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, L + p)
        pool_size = end - start
        lo, hi = max(start, 0), min(end, L)
        wins.append((lo, hi, pool_size if count_include_pad else hi - lo))
    return wins


def adaptive_windows(L, O):
    return [(o * L // O, -(-(o + 1) * L // O), -(-(o + 1) * L // O) - o * L // O)
            for o in range(O)]


def oracle(planes, per_dim_windows, divisor_override, rounding, dtype):
    """``planes``: a list (one per plane) of nested Python lists of ints, spatial dims only."""
    out_shape = tuple(len(w) for w in per_dim_windows)
    result = []
    for plane in planes:
        arr = np.array(plane, dtype=object)
        vals = np.empty(out_shape, dtype=object)
        for o in itertools.product(*(range(n) for n in out_shape)):
            wins = [per_dim_windows[d][o[d]] for d in range(len(o))]
            total = 0
            for pos in itertools.product(*(range(lo, hi) for lo, hi, _ in wins)):
                total += int(arr[pos])
            div = divisor_override or math.prod(w[2] for w in wins)
            vals[o] = wrap(rounded(total, div, rounding), dtype)
        result.append(vals)
    return result


def random_ints(rng, shape, dtype, extreme: bool):
    info = np.iinfo(dtype)
    if extreme:                     # near the limits of the dtype: sums far beyond 2**53
        picks = [info.min, info.min + 1, info.max - 1, info.max, 0, info.max // 2 + 1]
        vals = rng.choice(np.array(picks, dtype=object), size=shape)
    else:
        lo, hi = max(info.min, -50), min(info.max, 50)
        vals = rng.integers(lo, hi + 1, size=shape)
    return np.array(vals.tolist(), dtype=dtype) if vals.dtype == object else vals.astype(dtype)


def planes_of(x_cf):
    """A channels-first (N, C, *spatial) array -> its planes as Python int lists."""
    flat = x_cf.reshape((-1,) + x_cf.shape[2:])
    return [plane.tolist() for plane in flat]


def check(y, expected, shape_cf):
    """``y`` channels-first of shape ``shape_cf``; ``expected`` the oracle's planes."""
    got = y.reshape((-1,) + y.shape[2:])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert [int(v) for v in g.ravel()] == [int(v) for v in e.ravel()]


# ----------------------------------------------------------------------------------------------
# fixed windows: avg_pool1d/2d/3d, pool(mode="avg"), AvgPool*, Pool
# ----------------------------------------------------------------------------------------------

def random_fixed(rng, k):
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=k))
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    size = tuple(int(rng.integers(kk, kk + 5)) for kk in kernel)
    return kernel, stride, padding, size, bool(rng.random() < 0.5)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("rounding", ["nearest", "trunc"])
def test_fixed_avg_equals_the_oracle(rng, dtype, rounding):
    for trial in range(6):
        k = 1 + trial % 3
        kernel, stride, padding, size, ceil_mode = random_fixed(rng, k)
        cip = bool(rng.random() < 0.5)
        override = [None, None, None, 2, -3, 7][int(rng.integers(0, 6))]
        x = random_ints(rng, (2, 2) + size, dtype, extreme=trial % 2 == 1)
        wins = [fixed_windows(L, kk, s, p, ceil_mode, cip)
                for L, kk, s, p in zip(size, kernel, stride, padding)]
        expected = oracle(planes_of(x), wins, override, rounding, dtype)
        f = getattr(poolnd, f"avg_pool{k}d")
        for engine in ENGINES:
            y = f(x, kernel, stride, padding, ceil_mode, cip, override, rounding=rounding,
                  engine=engine)
            assert y.dtype == x.dtype
            check(y, expected, x.shape)
            z = poolnd.pool(x, "avg", kernel, stride, padding, 1, ceil_mode, spatial_dims=k,
                            count_include_pad=cip, divisor_override=override, rounding=rounding,
                            engine=engine)
            assert np.array_equal(z, y)
        layer = getattr(poolnd, f"AvgPool{k}d")(kernel, stride, padding, ceil_mode, cip,
                                                override, rounding=rounding)
        assert np.array_equal(layer.forward(x), y)
        layer = poolnd.Pool("avg", kernel, stride, padding, 1, ceil_mode, spatial_dims=k,
                            count_include_pad=cip, divisor_override=override, rounding=rounding)
        assert np.array_equal(layer.forward(x), y)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("engine", ENGINES)
def test_exact_ties_go_to_the_even_neighbour(rng, dtype, engine):
    """Windows (v, v + 1): the mean is v + 1/2 exactly, near both ends of the dtype."""
    info = np.iinfo(dtype)
    starts = [info.min, info.min + 1, info.min + 2, -3, -2, -1, 0, 1, 2,
              info.max - 3, info.max - 2, info.max - 1]
    v = np.array([s for s in starts if info.min <= s and s + 1 <= info.max], dtype=object)
    pairs = np.stack([v, v + 1], axis=-1).reshape(1, 1, -1)
    x = np.array(pairs.tolist(), dtype=dtype)
    y = poolnd.avg_pool1d(x, 2, rounding="nearest", engine=engine)
    want = [int(a) if int(a) % 2 == 0 else int(a) + 1 for a in v]
    assert [int(t) for t in y.ravel()] == want
    y = poolnd.avg_pool1d(x, 2, engine=engine)                      # trunc: toward zero
    assert [int(t) for t in y.ravel()] == [int(a) if a >= 0 else int(a) + 1 for a in v]
    # negated divisor: round(-v) == -round(v), ties still to even
    if info.min < 0:
        y = poolnd.avg_pool1d(x, 2, divisor_override=-2, rounding="nearest", engine=engine)
        assert [int(t) for t in y.ravel()] == [wrap(-w, dtype) for w in want]


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint8"])
def test_huge_and_negative_divisor_overrides(rng, dtype):
    x = random_ints(rng, (1, 2, 9), dtype, extreme=True)
    for override in (1 << 40, -(1 << 40), (1 << 31) + 1, -((1 << 31) - 1), -1, -2, 3):
        wins = [fixed_windows(9, 3, 2, 1, False, True)]
        for rounding in ("nearest", "trunc"):
            expected = oracle(planes_of(x), wins, override, rounding, dtype)
            for engine in ENGINES:
                y = poolnd.avg_pool1d(x, 3, 2, 1, divisor_override=override, rounding=rounding,
                                      engine=engine)
                check(y, expected, x.shape)


def test_sums_of_64_bit_values_beyond_float64():
    """The mean of (2**63 - 1, 2**63 - 2) and of (2**64 - 1, 2**64 - 2): float64 cannot even
    hold the inputs, nearest gives the even one, trunc the lower."""
    x = np.array([[[2**63 - 1, 2**63 - 2, -2**63, -2**63 + 1]]], dtype=np.int64)
    assert poolnd.avg_pool1d(x, 2, rounding="nearest").tolist() == [[[2**63 - 2, -2**63]]]
    assert poolnd.avg_pool1d(x, 2).tolist() == [[[2**63 - 2, -2**63 + 1]]]
    u = np.array([[[2**64 - 1, 2**64 - 2, 1, 2]]], dtype=np.uint64)
    assert poolnd.avg_pool1d(u, 2, rounding="nearest").tolist() == [[[2**64 - 2, 2]]]
    assert poolnd.avg_pool1d(u, 2).tolist() == [[[2**64 - 2, 1]]]


# ----------------------------------------------------------------------------------------------
# adaptive and global
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_adaptive_avg_equals_the_oracle(rng, dtype):
    for trial in range(4):
        k = 1 + trial % 3
        size = tuple(int(v) for v in rng.integers(1, 7, size=k))
        out = tuple(int(rng.integers(1, L + 2)) for L in size)     # overlapping and tiling
        x = random_ints(rng, (2, 1) + size, dtype, extreme=trial % 2 == 0)
        wins = [adaptive_windows(L, O) for L, O in zip(size, out)]
        for rounding in ("nearest", "trunc"):
            expected = oracle(planes_of(x), wins, None, rounding, dtype)
            f = getattr(poolnd, f"adaptive_avg_pool{k}d")
            for engine in ENGINES:
                y = f(x, out, rounding=rounding, engine=engine)
                check(y, expected, x.shape)
                z = poolnd.adaptive_pool(x, "avg", out, spatial_dims=k, rounding=rounding,
                                         engine=engine)
                assert np.array_equal(y, z)
            layer = getattr(poolnd, f"AdaptiveAvgPool{k}d")(out, rounding=rounding)
            assert np.array_equal(layer.forward(x), y)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_global_avg_equals_the_oracle(rng, dtype):
    x = random_ints(rng, (2, 3, 3, 5), dtype, extreme=True)
    for rounding in ("nearest", "trunc"):
        expected = oracle(planes_of(x), [[(0, 3, 3)], [(0, 5, 5)]], None, rounding, dtype)
        for engine in ENGINES:
            check(poolnd.global_avg_pool(x, rounding=rounding, engine=engine), expected, x.shape)


# ----------------------------------------------------------------------------------------------
# properties, floats, other modes, bad values, Dask and vjp
# ----------------------------------------------------------------------------------------------

@st.composite
def int_case(draw):
    dtype = draw(st.sampled_from(INT_DTYPES))
    info = np.iinfo(dtype)
    n = draw(st.integers(1, 12))
    vals = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    kernel = draw(st.integers(1, n))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, kernel // 2))
    return np.array([[vals]], dtype=dtype), kernel, stride, pad, draw(st.booleans()), \
        draw(st.booleans())


@given(int_case())
def test_nearest_within_half_and_trunc_within_one_of_the_exact_mean(case):
    x, kernel, stride, pad, ceil_mode, cip = case
    wins = fixed_windows(x.shape[-1], kernel, stride, pad, ceil_mode, cip)
    near = poolnd.avg_pool1d(x, kernel, stride, pad, ceil_mode, cip, rounding="nearest")
    trunc = poolnd.avg_pool1d(x, kernel, stride, pad, ceil_mode, cip)
    vals = [int(v) for v in x.ravel()]
    for (lo, hi, div), a, b in zip(wins, near.ravel(), trunc.ravel()):
        mean = Fraction(sum(vals[lo:hi]), div)
        assert abs(int(a) - mean) <= Fraction(1, 2)
        assert abs(int(b) - mean) < 1 and abs(int(b)) <= abs(mean)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_float_inputs_are_unchanged_by_rounding(rng, dtype):
    x = (rng.standard_normal((2, 3, 7, 6)) * 3).astype(dtype)
    calls = [
        lambda **kw: poolnd.avg_pool2d(x, 3, 2, 1, **kw),
        lambda **kw: poolnd.avg_pool2d(x, 3, 2, 1, count_include_pad=False,
                                       divisor_override=-3, **kw),
        lambda **kw: poolnd.adaptive_avg_pool2d(x, (4, 5), **kw),
        lambda **kw: poolnd.adaptive_pool(x, "avg", (4, 5), spatial_dims=2, **kw),
        lambda **kw: poolnd.global_avg_pool(x, **kw),
        lambda **kw: poolnd.pool(x, "avg", 2, spatial_dims=3, **kw),
    ]
    for call in calls:
        for engine in ENGINES:
            a = call(engine=engine)
            b = call(engine=engine, rounding="nearest")
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("mode, dtype", [("max", "int16"), ("min", "uint64"), ("sum", "int8"),
                                         ("sum", "uint64"), ("lp", "float32"),
                                         ("max", "float64")])
def test_other_modes_accept_rounding_and_ignore_it(rng, mode, dtype):
    x = (rng.integers(-100, 100, size=(2, 2, 6, 5)) % 97).astype(dtype)
    kw = dict(norm_type=2) if mode == "lp" else {}
    a = poolnd.pool(x, mode, 2, spatial_dims=2, **kw)
    b = poolnd.pool(x, mode, 2, spatial_dims=2, rounding="nearest", **kw)
    assert a.dtype == b.dtype and np.array_equal(a, b)
    layer = poolnd.Pool(mode, 2, spatial_dims=2, rounding="nearest", **kw)
    assert np.array_equal(layer.forward(x), a)
    if mode == "max":
        a = poolnd.adaptive_pool(x, "max", 3, spatial_dims=2)
        assert np.array_equal(poolnd.adaptive_pool(x, "max", 3, spatial_dims=2,
                                                   rounding="nearest"), a)


X = np.zeros((1, 1, 4, 4), dtype=np.uint8)
BAD_CALLS = [
    lambda r: poolnd.avg_pool2d(X, 2, rounding=r),
    lambda r: poolnd.avg_pool1d(X[0], 2, rounding=r),
    lambda r: poolnd.adaptive_avg_pool2d(X, 2, rounding=r),
    lambda r: poolnd.adaptive_avg_pool3d(X, 2, rounding=r),
    lambda r: poolnd.adaptive_pool(X, "max", 2, spatial_dims=2, rounding=r),
    lambda r: poolnd.global_avg_pool(X, rounding=r),
    lambda r: poolnd.pool(X, "max", 2, spatial_dims=2, rounding=r),
    lambda r: poolnd.AvgPool2d(2, rounding=r),
    lambda r: poolnd.AdaptiveAvgPool1d(2, rounding=r),
    lambda r: poolnd.Pool("avg", 2, spatial_dims=2, rounding=r),
    lambda r: poolnd.vjp(poolnd.avg_pool2d, X.astype(float), 2, rounding=r),
]


@pytest.mark.parametrize("call", BAD_CALLS)
@pytest.mark.parametrize("value", ["up", "Nearest", "round", None, 1, True])
def test_bad_rounding_names_the_argument_and_the_choices(call, value):
    with pytest.raises(ValueError) as info:
        call(value)
    msg = str(info.value)
    assert f"rounding={value!r}" in msg and "'trunc'" in msg and "'nearest'" in msg


def test_layers_show_rounding_when_not_default():
    assert repr(poolnd.AvgPool2d(2, rounding="nearest")) == (
        "AvgPool2d(kernel_size=2, stride=2, padding=0, rounding='nearest')")
    assert repr(poolnd.AvgPool2d(2, rounding="trunc")) == "AvgPool2d(kernel_size=2, stride=2, " \
                                                          "padding=0)"
    assert repr(poolnd.AdaptiveAvgPool3d(2, rounding="nearest")) == (
        "AdaptiveAvgPool3d(output_size=2, rounding='nearest')")
    assert poolnd.AvgPool1d(2, rounding="nearest").rounding == "nearest"


def test_dask_and_vjp_take_rounding(rng):
    da = pytest.importorskip("dask.array")
    x = random_ints(rng, (2, 9, 11), "uint16", extreme=True)        # (C, H, W), unbatched
    xd = da.from_array(x, chunks=(1, 4, 5))
    for call in (lambda a: poolnd.avg_pool2d(a, 3, 2, 1, rounding="nearest"),
                 lambda a: poolnd.adaptive_avg_pool2d(a, (4, 3), rounding="nearest"),
                 lambda a: poolnd.global_avg_pool(a, spatial_dims=2, layout="CHW",
                                                  rounding="nearest")):
        lazy = call(xd)
        assert isinstance(lazy, da.Array)
        assert np.array_equal(lazy.compute(), call(x))
    assert not np.array_equal(poolnd.avg_pool2d(x, 3, 2, 1, rounding="nearest"),
                              poolnd.avg_pool2d(x, 3, 2, 1))
    xf = x.astype(np.float64)
    y, pullback = poolnd.vjp(poolnd.avg_pool2d, xf, 3, 2, 1, rounding="nearest")
    y0, pullback0 = poolnd.vjp(poolnd.avg_pool2d, xf, 3, 2, 1)
    dy = rng.standard_normal(y.shape)
    assert np.array_equal(y, y0) and np.array_equal(pullback(dy), pullback0(dy))
    y, pullback = poolnd.vjp(poolnd.global_avg_pool, xf, spatial_dims=2, rounding="nearest")
    assert pullback(np.ones_like(y)).shape == xf.shape
