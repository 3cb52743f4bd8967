"""Every numba-engine code path on small inputs, against the reference engine; exits 1 on any
mismatch. Run by test_numba.py in subprocesses with NUMBA_DISABLE_JIT=1 (kernel bodies execute
as Python: covered, and a wrong index raises instead of hiding) and with NUMBA_BOUNDSCHECK=1.
"""
import sys

import numpy as np

import poolnd

CASES = [  # (spatial_dims, kernel, stride, padding, dilation, ceil_mode, layout)
    (2, 2, 2, 0, 1, False, None),                  # literal 2x2 path
    (3, 2, 2, 0, 1, False, None),                  # literal 2x2x2 path
    (2, 3, 2, 1, 1, True, None),                   # generic rows: fused interior + edges
    (2, (2, 3), (1, 2), "same", (2, 1), False, None),
    (1, 3, 1, ((2, 1),), 2, True, None),
    (3, (1, 2, 3), (1, 2, 1), "same_lower", 1, False, None),
    (2, 2, 2, 0, 1, False, "NHWC"),                # channels-last
    (2, 3, 2, 1, 1, True, "NHWC"),
    (2, 3, 1, 1, 1, False, "NHWC"),                # ... 3x3 stride 1: nine taps in registers
    (3, 2, 1, ((1, 0), (0, 1), (1, 1)), 1, False, "NDHWC"),
    (4, 2, 1, ((1, 0), (0, 1), (1, 1), (0, 0)), (1, 2, 1, 1), False, None),   # general N-d
    (2, (2, 3), (2, 3), 0, 1, False, None),        # non-overlapping tiles
    (3, (2, 3, 2), (2, 3, 2), 0, 1, False, None),  # ... 3-d boxes (avg, its backward)
    (3, 3, 2, 1, 1, True, None),                   # 3x3 per slice, then depth (indices)
    (2, (5, 3), 1, (2, 1), 1, False, None),        # stride 1: running max (van Herk)
    (2, 3, 1, 1, 1, False, None),                  # 3x3 stride 1: rolling rows, planes
    (3, (2, 3, 2), 1, (1, 1, 0), (1, 2, 1), False, None),   # stride-1 planes, 3-d, dilated
    (2, (6, 7), 1, 0, 1, False, None),             # global: one window per plane
    (2, (6, 7), 1, 0, 1, False, "NHWC"),           # ... channels-last (backward: boxes)
    (3, (4, 5, 6), 1, 0, 1, False, None),
    (2, (300, 2), 1, ((149, 150), (0, 0)), 1, False, None),       # kernel mostly padding
    (2, (200, 3), (50, 1), ((300, 300), (1, 1)), (2, 1), False, "NHWC"),   # ... dilated
]
SIZES = {1: (7,), 2: (6, 7), 3: (4, 5, 6), 4: (3, 4, 3, 4)}


def main():
    rng = np.random.default_rng(0)
    failures = 0
    for k, kern, stride, pad, dil, ceil, layout in CASES:
        for dtype in ("float32", "float64", "float16", "int32"):
            x = rng.integers(-4, 5, size=(2, 3) + SIZES[k]).astype(dtype)
            if dtype.startswith("float"):
                x[rng.random(x.shape) < 0.1] = np.nan
            if layout:
                x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            for mode in ("max", "min", "avg", "sum"):
                kw = dict(spatial_dims=k, layout=layout, dilation=dil, ceil_mode=ceil)
                if mode in ("max", "min"):
                    kw["return_indices"] = True
                out = {}
                for eng in ("reference", "numba"):
                    layer = poolnd.Pool(mode, kern, stride, pad, engine=eng, **kw)
                    y = layer.forward(x)
                    yv = y[0] if isinstance(y, tuple) else y
                    dy = np.ones_like(yv)
                    # an integer forward has no gradient (API.md section 5)
                    dx = layer.backward(dy) if dtype.startswith("float") else np.zeros(1)
                    out[eng] = (y, dx)
                (ry, rdx), (ny, ndx) = out["reference"], out["numba"]
                ok = True
                for a, b in zip(ry if isinstance(ry, tuple) else (ry,),
                                ny if isinstance(ny, tuple) else (ny,)):
                    ok &= np.allclose(a.astype(float), b.astype(float), equal_nan=True,
                                      rtol=1e-3 if dtype == "float16" else 1e-6)
                ok &= np.allclose(rdx.astype(float), ndx.astype(float), equal_nan=True,
                                  rtol=1e-3 if dtype == "float16" else 1e-6)
                if not ok:
                    failures += 1
                    print("MISMATCH", k, kern, stride, pad, dil, ceil, layout, dtype, mode)
    failures += family(rng)
    failures += values_only(rng)
    failures += rank(rng)
    from poolnd.engines._numba import _dispatch       # every row of every kernel table ran
    for name, table in _dispatch.TABLES.items():
        for row, _, _ in table:
            if (name, row) not in _dispatch.REACHED:
                failures += 1
                print("NOT REACHED", name, row)
    print(f"kernel_check: {failures} mismatches")
    return 1 if failures else 0


def values_only(rng):
    """Forward without indices (the functional ops): the literal 3x3 kernels, flat (many
    planes) and rolling (few planes, rows split between threads), and 3x3 tiles; max, min,
    avg."""
    failures = 0
    for planes in ((1, 2), (8, 3)):
        for (h, w), stride, pad in (((7, 8), 2, 1), ((6, 9), (1, 2), ((1, 0), (0, 1))),
                                    ((5, 5), 1, 0), ((9, 6), (3, 2), 1),
                                    ((7, 9), (3, 3), 0)):
            x = rng.integers(-3, 4, size=planes + (h, w)).astype(np.float32)
            x[0, 0, 0, 0] = np.nan
            for mode in ("max", "min", "avg"):
                got, want = (poolnd.pool(x, mode, 3, stride, pad, spatial_dims=2, engine=e)
                             for e in ("numba", "reference"))
                same = (np.allclose(got, want, equal_nan=True) if mode == "avg"
                        else got.tobytes() == want.tobytes())
                if not same:
                    failures += 1
                    print("MISMATCH values-only", planes, (h, w), stride, pad, mode)
    # 3-d max/min, 3x3 over H, W and depth pooled: the 2-d kernels per slice, then depth
    for shape, kern, stride, pad, ceil in (((2, 3, 5, 6, 7), 3, 2, 1, True),
                                           ((1, 2, 6, 5, 8), (2, 3, 3), (1, 1, 2), 0, False)):
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
        x[rng.random(shape) < 0.1] = np.nan
        x[x == 0] = -0.0
        for mode in ("max", "min"):
            got, want = (poolnd.pool(x, mode, kern, stride, pad, 1, ceil, spatial_dims=3,
                                     engine=e) for e in ("numba", "reference"))
            if got.tobytes() != want.tobytes():
                failures += 1
                print("MISMATCH values-only 3x3 slices", shape, kern, mode)
    # channels-last stride-1 max/min, values only: separably (W maxima, then rows)
    for shape, kern, pad, dil in (((2, 7, 9, 5), 3, 1, 1), ((1, 6, 8, 3), (5, 3), (2, 0), (1, 2))):
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
        x[rng.random(shape) < 0.1] = np.nan
        x[x == 0] = -0.0
        for mode in ("max", "min"):
            got, want = (poolnd.pool(x, mode, kern, 1, pad, dil, spatial_dims=2, layout="NHWC",
                                     engine=e) for e in ("numba", "reference"))
            if got.tobytes() != want.tobytes():
                failures += 1
                print("MISMATCH values-only separable channels-last", shape, kern, mode)
    # adaptive max along the last axis, four rows side by side (values, and with indices)
    x = rng.integers(-2, 3, size=(2, 3, 7, 23)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[x == 0] = -0.0
    for ri in (False, True):
        got, want = (poolnd.adaptive_max_pool2d(x, (3, 5), return_indices=ri, engine=e)
                     for e in ("numba", "reference"))
        got, want = (got, want) if ri else ((got,), (want,))
        if any(a.tobytes() != b.tobytes() for a, b in zip(got, want)):
            failures += 1
            print("MISMATCH adaptive max rows", ri)
    # non-overlapping tiles with indices, four tiles of a row side by side and the rest
    for shape, kern in (((2, 3, 6, 17), (2, 3)), ((1, 2, 8, 40), (4, 4))):
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
        x[rng.random(shape) < 0.05] = np.nan
        for mode in ("max", "min"):
            got, want = (poolnd.pool(x, mode, kern, spatial_dims=2, return_indices=True,
                                     engine=e) for e in ("numba", "reference"))
            if any(a.tobytes() != b.tobytes() for a, b in zip(got, want)):
                failures += 1
                print("MISMATCH tiles indices", shape, kern, mode)
    # global max/min, values only: eight small planes at a time (and the rest one by one);
    # NaN, signed zeros and ties, bit for bit
    for shape in ((3, 9, 6, 7), (2, 5, 3, 3), (1, 3, 9, 9)):
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
        x[rng.random(shape) < 0.05] = np.nan
        x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
        for mode in ("max", "min"):
            got, want = (poolnd.pool(x, mode, shape[2:], spatial_dims=2, engine=e)
                         for e in ("numba", "reference"))
            if got.tobytes() != want.tobytes():
                failures += 1
                print("MISMATCH values-only global", shape, mode)
    # float16 averages over tiles, whole planes and 2x2(x2) windows, widened a block at a time
    # (several blocks, a plane larger than a block; signaling and quiet NaN), bit for bit
    from poolnd.engines._numba import _dispatch, _k_half
    for shape, kern in (((3, 700, 13, 17), (13, 17)), ((1, 3, 300, 300), (300, 300)),
                        ((2, 5, 200, 210), (8, 7)), ((2, 3, 28, 28), (4, 4)),
                        ((2, 3, 41, 50), (2, 2)), ((2, 3, 9, 10, 11), (2, 2, 2))):
        x = (rng.standard_normal(shape) * 50).astype(np.float16)
        bits = x.view(np.uint16).reshape(-1)
        bits[rng.random(bits.size) < 0.001] = 0x7C01
        bits[rng.random(bits.size) < 0.001] = 0xFE55
        nd = len(kern)
        got, want = (poolnd.pool(x, "avg", kern, spatial_dims=nd, engine=e)
                     for e in ("numba", "reference"))
        # which NaN a window of two NaN payloads keeps is the engine's own (as for float32):
        # against the reference, bytes where not NaN; against the engine's float32 path
        # (NumPy's casts around it), every byte
        nan = np.isnan(want)
        wide = poolnd.pool(x.astype(np.float32), "avg", kern, spatial_dims=nd, engine="numba")
        if (not np.array_equal(np.isnan(got), nan)
                or got[~nan].tobytes() != want[~nan].tobytes()
                or got.tobytes() != wide.astype(np.float16).tobytes()):
            failures += 1
            print("MISMATCH float16 blocks", shape, kern)
    for family in ("global", "tiles", "2x2"):
        if _k_half._hardware() and ("avg forward", family + " float16") not in _dispatch.REACHED:
            failures += 1
            print("NOT REACHED avg forward", family, "float16")
    return failures


RANK_CASES = [  # (spatial_dims, kernel, stride, padding, layout): every kernel of _numba/_rank.py
    (2, 2, 2, 0, None),                  # _rank_k2, 2x2
    (3, 2, 2, 0, None),                  # _rank_k2, 2x2x2
    (2, 3, 1, 1, None),                  # _median3x3: the scalar network inside, edges general
    (3, (1, 3, 3), (1, 2, 1), ((0, 0), (2, 1), (1, 2)), None),   # ... 3-d, pair pads
    (2, 3, 1, 1, "NHWC"),                # _rank_nd: 3x3 (array network), Wirth at the edges
    (3, 3, 2, 1, None),                  # 3x3x3: Wirth's selection; sorted mode (27)
    (2, (3, 2), 1, 0, "NHWC"),           # channels-last; mode by compare-and-count (6)
    (2, 6, 1, ((3, 2), (2, 3)), None),   # mode past 32 elements: np.sort
    (4, 2, 1, ((1, 0), (0, 1), (1, 1), (0, 0)), None),
]


def rank(rng):
    """Median, mode and the NaN-skipping max/min on the numba kernels against the reference
    engine: values and indices bit for bit, and the median's routed gradient."""
    failures = 0
    for k, kern, stride, pad, layout in RANK_CASES:
        for dtype in ("float32", "float64", "uint64", "int8"):
            x = rng.integers(0, 3, size=(2, 3) + SIZES[k]).astype(dtype)
            if dtype.startswith("float"):
                x[rng.random(x.shape) < 0.1] = np.nan
            if layout:
                x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            for mode in ("median", "mode", "max", "min"):
                for policy in ("propagate", "omit"):
                    out = []
                    for eng in ("reference", "numba"):
                        layer = poolnd.Pool(mode, kern, stride, pad, spatial_dims=k,
                                            layout=layout, return_indices=True,
                                            nan_policy=policy, engine=eng)
                        y, idx = layer.forward(x)
                        dx = (layer.backward(np.ones_like(y)) if dtype.startswith("float")
                              else np.zeros(1))
                        out.append((y.tobytes(), idx.tobytes(), dx.tobytes()))
                    if out[0] != out[1]:
                        failures += 1
                        print("MISMATCH rank", k, kern, stride, pad, layout, dtype, mode, policy)
    # integer data over non-overlapping boxes (_k_ints, rows first): unsigned means on narrow
    # lanes (power-of-two divisors), at the dtype's extremes, truncated and half to even, and
    # maxes and mins of every integer width, against the reference engine; boxes of 2x2, 2x2x2,
    # 4x4 (kw 2, 4: literal strides), 1-d (no rows to combine), 3 (generic columns), with a
    # ragged edge the boxes leave out
    boxes = ((2, 2, (2, 3, 6, 8)), (3, 2, (2, 3, 4, 6, 8)), (2, 4, (2, 3, 9, 13)),
             (1, 4, (2, 3, 13)), (2, (1, 3), (2, 3, 5, 7)), (3, (2, 1, 4), (2, 1, 4, 3, 9)))
    for k, kern, shape in boxes:
        for dtype in ("uint8", "uint16"):
            top = np.iinfo(dtype).max
            x = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
            x[0, 0] = top
            for rounding in ("trunc", "nearest"):
                for override in (None, 1, 2, 8, 3):
                    got, want = (poolnd.pool(x, "avg", kern, spatial_dims=k, rounding=rounding,
                                             divisor_override=override, engine=e)
                                 for e in ("numba", "reference"))
                    if got.dtype != want.dtype or not np.array_equal(got, want):
                        failures += 1
                        print("MISMATCH unsigned mean", k, kern, dtype, rounding, override)
        for dtype in ("uint8", "int8", "uint16", "int32", "uint64", "int64"):
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
            for mode in ("max", "min"):
                got, want = (poolnd.pool(x, mode, kern, spatial_dims=k, engine=e)
                             for e in ("numba", "reference"))
                if got.dtype != want.dtype or not np.array_equal(got, want):
                    failures += 1
                    print("MISMATCH integer boxes", k, kern, dtype, mode)
    # nan_policy="omit": every forward kernel with the NaN check fused in (_checked_run and the
    # no-alias twins), without a NaN (must equal "propagate" bit for bit) and with one
    extra = [((8, 3, 6, 8), (2, 3, 2, 1, 1, False, None)),      # 3x3 on whole planes (flat)
             ((2, 3, 6, 8), (2, 3, 1, 1, 1, False, None))]      # 3x3 stride 1 (rolling rows)
    shaped = [((2, 3) + SIZES[c[0]], c) for c in CASES] + extra
    for i, (shape, (k, kern, stride, pad, dil, ceil, layout)) in enumerate(shaped):
        for dtype in ("float32", "float64", "float16") if i < 2 else ("float32",):
            base = rng.standard_normal(shape).astype(dtype)
            if layout:
                base = np.ascontiguousarray(np.moveaxis(base, 1, -1))
            for nan in (False, True, "all"):
                x = base.copy()
                if nan == "all":                   # whole windows of NaN, of two payloads
                    x.reshape(-1)[::2] = np.nan
                    x.reshape(-1)[1::2] = -np.nan
                elif nan:
                    x.reshape(-1)[x.size // 2] = np.nan
                for mode in ("max", "min", "avg", "sum"):
                    args = (x, mode, kern, stride, pad)
                    opts = dict(spatial_dims=k, layout=layout, ceil_mode=ceil)
                    if mode in ("max", "min"):
                        opts["dilation"] = dil
                    got = poolnd.pool(*args, nan_policy="omit", engine="numba", **opts)
                    if nan:
                        want = poolnd.pool(*args, nan_policy="omit", engine="reference", **opts)
                        ok = (got.tobytes() == want.tobytes() if mode in ("max", "min") else
                              np.allclose(got.astype(float), want.astype(float), rtol=1e-3,
                                          equal_nan=True))
                    else:
                        want = poolnd.pool(*args, engine="numba", **opts)
                        ok = got.tobytes() == want.tobytes()
                    if not ok:
                        failures += 1
                        print("MISMATCH omit", shape, kern, stride, pad, layout, dtype, nan, mode)
    return failures


def _family_layers(eng, sdtype):
    """(name, layer, input-to-forward-args) for the box-window and unpool kernels."""
    yield "adaptive max", poolnd.AdaptiveMaxPool2d((4, 3), return_indices=True, engine=eng), {}
    yield "adaptive avg", poolnd.AdaptiveAvgPool3d((2, None, 4), engine=eng), {}
    yield "adaptive max NHWC", poolnd.AdaptiveMaxPool2d(3, layout="NHWC", engine=eng), {}
    yield "adaptive max 3d", poolnd.AdaptiveMaxPool3d((2, 3, 4), return_indices=True,
                                                      engine=eng), {}    # two carried passes
    yield "fractional", poolnd.FractionalMaxPool2d(
        2, output_size=(4, 5), _random_samples=np.full((2, 3, 2), 0.4, dtype=sdtype), engine=eng), {}
    yield "lp", poolnd.LPPool2d(2.5, 2, 1, True, engine=eng), {}
    yield "lp p=2", poolnd.LPPool2d(2, 3, 2, True, engine=eng), {}     # _k_maps' squares


def family(rng):
    failures = 0
    for dtype in ("float32", "float64", "float16", "int32"):
        x = rng.integers(-4, 5, size=(2, 3, 6, 7)).astype(dtype)
        if dtype.startswith("float"):
            x[rng.random(x.shape) < 0.1] = np.nan
        sdtype = dtype if dtype.startswith("float") else "float64"
        for i, (name, _, _) in enumerate(_family_layers("reference", sdtype)):
            if name.startswith("lp") and dtype == "int32":
                continue
            xin = x[:, :, None] if "avg" in name or "3d" in name else x
            res = []
            for eng in ("reference", "numba"):
                layer = list(_family_layers(eng, sdtype))[i][1]
                y = layer.forward(xin)
                yv = y[0] if isinstance(y, tuple) else y
                dx = (layer.backward(np.ones_like(yv)) if dtype.startswith("float")
                      else np.zeros(1))           # an integer forward has no gradient
                res.append((y, dx))
            a, b = res
            flat_a = (a[0] if isinstance(a[0], tuple) else (a[0],)) + (a[1],)
            flat_b = (b[0] if isinstance(b[0], tuple) else (b[0],)) + (b[1],)
            ok = all(np.allclose(u.astype(float), v.astype(float), equal_nan=True,
                                 rtol=1e-3 if dtype == "float16" else 1e-6)
                     for u, v in zip(flat_a, flat_b))
            if not ok:
                failures += 1
                print("MISMATCH", name, dtype)
        if dtype in ("float32", "float64"):     # a kept lp's p = 2 pass, and lp_pool2d's
            from poolnd.engines._numba import _k_maps
            div = rng.integers(1, 9, size=x.shape[2:]).astype(dtype)   # an average's shares
            for dyv in (x.reshape(2, 6, 7, 3), x[:, 0].reshape(2, 6, 7, 1)):    # T = 3, 1
                got = _k_maps.divide_planes(dyv, div)
                if not np.array_equal(got, np.divide(dyv, div[..., None]), equal_nan=True):
                    failures += 1
                    print("MISMATCH divide_planes", dtype)
            t, kept = _k_maps.square_and_copy(x)
            if not (np.array_equal(t, np.multiply(x, x), equal_nan=True) and
                    np.array_equal(kept, x, equal_nan=True) and not np.shares_memory(kept, x)):
                failures += 1
                print("MISMATCH lp square_and_copy", dtype)
            a, b = (poolnd.lp_pool2d(x, 2, 3, 2, ceil_mode=True, engine=e)
                    for e in ("reference", "numba"))
            if not np.allclose(a, b, equal_nan=True, rtol=1e-6):
                failures += 1
                print("MISMATCH lp_pool2d p=2", dtype)
        if dtype in ("float32", "float64"):     # tiles 4 and 8 wide: taps written out
            big = rng.standard_normal((2, 3, 16, 24)).astype(dtype)      # sums that round
            big[rng.random(big.shape) < 0.05] = np.nan
            for k, sd in (((4, 8), 2), ((8, 4), 2), (4, 2), (8, 1)):
                for mode in ("max", "min", "avg", "sum"):
                    a, b = (poolnd.pool(big if sd == 2 else big.reshape(2, 48, 24), mode, k,
                                        spatial_dims=sd, engine=e)
                            for e in ("reference", "numba"))
                    if not (np.array_equal(a, b, equal_nan=True) and
                            np.array_equal(np.signbit(a), np.signbit(b))):
                        failures += 1
                        print("MISMATCH tiles", k, mode, dtype)
        y, idx = poolnd.max_pool2d(x, 2, 1, return_indices=True)      # repeated indices
        for eng in ("reference", "numba"):
            layer = poolnd.MaxUnpool2d(2, 1, engine=eng)
            z = layer.forward(y, idx, (6, 7))
            res.append((z, layer.backward(np.ones_like(z)) if dtype.startswith("float")
                        else np.zeros(1)))
        (za, ga), (zb, gb) = res[-2], res[-1]
        if not (np.array_equal(za, zb, equal_nan=True) and np.array_equal(ga, gb, equal_nan=True)):
            failures += 1
            print("MISMATCH unpool", dtype)
    return failures


if __name__ == "__main__":
    sys.exit(main())
