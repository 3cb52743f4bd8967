"""OME-Zarr multiscale pyramids: ``poolnd.pyramid(source, dest, ...)`` and ``poolnd pyramid``.

An application of the library, like the demo: it reads a source, loops over levels, pools
blocks with ``poolnd.pool``, writes Zarr chunk by chunk, and writes the OME-NGFF metadata last.
It owns the NGFF vocabulary (axes, scale, translation) and nothing else. The file is split the
way ngff-zarr splits methods from metadata:

- the plan (``plan``): every check, the level shapes, chunks, factors and transforms, computed
  from the source's metadata alone; nothing is written, the source is opened read-only;
- chunk I/O (``_Chunks``): whole chunks of a local Zarr array read as one file read and one
  numcodecs decode, and written as one encode and one atomic file write, the bytes zarr itself
  writes (anything else goes through zarr);
- the method (``_level_task``): level k is ``poolnd.pool(level k-1, mode, factors,
  ceil_mode=True, count_include_pad=False, rounding=...)``: one task reads a block of level
  k-1 as written in DEST (never full resolution) that starts on a window boundary and covers
  several of level k's chunks (up to ``TASK_BYTES`` read), pools it in memory (its windows are
  exactly the level's, so the result is the in-memory one bit for bit) and writes its chunks;
  never a whole level in memory. A block of whole chunks whose sides the factors divide is
  decoded chunk by chunk in place and pooled as a batch of chunks (``_pool_by_chunks``);
- level 0: a Zarr source whose chunks, dtype, format and codecs DEST's level 0 shares (the
  default: DEST takes the source's chunks and codecs) is copied as stored, chunk file by chunk
  file, by level 1's tasks, which decode those same bytes: one read and one decode of the
  source, no re-encoding. Otherwise level 0 is written like any level. Every level poolnd
  encodes is compressed with zstd level ``ZSTD_LEVEL``;
- the metadata (``_multiscales``): axes, per-level scale and translation (a window reduction
  shifts the origin by ``(factor - 1) / 2`` pixels of the finer level), ``type`` and
  ``metadata`` naming the method and its arguments;
- the run (``build``): the scheduler (Dask's threaded one, or ``dask.distributed``), resumption
  and writing.

Resumption. The DEST group carries a ``"poolnd"`` attribute while unfinished: the arguments of
the run and ``levels_complete``, bumped after each pass (a level, or levels 0 and 1 together
when level 0 is copied) has written its last chunk. A rerun with the same arguments keeps the
complete levels, lists the chunk keys of the first incomplete ones (every chunk is written,
even an all-fill one, so a present key is a written chunk; each chunk file is written to
``<key>.<uuid>.partial`` and renamed) and computes only the missing chunks; a level-0 chunk
already in DEST is read from there. The multiscales metadata replaces the ``"poolnd"``
attribute at the very end, so a DEST with multiscales is finished, and one with neither
attribute is not ours.

Dask, distributed, numcodecs and zarr are imported here, so ``import poolnd`` imports this
module only when ``poolnd.pyramid`` is first used.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import shutil
import sys
import threading
import uuid

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
# chunk I/O: whole chunks of one Zarr array, read and written without zarr's per-chunk machinery
# ----------------------------------------------------------------------------------------------

#: The compression of every chunk poolnd encodes: Zstandard level 1. On a noisy uint16 volume it
#: stores within 2% of zarr's default (zstd level 0, which Zstandard reads as its level 3) and
#: encodes about 5x faster (580 against 105 MB/s per core here), and every Zarr reader decodes it.
ZSTD_LEVEL = 1


def _compressor(zarr_format: int):
    if zarr_format == 2:
        from numcodecs import Zstd
        return Zstd(level=ZSTD_LEVEL)
    from zarr.codecs import ZstdCodec
    return ZstdCodec(level=ZSTD_LEVEL)


class _Identity:
    """The codec of uncompressed chunks."""

    @staticmethod
    def decode(data, out=None):
        if out is None:
            return data
        np.copyto(np.frombuffer(out, np.uint8), np.frombuffer(data, np.uint8))
        return out

    @staticmethod
    def encode(data):
        return data


def _numcodec(arr):
    """The numcodecs codec that turns a stored chunk of ``arr`` into its C-order native bytes
    and back, or None where zarr must do it (another store, filters, F order, a foreign byte
    order, sharding, a codec without a numcodecs twin)."""
    from zarr.storage import LocalStore
    if not isinstance(arr.store_path.store, LocalStore):
        return None
    md, dt = arr.metadata, np.dtype(arr.dtype)
    if md.zarr_format == 2:
        if md.filters or md.order != "C" or not (dt.isnative or dt.itemsize == 1):
            return None
        return md.compressor or _Identity
    import numcodecs
    from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec
    codecs = md.codecs
    if not codecs or not isinstance(codecs[0], BytesCodec) or len(codecs) > 2:
        return None
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)
    if dt.itemsize > 1 and endian != sys.byteorder:
        return None
    if len(codecs) == 1:
        return _Identity
    c = codecs[1]
    if isinstance(c, ZstdCodec):
        return numcodecs.Zstd(level=c.level, checksum=c.checksum)
    if isinstance(c, GzipCodec):
        return numcodecs.GZip(level=c.level)
    if isinstance(c, BloscCodec):
        return numcodecs.Blosc()          # decode only: a blosc frame carries its settings
    return None


class _Chunks:
    """Whole-chunk reads and writes of one Zarr array (built inside each task).

    Where ``_numcodec`` finds a codec, a chunk read is one file read and one decode, and a write
    (of the chunks poolnd encodes: zstd or none) one encode and one atomic file write
    (``<key>.<uuid>.partial``, then a rename, as zarr's local store does). The bytes are zarr's
    own: the same numcodecs call on the same chunk, padded with the fill value past the array's
    edge. Anything else goes through zarr (``arr[region]``), which is slower per chunk, never
    different."""

    def __init__(self, arr):
        self.arr = arr
        self.shape, self.chunks = tuple(arr.shape), tuple(arr.chunks)
        self.dtype = np.dtype(arr.dtype)
        self.fill = arr.fill_value if arr.fill_value is not None else 0
        self.codec = _numcodec(arr)
        self.encodes = self.codec is _Identity or type(self.codec).__name__ == "Zstd"
        if self.codec is not None:
            store = arr.store_path.store
            self.root = os.path.join(str(store.root), arr.store_path.path)
        self._dirs: set[str] = set()     # folders this instance made (or found) for put

    def region(self, idx) -> tuple[slice, ...]:
        return tuple(slice(i * c, min((i + 1) * c, s))
                     for i, c, s in zip(idx, self.chunks, self.shape))

    def path(self, idx) -> str:
        return os.path.join(self.root, self.arr.metadata.encode_chunk_key(tuple(idx)))

    def stored(self, idx) -> bytes | None:
        try:
            with open(self.path(idx), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, idx, data) -> None:
        path = self.path(idx)
        folder = os.path.dirname(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = f"{path}.{uuid.uuid4().hex}.partial"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def _data(self, idx, mirror: _Chunks | None, mirror_has: bool) -> bytes | None:
        """Chunk ``idx`` as stored (None: never written, all fill value). With ``mirror``
        (DEST's level 0 when it stores chunks exactly as this source does, ``_copies``): the
        mirror's where the mirror has it (looked for only if ``mirror_has``: a resumed level
        0), else this array's, first written to the mirror as they are: level 0 copied and
        level 1's input decoded from one read of each chunk."""
        data = mirror.stored(idx) if mirror is not None and mirror_has else None
        if data is None:
            data = self.stored(idx)
            if mirror is not None:
                if data is None:         # never written here: all fill value
                    own = mirror.region(idx)
                    _write_block(np.full(tuple(r.stop - r.start for r in own), self.fill,
                                         mirror.dtype), mirror.arr, own)
                else:
                    mirror.put(idx, data)
        return data

    def read(self, region, mirror: _Chunks | None = None, mirror_has=True) -> np.ndarray:
        """The values in ``region`` (a tuple of slices), each chunk's bytes from ``_data``,
        decoded into one reused buffer, then copied into the block."""
        if self.codec is None:
            return np.asarray(self.arr[region])
        out = np.empty(tuple(r.stop - r.start for r in region), self.dtype)
        buf = np.empty(self.chunks, self.dtype)
        ranges = [range(r.start // c, -(-r.stop // c)) for r, c in zip(region, self.chunks)]
        for idx in itertools.product(*ranges):
            part = [(max(i * c, r.start), min((i + 1) * c, r.stop))
                    for i, c, r in zip(idx, self.chunks, region)]
            dst = tuple(slice(a - r.start, b - r.start) for (a, b), r in zip(part, region))
            data = self._data(idx, mirror, mirror_has)
            if data is None:
                out[dst] = self.fill
                continue
            self.codec.decode(data, out=buf)
            out[dst] = buf[tuple(slice(a - i * c, b - i * c)
                                 for (a, b), i, c in zip(part, idx, self.chunks))]
        return out

    def whole(self, region) -> bool:
        """Whether ``region`` is whole chunks, none cut by the array's edge (``read_chunks``)."""
        return self.codec is not None and all(
            r.start % c == 0 and r.stop % c == 0 for r, c in zip(region, self.chunks))

    def read_chunks(self, region, mirror: _Chunks | None = None, mirror_has=True) -> np.ndarray:
        """The values in ``region`` (``whole``) chunk by chunk: an array of shape (chunks per
        axis..., chunk shape...), each chunk decoded straight into its place (no copy)."""
        grid = [range(r.start // c, r.stop // c) for r, c in zip(region, self.chunks)]
        out = np.empty(tuple(len(g) for g in grid) + self.chunks, self.dtype)
        for pos, idx in zip(np.ndindex(out.shape[:len(grid)]), itertools.product(*grid)):
            data = self._data(idx, mirror, mirror_has)
            if data is None:
                out[pos] = self.fill
            else:
                self.codec.decode(data, out=out[pos])
        return out

    def write(self, block, region) -> None:
        """Write ``block``, the whole of one chunk's ``region``."""
        if self.codec is None or not self.encodes:
            self.arr[region] = block
            return
        if block.shape != self.chunks:
            full = np.full(self.chunks, self.fill, self.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        data = self.codec.encode(np.ascontiguousarray(block, self.dtype).data)
        self.put(tuple(r.start // c for r, c in zip(region, self.chunks)), data)


# ----------------------------------------------------------------------------------------------
# the method: one task reads a block of the previous level, pools it, writes its chunks
# ----------------------------------------------------------------------------------------------

#: the most bytes of the previous level one task reads (a memory_limit below 8x this lowers it).
#: 32 MB, not 64: glibc serves blocks up to 32 MB from its heap once one is freed (its dynamic
#: mmap threshold), so a task's block reuses the last one's pages; a 64 MB block is a fresh
#: mapping every task, every page faulted in and zeroed again.
TASK_BYTES = 32 << 20


def _read(arr, region, mirror=None, mirror_has=True) -> np.ndarray:
    if isinstance(arr, _Npy):
        return arr[region]
    return _Chunks(arr).read(region, None if mirror is None else _Chunks(mirror), mirror_has)


def _pool_by_chunks(prev, region, factors, pool_args, mirror, mirror_has) -> np.ndarray | None:
    """``poolnd.pool`` of ``region`` of ``prev``, computed on its chunks as a batch, or None
    where this does not apply. Where the region is whole chunks of a Zarr array read by
    numcodecs (``_Chunks.whole``), every axis is a space axis and each chunk side is a
    multiple of its factor, every window lies inside one chunk: the chunks, each decoded in
    place (``read_chunks``), are pooled as one batch (layout "N" + the axes) and the results
    put back in the region's order: the same windows, so the same values, bit for bit, as
    the pool of the region (one engine sums a window in one order whatever the array), and
    no copy of the input into one block."""
    layout = pool_args["layout"]
    if isinstance(prev, _Npy) or not set(layout) <= set("ZYX"):
        return None
    src = _Chunks(prev)
    c = src.chunks
    if not src.whole(region) or any(n % f for n, f in zip(c, factors)):
        return None
    import poolnd
    x = src.read_chunks(region, None if mirror is None else _Chunks(mirror), mirror_has)
    d = len(c)
    g = x.shape[:d]
    y = poolnd.pool(x.reshape((-1,) + c), **{**pool_args, "layout": "N" + layout})
    y = y.reshape(g + y.shape[1:])                  # (chunks per axis..., pooled chunk...)
    order = [a for k in range(d) for a in (k, d + k)]
    return np.ascontiguousarray(y.transpose(order)).reshape(
        tuple(n * m for n, m in zip(g, y.shape[d:])))


def _pool_args(p: Plan) -> dict:
    """The keywords of the ``poolnd.pool`` call that makes a level from the previous one."""
    space = tuple(f for a, f in zip(p.axes, p.factors) if a.type == "space")
    kw = dict(count_include_pad=False) if p.mode == "avg" else {}
    return dict(mode=p.mode, kernel_size=space, ceil_mode=True, spatial_dims=len(space),
                layout=p.layout, rounding=p.rounding, **kw)


def _level_task(prev, target, idxs, factors, pool_args, level0=None,
                level0_resumed=True) -> None:
    """One task: the chunks ``idxs`` of ``target`` (level k): their bounding block of level
    k-1 (``prev``, as written; the source for level 0) read once, pooled in memory by
    ``poolnd.pool`` when ``factors`` is given (the block starts on a window boundary, so its
    windows are exactly the level's), and each chunk written whole by ``_write_block``. With
    ``level0`` (then ``prev`` is the source and ``target`` level 1), the block's level-0
    chunks are copied there as stored on the way (``_Chunks.read``'s mirror; DEST's level 0
    is looked at first only where ``level0_resumed``: the run resumes an unfinished DEST)."""
    import poolnd
    idxs = [tuple(int(i) for i in idx) for idx in idxs]   # an array in the graph: not walked
    t = _Chunks(target)
    lo = [min(i[d] for i in idxs) * c for d, c in enumerate(t.chunks)]
    hi = [min((max(i[d] for i in idxs) + 1) * c, s)
          for d, (c, s) in enumerate(zip(t.chunks, t.shape))]
    if factors is None:
        y = _read(prev, tuple(slice(a, b) for a, b in zip(lo, hi)))
    else:
        region = tuple(slice(a * f, min(b * f, s))
                       for a, b, f, s in zip(lo, hi, factors, prev.shape))
        y = _pool_by_chunks(prev, region, factors, pool_args, level0, level0_resumed)
        if y is None:
            y = poolnd.pool(_read(prev, region, level0, level0_resumed), **pool_args)
    for idx in idxs:
        region = t.region(idx)
        _write_block(y[tuple(slice(r.start - a, r.stop - a) for r, a in zip(region, lo))],
                     target, region)


def _copy_task(source, target, idxs) -> None:
    """One task: level 0's chunks ``idxs`` copied from the source as stored (DEST's level 0
    stores them exactly as the source does: same chunks, dtype, codecs); a chunk the source
    never wrote (all fill value) is written."""
    s, t = _Chunks(source), _Chunks(target)
    for idx in (tuple(int(i) for i in idx) for idx in idxs):
        data = s.stored(idx)
        if data is None:
            region = t.region(idx)
            _write_block(np.full(tuple(r.stop - r.start for r in region), s.fill, t.dtype),
                         target, region)
        else:
            t.put(idx, data)


class _Boxed:
    """Task arguments handed to Dask as they are. Dask walks every argument of a delayed call
    looking for collections, dataclasses field by field: a zarr.Array is one, and walking
    two or three of them took 1.3 ms per task (23 ms for the 18 tasks of a level)."""
    __slots__ = ("args",)

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):                   # pickled for a cluster: __slots__, no __dict__
        return _Boxed, self.args


def _boxed(fn):
    """``fn`` taking its arguments from one ``_Boxed``."""
    def call(box):
        return fn(*box.args)
    call.__name__ = fn.__name__             # the task's name on a progress bar or dashboard
    return call


def _copies(source, target) -> bool:
    """Whether level 0 can be the source's stored chunks, byte for byte: both local Zarr
    arrays of one format, chunk shape and dtype, with the same codecs (and, on format 2, C
    order and no filters), not sharded."""
    import zarr
    from zarr.storage import LocalStore
    if not isinstance(source, zarr.Array) or \
            not isinstance(source.store_path.store, LocalStore):
        return False
    a, b = source.metadata, target.metadata
    if a.zarr_format != b.zarr_format or tuple(source.chunks) != tuple(target.chunks) or \
            tuple(source.shape) != tuple(target.shape) or \
            np.dtype(source.dtype) != np.dtype(target.dtype):
        return False
    if a.zarr_format == 2:
        return a.order == b.order == "C" and not a.filters and not b.filters and \
            a.compressor == b.compressor
    return getattr(source, "shards", None) is None and a.codecs == b.codecs and \
        a.data_type == b.data_type


def _group(grid, in_bytes: int, budget: int, min_tasks: int) -> tuple[int, ...]:
    """Chunks per task along each axis: doubled axis by axis (last axis first) while a task
    reads at most ``budget`` bytes (``in_bytes`` per chunk) and the level keeps at least
    ``min_tasks`` tasks."""
    g = [1] * len(grid)
    grew = True
    while grew:
        grew = False
        for d in reversed(range(len(grid))):
            if g[d] >= grid[d]:
                continue
            new = g.copy()
            new[d] = min(grid[d], 2 * g[d])
            tasks = math.prod(-(-n // k) for n, k in zip(grid, new))
            if math.prod(new) * in_bytes <= budget and tasks >= min_tasks:
                g, grew = new, True
    return tuple(g)


def _level_tasks(p: Plan, k: int, prev, target, slots: int,
                 level0=None) -> tuple[list, int, int, bool]:
    """The tasks that write level ``k``'s chunks not yet in DEST -> (tasks, chunks to write,
    chunks in all, whether they are copies). ``level0``: level 1's tasks also copy level 0
    (``_level_task``)."""
    import dask
    chunks = p.level_chunks(k)
    grid = tuple(-(-s // c) for s, c in zip(p.shapes[k], chunks))
    present = _present(target) if p.resume else set()
    prefix = target.store_path.path
    encode = target.metadata.encode_chunk_key
    missing = [idx for idx in np.ndindex(grid) if f"{prefix}/{encode(idx)}" not in present]
    copy = k == 0 and _copies(prev, target)
    in_bytes = math.prod(chunks) * p.dtype.itemsize * (math.prod(p.factors) if k else 1)
    budget = TASK_BYTES if p.memory_limit is None else min(TASK_BYTES, p.memory_limit // 8)
    g = _group(grid, in_bytes, budget, 4 * slots)
    blocks: dict = {}
    for idx in missing:
        blocks.setdefault(tuple(i // n for i, n in zip(idx, g)), []).append(idx)
    if copy:
        task = dask.delayed(_boxed(_copy_task), pure=False)
        tasks = [task(_Boxed(prev, target, np.array(idxs))) for idxs in blocks.values()]
    else:
        task = dask.delayed(_boxed(_level_task), pure=False)
        factors = p.factors if k else None
        args = _pool_args(p)
        tasks = [task(_Boxed(prev, target, np.array(idxs), factors, args, level0, p.resume))
                 for idxs in blocks.values()]
    return tasks, len(missing), math.prod(grid), copy


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
# the run: scheduler, resumption, chunk writes
# ----------------------------------------------------------------------------------------------

def _write_block(block, target, region) -> None:
    """Write one computed block into its (whole, aligned) chunk region: every chunk write of
    a pyramid goes through here but level 0's byte copies."""
    _Chunks(target).write(block, region)


def _present(arr) -> set[str]:
    """The keys stored under ``arr`` (one listing, no data read). A chunk is written to
    ``<key>.<uuid>.partial`` and renamed; a run killed mid-write leaves such a file, which is
    deleted here (DEST is ours: an unfinished poolnd pyramid)."""
    from zarr.core.sync import sync
    store = arr.store_path.store

    async def keys():
        found = {k async for k in store.list_prefix(arr.store_path.path + "/")}
        for k in [k for k in found if k.endswith(".partial")]:
            await store.delete(k)
            found.discard(k)
        return found
    return sync(keys())


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

    @property
    def slots(self) -> int:
        """How many tasks run at once: the cluster's threads, or this machine's cores."""
        if self.client is None:
            return os.cpu_count() or 1
        workers = self.client.scheduler_info()["workers"].values()
        return max(1, sum(w.get("nthreads", 1) for w in workers))

    def run(self, tasks: list, label: str) -> None:
        if not tasks:
            return
        if self.p.progress:
            print(label, file=sys.stderr, flush=True)
        if self.client is None:
            # the threaded scheduler by its function: dask.compute(scheduler="threads") first
            # imports distributed to look for a client (0.3 s of a cold run, holding the GIL)
            import dask
            import dask.threaded
            if self.p.progress:
                from dask.diagnostics import ProgressBar
                with ProgressBar(out=sys.stderr):
                    dask.compute(*tasks, scheduler=dask.threaded.get)
            else:
                dask.compute(*tasks, scheduler=dask.threaded.get)
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


def _codecs(p: Plan, k: int) -> dict:
    """``create_array``'s codec keywords for level ``k``: zstd level ``ZSTD_LEVEL``, but for a
    level 0 that can be the source's chunks as stored (``_copies``): the source's codecs."""
    import zarr
    from zarr.storage import LocalStore
    src = p.source
    if k == 0 and isinstance(src, zarr.Array) and \
            isinstance(src.store_path.store, LocalStore) and \
            src.metadata.zarr_format == p.zarr_format and \
            tuple(src.chunks) == p.level_chunks(0) and getattr(src, "shards", None) is None and \
            np.dtype(src.dtype) == p.dtype.newbyteorder("=") and \
            (p.zarr_format == 3 or (src.metadata.order == "C" and not src.metadata.filters)):
        kw = dict(compressors=src.compressors, filters=src.filters, fill_value=src.fill_value)
        if p.zarr_format == 3:
            kw["serializer"] = src.serializer
        return kw
    return dict(compressors=_compressor(p.zarr_format), fill_value=0)


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
        kw = _codecs(p, k)
        if kw.get("fill_value") is None:
            kw["fill_value"] = 0
        if p.zarr_format == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}    # NGFF 0.4's rule
        else:
            kw["dimension_names"] = [ax.name for ax in p.axes]
        a = g.create_array(name=name, shape=p.shapes[k], chunks=chunks,
                           dtype=p.dtype.newbyteorder("="), **kw)
    # a stored key then means a written chunk, even an all-zero one (resumption reads keys)
    return a.with_config({"write_empty_chunks": True})


def _warm_up(p: Plan) -> None:
    """One pool call on a tiny array of the plan's dtype: Numba loads (or compiles) the
    kernels a level needs, in a thread of its own, instead of inside the first task."""
    import poolnd
    try:
        poolnd.pool(np.zeros(tuple(min(2, s) for s in p.shapes[0]), p.dtype), **_pool_args(p))
    except Exception:                   # the first task then pays, or raises, itself
        pass


def build(p: Plan) -> list[tuple[int, ...]]:
    """Write the pyramid ``p`` plans (resuming an unfinished one); metadata last."""
    with _Runner(p) as runner:
        if runner.client is None:       # load the kernels while the first chunks are read
            threading.Thread(target=_warm_up, args=(p,), daemon=True).start()
        g = _open_dest(p)
        done = g.attrs[MARKER]["levels_complete"] if p.resume else 0
        prev = p.source
        n = len(p.shapes)
        k = 0
        while k < n:
            target = _level_target(p, g, k)
            if k < done:
                prev, k = target, k + 1
                continue
            if k == 0 and n > 1 and _copies(prev, target) and _numcodec(prev) is not None:
                # level 0 is the source's chunks as stored: copied by level 1's tasks, which
                # decode the same bytes (one read of the source)
                if p.resume:                # a copy a kill cut short left a .partial file
                    _present(target)
                nxt = _level_target(p, g, 1)
                tasks, todo, total, _ = _level_tasks(p, 1, prev, nxt, runner.slots, target)
                runner.run(tasks, f"poolnd pyramid: levels 0 and 1/{n - 1} {p.shapes[1]}: "
                                  f"{todo} of {total} chunks to write, level 0 copied from "
                                  f"the source as stored")
                prev, k = nxt, 2
            else:
                tasks, todo, total, copy = _level_tasks(p, k, prev, target, runner.slots)
                runner.run(tasks, f"poolnd pyramid: level {k}/{n - 1} {p.shapes[k]}: "
                                  f"{todo} of {total} chunks to "
                                  f"{'copy from the source' if copy else 'write'}")
                prev, k = target, k + 1
            g.attrs.put({MARKER: {**p.record(), "levels_complete": k}})
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
        source: 512 per space axis in 2-d, 64 in 3-d, 1 on time and channel). Where level 0
        has a Zarr source's chunks, format and dtype, it is the source's chunks copied as
        stored (its codecs kept, nothing decoded and re-encoded); every other level is
        compressed with Zstandard level 1.
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
    use the elements present. Each level is computed from the previous one as written, a
    block of chunks per task (never a whole level in memory); the multiscales metadata is
    written last.

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
