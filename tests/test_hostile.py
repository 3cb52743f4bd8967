"""Hostile inputs and hostile processes (API.md section 5): every case here once crashed, hung,
wrapped or silently lost data. Each runs on every engine and asserts the exact result (against an
oracle in this file that imports nothing from poolnd, or against PyTorch) or the exception type
and message. Anything that can crash or hang runs in a subprocess with a timeout."""
import itertools
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

import poolnd
from conftest import ENGINES

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------------------------
# an oracle for windows of any size: per dim, the input positions a window reads, computed from
# the definition in O(input) per window (never a loop over the kernel's taps)
# ----------------------------------------------------------------------------------------------

def _positions(o, size, k, s, dil, pb):
    start = o * s - pb
    first = max(0, -(-(0 - start) // dil))          # smallest tap j with start + j*dil >= 0
    stop = min(k, (size - 1 - start) // dil + 1)     # past the last tap with position < size
    return [start + j * dil for j in range(first, stop)]


def _out_len(size, k, s, dil, pb, pa):
    return (size + pb + pa - dil * (k - 1) - 1) // s + 1


def oracle(x, mode, kernel, stride, pads, dilation, count_include_pad=True):
    """``(N, C, *spatial)`` float/int input -> pooled values as Python numbers (object array)."""
    sp = x.shape[2:]
    outs = [_out_len(L, k, s, d, pb, pa) for L, k, s, d, (pb, pa)
            in zip(sp, kernel, stride, dilation, pads)]
    y = np.empty(x.shape[:2] + tuple(outs), dtype=object)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(v) for v in outs]):
            per_dim = [_positions(oo, L, k, s, d, pb) for oo, L, k, s, d, (pb, _)
                       in zip(o, sp, kernel, stride, dilation, pads)]
            vals = [_py(x[(n, c) + z]) for z in itertools.product(*per_dim)]
            if mode == "max":
                y[(n, c) + o] = max(vals) if vals else -np.inf
            elif mode == "min":
                y[(n, c) + o] = min(vals) if vals else np.inf
            else:
                total = sum(vals)
                if count_include_pad:
                    cnt = 1
                    for oo, L, k, s, d, (pb, pa) in zip(o, sp, kernel, stride, dilation, pads):
                        st = oo * s - pb
                        cnt *= sum(1 for j in range(min(k, L + pb + pa + 1))
                                   if -pb <= st + j * d < L + pa) if k <= 64 else \
                            _count_closed(st, k, d, -pb, L + pa)
                else:
                    cnt = len(vals)
                y[(n, c) + o] = total if mode == "sum" else total / cnt
    return y


def _py(v):
    """A NumPy scalar as the Python number it holds (object arrays hold those already)."""
    return v.item() if isinstance(v, np.generic) else v


def _count_closed(start, k, dil, lo, hi):
    """Taps j < k with lo <= start + j*dil < hi, by bisection over j (no loop over k)."""
    def first_at_least(bound):          # smallest j with start + j*dil >= bound
        return max(0, -(-(bound - start) // dil))
    return max(0, min(k, first_at_least(hi)) - min(k, first_at_least(lo)))


# ----------------------------------------------------------------------------------------------
# 1. processes: fork, multiprocessing, DataLoader workers
# ----------------------------------------------------------------------------------------------

def _run(code, timeout=240, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=timeout)


def _layer_available(layer):
    """Whether Numba can start this threading layer here (tbb needs the tbb package)."""
    out = _run(f"""
        import numba
        from numba.np.ufunc import parallel
        numba.config.THREADING_LAYER = {layer!r}
        parallel._launch_threads()
        print(numba.threading_layer())
        """, timeout=120)
    return out.returncode == 0 and out.stdout.strip() == layer


PARENT_USE = """
    import os, numpy as np, poolnd
    from numba.np.ufunc import parallel
    x = np.random.default_rng(0).random((8, 16, 40, 40)).astype(np.float32)
    expect = {}
    for eng in ("reference", "numpy", "numba") if "numba" in poolnd.engines.available() \\
            else ("reference", "numpy"):
        small = x[:1, :2, :8, :8] if eng == "reference" else x
        expect[eng] = (poolnd.max_pool2d(small, 2, engine=eng),
                       poolnd.avg_pool2d(small, 3, 2, 1, engine=eng),
                       poolnd.MaxPool2d(3, 2, 1, engine=eng).forward(small),
                       poolnd.max_pool2d(small, 2, return_indices=True, engine=eng)[1])
    layer_started = parallel._is_initialized

    def again(eng):
        small = x[:1, :2, :8, :8] if eng == "reference" else x
        got = (poolnd.max_pool2d(small, 2, engine=eng),
               poolnd.avg_pool2d(small, 3, 2, 1, engine=eng),
               poolnd.MaxPool2d(3, 2, 1, engine=eng).forward(small),
               poolnd.max_pool2d(small, 2, return_indices=True, engine=eng)[1])
        return all(np.array_equal(a, b) for a, b in zip(got, expect[eng]))
"""


@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_a_forked_child_pools_under_every_threading_layer(layer):
    if not _layer_available(layer):
        pytest.skip(f"Numba's {layer} threading layer cannot start here")
    out = _run(PARENT_USE + """
    pid = os.fork()
    if pid == 0:
        os._exit(0 if all(again(e) for e in expect) else 3)
    _, status = os.waitpid(pid, 0)
    print("layer started in parent:", layer_started)
    print("child exit:", os.waitstatus_to_exitcode(status))
    """, NUMBA_THREADING_LAYER=layer)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "child exit: 0" in out.stdout, out.stdout + out.stderr[-2000:]
    # the approach: poolnd never starts Numba's threading layer, so nothing aborts the child
    assert "layer started in parent: False" in out.stdout


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pools_in_every_start_method(method, tmp_path):
    script = tmp_path / "mp_pools.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, sys
        import numpy as np, poolnd

        def work(seed):
            x = np.random.default_rng(seed).random((4, 8, 32, 32)).astype(np.float32)
            return float(poolnd.max_pool2d(x, 2).sum() + poolnd.avg_pool2d(x, 3, 2, 1).sum())

        if __name__ == "__main__":
            expect = [work(s) for s in range(4)]          # the parent has used poolnd first
            with mp.get_context(sys.argv[1]).Pool(2) as pool:
                got = pool.map(work, range(4))
            print("equal:", got == expect)
        """))
    out = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "equal: True" in out.stdout


def test_dataloader_workers_pool_after_the_parent_did(tmp_path):
    script = tmp_path / "loader.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, poolnd, torch
        from torch.utils.data import DataLoader, Dataset

        class Pooled(Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                x = np.random.default_rng(i).random((3, 32, 32)).astype(np.float32)
                return poolnd.MaxPool2d(2).forward(x)

        if __name__ == "__main__":
            expect = [Pooled()[i] for i in range(8)]     # the parent pools first
            loader = DataLoader(Pooled(), batch_size=4, num_workers=2)
            got = torch.cat([b for b in loader]).numpy()
            print("equal:", bool(np.array_equal(got, np.stack(expect))))
        """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "equal: True" in out.stdout


# ----------------------------------------------------------------------------------------------
# 2. rank: up to 32 dims in all
# ----------------------------------------------------------------------------------------------

def test_more_than_32_dims_is_a_value_error(engine):
    with pytest.raises(ValueError, match=r"spatial_dims=33 is too many: an input has at most 32"):
        poolnd.pool(np.ones((1, 1) + (1,) * 33), "max", 1, spatial_dims=33, engine=engine)
    with pytest.raises(ValueError, match=r"has 33 dims; poolnd takes at most 32"):
        poolnd.pool(np.ones((1, 2) + (1,) * 31), "max", 1, spatial_dims=31, engine=engine)
    with pytest.raises(ValueError, match=r"spatial_dims=40 is too many"):
        poolnd.global_max_pool(np.ones((1, 1, 2)), spatial_dims=40, engine=engine)


@pytest.mark.parametrize("k", [24, 25, 30])
def test_up_to_32_dims_pool_exactly(k, engine, rng):
    shape = (1, 2, 2, 3, 2) + (1,) * (k - 3)
    x = rng.standard_normal(shape)
    kernel = (2, 2, 1) + (1,) * (k - 3)
    for _ in range(2):                    # the second call once crashed after the first
        y = poolnd.pool(x, "max", kernel, 1, spatial_dims=k, engine=engine)
        assert y.ndim == k + 2 and y.shape == (1, 2, 1, 2, 2) + (1,) * (k - 3)
        expect = np.maximum(np.maximum(x[:, :, :1, :2], x[:, :, 1:, :2]),
                            np.maximum(x[:, :, :1, 1:], x[:, :, 1:, 1:]))
        np.testing.assert_array_equal(y, expect)
        g = poolnd.global_avg_pool(x, engine=engine)
        assert g.shape == (1, 2) + (1,) * k
        np.testing.assert_allclose(g.ravel(), x.reshape(2, -1).mean(axis=1), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# 3. byte order, memory order, read-only and memory-mapped input
# ----------------------------------------------------------------------------------------------

def _every_op(x, e):
    """One call of every op on a (2, 3, 6, 7) input on engine ``e`` -> list of arrays."""
    r = [poolnd.max_pool2d(x, 3, 2, 1, return_indices=True, engine=e),
         poolnd.avg_pool2d(x, 2, ceil_mode=True, engine=e),
         poolnd.pool(x, "min", 2, spatial_dims=2, engine=e),
         poolnd.pool(x, "sum", (2, 3), spatial_dims=2, engine=e),
         poolnd.adaptive_max_pool2d(x, (4, 5), return_indices=True, engine=e),
         poolnd.adaptive_avg_pool2d(x, (4, 5), engine=e), poolnd.global_max_pool(x, engine=e),
         poolnd.global_avg_pool(x, engine=e)]
    if x.dtype.kind == "f":
        r += [poolnd.lp_pool2d(x, 2, 2, engine=e), poolnd.fractional_max_pool2d(
            x, 2, output_size=3, _random_samples=np.full((2, 3, 2), 0.3, dtype=x.dtype),
            engine=e)]
        layer = poolnd.MaxPool2d(3, 2, 1, engine=e)
        r.append(layer.backward(np.ones_like(layer.forward(x))))
    y, i = poolnd.max_pool2d(x, 2, return_indices=True, engine=e)
    r.append(poolnd.max_unpool2d(y, i, 2, output_size=x.shape[2:], engine=e))
    out = []
    for a in r:
        out += list(a) if isinstance(a, tuple) else [a]
    return out


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">u2", ">i4", ">i8", "<f4"])
def test_any_byte_order_equals_the_native_copy(dtype, engine, rng):
    native = (rng.standard_normal((2, 3, 6, 7)) * 50).astype(np.dtype(dtype).newbyteorder("="))
    foreign = native.astype(dtype)
    assert foreign.dtype.str == np.dtype(dtype).str
    for a, b in zip(_every_op(foreign, engine), _every_op(native, engine)):
        assert a.dtype.isnative
        np.testing.assert_array_equal(a, b)


def test_fortran_order_read_only_and_memmap_inputs(engine, rng, tmp_path):
    base = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    fortran = np.asfortranarray(base)
    ro = base.copy()
    ro.setflags(write=False)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                   shape=base.shape)
    mm[...] = base
    mm.flush()
    mm_read = np.load(tmp_path / "x.npy", mmap_mode="r")
    expect = _every_op(base, engine)
    for x in (fortran, ro, mm_read, base[:, :, ::-1][:, :, ::-1]):
        for a, b in zip(_every_op(x, engine), expect):
            np.testing.assert_array_equal(a, b)
    assert not ro.flags.writeable and np.array_equal(ro, base)


# ----------------------------------------------------------------------------------------------
# 4. integers: sums and averages never wrap; all engines agree bit for bit
# ----------------------------------------------------------------------------------------------

def test_integer_sum_widens_as_np_sum(engine):
    y = poolnd.pool(np.full((1, 4, 4), 255, np.uint8), "sum", 2, spatial_dims=2, engine=engine)
    assert y.dtype == np.uint64 and (y == 1020).all()
    y = poolnd.pool(np.full((1, 4, 4), -128, np.int8), "sum", 2, spatial_dims=2, engine=engine)
    assert y.dtype == np.int64 and (y == -512).all()
    y = poolnd.pool(np.full((1, 1, 4), 2**62, np.int64), "sum", 2, spatial_dims=1, engine=engine)
    assert y.dtype == np.int64 and (y == 2**63 - 2**64).all()      # modulo 2**64, as np.sum


def test_64_bit_averages_are_exact(engine):
    v = np.array([2**64 - 1, 2**64 - 3, 2**64 - 5, 2**64 - 7], np.uint64).reshape(1, 1, 2, 2)
    exact = sum(int(a) for a in v.ravel()) // 4
    assert poolnd.avg_pool2d(v, 2, engine=engine).ravel()[0] == exact
    assert poolnd.avg_pool2d(np.full((1, 1, 2, 2), 2**62, np.int64), 2,
                             engine=engine).ravel()[0] == 2**62
    w = np.full((1, 1, 2, 2), -2**63, np.int64)
    assert poolnd.avg_pool2d(w, 2, engine=engine).ravel()[0] == -2**63
    assert poolnd.adaptive_avg_pool2d(v, 1, engine=engine).ravel()[0] == exact


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint32", "int64",
                                   "uint64"])
def test_random_integer_averages_against_python_integers(dtype, engine, rng):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=(2, 2, 5, 6), dtype=dtype, endpoint=True)
    x[0, 0, :2] = info.max
    x[0, 1, :2] = info.min
    for kernel, stride, pad, cip, override in [((2, 2), (2, 2), 0, True, None),
                                               ((3, 2), (2, 1), 1, False, None),
                                               ((3, 3), (1, 2), 1, True, None),
                                               ((2, 3), (1, 1), 0, True, 7)]:
        y = poolnd.avg_pool2d(x, kernel, stride, pad, count_include_pad=cip,
                              divisor_override=override, engine=engine)
        assert y.dtype == x.dtype
        pads = ((pad, pad), (pad, pad))
        sums = oracle(x.astype(object), "sum", kernel, stride, pads, (1, 1))
        counts = (oracle(np.ones(x.shape, dtype=object), "sum", kernel, stride, pads, (1, 1))
                  if not cip else None)
        for o in np.ndindex(y.shape):
            if override:
                d = override
            elif cip:
                d = _cip_count(o[2:], x.shape[2:], kernel, stride, pad)
            else:
                d = counts[o]
            s = sums[o]
            q = abs(s) // d * (1 if s >= 0 else -1)               # truncated toward zero
            assert int(y[o]) == q, (o, s, d)


def _cip_count(o, size, kernel, stride, pad):
    c = 1
    for oo, L, k, s in zip(o, size, kernel, stride):
        st = oo * s - pad
        c *= sum(1 for j in range(k) if -pad <= st + j < L + pad)
    return c


def test_integer_results_agree_across_engines(rng):
    x = rng.integers(0, 2**64, size=(2, 3, 7, 6), dtype=np.uint64, endpoint=False)
    for mode in ("avg", "sum", "max", "min"):
        got = [poolnd.pool(x, mode, 3, 2, 1, spatial_dims=2, engine=e) for e in ENGINES]
        for g in got[1:]:
            assert g.dtype == got[0].dtype
            np.testing.assert_array_equal(g, got[0])


# ----------------------------------------------------------------------------------------------
# 5. gradients need a floating input
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda e: poolnd.MaxPool2d(2, engine=e),
                                  lambda e: poolnd.AvgPool2d(2, engine=e),
                                  lambda e: poolnd.Pool("sum", 2, spatial_dims=2, engine=e),
                                  lambda e: poolnd.AdaptiveAvgPool2d(3, engine=e),
                                  lambda e: poolnd.AdaptiveMaxPool2d(3, engine=e)],
                         ids=["max", "avg", "sum", "adaptive avg", "adaptive max"])
def test_backward_of_an_integer_forward_is_a_type_error(make, engine):
    layer = make(engine)
    y = layer.forward(np.arange(64, dtype=np.uint8).reshape(1, 1, 8, 8))
    with pytest.raises(TypeError, match=r"backward: gradients need a floating input, but the "
                                        r"forward saw dtype uint8"):
        layer.backward(np.full(y.shape, -1.5))


def test_unpool_backward_of_integer_values_is_a_type_error(engine):
    x = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    y, i = poolnd.max_pool2d(x, 2, return_indices=True, engine=engine)
    un = poolnd.MaxUnpool2d(2, engine=engine)
    un.forward(y, i)
    with pytest.raises(TypeError, match="gradients need a floating input"):
        un.backward(np.ones((1, 1, 4, 4)))


def test_torch_refuses_gradients_of_integers_too():
    with pytest.raises(RuntimeError):
        torch.zeros(2, dtype=torch.uint8).requires_grad_()


# ----------------------------------------------------------------------------------------------
# 6. a layer's saved record owns what it needs
# ----------------------------------------------------------------------------------------------

LAYERS = [
    lambda e: poolnd.LPPool2d(2, 2, engine=e), lambda e: poolnd.LPPool2d(1.5, 3, 1, engine=e),
    lambda e: poolnd.LPPool1d(float("inf"), 2, engine=e),
    lambda e: poolnd.MaxPool2d(3, 2, 1, engine=e), lambda e: poolnd.AvgPool2d(2, engine=e),
    lambda e: poolnd.MaxPool2d(2, return_indices=True, engine=e),
    lambda e: poolnd.AdaptiveMaxPool2d(3, return_indices=True, engine=e),
    lambda e: poolnd.Pool("lp", 2, spatial_dims=2, norm_type=3, engine=e),
]


@pytest.mark.parametrize("make", LAYERS, ids=range(len(LAYERS)))
def test_changing_input_or_output_in_place_never_changes_the_gradient(make, engine, rng):
    x = rng.random((2, 3, 6, 6)) + 0.5
    if "LPPool1d" in repr(make(engine)):
        x = x[0]
    fresh = make(engine)
    y0 = fresh.forward(x.copy())
    dy = rng.standard_normal((y0[0] if isinstance(y0, tuple) else y0).shape)
    expect = fresh.backward(dy)
    layer = make(engine)
    xin = x.copy()
    y = layer.forward(xin)
    xin *= 3
    for part in (y if isinstance(y, tuple) else (y,)):
        part *= 10
    np.testing.assert_array_equal(layer.backward(dy), expect)


def test_unpool_record_owns_its_indices(engine, rng):
    x = rng.random((1, 2, 4, 4))
    y, i = poolnd.max_pool2d(x, 2, return_indices=True)
    un = poolnd.MaxUnpool2d(2, engine=engine)
    z = un.forward(y, i)
    expect = poolnd.MaxUnpool2d(2, engine=engine)
    expect.forward(y, i.copy())
    i[...] = 0
    np.testing.assert_array_equal(un.backward(np.ones_like(z) * np.arange(16).reshape(4, 4)),
                                  expect.backward(np.ones_like(z) * np.arange(16).reshape(4, 4)))


# ----------------------------------------------------------------------------------------------
# 7. the cost follows the input and output, not the kernel or the padding
# ----------------------------------------------------------------------------------------------

HUGE = [  # (mode, kernel, stride, pads, dilation)
    ("max", (10**9, 1), 1, ((10**9 // 2, 10**9 // 2), (0, 0)), 1),
    ("max", (10**10, 1), 1, ((10**10 // 2, 10**10 // 2), (0, 0)), 1),
    ("min", (2**40, 3), (2**39, 1), ((2**40, 2**40), (1, 1)), 1),
    ("avg", (10**12, 2), (10**11, 2), ((2 * 10**12, 2 * 10**12), (0, 1)), (3, 1)),
    ("sum", (10**7, 10**7), 10**6, ((10**7 - 4, 10**7 - 4), (10**7 - 4, 10**7 - 4)), 1),
    ("avg", (10**7, 1), 1, ((5 * 10**6, 5 * 10**6), (0, 0)), 1),
]


@pytest.mark.parametrize("case", HUGE, ids=range(len(HUGE)))
def test_a_huge_kernel_on_a_small_input_answers_at_once(case, engine, rng):
    mode, kernel, stride, pads, dil = case
    x = rng.standard_normal((1, 2, 8, 8))
    kw = dict(spatial_dims=2, dilation=dil, engine=engine)
    poolnd.pool(x[:, :1, :2, :2], mode, (300, 300), 1, ((150, 150), (150, 150)),
                spatial_dims=2, engine=engine)                                # compile first
    tracemalloc.start()
    t0 = time.perf_counter()
    y = poolnd.pool(x, mode, kernel, stride, pads, **kw)
    took = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert took < 1.0, took
    assert peak < 64 << 20, peak
    k2 = kernel if isinstance(kernel, tuple) else (kernel,) * 2
    s2 = stride if isinstance(stride, tuple) else (stride,) * 2
    d2 = dil if isinstance(dil, tuple) else (dil,) * 2
    expect = oracle(x, mode, k2, s2, pads, d2).astype(float)
    assert y.shape == expect.shape
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=0)


def test_a_huge_kernel_layer_has_the_right_gradient(engine, rng):
    x = rng.permutation(64).astype(float).reshape(1, 1, 8, 8)       # tie-free
    layer = poolnd.Pool("max", (10**9, 2), (10**9, 1), ((10**9 - 3, 10**9 - 3), (0, 0)),
                        spatial_dims=2, return_indices=True, engine=engine)
    y, idx = layer.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    cols = [tx[0, 0, :, j:j + 2] for j in range(7)]
    # windows start at -(10**9 - 3) and 3: the first holds rows 0..2, the second rows 3..7
    ty = torch.stack([torch.stack([c[r].max() for c in cols])
                      for r in (slice(0, 3), slice(3, 8))])
    np.testing.assert_array_equal(y[0, 0], ty.detach().numpy())
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy[0, 0]))
    np.testing.assert_array_equal(layer.backward(dy)[0, 0], tx.grad.numpy()[0, 0])
    np.testing.assert_array_equal(x.reshape(-1)[idx[0, 0]], y[0, 0])


# ----------------------------------------------------------------------------------------------
# 8. an output that cannot fit is refused up front
# ----------------------------------------------------------------------------------------------

def test_huge_outputs_are_refused_naming_the_shape(engine):
    x = np.ones((6, 1, 4, 4), np.float32)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: the output would have shape "
                                         r"\(6, 1, 100000, 100000\)"):
        poolnd.adaptive_avg_pool2d(x, (10**5, 10**5), engine=engine)
    with pytest.raises(ValueError, match=r"max_pool2d: the output would have shape \(6, 1, "):
        poolnd.max_pool2d(x, 3, 1, ((10**6, 10**6), (10**6, 10**6)), engine=engine)
    with pytest.raises(ValueError, match=r"max_unpool2d: the output would have shape"):
        y, i = poolnd.max_pool2d(x, 2, return_indices=True)
        poolnd.max_unpool2d(y, i, 10**6, engine=engine)
    assert time.perf_counter() - t0 < 1.0


# ----------------------------------------------------------------------------------------------
# 9. masked arrays
# ----------------------------------------------------------------------------------------------

MASKED_CALLS = [
    lambda x, e: poolnd.max_pool2d(x, 2, engine=e), lambda x, e: poolnd.avg_pool2d(x, 2, engine=e),
    lambda x, e: poolnd.pool(x, "sum", 2, spatial_dims=2, engine=e),
    lambda x, e: poolnd.adaptive_max_pool2d(x, 2, engine=e),
    lambda x, e: poolnd.global_max_pool(x, engine=e),
    lambda x, e: poolnd.MaxPool2d(2, engine=e).forward(x),
    lambda x, e: poolnd.fractional_max_pool2d(x, 2, output_size=2, engine=e),
]


@pytest.mark.parametrize("call", MASKED_CALLS, ids=range(len(MASKED_CALLS)))
def test_masked_arrays_are_refused_not_unmasked(call, engine):
    x = np.ma.masked_greater(np.arange(16.0).reshape(1, 1, 4, 4), 10)
    with pytest.raises(TypeError, match=r"MaskedArray, whose mask poolnd would silently drop; "
                                        r"fill the masked elements first"):
        call(x, engine)


# ----------------------------------------------------------------------------------------------
# 10. arguments given as NumPy arrays
# ----------------------------------------------------------------------------------------------

def test_integer_arrays_as_arguments(engine, rng):
    x = rng.standard_normal((1, 2, 6, 6))
    expect = poolnd.max_pool2d(x, (2, 3), (2, 1), engine=engine)
    np.testing.assert_array_equal(
        poolnd.max_pool2d(x, np.array([2, 3]), np.array([2, 1]), engine=engine), expect)
    np.testing.assert_array_equal(poolnd.max_pool2d(x, np.int64(2), engine=engine),
                                  poolnd.max_pool2d(x, 2, engine=engine))
    layer = poolnd.MaxPool2d(np.array([2, 3]), stride=np.array([2, 1]), engine=engine)
    np.testing.assert_array_equal(layer.forward(x), expect)
    # the attribute keeps what was given, as torch.nn's does (and so does the repr)
    assert repr(layer) == repr(torch.nn.MaxPool2d(np.array([2, 3]), stride=np.array([2, 1]))
                               ).replace(")", f", engine={engine!r})")
    a = poolnd.AvgPool2d(np.array(2), padding=np.array([1, 0]), engine=engine)
    np.testing.assert_array_equal(a.forward(x), poolnd.avg_pool2d(x, 2, padding=(1, 0),
                                                                  engine=engine))
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of ints"):
        poolnd.MaxPool2d(np.array([2.0, 2.0]))


# ----------------------------------------------------------------------------------------------
# 11. the two gaps against PyTorch and ONNX, closed
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [-1.0, -2.5, -0.5])
def test_negative_norm_type_equals_torch(p, engine, rng):
    x = rng.random((2, 3, 7, 8)) + 0.1
    for kernel, stride, ceil in [(2, None, False), (3, 2, True), ((2, 3), (1, 2), False)]:
        y = poolnd.lp_pool2d(x, p, kernel, stride, ceil, engine=engine)
        ty = torch.nn.functional.lp_pool2d(torch.tensor(x), p, kernel, stride, ceil)
        np.testing.assert_allclose(y, ty.numpy(), rtol=1e-12)
        layer = poolnd.LPPool2d(p, kernel, stride, ceil, engine=engine)
        tx = torch.tensor(x, requires_grad=True)
        out = torch.nn.functional.lp_pool2d(tx, p, kernel, stride, ceil)
        dy = rng.standard_normal(out.shape)
        out.backward(torch.tensor(dy))
        layer.forward(x)
        np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    y1 = poolnd.lp_pool1d(x[0], -1, 2, engine=engine)
    np.testing.assert_allclose(y1, torch.nn.functional.lp_pool1d(torch.tensor(x[0]), -1, 2)
                               .numpy(), rtol=1e-12)


@pytest.mark.parametrize("padding", ["same", "same_lower", ((2, 1), (0, 3), (1, 1)),
                                     ((1, 0), (1, 0), (0, 0))])
def test_avg_pool3d_onnx_padding_on_an_input_smaller_than_the_kernel(padding, engine, rng):
    x = rng.standard_normal((1, 2, 3, 3, 4))
    kw = dict(count_include_pad=False)
    expect = poolnd.pool(x, "avg", 4, 1, padding, spatial_dims=3, engine=engine, **kw)
    got = poolnd.avg_pool3d(x, 4, 1, padding, engine=engine, **kw)
    np.testing.assert_array_equal(got, expect)
    layer = poolnd.AvgPool3d(4, 1, padding, engine=engine, **kw)
    np.testing.assert_array_equal(layer.forward(x), expect)
    if not isinstance(padding, str):
        np.testing.assert_allclose(got, oracle(x, "avg", (4,) * 3, (1,) * 3, padding, (1,) * 3,
                                               count_include_pad=False).astype(float),
                                   rtol=1e-12)


def test_avg_pool3d_int_padding_keeps_torchs_rule():
    with pytest.raises(ValueError, match="at least kernel_size"):
        poolnd.avg_pool3d(np.zeros((1, 1, 3, 3, 4)), 4, padding=2)
    with pytest.raises(RuntimeError):
        torch.nn.functional.avg_pool3d(torch.zeros(1, 1, 3, 3, 4), 4, padding=2)


# ----------------------------------------------------------------------------------------------
# 12. indices cost at most one output-sized temporary
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [2, 1])
def test_return_indices_memory(stride, engine, rng):
    x = rng.random((4, 8, 48, 48)).astype(np.float32)
    if engine == "reference":
        x = x[:1, :2, :16, :16]
    poolnd.max_pool2d(x, 3, stride, 1, return_indices=True, engine=engine)      # warm
    tracemalloc.start()
    y, idx = poolnd.max_pool2d(x, 3, stride, 1, return_indices=True, engine=engine)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    arg_bytes = y.size                    # the window-local argmax: int8 for 9 taps
    budget = y.nbytes + idx.nbytes + arg_bytes + idx.nbytes + (256 << 10)
    assert peak <= budget, (peak, budget)
