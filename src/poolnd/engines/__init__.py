"""Engine registry: ``{"reference", "numpy"}``, looked up by name; engines load on first use.

``engine=None`` picks the fastest engine that imports. An engine module is imported only when it is
asked for, so ``import poolnd`` stays light.
"""
from __future__ import annotations

import importlib

from ._common import acc_dtype, identity, arg_dtype, trunc_divide  # noqa: F401  (shared helpers)

#: name -> module path, fastest last.
_MODULES = {"reference": "._reference", "numpy": "._numpy"}
_PREFERENCE = ("numpy", "reference")
_loaded: dict = {}


def available() -> tuple[str, ...]:
    """Names of the engines this installation has (importable or not yet tried)."""
    return tuple(_MODULES)


def default() -> str:
    return _PREFERENCE[0]


def get(name: str | None):
    """The engine module named ``name`` (``None``: the default)."""
    name = name or default()
    if name not in _loaded:
        _loaded[name] = importlib.import_module(_MODULES[name], __name__)
    return _loaded[name]
