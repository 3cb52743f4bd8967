"""OME-Zarr pyramids: ``poolnd.pyramid`` and ``poolnd pyramid`` (API section 8).

Judges: a real NGFF validator (ome-zarr-models, NGFF 0.4 and 0.5), a real client (ome-zarr-py's
reader, what napari's plugin uses), the in-memory ``poolnd.pool`` of the previous level read
back from DEST, and hand-computed shapes, scales and translations. Also: a run SIGKILLed midway
and rerun gives the same bytes and rewrites no completed chunk; bad arguments exit 2 with one
line and never touch the source; a real two-process LocalCluster and the threaded scheduler.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import poolnd

pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
ozm04 = pytest.importorskip("ome_zarr_models.v04")
ozm05 = pytest.importorskip("ome_zarr_models.v05")
pytest.importorskip("ome_zarr.reader")
from ome_zarr.io import parse_url  # noqa: E402
from ome_zarr.reader import Reader  # noqa: E402

from poolnd import _pyramid  # noqa: E402
from poolnd.cli import main  # noqa: E402

SRC = os.path.dirname(os.path.dirname(poolnd.__file__))


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def expected_next(prev, mode, axes, factors, rounding="nearest"):
    """The contract's level k from level k-1, in memory."""
    layout = "".join({"t": "N", "c": "C"}.get(a, a.upper()) for a in axes)
    space = tuple(f for a, f in zip(axes, factors) if a not in "tc")
    kw = dict(count_include_pad=False) if mode == "avg" else {}
    return poolnd.pool(prev, mode, space, ceil_mode=True, spatial_dims=len(space),
                       layout=layout, rounding=rounding, **kw)


def validate(dest, zarr_format):
    """ome-zarr-models' Image (NGFF 0.4 on format 2, 0.5 on format 3): raises if invalid."""
    model = ozm04.Image if zarr_format == 2 else ozm05.Image
    return model.from_zarr(zarr.open_group(dest, mode="r"))


def read_levels(dest):
    """The levels as ome-zarr-py's reader sees them, and its metadata."""
    node = list(Reader(parse_url(str(dest)))())[0]
    return [np.asarray(a) for a in node.data], node.metadata


def check_pyramid(dest, source_array, mode, axes, factors, zarr_format, rounding="nearest"):
    validate(dest, zarr_format)
    levels, meta = read_levels(dest)
    g = zarr.open_group(str(dest), mode="r")
    assert np.array_equal(levels[0], source_array)
    for k in range(1, len(levels)):
        assert np.array_equal(levels[k], g[str(k)][:])      # the reader reads what was written
        want = expected_next(levels[k - 1], mode, axes, factors, rounding)
        assert levels[k].dtype == source_array.dtype
        assert levels[k].shape == want.shape
        assert np.array_equal(levels[k], want, equal_nan=True), k
    return levels, meta


def chunk_files(dest):
    """{relative path: (inode, mtime_ns)} of every chunk file (not metadata) under DEST."""
    out = {}
    for root, _, files in os.walk(dest):
        for f in files:
            if f in ("zarr.json", ".zarray", ".zattrs", ".zgroup"):
                continue
            st = os.stat(os.path.join(root, f))
            out[os.path.relpath(os.path.join(root, f), dest)] = (st.st_ino, st.st_mtime_ns)
    return out


def tree_bytes(dest):
    """{relative path: sha256} of every file under DEST."""
    out = {}
    for root, _, files in os.walk(dest):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, dest)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture
def vol(tmp_path, rng):
    """A uint16 (z, y, x) volume with no dim a multiple of 2 (ragged edges everywhere), as .npy."""
    x = rng.integers(0, 65536, size=(19, 37, 45), dtype=np.uint16)
    np.save(tmp_path / "vol.npy", x)
    return x, str(tmp_path / "vol.npy")


# ----------------------------------------------------------------------------------------------
# import, plan arithmetic
# ----------------------------------------------------------------------------------------------

def test_import_poolnd_imports_neither_dask_nor_zarr():
    code = ("import sys, poolnd; poolnd.__all__; "
            "print([m for m in ('dask', 'zarr', 'distributed') if m in sys.modules]); "
            "print(callable(poolnd.pyramid))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": SRC})
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
    assert poolnd.pyramid is _pyramid.pyramid and "pyramid" in poolnd.__all__


def test_threaded_pyramid_never_imports_distributed(tmp_path, vol):
    # dask.compute(scheduler="threads") imports distributed to look for a client: 0.3 s of a
    # cold run, holding the GIL; the threaded scheduler is passed as a function instead
    code = textwrap.dedent(f"""
        import sys, poolnd
        shapes = poolnd.pyramid({vol[1]!r}, {str(tmp_path / "out.ome.zarr")!r}, chunks=8,
                                progress=False)
        print(len(shapes), sorted(m for m in sys.modules if m.split(".")[0] == "distributed"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC})
    assert out.stdout.split("\n")[0] == "4 []"


def test_level_shapes_hand_computed():
    # (19, 37, 45) by (1, 2, 2), chunks 8: y 37 -> 19 -> 10 -> 5, x 45 -> 23 -> 12 -> 6; the
    # first level whose y and x fit in 8 is (19, 5, 6). z (factor 1) never counts.
    assert _pyramid.level_shapes((19, 37, 45), (1, 2, 2), (8, 8, 8)) == [
        (19, 37, 45), (19, 19, 23), (19, 10, 12), (19, 5, 6)]
    assert _pyramid.level_shapes((19, 37, 45), (1, 2, 2), (8, 8, 8), levels=2) == [
        (19, 37, 45), (19, 19, 23)]
    assert _pyramid.level_shapes((3, 7, 7), (1, 3, 3), (1, 8, 8)) == [(3, 7, 7)]  # fits: one
    assert _pyramid.level_shapes((2, 9, 100), (1, 3, 10), (1, 3, 4)) == [
        (2, 9, 100), (2, 3, 10), (2, 1, 1)]


def test_transforms_hand_computed():
    # scale doubles; translation grows by (f - 1) / 2 finer pixels: 0.5 * 1, then 0.5 * 2, ...
    t = _pyramid.transforms((1.0, 0.5, 0.25), (10.0, 0.0, -1.0), (1, 2, 3), 3)
    assert t[0] == ((1.0, 0.5, 0.25), (10.0, 0.0, -1.0))
    assert t[1] == ((1.0, 1.0, 0.75), (10.0, 0.25, -0.75))
    assert t[2] == ((1.0, 2.0, 2.25), (10.0, 0.75, 0.0))


# ----------------------------------------------------------------------------------------------
# every level from the previous one, validated, read by a real client
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,mode,zarr_format", [
    ("uint8", "avg", 3), ("uint16", "avg", 2), ("float32", "avg", 3), ("int16", "max", 2),
    ("float32", "min", 3)])
def test_levels_equal_pool_of_previous_level(tmp_path, rng, dtype, mode, zarr_format):
    info = np.iinfo(dtype) if dtype != "float32" else None
    x = (rng.integers(info.min, info.max, size=(2, 21, 33, 30), endpoint=True).astype(dtype)
         if info else rng.normal(100, 30, size=(2, 21, 33, 30)).astype(dtype))
    src = zarr.create_array(store=str(tmp_path / "src.zarr"), shape=x.shape, dtype=dtype,
                            chunks=(1, 5, 7, 8), zarr_format=zarr_format)
    src[:] = x
    dest = tmp_path / "out.zarr"
    shapes = poolnd.pyramid(str(tmp_path / "src.zarr"), str(dest), mode=mode, chunks=(1, 4, 8, 8),
                            progress=False)
    # z 21 -> 11 -> 6 -> 3, y 33 -> 17 -> 9 -> 5, x 30 -> 15 -> 8 -> 4: (3, 5, 4) fits (4, 8, 8)
    assert shapes == [(2, 21, 33, 30), (2, 11, 17, 15), (2, 6, 9, 8), (2, 3, 5, 4)]
    levels, meta = check_pyramid(dest, x, mode, "czyx", (1, 2, 2, 2), zarr_format)
    assert [lv.shape for lv in levels] == shapes
    assert [a["name"] for a in meta["axes"]] == list("czyx")
    assert [a["type"] for a in meta["axes"]] == ["channel", "space", "space", "space"]
    g = zarr.open_group(str(dest), mode="r")
    assert g.metadata.zarr_format == zarr_format
    assert g["2"].chunks == (1, 4, 8, 8) and g["3"].chunks == (1, 3, 5, 4)   # clipped
    ms = _pyramid._multiscales_attrs(g.attrs.asdict())[0]
    assert ms["type"] == mode and ms["metadata"]["args"]["kernel_size"] == [1, 2, 2, 2]
    assert _pyramid.MARKER not in g.attrs                       # finished: marker replaced


def test_uint8_average_rounds_half_to_even_and_edges_use_present_elements(tmp_path):
    # 1,2 -> 1.5 -> 2 (trunc: 1); 3,4 -> 3.5 -> 4; 2,3 -> 2.5 -> 2. A flat 200 image of odd
    # size stays 200 at the edge (zero padding would give 100 there).
    row = np.array([[1, 2, 3, 4, 2, 3]], dtype=np.uint8).repeat(2, axis=0)
    np.save(tmp_path / "r.npy", row)
    poolnd.pyramid(str(tmp_path / "r.npy"), str(tmp_path / "r.zarr"), factors=(1, 2), chunks=2,
                   progress=False)
    lv = zarr.open_group(str(tmp_path / "r.zarr"), mode="r")
    assert lv["1"][:].tolist() == [[2, 4, 2]] * 2
    poolnd.pyramid(str(tmp_path / "r.npy"), str(tmp_path / "t.zarr"), factors=(1, 2), chunks=2,
                   rounding="trunc", progress=False)
    assert zarr.open_group(str(tmp_path / "t.zarr"), mode="r")["1"][:].tolist() == [[1, 3, 2]] * 2
    np.save(tmp_path / "flat.npy", np.full((13, 11), 200, np.uint8))
    shapes = poolnd.pyramid(str(tmp_path / "flat.npy"), str(tmp_path / "flat.zarr"), factors=3,
                            chunks=2, progress=False)
    assert shapes == [(13, 11), (5, 4), (2, 2)]
    levels, _ = check_pyramid(tmp_path / "flat.zarr", np.full((13, 11), 200, np.uint8), "avg",
                              "yx", (3, 3), 3)
    assert all((lv == 200).all() for lv in levels)


def test_mode_on_labels(tmp_path, rng):
    if "mode" not in _pyramid.MODES:
        pytest.skip("mode 'mode' is not in this branch yet (median-mode-nan not merged)")
    labels = rng.integers(0, 4, size=(17, 23), dtype=np.uint32)
    np.save(tmp_path / "l.npy", labels)
    poolnd.pyramid(str(tmp_path / "l.npy"), str(tmp_path / "l.zarr"), mode="mode", chunks=4,
                   progress=False)
    levels, _ = check_pyramid(tmp_path / "l.zarr", labels, "mode", "yx", (2, 2), 3)
    assert set(np.unique(levels[-1])) <= set(np.unique(labels))


def test_ome_zarr_source_keeps_axes_units_scale_translation(tmp_path, rng):
    # a source image written by hand (NGFF 0.4): t, c, z, y, x with units and a level-0 scale
    # and translation; the pyramid carries them and accumulates the half-pixel shifts
    x = rng.integers(0, 255, size=(1, 2, 9, 20, 20), dtype=np.uint8)
    g = zarr.open_group(str(tmp_path / "in.ome.zarr"), mode="w", zarr_format=2)
    a = g.create_array(name="s0", shape=x.shape, dtype=x.dtype, chunks=(1, 1, 4, 8, 8),
                       chunk_key_encoding={"name": "v2", "separator": "/"})
    a[:] = x
    axes = [{"name": "t", "type": "time", "unit": "second"},
            {"name": "c", "type": "channel"},
            {"name": "z", "type": "space", "unit": "micrometer"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    g.attrs.put({"multiscales": [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [2.0, 1.0, 1.5, 0.5, 0.5]},
            {"type": "translation", "translation": [0.0, 0.0, 3.0, -1.0, 0.0]}]}]}]})
    validate(tmp_path / "in.ome.zarr", 2)
    shapes = poolnd.pyramid(str(tmp_path / "in.ome.zarr"), str(tmp_path / "out.ome.zarr"),
                            factors=(1, 2, 2), progress=False)
    assert shapes == [(1, 2, 9, 20, 20), (1, 2, 9, 10, 10), (1, 2, 9, 5, 5)]
    levels, meta = check_pyramid(tmp_path / "out.ome.zarr", x, "avg", "tczyx",
                                 (1, 1, 1, 2, 2), 2)
    assert meta["axes"] == axes
    # hand-computed: y/x scale 0.5 -> 1 -> 2; translation 0 -> 0 + 0.5*0.5 = 0.25 -> 0.25 + 0.5*1
    # = 0.75 (y from -1: -0.75, -0.25); z, t, c unchanged
    assert meta["coordinateTransformations"] == [
        [{"type": "scale", "scale": [2.0, 1.0, 1.5, 0.5, 0.5]},
         {"type": "translation", "translation": [0.0, 0.0, 3.0, -1.0, 0.0]}],
        [{"type": "scale", "scale": [2.0, 1.0, 1.5, 1.0, 1.0]},
         {"type": "translation", "translation": [0.0, 0.0, 3.0, -0.75, 0.25]}],
        [{"type": "scale", "scale": [2.0, 1.0, 1.5, 2.0, 2.0]},
         {"type": "translation", "translation": [0.0, 0.0, 3.0, -0.25, 0.75]}]]


def test_validator_and_reader_are_real_judges(tmp_path, vol):
    """The validator refuses a broken image (axes in a non-NGFF order), so passing it means
    something."""
    x, npy = vol
    dest = str(tmp_path / "o.zarr")
    poolnd.pyramid(npy, dest, factors=(1, 2, 2), chunks=16, progress=False)
    g = zarr.open_group(dest, mode="r+")
    attrs = g.attrs.asdict()
    attrs["ome"]["multiscales"][0]["axes"].reverse()
    g.attrs.put(attrs)
    with pytest.raises(Exception):
        validate(dest, 3)


KILLER = textwrap.dedent("""
    import json, os, signal, sys, threading
    import poolnd._pyramid as P
    source, dest, kill_after, kw = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    lock, count, write = threading.Lock(), [0], P._write_block
    def hook(block, target, region):
        with lock:
            count[0] += 1
            n = count[0]
        if n > kill_after:                   # killed before write number kill_after + 1
            os.kill(os.getpid(), signal.SIGKILL)
        write(block, target, region)
    P._write_block = hook
    P.pyramid(source, dest, **kw)
""")


def run_killed(tmp_path, source, dest, kill_after, **kw):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    r = subprocess.run([sys.executable, str(script), source, dest, str(kill_after),
                        json.dumps(kw)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr


def n_chunks(shapes, chunks):
    return sum(int(np.prod([-(-s // min(c, s)) for s, c in zip(shape, chunks)]))
               for shape in shapes)


@pytest.fixture
def count_writes(monkeypatch):
    writes = []
    real = _pyramid._write_block

    def counting(block, target, region):
        writes.append((target.path, block.nbytes, region))
        real(block, target, region)
    monkeypatch.setattr(_pyramid, "_write_block", counting)
    return writes


KW = dict(factors=[1, 2, 2], chunks=[8, 8, 8], progress=False)
# (19, 37, 45) -> (19, 19, 23) -> (19, 10, 12) -> (19, 5, 6); chunks 3*5*6 + 3*3*3 + 3*2*2 + 3
N0, N1 = 90, 27


@pytest.mark.parametrize("kill_after", [40, N0 + N1 + 4])   # inside level 0; inside level 2
def test_killed_run_resumes_to_the_same_bytes_without_rewriting_chunks(tmp_path, vol,
                                                                      count_writes, kill_after):
    x, npy = vol
    os.makedirs(tmp_path / "fresh")
    os.makedirs(tmp_path / "resumed")                     # same name: the image's name
    fresh, dest = str(tmp_path / "fresh" / "o.zarr"), str(tmp_path / "resumed" / "o.zarr")
    shapes = poolnd.pyramid(npy, fresh, **KW)
    total = n_chunks(shapes, KW["chunks"])
    assert total == N0 + N1 + 12 + 3 == len(count_writes)
    run_killed(tmp_path, npy, dest, kill_after, **KW)
    g = zarr.open_group(dest, mode="r")
    assert _pyramid._multiscales_attrs(g.attrs.asdict()) is None      # unfinished: no metadata
    assert g.attrs[_pyramid.MARKER]["levels_complete"] == (0 if kill_after < N0 else 2)
    before = {k: v for k, v in chunk_files(dest).items() if not k.endswith(".partial")}
    assert 0 < len(before) <= kill_after
    count_writes.clear()
    assert poolnd.pyramid(npy, dest, **KW) == shapes            # no overwrite needed
    assert len(count_writes) == total - len(before)             # only the missing chunks
    after = chunk_files(dest)
    assert all(after[k] == v for k, v in before.items())        # same inode, same mtime
    assert tree_bytes(dest) == tree_bytes(fresh)                # same bytes, metadata included
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), 3)


def test_each_level_is_computed_from_the_previous_level_as_written(tmp_path, vol):
    """Killed once level 1 is complete; level 1 changed in DEST; the rerun's level 2 is the
    pool of the changed level 1 (read back from DEST), not of anything from the source."""
    x, npy = vol
    dest = str(tmp_path / "o.zarr")
    run_killed(tmp_path, npy, dest, N0 + N1, **KW)
    g = zarr.open_group(dest, mode="r+")
    assert g.attrs[_pyramid.MARKER]["levels_complete"] == 2
    assert not [k for k in chunk_files(dest) if k.startswith("2/")]     # killed before level 2
    g["1"][:] = g["1"][:] // 3
    poolnd.pyramid(npy, dest, **KW)
    g = zarr.open_group(dest, mode="r")
    assert np.array_equal(g["2"][:], expected_next(g["1"][:], "avg", "zyx", (1, 2, 2)))
    assert not np.array_equal(g["2"][:], expected_next(expected_next(x, "avg", "zyx", (1, 2, 2)),
                                                       "avg", "zyx", (1, 2, 2)))


def test_writes_are_whole_chunks_never_a_whole_level(tmp_path, vol, count_writes):
    x, npy = vol
    poolnd.pyramid(npy, str(tmp_path / "o.zarr"), **KW)
    chunk_bytes = 8 * 8 * 8 * 2
    assert max(nb for _, nb, _ in count_writes) <= chunk_bytes < x.nbytes // 8
    for _, _, region in count_writes:             # aligned to the chunk grid
        assert all(r.start % 8 == 0 and r.stop - r.start <= 8 for r in region)


# ----------------------------------------------------------------------------------------------
# level 0 as the source stores it; the chunks poolnd encodes are zarr's own bytes
# ----------------------------------------------------------------------------------------------

def stored_chunks(arr):
    """{chunk index: stored bytes} of a local Zarr array (a real listing of its files)."""
    root = os.path.join(str(arr.store_path.store.root), arr.store_path.path)
    out = {}
    for idx in np.ndindex(*(-(-s // c) for s, c in zip(arr.shape, arr.chunks))):
        path = os.path.join(root, arr.metadata.encode_chunk_key(idx))
        if os.path.exists(path):
            with open(path, "rb") as f:
                out[idx] = f.read()
    return out


def zarr_source(path, x, chunks, zarr_format, **kw):
    a = zarr.create_array(store=str(path), shape=x.shape, dtype=x.dtype, chunks=chunks,
                          zarr_format=zarr_format, **kw)
    a[:] = x
    return a


@pytest.mark.parametrize("zarr_format,kw", [
    (3, {}),                                                    # zarr's default: zstd
    (3, dict(compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))),
    (2, {}),                                                    # v2 keys "0.0.0": DEST "0/0/0"
    (2, dict(compressors=None))])
def test_level0_is_the_sources_chunks_as_stored(tmp_path, rng, zarr_format, kw):
    """A Zarr source with DEST's chunks: level 0's chunk files are the source's bytes (its
    codecs kept), every chunk is present even where the source stored none (all fill value),
    and the image reads back, through a real reader, as the source; levels as always."""
    x = rng.integers(0, 4000, size=(19, 37, 45), dtype=np.uint16)
    x[:8, :8, :8] = 0                                            # one chunk the source skips
    src = zarr_source(tmp_path / "src.zarr", x, (8, 8, 8), zarr_format, **kw)
    assert (0, 0, 0) not in stored_chunks(src)                  # write_empty_chunks is off
    dest = tmp_path / "out.zarr"
    poolnd.pyramid(str(tmp_path / "src.zarr"), str(dest), factors=(1, 2, 2), progress=False)
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), zarr_format)
    g = zarr.open_group(str(dest), mode="r")
    ours, theirs = stored_chunks(g["0"]), stored_chunks(src)
    assert len(ours) == n_chunks([x.shape], (8, 8, 8))            # every key: resumable
    assert all(ours[i] == b for i, b in theirs.items())          # byte for byte
    if zarr_format == 3:
        assert g["0"].metadata.codecs == src.metadata.codecs
    else:
        assert g["0"].metadata.compressor == src.metadata.compressor


@pytest.mark.parametrize("zarr_format,kw", [
    (2, dict(dtype=">u2")), (2, dict(order="F")), (3, dict(shards=(16, 16, 16)))])
def test_level0_is_recompressed_where_it_cannot_be_the_sources_bytes(tmp_path, rng,
                                                                    zarr_format, kw):
    """A big-endian or F-order format-2 source, or a sharded one: level 0 is decoded and
    written (native, C order, zstd level 1), the same values through a real reader."""
    x = rng.integers(0, 4000, size=(19, 37, 45), dtype=np.uint16)
    kw = dict(kw)
    src = zarr.create_array(store=str(tmp_path / "src.zarr"), shape=x.shape,
                            dtype=kw.pop("dtype", "u2"), chunks=(8, 8, 8),
                            zarr_format=zarr_format, **kw)
    src[:] = x
    dest = tmp_path / "out.zarr"
    poolnd.pyramid(str(tmp_path / "src.zarr"), str(dest), factors=(1, 2, 2), progress=False)
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), zarr_format)
    a = zarr.open_group(str(dest), mode="r")["0"]
    assert a.dtype == np.dtype("<u2") and getattr(a, "shards", None) is None
    assert stored_chunks(a) != stored_chunks(src)
    if zarr_format == 2:
        assert a.metadata.order == "C" and a.metadata.compressor.level == _pyramid.ZSTD_LEVEL


def test_level0_is_recompressed_when_the_chunks_differ(tmp_path, rng):
    x = rng.integers(0, 4000, size=(19, 37, 45), dtype=np.uint16)
    zarr_source(tmp_path / "src.zarr", x, (8, 8, 8), 3)
    dest = tmp_path / "out.zarr"
    poolnd.pyramid(str(tmp_path / "src.zarr"), str(dest), factors=(1, 2, 2), chunks=16,
                   progress=False)
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), 3)
    g = zarr.open_group(str(dest), mode="r")
    assert g["0"].chunks == (16, 16, 16)
    assert g["0"].compressors == (zarr.codecs.ZstdCodec(level=_pyramid.ZSTD_LEVEL),)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_written_chunks_are_zarrs_own_bytes(tmp_path, vol, zarr_format):
    """Every chunk poolnd encodes (zstd level 1, edges padded with the fill value) is the file
    zarr itself writes for the same values in an array of the same metadata."""
    x, npy = vol
    dest = tmp_path / "out.zarr"
    poolnd.pyramid(npy, str(dest), factors=(1, 2, 2), chunks=8, zarr_format=zarr_format,
                   progress=False)
    g = zarr.open_group(str(dest), mode="r")
    for name in g.array_keys():
        a = g[name]
        kw = dict(compressors=a.compressors, fill_value=a.fill_value)
        if zarr_format == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        twin = zarr.create_array(store=str(tmp_path / f"twin{name}.zarr"), shape=a.shape,
                                 dtype=a.dtype, chunks=a.chunks, zarr_format=zarr_format,
                                 config={"write_empty_chunks": True}, **kw)
        twin[:] = a[:]
        assert stored_chunks(a) == stored_chunks(twin), name
    if zarr_format == 3:
        assert g["1"].compressors == (zarr.codecs.ZstdCodec(level=_pyramid.ZSTD_LEVEL),)
    else:
        assert g["1"].metadata.compressor.get_config() == {"id": "zstd",
                                                           "level": _pyramid.ZSTD_LEVEL,
                                                           "checksum": False}


def level0_copy_setup(tmp_path, rng):
    """A Zarr v3 source whose level 0 DEST copies as stored, and an uninterrupted pyramid of it
    -> (x, source, fresh pyramid, DEST path for the run to kill, pyramid keywords)."""
    x = rng.integers(0, 4000, size=(19, 37, 45), dtype=np.uint16)
    src = str(tmp_path / "src.zarr")
    zarr_source(src, x, (8, 8, 8), 3)
    os.makedirs(tmp_path / "fresh")
    os.makedirs(tmp_path / "resumed")
    fresh, dest = str(tmp_path / "fresh" / "o.zarr"), str(tmp_path / "resumed" / "o.zarr")
    kw = dict(factors=[1, 2, 2], progress=False)
    poolnd.pyramid(src, fresh, **kw)
    return x, src, fresh, dest, kw


# levels 0+1 (27 chunks of level 1) early and late; inside level 2 (12 chunks)
@pytest.mark.parametrize("kill_after", [5, 20, 32])
def test_killed_run_with_level0_copied_resumes_to_the_same_bytes(tmp_path, rng, kill_after):
    """Level 0 copied by level 1's tasks: a SIGKILLed run leaves some of both; the rerun
    rewrites none of them and ends with the bytes of an uninterrupted run."""
    x, src, fresh, dest, kw = level0_copy_setup(tmp_path, rng)
    run_killed(tmp_path, src, dest, kill_after, **kw)       # counts level >= 1 chunk writes
    before = {k: v for k, v in chunk_files(dest).items() if not k.endswith(".partial")}
    assert any(k.startswith("0/") for k in before) and any(k.startswith("1/") for k in before)
    poolnd.pyramid(src, dest, **kw)
    after = chunk_files(dest)
    assert all(after[k] == v for k, v in before.items())        # same inode, same mtime
    assert tree_bytes(dest) == tree_bytes(fresh)
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), 3)


@pytest.mark.parametrize("mode,dtype", [("avg", np.uint16), ("avg", np.float32),
                                        ("max", np.int16), ("avg", np.uint8)])
def test_blocks_of_whole_chunks_pooled_as_a_batch_of_chunks(tmp_path, rng, monkeypatch, mode,
                                                            dtype):
    """A task whose block is whole chunks (no edge cuts one) pools them as one batch, each
    decoded in place (``_pool_by_chunks``): DEST has the bytes of a run that pools the block
    as one array, level 0 copied as stored, a chunk the source never wrote included."""
    x = (rng.random((32, 48, 64)) * 250).astype(dtype)
    x[:8, :8, :8] = 0                                         # the source skips this chunk
    zarr_source(tmp_path / "src.zarr", x, (8, 8, 8), 3)
    src = str(tmp_path / "src.zarr")
    os.makedirs(tmp_path / "batch")
    os.makedirs(tmp_path / "block")
    batch, block = str(tmp_path / "batch" / "o.zarr"), str(tmp_path / "block" / "o.zarr")
    calls, real = [], _pyramid._Chunks.read_chunks

    def counting(self, region, *a):
        calls.append(region)
        return real(self, region, *a)
    monkeypatch.setattr(_pyramid._Chunks, "read_chunks", counting)
    poolnd.pyramid(src, batch, mode=mode, progress=False)
    assert len(calls) >= 8                     # levels 0+1 and 2 at least: every block whole
    monkeypatch.setattr(_pyramid, "_pool_by_chunks", lambda *a: None)
    poolnd.pyramid(src, block, mode=mode, progress=False)
    assert tree_bytes(batch) == tree_bytes(block)
    check_pyramid(batch, x, mode, "zyx", (2, 2, 2), 3)


KILLER_IN_A_COPY = textwrap.dedent("""
    import json, os, signal, sys, threading
    import poolnd._pyramid as P
    source, dest, kill_after, kw = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    lock, count, put = threading.Lock(), [0], P._Chunks.put
    def hook(self, idx, data):
        with lock:
            count[0] += self.arr.path == "0"
            if count[0] > kill_after:        # killed halfway through a level-0 copy
                os.makedirs(os.path.dirname(self.path(idx)), exist_ok=True)
                with open(self.path(idx) + ".0123abcd.partial", "wb") as f:
                    f.write(data[:len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        put(self, idx, data)
    P._Chunks.put = hook
    P.pyramid(source, dest, **kw)
""")


def test_a_level0_copy_cut_short_by_a_kill_leaves_nothing_behind(tmp_path, rng):
    """SIGKILLed while copying a level-0 chunk file (its .partial written, not renamed): the
    rerun removes the .partial file and ends with the bytes of an uninterrupted run."""
    x, src, fresh, dest, kw = level0_copy_setup(tmp_path, rng)
    script = tmp_path / "killer.py"
    script.write_text(KILLER_IN_A_COPY)
    r = subprocess.run([sys.executable, str(script), src, dest, "20", json.dumps(kw)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC},
                       timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert [k for k in chunk_files(dest) if k.startswith("0/") and k.endswith(".partial")]
    poolnd.pyramid(src, dest, **kw)
    assert tree_bytes(dest) == tree_bytes(fresh)
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), 3)


# ----------------------------------------------------------------------------------------------
# existing DEST, refusals, bad arguments
# ----------------------------------------------------------------------------------------------

def test_existing_dest_is_refused_unless_overwrite(tmp_path, vol):
    x, npy = vol
    dest = str(tmp_path / "o.zarr")
    poolnd.pyramid(npy, dest, **KW)
    with pytest.raises(ValueError, match=r"pyramid: dest=.* exists and is not an unfinished"):
        poolnd.pyramid(npy, dest, **KW)                     # a finished pyramid
    os.makedirs(tmp_path / "other")
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not an unfinished"):
        poolnd.pyramid(npy, str(tmp_path / "other"), **KW)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"
    assert poolnd.pyramid(npy, dest, mode="max", overwrite=True, **KW)[1] == (19, 19, 23)
    check_pyramid(dest, x, "max", "zyx", (1, 2, 2), 3)


def test_unfinished_dest_of_other_arguments_is_refused(tmp_path, vol):
    x, npy = vol
    dest = str(tmp_path / "o.zarr")
    run_killed(tmp_path, npy, dest, 10, **KW)
    with pytest.raises(ValueError, match=r"unfinished pyramid of other arguments \(mode differ"):
        poolnd.pyramid(npy, dest, mode="max", **KW)
    poolnd.pyramid(npy, dest, mode="max", overwrite=True, **KW)
    check_pyramid(dest, x, "max", "zyx", (1, 2, 2), 3)


@pytest.mark.parametrize("kw,match", [
    (dict(mode="sum"), r"mode='sum' must be one of"),
    (dict(mode="avg", rounding="up"), r"rounding='up' must be one of"),
    (dict(factors=(2, 2, 2, 2)), r"factors=\(2, 2, 2, 2\) has 4 entries"),
    (dict(factors=1), r"factors=\(1, 1, 1\) pools nothing"),
    (dict(factors=0), r"factors=\(0, 0, 0\) must be >= 1"),
    (dict(axes="czyx"), r"axes='czyx' names 4 axes, but the source has 3 dims"),
    (dict(axes="zcx"), r"axes='zcx' is not an OME-NGFF axis order"),
    (dict(axes="zzx"), r"axes='zzx' repeats an axis name"),
    (dict(axes="czx", factors=2), None),                         # valid: pools z, x only
    (dict(axes="czx", factors=(2, 2, 2)), r"pools the channel axis 'c'"),
    (dict(levels=0), r"levels=0 must be an int >= 1"),
    (dict(zarr_format=4), r"zarr_format=4 must be 2"),
    (dict(chunks=(8, 0, 8)), r"chunks=\(8, 0, 8\) must be >= 1"),
    (dict(workers=0), r"workers=0 must be an int >= 1"),
    (dict(memory_limit="lots"), r"memory_limit='lots' must be a positive size"),
    (dict(scheduler="tcp://127.0.0.1:1", workers=2), r"give one or the other"),
])
def test_bad_arguments_name_argument_value_and_rule(tmp_path, vol, kw, match):
    x, npy = vol
    if match is None:
        assert _pyramid.plan(npy, str(tmp_path / "o.zarr"), **kw).factors == (1, 2, 2)
        return
    with pytest.raises((ValueError, TypeError), match=match) as e:
        _pyramid.plan(npy, str(tmp_path / "o.zarr"), **kw)
    assert str(e.value).startswith("pyramid: ")
    assert not (tmp_path / "o.zarr").exists()


def test_dest_inside_source_is_refused_even_with_overwrite(tmp_path):
    a = zarr.create_array(store=str(tmp_path / "s.zarr"), shape=(8, 8), dtype="u1", chunks=(4, 4))
    a[:] = 7
    for dest in (tmp_path / "s.zarr", tmp_path / "s.zarr" / "pyr", tmp_path):
        with pytest.raises(ValueError, match="never writes over its source"):
            poolnd.pyramid(str(tmp_path / "s.zarr"), str(dest), chunks=2, overwrite=True)
    assert (zarr.open_array(str(tmp_path / "s.zarr"), mode="r")[:] == 7).all()


# ----------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------

def source_state(path):
    return {k: (v, os.stat(os.path.join(path, k)).st_mtime_ns) for k, v in tree_bytes(path).items()}


@pytest.mark.parametrize("args,match", [
    (["--factors", "1,x"], r"argument --factors: '1,x' must be an int or comma-separated"),
    (["--factors", "1,2,2", "--factor", "2"], r"not allowed with argument"),
    (["--zarr-format", "5"], r"argument --zarr-format: invalid choice"),
    (["--mode", "lp"], r"mode='lp' must be one of"),
    (["--axes", "cyx", "--factors", "2,2,2"], r"pools the channel axis 'c'"),
    (["--memory-limit=-3GB"], r"memory_limit='-3GB' must be a positive size"),
    (["--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], r"give one or the other"),
    (["--levels", "0"], r"levels=0 must be an int >= 1"),
])
def test_cli_bad_arguments_exit_2_with_one_line_and_never_touch_the_source(tmp_path, capsys,
                                                                          args, match):
    a = zarr.create_array(store=str(tmp_path / "s.zarr"), shape=(6, 8, 8), dtype="u1",
                          chunks=(2, 4, 4))
    a[:] = 3
    before = source_state(tmp_path / "s.zarr")
    try:
        code = main(["pyramid", str(tmp_path / "s.zarr"), str(tmp_path / "o.zarr"), *args])
    except SystemExit as e:                     # argparse's own errors exit from parse_args
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("poolnd pyramid: "), err
    assert __import__("re").search(match, err), err
    assert source_state(tmp_path / "s.zarr") == before
    assert not (tmp_path / "o.zarr").exists()


def test_cli_usage_error_exits_2_in_a_real_process(tmp_path, vol):
    x, npy = vol
    r = subprocess.run([sys.executable, "-m", "poolnd", "pyramid", npy, str(tmp_path / "o"),
                        "--chunks", "8,,8"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--chunks" in r.stderr


def test_cli_builds_the_pyramid_and_prints_the_levels(tmp_path, vol):
    x, npy = vol
    dest = str(tmp_path / "vol.ome.zarr")
    r = subprocess.run([sys.executable, "-m", "poolnd", "pyramid", npy, dest, "--factors",
                        "1,2,2", "--chunks", "8", "--zarr-format", "2", "--no-progress"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{dest}/0 19x37x45 uint16", f"{dest}/1 19x19x23 uint16",
                                     f"{dest}/2 19x10x12 uint16", f"{dest}/3 19x5x6 uint16"]
    assert r.stderr == ""
    check_pyramid(dest, x, "avg", "zyx", (1, 2, 2), 2)


def test_progress_bar_on_request(tmp_path, vol, capsys):
    x, npy = vol
    assert main(["pyramid", npy, str(tmp_path / "o.zarr"), "--factor", "2", "--chunks", "16",
                 "--levels", "2", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "level 1/1 (10, 19, 23)" in err and "100% Completed" in err


# ----------------------------------------------------------------------------------------------
# schedulers
# ----------------------------------------------------------------------------------------------

def test_threaded_scheduler_is_the_default(tmp_path, vol, monkeypatch):
    import dask
    import dask.threaded
    seen = []
    real = dask.compute
    monkeypatch.setattr(dask, "compute", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    x, npy = vol
    poolnd.pyramid(npy, str(tmp_path / "o.zarr"), levels=2, **KW)
    # the threaded scheduler by its function (a name would make dask import distributed)
    assert seen and all(kw.get("scheduler") is dask.threaded.get for kw in seen)


def test_task_arguments_reach_dask_boxed_and_pickle(tmp_path, vol, monkeypatch):
    """Each task's arguments go to Dask in one ``_Boxed`` (Dask would walk a zarr.Array field
    by field), which a cluster pickles and unpickles whole."""
    import pickle

    import dask
    x, npy = vol
    calls, real = [], dask.delayed

    def delayed(fn, **kw):
        d = real(fn, **kw)
        return lambda *a: calls.append((fn.__name__, a)) or d(*a)
    monkeypatch.setattr(dask, "delayed", delayed)
    poolnd.pyramid(npy, str(tmp_path / "o.zarr"), **KW)
    assert {name for name, _ in calls} == {"_level_task"}
    assert all(len(a) == 1 and isinstance(a[0], _pyramid._Boxed) for _, a in calls)
    target = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")["1"]
    back = pickle.loads(pickle.dumps(_pyramid._Boxed(target, np.arange(3), {"mode": "avg"})))
    assert np.array_equal(back.args[0][:], target[:]) and back.args[1].tolist() == [0, 1, 2]
    assert back.args[2] == {"mode": "avg"}


def workers(psutil):
    """Child processes other than multiprocessing's resource tracker (which outlives pools)."""
    return [c for c in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(c.cmdline())]


def test_local_cluster_and_existing_scheduler_give_the_same_bytes(tmp_path, vol):
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    x, npy = vol
    for d in "tlr":
        os.makedirs(tmp_path / d)
    threaded = str(tmp_path / "t" / "o.zarr")
    poolnd.pyramid(npy, threaded, **KW)
    # workers=2: a LocalCluster of two processes on 127.0.0.1, closed at the end
    local = str(tmp_path / "l" / "o.zarr")
    assert not workers(psutil)
    poolnd.pyramid(npy, local, workers=2, memory_limit="1GB", **KW)
    assert tree_bytes(local) == tree_bytes(threaded)
    assert not workers(psutil)                                 # the workers are gone
    # scheduler=ADDRESS: an existing cluster, left running
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        remote = str(tmp_path / "r" / "o.zarr")
        poolnd.pyramid(npy, remote, scheduler=cluster.scheduler_address, **KW)
        assert cluster.status.name == "running"
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    assert tree_bytes(remote) == tree_bytes(threaded)


def test_readme_pyramid_commands_parse():
    """The README's pyramid commands are ones this parser accepts (they are not run here)."""
    import re
    import shlex

    from poolnd.cli import build_parser
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("### Pyramids"):]
    section = section[:section.index("\n## ")]
    commands = re.findall(r"^poolnd (pyramid .*)$", section, re.M)
    assert len(commands) == 3
    for c in commands:
        args = build_parser().parse_args(shlex.split(c))
        assert args.func.__name__ == "cmd_pyramid" and args.factors is not None
