"""The README's code runs, and the textbook example prints what the README shows."""
import os
import re
import subprocess
import sys

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
