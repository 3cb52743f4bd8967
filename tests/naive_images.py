"""An independent brute-force oracle for the image reductions: median, mode, and the
NaN-omitting max, min, avg and sum, with indices and gradients.

It imports nothing from poolnd. Windows are enumerated from the definition: along each spatial
dim, output ``o`` reads positions ``o * stride - pad_before + j * dilation`` for taps
``j = 0 .. kernel - 1``; positions outside ``[0, size)`` are padding and never count. Padding
forms ("valid", "same", "same_lower", ints, ``(before, after)`` pairs) and the output size
(PyTorch's ceil rule) are computed here from API.md's words. Every value is handled as a Python
scalar, one window at a time.

Input: channels-first ``(..., *spatial)``, any leading dims (``N, C`` or ``C``).
"""
import itertools
import math
from collections import Counter

import numpy as np


class EmptyWindow(ValueError):
    """A window holds no input element: its median or mode does not exist, nor its average
    over the input elements (count_include_pad=False)."""


def _tuple(v, k):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * k


def pads_of(size, kernel, stride, dilation, padding):
    """``(before, after)`` per dim."""
    k = len(size)
    if padding == "valid":
        return [(0, 0)] * k
    if padding in ("same", "same_lower"):
        out = []
        for L, kk, s, dl in zip(size, kernel, stride, dilation):
            n_out = -(-L // s)
            total = max((n_out - 1) * s + dl * (kk - 1) + 1 - L, 0)
            half = total // 2
            out.append((total - half, half) if padding == "same_lower" else (half, total - half))
        return out
    if isinstance(padding, (tuple, list)) and padding and isinstance(padding[0], (tuple, list)):
        return [tuple(p) for p in padding]
    return [(p, p) for p in _tuple(padding, k)]


def out_len(L, kk, s, dl, before, after, ceil_mode):
    """Windows along one dim: floor mode counts the windows that end inside the padded input;
    ceil mode also one that only starts inside it (but not past the input and its left pad)."""
    reach = dl * (kk - 1)
    padded = L + before + after
    floor_n = sum(1 for o in range(padded + 1) if o * s + reach <= padded - 1)
    if not ceil_mode:
        return floor_n
    ceil_n = sum(1 for o in range(padded + s + 1)
                 if o * s <= padded - 1 - reach + s - 1 and o * s < L + before)
    return max(floor_n, ceil_n)


def geometry(size, kernel, stride, padding, dilation, ceil_mode):
    k = len(size)
    kernel, dilation = _tuple(kernel, k), _tuple(dilation, k)
    stride = kernel if stride is None else _tuple(stride, k)
    pads = pads_of(size, kernel, stride, dilation, padding)
    out = tuple(out_len(L, kk, s, dl, b, a, ceil_mode)
                for L, kk, s, dl, (b, a) in zip(size, kernel, stride, dilation, pads))
    return kernel, stride, dilation, pads, out


def window(o, size, kernel, stride, dilation, pads):
    """``[(position, counts_as_pad)]``: the taps of output ``o`` in row-major order; inside
    taps have ``counts_as_pad=False``; taps in the padded border (not a ceil overhang) True;
    taps past the padded input are left out."""
    taps = []
    for j in itertools.product(*(range(kk) for kk in kernel)):
        pos = tuple(o[d] * stride[d] - pads[d][0] + j[d] * dilation[d] for d in range(len(size)))
        if all(0 <= p < L for p, L in zip(pos, size)):
            taps.append((pos, False))
        elif all(-pads[d][0] <= p < L + pads[d][1] for d, (p, L) in enumerate(zip(pos, size))):
            taps.append((pos, True))
    return taps


def _isnan(v):
    return isinstance(v, float) and math.isnan(v)


def _pick(mode, values):
    if mode == "median":
        return sorted(values)[(len(values) - 1) // 2]
    if mode == "max":
        return max(values)
    if mode == "min":
        return min(values)
    counts = Counter(values)                  # 0.0 and -0.0 are one key: they are equal
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def pool(x, mode, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, *, k,
         nan_policy="propagate", count_include_pad=True, divisor_override=None):
    """-> ``(y, indices, backward)``: values, per-plane flat indices (rank modes and max/min;
    else None) and ``backward(dy) -> dx``. Raises :class:`EmptyWindow` for a median or mode of
    a window without input elements, and for an average over the input elements of one."""
    x = np.asarray(x)
    lead, size = x.shape[:-k], x.shape[-k:]
    kernel, stride, dilation, pads, out = geometry(size, kernel, stride, padding, dilation,
                                                   ceil_mode)
    is_float = x.dtype.kind == "f"
    omit = nan_policy == "omit"
    y = np.zeros(lead + out, dtype=x.dtype if not (mode == "sum" and not is_float) else
                 (np.uint64 if x.dtype.kind == "u" else np.int64))
    idx = np.full(lead + out, -1, dtype=np.int64)
    routes = []                                # (out index, [(in index, weight)])
    for plane in itertools.product(*(range(n) for n in lead)):
        for o in itertools.product(*(range(n) for n in out)):
            taps = window(o, size, kernel, stride, dilation, pads)
            inside = [(p, x[plane + p].item()) for p, is_pad in taps if not is_pad]
            n_pad = sum(1 for _, is_pad in taps if is_pad)
            nans = [p for p, v in inside if _isnan(v)]
            kept = [(p, v) for p, v in inside if not _isnan(v)]
            at = plane + o
            if mode in ("median", "mode", "max", "min"):
                if not inside:
                    if mode in ("median", "mode"):
                        raise EmptyWindow(f"window {o} holds no input element")
                    if is_float:
                        y[at] = -np.inf if mode == "max" else np.inf
                    else:
                        info = np.iinfo(x.dtype)
                        y[at] = info.min if mode == "max" else info.max
                    routes.append((at, []))
                    continue
                if nans and (not omit or not kept):
                    p = nans[-1]
                else:
                    chosen = _pick(mode, [v for _, v in kept])
                    p = next(p for p, v in kept if v == chosen)
                y[at] = x[plane + p]
                idx[at] = int(np.ravel_multi_index(p, size))
                nan_input = _isnan(x[plane + p].item())
                routes.append((at, [] if mode == "mode" or (omit and nan_input)
                               else [(plane + p, 1.0)]))
                continue
            # sums and averages
            if mode == "avg" and not count_include_pad and divisor_override is None and not inside:
                raise EmptyWindow(f"window {o} holds no input element to average")
            use = kept if omit else inside
            if is_float:
                total = math.fsum(v for _, v in use) if not (nans and not omit) else math.nan
                if omit and nans and not kept:
                    total = math.nan
            else:
                total = sum(int(v) for _, v in use)
            if mode == "sum":
                divisor = 1
            elif divisor_override is not None:
                divisor = divisor_override
            else:
                divisor = len(use) + (n_pad if count_include_pad else 0)
            if is_float:
                with np.errstate(all="ignore"):
                    y[at] = total / divisor if divisor else math.nan
            else:
                q = abs(total) // abs(divisor)
                y[at] = q if (total >= 0) == (divisor > 0) else -q
            routes.append((at, [(plane + p, 1.0 / divisor) for p, _ in use]))

    def backward(dy):
        dx = np.zeros(x.shape, dtype=np.float64)
        for at, to in routes:
            for p, w in to:
                dx[p] += float(dy[at]) * w
        return dx.astype(x.dtype)

    return y, (idx if mode in ("median", "mode", "max", "min") else None), backward
