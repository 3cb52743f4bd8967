"""The command line: info, bench, usage errors, python -m poolnd, --version, --help's defaults,
a closed pipe, progress bars only on a terminal."""
import argparse
import io
import os
import shlex
import subprocess
import sys

import pytest

import poolnd
import poolnd.engines
from poolnd.cli import DEFAULT_FIGURE, EXIT_BROKEN_PIPE, build_parser, main
from poolnd.demo import show_progress


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


def _run(args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "poolnd", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"poolnd {poolnd.__version__}\n"
    out = _run(["--version"])
    assert out.returncode == 0 and out.stdout == f"poolnd {poolnd.__version__}\n"


CLOSED_PIPE_COMMANDS = {
    "info": ["info"],
    "help": ["--help"],
    "bench": ["bench", "--quick", "--engines", "numpy", "--repeats", "1", "--no-torch"],
    "demo": ["demo", "--quick", "--epochs", "1", "--engine", "numpy", "--out", os.devnull],
}


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", sorted(CLOSED_PIPE_COMMANDS))
def test_closed_pipe_exits_quietly(name, buffered):
    """``poolnd info | head -3``: the reader is gone before the command writes. No traceback,
    no "Exception ignored" from the flush at exit, and the status a Unix tool killed by SIGPIPE
    reports (128 + 13). Unbuffered, the first print fails; buffered, the final flush does."""
    if name == "demo":
        for module in ("matplotlib", "tqdm", "mlxtend"):
            pytest.importorskip(module)
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)                        # no reader at all: every write hits EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "poolnd", *CLOSED_PIPE_COMMANDS[name]],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    if name == "help" and not buffered:
        assert proc.returncode in (0, EXIT_BROKEN_PIPE)     # argparse drops the write error
    else:
        assert proc.returncode == EXIT_BROKEN_PIPE == 141


def test_head_reads_a_few_lines_then_closes():
    """The pipe as a shell makes it: ``python -m poolnd info | head -1``."""
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m poolnd info | head -1",
                          shell=True, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout == f"poolnd {poolnd.__version__}\n"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    demo = " ".join(capsys.readouterr().out.split())      # argparse wraps lines
    for text in ("--batch BATCH minibatch size (default: 32)",
                 "(default: 8; 2 with --quick)",
                 "--seed SEED seed of the split, init and order (default: 0)",
                 f"(default: {DEFAULT_FIGURE}, in the current directory)",
                 "(default: subset)", "~/.cache/poolnd/mnist",
                 f"(default: {poolnd.engines.default()})",
                 "--progress, --no-progress",
                 "(default: on when stderr is a terminal)"):
        assert text in demo
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "(default: 9; 3 with --quick)" in " ".join(capsys.readouterr().out.split())


def test_every_option_with_a_value_says_its_default():
    """Each option that takes a value, of every subcommand, names its default in --help."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions                     # noqa: SLF001
                      if isinstance(a, argparse._SubParsersAction))   # noqa: SLF001
    for name, sub in subparsers.choices.items():
        for action in sub._actions:                                   # noqa: SLF001
            if action.nargs == 0 or not action.option_strings or action.help is None:
                continue                    # flags (store_true, --help) have no value to show
            if isinstance(action, argparse.BooleanOptionalAction) or action.nargs is None:
                assert "default" in action.help, (name, action.option_strings)


def test_demo_progress_only_on_a_terminal():
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            if self.closed:
                raise ValueError("I/O operation on closed file")     # as io's streams do
            return self.tty

    assert show_progress(None, Stream(True)) is True
    assert show_progress(None, Stream(False)) is False
    assert show_progress(True, Stream(False)) is True           # --progress
    assert show_progress(False, Stream(True)) is False          # --no-progress
    closed = Stream(True)
    closed.close()
    assert show_progress(None, closed) is False
    args = build_parser().parse_args(["demo"])
    assert args.progress is None
    assert build_parser().parse_args(["demo", "--no-progress"]).progress is False
    assert build_parser().parse_args(["demo", "--progress"]).progress is True


@pytest.mark.parametrize("progress", [True, False])
def test_demo_training_draws_bars_only_when_asked(progress, capsys):
    """``train`` (tiny network, NumPy engine: no compile): bars on stderr with progress on,
    not one byte with it off; stdout untouched either way."""
    pytest.importorskip("tqdm")
    import numpy as np
    from poolnd.demo import net, train
    rng = np.random.default_rng(0)
    model = net.build(True, 8, rng, engine="numpy", channels=(2, 3))
    x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    secs = train(model, x, y, 1, 8, rng, "tiny", progress=progress)
    assert len(secs) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    if progress:
        assert "tiny epoch 1/1" in captured.err
    else:
        assert captured.err == ""
