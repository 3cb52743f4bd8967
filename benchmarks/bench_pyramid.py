"""A full OME-Zarr pyramid of a volume larger than the workers' memory (run by hand, not in CI).

    PYTHONPATH=src python benchmarks/bench_pyramid.py                  # 8 GB on 2 x 1 GB workers
    PYTHONPATH=src python benchmarks/bench_pyramid.py --gb 2 --memory-limit 400MB --small-mb 128

Writes a uint16 (z, y, x) Zarr v3 volume of --gb GB (chunks 64^3; smooth signal + noise, so it
compresses like a real light-sheet volume, a little), then, in one run:

1. the time of reading the source once (decompress every chunk, threaded, nothing kept);
2. ``poolnd.pyramid`` of the whole volume on a LocalCluster of --workers processes limited to
   --memory-limit each (through ``scheduler=ADDRESS``, so that this script can sample each
   worker's RSS every 0.2 s): wall time, input MB/s, peak RSS per worker, and whether any worker
   was restarted (the nanny kills a worker that passes the limit);
3. on a --small-mb volume (a cut of the same data; default 256 MB, a 512^3 cut of 268 MB; both
   peers also handle --small-mb 1024, a 768^3 cut of 906 MB, in 0.2 GB of RSS), --repeats
   rounds, interleaved (the order rotates each round, a settle pause between runs), each run
   a fresh process that imports its tool first and then times one cold call: reading the
   cut once through zarr; reading and decoding its chunk files once with numcodecs (the
   floor of any pyramid that decodes its source, poolnd's included); poolnd on the threaded
   scheduler; ome-zarr-py's ``write_image`` (method local_mean, its mean); ngff-zarr's
   ``to_multiscales`` + ``to_ngff_zarr`` (method itkwasm_bin_shrink, its mean): the same
   factors (2 on each axis) and levels, each into a folder of its own (all removed at the
   end, none during the rounds: this VM's ext4 has no journal, and there a file created
   soon after many deletions costs a scan of the recently freed inodes). A first untimed
   round fills each tool's on-disk caches (Numba's kernels, itkwasm's compiled module).
   Medians and 25th percentiles, and poolnd's speed over each peer's from them.

Needs the dask extra, ome-zarr (test extra) and ngff-zarr (``pip install ngff-zarr``; only for
this benchmark). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np


def make_volume(path, shape, chunks):
    import dask.array as da

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        z, y, x = np.meshgrid(*(np.arange(a, b, dtype=np.float32) for a, b in loc),
                              indexing="ij")
        rng = np.random.default_rng(loc[0][0] * 7919 + loc[1][0] * 31 + loc[2][0])
        signal = 2000 + 1500 * np.sin(z / 37) * np.cos(y / 23) * np.sin(x / 29)
        return (signal + rng.normal(0, 60, signal.shape)).astype(np.uint16)
    v = da.map_blocks(block, chunks=tuple(((c,) * (s // c) + ((s % c,) if s % c else ()))
                                          for s, c in zip(shape, chunks)), dtype=np.uint16)
    v.to_zarr(path, overwrite=True, zarr_format=3)


def _has_volume(path, shape):
    """Whether ``path`` holds the volume of an earlier run with ``--dir`` (then reused)."""
    import zarr
    try:
        return tuple(zarr.open_array(path, mode="r").shape) == tuple(shape)
    except Exception:
        return False


def read_once(path):
    import dask.array as da
    t = time.perf_counter()
    da.from_zarr(path).max().compute(scheduler="threads")
    return time.perf_counter() - t


def decode_once(path, copy_to=None):
    """Every chunk file of the Zarr array ``path`` read and decoded once, by numcodecs into one
    buffer per thread, nothing else (one thread per core): the floor of any pyramid of it
    that decodes its source. With ``copy_to`` (a folder), each file's bytes are also written
    there, as read (the folders made first, outside the timing): the floor of one that also
    keeps level 0 as stored, as poolnd does (which then pools, encodes and writes the
    levels)."""
    from concurrent.futures import ThreadPoolExecutor

    import zarr
    from poolnd._pyramid import _numcodec
    a = zarr.open_array(path, mode="r")
    codec = _numcodec(a)
    files = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs if f != "zarr.json"]
    if copy_to is not None:
        for f in files:
            os.makedirs(os.path.dirname(os.path.join(copy_to, os.path.relpath(f, path))),
                        exist_ok=True)
    n = os.cpu_count() or 1

    def work(share):
        buf = np.empty(a.chunks, a.dtype)
        for f in share:
            with open(f, "rb") as fh:
                data = fh.read()
            codec.decode(data, out=buf)
            if copy_to is not None:
                with open(os.path.join(copy_to, os.path.relpath(f, path)), "wb") as fh:
                    fh.write(data)
    t = time.perf_counter()
    with ThreadPoolExecutor(n) as ex:
        list(ex.map(work, [files[i::n] for i in range(n)]))
    return time.perf_counter() - t


class OthersCPU:
    """CPU seconds the rest of the machine used while the block ran (all cores, from
    /proc/stat, less this process's own and its finished children's): how much another job
    on a shared machine took."""

    @staticmethod
    def _busy():
        with open("/proc/stat") as f:
            v = [int(n) for n in f.readline().split()[1:]]
        return (sum(v[:3]) + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")    # user nice sys irq

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self):
        self.t, self.busy, self.own = time.perf_counter(), self._busy(), self._own()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.seconds = self._busy() - self.busy - (self._own() - self.own)
        self.note = f"others' CPU {max(self.seconds, 0):.1f} s of {os.cpu_count()} x " \
                    f"{self.wall:.1f} s"


class RssSampler:
    """Peak RSS of each worker of a distributed client, sampled every ``dt`` seconds."""

    def __init__(self, client, dt=0.2):
        self.client, self.dt, self.peak, self.names = client, dt, {}, set()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss
        while not self._stop.is_set():
            try:
                for w, r in self.client.run(rss).items():
                    self.peak[w] = max(self.peak.get(w, 0), r)
                    self.names.add(w)
            except Exception:
                pass
            time.sleep(self.dt)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def poolnd_cluster(src, dest, workers, memory_limit):
    import distributed
    import poolnd
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, memory_limit=memory_limit) as cluster:
        with distributed.Client(cluster) as client:
            start = set(client.scheduler_info()["workers"])
            with RssSampler(client) as rss:
                t = time.perf_counter()
                shapes = poolnd.pyramid(src, dest, scheduler=cluster.scheduler_address,
                                        progress=False, overwrite=True)
                wall = time.perf_counter() - t
            restarted = set(client.scheduler_info()["workers"]) != start or \
                len(rss.names) > workers
    return wall, shapes, rss.peak, restarted


def ome_zarr_py(src, dest, nlevels):
    import dask.array as da
    import zarr
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image
    x = da.from_zarr(src)
    t = time.perf_counter()
    g = zarr.open_group(dest, mode="w")
    # per axis: a list of ints scales y and x only here (ome-zarr 0.18: level 1 of a 512^3
    # volume came out 512x256x256), and poolnd's pyramid halves z too
    write_image(x, g, scale_factors=[dict.fromkeys("zyx", 2 ** k) for k in range(1, nlevels)],
                method=Methods.LOCAL_MEAN, axes="zyx",
                storage_options=dict(chunks=(64, 64, 64)))
    return time.perf_counter() - t


def ngff_zarr(src, dest, nlevels):
    import dask.array as da
    import ngff_zarr as nz
    x = da.from_zarr(src)
    t = time.perf_counter()
    img = nz.to_ngff_image(x, dims=["z", "y", "x"])
    ms = nz.to_multiscales(img, scale_factors=[2 ** k for k in range(1, nlevels)],
                           method=nz.Methods.ITKWASM_BIN_SHRINK, chunks=64)
    nz.to_ngff_zarr(dest, ms, version="0.5")
    return time.perf_counter() - t


SMALL_RUNS = {
    "zarr-read": "read the small source once (zarr, threads)",
    "decode": "read + decode its chunk files once (numcodecs, threads)",
    "decode+copy": "read + decode its chunk files once and write them to a new folder",
    "poolnd": "poolnd.pyramid, threads",
    "ome-zarr-py": "ome-zarr-py write_image (local_mean), threads",
    "ngff-zarr": "ngff-zarr to_multiscales (itkwasm_bin_shrink), threads",
}


def one_run(name, src, dest, nlevels):
    """One cold timed call of ``name`` (``SMALL_RUNS``) in this fresh process: its tool
    imported first, outside the timing, as a user's script has it."""
    for module in ("dask.array", "zarr"):
        importlib.import_module(module)
    if name == "zarr-read":
        return read_once(src)
    if name == "decode":
        return decode_once(src)
    if name == "decode+copy":
        return decode_once(src, copy_to=dest)
    if name == "poolnd":
        import poolnd
        import poolnd.engines._numba  # noqa: F401
        t = time.perf_counter()
        shapes = poolnd.pyramid(src, dest, progress=False, levels=nlevels)
        wall = time.perf_counter() - t
        assert len(shapes) == nlevels
        return wall
    if name == "ome-zarr-py":
        importlib.import_module("ome_zarr.writer")
        return ome_zarr_py(src, dest, nlevels)
    importlib.import_module("ngff_zarr")
    return ngff_zarr(src, dest, nlevels)


def small_rounds(small, scratch, nlevels, repeats, names, pause=2.0):
    """{name: [wall s per timed round]}, each run a fresh ``--one`` process (``one_run``);
    round 0 is untimed (caches), the order rotates by one each round."""
    import subprocess
    walls: dict = {n: [] for n in names}
    for r in range(repeats + 1):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            dest = os.path.join(scratch, f"small_{name}_{r}.ome.zarr")
            os.sync()
            time.sleep(pause)
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name,
                                  small, dest, str(nlevels)], capture_output=True, text=True,
                                 timeout=900)
            if out.returncode:
                raise RuntimeError(f"{name}: {out.stderr.strip().splitlines()[-1:]}")
            if r:
                walls[name].append(float(out.stdout.strip().splitlines()[-1]))
        print(f"# round {r}: " + ", ".join(f"{n} {w[-1]:.2f} s" for n, w in walls.items() if w
                                           and r), flush=True)
    return walls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=8.0, help="big volume, GB (default 8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1GB", help="per worker (default 1GB)")
    ap.add_argument("--small-mb", type=float, default=256.0,
                    help="the volume all three tools pyramid (default 256: a 512^3 cut)")
    ap.add_argument("--dir", default=None, help="scratch folder, kept, its volume reused by the "
                    "next run (default: a temporary one, deleted)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed rounds of the small-volume runs (default 5)")
    ap.add_argument("--skip-others", action="store_true")
    ap.add_argument("--one", nargs=4, metavar=("NAME", "SRC", "DEST", "LEVELS"),
                    help=argparse.SUPPRESS)   # one run of small_rounds, in its own process
    args = ap.parse_args(argv)
    if args.one:
        name, src, dest, nlevels = args.one
        print(one_run(name, src, dest, int(nlevels)))
        return 0
    from dask.utils import format_bytes, parse_bytes
    scratch = args.dir or tempfile.mkdtemp(prefix="bench_pyramid_")
    os.makedirs(scratch, exist_ok=True)
    print(f"# uptime: {open('/proc/loadavg').read().split()[:3]} (load 1/5/15 min); "
          f"{os.cpu_count()} cores; scratch {scratch}", flush=True)
    rows = []
    rounds_note = ""
    for name in os.listdir(scratch):    # an earlier run's (--dir), removed before any timing
        if name.startswith("small_") and name.endswith(".ome.zarr"):
            shutil.rmtree(os.path.join(scratch, name), ignore_errors=True)
    try:
        big = None
        if args.gb > 0:
            side = round((args.gb * 1e9 / 2) ** (1 / 3) / 64) * 64
            shape = (side, side, side)
            big = os.path.join(scratch, "big.zarr")
            t = time.perf_counter()
            if not (args.dir and _has_volume(big, shape)):
                make_volume(big, shape, (64, 64, 64))
            mb = np.prod(shape) * 2 / 1e6
            print(f"# {shape} uint16 ({mb:.0f} MB) ready in {time.perf_counter() - t:.1f} s",
                  flush=True)
            t_read = read_once(big)
            rows.append(("read the source once (threads)", mb, t_read, "-", "-"))
            print(rows[-1], flush=True)
            wall, shapes, peak, restarted = poolnd_cluster(big, os.path.join(scratch, "big.ome.zarr"),
                                                           args.workers, args.memory_limit)
            limit = parse_bytes(args.memory_limit)
            rows.append((f"poolnd.pyramid, {args.workers} workers x {args.memory_limit}", mb, wall,
                         ", ".join(format_bytes(v) for v in peak.values()),
                         "restarted!" if restarted else
                         f"no restarts; peak {max(peak.values()) / limit:.0%} of limit"))
            print(rows[-1], f"levels {shapes}", flush=True)

        s = round((args.small_mb * 1e6 / 2) ** (1 / 3) / 64) * 64
        small = os.path.join(scratch, "small.zarr")
        if big is None:
            if not (args.dir and _has_volume(small, (s,) * 3)):
                make_volume(small, (s,) * 3, (64, 64, 64))
        else:
            import dask.array as da
            da.from_zarr(big)[:s, :s, :s].to_zarr(small, overwrite=True, zarr_format=3)
        os.sync()                   # its dirty pages written back before the timings
        smb = s ** 3 * 2 / 1e6
        from poolnd._pyramid import level_shapes
        nlevels = len(level_shapes((s,) * 3, (2, 2, 2), (64, 64, 64)))
        names = list(SMALL_RUNS) if not args.skip_others else ["zarr-read", "decode", "decode+copy", "poolnd"]
        with OthersCPU() as o:
            walls = small_rounds(small, scratch, nlevels, args.repeats, names)
        med = {n: float(np.median(w)) for n, w in walls.items()}
        p25 = {n: float(np.percentile(w, 25)) for n, w in walls.items()}
        for n in names:
            note = f"{s}^3, {len(walls[n])} runs"
            if n in ("ome-zarr-py", "ngff-zarr"):
                note += f", {nlevels} levels; poolnd {med[n] / med['poolnd']:.1f}x its speed " \
                        f"(p25 {p25[n] / p25['poolnd']:.1f}x)"
            elif n == "poolnd":
                note += f", {nlevels} levels; {med['decode+copy'] / med[n]:.2f}x the speed " \
                        "of the floor above"
            elif n == "decode":
                note += "; the floor of a pyramid that decodes its source"
            elif n == "decode+copy":
                note += "; the floor of one that also keeps level 0 as stored"
            rows.append((SMALL_RUNS[n], smb, (med[n], p25[n]), "-", note))
        rounds_note = f"# the {args.repeats + 1} rounds of the small runs: {o.note}"
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n# uptime at the end: {open('/proc/loadavg').read().split()[:3]}")
    if rounds_note:
        print(rounds_note)
    print("\n| run | input MB | wall s, median (p25) | input MB/s, median (p25) | "
          "peak RSS per worker | note |")
    print("|---|---:|---:|---:|---|---|")
    for name, mb, wall, peak, note in rows:
        m, q = wall if isinstance(wall, tuple) else (wall, wall)
        w = f"{m:.2f}" if m == q else f"{m:.2f} ({q:.2f})"
        r = f"{mb / m:.0f}" if m == q else f"{mb / m:.0f} ({mb / q:.0f})"
        print(f"| {name} | {mb:.0f} | {w} | {r} | {peak} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
