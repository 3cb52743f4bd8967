"""Every engine equals the reference engine: max/min bit for bit (values, signed zeros, NaN,
indices), averages to float rounding, and the backward passes too."""
import numpy as np
import pytest

import poolnd
from conftest import FAST_ENGINES


def _nasty(rng, shape, dtype):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-3 if np.dtype(dtype).kind == "i" else 0, 4, size=shape).astype(dtype)
    x = rng.integers(-2, 3, size=shape).astype(dtype)          # many ties
    x[rng.random(shape) < 0.1] = np.nan
    x[rng.random(shape) < 0.05] = -np.inf
    x[rng.random(shape) < 0.05] = np.inf
    x[rng.random(shape) < 0.1] = -0.0                          # signed-zero ties
    return x


def _case(rng):
    k = int(rng.integers(1, 4))
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=k))
    size = tuple(int(v) for v in rng.integers(2, 6, size=k))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=k))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=k))
    padding = rng.choice(["same", "pairs", "int"])
    if padding == "pairs":
        padding = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(k))
    elif padding == "int":
        padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
    else:
        padding = str(padding)
    return k, kernel, size, stride, dilation, padding, bool(rng.random() < 0.5)


@pytest.mark.parametrize("engine", FAST_ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int16", "uint8", "int64"])
@pytest.mark.parametrize("seed", range(4))
def test_engines_agree_with_reference(engine, dtype, seed):
    rng = np.random.default_rng([seed, len(dtype)])
    for _ in range(6):
        k, kernel, size, stride, dilation, padding, ceil = _case(rng)
        x = _nasty(rng, (2, 2) + size, dtype)
        for mode in ("max", "min", "avg", "sum"):
            kw = dict(spatial_dims=k, dilation=dilation, ceil_mode=ceil)
            if mode in ("max", "min"):
                kw["return_indices"] = True
            if mode == "avg":
                kw["count_include_pad"] = padding != "same"
            try:
                ref_layer = poolnd.Pool(mode, kernel, stride, padding, engine="reference", **kw)
                ref = ref_layer.forward(x)
            except ValueError:
                with pytest.raises(ValueError):
                    poolnd.pool(x, mode, kernel, stride, padding, engine=engine, **kw)
                continue
            layer = poolnd.Pool(mode, kernel, stride, padding, engine=engine, **kw)
            out = layer.forward(x)
            if mode in ("max", "min"):
                np.testing.assert_array_equal(out[0], ref[0])
                np.testing.assert_array_equal(np.signbit(out[0]), np.signbit(ref[0]))
                np.testing.assert_array_equal(out[1], ref[1])
                y = out[0]
            elif x.dtype.kind in "iu":                  # integers: bit for bit
                assert out.dtype == ref.dtype
                np.testing.assert_array_equal(out, ref)
                y = out
            else:
                np.testing.assert_allclose(out.astype(float), ref.astype(float), rtol=1e-6,
                                           atol=1e-6 if dtype != "float16" else 1e-3)
                y = out
            dy = rng.integers(-3, 4, size=y.shape).astype(dtype)
            if x.dtype.kind in "iu":                    # no gradient of an integer forward
                for lay in (layer, ref_layer):
                    with pytest.raises(TypeError, match="gradients need a floating input"):
                        lay.backward(dy)
                continue
            if mode in ("avg", "sum") and not np.isfinite(x).all():
                continue
            np.testing.assert_allclose(layer.backward(dy).astype(float),
                                       ref_layer.backward(dy).astype(float), rtol=1e-6,
                                       atol=1e-6 if dtype != "float16" else 1e-2)
