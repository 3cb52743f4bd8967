"""The distributions: a wheel and an sdist built here (offline, with the installed setuptools,
from a copy of the package's files so that the working tree gets no build/ or egg-info) carry
the LICENSE file and the metadata a package index shows."""
import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

import poolnd

ROOT = os.path.join(os.path.dirname(__file__), "..")

pytest.importorskip("setuptools", minversion="77")         # pyproject's build backend


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The files a build reads, copied: pyproject.toml, README.md, LICENSE and src/poolnd."""
    tree = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), tree / name)
    shutil.copytree(os.path.join(ROOT, "src", "poolnd"), tree / "src" / "poolnd",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree


def _build(source, hook, out):
    """One PEP 517 hook of the build backend, in a fresh interpreter in ``source``."""
    code = (f"from setuptools import build_meta; import sys; "
            f"print(build_meta.{hook}(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


def test_wheel_has_the_license_and_the_index_metadata(source, tmp_path):
    wheel = _build(source, "build_wheel", tmp_path)
    assert wheel.name == f"poolnd-{poolnd.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = f"poolnd-{poolnd.__version__}.dist-info"
        license_text = z.read(f"{info}/licenses/LICENSE").decode()
        meta = email.parser.Parser().parsestr(z.read(f"{info}/METADATA").decode())
    assert "MIT License" in license_text and "the poolnd developers" in license_text
    with open(os.path.join(ROOT, "LICENSE")) as f:
        assert license_text == f.read()
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)   # PEP 639: the expression
    assert "pooling" in meta["Keywords"].split(",")
    assert meta["Version"] == poolnd.__version__
    assert "poolnd/cli.py" in names and "poolnd/demo/net.py" in names
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    with zipfile.ZipFile(wheel) as z:
        assert "poolnd = poolnd.cli:main" in z.read(entry_points[0]).decode()


def test_sdist_has_the_license(source, tmp_path):
    sdist = _build(source, "build_sdist", tmp_path)
    with tarfile.open(sdist) as t:
        names = t.getnames()
        top = f"poolnd-{poolnd.__version__}"
        assert f"{top}/LICENSE" in names and f"{top}/README.md" in names
        pkg_info = t.extractfile(f"{top}/PKG-INFO").read().decode()
    assert "License-Expression: MIT" in pkg_info and "License-File: LICENSE" in pkg_info
