"""The few functions every engine implements.

Engines receive C-contiguous canonical arrays ``(B, *spatial)`` (``B = N*C``), a
:class:`~poolnd._geometry.Geometry` (plain ints and tuples) and plain flags. They never validate
arguments and never recompute geometry. ``arg`` is the window-local argmax: the row-major flat index
of the chosen tap inside its window (``-1`` for a window that lies wholly in padding).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from .._geometry import Geometry


class Engine(Protocol):
    name: str

    def max_forward(self, x: np.ndarray, g: Geometry, *, minimum: bool, with_arg: bool
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Max (or min) of every window; with ``with_arg``, also the window-local argmax.

        Windows are scanned in row-major order; the running best is replaced when
        ``v > best`` (``v < best`` for min) or ``v`` is NaN: the first of tied maxima wins and a
        NaN wins with the last NaN's index. Padding is never selected."""

    def max_backward(self, dy: np.ndarray, arg: np.ndarray, g: Geometry) -> np.ndarray:
        """Route each ``dy`` to its window's chosen input; overlapping windows accumulate."""

    def avg_forward(self, x: np.ndarray, g: Geometry, *, count_include_pad: bool,
                    divisor_override: int | None) -> np.ndarray:
        """Window sum divided by the divisor (``divisor_override``, or the counted taps)."""

    def avg_backward(self, dy: np.ndarray, g: Geometry, *, count_include_pad: bool,
                     divisor_override: int | None) -> np.ndarray:
        """Spread ``dy / divisor`` over every input tap of the window."""
