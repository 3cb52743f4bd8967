"""How the engine's kernels are compiled: the on-disk cache switch, its key, and the no-alias
build.

The cache key. Numba's on-disk cache (``cache=True``) keys a kernel's compiled code on its own
source file only, so a kernel whose helper lives in another file would keep running its old,
cached code after the helper changed. The kernel families of this package call each other's
helpers (``_k_rows`` holds the row primitives every family uses), so this module gives every
function of the package a key that sees all of it: the SHA-256 of every ``.py`` file here,
added to Numba's own stamp by :class:`_EngineLocator`. Editing any file of the engine recompiles
all of its kernels once; nothing stale can run. (The other choice, each family self-contained
in one file, would copy the shared primitives into every file.) Every kernel module imports this
one first, so the locator is in place before any kernel is decorated.
"""
from __future__ import annotations

import functools
import hashlib
import os

import numba
from numba.core import caching

_CACHE = os.environ.get("POOLND_NUMBA_CACHE", "1") != "0"
_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl     # renamed in Numba 0.61
_HERE = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def _engine_stamp() -> str:
    """The SHA-256 of the engine's sources (every ``.py`` file of this package, by name)."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(_HERE)):
        if name.endswith(".py"):
            h.update(name.encode())
            with open(os.path.join(_HERE, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


class _EngineLocator(caching._CacheLocator):
    """Numba's own cache locator for a function of this package (the first of Numba's that
    accepts it: ``NUMBA_CACHE_DIR``, ``__pycache__``, the user-wide directory ...), with
    :func:`_engine_stamp` added to its source stamp. Functions elsewhere are not ours: None."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), _engine_stamp())

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _HERE:
            return None
        for other in _IMPL._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


if _EngineLocator not in _IMPL._locator_classes:
    _IMPL._locator_classes.insert(0, _EngineLocator)


def _noalias(fn):
    """``fn`` compiled like ``@njit(cache=_CACHE, nogil=True)``, with every array argument
    marked ``noalias`` for LLVM (the guarantee a Numba parfor's gufunc gets, which let the old
    parfor kernels vectorize the 2x2 average: 23.1 -> 16.3 ms on one thread for 32x64x112x112,
    parfor 15.4 ms). Only for kernels whose outputs never overlap their inputs. Under
    ``NUMBA_DISABLE_JIT=1`` it is ``fn`` itself, as ``njit`` would be."""
    if numba.config.DISABLE_JIT:
        return fn
    disp = _NoAliasDispatcher(fn, targetoptions=dict(nopython=True, nogil=True))
    if _CACHE:
        disp.enable_caching()
    return disp


def _noalias_dispatcher():
    from numba.core import cpu, dispatcher, registry

    class Options(cpu.CPUTargetOptions):
        def finalize(self, flags, options):
            super().finalize(flags, options)
            flags.noalias = True

    class Target(registry.CPUTarget):
        options = Options

    class NoAliasDispatcher(dispatcher.Dispatcher):
        targetdescr = Target("cpu")

    return NoAliasDispatcher


_NoAliasDispatcher = _noalias_dispatcher()
