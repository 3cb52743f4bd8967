"""A small convolutional network in NumPy, for the demo: conv -> ReLU -> max pool -> conv -> ReLU
-> max pool -> linear -> softmax cross-entropy, trained with Adam.

Arrays are channels-last (``(N, H, W, C)``): a convolution is then one matrix product over
``(N*H*W, 3*3*C)`` patches, and poolnd pools the same arrays in place (``layout="NHWC"``). The
pooling layers are poolnd's public layers, with their own forward and backward; the conv and
linear layers here are deliberately plain and are not part of poolnd's API.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import poolnd


class Conv2d:
    """A ``k x k`` convolution with zero padding ``k // 2`` (same size), stride 1, bias."""

    def __init__(self, c_in: int, c_out: int, k: int, rng, dtype=np.float32):
        scale = np.sqrt(2.0 / (k * k * c_in))                        # He initialization
        self.w = (rng.standard_normal((k * k * c_in, c_out)) * scale).astype(dtype)
        self.b = np.zeros(c_out, dtype=dtype)
        self.k = k
        self.params = [self.w, self.b]

    def _patches(self, x):
        p = self.k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        win = sliding_window_view(xp, (self.k, self.k), axis=(1, 2))    # N, H, W, C, k, k
        n, h, w, c = x.shape
        return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, self.k * self.k * c)

    def forward(self, x):
        self.x_shape = x.shape
        self.cols = self._patches(x)
        n, h, w, _ = x.shape
        return (self.cols @ self.w + self.b).reshape(n, h, w, -1)

    def backward(self, dy):
        n, h, w, c = self.x_shape
        g = dy.reshape(n * h * w, -1)
        self.grads = [self.cols.T @ g, g.sum(axis=0)]
        dcols = (g @ self.w.T).reshape(n, h, w, self.k, self.k, c)
        p = self.k // 2
        dxp = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=dy.dtype)
        for i in range(self.k):
            for j in range(self.k):
                dxp[:, i:i + h, j:j + w, :] += dcols[:, :, :, i, j, :]
        return dxp[:, p:p + h, p:p + w, :]


class ReLU:
    params: list = []

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


class Flatten:
    params: list = []

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Linear:
    def __init__(self, n_in: int, n_out: int, rng, dtype=np.float32):
        self.w = (rng.standard_normal((n_in, n_out)) * np.sqrt(1.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.params = [self.w, self.b]

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, dy):
        self.grads = [self.x.T @ dy, dy.sum(axis=0)]
        return dy @ self.w.T


class Pool:
    """poolnd's ``MaxPool2d`` on channels-last arrays: the only pooling code the demo uses."""

    params: list = []

    def __init__(self, engine=None):
        self.layer = poolnd.MaxPool2d(2, layout="NHWC", engine=engine)

    def forward(self, x):
        return self.layer.forward(x)

    def backward(self, dy):
        return self.layer.backward(dy)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(p[np.arange(n), labels] + 1e-12).mean()
    d = p.copy()
    d[np.arange(n), labels] -= 1
    return float(loss), d / n


class Network:
    """A stack of layers with forward, backward, a parameter count and Adam."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dlogits):
        g = dlogits
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def params_and_grads(self):
        for layer in self.layers:
            for p, g in zip(layer.params, getattr(layer, "grads", [])):
                yield p, g

    def n_params(self) -> int:
        return sum(p.size for layer in self.layers for p in layer.params)

    def predict(self, x, batch: int = 500):
        return np.concatenate([self.forward(x[i:i + batch]).argmax(axis=1)
                               for i in range(0, len(x), batch)])


class Adam:
    def __init__(self, net: Network, lr: float = 2e-3, b1: float = 0.9, b2: float = 0.999):
        self.net, self.lr, self.b1, self.b2, self.t = net, lr, b1, b2, 0
        self.m = [np.zeros_like(p) for layer in net.layers for p in layer.params]
        self.v = [np.zeros_like(p) for layer in net.layers for p in layer.params]

    def step(self):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for i, (p, g) in enumerate(self.net.params_and_grads()):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            p -= (self.lr * (self.m[i] / c1) / (np.sqrt(self.v[i] / c2) + 1e-8)).astype(p.dtype)


def build(pooling: bool, size: int, rng, engine=None, dtype=np.float32, channels=(16, 32)):
    """The demo's network for ``size x size`` single-channel images. ``pooling=False`` is the
    control: the same convolutions at full resolution and a linear layer 16x larger."""
    c1, c2 = channels
    layers = [Conv2d(1, c1, 3, rng, dtype), ReLU()]
    if pooling:
        layers.append(Pool(engine))
    layers += [Conv2d(c1, c2, 3, rng, dtype), ReLU()]
    if pooling:
        layers.append(Pool(engine))
    side = size // 4 if pooling else size
    layers += [Flatten(), Linear(side * side * c2, 10, rng, dtype)]
    return Network(layers)
