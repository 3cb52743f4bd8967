"""Axis layouts: a layout string such as ``"NCHW"``, ``"NHWC"`` or the chapter's ``"HWCN"`` names
every axis of an array, and is mapped here to and from the canonical engine form
``(B, *spatial, T)`` (spatial dims in ``D, H, W`` order for PyTorch's letters, else in the
order written): channels-first ``(N*C, *spatial, 1)``, or channels-last ``(N, *spatial, C)`` for
engines that pool channels-last arrays in place. Both are views of a C-contiguous input; any other
layout is copied once to channels-first. A layout may leave out ``N``, ``C`` or both (``"HW"``,
``"HWC"``, ``"ZYX"``): a missing axis counts as one of size 1 (``B = N*C`` is then ``C``, ``N``
or 1), and the output leaves it out again. Parsing a string happens in ``_args`` (it
raises the user-facing errors); this module only moves axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Layout", "SPATIAL_LETTERS"]

#: The spatial letters of the standard layouts, in canonical order, by number of spatial dims.
SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


@dataclass(frozen=True)
class Layout:
    """A parsed layout: ``letters`` names the array's axes in memory order; ``spatial`` lists the
    spatial letters in canonical order."""

    letters: str
    spatial: str

    @property
    def batched(self) -> bool:
        return "N" in self.letters

    @property
    def has_channels(self) -> bool:
        return "C" in self.letters

    @property
    def canonical_letters(self) -> str:
        return ("N" if self.batched else "") + ("C" if self.has_channels else "") + self.spatial

    @property
    def perm(self) -> tuple[int, ...]:
        """Axes of the array, in canonical order (for ``np.transpose``)."""
        return tuple(self.letters.index(c) for c in self.canonical_letters)

    @property
    def inverse_perm(self) -> tuple[int, ...]:
        return tuple(int(i) for i in np.argsort(self.perm))

    @property
    def is_canonical(self) -> bool:
        return self.letters == self.canonical_letters

    def spatial_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[self.letters.index(c)] for c in self.spatial)

    def batch_channels(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """``(N, C)`` of an array of ``shape`` in this layout; a missing axis counts as 1."""
        n = shape[self.letters.index("N")] if self.batched else 1
        c = shape[self.letters.index("C")] if self.has_channels else 1
        return n, c

    @property
    def is_channels_last(self) -> bool:
        return self.has_channels and self.letters == (
            ("N" if self.batched else "") + self.spatial + "C")

    def to_canonical(self, x: np.ndarray, channels_last_ok: bool = False):
        """``x`` in this layout -> ``(xc, channels_last)``: a C-contiguous ``(B, *spatial, T)``
        array (a view when ``x`` is already contiguous in a canonical form)."""
        n, c = self.batch_channels(x.shape)
        spatial = self.spatial_shape(x.shape)
        if channels_last_ok and self.is_channels_last:
            return np.ascontiguousarray(x).reshape((n,) + spatial + (c,)), True
        xc = x if self.is_canonical else x.transpose(self.perm)
        return np.ascontiguousarray(xc).reshape((n * c,) + spatial + (1,)), False

    def from_canonical(self, yc: np.ndarray, like_shape: tuple[int, ...],
                       channels_last: bool = False) -> np.ndarray:
        """Canonical ``(B, *spatial', T)`` -> this layout, C-contiguous. ``like_shape`` is the
        shape of the array in this layout that ``yc``'s batch and channels came from."""
        n, c = self.batch_channels(like_shape)
        if channels_last:
            return yc.reshape(((n,) if self.batched else ()) + yc.shape[1:])
        lead = ((n,) if self.batched else ()) + ((c,) if self.has_channels else ())
        y = yc.reshape(lead + yc.shape[1:-1])
        if self.is_canonical:
            return y
        return np.ascontiguousarray(y.transpose(self.inverse_perm))
