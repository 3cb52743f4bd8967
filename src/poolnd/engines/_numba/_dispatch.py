"""Which kernel runs: the engine's choice, as three tables read top to bottom.

:data:`MAX_FORWARD` (max and min), :data:`AVG_FORWARD` (averages and sums) and
:data:`BACKWARD` (routing a max's gradient, spreading an average's) each list
``(family, when, run)``: the first row whose ``when(call)`` holds runs ``run(call)``
(:func:`run`). A :class:`Call` holds one call's arrays as the kernels view them and its
constants; every test reads only the geometry's predicates (:mod:`._plan`) and the call's
options. Adding a kernel
means adding a row (and a grid case in ``tests/kernel_check.py`` that reaches it:
``test_numba`` checks that every row is reached).
"""
from __future__ import annotations

import math

import numpy as np

from ..._geometry import Geometry
from .._common import acc_dtype
from ._k_check import (_checked_run, _k2_2d_omit, _k2_2d_sum_checked, _k2_3d_omit,
                       _k2_3d_sum_checked)
from ._k_ints import _boxes_int_best, _boxes_umean
from ._k_planes import PLANE_LIMIT, _plane_sum_cf
from ._k_last import _avg_cl, _avg_cl_checked, _back_cl, _best_cl, _sep_cl, _tiles_back_cl
from ._k_maps import divide_planes
from ._k_nd import _avg_nd, _back_nd, _best_nd
from ._k_rows import SUM, _avg_cf, _back_cf, _best_arg_cf, _best_cf, _route_cf, _route_cl
from ._k_running import _running_arg_cf, _running_cf, running_plan
from ._k_running import fits as _running
from ._k_small import (_k2_2d, _k2_2d_sum, _k2_3d, _k2_3d_sum, _k2_arg_2d, _k2_arg_3d,
                       _k2_arg_cl, _k2_avg_back_cf, _k2_cl, _k2_cl_omit, _k2_cl_sum,
                       _k2_cl_sum_checked, _k2_sum_half, _depth_best, _depth_best_arg,
                       _k3_arg_cf, _k3_avg_cf, _k3_flat_arg_cf, _k3_flat_cf, _k3_flat_omit,
                       _k3_roll_cf, _k3_roll_omit)
from ._k_half import _hardware, _numpy_keeps_nan, widen
from ._k_tiles import (_boxes_back_cf, _boxes_sum_cf, _global_best_cf, _global_sum_cf,
                       _global_sum_half, _tiles_arg_cf, _tiles_cf, _tiles_sum_half)
from ._plan import _boxes, _counts3, _dummy, _global, _k2_fast, _k3_fast, _tables, _tiles
from ._threadpool import _pool, _threads


class NanCheck:
    """The NaN check fused into a forward call (:func:`._k_check._checked_run`), made for the
    output ``y``; ``found`` after the call."""

    def __init__(self, y):
        self.bits = np.dtype(f"i{y.itemsize}")
        self.flat = y.reshape(-1).view(self.bits)
        self.magnitude = self.bits.type((1 << (8 * y.itemsize - 1)) - 1)
        self.inf = np.array(np.inf, dtype=y.dtype).view(self.bits)[()]
        self.nan = np.zeros(1, dtype=np.bool_)

    @property
    def found(self) -> bool:
        return bool(self.nan[0])


# kernels with the check in their own loop (the no-alias sums, which cannot be passed to
# _checked_run; the channels-last averages, where a compare per output as it is written costs
# less than the scan), or that need none: the 2x2 (x 2) and 3x3 max and min, channels-first or
# last, skip NaN in their select (_k2_2d_omit; the 3x3 through _checked_run's scan had cost
# 1.10-1.13x "propagate" at two threads)
_CHECKED_TWINS = {_k2_2d: _k2_2d_omit, _k2_3d: _k2_3d_omit, _k2_cl: _k2_cl_omit,
                  _k3_flat_cf: _k3_flat_omit, _k3_roll_cf: _k3_roll_omit,
                  _k2_2d_sum: _k2_2d_sum_checked, _k2_3d_sum: _k2_3d_sum_checked,
                  _k2_cl_sum: _k2_cl_sum_checked, _avg_cl: _avg_cl_checked}


class Call:
    """One pool call: the geometry ``g``, the input ``x`` (float16 widened on first use) or
    gradient, the output ``y`` (forward) and indices ``arg``, and the options. ``v(a, out)``
    views an array as the 3-d kernels do: ``(B, D, H, W)`` channels-first, ``(B, D, H, W, T)``
    channels-last."""

    def __init__(self, g: Geometry, x, y, arg=None, *, op=0, with_arg=False, ident=0,
                 check=None, count_include_pad=True, override=0, rounding="trunc"):
        self.g, self.tb = g, _tables(g)
        self._x, self.y, self.arg = x, y, arg
        self.dtype = acc_dtype(x.dtype) if x.dtype == np.float16 else x.dtype   # the kernels'
        self.B, self.T = x.shape[0], x.shape[-1]
        self.P = math.prod(g.in_size)          # an input plane's size
        self.op, self.with_arg, self.ident, self.check = op, with_arg, ident, check
        self.count_include_pad, self.override = count_include_pad, override
        self.k2 = _k2_fast(g) if g.ndim <= 3 else 0
        # 0 floats; integers 1 (divide truncating) or 2 (round half to even): ``_int_div``
        self.is_int = (2 if rounding == "nearest" else 1) if x.dtype.kind in "iu" else 0

    @property
    def x(self):
        """The input as the kernels take it: float16 widened to float32 (once, on first use;
        :mod:`._k_half`), every other dtype as given."""
        if self._x.dtype == np.float16:
            self._x = widen(self._x)
        return self._x

    def half_bits(self, family):
        """The float16 input's bits (uint16), for a kernel that widens a block at a time
        itself (``_global_sum_half``, ``_tiles_sum_half``, ``_k2_sum_half``; ``family`` is
        recorded in :data:`REACHED`), or None: not float16 (or widened already), a NaN check
        to fuse, or no inline conversion on this CPU."""
        x = self._x
        if x.dtype != np.float16 or self.check is not None or not _hardware() \
                or not x.flags.c_contiguous:
            return None
        REACHED.add(("avg forward", family + " float16"))
        return x.view(np.uint16)

    def v(self, a, out=True):
        shape = self.tb["out3" if out else "in3"]
        return a.reshape((self.B,) + shape + ((self.T,) if self.T > 1 else ()))

    def a4(self):
        return self.v(self.arg) if self.with_arg else _dummy(4 if self.T == 1 else 5, np.int8)

    @property
    def rows(self):
        OD, OH, _ = self.tb["out3"]
        return self.B * OD * OH

    @property
    def geo(self):
        return self.tb["geo"]

    def div(self):
        """The average's divisor as the literal kernels take it (one value)."""
        return np.array([self.override or self.g.taps], dtype=acc_dtype(self.dtype))

    def launch(self, kernel, n, work, per, *args):
        """``_pool.run(kernel, n, work, *args)``, with the NaN check when the call has one:
        ``per`` is the number of outputs each work item writes (or the array of item
        starts)."""
        if self.check is None:
            _pool.run(kernel, n, work, *args)
            return
        c = self.check
        twin = _CHECKED_TWINS.get(kernel)
        if twin is not None:                # no scan: no item starts
            _pool.run(twin, n, work, *args, c.nan)
            return
        starts = per if isinstance(per, np.ndarray) else np.arange(n + 1, dtype=np.int64) * per
        _pool.run(_checked_run, n, work, kernel, args, c.flat, starts, c.magnitude, c.inf, c.nan)


#: (table, family) pairs that have run in this process (``tests/kernel_check.py`` asserts that
#: its grid reaches every row)
REACHED: set = set()


def run(name: str, call: Call):
    """Run the first row of table ``name`` (a key of :data:`TABLES`) that applies to
    ``call``."""
    for family, when, go in TABLES[name]:
        if when(call):
            REACHED.add((name, family))
            go(call)
            return
    raise AssertionError("every table ends with a row that always applies")


# ----------------------------------------------------------------------------------------------
# max and min forward
# ----------------------------------------------------------------------------------------------

def _max_global(c):
    c.launch(_global_best_cf, c.B, c.x.size, 1, c.x.reshape(c.B, c.P), c.y.reshape(c.B),
             c.arg.reshape(c.B) if c.with_arg else _dummy(1, np.int8), c.op, c.with_arg)


def _max_nd(c):
    Q = math.prod(c.g.out_size)
    tb = c.tb
    c.launch(_best_nd, c.B * Q, c.y.size, c.T, c.x.reshape(c.B, c.P, c.T),
             c.y.reshape(c.B, Q, c.T),
             c.arg.reshape(c.B, Q, c.T) if c.with_arg else _dummy(3, np.int8), tb["pos"],
             tb["kern"], tb["outsh"], tb["instr"], c.op, c.with_arg, c.ident)


def _max_k2_arg(c):
    _pool.run(_k2_arg_2d if c.k2 == 1 else _k2_arg_3d, c.rows, c.y.size, c.v(c.x, False),
              c.v(c.y), c.a4(), c.op, np.arange(8, dtype=c.arg.dtype))


def _max_k2(c):
    c.launch(_k2_2d if c.k2 == 1 else _k2_3d, c.rows, c.y.size, c.tb["out3"][2], c.v(c.x, False),
             c.v(c.y), c.op, np.ones(1, c.x.dtype))


def _max_tiles_arg(c):
    _pool.run(_tiles_arg_cf, c.B * c.tb["out3"][0], c.x.size, c.v(c.x, False), c.v(c.y), c.a4(),
              int(c.geo[1]), int(c.geo[2]), c.op)


def _max_rows_arg(c):
    _pool.run(_best_arg_cf, c.rows, c.y.size, c.v(c.x, False), c.v(c.y), c.a4(), c.geo,
              c.tb["wtab"], c.tb["wfirst"], c.op, c.ident)


def _max_running(c):
    """Stride-1 windows, any size: van Herk / Gil-Werman along W, then H (:mod:`._k_running`)."""
    kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in c.geo)
    OD, OH, OW = c.tb["out3"]
    planes = c.B * OD
    nchunk, C, Lb = running_plan(OH, OW, kh, kw, planes, _threads())
    if c.with_arg:
        _pool.run(_running_arg_cf, planes * nchunk, c.y.size, c.v(c.x, False), c.v(c.y), c.a4(),
                  kh, kw, ph, pw, nchunk, C, Lb, c.op, c.ident)
    else:
        c.launch(_running_cf, planes * nchunk, c.y.size, _chunk_starts(planes, nchunk, OH, OW),
                 c.v(c.x, False), c.v(c.y), kh, kw, ph, pw, nchunk, C, Lb, c.op, c.ident)


def _int_boxes(c) -> bool:
    """Integer data over non-overlapping boxes, values only: :mod:`._k_ints`."""
    return _cf(c) and not c.with_arg and c.is_int != 0 and _boxes(c.g)


def _max_boxes_int(c):
    kd, kh, kw = (int(v) for v in c.geo[:3])
    _pool.run(_boxes_int_best, c.rows, c.x.size, c.v(c.x, False), c.v(c.y), kd, kh, kw, c.op)


def _max_tiles(c):
    OD, OH, OW = c.tb["out3"]
    c.launch(_tiles_cf, c.B * OD, c.x.size, OH * OW, c.v(c.x, False), c.v(c.y), int(c.geo[1]),
             int(c.geo[2]), c.op, np.ones(1, c.x.dtype))


def _k3_planes(c) -> bool:
    """Whether the 3x3 max runs on whole planes (:func:`._k_small._k3_flat_cf`)."""
    W, OW, sw = c.tb["in3"][2], c.tb["out3"][2], int(c.geo[5])
    return W % sw == 0 and OW <= W // sw and c.B * c.tb["out3"][0] >= 4 * _threads()


def _max_k3_flat(c):
    OD, OH, OW = c.tb["out3"]
    sh, sw, ph, pw = int(c.geo[4]), int(c.geo[5]), int(c.geo[10]), int(c.geo[11])
    c.launch(_k3_flat_cf, c.B * OD, c.y.size, OH * OW, c.v(c.x, False), c.v(c.y), sh, sw, ph, pw,
             c.op, c.ident)


def _k3_depth(c) -> bool:
    """Whether a 3-d max is 3x3 windows over H, W (no dilation there, W stride 1 or 2) with
    depth pooled (kd > 1): each input slice's 3x3 results are computed once, by the 2-d
    kernels, and combined over depth (:func:`._k_small._depth_best`)."""
    kd, kh, kw, sd, sh, sw, dd, dh, dw = (int(v) for v in c.geo[:9])
    return c.g.ndim == 3 and kd > 1 and kh == kw == 3 and dh == dw == 1 and sw in (1, 2)


def _slices(c, with_arg):
    """The 2-d 3x3 windows of every input slice of a 3-d call (``_k3_depth``), run by the 2-d
    table -> (results (B, D, OH*OW), their taps or None, depth geometry kd, sd, dd, pd)."""
    g = c.g
    D, H, W = g.in_size
    _, OH, OW = g.out_size
    g2 = Geometry((H, W), g.kernel[1:], g.stride[1:], g.dilation[1:], g.pad_before[1:],
                  g.pad_after[1:], (OH, OW))
    t = np.empty((c.B * D, OH, OW, 1), dtype=c.y.dtype)
    ta = np.empty((c.B * D, OH, OW, 1), dtype=c.arg.dtype) if with_arg else None
    run("max forward", Call(g2, c.x.reshape(c.B * D, H, W, 1), t, ta, op=c.op,
                            with_arg=with_arg, ident=c.ident))
    flat = (c.B, D, OH * OW)
    return (t.reshape(flat), None if ta is None else ta.reshape(flat),
            tuple(int(c.geo[i]) for i in (0, 3, 6, 9)))


def _max_k3_depth(c):
    t, _, depth = _slices(c, False)
    OD, OH, OW = c.g.out_size
    c.launch(_depth_best, c.B * OD, c.y.size, OH * OW, t, c.y.reshape(c.B, OD, OH * OW),
             *depth, c.op, c.ident)


def _max_k3_depth_arg(c):
    t, ta, depth = _slices(c, True)
    OD, OH, OW = c.g.out_size
    _pool.run(_depth_best_arg, c.B * OD, c.y.size, t, ta, c.y.reshape(c.B, OD, OH * OW),
              c.arg.reshape(c.B, OD, OH * OW), *depth, c.g.kernel[1] * c.g.kernel[2], c.op,
              c.ident)


def _chunk_starts(planes, nchunk, OH, OW):
    """Where each work item of a kernel that splits each plane's output rows into ``nchunk``
    chunks begins in the flat output."""
    i = np.arange(planes * nchunk + 1, dtype=np.int64)
    rows_per = -(-OH // nchunk)
    return (i // nchunk) * OH * OW + np.minimum(OH, (i % nchunk) * rows_per) * OW


def _max_k3_roll(c):
    OD, OH, OW = c.tb["out3"]
    sh, sw, ph, pw = int(c.geo[4]), int(c.geo[5]), int(c.geo[10]), int(c.geo[11])
    planes = c.B * OD
    nchunk = max(1, min(OH, -(-4 * _threads() // max(planes, 1))))
    c.launch(_k3_roll_cf, planes * nchunk, c.y.size, _chunk_starts(planes, nchunk, OH, OW),
             c.v(c.x, False), c.v(c.y), sh, sw, ph, pw, nchunk, c.op, c.ident)


def _max_k3_flat_arg(c):
    OD, OH, OW = c.tb["out3"]
    sh, sw, ph, pw = int(c.geo[4]), int(c.geo[5]), int(c.geo[10]), int(c.geo[11])
    _pool.run(_k3_flat_arg_cf, c.B * OD, c.x.size, c.v(c.x, False), c.v(c.y), c.v(c.arg), sh,
              sw, ph, pw, c.op, c.ident)


def _max_k3_arg(c):
    OD, OH, OW = c.tb["out3"]
    sh, sw, ph, pw = int(c.geo[4]), int(c.geo[5]), int(c.geo[10]), int(c.geo[11])
    planes = c.B * OD
    nchunk = max(1, min(OH, -(-4 * _threads() // max(planes, 1))))
    _pool.run(_k3_arg_cf, planes * nchunk, c.x.size, c.v(c.x, False), c.v(c.y), c.v(c.arg), sh,
              sw, ph, pw, nchunk, c.op, c.ident)


def _max_rows(c):
    c.launch(_best_cf, c.rows, c.y.size, c.tb["out3"][2], c.v(c.x, False), c.v(c.y), c.geo,
             c.tb["wtab"], c.op, c.ident)


def _max_k2_cl(c):
    c.launch(_k2_cl, c.rows, c.y.size, c.tb["out3"][2] * c.T, c.v(c.x, False), c.v(c.y), c.op,
             np.ones(1, c.x.dtype))


def _max_k2_arg_cl(c):
    _pool.run(_k2_arg_cl, c.rows, c.y.size, c.v(c.x, False), c.v(c.y), c.v(c.arg), c.op,
              np.arange(8, dtype=c.arg.dtype))


def _max_cl(c):
    c.launch(_best_cl, c.rows, c.y.size, c.tb["out3"][2] * c.T, c.v(c.x, False), c.v(c.y),
             c.a4(), c.geo, c.op, c.with_arg, c.ident)


def _sep_last(c) -> bool:
    """Whether a channels-last max runs separably (:func:`._k_last._sep_cl`): values only,
    depth untouched, stride 1, windows of at least 3x3 (kw + kh selects instead of kw * kh)."""
    kd, kh, kw, sd, sh, sw = (int(v) for v in c.geo[:6])
    return (not c.with_arg and kd == 1 and sd == 1 and int(c.geo[9]) == 0 and sh == sw == 1
            and kh >= 3 and kw >= 3 and c.tb["out3"][0] == c.tb["in3"][0])


def _max_sep_cl(c):
    OD, OH, OW = c.tb["out3"]
    planes = c.B * OD
    nchunk = max(1, min(OH, -(-4 * _threads() // max(planes, 1))))
    c.launch(_sep_cl, planes * nchunk, c.x.size, _chunk_starts(planes, nchunk, OH, OW * c.T),
             c.v(c.x, False), c.v(c.y), c.geo, c.op, c.ident, nchunk)


def _cf(c):
    return c.T == 1


#: max/min forward: (kernel family, when it applies, runner); the first row that applies runs.
MAX_FORWARD = (
    ("global", lambda c: c.T == 1 and _global(c.g), _max_global),
    ("n-d", lambda c: c.g.ndim > 3, _max_nd),
    ("integer boxes", _int_boxes, _max_boxes_int),
    ("2x2 indices", lambda c: _cf(c) and c.k2 and c.with_arg, _max_k2_arg),
    ("2x2", lambda c: _cf(c) and c.k2, _max_k2),
    ("tiles indices", lambda c: _cf(c) and c.with_arg and _tiles(c.g), _max_tiles_arg),
    ("running indices", lambda c: _cf(c) and c.with_arg and _running(c.g), _max_running),
    ("3x3 planes indices", lambda c: _cf(c) and c.with_arg and _k3_fast(c.g) and _k3_planes(c),
     _max_k3_flat_arg),
    ("3x3 indices", lambda c: _cf(c) and c.with_arg and _k3_fast(c.g), _max_k3_arg),
    ("3x3 slices, then depth, indices", lambda c: _cf(c) and c.with_arg and _k3_depth(c),
     _max_k3_depth_arg),
    ("rows indices", lambda c: _cf(c) and c.with_arg, _max_rows_arg),
    ("tiles", lambda c: _cf(c) and _tiles(c.g), _max_tiles),
    ("3x3 planes", lambda c: _cf(c) and _k3_fast(c.g) and _k3_planes(c), _max_k3_flat),
    ("3x3 rows", lambda c: _cf(c) and _k3_fast(c.g), _max_k3_roll),
    ("running", lambda c: _cf(c) and _running(c.g), _max_running),
    ("3x3 slices, then depth", lambda c: _cf(c) and not c.with_arg and _k3_depth(c),
     _max_k3_depth),
    ("rows", _cf, _max_rows),
    ("last 2x2", lambda c: c.k2 == 1 and not c.with_arg, _max_k2_cl),
    ("last 2x2 indices", lambda c: c.k2 == 1, _max_k2_arg_cl),
    ("last separable", _sep_last, _max_sep_cl),
    ("last", lambda c: True, _max_cl),
)


# ----------------------------------------------------------------------------------------------
# averages and sums forward
# ----------------------------------------------------------------------------------------------

def _avg_global(c):
    div = np.array([c.override or math.prod(c.g.in_size)], dtype=acc_dtype(c.dtype))
    xh = c.half_bits("global")
    if xh is not None:
        _pool.run(_global_sum_half, c.B, xh.size, xh.reshape(c.B, c.P), c.y.reshape(c.B), div,
                  _numpy_keeps_nan()[0])
        return
    c.launch(_global_sum_cf, c.B, c.x.size, 1, c.x.reshape(c.B, c.P), c.y.reshape(c.B), div)


def _avg_nd_run(c):
    Q = math.prod(c.g.out_size)
    div = (np.full(Q, c.override, dtype=np.int64) if c.override else
           np.ascontiguousarray(c.g.divisor(c.count_include_pad)).reshape(-1))
    tb = c.tb
    c.launch(_avg_nd, c.B * Q, c.y.size, c.T, c.x.reshape(c.B, c.P, c.T),
             c.y.reshape(c.B, Q, c.T), tb["pos"], tb["kern"], tb["outsh"], tb["instr"], div,
             np.zeros(1, dtype=acc_dtype(c.x.dtype)), c.is_int)


def _avg_k2(c):
    xh = c.half_bits("2x2")
    if xh is not None:
        OD = c.tb["out3"][0]
        _pool.run(_k2_sum_half, c.B * OD, xh.size, c.v(xh, False), c.v(c.y), c.k2, c.div(),
                  _numpy_keeps_nan()[0])
        return
    c.launch(_k2_2d_sum if c.k2 == 1 else _k2_3d_sum, c.rows, c.y.size, c.tb["out3"][2],
             c.v(c.x, False), c.v(c.y), SUM, c.div())


def _unsigned_shift(c) -> bool:
    """Whether a box mean runs on the narrow unsigned kernel: uint8 or uint16 data over a
    power-of-two divisor (the taps, or the override), with a box whose sum fits the narrow
    accumulator (uint16, uint32)."""
    d = c.override or c.g.taps
    return (c.x.dtype.kind == "u" and c.x.dtype.itemsize <= 2 and d > 0 and d & (d - 1) == 0
            and c.g.taps <= (257 if c.x.dtype.itemsize == 1 else 65537))


def _avg_boxes_unsigned(c):
    d = c.override or c.g.taps
    kd, kh, kw = (int(v) for v in c.geo[:3])
    acc = np.zeros(1, dtype=np.uint16 if c.x.dtype.itemsize == 1 else np.uint32)
    _pool.run(_boxes_umean, c.rows, c.x.size, c.v(c.x, False), c.v(c.y), kd, kh, kw, acc,
              int(d).bit_length() - 1, c.is_int == 2)


def _avg_tiles(c):
    OD, OH, OW = c.tb["out3"]
    xh = c.half_bits("tiles")
    if xh is not None:
        _pool.run(_tiles_sum_half, c.B * OD, xh.size, c.v(xh, False), c.v(c.y), int(c.geo[1]),
                  int(c.geo[2]), c.div(), _numpy_keeps_nan()[0])
        return
    c.launch(_tiles_cf, c.B * OD, c.x.size, OH * OW, c.v(c.x, False), c.v(c.y), int(c.geo[1]),
             int(c.geo[2]), SUM, c.div())


def _avg_boxes(c):
    kd, kh, kw = (int(v) for v in c.geo[:3])
    c.launch(_boxes_sum_cf, c.rows, c.x.size, c.tb["out3"][2], c.v(c.x, False), c.v(c.y), kd, kh,
             kw, c.div())


def _avg_k3(c):
    acc = acc_dtype(c.x.dtype)
    _, ch, cw = _counts3(c.g, c.count_include_pad, acc)
    c.launch(_k3_avg_cf, c.rows, c.y.size, c.tb["out3"][2], c.v(c.x, False), c.v(c.y), c.geo,
             c.tb["wtab"], ch, cw, acc.type(c.override))


def _stride1_planes(c) -> bool:
    """A channels-first stride-1 window whose zero-padded plane fits ``PLANE_LIMIT``."""
    if not _cf(c) or any(int(v) != 1 for v in c.geo[3:6]):
        return False
    (OD, OH, OW), (kd, kh, kw), dil = c.tb["out3"], c.geo[:3], c.geo[6:9]
    return math.prod(o + (k - 1) * d for o, k, d in zip((OD, OH, OW), (kd, kh, kw), dil)) \
        <= PLANE_LIMIT


def _avg_planes(c):
    acc = acc_dtype(c.x.dtype)
    cd, ch, cw = _counts3(c.g, c.count_include_pad, acc)
    c.launch(_plane_sum_cf, c.B, c.y.size, math.prod(c.tb["out3"]), c.v(c.x, False), c.v(c.y),
             c.geo, cd, ch, cw, acc.type(c.override), np.zeros(1, dtype=acc), c.is_int)


def _avg_rows(c):
    acc = acc_dtype(c.x.dtype)
    cd, ch, cw = _counts3(c.g, c.count_include_pad, acc)
    c.launch(_avg_cf, c.rows, c.y.size, c.tb["out3"][2], c.v(c.x, False), c.v(c.y), c.geo,
             c.tb["wtab"], cd, ch, cw, acc.type(c.override), np.zeros(1, dtype=acc), c.is_int)


def _avg_k2_cl(c):
    c.launch(_k2_cl_sum, c.rows, c.y.size, c.tb["out3"][2] * c.T, c.v(c.x, False), c.v(c.y), SUM,
             c.div())


def _avg_cl_run(c):
    acc = acc_dtype(c.x.dtype)
    cd, ch, cw = _counts3(c.g, c.count_include_pad, acc)
    c.launch(_avg_cl, c.rows, c.y.size, c.tb["out3"][2] * c.T, c.v(c.x, False), c.v(c.y), c.geo,
             cd, ch, cw, acc.type(c.override), np.zeros(1, dtype=acc), c.is_int)


#: averages and sums: (kernel family, when it applies, runner); the first row that applies runs.
#: Integer data takes the generic rows (their sums are exact in int64 and truncate once).
AVG_FORWARD = (
    ("global", lambda c: c.T == 1 and _global(c.g) and not c.is_int, _avg_global),
    ("n-d", lambda c: c.g.ndim > 3, _avg_nd_run),
    ("2x2", lambda c: _cf(c) and c.k2 and not c.is_int, _avg_k2),
    ("unsigned boxes", lambda c: _int_boxes(c) and _unsigned_shift(c), _avg_boxes_unsigned),
    ("tiles", lambda c: _cf(c) and _tiles(c.g) and not c.is_int, _avg_tiles),
    ("3-d boxes", lambda c: _cf(c) and _boxes(c.g) and c.geo[0] > 1 and not c.is_int,
     _avg_boxes),
    ("stride-1 planes", _stride1_planes, _avg_planes),
    ("3x3", lambda c: _cf(c) and _k3_fast(c.g) and not c.is_int, _avg_k3),
    ("rows", _cf, _avg_rows),
    ("last 2x2", lambda c: c.k2 == 1 and not c.is_int, _avg_k2_cl),
    ("last", lambda c: True, _avg_cl_run),
)


# ----------------------------------------------------------------------------------------------
# backward: route a max's gradient by its indices, or spread an average's
# ----------------------------------------------------------------------------------------------
# The call's ``x`` is dy and ``y`` the gradient dx to fill; ``override`` 1 means dy is already
# divided (integer shares), so the kernels pass it through.

def _route_tables(g: Geometry, tb: dict):
    """In-plane offsets for routing: base of each output along D, H, W and of each tap."""
    if "route" not in tb:
        D, H, W = tb["in3"]
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        OD, OH, OW = tb["out3"]
        dbase = (np.arange(OD) * sd - pd) * H * W
        hbase = (np.arange(OH) * sh - ph) * W
        wbase = np.arange(OW) * sw - pw
        i, j, l = np.meshgrid(np.arange(kd), np.arange(kh), np.arange(kw), indexing="ij")
        toff = (i * dd * H * W + j * dh * W + l * dw).reshape(-1)
        tb["route"] = tuple(a.astype(np.int64) for a in (dbase, hbase, wbase, toff))
    return tb["route"]


def _channel_block(B, T):
    """Channels per work item in channels-last backward: enough items for every thread."""
    blocks = max(1, -(-2 * _threads() // max(B, 1)))
    return max(16, -(-T // blocks))


def _work(c):
    return c.B * c.T * (math.prod(c.g.in_size) + math.prod(c.g.out_size))


def _shared(c):
    """dy over the divisor, for the spreading kernels that take it divided (not a max's dy,
    nor one already divided: ``override`` 1)."""
    if c.with_arg or c.override == 1:
        return c.x
    return shares(c.x, c.g, c.count_include_pad, c.override)


def shares(dy, g: Geometry, count_include_pad, override):
    """dy / divisor in the accumulation dtype (integers truncate toward zero)."""
    div = (np.asarray(override, dtype=np.int64) if override
           else g.divisor(count_include_pad)[..., None])
    if dy.dtype.kind in "iu":
        s = dy.astype(np.int64)
        q = np.floor_divide(s, div)
        return q + ((q * div != s) & ((s < 0) != (div < 0)))
    if dy.flags.c_contiguous and div.ndim == dy.ndim - 1 and not override:
        return divide_planes(dy, div[..., 0].astype(dy.dtype))     # threaded, the same bits
    return np.divide(dy, div.astype(dy.dtype))


def _back_nd_run(c):
    B, T, tb = c.B, c.T, c.tb
    Q = math.prod(c.g.out_size)
    c.y = np.zeros_like(c.y)
    _pool.run(_back_nd, B, _work(c), _shared(c).reshape(B, Q, T),
              c.arg.reshape(B, Q, T) if c.with_arg else _dummy(3, np.int8),
              c.y.reshape(B, c.P, T), tb["pos"], tb["kern"], tb["outsh"], tb["instr"],
              c.with_arg)


def _route_rows(c):                      # dx is zeroed per plane by the kernel
    _pool.run(_route_cf, c.B, _work(c), c.v(c.x), c.v(c.arg), c.y.reshape(c.B, c.P),
              *_route_tables(c.g, c.tb))


def _route_last(c):
    c.y = np.zeros_like(c.y)
    cs = _channel_block(c.B, c.T)
    _pool.run(_route_cl, c.B * (-(-c.T // cs)), _work(c), c.v(c.x), c.v(c.arg),
              c.y.reshape(c.B, c.P, c.T), *_route_tables(c.g, c.tb), cs)


def _spread_last(c):
    c.y = np.zeros_like(c.y)
    cs = _channel_block(c.B, c.T)
    _pool.run(_back_cl, c.B * (-(-c.T // cs)), _work(c), c.v(_shared(c)), _dummy(5, np.int8),
              c.v(c.y, False), c.geo, False, cs)


def _stride1_geo(c):
    """The geometry of a stride-1 average backward seen as a forward window sum over the
    shares: input z of a window of k taps (dilation d, padding p before) receives the shares
    of outputs z + p - t*d, t < k, a stride-1 window with the same kernel and dilation over
    the shares, padded by (k-1)*d - p before. None for other strides, a max, or integers."""
    if c.x.dtype.kind != "f" or c.with_arg or any(int(v) != 1 for v in c.geo[3:6]):
        return None
    geo = c.geo.copy()
    geo[9:12] = (geo[0:3] - 1) * geo[6:9] - geo[9:12]
    return geo


def _spread_last_stride1(c):
    """Channels-last stride-1 average backward: the forward kernel (:func:`._k_last._avg_cl`)
    over the shares, divisor 1 (each input gathers its covering windows' shares, taps in
    descending order: the backward's float rounding allows another order than _back_cl's)."""
    one = np.ones(1, dtype=c.x.dtype)
    D, H, W = c.tb["in3"]
    _pool.run(_avg_cl, c.B * D * H, _work(c), c.v(_shared(c)), c.v(c.y, False),
              _stride1_geo(c), one, one, one, one[0], np.zeros(1, dtype=c.x.dtype), 0)


def _spread_last_boxes(c):
    D, H, _ = c.tb["in3"]
    kd, kh, kw = (int(v) for v in c.geo[:3])
    _pool.run(_tiles_back_cl, c.B * D * H, _work(c), c.v(c.x), c.v(c.y, False), kd, kh, kw,
              np.array([c.override or c.g.taps], dtype=c.x.dtype))


def _divides(c) -> bool:
    """Whether the spreading kernels that divide dy themselves (by ``override`` or the taps)
    apply: any float dy (``override`` 1 is then a divisor of 1: the sum's, exact), but not
    integer shares already divided (``override`` 1 with integers)."""
    return c.override != 1 or c.x.dtype.kind == "f"


def _spread_boxes(c):
    D, H, _ = c.tb["in3"]
    kd, kh, kw = (int(v) for v in c.geo[:3])
    _pool.run(_boxes_back_cf, c.B * D * H, c.y.size, c.v(c.x), c.v(c.y, False), kd, kh, kw,
              np.array([c.override or c.g.taps], dtype=c.x.dtype))


def _spread_k2(c):
    D, H, _ = c.tb["in3"]
    _pool.run(_k2_avg_back_cf, c.B * D * H, _work(c), c.v(c.x), c.v(c.y, False), c.k2,
              np.array([c.override or c.g.taps], dtype=c.x.dtype))


def _spread_planes_geo(c):
    """_stride1_geo for the channels-first plane sums (:func:`._k_planes._plane_sum_cf`),
    or None: the padding before and after each at most (k-1)*d (the shares' padded plane then
    holds them), the padded plane within PLANE_LIMIT."""
    if not _cf(c):
        return None
    geo = _stride1_geo(c)
    if geo is None:
        return None
    ext = (c.geo[0:3] - 1) * c.geo[6:9]
    after = np.array((0,) * (3 - c.g.ndim) + tuple(c.g.pad_after), dtype=np.int64)
    if (geo[9:12] < 0).any() or (after > ext).any() or \
            math.prod(int(n + e) for n, e in zip(c.tb["in3"], ext)) > PLANE_LIMIT:
        return None
    return geo


def _spread_planes(c):
    geo = _spread_planes_geo(c)
    one = np.ones(1, dtype=c.x.dtype)
    D, H, W = c.tb["in3"]
    _pool.run(_plane_sum_cf, c.B, _work(c), c.v(_shared(c)), c.v(c.y, False), geo,
              np.ones(D, c.x.dtype), np.ones(H, c.x.dtype), np.ones(W, c.x.dtype), one[0],
              np.zeros(1, dtype=c.x.dtype), 0)


def _spread_rows(c):
    D, H, _ = c.tb["in3"]
    cd, ch, cw = _counts3(c.g, c.count_include_pad, c.x.dtype)
    _pool.run(_back_cf, c.B * D * H, _work(c), c.v(c.x), c.v(c.y, False), c.geo, c.tb["wtab"],
              cd, ch, cw, c.x.dtype.type(c.override))


#: backward (``with_arg``: a max's, routed by its indices; else an average's, spread):
#: (kernel family, when it applies, runner); the first row that applies runs. Every row fills
#: the whole gradient ``dx`` (the call's ``y``; a row that needs it zeroed first replaces it).
BACKWARD = (
    ("n-d", lambda c: c.g.ndim > 3, _back_nd_run),
    ("route rows", lambda c: c.with_arg and _cf(c), _route_rows),
    ("route last", lambda c: c.with_arg, _route_last),
    ("spread last boxes", lambda c: not _cf(c) and (_boxes(c.g) or _global(c.g))
     and _divides(c), _spread_last_boxes),
    ("spread last stride-1", lambda c: not _cf(c) and _stride1_geo(c) is not None,
     _spread_last_stride1),
    ("spread last", lambda c: not _cf(c), _spread_last),
    ("spread 2x2", lambda c: c.k2 and _divides(c), _spread_k2),
    ("spread boxes", lambda c: (_tiles(c.g) or _boxes(c.g) and c.geo[0] > 1) and _divides(c),
     _spread_boxes),
    ("spread stride-1 planes", lambda c: _spread_planes_geo(c) is not None, _spread_planes),
    ("spread rows", lambda c: True, _spread_rows),
)

TABLES = {"max forward": MAX_FORWARD, "avg forward": AVG_FORWARD, "backward": BACKWARD}
