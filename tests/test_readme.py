"""The README's code runs, and the textbook example prints what the README shows."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_thirty_second_example_runs():
    block = re.search(r"## 30-second example\s+```python\n(.*?)```", _readme(), re.S).group(1)
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)          # noqa: S102 - our own README
    assert ns["y"].shape == (8, 3, 16, 16)
    assert ns["dx"].shape == ns["x"].shape
    assert ns["s"].shape == (8, 3, 16, 16)
    assert ns["g"].shape == (8, 3, 1, 1)
    assert ns["u"].shape == ns["x"].shape


def test_textbook_example_output_is_the_readmes():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "chapter.py")],
                         capture_output=True, text=True, check=True).stdout
    shown = re.search(r"## The textbook example.*?```\n(.*?)```", _readme(), re.S).group(1)
    assert shown.strip() in out


def test_ci_runs_the_readmes_test_command():
    readme = _readme()
    setup = readme[readme.index("## Set up on a fresh machine"):]
    commands = re.findall(r"^    (\S.*)$", setup[:setup.index("\n## ")], re.M)
    assert commands[0] == 'pip install ".[demo]" && poolnd demo'
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert commands[1] in ci.splitlines()


def test_readme_demo_table_has_the_demos_columns():
    from poolnd.demo import SHIFTS, format_table
    table = re.search(r"<!-- demo:start -->\n(.*?)<!-- demo:end -->", _readme(), re.S).group(1)
    header = format_table([]).splitlines()[0]
    assert table.splitlines()[0] == header
    assert len(table.strip().splitlines()) == 4 and len(SHIFTS) == 5


def test_readme_links_work_on_an_index_page():
    """A package index shows the README without the repository around it: every link and image
    is an absolute URL or an anchor in the page (paths are named as text instead)."""
    readme = _readme()
    targets = re.findall(r"\]\(([^)\s]+)[^)]*\)", readme)                  # [text](target)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", readme, re.M)        # [ref]: target
    targets += re.findall(r"<(?:img|a)\b[^>]*(?:src|href)=\"([^\"]+)\"", readme)
    relative = [t for t in targets if not re.match(r"(https?://|#)", t)]
    assert relative == []


def _demo_parser():
    from poolnd.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")         # noqa: SLF001
    return sub.choices["demo"]


def test_readme_lists_every_demo_option():
    readme = _readme()
    setup = readme[readme.index("## Set up on a fresh machine"):]
    setup = setup[:setup.index("\n## ")]
    for action in _demo_parser()._actions:                                  # noqa: SLF001
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert re.search(rf"(?<![\w-]){option}(?![\w-])", setup), option
    assert "--version" in setup


def _readme_table():
    table = re.search(r"<!-- demo:start -->\n(.*?)<!-- demo:end -->", _readme(), re.S).group(1)
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in table.strip().splitlines()[2:]]


def test_readme_demo_parameters_are_the_networks():
    """The machine-independent column: the parameter counts of the two networks."""
    import numpy as np
    from poolnd.demo import net
    counts = {row[0]: row[1] for row in _readme_table()}
    for name, pooling in (("with pooling", True), ("without pooling", False)):
        model = net.build(pooling, 28, np.random.default_rng(0), engine="numpy")
        assert counts[name] == f"{model.n_params():,}"


def test_readme_names_the_default_figure_path():
    from poolnd.cli import DEFAULT_FIGURE
    demo = _readme()[_readme().index("## The demo"):]
    assert f"`{DEFAULT_FIGURE}`" in demo and "docs/demo.png" in demo
    assert os.path.exists(os.path.join(ROOT, "docs", "demo.png"))


@pytest.mark.skipif(os.environ.get("POOLND_CHECK_DEMO_TABLE") != "1",
                    reason="runs the full default demo (1-3 minutes on 2 cores); "
                           "set POOLND_CHECK_DEMO_TABLE=1")
def test_readme_demo_table_is_what_the_default_demo_prints(tmp_path):
    """Every column but the seconds: ``poolnd demo`` with its defaults (seed 0) prints the
    README's table. The accuracies repeat exactly on the machine that made the table; another
    CPU's BLAS kernels may move them, so this check is opt-in."""
    out = subprocess.run([sys.executable, "-m", "poolnd", "demo", "--no-progress", "--out",
                          str(tmp_path / "demo.png")], capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = [[c.strip() for c in line.strip("|").split("|")]
               for line in out.stdout.splitlines() if line.startswith("| with")]

    def without_seconds(rows):
        return [row[:2] + row[3:] for row in rows]

    assert without_seconds(printed) == without_seconds(_readme_table())


def test_big_arrays_example_runs_scaled_down(tmp_path, monkeypatch):
    pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    block = re.search(r"## Big arrays \(Dask\).*?```python\n(.*?)```", _readme(), re.S).group(1)
    small = block.replace("8192", "64").replace("2048", "16").replace("4096", "32")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(small, "README.md", "exec"), ns)          # noqa: S102 - our own README
    import numpy as np
    import poolnd
    assert ns["y"].shape == (4, 3, 32, 32)
    expect = poolnd.avg_pool2d(ns["x"].compute(), 2)
    import dask.array as da
    np.testing.assert_array_equal(da.from_zarr(str(tmp_path / "pooled.zarr")).compute(), expect)


def test_images_and_labels_block_prints_what_the_readme_shows():
    import doctest
    block = re.search(r"## Images and labels.*?```python\n(.*?)```", _readme(), re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "README images", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert test.examples and runner.failures == 0
