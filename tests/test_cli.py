"""The command line: info, bench, usage errors, python -m poolnd."""
import subprocess
import sys

import pytest

import poolnd
from poolnd.cli import main


def test_info_prints_versions_and_engines(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"poolnd {poolnd.__version__}" in out
    assert "engines available: reference, numpy" in out
    assert "default: " in out


def test_bench_quick_times_every_engine_against_torch(capsys):
    pytest.importorskip("torch")
    assert main(["bench", "--quick", "--engines", "numpy,numba", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("numpy", "numba", "torch"):
        assert f" {name} " in out
    assert "torch's median" in out


def test_bench_rejects_unknown_engine(capsys):
    assert main(["bench", "--quick", "--engines", "cuda"]) == 2
    assert "unknown engine" in capsys.readouterr().err


def test_bad_arguments_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "usage: poolnd" in capsys.readouterr().err


def test_bare_command_prints_help(capsys):
    assert main([]) == 0
    assert "info" in capsys.readouterr().out


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "poolnd", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "usage: poolnd" in out.stdout
