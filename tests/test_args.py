"""Bad input: every case raises ValueError/TypeError naming the argument; whatever torch rejects,
poolnd rejects (reject parity), for the functional ops and the layers alike."""
import numpy as np
import pytest

import poolnd

torch = pytest.importorskip("torch")
F = torch.nn.functional

X4 = np.arange(16.0).reshape(1, 1, 4, 4)
X3 = X4[0]

# (id, op name, args, kwargs, expected exception type, text the message must contain)
REJECTED_BY_TORCH = [
    ("kernel 0", "max_pool2d", (X4, 0), {}, ValueError, "kernel_size=0 must be >= 1"),
    ("stride 0", "max_pool2d", (X4, 2, 0), {}, ValueError, "stride=0 must be >= 1"),
    ("negative stride", "avg_pool2d", (X4, 2, -1), {}, ValueError, "stride=-1"),
    ("dilation 0", "max_pool2d", (X4, 2, 1, 0, 0), {}, ValueError, "dilation=0"),
    ("negative padding", "max_pool2d", (X4, 2, 1, -1), {}, ValueError, "padding=-1"),
    ("padding > half kernel", "max_pool2d", (X4, 2, 2, 2), {}, ValueError,
     "at most half the kernel"),
    ("padding > half kernel, dilated", "max_pool2d", (X4, 3, 1, 2, 2), {}, ValueError,
     "at most half the kernel"),
    ("avg padding > half kernel", "avg_pool2d", (X4, 2, 1, 2), {}, ValueError, "padding=2"),
    ("1d padding > half kernel", "max_pool1d", (X3, 2, 1, 2), {}, ValueError, "padding=2"),
    ("3d padding > half kernel", "max_pool3d", (X4, 2, 1, 2), {}, ValueError, "padding=2"),
    ("output too small", "max_pool2d", (X4, 5), {}, ValueError, "too small"),
    ("avg output too small", "avg_pool2d", (X4, 5), {}, ValueError, "too small"),
    ("kernel tuple too long", "max_pool2d", (X4, (2, 2, 2)), {}, ValueError,
     "kernel_size=(2, 2, 2) must be a single int or a tuple of 2 ints"),
    ("3d kernel tuple of 2", "max_pool3d", (X4[None], (1, 1)), {}, ValueError, "kernel_size"),
    ("stride tuple wrong length", "max_pool2d", (X4, 2, (1, 1, 1)), {}, ValueError, "stride"),
    ("padding tuple wrong length", "avg_pool2d", (X4, 2, 2, (0, 0, 0)), {}, ValueError,
     "padding"),
    ("float kernel", "max_pool2d", (X4, 2.0), {}, TypeError, "kernel_size"),
    ("float stride", "avg_pool2d", (X4, 2, 1.5), {}, TypeError, "stride"),
    ("2-d input to 2-d pool", "max_pool2d", (X4[0, 0], 2), {}, ValueError, "got 2-D"),
    ("5-d input to 2-d pool", "max_pool2d", (X4[None], 2), {}, ValueError, "got 5-D"),
    ("4-d input to 1-d pool", "max_pool1d", (X4, 2), {}, ValueError, "got 4-D"),
    ("empty channels", "max_pool2d", (X4[:, :0], 2), {}, ValueError, "empty channel"),
    ("empty channels unbatched", "avg_pool2d", (X3[:0], 2), {}, ValueError, "empty channel"),
    ("empty spatial", "max_pool2d", (X4[:, :, :0], 2), {}, ValueError, "empty spatial"),
    ("empty channels 1d", "max_pool1d", (X3[:, :0], 1), {}, ValueError, "empty channel"),
    ("empty channels 3d", "max_pool3d", (X4[:, :0, None], 1), {}, ValueError, "empty channel"),
    ("divisor_override 0", "avg_pool2d", (X4, 2), {"divisor_override": 0}, ValueError,
     "divisor_override=0"),
    ("bool input", "max_pool2d", (X4 > 3, 2), {}, TypeError, "dtype bool"),
    ("complex input", "max_pool2d", (X4.astype(np.complex64), 2), {}, TypeError, "complex64"),
    ("ceil_mode int", "max_pool2d", (X4, 2), {"ceil_mode": 2}, TypeError, "ceil_mode"),
    ("avg_pool3d input smaller than kernel", "avg_pool3d", (np.zeros((1, 1, 3, 3, 4)), 4),
     {"padding": 2}, ValueError, "at least kernel_size"),
    ("1d stride 0", "avg_pool1d", (X3, 2, 0), {}, ValueError, "stride=0"),
    ("1d kernel 0", "max_pool1d", (X3, 0), {}, ValueError, "kernel_size=0"),
    ("ceil output too small", "max_pool1d", (X3[:1, :1, :2], 4, 1, 0, 1, True), {}, ValueError,
     "too small"),
]


def _to_torch(a):
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("case", REJECTED_BY_TORCH, ids=[c[0] for c in REJECTED_BY_TORCH])
def test_reject_parity(case):
    _, name, args, kwargs, exc, text = case
    with pytest.raises((RuntimeError, TypeError, ValueError, NotImplementedError)):
        getattr(F, name)(*[_to_torch(a) for a in args], **kwargs)
    with pytest.raises(exc) as info:
        getattr(poolnd, name)(*args, **kwargs)
    assert str(info.value).startswith(name + ": ")
    assert text in str(info.value)


LAYER_OF = {"max_pool1d": "MaxPool1d", "max_pool2d": "MaxPool2d", "max_pool3d": "MaxPool3d",
            "avg_pool1d": "AvgPool1d", "avg_pool2d": "AvgPool2d", "avg_pool3d": "AvgPool3d"}


@pytest.mark.parametrize("case", REJECTED_BY_TORCH, ids=[c[0] for c in REJECTED_BY_TORCH])
def test_layers_reject_the_same(case):
    _, name, args, kwargs, exc, text = case
    cls = getattr(poolnd, LAYER_OF[name])
    ctor_args = list(args[1:])
    if name.startswith("max") and len(ctor_args) >= 5:     # torch.nn order: return_indices first
        ctor_args[4:4] = [False]
    with pytest.raises(exc) as info:
        cls(*ctor_args, **kwargs).forward(args[0])
    assert text in str(info.value)


POOLND_ONLY = [
    ("layout bad letters", lambda: poolnd.max_pool2d(X4, 2, layout="NCH1"), ValueError,
     "layout='NCH1' must be distinct upper-case letters"),
    ("layout lower case", lambda: poolnd.max_pool2d(X4, 2, layout="nchw"), ValueError,
     "upper-case"),
    ("layout repeated letter", lambda: poolnd.max_pool2d(X4, 2, layout="NCHH"), ValueError,
     "distinct"),
    # section 6: 'C' may be left out, but every other letter is spatial (3 here, for a 2-d op)
    ("layout spatial count", lambda: poolnd.max_pool2d(X4, 2, layout="NHWD"), ValueError,
     "names 3 spatial axes ('HWD'), but the op pools 2 spatial dims"),
    ("layout axis count", lambda: poolnd.max_pool2d(X3, 2, layout="NCHW"), ValueError,
     "drop 'N'"),
    ("layout not str", lambda: poolnd.max_pool2d(X4, 2, layout=4), TypeError, "layout"),
    ("padding string", lambda: poolnd.max_pool2d(X4, 2, padding="full"), ValueError,
     "padding='full'"),
    ("pairs count", lambda: poolnd.max_pool2d(X4, 2, padding=((1, 1),)), ValueError,
     "exactly 2 pairs"),
    ("negative pair", lambda: poolnd.avg_pool2d(X4, 2, padding=((1, -1), (0, 0))), ValueError,
     ">= 0"),
    ("float pair", lambda: poolnd.avg_pool2d(X4, 2, padding=((1.0, 1), (0, 0))), TypeError,
     "(before, after)"),
    ("engine unknown", lambda: poolnd.max_pool2d(X4, 2, engine="cuda"), ValueError,
     "engine='cuda'"),
    ("mode unknown", lambda: poolnd.pool(X4, "mean", 2, spatial_dims=2), ValueError,
     "mode='mean'"),
    ("indices with avg", lambda: poolnd.pool(X4, "avg", 2, spatial_dims=2, return_indices=True),
     ValueError, "return_indices"),
    ("divisor with max", lambda: poolnd.pool(X4, "max", 2, spatial_dims=2, divisor_override=2),
     ValueError, "divisor_override"),
    ("spatial_dims 0", lambda: poolnd.pool(X4, "max", 2, spatial_dims=0), ValueError,
     "spatial_dims=0"),
    ("object input", lambda: poolnd.max_pool2d(np.array([[["a"]]], dtype=object), 1), TypeError,
     "dtype object"),
    ("string dtype", lambda: poolnd.max_pool1d(np.array([["ab"]]), 1), TypeError, "dtype <U2"),
    ("float128", lambda: poolnd.max_pool1d(np.zeros((1, 2), np.longdouble), 1), TypeError,
     "float128"),
    ("ragged input", lambda: poolnd.max_pool1d([[1.0, 2.0], [3.0]], 1), TypeError, "input"),
    ("empty window avg", lambda: poolnd.avg_pool1d(X3, 1, 1, ((2, 0),), count_include_pad=False),
     ValueError, "count_include_pad=False"),
    ("global pool of 1-d", lambda: poolnd.global_avg_pool(np.zeros(3)), ValueError,
     "at least one spatial dim"),
    ("backward dy shape", lambda: _backward_wrong_shape(), ValueError, "dy of shape"),
    ("backward before forward", lambda: poolnd.MaxPool2d(2).backward(X4), RuntimeError,
     "call forward"),
]


def _backward_wrong_shape():
    layer = poolnd.MaxPool2d(2)
    layer.forward(X4)
    layer.backward(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("case", POOLND_ONLY, ids=[c[0] for c in POOLND_ONLY])
def test_poolnd_specific_errors(case):
    _, fn, exc, text = case
    with pytest.raises(exc) as info:
        fn()
    assert text in str(info.value), str(info.value)


def test_errors_survive_python_O():
    """Checks use no assert: the same error under ``python -O``."""
    import subprocess
    import sys
    code = ("import numpy as np, poolnd\n"
            "try:\n    poolnd.max_pool2d(np.zeros((1, 1, 4, 4)), 2, 0)\n"
            "except ValueError as e:\n    print('ok', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert out.stdout.startswith("ok max_pool2d: stride=0")


# The two contract gaps of API.md section 5, the other way round: inputs poolnd once rejected and
# now computes, equal to PyTorch (lp with norm_type < 0) or to ONNX's rule as pool() applies it
# (avg_pool3d with string or pair padding on an input smaller than the kernel).
X5 = np.random.default_rng(5).random((1, 2, 3, 3, 4)) + 0.1
ACCEPTED_NOW = [
    ("lp norm_type -1", lambda m: m.lp_pool2d(X4 + 1, -1.0, 2),
     lambda: F.lp_pool2d(torch.from_numpy(X4 + 1), -1.0, 2).numpy()),
    ("lp norm_type -2.5 ceil", lambda m: m.lp_pool1d(X3 + 1, -2.5, 3, 2, True),
     lambda: F.lp_pool1d(torch.from_numpy(X3 + 1), -2.5, 3, 2, True).numpy()),
    ("avg_pool3d same, input < kernel", lambda m: m.avg_pool3d(X5, 4, 1, "same"),
     lambda: poolnd.pool(X5, "avg", 4, 1, "same", spatial_dims=3)),
    ("avg_pool3d pairs, input < kernel",
     lambda m: m.AvgPool3d(4, 1, ((2, 1), (1, 2), (0, 0)), count_include_pad=False).forward(X5),
     lambda: poolnd.pool(X5, "avg", 4, 1, ((2, 1), (1, 2), (0, 0)), spatial_dims=3,
                         count_include_pad=False)),
]


@pytest.mark.parametrize("case", ACCEPTED_NOW, ids=[c[0] for c in ACCEPTED_NOW])
def test_contract_gaps_now_accepted(case):
    _, call, oracle = case
    np.testing.assert_allclose(call(poolnd), oracle(), rtol=1e-12)
