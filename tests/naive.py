"""An independent oracle: brute-force pooling that imports nothing from poolnd.

It pads each plane explicitly (a "kind" map marks input, padding and ceil-mode overhang), counts
windows by enumerating their start positions, and scans each window's cells in row-major order.
It is deliberately written differently from poolnd's geometry (no output-size formula) so that a
shared mistake is unlikely. Inputs are channels-first ``(N, C, *spatial)`` or ``(B, *spatial)``;
tests transpose for other layouts.
"""
import itertools
import math

import numpy as np

INPUT, PAD, OVERHANG = 0, 1, 2


def same_pads(size, k, s, d, lower=False):
    """TensorFlow's SAME rule, written from its documentation."""
    out = math.ceil(size / s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
    a, b = total // 2, total - total // 2
    return (b, a) if lower else (a, b)


def count_windows(size, k, s, d, before, after, ceil_mode):
    """Number of windows, by enumerating candidate starts in padded coordinates."""
    ext = (k - 1) * d + 1
    padded = size + before + after
    n = 0
    start = 0
    while True:
        fits = start + ext <= padded
        if ceil_mode:
            # full windows as in floor mode, plus one partial window that overhangs the padded
            # input, kept only if it starts inside the input or its left pad (PyTorch's rule)
            ok = fits or (start < size + before and start + ext - padded < s)
        else:
            ok = fits
        if not ok:
            break
        n += 1
        start += s
    return n


def pool(x, mode, kernel, stride, dilation, pads, ceil_mode=False, count_include_pad=True,
         divisor_override=None):
    """Brute-force pooling of ``x`` (B, *spatial) over its trailing ``len(kernel)`` dims.

    Returns (y, indices, empty) where indices are flat offsets inside each input plane (max/min
    only, else None) and ``empty`` marks windows holding no input cell."""
    k = len(kernel)
    spatial = x.shape[-k:]
    lead = x.shape[:-k]
    outs = [count_windows(L, kk, s, d, b, a, ceil_mode)
            for L, kk, s, d, (b, a) in zip(spatial, kernel, stride, dilation, pads)]
    # explicit padded plane, with room for ceil-mode overhang
    grown = [L + b + a + (kk - 1) * d + s for L, kk, s, d, (b, a)
             in zip(spatial, kernel, stride, dilation, pads)]
    kind = np.full(grown, OVERHANG, dtype=np.int8)
    kind[tuple(slice(0, L + b + a) for L, (b, a) in zip(spatial, pads))] = PAD
    inner = tuple(slice(b, b + L) for L, (b, a) in zip(spatial, pads))
    kind[inner] = INPUT
    flat_pos = np.full(grown, -1, dtype=np.int64)
    flat_pos[inner] = np.arange(math.prod(spatial)).reshape(spatial)

    xf = x.reshape((-1,) + tuple(spatial))
    wide = np.zeros((xf.shape[0],) + tuple(grown), dtype=x.dtype)
    wide[(slice(None),) + inner] = xf

    y = np.zeros((xf.shape[0],) + tuple(outs), dtype=np.float64 if x.dtype.kind == "f" else object)
    idx = np.full((xf.shape[0],) + tuple(outs), -1, dtype=np.int64)
    empty = np.zeros(tuple(outs), dtype=bool)
    for o in itertools.product(*(range(n) for n in outs)):
        cells = [tuple(o[i] * stride[i] + j[i] * dilation[i] for i in range(k))
                 for j in itertools.product(*(range(kk) for kk in kernel))]
        real = [c for c in cells if kind[c] == INPUT]
        empty[o] = not real
        if mode in ("max", "min"):
            for b in range(xf.shape[0]):
                best, where = None, -1
                for c in real:
                    v = wide[(b,) + c]
                    nan = isinstance(v, (float, np.floating)) and np.isnan(v)
                    if best is None or nan or (v > best if mode == "max" else v < best):
                        best, where = v, flat_pos[c]
                if best is None:
                    best = -np.inf if mode == "max" else np.inf
                y[(b,) + o] = best
                idx[(b,) + o] = where
        else:
            if divisor_override is not None:
                div = divisor_override
            elif mode == "sum":
                div = 1
            elif count_include_pad:
                div = sum(1 for c in cells if kind[c] != OVERHANG)
            else:
                div = len(real)
            for b in range(xf.shape[0]):
                if x.dtype.kind in "iu":
                    s = sum(int(wide[(b,) + c]) for c in real)
                    q = abs(s) // abs(div) if div else 0
                    y[(b,) + o] = q if (s >= 0) == (div > 0) else -q
                else:
                    s = math.fsum(float(wide[(b,) + c]) for c in real)
                    y[(b,) + o] = s / div if div else np.nan     # an empty mean: undefined
    y = y.reshape(lead + tuple(outs))
    idx = idx.reshape(lead + tuple(outs))
    if x.dtype.kind in "iu":
        y = y.astype(x.dtype)
    return y, (idx if mode in ("max", "min") else None), empty


def pool_backward(x_shape, dy, mode, kernel, stride, dilation, pads, ceil_mode=False,
                  count_include_pad=True, divisor_override=None, indices=None):
    """Gradient by the definition: for max/min route each dy to ``indices``; for avg/sum
    d y[o] / d x[i] = 1/div for every input cell i in window o. float64."""
    k = len(kernel)
    spatial = x_shape[-k:]
    dyf = dy.reshape((-1,) + dy.shape[-k:]).astype(np.float64)
    dx = np.zeros((dyf.shape[0], math.prod(spatial)))
    if mode in ("max", "min"):
        idf = indices.reshape(dyf.shape)
        for b in range(dyf.shape[0]):
            for o in np.ndindex(*dyf.shape[1:]):
                if idf[(b,) + o] >= 0:
                    dx[b, idf[(b,) + o]] += dyf[(b,) + o]
        return dx.reshape(x_shape)
    # linear op: build its matrix column by column through the forward (exact, small inputs)
    n_in = math.prod(spatial)
    for i in range(n_in):
        e = np.zeros((1,) + tuple(spatial))
        e.reshape(-1)[i] = 1.0
        col, _, _ = pool(e, mode, kernel, stride, dilation, pads, ceil_mode, count_include_pad,
                         divisor_override)
        dx[:, i] = (dyf * col.reshape((1,) + dyf.shape[1:])).reshape(dyf.shape[0], -1).sum(1)
    return dx.reshape(x_shape)
