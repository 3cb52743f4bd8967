"""The layer contract: forward/backward shapes, dtypes and layouts, a saved pullback that each
forward overwrites, a clear error without one, torch's repr, read-only attributes, pickling."""
import pickle

import numpy as np
import pytest

import poolnd


def test_backward_matches_input_shape_dtype_layout(rng, fast_engine):
    x = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)             # NHWC
    layer = poolnd.MaxPool2d(3, stride=2, padding=1, layout="NHWC", engine=fast_engine)
    y = layer.forward(x)
    assert y.shape == (2, 4, 5, 3) and y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == x.dtype and dx.flags.c_contiguous
    ref = poolnd.MaxPool2d(3, stride=2, padding=1)
    ref.forward(x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(dx, ref.backward(np.ones((2, 3, 4, 5), np.float32))
                                  .transpose(0, 2, 3, 1))


def test_each_forward_overwrites_the_record(rng):
    layer = poolnd.AvgPool1d(2)
    layer.forward(rng.standard_normal((1, 1, 8)))
    layer.forward(rng.standard_normal((2, 3, 6)))
    assert layer.backward(np.ones((2, 3, 3))).shape == (2, 3, 6)


def test_return_indices_layer_returns_pair_and_backward_uses_record(rng):
    layer = poolnd.MaxPool2d(2, return_indices=True)
    x = rng.standard_normal((1, 2, 4, 4))
    y, idx = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    flat = dx.reshape(2, 16)
    for c in range(2):
        assert set(np.flatnonzero(flat[c])) == set(idx[0, c].ravel())


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="call forward"):
        poolnd.AvgPool2d(2).backward(np.zeros((1, 1, 2, 2)))


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="MaxPool2d: stride=0"):
        poolnd.MaxPool2d(2, stride=0)
    with pytest.raises(TypeError, match="AvgPool3d: kernel_size"):
        poolnd.AvgPool3d("3")


def test_repr_is_torch_s_with_poolnd_s_own_arguments_appended():
    assert repr(poolnd.MaxPool2d(3, stride=2, padding=1)) == \
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(poolnd.AvgPool1d(2, count_include_pad=False, layout="NWC")) == \
        "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,), layout='NWC')"
    assert repr(poolnd.Pool("sum", 2, spatial_dims=4)) == \
        "Pool(mode='sum', kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False, " \
        "spatial_dims=4)"
    layer = eval("poolnd." + repr(poolnd.MaxPool3d((1, 2, 2), dilation=2, layout="NDHWC")))
    assert isinstance(layer, poolnd.MaxPool3d)
    assert (layer.kernel_size, layer.dilation, layer.layout) == ((1, 2, 2), 2, "NDHWC")


def test_attributes_are_read_only_with_a_clear_error():
    layer = poolnd.MaxPool2d(3)
    with pytest.raises(AttributeError, match=r"MaxPool2d: stride=1 cannot be set"):
        layer.stride = 1
    assert layer.stride == 3
    assert not hasattr(poolnd.AdaptiveAvgPool2d(2), "stride")


def test_layers_pickle_with_their_record(rng):
    layer = poolnd.MaxPool2d(2, stride=1)
    x = rng.standard_normal((1, 2, 5, 5))
    y = layer.forward(x)
    clone = pickle.loads(pickle.dumps(layer))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(clone.backward(dy), layer.backward(dy))
    np.testing.assert_array_equal(clone.forward(x), y)


def test_layer_is_callable_like_torch(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    np.testing.assert_array_equal(poolnd.MaxPool2d(2)(x), poolnd.max_pool2d(x, 2))


def test_max_record_is_compact(rng):
    """The layer keeps a window-local argmax in the smallest int dtype, not int64 indices."""
    layer = poolnd.MaxPool2d(3, stride=2)
    layer.forward(rng.standard_normal((2, 3, 9, 9)))
    assert layer._saved.arg.dtype == np.int8
