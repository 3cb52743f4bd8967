"""Differential tests of the LP, adaptive, fractional and unpool ops against PyTorch 2.13: values,
shapes, indices and the layers' backward against autograd, on seeded random configurations
(1-3 spatial dims, dtypes, layouts, unbatched input) on every engine."""
import numpy as np
import pytest

import poolnd
import naive_family
import poolnd.engines
from helpers import as_torch_arg, from_layout, random_layout, to_layout

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-5),
       "float16": dict(rtol=2e-3, atol=4e-3)}
ENGINES = ["numpy", "numba", "reference"]
CONFIGS = {"numpy": 120, "numba": 120, "reference": 15}


def _engines():
    return [e for e in ENGINES if e in poolnd.engines.available()]


def _base(rng, k, min_size=1, max_size=9):
    batched = rng.random() < 0.85
    n = int(rng.choice([0, 1, 2, 3], p=[0.05, 0.35, 0.4, 0.2])) if batched else 1
    c = int(rng.integers(1, 4))
    size = tuple(int(v) for v in rng.integers(min_size, max_size + 1, size=k))
    dtype = str(rng.choice(["float32", "float64", "float16"], p=[0.5, 0.35, 0.15]))
    return dict(k=k, batched=batched, n=n, c=c, size=size, dtype=dtype,
                layout=random_layout(rng, k, batched))


def _input(rng, cfg, positive=False, ties=False):
    shape = ((cfg["n"],) if cfg["batched"] else ()) + (cfg["c"],) + cfg["size"]
    if ties:
        x = rng.integers(-3, 4, size=shape).astype(np.float64)
    else:
        x = rng.standard_normal(shape) * 3
    if positive:
        x = np.abs(x) + (0.1 if not ties else 0)
    return x.astype(cfg["dtype"])


def _torch(x):
    """float16 is compared against a float32 oracle (PyTorch's CPU float16 kernels round
    differently); the result is compared at float16 tolerance."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.float() if x.dtype == np.float16 else t


def _check(ours, theirs, dtype):
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.astype(np.float64), theirs.detach().double().numpy(),
                               equal_nan=True, **TOL[dtype])


def _in_layout(x, cfg):
    return x if cfg["layout"] is None else np.ascontiguousarray(
        to_layout(x, cfg["layout"], cfg["k"]))


def _out_cf(y, cfg):
    return y if cfg["layout"] is None else from_layout(y, cfg["layout"], cfg["k"])


def _grad_check(layer, x, cfg, fn_torch, xt, rng):
    """The layer's backward against autograd of ``fn_torch``, with a random ``dy``."""
    y = layer.forward(_in_layout(x, cfg))
    y = y[0] if isinstance(y, tuple) else y
    dy = rng.standard_normal(y.shape).astype(cfg["dtype"])
    dx = layer.backward(dy)
    assert dx.shape == _in_layout(x, cfg).shape and dx.dtype == x.dtype
    xt = xt.clone().requires_grad_(True)
    out = fn_torch(xt)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(_torch(np.ascontiguousarray(_out_cf(dy, cfg))))
    _check(_out_cf(dx, cfg), xt.grad, cfg["dtype"])


# ----------------------------------------------------------------------------------------------

def _lp_cfg(rng):
    k = int(rng.integers(1, 4))
    cfg = _base(rng, k)
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    cfg["size"] = tuple(max(s, kk) for s, kk in zip(cfg["size"], kernel))
    cfg.update(kernel=kernel, stride=None if rng.random() < 0.3 else tuple(
        int(v) for v in rng.integers(1, 4, size=k)), ceil_mode=bool(rng.random() < 0.5),
        p=float(rng.choice([1, 2, 3, 1.5, 4.5])))
    return cfg


@pytest.mark.parametrize("engine", _engines())
def test_lp_pool_vs_torch(engine):
    rng = np.random.default_rng(401)
    for i in range(CONFIGS[engine]):
        cfg = _lp_cfg(rng)
        k = cfg["k"]
        x = _input(rng, cfg, positive=True)
        stride = None if cfg["stride"] is None else as_torch_arg(cfg["stride"])
        kern = as_torch_arg(cfg["kernel"])

        def fn(t):
            return getattr(F, f"lp_pool{k}d")(t, cfg["p"], kern, stride, cfg["ceil_mode"])
        xt = _torch(x)
        try:
            want = fn(xt)
        except RuntimeError:
            with pytest.raises((ValueError, TypeError)):
                getattr(poolnd, f"lp_pool{k}d")(_in_layout(x, cfg), cfg["p"], kern, stride,
                                                cfg["ceil_mode"], layout=cfg["layout"],
                                                engine=engine)
            continue
        got = getattr(poolnd, f"lp_pool{k}d")(_in_layout(x, cfg), cfg["p"], kern, stride,
                                              cfg["ceil_mode"], layout=cfg["layout"],
                                              engine=engine)
        assert got.dtype == x.dtype
        _check(_out_cf(got, cfg), want, cfg["dtype"])
        if x.dtype != np.float16 and want.numel():
            layer = getattr(poolnd, f"LPPool{k}d")(cfg["p"], kern, stride, cfg["ceil_mode"],
                                                   layout=cfg["layout"], engine=engine)
            _grad_check(layer, x, cfg, fn, xt, rng)


# ----------------------------------------------------------------------------------------------

def _adaptive_cfg(rng):
    k = int(rng.integers(1, 4))
    cfg = _base(rng, k)
    out = []
    for L in cfg["size"]:
        r = rng.random()
        out.append(None if (r < 0.15 and k > 1) else int(rng.integers(1, 2 * L + 2)))
    cfg["out"] = out[0] if (k == 1 or (len(set(out)) == 1 and rng.random() < 0.5)) else tuple(out)
    if cfg["out"] is None:
        cfg["out"] = 1
    return cfg


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("engine", _engines())
def test_adaptive_vs_torch(engine, mode):
    rng = np.random.default_rng(402 + (mode == "avg"))
    for i in range(CONFIGS[engine]):
        cfg = _adaptive_cfg(rng)
        k = cfg["k"]
        x = _input(rng, cfg, ties=rng.random() < 0.3)
        if x.size and rng.random() < 0.1:
            x.flat[rng.integers(x.size, size=3)] = np.nan
        xt = _torch(x)
        out = cfg["out"]
        torch_fn = getattr(F, f"adaptive_{mode}_pool{k}d")
        extra = dict(return_indices=True) if mode == "max" else {}

        def fn(t):
            return torch_fn(t, out, **extra)
        want = fn(xt)
        got = getattr(poolnd, f"adaptive_{mode}_pool{k}d")(_in_layout(x, cfg), out,
                                                            layout=cfg["layout"], engine=engine,
                                                            **extra)
        if mode == "max":
            got, idx = got
            np.testing.assert_array_equal(_out_cf(idx, cfg), want[1].numpy())
            want = want[0]
        assert got.dtype == x.dtype
        _check(_out_cf(got, cfg), want, cfg["dtype"])
        if x.dtype != np.float16 and not np.isnan(x).any():
            layer = getattr(poolnd, f"Adaptive{mode.capitalize()}Pool{k}d")(
                out, layout=cfg["layout"], engine=engine)
            _grad_check(layer, x, cfg, fn, xt, rng)


# ----------------------------------------------------------------------------------------------

def _fractional_cfg(rng):
    k = int(rng.integers(2, 4))
    cfg = _base(rng, k, min_size=2, max_size=10)
    cfg["dtype"] = str(rng.choice(["float32", "float64", "float16"], p=[0.45, 0.4, 0.15]))
    kernel = tuple(int(rng.integers(1, max(2, L // 2 + 1))) for L in cfg["size"])
    out = tuple(int(rng.integers(0 if rng.random() < 0.05 else 1, L - kk + 2 - (k == 3)))
                for L, kk in zip(cfg["size"], kernel))
    cfg.update(kernel=kernel, out=out)
    return cfg


@pytest.mark.parametrize("engine", _engines())
def test_fractional_vs_torch(engine):
    rng = np.random.default_rng(404)
    for i in range(CONFIGS[engine]):
        cfg = _fractional_cfg(rng)
        k = cfg["k"]
        x = _input(rng, cfg, ties=rng.random() < 0.3)
        if x.size and rng.random() < 0.15:
            x.flat[rng.integers(x.size, size=2)] = np.nan
        n = cfg["n"] if cfg["batched"] else 1
        samples = rng.random((n, cfg["c"], k)).astype(cfg["dtype"])
        samples = np.minimum(samples, np.nextafter(samples.dtype.type(1), samples.dtype.type(0)))
        # float16 intervals are computed in float16 by both: compare against torch in float16
        xt = torch.from_numpy(np.ascontiguousarray(x))
        st = torch.from_numpy(samples)
        kern, out = as_torch_arg(cfg["kernel"]), as_torch_arg(cfg["out"])

        def fn(t):
            return getattr(F, f"fractional_max_pool{k}d")(t, kern, output_size=out,
                                                          return_indices=True,
                                                          _random_samples=st.to(t.dtype))
        want, want_idx = fn(xt)
        got, idx = getattr(poolnd, f"fractional_max_pool{k}d")(
            _in_layout(x, cfg), kern, output_size=out, return_indices=True,
            _random_samples=samples, layout=cfg["layout"], engine=engine)
        np.testing.assert_array_equal(_out_cf(idx, cfg), want_idx.numpy())
        np.testing.assert_array_equal(_out_cf(got, cfg), want.numpy())
        if x.dtype != np.float16 and want.numel() and not np.isnan(x).any():
            layer = getattr(poolnd, f"FractionalMaxPool{k}d")(
                kern, output_size=out, _random_samples=samples, layout=cfg["layout"],
                engine=engine)
            _grad_check(layer, x, cfg, fn, xt, rng)


# ----------------------------------------------------------------------------------------------

def _unpool_cfg(rng):
    k = int(rng.integers(1, 4))
    cfg = _base(rng, k, min_size=2)
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    cfg["size"] = tuple(max(s, kk) for s, kk in zip(cfg["size"], kernel))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=k))
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    cfg.update(kernel=kernel, stride=stride, padding=padding)
    return cfg


@pytest.mark.parametrize("engine", _engines())
def test_max_unpool_vs_torch(engine):
    rng = np.random.default_rng(405)
    for i in range(CONFIGS[engine]):
        cfg = _unpool_cfg(rng)
        k = cfg["k"]
        x = _input(rng, cfg)
        kern, stride, pad = (as_torch_arg(cfg[a]) for a in ("kernel", "stride", "padding"))
        xt = _torch(x)
        pooled, ind = getattr(F, f"max_pool{k}d")(xt, kern, stride, pad, return_indices=True)
        # the pool's input size is one of the sizes the unpool may produce: ask for it
        out_size = cfg["size"] if rng.random() < 0.6 else None
        p_np = pooled.numpy().astype(x.dtype)
        fn_t = getattr(F, f"max_unpool{k}d")

        def fn(t):
            return fn_t(t, ind, kern, stride, pad, output_size=out_size)
        try:
            want = fn(pooled)
        except (RuntimeError, ValueError):
            with pytest.raises((ValueError, TypeError)):
                getattr(poolnd, f"max_unpool{k}d")(
                    _in_layout(p_np, cfg), _in_layout(ind.numpy(), cfg), kern, stride, pad,
                    output_size=out_size, layout=cfg["layout"], engine=engine)
            continue
        got = getattr(poolnd, f"max_unpool{k}d")(
            _in_layout(p_np, cfg), _in_layout(ind.numpy(), cfg), kern, stride, pad,
            output_size=out_size, layout=cfg["layout"], engine=engine)
        assert got.dtype == x.dtype
        _check(_out_cf(got, cfg), want, cfg["dtype"])
        if x.dtype != np.float16 and want.numel():
            layer = getattr(poolnd, f"MaxUnpool{k}d")(kern, stride, pad, layout=cfg["layout"],
                                                      engine=engine)
            z = layer.forward(_in_layout(p_np, cfg), _in_layout(ind.numpy(), cfg), out_size)
            dz = rng.standard_normal(z.shape).astype(x.dtype)
            dx = layer.backward(dz)
            pt = pooled.clone().requires_grad_(True)
            fn(pt).backward(_torch(np.ascontiguousarray(_out_cf(dz, cfg))))
            _check(_out_cf(dx, cfg), pt.grad, cfg["dtype"])


def test_unpool_repeated_indices_last_write_wins(engine, rng):
    """Repeated indices: PyTorch's CPU kernel writes them from several threads, so which value
    lands is unspecified there (seen: [1, 1, 1, 1] -> 2nd value). poolnd's rule is the last in
    row-major order, every time; checked against the independent oracle. The gradient (a
    gather) is deterministic in both and checked against autograd."""
    x = rng.standard_normal((2, 3, 3, 4))
    idx = rng.integers(0, 5, size=x.shape)            # many repeats in each 3x4 output plane
    got = poolnd.max_unpool2d(x, idx, 1, engine=engine)
    np.testing.assert_array_equal(got, naive_family.unpool(x, idx, (3, 4)))
    layer = poolnd.MaxUnpool2d(1, engine=engine)
    y = layer.forward(x, idx)
    dy = rng.standard_normal(y.shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    F.max_unpool2d(xt, torch.from_numpy(idx), 1).backward(
        torch.from_numpy(dy))
    np.testing.assert_array_equal(layer.backward(dy), xt.grad.numpy())


@pytest.mark.parametrize("shape", [(4, 8, 7, 7), (2, 3, 9, 13), (2, 2, 5, 6, 7), (3, 4, 40)])
def test_whole_plane_pools_vs_torch(engine, shape, rng):
    """Windows that are whole planes (global pools, adaptive pools to size 1) have their own
    kernels: values, indices (NaN, ties, signed zeros) and gradients against torch."""
    k = len(shape) - 2
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    x[x == 0] = -0.0
    x[0, 0].flat[::3] = np.abs(x[0, 0].flat[::3])
    x[1, 1].flat[5] = np.nan
    xt = torch.from_numpy(x)
    y, idx = getattr(poolnd, f"adaptive_max_pool{k}d")(x, 1, True, engine=engine)
    ty, ti = getattr(F, f"adaptive_max_pool{k}d")(xt, 1, True)
    np.testing.assert_array_equal(idx, ti.numpy())
    assert y.tobytes() == ty.numpy().tobytes()
    avg = getattr(F, f"adaptive_avg_pool{k}d")
    np.testing.assert_allclose(poolnd.global_avg_pool(x, engine=engine), avg(xt, 1).numpy(),
                               rtol=1e-6, equal_nan=True)
    xg = rng.standard_normal(shape).astype(np.float32)
    for cls, fn in ((f"AdaptiveMaxPool{k}d", getattr(F, f"adaptive_max_pool{k}d")),
                    (f"AdaptiveAvgPool{k}d", avg)):
        layer = getattr(poolnd, cls)(1, engine=engine)
        out = layer.forward(xg)
        dy = rng.standard_normal(out.shape).astype(np.float32)
        t = torch.from_numpy(xg).requires_grad_(True)
        fn(t, 1).backward(torch.from_numpy(dy))
        np.testing.assert_allclose(layer.backward(dy), t.grad.numpy(), rtol=1e-6, atol=1e-7)
