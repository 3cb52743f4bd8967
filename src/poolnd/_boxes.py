"""Box windows: the geometry of the adaptive and fractional pools.

A fixed pool has one kernel, one stride and one padding per dim. Adaptive and fractional pools do
not: output ``o`` of dim ``d`` reads the input interval ``[start, start + size)``, with starts and
sizes given per output (and, for fractional pools, per plane). Every such window is a box (a
product of one interval per dim), so engines reduce it one axis at a time.

Only plain integer arrays come out of here; nothing is checked (``_args`` did that).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Boxes", "adaptive", "fractional", "fractional_starts"]


@dataclass(frozen=True, eq=False)
class Boxes:
    """Per-dim window intervals. ``starts[d]`` and ``sizes[d]`` are int64 arrays of shape
    ``(P, out_size[d])``: ``P == 1`` when every plane shares the windows (adaptive pools), else
    one row per plane of the canonical ``(B, *spatial, T)`` array with ``T == 1`` (fractional
    pools). Every interval lies inside the input and is non-empty."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    starts: tuple[np.ndarray, ...]
    sizes: tuple[np.ndarray, ...]

    @property
    def ndim(self) -> int:
        return len(self.in_size)

    @property
    def per_plane(self) -> bool:
        return any(s.shape[0] != 1 for s in self.starts)

    def max_size(self, d: int) -> int:
        return int(self.sizes[d].max()) if self.sizes[d].size else 0

    def counts(self) -> np.ndarray:
        """Number of input elements in every window: shape ``(P, *out_size)``."""
        c = np.ones((self.sizes[0].shape[0],) + (1,) * self.ndim, dtype=np.int64)
        for d, s in enumerate(self.sizes):
            shape = [s.shape[0]] + [1] * self.ndim
            shape[1 + d] = s.shape[1]
            c = c * s.reshape(shape)
        return c


def adaptive_bounds(length: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive window rule: ``start = floor(o*L/O)``, ``end = ceil((o+1)*L/O)``."""
    o = np.arange(out, dtype=np.int64)
    start = (o * length) // out
    end = -((-(o + 1) * length) // out)
    return start, end - start


def adaptive(in_size: tuple[int, ...], out_size: tuple[int, ...]) -> Boxes:
    starts, sizes = [], []
    for L, O in zip(in_size, out_size):
        s, n = adaptive_bounds(L, O)
        starts.append(s[None])
        sizes.append(n[None])
    return Boxes(tuple(in_size), tuple(out_size), tuple(starts), tuple(sizes))


def fractional_starts(samples: np.ndarray, length: int, out: int, kernel: int) -> np.ndarray:
    """PyTorch's ``generate_intervals``, vectorized over planes: for ``samples`` of shape
    ``(P,)`` -> int64 starts ``(P, out)``.

    ``alpha = (L - k) / (O - 1)``; ``start[i] = int((i + u) * alpha) - int(u * alpha)`` for
    ``i < O - 1`` and ``start[O - 1] = L - k``. Every operation runs in the samples' dtype, one
    rounding per operation, as PyTorch's C++ does in the input's scalar type (float16 included)."""
    dt = samples.dtype.type
    P = samples.shape[0]
    starts = np.empty((P, out), dtype=np.int64)
    if out > 1:
        alpha = np.divide(dt(length - kernel), dt(out - 1), dtype=samples.dtype)
        i = np.arange(out - 1).astype(samples.dtype)
        u = samples[:, None]
        a = np.multiply(np.add(i[None, :], u, dtype=samples.dtype), alpha, dtype=samples.dtype)
        b = np.multiply(u, alpha, dtype=samples.dtype)
        starts[:, :-1] = np.trunc(a).astype(np.int64) - np.trunc(b).astype(np.int64)
    if out > 0:
        starts[:, -1] = length - kernel
    return starts


def fractional(samples: np.ndarray, in_size: tuple[int, ...], out_size: tuple[int, ...],
               kernel: tuple[int, ...]) -> Boxes:
    """``samples``: ``(P, k)`` in the interval dtype; column ``j`` drives spatial dim
    ``k - 1 - j`` for 2-d (PyTorch maps ``[..., 0]`` to W) and dim ``j`` for 3-d (``[..., 0]``
    to T), exactly as PyTorch's kernels read them."""
    k = len(in_size)
    starts, sizes = [], []
    for d in range(k):
        col = (k - 1 - d) if k == 2 else d
        s = fractional_starts(samples[:, col], in_size[d], out_size[d], kernel[d])
        starts.append(s)
        sizes.append(np.full(s.shape, kernel[d], dtype=np.int64))
    return Boxes(tuple(in_size), tuple(out_size), tuple(starts), tuple(sizes))
