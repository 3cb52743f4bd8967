"""Gradients that can't lie: float64 centred finite differences on tie-free inputs, and for the
linear ops (avg, sum) the exact adjoint identity <pool(x), g> == <x, backward(g)>."""
import numpy as np
import pytest

import poolnd

CASES = [  # (k, kernel, stride, padding, dilation, ceil_mode, layout)
    (1, 3, 2, 1, 1, False, None),
    (1, 2, 1, ((0, 2),), 2, True, "NWC"),
    (2, 3, 2, 1, 1, True, None),
    (2, (2, 3), (1, 2), "same", (2, 1), False, "NHWC"),
    (2, 2, 2, 0, 1, False, "HWCN"),
    (3, 2, 1, ((1, 0), (0, 1), (1, 1)), 1, True, None),
    (3, (1, 2, 3), (1, 2, 1), "same_lower", 1, False, "NDHWC"),
]


def _tie_free(rng, shape):
    """Distinct values at least 1e-2 apart, so a 1e-6 nudge never changes an argmax."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 1e-2 + rng.uniform(0, 1e-3, n)).reshape(shape)


def _shape(k, layout, rng):
    sizes = dict(N=2, C=2, D=4, H=5, W=6)
    layout = layout or "NC" + "DHW"[-k:]
    return tuple(sizes[c] for c in layout)


@pytest.mark.parametrize("mode", ["max", "min", "avg", "sum"])
@pytest.mark.parametrize("case", CASES)
def test_finite_differences(mode, case, rng, fast_engine):
    k, kernel, stride, padding, dilation, ceil, layout = case
    x = _tie_free(rng, _shape(k, layout, rng))
    layer = poolnd.Pool(mode, kernel, stride, padding, dilation, ceil, spatial_dims=k,
                        layout=layout, engine=fast_engine)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    f = lambda z: float(np.sum(poolnd.pool(z, mode, kernel, stride, padding, dilation, ceil,
                                           spatial_dims=k, layout=layout) * g))
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        num[i] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_adjoint_identity_of_linear_ops(case, count_include_pad, rng, engine):
    k, kernel, stride, padding, dilation, ceil, layout = case
    x = rng.standard_normal(_shape(k, layout, rng))
    for mode, extra in (("avg", dict(count_include_pad=count_include_pad)),
                        ("avg", dict(divisor_override=3)), ("sum", {})):
        layer = poolnd.Pool(mode, kernel, stride, padding, dilation, ceil, spatial_dims=k,
                            layout=layout, engine=engine, **extra)
        y = layer.forward(x)
        g = rng.standard_normal(y.shape)
        lhs = np.vdot(y, g)
        rhs = np.vdot(x, layer.backward(g))
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_overlapping_windows_accumulate(fast_engine):
    """k=3, s=1: the centre of a 3x3 input with its max there is chosen by every window."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    layer = poolnd.MaxPool2d(3, stride=1, padding=1, engine=fast_engine)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert dx[0, 0, 1, 1] == 9.0 and dx.sum() == 9.0
