"""OME-Zarr multiscale pyramids: ``poolnd.pyramid(source, dest, ...)`` and ``poolnd pyramid``.

An application of the library, like the demo: it reads a source, loops over levels, calls the
Dask front door (``poolnd.pool`` on a ``dask.array.Array``), writes Zarr chunk by chunk, and
writes the OME-NGFF metadata last. It owns the NGFF vocabulary (axes, scale, translation) and
nothing else. The file is split the way ngff-zarr splits methods from metadata:

- the plan (``plan``): every check, the level shapes, chunks, factors and transforms, computed
  from the source's metadata alone; nothing is written, the source is opened read-only;
- the method (``_level_array``): level k is ``poolnd.pool(level k-1, mode, factors,
  ceil_mode=True, count_include_pad=False, rounding=...)`` on level k-1 read back lazily from
  DEST (never from full resolution), with read chunks ``factor x`` the level's chunks so that
  each output block is one DEST chunk (one engine call, one region write, no halo);
- the metadata (``_multiscales``): axes, per-level scale and translation (a window reduction
  shifts the origin by ``(factor - 1) / 2`` pixels of the finer level), ``type`` and
  ``metadata`` naming the method and its arguments;
- the run (``build``): the scheduler, resumption and writing.

Resumption. The DEST group carries a ``"poolnd"`` attribute while unfinished: the arguments of
the run and ``levels_complete``, bumped after each level's last chunk is written. A rerun with
the same arguments keeps the complete levels, lists the chunk keys of the first incomplete one
(``write_empty_chunks`` is on, so a present key is a written chunk; the local store writes each
chunk file atomically) and computes only the missing chunks. The multiscales metadata replaces
the ``"poolnd"`` attribute at the very end, so a DEST with multiscales is finished, and one with
neither attribute is not ours.

Dask, distributed and zarr are imported here, so ``import poolnd`` imports this module only
when ``poolnd.pyramid`` is first used.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import numpy as np

from . import _args

__all__ = ["pyramid", "plan", "build", "Plan", "MODES"]

OP = "pyramid"

#: Reductions a pyramid level can use: those that keep the dtype and the range of the values
#: (sum and lp do not). median and mode join when the library has them.
MODES = tuple(m for m in ("avg", "max", "min", "median", "mode") if m in _args.MODES)

AXIS_TYPES = {"t": "time", "c": "channel"}     # any other single-letter name is a space axis
DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}   # ome-zarr-py's defaults
#: default chunk side of the space axes of a .npy source, by number of space axes
DEFAULT_CHUNK = {2: 512, 3: 64}
NGFF_VERSION = {2: "0.4", 3: "0.5"}
MARKER = "poolnd"                               # group attribute of an unfinished pyramid


def fail(message: str, exc: type[Exception] = ValueError):
    _args.fail(OP, message, exc)


@dataclasses.dataclass(frozen=True)
class Axis:
    name: str
    type: str                    # "time", "channel", "space" (NGFF's types)
    unit: str | None = None

    def ngff(self) -> dict:
        d = {"name": self.name, "type": self.type}
        if self.unit is not None:
            d["unit"] = self.unit
        return d


@dataclasses.dataclass
class Plan:
    """Everything ``build`` needs, checked: the source, the levels, the run's settings."""
    source: object               # zarr.Array or _Npy, read-only
    source_path: str | None
    dest: str
    mode: str
    rounding: str
    axes: tuple[Axis, ...]
    factors: tuple[int, ...]
    chunks: tuple[int, ...]      # chunk shape of every level (clipped to the level's shape)
    shapes: list[tuple[int, ...]]
    dtype: np.dtype
    zarr_format: int
    scale0: tuple[float, ...]
    translation0: tuple[float, ...]
    extra_transforms: list | None    # the source's multiscale-level coordinateTransformations
    scheduler: str | None
    workers: int | None
    memory_limit: int | None
    progress: bool
    resume: bool                 # DEST is an unfinished pyramid of these arguments
    overwrite: bool

    def record(self) -> dict:
        """The arguments a resumed run must share with the run that left DEST (JSON)."""
        return {"source": self.source_path, "source_shape": list(self.shapes[0]),
                "source_dtype": self.dtype.str, "mode": self.mode, "rounding": self.rounding,
                "axes": [a.name for a in self.axes], "factors": list(self.factors),
                "chunks": list(self.chunks), "shapes": [list(s) for s in self.shapes],
                "zarr_format": self.zarr_format}

    def level_chunks(self, k: int) -> tuple[int, ...]:
        return tuple(min(c, max(s, 1)) for c, s in zip(self.chunks, self.shapes[k]))

    @property
    def layout(self) -> str:
        """The ``layout`` of the pool call: time as batch, channel as channel, space letters."""
        space = iter("ZYX"[3 - sum(a.type == "space" for a in self.axes):])
        return "".join({"time": "N", "channel": "C"}.get(a.type) or next(space)
                       for a in self.axes)


# ----------------------------------------------------------------------------------------------
# sources
# ----------------------------------------------------------------------------------------------

class _Npy:
    """A ``.npy`` file as an array-like for ``da.from_array``: memory-mapped on first read in
    each process, and pickled as its path (a memmap would pickle its whole data)."""

    def __init__(self, path: str, shape, dtype):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self._mm = None

    def __getstate__(self):
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype}

    def __setstate__(self, state):
        self.__init__(state["path"], state["shape"], state["dtype"])

    def __getitem__(self, key):
        if self._mm is None:
            self._mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return np.asarray(self._mm[key])


def _multiscales_attrs(attrs) -> list | None:
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        return ome["multiscales"]
    return attrs.get("multiscales")


def _open_source(source):
    """-> (array, path or None, zarr_format or None, axes or None, scale0, translation0,
    extra multiscale transforms). Opens read-only; never writes."""
    import zarr
    if isinstance(source, (zarr.Array, zarr.Group)):
        node, path = source, None
    elif isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        if not os.path.exists(path):
            fail(f"source={os.fspath(source)!r} does not exist")
        if os.path.isfile(path):
            if not path.endswith(".npy"):
                fail(f"source={os.fspath(source)!r} is a file but not a .npy file (a source "
                     f"is a Zarr array, an OME-Zarr image or a .npy file)")
            try:
                mm = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as e:
                fail(f"source={os.fspath(source)!r} is not a readable .npy file ({e})")
            return _Npy(path, mm.shape, mm.dtype), path, None, None, None, None, None
        try:
            node = zarr.open(path, mode="r")
        except Exception as e:          # zarr raises several kinds for "not a zarr node"
            fail(f"source={os.fspath(source)!r} is neither a Zarr array nor an OME-Zarr image "
                 f"({type(e).__name__}: {e})")
    else:
        fail(f"source must be a path or a zarr.Array/zarr.Group, got {type(source).__name__}",
             TypeError)
    fmt = node.metadata.zarr_format
    if isinstance(node, zarr.Array):
        return node, path, fmt, None, None, None, None
    ms = _multiscales_attrs(node.attrs)
    if not ms:
        fail(f"source={path or source!r} is a Zarr group without OME-NGFF multiscales "
             f"metadata (a source is a Zarr array, an OME-Zarr image or a .npy file)")
    m = ms[0]
    ds = m["datasets"][0]
    arr = node[ds["path"]]
    axes = None
    if "axes" in m:
        axes = tuple(Axis(a, AXIS_TYPES.get(a, "space")) if isinstance(a, str)
                     else Axis(a["name"], a.get("type", AXIS_TYPES.get(a["name"], "space")),
                               a.get("unit")) for a in m["axes"])
    scale = translation = None
    for t in ds.get("coordinateTransformations", ()):
        if t.get("type") == "scale" and "scale" in t:
            scale = tuple(float(v) for v in t["scale"])
        elif t.get("type") == "translation" and "translation" in t:
            translation = tuple(float(v) for v in t["translation"])
    return arr, path, fmt, axes, scale, translation, m.get("coordinateTransformations")


# ----------------------------------------------------------------------------------------------
# the plan: checks, shapes, chunks (no writing)
# ----------------------------------------------------------------------------------------------

def _parse_axes(axes, ndim: int, from_source) -> tuple[Axis, ...]:
    if axes is None:
        if from_source is not None:
            result = from_source
        elif ndim in DEFAULT_AXES:
            result = tuple(Axis(n, AXIS_TYPES.get(n, "space")) for n in DEFAULT_AXES[ndim])
        else:
            fail(f"a source of {ndim} dims needs axes= (OME-NGFF images have 2 to 5 axes: "
                 f"optional 't', optional 'c', then 2 or 3 space axes)")
    else:
        if isinstance(axes, str):
            names = list(axes)
        elif isinstance(axes, (list, tuple)) and all(isinstance(a, str) for a in axes):
            names = list(axes)
        else:
            fail(f"axes must be a string of axis letters such as 'tczyx' or a list of names, "
                 f"got {axes!r}", TypeError)
        units = {a.name: a.unit for a in from_source or ()}
        result = tuple(Axis(n, AXIS_TYPES.get(n, "space"), units.get(n)) for n in names)
    names = [a.name for a in result]
    label = f"axes={''.join(names) if all(len(n) == 1 for n in names) else names!r}"
    if len(result) != ndim:
        fail(f"{label} names {len(result)} axes, but the source has {ndim} dims")
    if len(set(names)) != len(names):
        fail(f"{label} repeats an axis name")
    types = [a.type for a in result]
    order = {"time": 0, "channel": 1, "space": 2}
    if any(t not in order for t in types):
        fail(f"{label}: axis types {types} must be 'time', 'channel' or 'space'")
    if types.count("time") > 1 or types.count("channel") > 1 or \
            not 2 <= types.count("space") <= 3 or \
            [order[t] for t in types] != sorted(order[t] for t in types):
        fail(f"{label} is not an OME-NGFF axis order: an optional time axis 't', an optional "
             f"channel axis 'c', then 2 or 3 space axes (e.g. 'tczyx', 'cyx', 'zyx')")
    return result


def _per_axis(name: str, value, axes, fill_space=None) -> tuple[int, ...]:
    """An int (for every space axis; 1 on time and channel), a sequence of one int per axis,
    or one per space axis."""
    space = [a.type == "space" for a in axes]
    value = _args.as_plain(value)
    if _args._is_int(value):
        vals = tuple(int(value) if s else 1 for s in space)
    elif isinstance(value, (list, tuple)) and all(_args._is_int(v) for v in value):
        if len(value) == len(axes):
            vals = tuple(int(v) for v in value)
        elif len(value) == sum(space):
            it = iter(value)
            vals = tuple(int(next(it)) if s else 1 for s in space)
        else:
            fail(f"{name}={tuple(value)!r} has {len(value)} entries; give one per axis "
                 f"({len(axes)}: {''.join(a.name for a in axes)}), one per space axis "
                 f"({sum(space)}), or one int")
    else:
        fail(f"{name} must be an int or a sequence of ints, got {value!r}", TypeError)
    if any(v < 1 for v in vals):
        fail(f"{name}={vals!r} must be >= 1 on every axis")
    return vals


def _check_scheduler(scheduler, workers, memory_limit):
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        fail(f"scheduler={scheduler!r} must be a scheduler address such as "
             f"'tcp://10.0.0.5:8786'", TypeError)
    if workers is not None and (not _args._is_int(workers) or workers < 1):
        fail(f"workers={workers!r} must be an int >= 1 (the workers of a local cluster)")
    limit = None
    if memory_limit is not None:
        from dask.utils import parse_bytes
        try:
            limit = int(parse_bytes(memory_limit)) if not _args._is_int(memory_limit) \
                else int(memory_limit)
        except (ValueError, TypeError):
            limit = -1
        if limit <= 0:
            fail(f"memory_limit={memory_limit!r} must be a positive size such as '2GB' or a "
                 f"number of bytes (per worker of a local cluster)")
    if scheduler is not None and (workers is not None or memory_limit is not None):
        fail(f"scheduler={scheduler!r} names an existing cluster; workers= and memory_limit= "
             f"start a local one: give one or the other")
    return limit


def level_shapes(shape, factors, chunks, levels=None) -> list[tuple[int, ...]]:
    """Level 0 is ``shape``; each next level is ``ceil(previous / factor)``; the list stops at
    the first level whose pooled axes (factor > 1) all fit within one chunk, or at ``levels``
    levels. Pure arithmetic (tested by hand-computed cases)."""
    shapes = [tuple(shape)]
    pooled = [i for i, f in enumerate(factors) if f > 1]
    while levels is None or len(shapes) < levels:
        s = shapes[-1]
        if all(s[i] <= chunks[i] for i in pooled):
            break
        shapes.append(tuple(-(-n // f) for n, f in zip(s, factors)))
    return shapes


def transforms(scale0, translation0, factors, n: int):
    """Per level ``(scale, translation)``: ``scale_k = scale_{k-1} * f`` and ``translation_k =
    translation_{k-1} + (f - 1) / 2 * scale_{k-1}`` (a window of f pixels is centred (f-1)/2
    finer pixels after its first one)."""
    out = [(tuple(float(s) for s in scale0), tuple(float(t) for t in translation0))]
    for _ in range(1, n):
        s, t = out[-1]
        out.append((tuple(si * f for si, f in zip(s, factors)),
                    tuple(ti + (f - 1) / 2 * si for ti, si, f in zip(t, s, factors))))
    return out


def _dest_state(dest: str, record: dict | None = None):
    """-> "absent", "unfinished" (a poolnd pyramid left unfinished: resumable) with its
    record, or "other"."""
    if not os.path.exists(dest) or (os.path.isdir(dest) and not os.listdir(dest)):
        return "absent", None
    import zarr
    try:
        g = zarr.open_group(dest, mode="r")
    except Exception:
        return "other", None
    attrs = g.attrs.asdict()
    if MARKER in attrs and _multiscales_attrs(attrs) is None:
        return "unfinished", attrs[MARKER]
    return "other", None


def plan(source, dest, *, mode="avg", factors=2, levels=None, axes=None, chunks=None,
         rounding="nearest", zarr_format=None, scheduler=None, workers=None, memory_limit=None,
         progress=None, overwrite=False) -> Plan:
    """Check every argument and compute the levels; reads the source's metadata only, writes
    nothing. Raises ``ValueError``/``TypeError`` ("pyramid: ...") naming argument, value and
    rule."""
    if not isinstance(mode, str) or mode not in MODES:
        fail(f"mode={mode!r} must be one of {MODES} (reductions that keep the dtype and the "
             f"range of the values)")
    rounding = _args.check_rounding(OP, rounding)
    if zarr_format not in (None, 2, 3) or isinstance(zarr_format, bool):
        fail(f"zarr_format={zarr_format!r} must be 2 (OME-NGFF 0.4), 3 (OME-NGFF 0.5) or None "
             f"(the source's format)")
    if levels is not None and (not _args._is_int(levels) or levels < 1):
        fail(f"levels={levels!r} must be an int >= 1 (level 0 included) or None (until a level "
             f"fits in one chunk)")
    overwrite = _args.check_bool(OP, "overwrite", overwrite)
    if progress is not None:
        progress = _args.check_bool(OP, "progress", progress)
    limit = _check_scheduler(scheduler, workers, memory_limit)
    if not isinstance(dest, (str, os.PathLike)):
        fail(f"dest must be a local path, got {type(dest).__name__}", TypeError)

    arr, src_path, src_fmt, src_axes, scale0, translation0, extra = _open_source(source)
    shape, dtype = tuple(int(n) for n in arr.shape), np.dtype(arr.dtype)
    if dtype.kind not in "iuf":
        fail(f"source dtype {dtype} is not supported (integers or floats)")
    axes = _parse_axes(axes, len(shape), src_axes)
    factors = _per_axis("factors", factors, axes)
    for a, f in zip(axes, factors):
        if a.type != "space" and f != 1:
            fail(f"factors={factors!r} pools the {a.type} axis {a.name!r}; time and channel "
                 f"axes are never pooled (factor 1 there)")
    if all(f == 1 for f in factors):
        fail(f"factors={factors!r} pools nothing: at least one space axis needs a factor >= 2")
    if chunks is None:
        src_chunks = getattr(arr, "chunks", None)
        if src_chunks is not None and not isinstance(arr, _Npy):
            chunks = tuple(int(c) for c in src_chunks)
        else:
            side = DEFAULT_CHUNK[sum(a.type == "space" for a in axes)]
            chunks = tuple(side if a.type == "space" else 1 for a in axes)
    else:
        chunks = _per_axis("chunks", chunks, axes)
    zarr_format = zarr_format or src_fmt or 3
    n = len(shape)
    scale0 = scale0 if scale0 is not None and len(scale0) == n else (1.0,) * n
    translation0 = translation0 if translation0 is not None and len(translation0) == n \
        else (0.0,) * n

    dest = os.path.abspath(os.fspath(dest))
    if src_path is not None:
        inside = lambda a, b: a == b or a.startswith(b.rstrip(os.sep) + os.sep)   # noqa: E731
        if inside(dest, src_path) or inside(src_path, dest):
            fail(f"dest={dest!r} is, holds or lies inside source={src_path!r}; a pyramid never "
                 f"writes over its source")
    p = Plan(arr, src_path, dest, mode, rounding, axes, factors, chunks,
             level_shapes(shape, factors, chunks, levels), dtype, zarr_format, scale0,
             translation0, extra, scheduler, workers, limit,
             sys.stderr.isatty() if progress is None else progress, False, overwrite)
    state, record = _dest_state(dest)
    if state == "unfinished" and not overwrite:
        theirs = {k: v for k, v in record.items() if k != "levels_complete"}
        if theirs != p.record():
            diff = [k for k in p.record() if theirs.get(k) != p.record()[k]]
            fail(f"dest={dest!r} is an unfinished pyramid of other arguments ({', '.join(diff)}"
                 f" differ); rerun with the same arguments to resume it, or overwrite=True "
                 f"to start again")
        p.resume = True
    elif state == "other" and not overwrite:
        fail(f"dest={dest!r} exists and is not an unfinished poolnd pyramid; pass "
             f"overwrite=True (--overwrite) to replace it")
    return p


# ----------------------------------------------------------------------------------------------
# the method: one level as a lazy Dask array whose blocks are the level's chunks
# ----------------------------------------------------------------------------------------------

def _level_array(p: Plan, k: int, prev):
    """Level ``k`` as a lazy Dask array with one block per DEST chunk: level 0 the source read
    in DEST's chunks, level k the pool of ``prev`` (level k-1 as written, read back lazily) in
    read chunks of ``factor x`` level k's chunks, so each output block is one chunk."""
    import dask.array as da
    import poolnd
    chunks = p.level_chunks(k)
    if k == 0:
        if isinstance(prev, _Npy):
            return da.from_array(prev, chunks=chunks, asarray=True, fancy=False)
        return da.from_zarr(prev, chunks=chunks)
    x = da.from_zarr(prev, chunks=tuple(c * f for c, f in zip(chunks, p.factors)))
    space = tuple(f for a, f in zip(p.axes, p.factors) if a.type == "space")
    kw = dict(count_include_pad=False) if p.mode == "avg" else {}
    y = poolnd.pool(x, p.mode, space, ceil_mode=True, spatial_dims=len(space),
                    layout=p.layout, rounding=p.rounding, **kw)
    assert y.shape == p.shapes[k], (y.shape, p.shapes[k])
    return y


# ----------------------------------------------------------------------------------------------
# the metadata
# ----------------------------------------------------------------------------------------------

def _multiscales(p: Plan) -> dict:
    """The group attributes of the finished image: NGFF 0.4 (format 2) or 0.5 (format 3)."""
    import poolnd
    name = os.path.basename(p.dest.rstrip(os.sep))
    for ext in (".zarr", ".ome"):
        name = name[:-len(ext)] if name.endswith(ext) else name
    datasets = [{"path": str(k), "coordinateTransformations": [
                    {"type": "scale", "scale": list(s)},
                    {"type": "translation", "translation": list(t)}]}
                for k, (s, t) in enumerate(transforms(p.scale0, p.translation0, p.factors,
                                                      len(p.shapes)))]
    args = {"mode": p.mode, "kernel_size": list(p.factors), "stride": list(p.factors),
            "ceil_mode": True}
    if p.mode == "avg":
        args.update(count_include_pad=False, rounding=p.rounding)
    m = {"name": name, "axes": [a.ngff() for a in p.axes], "datasets": datasets,
         "type": p.mode,
         "metadata": {"description": "each level is poolnd.pool of the previous level "
                                     "(partial edge windows use the elements present)",
                      "method": "poolnd.pool", "version": poolnd.__version__, "args": args}}
    if p.extra_transforms:
        m["coordinateTransformations"] = p.extra_transforms
    version = NGFF_VERSION[p.zarr_format]
    if p.zarr_format == 2:
        return {"multiscales": [{"version": version, **m}]}
    return {"ome": {"version": version, "multiscales": [m]}}


# ----------------------------------------------------------------------------------------------
# the run: scheduler, resumption, region writes
# ----------------------------------------------------------------------------------------------

def _write_block(block, target, region) -> None:
    """One task: write one computed block into its (whole, aligned) chunk region."""
    target[region] = block


def _present(arr) -> set[str]:
    """The keys stored under ``arr`` (one listing, no data read). The local store writes a
    chunk to ``<key>.<uuid>.partial`` and renames it; a run killed mid-write leaves such a
    file, which is deleted here (DEST is ours: an unfinished poolnd pyramid)."""
    from zarr.core.sync import sync
    store = arr.store_path.store

    async def keys():
        found = {k async for k in store.list_prefix(arr.store_path.path + "/")}
        for k in [k for k in found if k.endswith(".partial")]:
            await store.delete(k)
            found.discard(k)
        return found
    return sync(keys())


def _missing_writes(p: Plan, k: int, y, target) -> tuple[list, int]:
    """Write tasks for the chunks of level ``k`` not yet in DEST -> (tasks, chunks in all)."""
    import dask
    present = _present(target) if p.resume else set()
    blocks = y.to_delayed(optimize_graph=True)
    bounds = [np.concatenate([[0], np.cumsum(c)]) for c in y.chunks]
    write = dask.delayed(_write_block, pure=False)
    tasks = []
    for idx in np.ndindex(blocks.shape):
        key = f"{target.store_path.path}/{target.metadata.encode_chunk_key(idx)}"
        if key not in present:
            region = tuple(slice(int(b[i]), int(b[i + 1])) for b, i in zip(bounds, idx))
            tasks.append(write(blocks[idx], target, region))
    return tasks, blocks.size


class _Runner:
    """Runs task lists on the threaded scheduler, a local cluster or an existing one."""

    def __init__(self, p: Plan):
        self.p, self.client, self.cluster = p, None, None

    def __enter__(self):
        p = self.p
        if p.scheduler is not None:
            from distributed import Client
            self.client = Client(p.scheduler, timeout="20s")
        elif p.workers is not None or p.memory_limit is not None:
            from distributed import Client, LocalCluster
            kw = {} if p.workers is None else {"n_workers": p.workers}
            self.cluster = LocalCluster(host="127.0.0.1", dashboard_address=None,
                                        memory_limit=p.memory_limit or "auto",
                                        processes=True, **kw)
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def run(self, tasks: list, label: str) -> None:
        if not tasks:
            return
        if self.p.progress:
            print(label, file=sys.stderr, flush=True)
        if self.client is None:
            import dask
            if self.p.progress:
                from dask.diagnostics import ProgressBar
                with ProgressBar(out=sys.stderr):
                    dask.compute(*tasks, scheduler="threads")
            else:
                dask.compute(*tasks, scheduler="threads")
            return
        futures = self.client.compute(tasks)
        try:
            if self.p.progress:
                from distributed import progress
                progress(futures)
            self.client.gather(futures)
        finally:
            del futures


def _open_dest(p: Plan):
    import zarr
    if p.resume:
        return zarr.open_group(p.dest, mode="r+")
    if os.path.exists(p.dest):          # overwrite=True (checked in plan), or an empty folder
        shutil.rmtree(p.dest) if os.path.isdir(p.dest) else os.remove(p.dest)
    g = zarr.open_group(p.dest, mode="w", zarr_format=p.zarr_format)
    g.attrs.put({MARKER: {**p.record(), "levels_complete": 0}})
    return g


def _level_target(p: Plan, g, k: int):
    name = str(k)
    chunks = p.level_chunks(k)
    if p.resume and name in g:
        a = g[name]
        if tuple(a.shape) != p.shapes[k] or tuple(a.chunks) != chunks or \
                np.dtype(a.dtype) != p.dtype.newbyteorder("="):
            fail(f"dest={p.dest!r} level {k} has shape {a.shape}, chunks {a.chunks}, dtype "
                 f"{a.dtype}; this run writes {p.shapes[k]}, {chunks}, {p.dtype}; pass "
                 f"overwrite=True to start again")
    else:
        kw = {}
        if p.zarr_format == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}    # NGFF 0.4's rule
        else:
            kw["dimension_names"] = [ax.name for ax in p.axes]
        a = g.create_array(name=name, shape=p.shapes[k], chunks=chunks,
                           dtype=p.dtype.newbyteorder("="), fill_value=0, **kw)
    # a stored key then means a written chunk, even an all-zero one (resumption reads keys)
    return a.with_config({"write_empty_chunks": True})


def build(p: Plan) -> list[tuple[int, ...]]:
    """Write the pyramid ``p`` plans (resuming an unfinished one); metadata last."""
    with _Runner(p) as runner:
        g = _open_dest(p)
        done = g.attrs[MARKER]["levels_complete"] if p.resume else 0
        prev = p.source
        n = len(p.shapes)
        for k in range(n):
            target = _level_target(p, g, k)
            if k >= done:
                y = _level_array(p, k, prev)
                tasks, total = _missing_writes(p, k, y, target)
                runner.run(tasks, f"poolnd pyramid: level {k}/{n - 1} {p.shapes[k]}: "
                                  f"{len(tasks)} of {total} chunks to write")
                g.attrs.put({MARKER: {**p.record(), "levels_complete": k + 1}})
            prev = target
        g.attrs.put(_multiscales(p))    # last: a DEST with multiscales is finished
    return list(p.shapes)


def pyramid(source, dest, *, mode="avg", factors=2, levels=None, axes=None, chunks=None,
            rounding="nearest", zarr_format=None, scheduler=None, workers=None,
            memory_limit=None, progress=None, overwrite=False) -> list[tuple[int, ...]]:
    """Build an OME-Zarr multiscale image pyramid of ``source`` at ``dest``.

    Parameters
    ----------
    source : path or zarr.Array or zarr.Group
        A Zarr array (format 2 or 3), an OME-Zarr image (its level 0, axes, scale and
        translation), or a ``.npy`` file (memory-mapped). Opened read-only.
    dest : path
        A local folder: an OME-Zarr image group with levels at "0", "1", ..., NGFF 0.4 on Zarr
        format 2 or NGFF 0.5 on Zarr format 3.
    mode : {"avg", "max", "min", "median", "mode"}
        The reduction; "mode" for label images, "avg" for intensities.
    factors : int or sequence of int
        The window (= stride) per axis: an int for every space axis, one per axis, or one per
        space axis. Time and channel axes take 1 (they are never pooled).
    levels : int, optional
        At most this many levels, level 0 included. Default: until the first level whose pooled
        axes all fit within one chunk.
    axes : str or list of str, optional
        Axis names, e.g. "tczyx"; "t" is time, "c" channel, others space. Default: the OME-Zarr
        source's axes, else by dims: yx, zyx, czyx, tczyx.
    chunks : int or sequence of int, optional
        Chunk shape of every level (clipped to the level). Default: the source's chunks (a .npy
        source: 512 per space axis in 2-d, 64 in 3-d, 1 on time and channel).
    rounding : {"nearest", "trunc"}
        How an integer average rounds: to nearest, ties to even (default), or toward zero.
    zarr_format : {2, 3}, optional
        Default: the source's format (3 for a .npy file).
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler to run on.
    workers, memory_limit : int, int or str, optional
        Start a local cluster (loopback only, no dashboard, closed at the end) of ``workers``
        processes limited to ``memory_limit`` each (e.g. "2GB"). Default: Dask's threaded
        scheduler in this process.
    progress : bool, optional
        A progress bar on stderr; default: when stderr is a terminal.
    overwrite : bool
        Replace an existing ``dest``. Not needed to resume an unfinished pyramid of the same
        arguments: a rerun keeps its complete levels and chunks.

    Returns
    -------
    list of tuple of int
        The shapes of all levels, level 0 first.

    Level k equals, bit for bit, ``poolnd.pool(level k-1, mode, factors, ceil_mode=True,
    count_include_pad=False, rounding=rounding)`` computed in memory: partial edge windows
    use the elements present. Each level is computed from the previous one as written, chunk
    by chunk (never a whole level in memory); the multiscales metadata is written last.

    Examples
    --------
    >>> import os, tempfile, numpy as np, poolnd
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "vol.npy"), np.arange(20 * 16 * 16, dtype=np.uint16).reshape(20, 16, 16))
    >>> poolnd.pyramid(os.path.join(d, "vol.npy"), os.path.join(d, "vol.ome.zarr"), chunks=8,
    ...                progress=False)
    [(20, 16, 16), (10, 8, 8), (5, 4, 4)]
    """
    return build(plan(source, dest, mode=mode, factors=factors, levels=levels, axes=axes,
                      chunks=chunks, rounding=rounding, zarr_format=zarr_format,
                      scheduler=scheduler, workers=workers, memory_limit=memory_limit,
                      progress=progress, overwrite=overwrite))
