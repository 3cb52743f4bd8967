"""Engine registry: ``{"reference", "numpy", "numba"}``, looked up by name; engines load on first
use.

``engine=None`` picks the fastest engine that imports (``"numba"`` when Numba is installed, else
``"numpy"``). An engine module is imported only when it is asked for, so ``import poolnd`` never
imports Numba.
"""
from __future__ import annotations

import importlib
import importlib.util


#: name -> module path, fastest last.
_MODULES = {"reference": "._reference", "numpy": "._numpy", "numba": "._numba"}
_PREFERENCE = ("numba", "numpy", "reference")
_loaded: dict = {}


def _installed(name: str) -> bool:
    if name != "numba":
        return True
    return importlib.util.find_spec("numba") is not None


def available() -> tuple[str, ...]:
    """Names of the engines this installation can run (Numba's only when Numba is installed;
    checked without importing it)."""
    return tuple(n for n in _MODULES if _installed(n))


def default() -> str:
    """The fastest available engine."""
    return next(n for n in _PREFERENCE if _installed(n))


def get(name: str | None):
    """The engine module named ``name`` (``None``: the default)."""
    name = name or default()
    if name not in _loaded:
        _loaded[name] = importlib.import_module(_MODULES[name], __name__)
    return _loaded[name]
