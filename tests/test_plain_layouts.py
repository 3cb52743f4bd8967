"""Layouts without batch or channel axes (API.md section 6, issue 11 item 1).

Every op and layer on an array in a layout that leaves out ``N``, ``C`` or both must equal the
same op on the equivalent channels-first array (the missing axes added with size 1, the axes
moved to ``N, C, *spatial``), for values, indices and backward, on every engine. The spatial
order is the contract's, written out here independently: PyTorch's letters (``W``; ``H W``;
``D H W``, as a set) are taken in D, H, W order wherever they stand, any other letters in the
order written; per-dim tuples and indices follow that order.
"""
import numpy as np
import pytest

import poolnd
from conftest import ENGINES

PYTORCH = {1: "W", 2: "HW", 3: "DHW"}
LAYOUTS = {
    1: ["W", "WC", "NW", "X", "CX", "NXC"],
    2: ["HW", "HWC", "WHC", "YX", "CYX", "NYXC", "XY", "NHW"],
    3: ["DHW", "DHWC", "ZYX", "CZYX", "NZYXC", "XYZ", "WDH"],
}
CASES = [(k, lay) for k, lays in LAYOUTS.items() for lay in lays]


def spatial_order(layout):
    sp = "".join(c for c in layout if c not in "NC")
    return PYTORCH[len(sp)] if set(sp) == set(PYTORCH[len(sp)]) else sp


def to_cf(x, layout):
    """An array in ``layout`` -> channels-first ``(N, C, *spatial)``, missing axes size 1."""
    letters = layout
    for axis in "CN":
        if axis not in letters:
            x, letters = x[None], axis + letters
    return x.transpose([letters.index(c) for c in "NC" + spatial_order(layout)])


def from_cf(y, layout):
    """Channels-first ``(N, C, *spatial)`` (missing axes of size 1) -> ``layout``."""
    missing = "".join(a for a in "NC" if a not in layout)
    full = missing + layout
    y = y.transpose(["NC".index(c) if c in "NC" else 2 + spatial_order(layout).index(c)
                     for c in full])
    return y[(0,) * len(missing)]


def make(rng, layout, sizes, dtype=np.float64):
    """A random array in ``layout``; ``sizes`` in the spatial order."""
    n = 2 if "N" in layout else 1
    c = 2 if "C" in layout else 1
    x_cf = rng.standard_normal((n, c) + tuple(sizes)).astype(dtype)
    return from_cf(x_cf, layout), x_cf


def same(a_layout, b_cf, layout, exact=True):
    """Result(s) in ``layout`` equal the channels-first result(s): value for value (indices and
    the max family always), or to float rounding for sums (``exact=False``: a channels-last
    layout may take an engine's channels-last kernel, which adds in another order)."""
    if isinstance(b_cf, tuple):
        assert isinstance(a_layout, tuple) and len(a_layout) == len(b_cf)
        for a, b in zip(a_layout, b_cf):
            same(a, b, layout, exact)
        return
    want = from_cf(b_cf, layout)
    assert a_layout.shape == want.shape and a_layout.dtype == want.dtype
    if exact or want.dtype.kind != "f":
        assert np.array_equal(a_layout, want, equal_nan=True)
    else:
        np.testing.assert_allclose(a_layout, want, rtol=1e-12, atol=1e-12)


def check_vjp(rng, op, x, x_cf, layout, *args, exact=True, **kwargs):
    """Forward and backward of ``op`` in ``layout`` equal those on the channels-first array."""
    y, pullback = poolnd.vjp(op, x, *args, layout=layout, **kwargs)
    y_cf, pullback_cf = poolnd.vjp(op, x_cf, *args, **kwargs)
    same(y, y_cf, layout, exact)
    values_cf = y_cf[0] if isinstance(y_cf, tuple) else y_cf
    dy_cf = rng.standard_normal(values_cf.shape)
    dx = pullback(from_cf(dy_cf, layout))
    assert dx.shape == x.shape and dx.dtype == x.dtype
    same(dx, pullback_cf(dy_cf), layout, exact)
    return y


def fixed_params(rng, k):
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=k))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=k))
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    sizes = tuple(int(rng.integers((kk - 1) * d + 1, (kk - 1) * d + 5))
                  for kk, d in zip(kernel, dilation))
    return kernel, stride, dilation, padding, sizes, bool(rng.random() < 0.5)


# ----------------------------------------------------------------------------------------------
# every functional op, forward and backward, every engine
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, layout", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_fixed_window_ops(rng, k, layout, engine):
    kernel, stride, dilation, padding, sizes, ceil_mode = fixed_params(rng, k)
    x, x_cf = make(rng, layout, sizes)
    e = dict(engine=engine)
    check_vjp(rng, getattr(poolnd, f"max_pool{k}d"), x, x_cf, layout, kernel, stride, padding,
              dilation, ceil_mode, True, **e)
    cip = bool(rng.random() < 0.5)
    check_vjp(rng, getattr(poolnd, f"avg_pool{k}d"), x, x_cf, layout, kernel, stride, padding,
              ceil_mode, cip, None, exact=False, **e)
    check_vjp(rng, getattr(poolnd, f"lp_pool{k}d"), x, x_cf, layout, 2, kernel, stride,
              ceil_mode, exact=False, **e)
    for mode in ("min", "sum", "avg"):
        kw = dict(return_indices=True) if mode == "min" else dict(exact=False)
        check_vjp(rng, poolnd.pool, x, x_cf, layout, mode, kernel, stride, padding,
                  dilation if mode == "min" else 1, ceil_mode, spatial_dims=k, **kw, **e)
    # string and pair paddings, too
    check_vjp(rng, poolnd.pool, x, x_cf, layout, "max", kernel, 1, "same", spatial_dims=k, **e)


@pytest.mark.parametrize("k, layout", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_adaptive_and_global_ops(rng, k, layout, engine):
    sizes = tuple(int(v) for v in rng.integers(1, 7, size=k))
    out = tuple(int(rng.integers(1, L + 2)) for L in sizes)
    x, x_cf = make(rng, layout, sizes)
    e = dict(engine=engine)
    check_vjp(rng, getattr(poolnd, f"adaptive_max_pool{k}d"), x, x_cf, layout, out, True, **e)
    check_vjp(rng, getattr(poolnd, f"adaptive_avg_pool{k}d"), x, x_cf, layout, out,
              exact=False, **e)
    for mode in ("max", "avg"):
        check_vjp(rng, poolnd.adaptive_pool, x, x_cf, layout, mode, out, spatial_dims=k,
                  exact=mode == "max", **e)
    for op in (poolnd.global_max_pool, poolnd.global_avg_pool):
        y = check_vjp(rng, op, x, x_cf, layout, exact=op is poolnd.global_max_pool,
                      **e)                               # spatial_dims from the layout
        assert y.shape == tuple(1 if c not in "NC" else x.shape[i] for i, c in enumerate(layout))


@pytest.mark.parametrize("k, layout", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_max_unpool_reads_indices_in_the_same_layout(rng, k, layout, engine):
    kernel, stride, _, padding, sizes, _ = fixed_params(rng, k)
    x, x_cf = make(rng, layout, sizes)
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, kernel, stride, padding, return_indices=True,
                                               layout=layout, engine=engine)
    y_cf, idx_cf = getattr(poolnd, f"max_pool{k}d")(x_cf, kernel, stride, padding,
                                                     return_indices=True, engine=engine)
    same((y, idx), (y_cf, idx_cf), layout)
    unpool = getattr(poolnd, f"max_unpool{k}d")
    # the indices travel with the values: the layout call takes them in the layout
    # (output_size: the pooled input's size, which the default may fall short of)
    z, pullback = poolnd.vjp(unpool, y, idx, kernel, stride, padding, sizes, layout=layout,
                             engine=engine)
    z_cf, pullback_cf = poolnd.vjp(unpool, y_cf, idx_cf, kernel, stride, padding, sizes,
                                   engine=engine)
    assert z.shape == x.shape
    same(z, z_cf, layout)
    dz_cf = rng.standard_normal(z_cf.shape)
    same(pullback(from_cf(dz_cf, layout)), pullback_cf(dz_cf), layout)
    # a whole output shape in the layout's own order is taken too (with only spatial letters
    # the k ints are the spatial sizes, in the tuple order)
    whole = z.shape if len(layout) > k else sizes
    assert np.array_equal(unpool(y, idx, kernel, stride, padding, output_size=whole,
                                 layout=layout, engine=engine), z)


@pytest.mark.parametrize("k, layout", [(k, lay) for k, lay in CASES if k > 1])
@pytest.mark.parametrize("engine", ENGINES)
def test_fractional_max_pool_samples_count_missing_axes_as_one(rng, k, layout, engine):
    kernel = tuple(int(v) for v in rng.integers(1, 3, size=k))
    sizes = tuple(int(v) for v in rng.integers(5, 8, size=k))
    out = tuple(int(rng.integers(1, L - kk + (1 if k == 2 else 0))) for L, kk in
                zip(sizes, kernel))
    x, x_cf = make(rng, layout, sizes)
    samples = rng.random(x_cf.shape[:2] + (k,))          # (N or 1, C or 1, k)
    op = getattr(poolnd, f"fractional_max_pool{k}d")
    check_vjp(rng, op, x, x_cf, layout, kernel, out, None, True, samples, engine=engine)
    # drawn samples: the same generator state gives the same windows
    a = op(x, kernel, out, layout=layout, rng=np.random.default_rng(5), engine=engine)
    b = op(x_cf, kernel, out, rng=np.random.default_rng(5), engine=engine)
    same(a, b, layout)


# ----------------------------------------------------------------------------------------------
# every layer class
# ----------------------------------------------------------------------------------------------

def layer_cases(k, sizes):
    kernel = tuple(min(2, L) for L in sizes)
    yield f"MaxPool{k}d", (kernel,), dict(padding=0, return_indices=True)
    yield f"AvgPool{k}d", (kernel,), dict(count_include_pad=False)
    yield f"LPPool{k}d", (2, kernel), {}
    yield f"AdaptiveMaxPool{k}d", (tuple(max(1, L - 1) for L in sizes),), dict(
        return_indices=True)
    yield f"AdaptiveAvgPool{k}d", (tuple(max(1, L - 1) for L in sizes),), {}
    yield "Pool", ("min", kernel), dict(spatial_dims=k, return_indices=True)
    if k > 1:
        yield f"FractionalMaxPool{k}d", ((1,) * k,), dict(output_size=(2,) * k)


@pytest.mark.parametrize("k, layout", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_every_layer(rng, k, layout, engine):
    sizes = tuple(int(v) for v in rng.integers(4, 7, size=k))
    x, x_cf = make(rng, layout, sizes)
    for name, args, kwargs in layer_cases(k, sizes):
        if name.startswith("Fractional"):
            kwargs = dict(kwargs, _random_samples=rng.random(x_cf.shape[:2] + (k,)))
        ours = getattr(poolnd, name)(*args, **kwargs, layout=layout, engine=engine)
        theirs = getattr(poolnd, name)(*args, **kwargs, engine=engine)
        assert f"layout={layout!r}" in repr(ours)
        exact = "Max" in name or name == "Pool"
        y, y_cf = ours.forward(x), theirs.forward(x_cf)
        same(y, y_cf, layout, exact)
        values_cf = y_cf[0] if isinstance(y_cf, tuple) else y_cf
        dy_cf = rng.standard_normal(values_cf.shape)
        same(ours.backward(from_cf(dy_cf, layout)), theirs.backward(dy_cf), layout, exact)
    # MaxUnpool: values and indices both in the layout
    kernel = tuple(min(2, L) for L in sizes)
    y, idx = getattr(poolnd, f"max_pool{k}d")(x, kernel, return_indices=True, layout=layout)
    y_cf, idx_cf = getattr(poolnd, f"max_pool{k}d")(x_cf, kernel, return_indices=True)
    ours = getattr(poolnd, f"MaxUnpool{k}d")(kernel, layout=layout, engine=engine)
    theirs = getattr(poolnd, f"MaxUnpool{k}d")(kernel, engine=engine)
    z, z_cf = ours.forward(y, idx, sizes), theirs.forward(y_cf, idx_cf, sizes)
    same(z, z_cf, layout)
    dz_cf = rng.standard_normal(z_cf.shape)
    same(ours.backward(from_cf(dz_cf, layout)), theirs.backward(dz_cf), layout)


# ----------------------------------------------------------------------------------------------
# what the letters mean: per-dim tuple order and index order
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_tuples_follow_the_written_order_for_other_letters(engine):
    vol = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)           # (Z, Y, X)
    y = poolnd.max_pool3d(vol, (1, 2, 4), layout="ZYX", engine=engine)      # (kz, ky, kx)
    assert y.shape == (4, 3, 2)
    assert np.array_equal(y, vol.reshape(4, 3, 2, 2, 4).max(axis=(2, 4)))
    cz = np.stack([vol, -vol])                                              # (C, Z, Y, X)
    y = poolnd.avg_pool3d(cz, (2, 3, 4), layout="CZYX", engine=engine)
    assert y.shape == (2, 2, 2, 2)
    assert np.allclose(y[0], vol.reshape(2, 2, 2, 3, 2, 4).mean(axis=(1, 3, 5)))
    nyxc = np.moveaxis(np.stack([cz, cz + 1]), 1, -1)[:, 0]                 # (N, Y, X, C)
    assert nyxc.shape == (2, 6, 8, 2)
    y = poolnd.max_pool2d(nyxc, (3, 4), layout="NYXC", engine=engine)
    assert y.shape == (2, 2, 2, 2)
    assert np.array_equal(y, nyxc.reshape(2, 2, 3, 2, 4, 2).max(axis=(2, 4)))
    xy = vol[0].T                                                           # (X, Y) = (8, 6)
    y = poolnd.max_pool2d(xy, (4, 2), layout="XY", engine=engine)           # (kx, ky)
    assert y.shape == (2, 3)
    y = poolnd.max_pool2d(xy, (4, 2), layout="WH", engine=engine)           # PyTorch: (kh, kw)
    assert y.shape == (8 // 2, 6 // 4)                                       # (W', H')
    y = poolnd.pool(vol[..., None], "max", (1, 2, 4), spatial_dims=3, layout="ZYXC",
                    engine=engine)
    assert y.shape == (4, 3, 2, 1)
    y = poolnd.adaptive_avg_pool3d(vol, (1, 2, 4), layout="ZYX", engine=engine)
    assert y.shape == (1, 2, 4)


@pytest.mark.parametrize("engine", ENGINES)
def test_indices_are_flat_in_the_tuple_order(engine):
    """``"YX"`` and ``"XY"``: flat over the axes as written; PyTorch's ``"WH"``: over (H, W),
    as channels-last ``"NWHC"`` has always given them."""
    img = np.zeros((3, 5))                                                  # (Y, X) / (H, W)
    img[1, 3] = 9.0
    for layout, a, want in (("YX", img, 1 * 5 + 3), ("HW", img, 1 * 5 + 3),
                            ("XY", img.T, 3 * 3 + 1), ("WH", img.T, 1 * 5 + 3)):
        _, idx = poolnd.max_pool2d(a, a.shape if layout in ("YX", "XY") else img.shape,
                                   layout=layout, return_indices=True, engine=engine)
        assert idx.ravel().tolist() == [want], layout
        _, idx = poolnd.adaptive_max_pool2d(a, 1, True, layout=layout, engine=engine)
        assert idx.ravel().tolist() == [want], layout
    x = np.moveaxis(img[None, None], 1, -1).transpose(0, 2, 1, 3)          # (N, W, H, C)
    _, idx = poolnd.max_pool2d(x, (3, 5), layout="NWHC", return_indices=True, engine=engine)
    assert idx.ravel().tolist() == [1 * 5 + 3]


def test_fractional_sample_columns_in_the_tuple_order():
    """2-d: column 0 drives the last spatial dim of the tuple order (W, or X of "YX"); 3-d:
    column j drives dim j (D, H, W or Z, Y, X), as PyTorch's kernels read them."""
    rng = np.random.default_rng(3)
    img = rng.standard_normal((9, 7))                                      # (Y, X)
    s = np.array([[[0.9, 0.1]]])
    a = poolnd.fractional_max_pool2d(img, 2, (4, 3), _random_samples=s, layout="YX")
    b = poolnd.fractional_max_pool2d(img.T, 2, (3, 4), _random_samples=s[..., ::-1],
                                     layout="XY")
    assert np.array_equal(a, b.T)
    c = poolnd.fractional_max_pool2d(img[None, None], 2, (4, 3), _random_samples=s)
    assert np.array_equal(a, c[0, 0])
    vol = rng.standard_normal((7, 8, 9))
    s3 = np.array([[[0.2, 0.5, 0.8]]])
    a = poolnd.fractional_max_pool3d(vol, 2, (3, 4, 5), _random_samples=s3, layout="ZYX")
    b = poolnd.fractional_max_pool3d(vol.transpose(2, 1, 0), 2, (5, 4, 3), layout="XYZ",
                                     _random_samples=s3[..., ::-1])
    assert np.array_equal(a, b.transpose(2, 1, 0))


def test_defaults_are_unchanged():
    """layout=None stays PyTorch's: (C, *spatial) or (N, C, *spatial), never a bare plane."""
    img = np.arange(16.0).reshape(4, 4)
    assert poolnd.max_pool2d(img[None], 2).shape == (1, 2, 2)
    assert poolnd.max_pool1d(img, 2).shape == (4, 2)           # (C, W): four 1-d signals
    with pytest.raises(ValueError, match=r"got 2-D .*pass layout='HW'"):
        poolnd.max_pool2d(img, 2)


# ----------------------------------------------------------------------------------------------
# bad layouts, vjp and Dask
# ----------------------------------------------------------------------------------------------

IMG = np.zeros((4, 4))
BAD = [
    (lambda: poolnd.max_pool2d(IMG, 2, layout="HWD"), ValueError,
     "layout='HWD' names 3 spatial axes ('HWD'), but the op pools 2 spatial dims"),
    (lambda: poolnd.avg_pool2d(IMG, 2, layout="NC"), ValueError,
     "layout='NC' names 0 spatial axes"),
    (lambda: poolnd.max_pool3d(IMG, 2, layout="YX"), ValueError,
     "layout='YX' names 2 spatial axes"),
    (lambda: poolnd.max_pool2d(IMG, 2, layout="hw"), ValueError,
     "layout='hw' must be distinct upper-case letters"),
    (lambda: poolnd.max_pool2d(IMG, 2, layout="YY"), ValueError,
     "layout='YY' must be distinct upper-case letters"),
    (lambda: poolnd.max_pool2d(IMG, 2, layout="Y1"), ValueError,
     "layout='Y1' must be distinct upper-case letters"),
    (lambda: poolnd.max_pool2d(IMG, 2, layout="ÉX"), ValueError,
     "must be distinct upper-case letters A-Z"),
    (lambda: poolnd.max_pool2d(IMG, 2, layout="HWC"), ValueError,
     "layout='HWC' names 3 axes, but the input has 2"),
    (lambda: poolnd.global_avg_pool(IMG, layout="NC"), ValueError,
     "layout='NC' names no spatial axis"),
    (lambda: poolnd.adaptive_avg_pool2d(IMG, 2, layout="ZYX"), ValueError,
     "layout='ZYX' names 3 spatial axes"),
    (lambda: poolnd.max_unpool2d(IMG, np.zeros((4, 4), np.int64), 2, layout="HWC"), ValueError,
     "layout='HWC' names 3 axes"),
    (lambda: poolnd.fractional_max_pool2d(np.zeros((5, 5)), 2, 3, layout="HW",
                                          _random_samples=np.full((1, 2, 2), 0.5)),
     ValueError, "must have shape (N, C, 2) with at least N = 1 rows, C = 1 channels"),
    (lambda: poolnd.MaxPool2d(2, layout="DHW"), ValueError, "layout='DHW' names 3 spatial"),
    (lambda: poolnd.AdaptiveAvgPool1d(2, layout="HW"), ValueError, "layout='HW' names 2"),
    (lambda: poolnd.MaxUnpool3d(2, layout="XY"), ValueError, "layout='XY' names 2"),
    (lambda: poolnd.FractionalMaxPool2d(2, 2, layout="ZYX"), ValueError, "layout='ZYX'"),
    (lambda: poolnd.pool(IMG, "max", 2, spatial_dims=2, layout=("H", "W")), TypeError,
     "layout must be a string"),
]


@pytest.mark.parametrize("call, exc, text", BAD)
def test_bad_layouts_name_the_layout_and_the_rule(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)


def test_vjp_of_a_plain_image_and_volume(rng):
    img = rng.standard_normal((6, 7))
    y, pullback = poolnd.vjp(poolnd.max_pool2d, img, 2, layout="HW")
    assert y.shape == (3, 3)
    dx = pullback(np.ones_like(y))
    assert dx.shape == img.shape and dx.sum() == 9
    vol = rng.standard_normal((4, 6, 8))
    y, pullback = poolnd.vjp(poolnd.pool, vol, "avg", (2, 3, 4), spatial_dims=3, layout="ZYX")
    assert y.shape == (2, 2, 2)
    assert np.allclose(pullback(np.ones_like(y)), 1 / 24)


@pytest.mark.parametrize("layout", ["HW", "HWC", "ZYX", "NYXC"])
def test_dask_arrays_in_plain_layouts(rng, layout):
    da = pytest.importorskip("dask.array")
    k = sum(c not in "NC" for c in layout)
    x, _ = make(rng, layout, (9, 10, 11)[:k])
    xd = da.from_array(x, chunks=tuple(4 if c not in "NC" else 1 for c in layout))
    calls = [
        lambda a: poolnd.pool(a, "max", 3, 2, 1, spatial_dims=k, layout=layout,
                              return_indices=True),
        lambda a: poolnd.pool(a, "avg", 2, spatial_dims=k, layout=layout),
        lambda a: poolnd.adaptive_pool(a, "avg", 4, spatial_dims=k, layout=layout),
        lambda a: poolnd.adaptive_pool(a, "max", 4, spatial_dims=k, layout=layout,
                                       return_indices=True),
        lambda a: poolnd.global_max_pool(a, layout=layout),
    ]
    for call in calls:
        lazy, eager = call(xd), call(x)
        if isinstance(eager, tuple):
            for a, b in zip(lazy, eager):
                assert isinstance(a, da.Array) and np.array_equal(a.compute(), b)
        else:
            assert isinstance(lazy, da.Array) and np.array_equal(lazy.compute(), eager)
