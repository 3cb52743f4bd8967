"""The standard workloads W1-W6: poolnd's engines against PyTorch, JAX and plain NumPy, interleaved.

    python benchmarks/bench_engines.py                 # all workloads, 9 rounds
    python benchmarks/bench_engines.py --quick         # W5 only, a few rounds
    python benchmarks/bench_engines.py --readme        # also rewrite README's performance table

For each workload and pass it prints every contender's median and 25th percentile, the ratio of
poolnd's time to the fastest peer's (PyTorch, JAX, NumPy; < 1 is faster), and for the forward
passes the fraction of the copy roofline: the time a plain copy (measured in the same run) would
need to read the input once and write the output once, divided by poolnd's time.

Passes: "forward" is the functional op; "train fwd" the layer's forward, which keeps what backward
needs (PyTorch: max_pool with indices; JAX: the vjp's forward); "backward" the layer's backward
(PyTorch: ``*_with_indices_backward`` / ``avg_pool*_backward``; JAX: the jitted vjp). PyTorch runs
with 2 threads. float32 throughout.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys

import numpy as np

import poolnd
from _timing import interleaved, load_average, p25

WORKLOADS = {
    "W1": ("max", 2, (32, 64, 112, 112), dict(kernel_size=2, stride=2), "NCHW"),
    "W2": ("max", 2, (16, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1), "NCHW"),
    "W3": ("avg", 2, (32, 64, 112, 112), dict(kernel_size=2, stride=2), "NCHW"),
    "W4": ("max", 2, (32, 112, 112, 64), dict(kernel_size=2, stride=2), "NHWC"),
    "W5": ("max", 2, (64, 32, 28, 28), dict(kernel_size=2, stride=2), "NCHW"),
    "W6": ("max", 3, (4, 32, 64, 64, 64), dict(kernel_size=2, stride=2), "NCDHW"),
}
ROOFLINE_TARGETS = ("W1", "W3", "W4", "W6")


def _numpy_idiom(op, k, kw, layout):
    """The fastest plain-NumPy way for kernel == stride, no padding (reshape and reduce)."""
    if kw.get("padding", 0) or kw["kernel_size"] != kw.get("stride", kw["kernel_size"]):
        return None
    s = kw["kernel_size"]
    red = np.max if op == "max" else np.mean

    def f(x):
        if layout.endswith("C"):             # N, *spatial, C
            shp = (x.shape[0],) + sum(((n // s, s) for n in x.shape[1:-1]), ()) + x.shape[-1:]
            axes = tuple(2 + 2 * i for i in range(k))
        else:
            shp = x.shape[:2] + sum(((n // s, s) for n in x.shape[2:]), ())
            axes = tuple(3 + 2 * i for i in range(k))
        return red(x.reshape(shp), axis=axes)
    return f


def _torch_contenders(torch, op, k, kw, x, dy, layout):
    F = torch.nn.functional
    xt = torch.from_numpy(x)
    if layout.endswith("C"):                 # a channels-last tensor of NCHW shape
        xt = xt.permute(0, k + 1, *range(1, k + 1))
        dyt = torch.from_numpy(dy).permute(0, k + 1, *range(1, k + 1))
    else:
        dyt = torch.from_numpy(dy)
    ks, st, pd = kw["kernel_size"], kw.get("stride", kw["kernel_size"]), kw.get("padding", 0)
    if op == "max":
        fn = getattr(F, f"max_pool{k}d")
        _, idx = fn(xt, ks, st, pd, return_indices=True)
        back = getattr(torch.ops.aten, f"max_pool{k}d_with_indices_backward")
        return (lambda: fn(xt, ks, st, pd), lambda: fn(xt, ks, st, pd, return_indices=True),
                lambda: back(dyt, xt, [ks] * k, [st] * k, [pd] * k, [1] * k, False, idx))
    fn = getattr(F, f"avg_pool{k}d")
    back = getattr(torch.ops.aten, f"avg_pool{k}d_backward")
    return (lambda: fn(xt, ks, st, pd), lambda: fn(xt, ks, st, pd),
            lambda: back(dyt, xt, [ks] * k, [st] * k, [pd] * k, False, True, None))


def _jax_contenders(jax, op, k, kw, x, dy, layout):
    import jax.numpy as jnp
    ks, st, pd = kw["kernel_size"], kw.get("stride", kw["kernel_size"]), kw.get("padding", 0)
    cl = layout.endswith("C")
    win = (1,) + (ks,) * k + (1,) if cl else (1, 1) + (ks,) * k
    strides = (1,) + (st,) * k + (1,) if cl else (1, 1) + (st,) * k
    pads = ((0, 0),) + ((pd, pd),) * k + ((0, 0),) if cl else ((0, 0), (0, 0)) + ((pd, pd),) * k
    if op == "max":
        f = lambda a: jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, win, strides, pads)
    else:
        f = lambda a: jax.lax.reduce_window(a, 0.0, jax.lax.add, win, strides, pads) / ks ** k
    xj = jnp.asarray(x)
    dyj = jnp.asarray(dy)
    fwd = jax.jit(f)
    train = jax.jit(lambda a: jax.vjp(f, a))
    _, vjp_fn = train(xj)
    back = jax.jit(lambda fn, g: fn(g)[0])
    back(vjp_fn, dyj).block_until_ready()
    return (lambda: fwd(xj).block_until_ready(),
            lambda: jax.block_until_ready(train(xj)),
            lambda: back(vjp_fn, dyj).block_until_ready())


def run_workload(name, engines, repeats, peers):
    op, k, shape, kw, layout = WORKLOADS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    cls = {("max", 2): poolnd.MaxPool2d, ("max", 3): poolnd.MaxPool3d,
           ("avg", 2): poolnd.AvgPool2d}[(op, k)]
    fn = {("max", 2): poolnd.max_pool2d, ("max", 3): poolnd.max_pool3d,
          ("avg", 2): poolnd.avg_pool2d}[(op, k)]
    groups = {"forward": {}, "train fwd": {}, "backward": {}}
    dy = None
    for e in engines:
        layer = cls(layout=layout, engine=e, **kw)
        y = layer.forward(x)
        dy = np.ones_like(y) if dy is None else dy
        groups["forward"][f"poolnd[{e}]"] = lambda e=e: fn(x, layout=layout, engine=e, **kw)
        groups["train fwd"][f"poolnd[{e}]"] = lambda layer=layer: layer.forward(x)
        groups["backward"][f"poolnd[{e}]"] = lambda layer=layer: layer.backward(dy)
    if "torch" in peers:
        f, t, b = _torch_contenders(peers["torch"], op, k, kw, x, dy, layout)
        groups["forward"]["torch"], groups["train fwd"]["torch"], groups["backward"]["torch"] = \
            f, t, b
    if "jax" in peers:
        f, t, b = _jax_contenders(peers["jax"], op, k, kw, x, dy, layout)
        groups["forward"]["jax"], groups["train fwd"]["jax"], groups["backward"]["jax"] = f, t, b
    idiom = _numpy_idiom(op, k, kw, layout)
    if idiom is not None:
        groups["forward"]["numpy idiom"] = lambda: idiom(x)
    src, dst = x.copy(), np.empty_like(x)
    groups["forward"]["copy"] = lambda: np.copyto(dst, src)
    out_bytes = dy.nbytes
    results = []
    for pass_name, group in groups.items():
        times = interleaved(group, repeats=repeats)
        results.append((pass_name, times))
    return results, x.nbytes, out_bytes


def report(name, results, in_bytes, out_bytes, engines):
    rows = []
    op, k, shape, kw, layout = WORKLOADS[name]
    desc = f"{name} {op}_pool{k}d {kw} {layout} {'x'.join(map(str, shape))}"
    print(f"\n{desc}")
    copy_q = None
    for pass_name, times in results:
        if "copy" in times:
            copy_q = p25(times["copy"])
        peers = {n: t for n, t in times.items() if not n.startswith("poolnd") and n != "copy"}
        if pass_name == "backward":
            peers = {n: t for n, t in peers.items() if n == "torch"} or peers
        best_peer = min(peers, key=lambda n: p25(peers[n])) if peers else None
        for n, t in times.items():
            m, q = statistics.median(t), p25(t)
            line = f"  {pass_name:9s} {n:14s} median {m * 1e3:8.2f} ms  p25 {q * 1e3:8.2f} ms"
            if n.startswith("poolnd") and best_peer:
                rq = q / p25(peers[best_peer])
                rm = m / statistics.median(peers[best_peer])
                line += f"  x{rq:.2f} p25 (x{rm:.2f} median) vs {best_peer}"
                roof = None
                if pass_name != "backward" and copy_q:
                    roof = copy_q * (in_bytes + out_bytes) / in_bytes / q
                    line += f"  roofline {roof:.0%}"
                rows.append(dict(workload=name, desc=desc, pass_name=pass_name, engine=n,
                                 ratio_p25=rq, ratio_med=rm, peer=best_peer, roofline=roof))
            print(line)
    if copy_q:
        print(f"  copy: {in_bytes / copy_q / 1e9:.1f} GB/s (input bytes / p25 copy time)")
    return rows


def markdown(rows, header):
    out = [header, "",
           "| workload | pass | poolnd / fastest peer (p25) | (median) | fastest peer | "
           "copy roofline |", "|---|---|---|---|---|---|"]
    for r in rows:
        roof = f"{r['roofline']:.0%}" if r["roofline"] is not None else "—"
        out.append(f"| {r['desc']} | {r['pass_name']} | {r['ratio_p25']:.2f} | "
                   f"{r['ratio_med']:.2f} | {r['peer']} | {roof} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="W5 only, 5 rounds")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--engines", default="numba")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--readme", action="store_true", help="rewrite README's performance table")
    args = ap.parse_args(argv)
    peers = {}
    try:
        import torch
        torch.set_num_threads(2)
        peers["torch"] = torch
    except ImportError:
        pass
    if not args.no_jax:
        try:
            import jax
            peers["jax"] = jax
        except ImportError:
            pass
    names = ["W5"] if args.quick else args.workloads.split(",")
    repeats = 5 if args.quick else args.repeats
    engines = args.engines.split(",")
    import numba
    header = (f"{platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, numba "
              f"{numba.__version__} ({numba.get_num_threads()} threads), "
              + ", ".join(f"{n} {m.__version__}" for n, m in peers.items())
              + f"; {repeats} interleaved rounds; {load_average()}")
    print("#", header)
    rows = []
    for name in names:
        results, ib, ob = run_workload(name, engines, repeats, peers)
        rows += report(name, results, ib, ob, engines)
    table = markdown(rows, "Measured with `python benchmarks/bench_engines.py` on " + header + ".")
    print("\n" + table)
    if args.readme:
        path = os.path.join(os.path.dirname(__file__), "..", "README.md")
        text = open(path).read()
        text = re.sub(r"<!-- perf:start -->.*<!-- perf:end -->",
                      "<!-- perf:start -->\n" + table + "\n<!-- perf:end -->", text, flags=re.S)
        open(path, "w").write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
