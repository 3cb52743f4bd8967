"""The public surface: __all__, signatures against torch's, doctests of every public docstring,
and that ``import poolnd`` stays light."""
import doctest
import importlib
import inspect
import subprocess
import sys

import numpy as np
import pytest

import poolnd

torch = pytest.importorskip("torch")

FUNCTIONS = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
             "lp_pool1d", "lp_pool2d", "lp_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
             "adaptive_max_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
             "adaptive_avg_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d",
             "fractional_max_pool2d", "fractional_max_pool3d"]
LAYERS = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
          "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
          "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
          "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "FractionalMaxPool2d",
          "FractionalMaxPool3d"]


def test_all_names_exist():
    for name in poolnd.__all__:
        assert hasattr(poolnd, name), name
    assert set(FUNCTIONS + LAYERS) <= set(poolnd.__all__)


def _positional(sig):
    return [(p.name, p.default) for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _torch_function_signature(name):
    """torch's signature; for builtins (avg_pool*), parsed from the first line of the docstring."""
    fn = getattr(torch.nn.functional, name)
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        first = fn.__doc__.strip().splitlines()[0]
        params = first[first.index("(") + 1:first.rindex(")")]
        ns = {}
        exec(f"def f({params}): pass", ns)          # noqa: S102 - torch's own docstring text
        return inspect.signature(ns["f"])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signature_extends_torch(name):
    ours = _positional(inspect.signature(getattr(poolnd, name)))
    theirs = _positional(_torch_function_signature(name))
    assert ours[:len(theirs)] == theirs
    kw = inspect.signature(getattr(poolnd, name)).parameters
    assert kw["layout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert kw["engine"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", LAYERS)
def test_layer_signature_extends_torch(name):
    ours = _positional(inspect.signature(getattr(poolnd, name).__init__))
    theirs = _positional(inspect.signature(getattr(torch.nn, name).__init__))
    assert ours[:len(theirs)] == theirs


def _public_modules():
    return ["poolnd", "poolnd.functional", "poolnd.layers", "poolnd._pool", "poolnd._indices",
            "poolnd._geometry", "poolnd._family", "poolnd._vjp"]


@pytest.mark.parametrize("modname", _public_modules())
def test_doctests(modname):
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, modname, globs={"np": np}) if t.examples]
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, runner.summarize()


def test_every_public_function_has_an_example():
    for name in poolnd.__all__:
        obj = getattr(poolnd, name)
        if callable(obj):
            assert ">>>" in (obj.__doc__ or ""), name


def test_import_is_light():
    code = ("import sys, poolnd; "
            "print(','.join(m for m in ('numba', 'torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
