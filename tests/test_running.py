"""The running-max kernels (engines/_numba/_k_running.py: van Herk / Gil-Werman, stride 1) against
the NumPy engine (its own scan), the reference engine and
PyTorch: values bit for bit (NaN payloads, signed zeros), window-local indices equal; and the
kernel bodies as plain Python and under Numba's boundscheck, in subprocesses (this file run as a
script).

Run as ``python tests/test_running.py``, it checks small cases against the reference engine and
exits 1 on any mismatch (what the subprocess tests run).
"""
import os
import subprocess
import sys

import numpy as np

try:
    import pytest
except ImportError:                    # run as a script in a bare environment
    pytest = None

from poolnd._geometry import windows
from poolnd.engines import _numpy, _reference

if pytest is not None:
    pytest.importorskip("numba")

from poolnd.engines._numba import _threadpool                      # noqa: E402
from poolnd.engines._numba import _k_running as R                  # noqa: E402

UINT = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32,
        np.dtype(np.float64): np.uint64}
# quiet NaNs, both signs, distinct payloads (a signaling NaN would be quieted by float16's
# widening in the compiled engine, which the unwidened reference engine does not do)
NAN_BITS = {np.dtype(np.float16): (0x7E01, 0xFE02, 0x7E3F, 0xFF00),
            np.dtype(np.float32): (0x7FC00001, 0xFFC00002, 0x7FC7FFFF, 0xFFD00000),
            np.dtype(np.float64): (0x7FF8000000000001, 0xFFF8000000000002,
                                   0x7FF80000DEADBEEF, 0xFFFC000000000000)}
DTYPES = ("float32", "float64", "float16", "uint8", "int32")


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(UINT[a.dtype]) if a.dtype in UINT else a


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(bits(a), bits(b))


def data(rng, shape, dtype, kind):
    """An input with many ties: small integer ranges; with ``kind`` "nan", NaNs of several
    payloads; "zeros", +0.0/-0.0 mixed with a few other values; "wide", continuous values and
    -inf."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        info = np.iinfo(dtype)
        lo, hi = (info.min, info.min + 3) if rng.random() < 0.3 else (0, 4)   # ties at the identity
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if kind == "wide":
        x = rng.standard_normal(shape).astype(dtype)
        x[rng.random(shape) < 0.05] = -np.inf
        x[rng.random(shape) < 0.05] = np.inf
        return x
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    if kind == "zeros":
        z = rng.random(shape)
        x[z < 0.4] = 0.0
        x[(z >= 0.4) & (z < 0.8)] = -0.0
        x[rng.random(shape) < 0.05] = -np.inf
    if kind in ("nan", "zeros"):
        nans = np.array(NAN_BITS[dtype], dtype=UINT[dtype]).view(dtype)
        where = rng.random(shape) < (0.08 if kind == "nan" else 0.02)
        x[where] = rng.choice(nans, size=int(where.sum()))
    return x


def geometry(rng, max_size=30, symmetric=False):
    """A stride-1 geometry: kernels 1..13 per axis, pads up to k // 2 on each side (pairs),
    sizes smaller and larger than the kernel; None when it has no output."""
    kh, kw = (int(v) for v in rng.integers(1, 14, 2))
    H, W = (int(v) for v in rng.integers(1, max_size + 1, 2))
    if symmetric:
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        pads = ((ph, ph), (pw, pw))
    else:
        pads = tuple((int(rng.integers(0, k // 2 + 1)), int(rng.integers(0, k // 2 + 1)))
                     for k in (kh, kw))
    g = windows((H, W), (kh, kw), (1, 1), (1, 1), pads, False)
    return g if min(g.out_size) >= 1 else None


def configs(seed, n, max_size=30, symmetric=False, dtypes=DTYPES):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        g = geometry(rng, max_size, symmetric)
        if g is None:
            continue
        dtype = dtypes[len(out) % len(dtypes)]
        kind = ("nan", "zeros", "ties", "wide")[int(rng.integers(4))]
        B = int(rng.integers(1, 4))
        out.append((g, data(rng, (B,) + g.in_size + (1,), dtype, kind)))
    return out


def check_against(g, x, oracle, with_arg, minimum):
    y0, a0 = oracle(x, g, minimum=minimum, with_arg=with_arg)
    y1, a1 = R.running_max_forward(x, g, minimum=minimum, with_arg=with_arg)
    assert same(y0, y1), (g, x.dtype, minimum)
    if with_arg:
        assert a1.dtype == a0.dtype and np.array_equal(a0, a1), (g, x.dtype, minimum)
    else:
        assert a1 is None


# ----------------------------------------------------------------------------------------------
# differential tests
# ----------------------------------------------------------------------------------------------

def test_against_the_numpy_engine():
    """Every configuration fits except kernels under 3 and pads past the input."""
    ran = 0
    for g, x in configs(10, 160):
        if not R.fits(g):
            assert max(g.kernel) < 3 or any(p > n for p, n in zip(g.pad_before + g.pad_after,
                                                                  g.in_size * 2))
            continue
        for minimum in (False, True):
            for with_arg in (False, True):
                check_against(g, x, _numpy.max_forward, with_arg, minimum)
        ran += 1
    assert ran > 120


def test_against_the_reference_and_numpy_engines():
    for g, x in configs(11, 36, max_size=16):
        if not R.fits(g):
            continue
        for minimum in (False, True):
            check_against(g, x, _reference.max_forward, True, minimum)
            check_against(g, x, _numpy.max_forward, True, minimum)


def test_large_planes_and_many_planes(monkeypatch):
    """Sizes past the sub-chunk and batch sizes, on threads (several row chunks per plane)."""
    monkeypatch.setattr(_threadpool, "_SERIAL_BELOW", 0)
    monkeypatch.setattr(_threadpool, "_COLD_SERIAL_BELOW", 0)
    rng = np.random.default_rng(12)
    for (H, W), (kh, kw), B in (((150, 61), (13, 5), 1), ((70, 200), (3, 9), 3),
                                ((40, 37), (7, 7), 20)):
        for dtype in ("float32", "uint8"):
            x = data(rng, (B, H, W, 1), dtype, "nan")
            g = windows((H, W), (kh, kw), (1, 1), (1, 1), ((kh // 2,) * 2, (kw // 2,) * 2),
                        False)
            for with_arg in (False, True):
                check_against(g, x, _numpy.max_forward, with_arg, False)


def test_every_sub_chunk_carries_rows(monkeypatch):
    """One output row per sub-chunk: the kh - 1 carried rows are used at every step."""
    monkeypatch.setattr(R, "_ROWS_ELEMS", 1)
    monkeypatch.setattr(R, "_HALO_ROWS", 0)
    for g, x in configs(13, 30, max_size=20):
        if R.fits(g):
            for with_arg in (False, True):
                check_against(g, x, _numpy.max_forward, with_arg, False)


def test_windows_wholly_in_padding_and_1d_3d():
    rng = np.random.default_rng(14)
    cases = [((6, 5), (3, 4), ((4, 5), (0, 5))),          # rows and columns of empty windows
             ((5, 9), (5, 1), ((5, 5), (0, 0))),
             ((7,), (5,), ((2, 3),)),                       # 1-d
             ((3, 8, 9), (1, 5, 3), ((0, 0), (2, 1), (1, 1)))]   # 3-d, depth untouched
    for size, kern, pads in cases:
        g = windows(size, kern, (1,) * len(size), (1,) * len(size), pads, False)
        assert R.fits(g)
        for dtype in DTYPES:
            x = data(rng, (2,) + size + (1,), dtype, "nan")
            for minimum in (False, True):
                check_against(g, x, _reference.max_forward, True, minimum)
                check_against(g, x, _numpy.max_forward, False, minimum)


def test_nan_payloads_and_signed_zeros_are_the_scan_order_ones():
    """The last NaN of a window in row-major order, and the first of tied zeros."""
    x = np.zeros((1, 3, 3, 1), dtype=np.float32)
    x[0, 0, 2] = -0.0
    x[0, 1, 0] = 0.0
    g = windows((3, 3), (3, 3), (1, 1), (1, 1), ((0, 0), (0, 0)), False)
    x[0, 0, 0] = -0.0
    y, a = R.running_max_forward(x, g, minimum=False, with_arg=True)
    assert bits(y).item() == 0x80000000 and a.item() == 0
    nans = np.array([0x7FC00001, 0xFFC00002], dtype=np.uint32).view(np.float32)
    x[0, 2, 0], x[0, 1, 2] = nans           # row-major: (1, 2) comes before (2, 0)
    y, a = R.running_max_forward(x, g, minimum=True, with_arg=True)
    assert bits(y).item() == 0x7FC00001 and a.item() == 6


def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for g, x in configs(15, 60, max_size=24, symmetric=True):
        if not R.fits(g) or x.dtype.kind != "f" or x.dtype == np.float16:
            continue
        (kh, kw), (ph, pw) = g.kernel, g.pad_before
        t = torch.from_numpy(x[..., 0][:, None])
        ty, ti = F.max_pool2d(t, (kh, kw), 1, (ph, pw), return_indices=True)
        y, a = R.running_max_forward(x, g, minimum=False, with_arg=True)
        assert same(ty.numpy()[:, 0], y[..., 0]), g
        assert np.array_equal(ti.numpy()[:, 0], g.plane_indices(a)[..., 0]), g


def test_fits():
    def g(size, kern, stride=None, dil=None, pads=None):
        n = len(size)
        return windows(size, kern, stride or (1,) * n, dil or (1,) * n,
                       pads or ((0, 0),) * n, False)
    assert R.fits(g((9, 9), (3, 3)))
    assert R.fits(g((9, 9), (1, 3))) and R.fits(g((9, 9), (5, 1))) and R.fits(g((9,), (4,)))
    assert R.fits(g((4, 9, 9), (1, 5, 7)))
    assert not R.fits(g((9, 9), (2, 2)))
    assert not R.fits(g((9, 9), (3, 3)), T=4)                        # channels-last
    assert not R.fits(g((9, 9), (3, 3), stride=(1, 2)))
    assert not R.fits(g((9, 9), (3, 3), dil=(2, 1)))
    assert not R.fits(g((4, 9, 9), (3, 3, 3)))                       # depth pooled
    assert not R.fits(g((4, 9, 9), (1, 3, 3), pads=((1, 1), (0, 0), (0, 0))))
    assert not R.fits(g((4, 5), (3, 3), pads=((0, 0), (6, 6))))      # pads past the input
    assert not R.fits(g((2, 2, 2, 9), (1, 1, 3, 3)))                 # 4-d
    with pytest.raises(ValueError, match="does not fit"):
        R.running_max_forward(np.zeros((1, 9, 9, 1)), g((9, 9), (2, 2)), minimum=False,
                              with_arg=False)


# ----------------------------------------------------------------------------------------------
# kernel bodies as Python, and under boundscheck
# ----------------------------------------------------------------------------------------------

def _run_check(**env):
    full = dict(os.environ, POOLND_NUMBA_SERIAL_BELOW="0", POOLND_NUMBA_COLD_SERIAL_BELOW="0",
                **env)
    out = subprocess.run([sys.executable, __file__], env=full, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "running_check: 0 mismatches" in out.stdout


def test_kernel_bodies_run_as_python():
    _run_check(NUMBA_DISABLE_JIT="1")


def test_kernels_under_boundscheck():
    # compiled afresh (no cache): one dtype keeps it short (the kernels are the same code for
    # every dtype; the Python run above covers them all)
    _run_check(NUMBA_BOUNDSCHECK="1", POOLND_NUMBA_CACHE="0", POOLND_RUNNING_CHECK="float32")


def main():
    """Small cases, every kernel (values, indices; max, min; every dtype), threads on, sub-chunks
    of one row (carried rows) and of many, against the reference engine."""
    failures = 0
    dtypes = os.environ.get("POOLND_RUNNING_CHECK", ",".join(DTYPES)).split(",")
    for small in (False, True):
        if small:
            R._ROWS_ELEMS, R._HALO_ROWS = 1, 0
        for g, x in configs(16, 10, max_size=9, dtypes=dtypes):
            if not R.fits(g):
                continue
            for minimum in (False, True):
                for with_arg in (False, True):
                    try:
                        check_against(g, x, _reference.max_forward, with_arg, minimum)
                    except AssertionError as e:
                        failures += 1
                        print("MISMATCH", e)
    print(f"running_check: {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
