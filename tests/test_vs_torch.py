"""Differential tests against PyTorch 2.13 (the oracle): values, shapes, indices and the layers'
backward, on seeded random configurations across ops, 1-3 spatial dims, every option, dtypes and
layouts. Where torch rejects a configuration, poolnd must reject it too."""
import numpy as np
import pytest

import poolnd
from helpers import (as_torch_arg, from_layout, make_input, random_config, to_layout)

torch = pytest.importorskip("torch")
F = torch.nn.functional

CHUNKS = 30          # x CONFIGS_PER_CHUNK configs per op family and engine
CONFIGS_PER_CHUNK = 20

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-5),
       "float16": dict(rtol=2e-3, atol=4e-3)}


def _torch_call(mode, cfg, xt, want_indices=False):
    k, kern = cfg["k"], as_torch_arg(cfg["kernel"])
    stride = None if cfg["stride"] is None else as_torch_arg(cfg["stride"])
    pad = as_torch_arg(cfg["padding"])
    if mode == "max":
        fn = getattr(F, f"max_pool{k}d")
        return fn(xt, kern, stride, pad, as_torch_arg(cfg["dilation"]), cfg["ceil_mode"],
                  return_indices=want_indices)
    if k == 1 and cfg["divisor_override"] is not None:
        # F.avg_pool1d has no divisor_override: pool a (.., 1, W) plane in 2-d
        y = F.avg_pool2d(xt.unsqueeze(-2), (1, cfg["kernel"][0]),
                         None if stride is None else (1, cfg["stride"][0]), (0, cfg["padding"][0]),
                         cfg["ceil_mode"], cfg["count_include_pad"], cfg["divisor_override"])
        return y.squeeze(-2)
    fn = getattr(F, f"avg_pool{k}d")
    args = (xt, kern, stride, pad, cfg["ceil_mode"], cfg["count_include_pad"])
    if k > 1:
        args += (cfg["divisor_override"],)
    return fn(*args)


def _ours(mode, cfg, x, engine, layer=False):
    k = cfg["k"]
    common = dict(stride=None if cfg["stride"] is None else as_torch_arg(cfg["stride"]),
                  padding=as_torch_arg(cfg["padding"]), ceil_mode=cfg["ceil_mode"],
                  layout=cfg["layout"], engine=engine)
    if mode == "max":
        common.update(dilation=as_torch_arg(cfg["dilation"]), return_indices=True)
        if layer:
            return getattr(poolnd, f"MaxPool{k}d")(as_torch_arg(cfg["kernel"]), **common)
        return getattr(poolnd, f"max_pool{k}d")(x, as_torch_arg(cfg["kernel"]), **common)
    common.update(count_include_pad=cfg["count_include_pad"],
                  divisor_override=cfg["divisor_override"])
    if layer:
        return getattr(poolnd, f"AvgPool{k}d")(as_torch_arg(cfg["kernel"]), **common)
    return getattr(poolnd, f"avg_pool{k}d")(x, as_torch_arg(cfg["kernel"]), **common)


def _empty_windows(cfg, out_shape):
    """Windows holding no input element (dilated max only; torch's index there is garbage)."""
    k = cfg["k"]
    s = cfg["stride"] or cfg["kernel"]
    masks = []
    for d in range(k):
        o = np.arange(out_shape[-k + d])[:, None]
        pos = o * s[d] - cfg["padding"][d] + np.arange(cfg["kernel"][d])[None] * cfg["dilation"][d]
        masks.append(((pos >= 0) & (pos < cfg["size"][d])).any(1))
    full = masks[0]
    for m in masks[1:]:
        full = np.logical_and.outer(full, m)
    return ~np.broadcast_to(full, out_shape)


def check_config(mode, cfg, rng, engine):
    x_cf = make_input(rng, cfg)
    torch_dtype = "float32" if (mode == "avg" and cfg["dtype"] == "float16") else cfg["dtype"]
    xt = torch.from_numpy(x_cf.astype(torch_dtype)).requires_grad_(True)
    x = to_layout(x_cf, cfg["layout"] or ("NC" if cfg["batched"] else "C") + "DHW"[-cfg["k"]:],
                  cfg["k"]) if cfg["layout"] else x_cf
    if rng.random() < 0.5:
        x = np.ascontiguousarray(x)
    x.flags.writeable = False
    before = x.copy()
    try:
        ref = _torch_call(mode, cfg, xt, want_indices=True)
    except RuntimeError as e:
        if "not implemented for 'Half'" in str(e):          # torch lacks f16 avg_pool3d
            xt = torch.from_numpy(x_cf.astype("float32")).requires_grad_(True)
            ref = _torch_call(mode, cfg, xt, want_indices=True)
        else:
            with pytest.raises((ValueError, TypeError)):
                _ours(mode, cfg, x, engine)
            return "rejected"
    layer = _ours(mode, cfg, x, engine, layer=True)
    out = layer.forward(x)
    func_out = _ours(mode, cfg, x, engine)
    lay = cfg["layout"]
    unlay = (lambda a: from_layout(a, lay, cfg["k"])) if lay else (lambda a: a)
    if mode == "max":
        (y, idx), (fy, fidx) = out, func_out
        ref_y, ref_idx = ref
        ref_y, ref_idx = ref_y.detach().numpy(), ref_idx.numpy()
        np.testing.assert_array_equal(unlay(y), ref_y)        # bit for bit (NaN-free here)
        ok = ~_empty_windows(cfg, ref_y.shape)
        np.testing.assert_array_equal(unlay(idx)[ok], ref_idx[ok])
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(fy, y)
        np.testing.assert_array_equal(fidx, idx)
    else:
        y = out
        ref_y = ref.detach().numpy()
        assert unlay(y).shape == ref_y.shape
        np.testing.assert_allclose(unlay(y).astype("float64"), ref_y, **TOL[cfg["dtype"]])
        np.testing.assert_array_equal(func_out, y)
    assert y.dtype == x.dtype
    if mode == "max" and not ok.all():
        # a window wholly in padding: torch routes its gradient to a position outside the window;
        # poolnd routes none (tested in test_edge_cases)
        return "ok"
    # backward: the layer against torch autograd
    dy_cf = rng.standard_normal(ref_y.shape).astype(cfg["dtype"])
    dy = to_layout(dy_cf, lay, cfg["k"]) if lay else dy_cf
    dx = layer.backward(dy)
    ref_y_t = ref[0] if mode == "max" else ref
    ref_y_t.backward(torch.from_numpy(dy_cf.astype(str(xt.dtype).split(".")[1])))
    assert dx.shape == x.shape and dx.dtype == x.dtype
    np.testing.assert_allclose(unlay(dx).astype("float64"), xt.grad.numpy(), **TOL[cfg["dtype"]])
    np.testing.assert_array_equal(x, before)                  # input never modified
    return "ok"


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_random_configs(mode, chunk, fast_engine):
    rng = np.random.default_rng([chunk, 0 if mode == "max" else 1])
    seen = []
    for _ in range(CONFIGS_PER_CHUNK):
        cfg = random_config(rng, mode)
        seen.append(check_config(mode, cfg, rng, fast_engine))
    assert seen.count("ok") >= CONFIGS_PER_CHUNK // 2     # the grid mostly exercises real pools


@pytest.mark.parametrize("chunk", range(6))
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_random_configs_reference_engine(mode, chunk):
    rng = np.random.default_rng([chunk, 7 if mode == "max" else 8])
    for _ in range(8):
        cfg = random_config(rng, mode, max_size=4)
        cfg["n"] = min(cfg["n"], 2)
        check_config(mode, cfg, rng, "reference")
