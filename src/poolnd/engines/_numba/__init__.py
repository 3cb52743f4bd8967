"""The compiled engine: fused, multi-threaded Numba kernels (imported only when used).

Where things are. This file is the engine's face (the protocol of :mod:`.._protocol`: what the
driver calls). The choice of kernel is one place, :mod:`._dispatch`: three tables (max/min
forward, average/sum forward, backward) of ``(family, when, run)`` rows read top to bottom. The
kernels live by family, each family in one file: ``_k_rows`` (the generic channels-first rows
and the row primitives every family shares), ``_k_small`` (the literal 2x2, 2x2x2 and 3x3
windows), ``_k_running`` (stride-1 windows of any size, van Herk / Gil-Werman), ``_k_tiles``
(non-overlapping tiles, global windows), ``_k_ints`` (integer image data over non-overlapping
boxes, rows first), ``_k_last`` (channels-last), ``_k_nd`` (four and more
dims), ``_k_boxes`` (box windows, index scatter/gather), ``_k_check`` (the NaN check fused into
any forward kernel), ``_k_half`` (float16 <-> float32 by the CPU's conversion, bit for bit
NumPy's casts), ``_k_maps`` (elementwise passes around a pool: a kept lp's squares) and ``_rank``
(median, mode, NaN-skipping max/min, with its own table).
``_plan`` turns a geometry into the tables the kernels read and the predicates the dispatch
tests; ``_threadpool`` is the thread pool and its policy; ``_compile`` the cache switch, the
cache key and the no-alias build. Numba's on-disk cache keys a kernel on its own file only;
``_compile`` gives every kernel of this package a key that sees every file of it, so families
can share helpers and nothing stale runs. Kernels take only arrays and ints, write into
preallocated outputs and never raise for user input: validation and geometry happened before.

Layout of the work. 1-, 2- and 3-d pools run on one family of 3-d kernels (missing dims have size
1, kernel 1, stride 1). Channels-first arrays ``(B, D, H, W)`` are pooled one output row at a
time: window taps outermost, output columns innermost, the output row as accumulator, and the
input read through a view that starts at the tap's first column (indexed from 0, with literal
strides 1 and 2 specialized), so LLVM vectorizes the inner loop. Channels-last arrays
``(N, D, H, W, C)`` are pooled in place, vectorized over C. 4-d and higher pools use one general
kernel over flattened planes.

Sums (averages, mode "sum"): every kernel adds a window's taps to a running sum in the
accumulation dtype (float32 for float16/float32 data), starting from 0, in row-major tap order,
whatever the path, so a window's sum does not depend on the array's size or on which kernel ran
(a chunked call equals the whole one bit for bit). A zero in that dtype is written
``div[0] - div[0]``: ``div[0] * 0`` would be typed float64 (float32 times an int literal).
Integer sums are exact in any order, so ``_k_ints`` adds a box's rows first.

Ties and NaN as in the reference engine: the running best is replaced when ``v > best`` (``<``
for min) or ``v != v``; the first of tied maxima wins, the last NaN wins. The select is written
branch-free. No fastmath: NaN propagation and bit-identical results are part of the contract.

Threads. Kernels are serial, ``nogil`` and cached; each takes a range ``[r0, r1)`` of
independent work items (output rows for forward passes; planes, channel blocks or input rows for
backward ones) and the Python side runs one contiguous chunk per thread on a small thread pool,
sized by Numba's thread count (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``). No kernel
is a Numba parfor (``parallel=True``) and nothing here starts Numba's threading layer: a process
that has started it under GNU OpenMP (the default layer where libgomp is found) kills every child
it forks ("fork() called from a process already using GNU OpenMP"), which broke ``os.fork``,
multiprocessing's fork pools and PyTorch DataLoader workers. The pool's own threads are
forgotten in a forked child (``os.register_at_fork``), so children work under every threading
layer (omp, tbb, workqueue). Parfors also made a cold first call 3-5 s. Every gradient element
is summed by one thread in a fixed order, so backward results are bit-identical across runs and
thread counts. Small inputs run on the calling thread alone.

Switches (environment): ``POOLND_NUMBA_CACHE=0`` disables the on-disk cache of compiled kernels
(default on); ``POOLND_NUMBA_SERIAL_BELOW=N`` sets the work size below which a call stays on one
thread (default 32768; the tests use 0 to run the threaded path on small inputs);
``POOLND_NUMBA_COLD_SERIAL_BELOW=N`` (default 2**20) the work size below which a call stays on one
thread when no parallel call ran in the last 2 ms (the other threads are then asleep, and waking
them costs more than such a call); ``POOLND_PIN_THREADS=0`` stops pinning the worker threads to
CPUs (see ``_Pool``).
"""
from __future__ import annotations

import math

import numpy as np

from ..._geometry import Geometry
from .._common import acc_dtype, arg_dtype, identity
from ._dispatch import Call, NanCheck, run, shares
from ._k_rows import MAX, MIN
from ._k_half import narrow as _narrow, widen as _widen
from ._k_maps import square_and_copy  # noqa: F401  (a kept lp_pool's p = 2 pass)
from ._plan import _acc, _dummy, _global
from ._threadpool import _pool
from ._k_boxes import _axis_max, _axis_max_any, _axis_spread, _axis_sum, _gather, _scatter

name = "numba"
channels_last = True
rounds_nearest = True      # avg_forward rounds integer averages half to even in the kernel


def _out(x, g: Geometry, dtype):
    return np.empty((x.shape[0],) + g.out_size + (x.shape[-1],), dtype=dtype)


def max_forward(x, g: Geometry, *, minimum, with_arg, check_nan=False):
    """Max (min) pool of canonical ``x`` (channels first or last) -> ``(y, arg or None)``; with
    ``check_nan`` (values only) ``(y, None, holds_nan)``, the NaN check fused into the kernel.
    The kernel: the first row of :data:`._dispatch.MAX_FORWARD` that applies."""
    xw = _widen(x)
    y = _out(x, g, xw.dtype)
    arg = np.empty(y.shape, dtype=arg_dtype(g.taps)) if with_arg else None
    check = NanCheck(y) if check_nan else None
    run("max forward", Call(g, xw, y, arg, op=MIN if minimum else MAX, with_arg=with_arg,
                            ident=identity(xw.dtype, minimum), check=check))
    y = _narrow(y, x.dtype)
    return (y, None, check.found) if check_nan else (y, arg)


def max_backward(dy, arg, g: Geometry):
    dyw = _widen(dy)
    c = Call(g, dyw, np.empty((dy.shape[0],) + g.in_size + (dy.shape[-1],), dtype=dyw.dtype),
             arg, with_arg=True)
    run("backward", c)
    return _narrow(c.y, dy.dtype)


def avg_forward(x, g: Geometry, *, count_include_pad, divisor_override, rounding="trunc",
                check_nan=False):
    """Average (window sum over its divisor) of canonical ``x`` -> ``y``; with ``check_nan``
    (floats) ``(y, holds_nan)``. Integers sum in int64 and divide truncating toward zero, or,
    with ``rounding="nearest"``, round half to even in the same pass (``rounds_nearest``: the
    driver sends only integers narrower than 64 bits here, whose sums int64 holds). The
    kernel: the first row of :data:`._dispatch.AVG_FORWARD` that applies."""
    y = _out(x, g, x.dtype if x.dtype.kind in "iu" else acc_dtype(x.dtype))
    check = NanCheck(y) if check_nan else None
    run("avg forward", Call(g, x, y, check=check, count_include_pad=count_include_pad,
                            override=divisor_override or 0, rounding=rounding))
    y = _narrow(y, x.dtype)
    return (y, check.found) if check_nan else y


def avg_backward(dy, g: Geometry, *, count_include_pad, divisor_override):
    dtype = dy.dtype
    dyw = _widen(dy)
    B, T = dy.shape[0], dy.shape[-1]
    if T == 1 and _global(g) and dtype.kind == "f":      # every input of a plane gets dy / n
        share = dyw.reshape(B, 1) / dyw.dtype.type(divisor_override or math.prod(g.in_size))
        dx = np.empty((B, math.prod(g.in_size)), dtype=dyw.dtype)
        dx[...] = share
        return _narrow(dx.reshape((B,) + g.in_size + (1,)), dtype)
    override = divisor_override or 0
    if dtype.kind in "iu":          # integer shares truncate first, then pass through
        dyw, override = shares(dyw, g, count_include_pad, override), 1
    c = Call(g, dyw, np.empty((B,) + g.in_size + (T,), dtype=dyw.dtype),
             count_include_pad=count_include_pad, override=override)
    run("backward", c)
    return _narrow(c.y, dtype)


def rank_forward(x, g: Geometry, *, mode, omit, with_arg):
    """Median, mode, and max/min skipping NaN: the kernels live in :mod:`._rank`
    (loaded on the first call; its table says which kernel runs when)."""
    from ._rank import rank_forward as run
    return run(x, g, mode=mode, omit=omit, with_arg=with_arg)


def pool_checked(x, g: Geometry, op, *, count_include_pad=True, divisor_override=None):
    """nan_policy="omit"'s fast path: the float max, min or average (``op``) of ``x`` with the
    NaN check fused into the kernel (:func:`_checked_run`) -> ``(y, holds_nan)``."""
    if op == "avg":
        return avg_forward(x, g, count_include_pad=count_include_pad,
                           divisor_override=divisor_override, check_nan=True)
    y, _, found = max_forward(x, g, minimum=op == "min", with_arg=False, check_nan=True)
    return y, found


# ----------------------------------------------------------------------------------------------
# box windows and index scatter/gather (Python side)
# ----------------------------------------------------------------------------------------------

class _Axis:
    """The axis primitives of :mod:`._separable` on the kernels above."""

    first_axis_first = True     # _axis_max(any_order=True) compares carried flat indices

    @staticmethod
    def axis_max(v4, c4, starts, sizes, max_size, mult, with_arg, any_order=False):
        B, P, _, Q = v4.shape
        y = np.empty((B, P, starts.shape[1], Q), dtype=v4.dtype)
        idx = np.empty(y.shape, dtype=np.int64) if with_arg else _dummy(4, np.int64)
        carry = c4 if c4 is not None else _dummy(4, np.int64)
        if any_order:               # a carried pass after an earlier axis: by flat index
            _pool.run(_axis_max_any, B * P, v4.size, v4, c4, y, idx, starts, sizes, mult)
        else:
            _pool.run(_axis_max, B * P, v4.size, v4, carry, y, idx, starts, sizes, mult,
                      c4 is not None, with_arg)
        return y, (idx if with_arg else None)

    @staticmethod
    def axis_sum(v4, starts, sizes, max_size):
        B, P, _, Q = v4.shape
        y = np.empty((B, P, starts.shape[1], Q), dtype=v4.dtype)
        _pool.run(_axis_sum, B * P, v4.size, v4, y, starts, sizes)
        return y

    @staticmethod
    def axis_spread(g4, starts, sizes, length):
        B, P, _, Q = g4.shape
        out = np.zeros((B, P, length, Q), dtype=g4.dtype)
        _pool.run(_axis_spread, B * P, out.size, g4, out, starts, sizes)
        return out


def box_max(x, boxes, *, with_arg):
    from .._separable import box_max as compose
    y, idx = compose(_Axis, _widen(np.ascontiguousarray(x)), boxes, with_arg)
    return _narrow(y, x.dtype), idx


def box_sum(x, boxes):
    from .._separable import box_sum as compose
    return compose(_Axis, _acc(x), boxes)


def box_spread(g, boxes):
    from .._separable import box_spread as compose
    return _narrow(compose(_Axis, _widen(np.ascontiguousarray(g)), boxes), g.dtype)


def _planes3(a):
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:-1]), a.shape[-1])


def scatter_add(dy, idx, in_size):
    src = _acc(dy)
    dx = np.empty((dy.shape[0],) + tuple(in_size) + dy.shape[-1:], dtype=src.dtype)
    _pool.run(_scatter, dy.shape[0], dy.size, _planes3(src), _planes3(idx), _planes3(dx), True)
    return _narrow(dx, dy.dtype)


def scatter_set(x, idx, out_size):
    src = _widen(np.ascontiguousarray(x))
    y = np.empty((x.shape[0],) + tuple(out_size) + x.shape[-1:], dtype=src.dtype)
    _pool.run(_scatter, x.shape[0], x.size, _planes3(src), _planes3(idx), _planes3(y), False)
    return _narrow(y, x.dtype)


def gather(src, idx):
    s = _widen(np.ascontiguousarray(src))
    out = np.empty(idx.shape, dtype=s.dtype)
    _pool.run(_gather, idx.shape[0], idx.size, _planes3(s), _planes3(idx), _planes3(out))
    return _narrow(out, src.dtype)
