"""poolnd.vjp: the stateless backward of every functional op.

Against torch autograd (float64) where torch has the op, against centred finite differences where
it does not (4-d pools, global pools, "same" padding, 4-d adaptive); pullbacks that outlive each
other and run in threads; layers' backward equal to the pullback bit for bit."""
import inspect
import pickle
import threading

import numpy as np
import pytest

import poolnd
from helpers import as_torch_arg, from_layout, to_layout

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# every public functional op: the callables of __all__ that are not layers or helpers
OPS = sorted(name for name in poolnd.__all__ if callable(getattr(poolnd, name))
             and name[0].islower()
             and name not in ("vjp", "indices_to_flat", "indices_from_flat", "pyramid"))
VARIANTS = ["NC", "channels_last", "unbatched"]


def _tie_free(rng, shape, positive=False):
    """Distinct values at least 1e-2 apart: a 1e-6 nudge (or rounding) never changes an argmax."""
    n = int(np.prod(shape))
    v = rng.permutation(n) * 1e-2 + rng.uniform(0, 1e-3, n)
    return (v + 0.1 if positive else v - n * 5e-3).reshape(shape)


def _layout(variant, k):
    spatial = "DHW"[-k:] if k > 1 else "W"
    return {"NC": None, "channels_last": "N" + spatial + "C", "unbatched": None}[variant]


def _shape(rng, variant, spatial):
    lead = (int(rng.integers(2, 4)),) if variant == "unbatched" else \
        (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
    return lead + tuple(spatial)


def _values(y):
    return y[0] if isinstance(y, tuple) else y


def _check_vs_torch(rng, name, x, args, kwargs, k, layout=None, torch_args=None):
    """vjp of ``poolnd.<name>`` on ``x`` (channels-first, or given to poolnd in ``layout``) equals
    torch's forward and autograd gradient, and ``y`` is exactly what the op returns."""
    xt = torch.tensor(x, requires_grad=True)
    yt = _values(getattr(TF, name)(xt, *(torch_args if torch_args is not None else args),
                                   **kwargs))
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    op = getattr(poolnd, name)
    extra = {} if layout is None else {"layout": layout}
    xin = x if layout is None else to_layout(x, layout, k)
    y, pullback = poolnd.vjp(op, xin, *args, **kwargs, **extra)
    direct = op(xin, *args, **kwargs, **extra)
    assert type(y) is type(direct)
    for a, b in zip(y if isinstance(y, tuple) else (y,), direct if isinstance(direct, tuple)
                    else (direct,)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    yv = _values(y) if layout is None else from_layout(_values(y), layout, k)
    np.testing.assert_allclose(yv, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx = pullback(dy if layout is None else to_layout(dy, layout, k).copy())
    assert dx.shape == xin.shape and dx.dtype == xin.dtype
    dx = dx if layout is None else from_layout(dx, layout, k)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def _window_cfg(rng, k, dilated, padded=True):
    """A random PyTorch-expressible window: every window holds at least one input element
    (torch's indices for a window wholly in padding are not a gradient route)."""
    while True:
        kernel = tuple(int(v) for v in rng.integers(1, 4, k))
        stride = tuple(int(v) for v in rng.integers(1, 3, k))
        dilation = tuple(int(v) for v in rng.integers(1, 3, k)) if dilated else (1,) * k
        padding = tuple(int(rng.integers(0, kk // 2 + 1)) if padded else 0 for kk in kernel)
        eff = [(kk - 1) * d + 1 for kk, d in zip(kernel, dilation)]
        size = tuple(int(rng.integers(max(e - 2 * p, 1), e + 5)) for e, p in zip(eff, padding))
        ceil = bool(rng.random() < 0.5)
        x = torch.arange(float(np.prod(size))).reshape((1, 1) + size)
        taken = getattr(TF, f"max_pool{k}d")(x, kernel, stride, padding, dilation, ceil)
        if bool(torch.isfinite(taken).all()):
            return kernel, stride, padding, dilation, ceil, size


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_max_pool_vs_torch(k, variant, seed, rng):
    kernel, stride, padding, dilation, ceil, size = _window_cfg(rng, k, dilated=True)
    x = _tie_free(rng, _shape(rng, variant, size))
    _check_vs_torch(rng, f"max_pool{k}d", x, (kernel, stride, padding, dilation, ceil),
                    {"return_indices": bool(seed)}, k, _layout(variant, k))


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_avg_pool_vs_torch(k, variant, seed, rng):
    kernel, stride, padding, _, ceil, size = _window_cfg(rng, k, dilated=False)
    if k == 3:                                   # torch's avg_pool3d: input >= kernel
        size = tuple(max(s, kk) for s, kk in zip(size, kernel))
    kwargs = {"count_include_pad": bool(rng.random() < 0.5)}
    if k > 1 and seed == 1:
        kwargs["divisor_override"] = int(rng.choice([2, 5]))
    x = rng.standard_normal(_shape(rng, variant, size))
    _check_vs_torch(rng, f"avg_pool{k}d", x, (kernel, stride, padding, ceil), kwargs, k,
                    _layout(variant, k))


@pytest.mark.parametrize("norm_type", [1, 2, 3.5])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_lp_pool_vs_torch(k, variant, norm_type, rng):
    kernel, stride, _, _, ceil, size = _window_cfg(rng, k, dilated=False, padded=False)
    x = _tie_free(rng, _shape(rng, variant, size), positive=True)   # torch's lp: inputs >= 0
    kernel, stride = as_torch_arg(kernel), as_torch_arg(stride)      # torch's lp_pool1d: ints
    _check_vs_torch(rng, f"lp_pool{k}d", x, (norm_type, kernel, stride, ceil), {}, k,
                    _layout(variant, k))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_adaptive_pool_vs_torch(k, variant, mode, rng):
    size = tuple(int(v) for v in rng.integers(2, 8, k))
    out = tuple(None if k > 1 and rng.random() < 0.25 else int(rng.integers(1, s + 3))
                for s in size)                   # torch's 1-d form takes no None
    x = _tie_free(rng, _shape(rng, variant, size))
    kwargs = {"return_indices": True} if mode == "max" else {}
    _check_vs_torch(rng, f"adaptive_{mode}_pool{k}d", x, (out,), kwargs, k, _layout(variant, k))


@pytest.mark.parametrize("given_size", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_max_unpool_vs_torch(k, variant, given_size, rng):
    """The gradient w.r.t. the unpooled values (the indices are constants)."""
    while True:                 # the default output size must hold every index
        kernel, stride, padding, _, _, size = _window_cfg(rng, k, dilated=False)
        src = torch.tensor(_tie_free(rng, _shape(rng, variant, size)))
        vals, idx = getattr(TF, f"max_pool{k}d")(src, kernel, stride, padding,
                                                 return_indices=True)
        default = [(o - 1) * s - 2 * p + kk for o, s, p, kk in
                   zip(vals.shape[-k:], stride, padding, kernel)]
        if given_size or int(idx.max()) < np.prod(default):
            break
    out = tuple(src.shape[-k:]) if given_size else None
    x = rng.standard_normal(tuple(vals.shape))
    layout = _layout(variant, k)
    idx_np = idx.numpy() if layout is None else to_layout(idx.numpy(), layout, k).copy()
    _check_vs_torch(rng, f"max_unpool{k}d", x, (idx_np, kernel, stride, padding, out), {}, k,
                    layout, torch_args=(idx, kernel, stride, padding, out))


@pytest.mark.parametrize("by_ratio", [False, True])
@pytest.mark.parametrize("variant", ["NC", "channels_last"])
@pytest.mark.parametrize("k", [2, 3])
def test_fractional_max_pool_vs_torch(k, variant, by_ratio, rng):
    size = tuple(int(v) for v in rng.integers(5, 9, k))
    shape = _shape(rng, variant, size)
    x = _tie_free(rng, shape)
    samples = rng.random((shape[0], shape[1], k))
    kwargs = {"output_ratio": (0.6,) * k} if by_ratio else {"output_size": 3}
    kwargs["return_indices"] = True
    layout = _layout(variant, k)
    xt = torch.tensor(x, requires_grad=True)
    yt, _ = getattr(TF, f"fractional_max_pool{k}d")(
        xt, 2, _random_samples=torch.tensor(samples), **kwargs)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    op = getattr(poolnd, f"fractional_max_pool{k}d")
    xin = x if layout is None else to_layout(x, layout, k)
    (y, i), pullback = poolnd.vjp(op, xin, 2, _random_samples=samples, layout=layout, **kwargs)
    y2, i2 = op(xin, 2, _random_samples=samples, layout=layout, **kwargs)
    assert np.array_equal(y, y2) and np.array_equal(i, i2)
    np.testing.assert_array_equal(from_layout(y, layout, k) if layout else y,
                                  yt.detach().numpy())
    dx = pullback(dy if layout is None else to_layout(dy, layout, k).copy())
    np.testing.assert_allclose(from_layout(dx, layout, k) if layout else dx, xt.grad.numpy(),
                               rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# finite differences where torch has no such op
# ---------------------------------------------------------------------------------------------

def _finite_differences(f, x, dy, eps=1e-6):
    """The gradient of ``sum(f(x) * dy)`` by centred differences (float64)."""
    x = x.copy()
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = float(np.sum(_values(f(x)) * dy))
        x[i] = old - eps
        fm = float(np.sum(_values(f(x)) * dy))
        x[i] = old
        num[i] = (fp - fm) / (2 * eps)
    return num


FD_CASES = [  # (op, args, kwargs, input shape)
    ("pool", ("max", 2, 1, 1, 2, True), {"spatial_dims": 4}, (1, 2, 3, 4, 3, 4)),
    ("pool", ("min", (2, 1, 2, 3), (1, 1, 2, 1), "same"), {"spatial_dims": 4},
     (2, 1, 3, 3, 4, 3)),
    ("pool", ("avg", 2, 1, ((1, 0), (0, 1), (0, 0), (1, 1))),
     {"spatial_dims": 4, "count_include_pad": False}, (1, 2, 3, 3, 3, 4)),
    ("pool", ("sum", 3, 2, 1, 1, True), {"spatial_dims": 4, "layout": "NXYZWC"},
     (1, 4, 3, 4, 5, 2)),
    ("pool", ("lp", 2, 1), {"spatial_dims": 4, "norm_type": 3.0}, (1, 2, 3, 3, 3, 3)),
    ("pool", ("max", 3, 2, "same"), {"spatial_dims": 2, "layout": "HWCN"}, (5, 6, 2, 2)),
    ("global_max_pool", (), {}, (2, 3, 4, 5)),
    ("global_max_pool", (), {"layout": "NHWC"}, (2, 4, 5, 3)),
    ("global_avg_pool", (), {"spatial_dims": 4}, (1, 2, 3, 2, 3, 2)),
    ("global_avg_pool", (), {"layout": "DHWC"}, (3, 4, 2, 3)),
    ("max_pool2d", (3, 2, "same"), {}, (2, 2, 5, 6)),
    ("max_pool1d", (3, 2, "same_lower", 2), {"layout": "NWC"}, (2, 7, 3)),
    ("avg_pool2d", ((2, 3), 2, "same"), {"count_include_pad": False}, (1, 3, 5, 7)),
    ("avg_pool3d", (2, 1, "same"), {"dilation": 2}, (1, 1, 3, 4, 4)),
    ("adaptive_pool", ("max", (2, None, 3, 1)), {"spatial_dims": 4}, (1, 2, 3, 2, 5, 3)),
    ("adaptive_pool", ("avg", 2), {"spatial_dims": 4, "return_indices": False},
     (2, 1, 3, 4, 3, 5)),
]


@pytest.mark.parametrize("case", FD_CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_finite_differences_where_torch_has_no_op(case, rng, fast_engine):
    name, args, kwargs, shape = case
    op = getattr(poolnd, name)
    kwargs = dict(kwargs, engine=fast_engine)
    x = _tie_free(rng, shape, positive=args[:1] == ("lp",))
    y, pullback = poolnd.vjp(op, x, *args, **kwargs)
    assert np.array_equal(_values(y), _values(op(x, *args, **kwargs)))
    dy = rng.standard_normal(_values(y).shape)
    dx = pullback(dy)
    assert dx.shape == x.shape and dx.dtype == x.dtype
    num = _finite_differences(lambda z: op(z, *args, **kwargs), x, dy)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-7)
    assert np.abs(dx).max() > 0


# ---------------------------------------------------------------------------------------------
# statelessness
# ---------------------------------------------------------------------------------------------

# one call of every public op: (op, args, kwargs, input shape); max_unpool gets its indices
CALLS = {
    "max_pool1d": ((3, 2, 1), {}, (2, 3, 9)),
    "max_pool2d": ((3, 2, 1), {"return_indices": True}, (2, 3, 9, 8)),
    "max_pool3d": ((2, 1, 0, 2), {"ceil_mode": True}, (1, 2, 5, 6, 5)),
    "avg_pool1d": ((3, 2, 1), {"count_include_pad": False}, (2, 3, 9)),
    "avg_pool2d": ((3, 2, 1), {"divisor_override": 4}, (2, 3, 9, 8)),
    "avg_pool3d": ((2,), {"layout": "NDHWC"}, (1, 4, 4, 4, 3)),
    "lp_pool1d": ((2, 3), {}, (2, 3, 9)),
    "lp_pool2d": ((1.5, 2, 1), {"ceil_mode": True}, (2, 3, 7, 8)),
    "lp_pool3d": ((3, 2), {}, (1, 2, 4, 5, 6)),
    "pool": (("sum", 2), {"spatial_dims": 4}, (1, 2, 4, 3, 4, 2)),
    "global_max_pool": ((), {}, (2, 3, 5, 6)),
    "global_avg_pool": ((), {"layout": "NHWC"}, (2, 5, 6, 3)),
    "adaptive_max_pool1d": ((4,), {}, (2, 3, 9)),
    "adaptive_max_pool2d": (((3, 2),), {"return_indices": True}, (2, 3, 7, 8)),
    "adaptive_max_pool3d": ((2,), {}, (1, 2, 5, 4, 6)),
    "adaptive_avg_pool1d": ((4,), {}, (2, 3, 9)),
    "adaptive_avg_pool2d": ((3,), {"layout": "NHWC"}, (2, 7, 8, 3)),
    "adaptive_avg_pool3d": ((2,), {}, (1, 2, 5, 4, 6)),
    "adaptive_pool": (("avg", 3), {"spatial_dims": 2}, (2, 3, 7, 8)),
    "max_unpool1d": ((2,), {}, (2, 3, 8)),
    "max_unpool2d": ((2,), {}, (2, 3, 8, 6)),
    "max_unpool3d": ((2,), {}, (1, 2, 4, 6, 4)),
    "fractional_max_pool2d": ((2,), {"output_size": 4}, (2, 3, 9, 8)),
    "fractional_max_pool3d": ((2,), {"output_ratio": 0.5}, (1, 2, 8, 6, 7)),
}


def test_calls_cover_every_public_op():
    assert sorted(CALLS) == OPS


def _call(name, rng, shape=None):
    """``(op, x, args, kwargs)`` for one call of ``name`` on a fresh tie-free input."""
    args, kwargs, default_shape = CALLS[name]
    shape = shape or default_shape
    kwargs = dict(kwargs)
    if name.startswith("max_unpool"):
        k = int(name[-2])
        src = _tie_free(rng, shape)
        x, idx = getattr(poolnd, f"max_pool{k}d")(src, 2, return_indices=True)
        args = (idx,) + args
    else:
        x = _tie_free(rng, shape, positive=name.startswith("lp"))
    if name.startswith("fractional"):
        kwargs["_random_samples"] = rng.random(shape[:2] + (int(name[-2]),))
    return getattr(poolnd, name), x, args, kwargs


@pytest.mark.parametrize("name", sorted(CALLS))
def test_two_pullbacks_alive_called_in_reverse_order(name, rng):
    op, xa, args_a, kw_a = _call(name, rng)
    _, xb, args_b, kw_b = _call(name, rng)
    ya, pa = poolnd.vjp(op, xa, *args_a, **kw_a)
    yb, pb = poolnd.vjp(op, xb, *args_b, **kw_b)
    dya = rng.standard_normal(_values(ya).shape)
    dyb = rng.standard_normal(_values(yb).shape)
    dxb, dxa = pb(dyb), pa(dya)                       # the later call first
    assert np.array_equal(dxa, poolnd.vjp(op, xa, *args_a, **kw_a)[1](dya))
    assert np.array_equal(dxb, poolnd.vjp(op, xb, *args_b, **kw_b)[1](dyb))
    assert not np.array_equal(dxa, dxb)
    assert np.array_equal(pa(dya), dxa)               # a pullback may be called again


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_max_pool2d",
                                  "adaptive_avg_pool2d", "max_unpool2d", "fractional_max_pool2d",
                                  "pool"])
def test_eight_threads_each_with_its_own_input(name, rng, fast_engine):
    calls = []
    for t in range(8):
        base = CALLS[name][2]
        shape = base[:-2] + (base[-2] + 2 * t, base[-1] + 2 * (t % 3))     # even: unpool fits
        op, x, args, kwargs = _call(name, rng, shape)
        kwargs["engine"] = fast_engine
        y = _values(op(x, *args, **kwargs))
        dy = rng.standard_normal(y.shape)
        layer_free = poolnd.vjp(op, x, *args, **kwargs)[1](dy)      # computed alone, serially
        calls.append((op, x, args, kwargs, dy, layer_free))
    barrier = threading.Barrier(8)
    results, errors = [None] * 8, []

    def work(t):
        op, x, args, kwargs, dy, _ = calls[t]
        try:
            barrier.wait()
            for _ in range(3):
                y, pullback = poolnd.vjp(op, x, *args, **kwargs)
                results[t] = pullback(dy)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(8):
        assert np.array_equal(results[t], calls[t][5]), t


@pytest.mark.parametrize("name", ["lp_pool2d", "adaptive_max_pool2d", "max_unpool2d",
                                  "max_pool2d", "avg_pool2d"])
def test_later_changes_to_input_indices_and_output_never_reach_the_pullback(name, rng):
    op, x, args, kwargs = _call(name, rng)
    if name == "adaptive_max_pool2d" or name == "max_pool2d":
        kwargs["return_indices"] = True
    y, pullback = poolnd.vjp(op, x, *args, **kwargs)
    dy = rng.standard_normal(_values(y).shape)
    before = pullback(dy)
    x[...] = 7.0
    for a in (y if isinstance(y, tuple) else (y,)) + tuple(
            a for a in args if isinstance(a, np.ndarray)):
        a[...] = 0
    assert np.array_equal(pullback(dy), before)


def test_pullback_pickles_and_is_immutable(rng):
    op, x, args, kwargs = _call("adaptive_max_pool2d", rng)
    y, pullback = poolnd.vjp(op, x, *args, **kwargs)
    dy = rng.standard_normal(_values(y).shape)
    assert np.array_equal(pickle.loads(pickle.dumps(pullback))(dy), pullback(dy))
    with pytest.raises(AttributeError, match="immutable"):
        pullback._record = None


# ---------------------------------------------------------------------------------------------
# layers' backward is the pullback
# ---------------------------------------------------------------------------------------------

LAYER_CALLS = [  # (layer, ctor args, ctor kwargs, functional op, op args, op kwargs, shape)
    ("MaxPool2d", (3, 2, 1, 2, True, True), {"layout": "NHWC"}, "max_pool2d",
     (3, 2, 1, 2, True, True), {"layout": "NHWC"}, (2, 9, 8, 3)),
    ("MaxPool1d", (2,), {}, "max_pool1d", (2,), {}, (3, 7)),
    ("MaxPool3d", (2, 1), {}, "max_pool3d", (2, 1), {}, (1, 2, 4, 5, 3)),
    ("AvgPool1d", (3, 2, 1, True, False), {}, "avg_pool1d", (3, 2, 1, True, False), {},
     (2, 3, 9)),
    ("AvgPool2d", (3, 2, 1), {"divisor_override": 5}, "avg_pool2d", (3, 2, 1),
     {"divisor_override": 5}, (2, 3, 9, 8)),
    ("AvgPool3d", (2,), {"dilation": 2}, "avg_pool3d", (2,), {"dilation": 2}, (1, 2, 5, 5, 5)),
    ("LPPool1d", (2, 3), {}, "lp_pool1d", (2, 3), {}, (2, 3, 9)),
    ("LPPool2d", (3, 2, 1, True), {}, "lp_pool2d", (3, 2, 1, True), {}, (2, 3, 7, 8)),
    ("LPPool3d", (1.5, 2), {}, "lp_pool3d", (1.5, 2), {}, (1, 2, 4, 5, 6)),
    ("Pool", ("min", 2), {"spatial_dims": 4}, "pool", ("min", 2), {"spatial_dims": 4},
     (1, 2, 4, 3, 4, 2)),
    ("AdaptiveMaxPool1d", (4, True), {}, "adaptive_max_pool1d", (4, True), {}, (2, 3, 9)),
    ("AdaptiveMaxPool2d", ((3, None),), {}, "adaptive_max_pool2d", ((3, None),), {},
     (2, 3, 7, 8)),
    ("AdaptiveMaxPool3d", (2,), {}, "adaptive_max_pool3d", (2,), {}, (1, 2, 4, 6, 4)),
    ("AdaptiveAvgPool1d", (4,), {}, "adaptive_avg_pool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", (3,), {"layout": "NHWC"}, "adaptive_avg_pool2d", (3,),
     {"layout": "NHWC"}, (2, 7, 8, 3)),
    ("AdaptiveAvgPool3d", (2,), {}, "adaptive_avg_pool3d", (2,), {}, (1, 2, 5, 4, 6)),
    ("FractionalMaxPool2d", (2, 4), {}, "fractional_max_pool2d", (2, 4), {}, (2, 3, 9, 8)),
    ("FractionalMaxPool3d", (2, None, 0.5, True), {}, "fractional_max_pool3d",
     (2, None, 0.5, True), {}, (1, 2, 8, 6, 7)),
]


@pytest.mark.parametrize("case", LAYER_CALLS, ids=lambda c: c if isinstance(c, str) else None)
def test_layer_backward_is_the_pullback_bit_for_bit(case, rng, fast_engine):
    layer_name, cargs, ckw, name, oargs, okw, shape = case
    x = _tie_free(rng, shape, positive=name.startswith("lp"))
    if name.startswith("fractional"):              # the same draws for the layer and the op
        ckw = dict(ckw, rng=np.random.default_rng(7))
        okw = dict(okw, rng=np.random.default_rng(7))
    layer = getattr(poolnd, layer_name)(*cargs, **ckw, engine=fast_engine)
    y = layer.forward(x)
    y2, pullback = poolnd.vjp(getattr(poolnd, name), x, *oargs, **okw, engine=fast_engine)
    assert type(y) is type(y2)
    assert np.array_equal(_values(y), _values(y2))
    dy = rng.standard_normal(_values(y).shape)
    assert np.array_equal(layer.backward(dy), pullback(dy))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_unpool_layer_backward_is_the_pullback_bit_for_bit(k, rng):
    src = _tie_free(rng, (2, 3) + (6,) * k)
    x, idx = getattr(poolnd, f"max_pool{k}d")(src, 3, 2, 1, return_indices=True)
    layer = getattr(poolnd, f"MaxUnpool{k}d")(3, 2, 1)
    z = layer.forward(x, idx, output_size=src.shape[-k:])
    z2, pullback = poolnd.vjp(getattr(poolnd, f"max_unpool{k}d"), x, idx, 3, 2, 1,
                              src.shape[-k:])
    assert np.array_equal(z, z2)
    dy = rng.standard_normal(z.shape)
    assert np.array_equal(layer.backward(dy), pullback(dy))


def test_a_layer_shared_by_two_branches_needs_vjp(rng):
    """The documented limit: a layer keeps its last forward; two pullbacks keep both."""
    xa, xb = _tie_free(rng, (1, 2, 6, 6)), _tie_free(rng, (1, 2, 6, 6))
    layer = poolnd.MaxPool2d(2)
    layer.forward(xa)
    layer.forward(xb)
    dy = rng.standard_normal((1, 2, 3, 3))
    _, pa = poolnd.vjp(poolnd.max_pool2d, xa, 2)
    _, pb = poolnd.vjp(poolnd.max_pool2d, xb, 2)
    assert np.array_equal(layer.backward(dy), pb(dy))
    assert not np.array_equal(pa(dy), pb(dy))
    assert "vjp" in poolnd.MaxPool2d.__doc__ and "last forward" in poolnd.MaxPool2d.__doc__


# ---------------------------------------------------------------------------------------------
# errors and the docstring
# ---------------------------------------------------------------------------------------------

def test_an_unknown_op_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"vjp: op=<function sum .*must be one of poolnd's"):
        poolnd.vjp(np.sum, np.zeros((1, 1, 4)))
    with pytest.raises(TypeError, match=r"vjp: op=\[\] must be one of"):
        poolnd.vjp([], np.zeros((1, 1, 4)))


def test_arguments_that_do_not_fit_the_signature_name_the_op():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(TypeError, match=r"max_pool2d: missing a required argument: "
                                        r"'kernel_size' \(signature max_pool2d\(input"):
        poolnd.vjp(poolnd.max_pool2d, x)
    with pytest.raises(TypeError, match=r"avg_pool2d: got an unexpected keyword argument "
                                        r"'dilations'"):
        poolnd.vjp(poolnd.avg_pool2d, x, 2, dilations=2)


@pytest.mark.parametrize("call, error, match", [
    ((poolnd.max_pool2d, 2, 0), ValueError, r"max_pool2d: stride=0"),
    ((poolnd.adaptive_pool, "lp", 2), ValueError, r"adaptive_pool: mode='lp' must be"),
    ((poolnd.lp_pool2d, 0, 2), ValueError, r"lp_pool2d: norm_type=0"),
    ((poolnd.fractional_max_pool2d, 2), ValueError, r"fractional_max_pool2d: .*output_size"),
])
def test_the_op_s_own_errors_come_through(call, error, match):
    op, *args = call
    kwargs = {"spatial_dims": 2} if op is poolnd.adaptive_pool else {}
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(error, match=match):
        op(x, *args, **kwargs)
    with pytest.raises(error, match=match):
        poolnd.vjp(op, x, *args, **kwargs)


def test_vjp_signature():
    assert list(inspect.signature(poolnd.vjp).parameters) == ["op", "x", "args", "kwargs"]
    # (its doctest runs with every public module's in test_api.py)
