"""Layers read like torch.nn: every attribute of the torch.nn layer has torch's value (and type),
and repr is torch's string with poolnd's own non-default arguments appended."""
import inspect
import pickle

import numpy as np
import pytest

import poolnd

torch = pytest.importorskip("torch")

INF = float("inf")
ARGS = {  # layer family -> spread of (args, kwargs) that torch.nn's class takes too
    "MaxPool": [((3,), {}), ((3, 2), {}), ((3, None, 1), {"ceil_mode": True}),
                ((2,), {"dilation": 2, "return_indices": True}), (([2, 3],), {"stride": [1, 2]}),
                (((2, 3),), {"padding": (1, 0), "dilation": (1, 2)})],
    "AvgPool": [((3,), {}), ((3, 2, 1), {}), ((2,), {"ceil_mode": True}),
                ((3,), {"stride": None, "count_include_pad": False}), (((2,),), {"stride": (1,)}),
                ((3, 1), {"padding": 1, "ceil_mode": True, "count_include_pad": False})],
    "LPPool": [((2, 3), {}), ((2.0, 3, 2), {}), ((INF, 2), {}), ((1.5, 2), {"ceil_mode": True}),
               ((3, [2, 1]), {"stride": (1, 2)}), ((-1.0, 2, None, True), {})],
    "AdaptiveMaxPool": [((3,), {}), ((1,), {"return_indices": True}), (((2, None),), {}),
                        (([4, 2],), {})],
    "AdaptiveAvgPool": [((3,), {}), (((None, 2),), {}), (([1, 5],), {}), (((None, None),), {})],
    "MaxUnpool": [((2,), {}), ((2, 1), {}), ((3, 2, 1), {}), (([2, 3],), {"stride": [2, 1]}),
                  ((2,), {"stride": None, "padding": 0})],
    "FractionalMaxPool": [((2,), {"output_size": 3}), ((2,), {"output_ratio": 0.5}),
                          (((2, 3),), {"output_size": (4, 5)}),
                          ((2, None, 0.7, True), {}), ((3,), {"output_size": [4, 4],
                                                           "return_indices": True})],
}
CLASSES = {  # torch.nn class name -> family
    f"{fam}{k}d": fam for fam, ks in [("MaxPool", (1, 2, 3)), ("AvgPool", (1, 2, 3)),
                                     ("LPPool", (1, 2, 3)), ("AdaptiveMaxPool", (1, 2, 3)),
                                     ("AdaptiveAvgPool", (1, 2, 3)), ("MaxUnpool", (1, 2, 3)),
                                     ("FractionalMaxPool", (2, 3))] for k in ks}
# poolnd's own arguments of each family, one non-default value each, as the repr shows them
EXTRAS = {
    "MaxPool": {"layout": "channels_last", "engine": "numpy"},
    "AvgPool": {"dilation": 2, "layout": "channels_last", "engine": "numpy"},
    "LPPool": {"dilation": 2, "layout": "channels_last", "engine": "reference"},
    "AdaptiveMaxPool": {"layout": "channels_last", "engine": "numpy"},
    "AdaptiveAvgPool": {"layout": "channels_last", "engine": "numpy"},
    "MaxUnpool": {"layout": "channels_last", "engine": "numpy"},
    "FractionalMaxPool": {"layout": "channels_last", "engine": "numpy"},
}


def _fit(value, k):
    """A spread value for a ``k``-d class: tuples and lists of length 2 cut or grown to k."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        vals = (list(value) * 2)[:k]
        return type(value)(vals)
    return value


def _cases():
    for name, fam in CLASSES.items():
        k = int(name[-2])
        for args, kwargs in ARGS[fam]:
            if fam == "AvgPool" and k == 3 and kwargs.get("stride") == (1,):
                continue                                    # torch's 3-d form takes 1 or 3
            yield pytest.param(name, tuple(_fit(a, k) for a in args),
                               {key: _fit(v, k) for key, v in kwargs.items()},
                               id=f"{name}-{args}-{sorted(kwargs.items())}")


def _torch_attrs(layer):
    """The attributes of a torch.nn pooling layer: its constructor arguments, as it stores them."""
    names = [p for p in inspect.signature(type(layer).__init__).parameters if p != "self"]
    return {n: getattr(layer, n) for n in names}


def _channels_last(k):
    return "N" + ("DHW"[-k:] if k > 1 else "W") + "C"


def _torch_repr_with(t_repr, extras):
    if not extras:
        return t_repr
    inner = t_repr[t_repr.index("(") + 1:-1]
    parts = ([inner] if inner else []) + [f"{k}={v!r}" for k, v in extras.items()]
    return f"{t_repr[:t_repr.index('(')]}({', '.join(parts)})"


def _expected_repr(name, t):
    if name.startswith("Fractional"):     # torch shows nothing; poolnd its window arguments
        return (f"{name}(kernel_size={t.kernel_size}, output_size={t.output_size}, "
                f"output_ratio={t.output_ratio})")
    return repr(t)


def _same(ours, theirs):
    if isinstance(theirs, torch.Tensor):
        return isinstance(ours, np.ndarray) and np.array_equal(ours, theirs.numpy())
    return type(ours) is type(theirs) and ours == theirs


@pytest.mark.parametrize("name, args, kwargs", list(_cases()))
def test_attributes_and_repr_equal_torch_s(name, args, kwargs):
    t = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(poolnd, name)(*args, **kwargs)
    theirs = _torch_attrs(t)
    assert theirs, name
    for attr, value in theirs.items():
        assert _same(getattr(ours, attr), value), (attr, getattr(ours, attr), value)
    assert repr(ours) == _expected_repr(name, t)


@pytest.mark.parametrize("name, args, kwargs", list(_cases()))
def test_poolnd_s_own_arguments_are_appended(name, args, kwargs):
    fam, k = CLASSES[name], int(name[-2])
    extras = {key: (_channels_last(k) if v == "channels_last" else v)
              for key, v in EXTRAS[fam].items()}
    t = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(poolnd, name)(*args, **kwargs, **extras)
    for attr, value in _torch_attrs(t).items():
        assert _same(getattr(ours, attr), value), attr
    for attr, value in extras.items():
        assert getattr(ours, attr) == value
    assert repr(ours) == _torch_repr_with(_expected_repr(name, t), extras)


def test_default_valued_own_arguments_are_not_shown():
    assert repr(poolnd.AvgPool2d(2, dilation=1, layout=None, engine=None)) == \
        repr(torch.nn.AvgPool2d(2))
    assert repr(poolnd.AvgPool1d(2, divisor_override=None)) == repr(torch.nn.AvgPool1d(2))


def test_own_arguments_torch_lacks():
    """AvgPool1d's divisor_override and the fractional rng are poolnd's; shown in the same style."""
    assert repr(poolnd.AvgPool1d(2, divisor_override=3)) == \
        "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,), divisor_override=3)"
    assert poolnd.AvgPool1d(2, divisor_override=3).divisor_override == 3
    assert not hasattr(torch.nn.AvgPool1d(2), "divisor_override")
    layer = poolnd.FractionalMaxPool2d(2, output_size=3, rng=np.random.default_rng(0))
    assert repr(layer) == ("FractionalMaxPool2d(kernel_size=(2, 2), output_size=(3, 3), "
                           "output_ratio=None, rng=Generator(PCG64))")
    assert isinstance(layer.rng, np.random.Generator)


def test_random_samples_attribute_is_the_given_array():
    samples = np.random.default_rng(0).random((1, 2, 2))
    t = torch.nn.FractionalMaxPool2d(2, output_size=3, _random_samples=torch.tensor(samples))
    ours = poolnd.FractionalMaxPool2d(2, output_size=3, _random_samples=samples)
    assert _same(ours._random_samples, t._random_samples)
    assert poolnd.FractionalMaxPool2d(2, output_size=3)._random_samples is None


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_torch_attribute_is_read_only(name):
    args, kwargs = ARGS[CLASSES[name]][0]
    layer = getattr(poolnd, name)(*args, **kwargs)
    for attr, value in _torch_attrs(getattr(torch.nn, name)(*args, **kwargs)).items():
        with pytest.raises(AttributeError, match=rf"{name}: {attr}=.* cannot be set"):
            setattr(layer, attr, value)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_attributes_are_torch_s_plus_poolnd_s_own_arguments(name):
    """An attribute torch's class lacks exists only as one of poolnd's own arguments."""
    args, kwargs = ARGS[CLASSES[name]][0]
    layer = getattr(poolnd, name)(*args, **kwargs)
    t = getattr(torch.nn, name)(*args, **kwargs)
    own = (set(inspect.signature(type(layer).__init__).parameters)
           - set(inspect.signature(type(t).__init__).parameters))
    for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                 "count_include_pad", "divisor_override", "norm_type", "output_size",
                 "output_ratio", "layout", "engine", "rng"):
        assert hasattr(layer, attr) == (hasattr(t, attr) or attr in own), attr


def test_pool_layer_reads_like_max_pool():
    layer = poolnd.Pool("lp", 3, 2, spatial_dims=4, norm_type=2, layout="NXYZWC")
    assert (layer.mode, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
            layer.ceil_mode, layer.spatial_dims, layer.norm_type) == ("lp", 3, 2, 0, 1, False,
                                                                      4, 2)
    assert repr(layer) == ("Pool(mode='lp', kernel_size=3, stride=2, padding=0, dilation=1, "
                           "ceil_mode=False, spatial_dims=4, norm_type=2, layout='NXYZWC')")
    assert poolnd.Pool("max", (2, 3), spatial_dims=2).stride == (2, 3)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_docstring_says_what_a_layer_keeps(name):
    doc = getattr(poolnd, name).__doc__
    assert "last forward only" in doc and ":func:`poolnd.vjp`" in doc


def test_layers_pickle_with_attributes_and_pullback():
    layer = poolnd.LPPool2d(2, 3, layout="NHWC")
    x = np.random.default_rng(1).random((1, 6, 6, 2))
    y = layer.forward(x)
    clone = pickle.loads(pickle.dumps(layer))
    assert repr(clone) == repr(layer) and clone.kernel_size == 3
    assert np.array_equal(clone.backward(np.ones_like(y)), layer.backward(np.ones_like(y)))
