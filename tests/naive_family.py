"""Independent oracles for the LP, adaptive and unpool ops, written from the operator specs
(PyTorch's documentation, the ONNX operator spec); imports nothing from poolnd.

Arrays are channels-first ``(N, C, *spatial)``. Every function loops over planes and windows.
"""
import itertools
import math

import numpy as np


def _planes(x):
    n, c = x.shape[:2]
    return itertools.product(range(n), range(c))


def adaptive(x, out_size, mode):
    """PyTorch's AdaptiveMax/AvgPool: window [floor(i*L/O), ceil((i+1)*L/O)) per dim."""
    spatial = x.shape[2:]
    y = np.zeros(x.shape[:2] + tuple(out_size), dtype=np.float64)
    idx = np.zeros(y.shape, dtype=np.int64)
    for n, c in _planes(x):
        for o in itertools.product(*(range(v) for v in out_size)):
            ranges = [range((o[d] * L) // O, math.ceil((o[d] + 1) * L / O))
                      for d, (L, O) in enumerate(zip(spatial, out_size))]
            cells = list(itertools.product(*ranges))
            vals = [float(x[(n, c) + p]) for p in cells]
            if mode == "avg":
                y[(n, c) + o] = sum(vals) / len(vals)
                continue
            best, at = vals[0], 0
            for i, v in enumerate(vals):
                if v > best or math.isnan(v):
                    best, at = v, i
            y[(n, c) + o] = best
            idx[(n, c) + o] = np.ravel_multi_index(cells[at], spatial)
    return y, idx


def lp_onnx(x, p, kernel, strides, pads_begin, pads_end, dilations, ceil_mode=False):
    """ONNX LpPool: ``(sum over the window of |x|**p) ** (1/p)``, padded cells contributing
    zero, explicit begin/end pads, dilations; ceil_mode adds the partial last window, which
    PyTorch (and poolnd) scale by ``K / (cells inside the padded input)``."""
    spatial = x.shape[2:]
    k = len(spatial)
    out = []
    for d in range(k):
        ext = dilations[d] * (kernel[d] - 1) + 1
        span = spatial[d] + pads_begin[d] + pads_end[d] - ext
        o = (-(-span // strides[d]) if ceil_mode else span // strides[d]) + 1
        if ceil_mode and (o - 1) * strides[d] >= spatial[d] + pads_begin[d]:
            o -= 1
        out.append(o)
    K = math.prod(kernel)
    y = np.zeros(x.shape[:2] + tuple(out))
    for n, c in _planes(x):
        for o in itertools.product(*(range(v) for v in out)):
            total, inside = 0.0, 0
            best = 0.0
            for j in itertools.product(*(range(v) for v in kernel)):
                pos = [o[d] * strides[d] - pads_begin[d] + j[d] * dilations[d] for d in range(k)]
                if all(-pads_begin[d] <= pos[d] < spatial[d] + pads_end[d] for d in range(k)):
                    inside += 1
                if all(0 <= pos[d] < spatial[d] for d in range(k)):
                    v = abs(float(x[(n, c) + tuple(pos)]))
                    total += v ** p if not math.isinf(p) else 0.0
                    best = max(best, v)
            y[(n, c) + o] = best if math.isinf(p) else (total * K / inside) ** (1.0 / p)
    return y


def unpool(x, indices, out_size):
    """ONNX MaxUnpool / PyTorch max_unpool: zeros, each value written at its flat plane index,
    later writes winning."""
    y = np.zeros(x.shape[:2] + tuple(out_size), dtype=x.dtype)
    for n, c in _planes(x):
        plane = y[n, c].reshape(-1)
        for o in itertools.product(*(range(v) for v in x.shape[2:])):
            plane[indices[(n, c) + o]] = x[(n, c) + o]
    return y


def unpool_flat(x, flat_indices, out_shape):
    """ONNX MaxUnpool with ONNX MaxPool's indices: flat offsets into the whole output tensor."""
    y = np.zeros(out_shape, dtype=x.dtype).reshape(-1)
    for i, v in zip(np.asarray(flat_indices).reshape(-1), x.reshape(-1)):
        y[i] = v
    return y.reshape(out_shape)
