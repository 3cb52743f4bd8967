"""The compiled engine: fused, multi-threaded Numba kernels (imported only when used).

Every kernel and every helper it calls lives in this one file (Numba's on-disk cache only notices
changes to the kernel's own file). Kernels take only arrays and ints, write into preallocated
outputs and never raise for user input: validation and geometry happened before.

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
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from .._geometry import Geometry
from ._common import acc_dtype, arg_dtype, identity

name = "numba"
channels_last = True
rounds_nearest = True      # avg_forward rounds integer averages half to even in the kernel

_CACHE = os.environ.get("POOLND_NUMBA_CACHE", "1") != "0"


def _noalias(fn):
    """``fn`` compiled like ``@njit(cache=_CACHE, nogil=True)``, with every array argument
    marked ``noalias`` for LLVM (the guarantee a Numba parfor's gufunc gets, which let the old
    parfor kernels vectorize the 2x2 average: 23.1 -> 16.3 ms on one thread for 32x64x112x112,
    parfor 15.4 ms). Only for kernels whose outputs never overlap their inputs. Under
    ``NUMBA_DISABLE_JIT=1`` it is ``fn`` itself, as ``njit`` would be."""
    if numba.config.DISABLE_JIT:
        return fn
    disp = _NoAliasDispatcher(fn, targetoptions=dict(nopython=True, nogil=True))
    if _CACHE:
        disp.enable_caching()
    return disp


def _noalias_dispatcher():
    from numba.core import cpu, dispatcher, registry

    class Options(cpu.CPUTargetOptions):
        def finalize(self, flags, options):
            super().finalize(flags, options)
            flags.noalias = True

    class Target(registry.CPUTarget):
        options = Options

    class NoAliasDispatcher(dispatcher.Dispatcher):
        targetdescr = Target("cpu")

    return NoAliasDispatcher


_NoAliasDispatcher = _noalias_dispatcher()
# elements of work below which threads cost more than they save (tests set it to 0)
_SERIAL_BELOW = int(os.environ.get("POOLND_NUMBA_SERIAL_BELOW", 1 << 15))
# below this much work a call also stays on one thread when the other threads are asleep (no
# parallel call in the last _WARM_S seconds): waking a sleeping thread on an idle vCPU took
# 0.5-1 ms here, more than the whole call (64x32x28x28 max pool: 0.8 ms serial, 1.4 ms on two
# woken threads, 0.3 ms on two warm ones)
_COLD_SERIAL_BELOW = int(os.environ.get("POOLND_NUMBA_COLD_SERIAL_BELOW",
                                        1 << 20 if _SERIAL_BELOW > 0 else 0))
_WARM_S = 0.002
_PIN = os.environ.get("POOLND_PIN_THREADS", "1") != "0"
_last_parallel = [-1.0]          # perf_counter() at the end of the last parallel call


def _threads() -> int:
    """How many threads a call may use: Numba's thread count, read without starting Numba's
    threading layer. ``numba.get_num_threads()`` launches that layer (OpenMP, TBB or workqueue),
    and a process that has launched GNU OpenMP aborts in every child it forks; so until the user
    starts the layer (``numba.set_num_threads`` does), poolnd reads ``NUMBA_NUM_THREADS``."""
    from numba.np.ufunc import parallel
    if parallel._is_initialized:
        return numba.get_num_threads()
    return numba.config.NUMBA_NUM_THREADS


def _serial(work: int) -> bool:
    """Whether a call of ``work`` output elements should stay on the calling thread."""
    if work < _SERIAL_BELOW:
        return True
    return work < _COLD_SERIAL_BELOW and time.perf_counter() - _last_parallel[0] > _WARM_S

MAX, MIN, SUM = 0, 1, 2


# ----------------------------------------------------------------------------------------------
# inner loops: one output row segment against one tap's input segment
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _better(v, b, op):
    """Whether v replaces the running best b: strictly better, or NaN. Branch-free in ``op``
    (loop-invariant flags, not an if): LLVM then vectorizes even the argmax loops."""
    return ((v > b) & (op == MAX)) | ((v < b) & (op != MAX)) | (v != v)


@njit(cache=_CACHE)
def _row_best(acc, src, n, s, op):
    """acc[q] = best(acc[q], src[q*s]) for q < n."""
    if s == 1:
        for q in range(n):
            v = src[q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b
    elif s == 2:
        for q in range(n):
            v = src[2 * q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b
    else:
        for q in range(n):
            v = src[s * q]
            b = acc[q]
            acc[q] = v if _better(v, b, op) else b


@njit(cache=_CACHE)
def _row_best_arg(acc, arow, src, n, s, op, t):
    """As _row_best, recording tap ``t`` where it takes over."""
    if s == 1:
        for q in range(n):
            v = src[q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]
    elif s == 2:
        for q in range(n):
            v = src[2 * q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]
    else:
        for q in range(n):
            v = src[s * q]
            take = _better(v, acc[q], op)
            acc[q] = v if take else acc[q]
            arow[q] = t if take else arow[q]


@njit(cache=_CACHE)
def _row_sum(acc, src, n, s):
    if s == 1:
        for q in range(n):
            acc[q] += src[q]
    elif s == 2:
        for q in range(n):
            acc[q] += src[2 * q]
    else:
        for q in range(n):
            acc[q] += src[s * q]


@njit(cache=_CACHE, inline="always")
def _split_row(r, OD, OH):
    """Flat output row r -> (plane b, depth od, row oh)."""
    return r // (OD * OH), (r // OH) % OD, r % OH


@njit(cache=_CACHE, inline="always")
def _trunc_div(s, d):
    q = s // d
    if q * d != s and ((s < 0) != (d < 0)):
        q += 1
    return q


@njit(cache=_CACHE, inline="always")
def _int_div(s, d, is_int):
    """An integer window sum ``s`` over its divisor ``d``: truncated toward zero (``is_int``
    1, C's ``/``) or rounded half to even (``is_int`` 2: the floor quotient and remainder of
    ``s / |d|``, up where the remainder passes half of ``|d|`` or equals it with an odd
    quotient, then the sign of ``d``; :func:`~poolnd.engines._common.exact_int_pool`'s rule)."""
    if is_int == 2:
        e = -d if d < 0 else d
        q = s // e
        rem = s - q * e
        up = e - rem
        if rem > up or (rem == up and q % 2 == 1):     # % 2: typed for floats too
            q += 1
        return -q if d < 0 else q
    return _trunc_div(s, d)


@njit(cache=_CACHE, inline="always")
def _first_in(o, s, p, dl, k, size):
    """First tap j with o*s - p + j*dl inside [0, size), or -1."""
    for j in range(k):
        i = o * s - p + j * dl
        if 0 <= i < size:
            return j
    return -1


# ----------------------------------------------------------------------------------------------
# one input row against one output row: every W tap of the row, in tap order
# wtab[l] = (o_lo, o_hi, i_lo): outputs o_lo <= q < o_hi read input column i_lo + (q - o_lo)*sw
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE)
def _interior(wtab, kw):
    """Outputs where every W tap lies inside the row: [q_lo, q_hi) (may be empty)."""
    q_lo, q_hi = wtab[0, 0], wtab[0, 1]
    for l in range(1, kw):
        q_lo = max(q_lo, wtab[l, 0])
        q_hi = min(q_hi, wtab[l, 1])
    return q_lo, q_hi


@njit(cache=_CACHE)
def _best_fused(acc, src, n, kw, sw, dw, op):
    """acc[q] = best over l of src[q*sw + l*dw], all taps inside (the interior)."""
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[2 * q]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 1]
            b = v if _better(v, b, op) else b
            acc[q] = b
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[2 * q]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 1]
            b = v if _better(v, b, op) else b
            v = src[2 * q + 2]
            b = v if _better(v, b, op) else b
            acc[q] = b
    elif kw == 3 and sw == 1 and dw == 1:
        for q in range(n):
            b = acc[q]
            v = src[q]
            b = v if _better(v, b, op) else b
            v = src[q + 1]
            b = v if _better(v, b, op) else b
            v = src[q + 2]
            b = v if _better(v, b, op) else b
            acc[q] = b
    else:
        for l in range(kw):
            _row_best(acc, src[l * dw:], n, sw, op)


@njit(cache=_CACHE)
def _best_fused_arg(acc, arow, src, n, kw, sw, dw, op, t0):
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            a = arow[q]
            v = src[2 * q]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 if tk else a
            v = src[2 * q + 1]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 1 if tk else a
            acc[q] = b
            arow[q] = a
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            a = arow[q]
            v = src[2 * q]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 if tk else a
            v = src[2 * q + 1]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 1 if tk else a
            v = src[2 * q + 2]
            tk = _better(v, b, op)
            b = v if tk else b
            a = t0 + 2 if tk else a
            acc[q] = b
            arow[q] = a
    else:
        for l in range(kw):
            _row_best_arg(acc, arow, src[l * dw:], n, sw, op, t0 + l)


@njit(cache=_CACHE)
def _sum_fused(acc, src, n, kw, sw, dw):
    if kw == 2 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            b += src[2 * q]
            b += src[2 * q + 1]
            acc[q] = b
    elif kw == 3 and sw == 2 and dw == 1:
        for q in range(n):
            b = acc[q]
            b += src[2 * q]
            b += src[2 * q + 1]
            b += src[2 * q + 2]
            acc[q] = b
    else:
        for l in range(kw):
            _row_sum(acc, src[l * dw:], n, sw)


@njit(cache=_CACHE)
def _row_best_apply(acc, xrow, wtab, kw, sw, dw, op):
    """Apply the W taps of one input row to one output row (max/min values only). Outputs
    whose taps all lie inside the row (the interior) take them in one fused loop; the edge
    outputs take them tap by tap. Either way each output sees its taps in order."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_best(acc[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw, op)
    if fused:
        _best_fused(acc[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:], q_hi - q_lo, kw,
                    sw, dw, op)


@njit(cache=_CACHE)
def _row_arg_apply(acc, arow, xrow, wtab, kw, sw, dw, op, t0):
    """As _row_best_apply, recording the window-local tap (t0 + l) that takes over."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_best_arg(acc[a0:], arow[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw, op,
                              t0 + l)
    if fused:
        _best_fused_arg(acc[q_lo:], arow[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:],
                        q_hi - q_lo, kw, sw, dw, op, t0)


@njit(cache=_CACHE)
def _row_sum_apply(acc, xrow, wtab, kw, sw, dw):
    """As _row_best_apply for sums."""
    q_lo, q_hi = _interior(wtab, kw)
    fused = q_hi - q_lo >= 2
    for l in range(kw):
        lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
        for a0, a1 in ((lo, min(hi, q_lo) if fused else hi), (max(lo, q_hi) if fused else hi, hi)):
            if a1 > a0:
                _row_sum(acc[a0:], xrow[st + (a0 - lo) * sw:], a1 - a0, sw)
    if fused:
        _sum_fused(acc[q_lo:], xrow[wtab[0, 2] + (q_lo - wtab[0, 0]) * sw:], q_hi - q_lo, kw,
                   sw, dw)


# ----------------------------------------------------------------------------------------------
# channels-first: x (B, D, H, W), outputs (B, OD, OH, OW)
# geo = [kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw]
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _best_cf(x, y, geo, wtab, op, ident, r0, r1):
    """Max or min of every window, for output rows r0 .. r1-1."""
    B, D, H, W = x.shape
    OD, OH = y.shape[1], y.shape[2]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc = y[b, od, oh]
        acc[:] = ident
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_best_apply(acc, x[b, zd, zh], wtab, kw, sw, dw, op)


@njit(cache=_CACHE, nogil=True)
def _best_arg_cf(x, y, arg, geo, wtab, wfirst, op, ident, r0, r1):
    """As _best_cf, also recording the window-local argmax (the first tap inside the input
    until another takes over)."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc = y[b, od, oh]
        acc[:] = ident
        arow = arg[b, od, oh]
        fi = _first_in(od, sd, pd, dd, kd, D)
        fj = _first_in(oh, sh, ph, dh, kh, H)
        for q in range(OW):
            arow[q] = (fi * kh + fj) * kw + wfirst[q] if (fi >= 0 and fj >= 0 and
                                                          wfirst[q] >= 0) else -1
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_arg_apply(acc, arow, x[b, zd, zh], wtab, kw, sw, dw, op, (i * kh + j) * kw)


@njit(cache=_CACHE, nogil=True)
def _avg_cf(x, y, geo, wtab, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    """Window sums in the accumulation dtype, divided per output row; parallel over rows."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph = geo[6], geo[7], geo[8], geo[9], geo[10]
    acc = np.empty(OW, dtype=acc_proto.dtype)
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        acc[:] = 0
        for i in range(kd):
            zd = od * sd - pd + i * dd
            if zd < 0 or zd >= D:
                continue
            for j in range(kh):
                zh = oh * sh - ph + j * dh
                if zh < 0 or zh >= H:
                    continue
                _row_sum_apply(acc, x[b, zd, zh], wtab, kw, sw, dw)
        _finish_row(acc, y[b, od, oh], cd[od] * ch[oh], cw, override, is_int)


@njit(cache=_CACHE)
def _finish_row(acc, out, c_outer, cw, override, is_int):
    """out[q] = acc[q] / divisor: the divisor is ``override`` if nonzero, else
    ``c_outer * cw[q]``; integers (``is_int`` 1 or 2) divide as ``_int_div`` says."""
    n = out.shape[0]
    for q in range(n):
        d = override if override != 0 else c_outer * cw[q]
        if is_int:
            out[q] = _int_div(acc[q], d, is_int)
        else:
            out[q] = acc[q] / d


@njit(cache=_CACHE)
def _scatter_segment(dst, g, arow, a0, a1, lo, st, sw, with_arg, t):
    """Tap t (first output lo, input column st): dst[col(q)] += g[q] for a0 <= q < a1 (only
    where arow[q] == t, with_arg)."""
    if a1 <= a0:
        return
    d = dst[st + (a0 - lo) * sw:]
    if with_arg:
        for q in range(a1 - a0):
            d[sw * q] += g[a0 + q] if arow[a0 + q] == t else 0
    elif sw == 1:
        for q in range(a1 - a0):
            d[q] += g[a0 + q]
    else:
        for q in range(a1 - a0):
            d[sw * q] += g[a0 + q]


@njit(cache=_CACHE)
def _share_row(out, g, c_outer, cw, override):
    """out[q] = g[q] / divisor; c_outer, cw and override come in g's float dtype, so the
    division runs in that dtype (as PyTorch's gradOutput / divide_factor)."""
    n = out.shape[0]
    if override != 0:
        for q in range(n):
            out[q] = g[q] / override
    else:
        for q in range(n):
            out[q] = g[q] / (c_outer * cw[q])


@njit(cache=_CACHE, nogil=True)
def _back_cf(dy, dx, geo, wtab, cd, ch, cw, override, r0, r1):
    """Averages' gradient by gathering: each input row is owned by one thread, zeroed, and
    receives every covering window's share dy / divisor (cd, ch, cw, override in dy's dtype) in
    a fixed order (taps i, j, l ascending): deterministic for any thread count, dx written once."""
    B, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, pd, ph = geo[6], geo[7], geo[9], geo[10]
    share = np.empty(OW, dtype=dy.dtype)
    for r in range(r0, r1):
        b = r // (D * H)
        zd = (r // H) % D
        zh = r % H
        dst = dx[b, zd, zh]
        dst[:] = 0
        for i in range(kd):
            nd = zd + pd - i * dd
            if nd < 0 or nd % sd != 0 or nd // sd >= OD:
                continue
            od = nd // sd
            for j in range(kh):
                nh = zh + ph - j * dh
                if nh < 0 or nh % sh != 0 or nh // sh >= OH:
                    continue
                oh = nh // sh
                _share_row(share, dy[b, od, oh], cd[od] * ch[oh], cw, override)
                for l in range(kw):
                    lo, hi, st = wtab[l, 0], wtab[l, 1], wtab[l, 2]
                    _scatter_segment(dst, share, share, lo, hi, lo, st, sw, False, 0)


@njit(cache=_CACHE, nogil=True)
def _route_cf(dy, arg, dx, dbase, hbase, wbase, toff, r0, r1):
    """Max/min gradient: each output's dy goes to the input its window chose, at in-plane offset
    dbase[od] + hbase[oh] + wbase[ow] + toff[tap]. One thread owns whole planes and scans their
    outputs in order, so overlapping windows sum in a fixed order (deterministic). ``dx`` comes
    uninitialized: each plane is zeroed here, right before its scatter, while it is in cache
    (one pass over fresh memory instead of calloc's zero pages and a second pass)."""
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    for b in range(r0, r1):
        plane = dx[b]
        for i in range(plane.shape[0]):
            plane[i] = 0
        for od in range(OD):
            for oh in range(OH):
                base = dbase[od] + hbase[oh]
                g = dy[b, od, oh]
                a = arg[b, od, oh]
                for q in range(OW):
                    t = a[q]
                    if t >= 0:
                        plane[base + wbase[q] + toff[t]] += g[q]


@njit(cache=_CACHE, nogil=True)
def _route_cl(dy, arg, dx, dbase, hbase, wbase, toff, cs, r0, r1):
    """As _route_cf for channels-last (N, OD, OH, OW, C) into dx (N, D*H*W, C); threads own
    blocks of ``cs`` channels of one image."""
    C = dy.shape[4]
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    nb = (C + cs - 1) // cs
    for p in range(r0, r1):
        n = p // nb
        c0 = (p % nb) * cs
        c1 = min(C, c0 + cs)
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    base = dbase[od] + hbase[oh] + wbase[ow]
                    g = dy[n, od, oh, ow]
                    a = arg[n, od, oh, ow]
                    for c in range(c0, c1):
                        t = a[c]
                        if t >= 0:
                            dx[n, base + toff[t], c] += g[c]


# ----------------------------------------------------------------------------------------------
# the common case, literal: windows 2 x 2 (x 2) with stride = kernel, no padding, all inside
# x (B, D, H, W) with D pooled by kd in {1, 2}; outputs (B, OD, OH, OW)
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _k2_2d_row(x, y, op, div, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, od, 2 * oh]
    a1 = x[b, od, 2 * oh + 1]
    if op == SUM:
        for q in range(OW):
            s = div[0] - div[0]
            s += a0[2 * q]
            s += a0[2 * q + 1]
            s += a1[2 * q]
            s += a1[2 * q + 1]
            yr[q] = s / div[0]
    else:
        for q in range(OW):
            bv = a0[2 * q]
            v = a0[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            v = a1[2 * q]
            bv = v if _better(v, bv, op) else bv
            v = a1[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            yr[q] = bv


@njit(cache=_CACHE, nogil=True)
def _k2_2d(x, y, op, div, r0, r1):
    """Max/min (op MAX/MIN) or average (op SUM, divided by ``div`` in the accumulation dtype) of
    2x2 windows with stride 2, one pass per output row r0 .. r1-1."""
    for r in range(r0, r1):
        _k2_2d_row(x, y, op, div, r)


@_noalias
def _k2_2d_sum(x, y, op, div, r0, r1):
    """_k2_2d for the average, compiled with no-alias arrays (see ``_noalias``)."""
    for r in range(r0, r1):
        _k2_2d_row(x, y, op, div, r)


@njit(cache=_CACHE, nogil=True)
def _k2_3d(x, y, op, div, r0, r1):
    """As _k2_2d for 2x2x2 windows."""
    for r in range(r0, r1):
        _k2_3d_row(x, y, op, div, r)


@_noalias
def _k2_3d_sum(x, y, op, div, r0, r1):
    """_k2_3d for the average, compiled with no-alias arrays (see ``_noalias``)."""
    for r in range(r0, r1):
        _k2_3d_row(x, y, op, div, r)


@njit(cache=_CACHE, inline="always")
def _k2_3d_row(x, y, op, div, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    a0 = x[b, 2 * od, 2 * oh]
    a1 = x[b, 2 * od, 2 * oh + 1]
    a2 = x[b, 2 * od + 1, 2 * oh]
    a3 = x[b, 2 * od + 1, 2 * oh + 1]
    if op == SUM:
        for q in range(OW):
            s = div[0] - div[0]
            s += a0[2 * q]
            s += a0[2 * q + 1]
            s += a1[2 * q]
            s += a1[2 * q + 1]
            s += a2[2 * q]
            s += a2[2 * q + 1]
            s += a3[2 * q]
            s += a3[2 * q + 1]
            yr[q] = s / div[0]
    else:
        for q in range(OW):
            bv = a0[2 * q]
            v = a0[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            v = a1[2 * q]
            bv = v if _better(v, bv, op) else bv
            v = a1[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            v = a2[2 * q]
            bv = v if _better(v, bv, op) else bv
            v = a2[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            v = a3[2 * q]
            bv = v if _better(v, bv, op) else bv
            v = a3[2 * q + 1]
            bv = v if _better(v, bv, op) else bv
            yr[q] = bv


@njit(cache=_CACHE, inline="always")
def _inside(n_out, n_in, s, p, k):
    """(lo, hi): outputs lo <= o < hi have their window [o*s - p, o*s - p + k) inside
    [0, n_in); the others touch the padding or the end."""
    lo = 0
    while lo < n_out and lo * s - p < 0:
        lo += 1
    hi = n_out
    while hi > lo and (hi - 1) * s - p + k > n_in:
        hi -= 1
    return lo, hi


@njit(cache=_CACHE, inline="always")
def _into(o, h, first, op):
    """Row ``h`` into accumulator row ``o`` in scan order: a copy first, then the running best
    (or sum, op SUM)."""
    if first:
        for q in range(o.shape[0]):
            o[q] = h[q]
    elif op == SUM:
        for q in range(o.shape[0]):
            o[q] += h[q]
    else:
        for q in range(o.shape[0]):
            v = h[q]
            bv = o[q]
            o[q] = v if _better(v, bv, op) else bv


@njit(cache=_CACHE, inline="always")
def _k3_edge(row, q, sw, pw, op, ident):
    """The best of the in-bounds taps of one row's window q (``ident`` when none is)."""
    W = row.shape[0]
    bv = ident
    for l in range(3):
        c = q * sw - pw + l
        if 0 <= c < W:
            v = row[c]
            bv = v if _better(v, bv, op) else bv
    return bv


@njit(cache=_CACHE)
def _k3_hrow(row, out, q_lo, q_hi, sw, pw, op, ident):
    """out[q] = best of the in-bounds taps row[q*sw - pw + l], l = 0, 1, 2, in order (``ident``
    when none is in bounds): one input row's horizontal 3-tap maxima. Windows q_lo <= q < q_hi
    lie inside the row."""
    OW = out.shape[0]
    if q_hi > q_lo:
        src = row[q_lo * sw - pw:]
        o = out[q_lo:q_hi]
        if sw == 2:
            for q in range(q_hi - q_lo):
                bv = src[2 * q]
                v = src[2 * q + 1]
                bv = v if _better(v, bv, op) else bv
                v = src[2 * q + 2]
                o[q] = v if _better(v, bv, op) else bv
        else:
            for q in range(q_hi - q_lo):
                bv = src[sw * q]
                v = src[sw * q + 1]
                bv = v if _better(v, bv, op) else bv
                v = src[sw * q + 2]
                o[q] = v if _better(v, bv, op) else bv
    for q in range(q_lo):                     # the few columns whose window touches padding
        out[q] = _k3_edge(row, q, sw, pw, op, ident)
    for q in range(q_hi, OW):
        out[q] = _k3_edge(row, q, sw, pw, op, ident)


@njit(cache=_CACHE, nogil=True)
def _k3_roll_cf(x, y, sh, sw, ph, pw, nchunk, op, ident, r0, r1):
    """Max/min of 3x3 windows (2-d, no dilation, depth untouched), values only. Each input
    row's horizontal 3-tap maxima are computed once into a rolling buffer of three rows
    (slot = row % 3) and combined vertically in row order; with stride 2 an input row serves two
    output rows. Grouping by rows keeps the row-major first-wins/last-NaN result exactly (the
    selection is associative in scan order). Work item i: plane i // nchunk, a chunk of output
    rows i % nchunk."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    rows_per = (OH + nchunk - 1) // nchunk
    buf = np.empty((3, OW), dtype=y.dtype)
    have = np.empty(3, dtype=np.int64)
    for i in range(r0, r1):
        plane = i // nchunk
        b = plane // D
        d = plane - b * D
        oh0 = (i - plane * nchunk) * rows_per
        oh1 = min(OH, oh0 + rows_per)
        have[:] = -(1 << 40)
        for oh in range(oh0, oh1):
            o = y[b, d, oh]
            z0 = oh * sh - ph
            n = 0
            for j in range(3):
                r = z0 + j
                if r < 0 or r >= H:
                    continue
                slot = r % 3
                if have[slot] != r:
                    _k3_hrow(x[b, d, r], buf[slot], q_lo, q_hi, sw, pw, op, ident)
                    have[slot] = r
                _into(o, buf[slot], n == 0, op)
                n += 1
            if n == 0:                        # a window row range wholly in padding
                o[:] = ident


@njit(cache=_CACHE, nogil=True)
def _k3_flat_cf(x, y, sh, sw, ph, pw, op, ident, r0, r1):
    """Max/min of 3x3 windows, values only, one plane per work item, for ``W % sw == 0``: the
    plane's horizontal 3-tap maxima in one flat pass over the plane seen as a single row (row
    r's window q is flat window r*(W/sw) + q), the few windows that straddle a row's ends redone
    tap by tap, then each output row combines its three rows' maxima in row order. With stride
    2 the pass first splits the plane into even and odd elements, so that every loop reads
    contiguous memory and vectorizes (a stride-2 loop did not). Grouping by rows keeps the
    row-major first-wins/last-NaN result exactly."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    q_lo, q_hi = _inside(OW, W, sw, pw, 3)
    per = W // sw
    K = H * per
    k_lo, k_hi = _inside(K, H * W, sw, pw, 3)
    n = k_hi - k_lo
    hf = np.empty(K, dtype=y.dtype)
    ev = np.empty(K + 1, dtype=y.dtype)
    od = np.empty(K + 1, dtype=y.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        if n > 0:
            src = x[b, d].reshape(H * W)[k_lo * sw - pw:]
            o = hf[k_lo:]
            if sw == 2:
                for k in range(n):
                    ev[k] = src[2 * k]
                    od[k] = src[2 * k + 1]
                ev[n] = src[2 * n]
                e1 = ev[1:]
                for k in range(n):
                    bv = ev[k]
                    v = od[k]
                    bv = v if _better(v, bv, op) else bv
                    v = e1[k]
                    o[k] = v if _better(v, bv, op) else bv
            else:
                for k in range(n):
                    bv = src[sw * k]
                    v = src[sw * k + 1]
                    bv = v if _better(v, bv, op) else bv
                    v = src[sw * k + 2]
                    o[k] = v if _better(v, bv, op) else bv
        for r in range(H):                    # windows that touch a row's ends
            row = x[b, d, r]
            base = r * per
            for q in range(q_lo):
                hf[base + q] = _k3_edge(row, q, sw, pw, op, ident)
            for q in range(q_hi, OW):
                hf[base + q] = _k3_edge(row, q, sw, pw, op, ident)
        for oh in range(OH):
            o = y[b, d, oh]
            z0 = oh * sh - ph
            if z0 >= 0 and z0 + 2 < H:
                h0 = hf[z0 * per:]
                h1 = hf[(z0 + 1) * per:]
                h2 = hf[(z0 + 2) * per:]
                for q in range(OW):
                    bv = h0[q]
                    v = h1[q]
                    bv = v if _better(v, bv, op) else bv
                    v = h2[q]
                    o[q] = v if _better(v, bv, op) else bv
                continue
            rows = 0
            for j in range(3):
                r = z0 + j
                if 0 <= r < H:
                    _into(o, hf[r * per:], rows == 0, op)
                    rows += 1
            if rows == 0:
                o[:] = ident


@njit(cache=_CACHE, nogil=True)
def _k3_avg_cf(x, y, geo, wtab, ch, cw, override, r0, r1):
    """Averages of 3x3 windows (2-d, no dilation, W stride 1 or 2, any padding), float dtypes:
    interior columns of full rows in one literal 9-tap sum, edges tap by tap, in the same tap
    order; divided by ``override`` or ``ch[oh] * cw[q]`` (counts in the data's dtype)."""
    B, D, H, W = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    sh, sw, ph, pw = geo[4], geo[5], geo[10], geo[11]
    q_lo, q_hi = _interior(wtab, 3)
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        out = y[b, od, oh]
        z0 = oh * sh - ph
        full = z0 >= 0 and z0 + 2 < H and q_hi - q_lo >= 2
        a0 = q_lo if full else 0
        a1 = q_hi if full else 0
        if full:
            st = wtab[0, 2] + (q_lo - wtab[0, 0]) * sw
            s0 = x[b, od, z0][st:]
            s1 = x[b, od, z0 + 1][st:]
            s2 = x[b, od, z0 + 2][st:]
            o = out[q_lo:]
            for q in range(q_hi - q_lo):
                c = sw * q
                t = override - override
                t += s0[c]
                t += s0[c + 1]
                t += s0[c + 2]
                t += s1[c]
                t += s1[c + 1]
                t += s1[c + 2]
                t += s2[c]
                t += s2[c + 1]
                t += s2[c + 2]
                o[q] = t / (override if override != 0 else ch[oh] * cw[q_lo + q])
        for q in range(OW):                  # rows touching the padding, and edge columns
            if a0 <= q < a1:
                continue
            t = override - override
            for j in range(3):
                if z0 + j < 0 or z0 + j >= H:
                    continue
                row = x[b, od, z0 + j]
                for l in range(3):
                    c = q * sw - pw + l
                    if 0 <= c < W:
                        t += row[c]
            out[q] = t / (override if override != 0 else ch[oh] * cw[q])


@njit(cache=_CACHE, nogil=True)
def _k2_cl(x, y, op, div, r0, r1):
    """Channels-last 2x2 windows over H, W (stride 2, no padding; depth, if any, untouched:
    kernel 1, stride 1) for rows r0 .. r1-1 of N*OD*OH: max/min, or the average (op SUM)
    divided by ``div``; vectorized over C. Each output row reads its two input rows as flat
    ``W*C`` vectors (one view per output column, not five: views cost more than a 64-channel
    loop)."""
    OD, OH, OW, C = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    W = x.shape[3]
    C2 = 2 * C
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        top = x[n, od, 2 * oh].reshape(W * C)
        bot = x[n, od, 2 * oh + 1].reshape(W * C)
        out = y[n, od, oh].reshape(OW * C)
        for ow in range(OW):
            t = top[ow * C2:]
            u = bot[ow * C2:]
            o = out[ow * C:]
            if op == SUM:
                for c in range(C):
                    s = div[0] - div[0]
                    s += t[c]
                    s += t[C + c]
                    s += u[c]
                    s += u[C + c]
                    o[c] = s / div[0]
            else:
                for c in range(C):
                    bv = t[c]
                    v = t[C + c]
                    bv = v if _better(v, bv, op) else bv
                    v = u[c]
                    bv = v if _better(v, bv, op) else bv
                    v = u[C + c]
                    o[c] = v if _better(v, bv, op) else bv


@njit(cache=_CACHE, nogil=True)
def _k2_arg_cl(x, y, arg, op, codes, r0, r1):
    """As _k2_cl for max/min, also recording the window-local argmax (codes[t]: tap t in the
    argmax dtype), for the layers' forward on channels-last input."""
    OD, OH, OW, C = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    W = x.shape[3]
    C2 = 2 * C
    c0, c1, c2, c3 = codes[0], codes[1], codes[2], codes[3]
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        top = x[n, od, 2 * oh].reshape(W * C)
        bot = x[n, od, 2 * oh + 1].reshape(W * C)
        out = y[n, od, oh].reshape(OW * C)
        aout = arg[n, od, oh].reshape(OW * C)
        for ow in range(OW):
            t = top[ow * C2:]
            u = bot[ow * C2:]
            o = out[ow * C:]
            a = aout[ow * C:]
            for c in range(C):
                bv = t[c]
                at = c0
                bv, at = _step(t[C + c], bv, at, c1, op)
                bv, at = _step(u[c], bv, at, c2, op)
                bv, at = _step(u[C + c], bv, at, c3, op)
                o[c] = bv
                a[c] = at


@njit(cache=_CACHE, nogil=True)
def _k2_avg_back_cf(dy, dx, kd, div, r0, r1):
    """Averages' gradient for 2x2(x2) windows, stride = kernel, no padding: every input row
    (r0 .. r1-1 of B*D*H) belongs to at most one window row, so each element is written once:
    dy / div under a window, 0 outside every window."""
    B, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    for r in range(r0, r1):
        b = r // (D * H)
        zd = (r // H) % D
        zh = r % H
        dst = dx[b, zd, zh]
        od = zd // kd
        oh = zh // 2
        if od >= OD or oh >= OH:
            dst[:] = 0
            continue
        g = dy[b, od, oh]
        for q in range(OW):
            v = g[q] / div[0]
            dst[2 * q] = v
            dst[2 * q + 1] = v
        for c in range(2 * OW, W):
            dst[c] = 0


@njit(inline="always")
def _step(v, bv, at, code, op):
    tk = _better(v, bv, op)
    return (v if tk else bv), (code if tk else at)


@njit(cache=_CACHE, inline="always")
def _k2_arg_2d_row(x, y, arg, op, codes, r):
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    b, od, oh = _split_row(r, OD, OH)
    yr = y[b, od, oh]
    ar = arg[b, od, oh]
    a0 = x[b, od, 2 * oh]
    a1 = x[b, od, 2 * oh + 1]
    for q in range(OW):
        bv = a0[2 * q]
        at = codes[0]
        bv, at = _step(a0[2 * q + 1], bv, at, codes[1], op)
        bv, at = _step(a1[2 * q], bv, at, codes[2], op)
        bv, at = _step(a1[2 * q + 1], bv, at, codes[3], op)
        yr[q] = bv
        ar[q] = at


@njit(cache=_CACHE, nogil=True)
def _k2_arg_2d(x, y, arg, op, codes, r0, r1):
    """As _k2_2d for max/min, also recording the window-local argmax (codes[t]:
    tap t in the argmax dtype, so that the selects stay one width)."""
    for r in range(r0, r1):
        _k2_arg_2d_row(x, y, arg, op, codes, r)


@njit(cache=_CACHE, nogil=True)
def _k2_arg_3d(x, y, arg, op, codes, r0, r1):
    """As _k2_arg_2d for 2x2x2 windows."""
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    for r in range(r0, r1):
        b, od, oh = _split_row(r, OD, OH)
        yr = y[b, od, oh]
        ar = arg[b, od, oh]
        a0 = x[b, 2 * od, 2 * oh]
        a1 = x[b, 2 * od, 2 * oh + 1]
        a2 = x[b, 2 * od + 1, 2 * oh]
        a3 = x[b, 2 * od + 1, 2 * oh + 1]
        for q in range(OW):
            bv = a0[2 * q]
            at = codes[0]
            bv, at = _step(a0[2 * q + 1], bv, at, codes[1], op)
            bv, at = _step(a1[2 * q], bv, at, codes[2], op)
            bv, at = _step(a1[2 * q + 1], bv, at, codes[3], op)
            bv, at = _step(a2[2 * q], bv, at, codes[4], op)
            bv, at = _step(a2[2 * q + 1], bv, at, codes[5], op)
            bv, at = _step(a3[2 * q], bv, at, codes[6], op)
            bv, at = _step(a3[2 * q + 1], bv, at, codes[7], op)
            yr[q] = bv
            ar[q] = at


# ----------------------------------------------------------------------------------------------
# channels-last: x (N, D, H, W, C), outputs (N, OD, OH, OW, C); vectorized over C
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _best_cl(x, y, arg, geo, op, with_arg, ident, r0, r1):
    N, D, H, W, C = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        fi = _first_in(od, sd, pd, dd, kd, D)
        fj = _first_in(oh, sh, ph, dh, kh, H)
        for ow in range(OW):
            acc = y[n, od, oh, ow]
            acc[:] = ident
            if with_arg:
                fl = _first_in(ow, sw, pw, dw, kw, W)
                first = (fi * kh + fj) * kw + fl if (fi >= 0 and fj >= 0 and fl >= 0) else -1
                arg[n, od, oh, ow][:] = first
            for i in range(kd):
                zd = od * sd - pd + i * dd
                if zd < 0 or zd >= D:
                    continue
                for j in range(kh):
                    zh = oh * sh - ph + j * dh
                    if zh < 0 or zh >= H:
                        continue
                    for l in range(kw):
                        zw = ow * sw - pw + l * dw
                        if zw < 0 or zw >= W:
                            continue
                        if with_arg:
                            _row_best_arg(acc, arg[n, od, oh, ow], x[n, zd, zh, zw], C, 1, op,
                                          (i * kh + j) * kw + l)
                        else:
                            _row_best(acc, x[n, zd, zh, zw], C, 1, op)


@njit(cache=_CACHE, nogil=True)
def _avg_cl(x, y, geo, cd, ch, cw, override, acc_proto, is_int, r0, r1):
    N, D, H, W, C = x.shape
    OD, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    acc = np.empty(C, dtype=acc_proto.dtype)
    for r in range(r0, r1):
        n, od, oh = _split_row(r, OD, OH)
        for ow in range(OW):
            acc[:] = 0
            for i in range(kd):
                zd = od * sd - pd + i * dd
                if zd < 0 or zd >= D:
                    continue
                for j in range(kh):
                    zh = oh * sh - ph + j * dh
                    if zh < 0 or zh >= H:
                        continue
                    for l in range(kw):
                        zw = ow * sw - pw + l * dw
                        if zw >= 0 and zw < W:
                            _row_sum(acc, x[n, zd, zh, zw], C, 1)
            d = override if override != 0 else cd[od] * ch[oh] * cw[ow]
            out = y[n, od, oh, ow]
            for c in range(C):
                if is_int:
                    out[c] = _int_div(acc[c], d, is_int)
                else:
                    out[c] = acc[c] / d


@njit(cache=_CACHE, nogil=True)
def _back_cl(dy, arg, dx, geo, with_arg, cs, r0, r1):
    """Scatter dy (max: to the recorded tap only) over channel blocks of ``cs`` channels: each
    block belongs to one thread, summed in a fixed order."""
    N, D, H, W, C = dx.shape
    OD, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    kd, kh, kw, sd, sh, sw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    dd, dh, dw, pd, ph, pw = geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]
    nb = (C + cs - 1) // cs
    for p in range(r0, r1):
        n = p // nb
        c0 = (p % nb) * cs
        c1 = min(C, c0 + cs)
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    g = dy[n, od, oh, ow]
                    for i in range(kd):
                        zd = od * sd - pd + i * dd
                        if zd < 0 or zd >= D:
                            continue
                        for j in range(kh):
                            zh = oh * sh - ph + j * dh
                            if zh < 0 or zh >= H:
                                continue
                            for l in range(kw):
                                zw = ow * sw - pw + l * dw
                                if zw < 0 or zw >= W:
                                    continue
                                dst = dx[n, zd, zh, zw]
                                if with_arg:
                                    t = (i * kh + j) * kw + l
                                    a = arg[n, od, oh, ow]
                                    for c in range(c0, c1):
                                        dst[c] += g[c] if a[c] == t else 0
                                else:
                                    for c in range(c0, c1):
                                        dst[c] += g[c]


# ----------------------------------------------------------------------------------------------
# any number of spatial dims: x (B, P, T) with P the flattened plane, outputs (B, Q, T)
# pos[d, o, j] = input position of tap j of output o along dim d, or -1 in the padding
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _tap_offset(q, t, pos, kern, outsh, instr):
    """Flat in-plane offset of tap t of flat output q, or -1 when it lies in the padding."""
    k = kern.shape[0]
    off = 0
    for d in range(k - 1, -1, -1):
        o = q % outsh[d]
        q //= outsh[d]
        j = t % kern[d]
        t //= kern[d]
        z = pos[d, o, j]
        if z < 0:
            return -1
        off += z * instr[d]
    return off


@njit(cache=_CACHE, nogil=True)
def _best_nd(x, y, arg, pos, kern, outsh, instr, op, with_arg, ident, r0, r1):
    B, P, T = x.shape
    Q = y.shape[1]
    taps = 1
    for d in range(kern.shape[0]):
        taps *= kern[d]
    for r in range(r0, r1):
        b = r // Q
        q = r % Q
        y[b, q, :] = ident
        if with_arg:
            arg[b, q, :] = -1
        seen = False
        for t in range(taps):
            off = _tap_offset(q, t, pos, kern, outsh, instr)
            if off < 0:
                continue
            for c in range(T):
                v = x[b, off, c]
                if (not seen) or _better(v, y[b, q, c], op):
                    y[b, q, c] = v
                    if with_arg:
                        arg[b, q, c] = t
            seen = True


@njit(cache=_CACHE, nogil=True)
def _avg_nd(x, y, pos, kern, outsh, instr, div, acc_proto, is_int, r0, r1):
    B, P, T = x.shape
    Q = y.shape[1]
    taps = 1
    for d in range(kern.shape[0]):
        taps *= kern[d]
    acc = np.empty(T, dtype=acc_proto.dtype)
    for r in range(r0, r1):
        b = r // Q
        q = r % Q
        acc[:] = 0
        for t in range(taps):
            off = _tap_offset(q, t, pos, kern, outsh, instr)
            if off >= 0:
                for c in range(T):
                    acc[c] += x[b, off, c]
        for c in range(T):
            if is_int:
                y[b, q, c] = _int_div(acc[c], div[q], is_int)
            else:
                y[b, q, c] = acc[c] / div[q]


@njit(cache=_CACHE, nogil=True)
def _back_nd(g, arg, dx, pos, kern, outsh, instr, with_arg, r0, r1):
    B, P, T = dx.shape
    Q = g.shape[1]
    taps = 1
    for d in range(kern.shape[0]):
        taps *= kern[d]
    for b in range(r0, r1):
        for q in range(Q):
            for t in range(taps):
                off = _tap_offset(q, t, pos, kern, outsh, instr)
                if off < 0:
                    continue
                for c in range(T):
                    if (not with_arg) or arg[b, q, c] == t:
                        dx[b, off, c] += g[b, q, c]


# ----------------------------------------------------------------------------------------------
# non-overlapping windows (stride = kernel, no padding or dilation): downsampling
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, inline="always")
def _tile_pass(src, h, n, kw, op, zero):
    """h[m] = reduction of src[m*kw : m*kw + kw] for m < n, taps outermost (n-long loops):
    the running best in tap order, or the sum from ``zero`` (op SUM)."""
    if op == SUM:
        for m in range(n):
            h[m] = zero + src[m * kw]
        for j in range(1, kw):
            a = src[j:]
            for m in range(n):
                h[m] += a[m * kw]
    else:
        for m in range(n):
            h[m] = src[m * kw]
        for j in range(1, kw):
            a = src[j:]
            for m in range(n):
                v = a[m * kw]
                bv = h[m]
                h[m] = v if _better(v, bv, op) else bv


@njit(cache=_CACHE, nogil=True)
def _tiles_cf(x, y, kh, kw, op, div, r0, r1):
    """Max/min, or the average (op SUM, divided by div[0]), of kh x kw tiles (stride = kernel,
    no padding, every window inside), values only, one plane per work item. Each input row
    first reduces its kw-wide tiles (with W == OW*kw the plane is one flat row of tiles: kw
    long loops instead of a short loop per tap and output row), then each output row combines
    its kh rows in order: row-major order for max/min, so their results are exact. Sums add
    every tap into the output row in row-major order from 0, as every average kernel does (a
    window's sum must not depend on the kernel path: a chunked call must equal a whole one)."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    zero = div[0] * 0
    if op == SUM:
        for i in range(r0, r1):
            b = i // D
            d = i - b * D
            for oh in range(OH):
                o = y[b, d, oh]
                _tile_pass(x[b, d, oh * kh], o, OW, kw, op, zero)
                for ii in range(1, kh):
                    row = x[b, d, oh * kh + ii]
                    for j in range(kw):
                        a = row[j:]
                        for q in range(OW):
                            o[q] += a[q * kw]
                for q in range(OW):
                    o[q] = o[q] / div[0]
        return
    rows = OH * kh
    hf = np.empty(rows * OW, dtype=y.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        if W == OW * kw:
            _tile_pass(x[b, d].reshape(H * W), hf, rows * OW, kw, op, zero)
        else:
            for r in range(rows):
                _tile_pass(x[b, d, r], hf[r * OW:], OW, kw, op, zero)
        for oh in range(OH):
            o = y[b, d, oh]
            for ii in range(kh):
                _into(o, hf[(oh * kh + ii) * OW:], ii == 0, op)
            if op == SUM:
                for q in range(OW):
                    o[q] = o[q] / div[0]


@njit(cache=_CACHE, nogil=True)
def _tiles_arg_cf(x, y, arg, kh, kw, op, r0, r1):
    """_tiles_cf for max/min with the window-local argmax (tap i*kw + j): each row's tile
    winner and its column first, then the rows in order, as the row-major scan picks them.
    (A tap-outer loop like _tiles_cf's, with two store streams, ran 1.7x slower than this.)"""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    rows = OH * kh
    M = rows * OW
    hf = np.empty(M, dtype=y.dtype)
    hj = np.empty(M, dtype=arg.dtype)
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        for r in range(rows):                 # each tile of each row, scanned in order
            row = x[b, d, r]
            h = hf[r * OW:]
            hc = hj[r * OW:]
            for q in range(OW):
                s = row[q * kw:]
                bv = s[0]
                bj = 0
                for j in range(1, kw):
                    v = s[j]
                    tk = _better(v, bv, op)
                    bv = v if tk else bv
                    bj = j if tk else bj
                h[q] = bv
                hc[q] = bj
        for oh in range(OH):
            o = y[b, d, oh]
            a = arg[b, d, oh]
            h = hf[oh * kh * OW:]
            hc = hj[oh * kh * OW:]
            for q in range(OW):
                o[q] = h[q]
                a[q] = hc[q]
            for ii in range(1, kh):
                h = hf[(oh * kh + ii) * OW:]
                hc = hj[(oh * kh + ii) * OW:]
                base = ii * kw
                for q in range(OW):
                    v = h[q]
                    bv = o[q]
                    tk = _better(v, bv, op)
                    o[q] = v if tk else bv
                    a[q] = (base + hc[q]) if tk else a[q]


@njit(cache=_CACHE, nogil=True)
def _tiles_back_cf(dy, dx, kh, kw, div, r0, r1):
    """Average backward of non-overlapping tiles: every input of a tile gets its dy / div[0]
    (in dy's dtype, as PyTorch divides); inputs outside every tile get 0. One write per
    input, a plane per work item."""
    B, D, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for i in range(r0, r1):
        b = i // D
        d = i - b * D
        for r in range(H):
            out = dx[b, d, r]
            oh = r // kh
            if oh >= OH:
                for c in range(W):
                    out[c] = 0
                continue
            g = dy[b, d, oh]
            for q in range(OW):
                share = g[q] / div[0]
                seg = out[q * kw:]
                for j in range(kw):
                    seg[j] = share
            for c in range(OW * kw, W):
                out[c] = 0


# ----------------------------------------------------------------------------------------------
# global windows (one window covering each whole channels-first plane)
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _global_best_cf(x, y, arg, op, with_arg, r0, r1):
    """Best of each whole plane x[b] (B, P): y[b], and with ``with_arg`` its flat position (the
    window-local tap of a window that is the plane). Sixteen lanes scan positions i = j mod 16
    in order (a loop LLVM vectorizes), each keeping its first best / last NaN and where; the
    lanes then combine by (value, position) into exactly the sequential scan's winner: the
    largest value at its smallest position, or the NaN at the largest position."""
    P = x.shape[1]
    L = 16
    bv = np.empty(L, dtype=x.dtype)
    bi = np.empty(L, dtype=np.int64)
    for b in range(r0, r1):
        row = x[b]
        if P < 2 * L:
            v0 = row[0]
            i0 = 0
            for i in range(1, P):
                v = row[i]
                if _better(v, v0, op):
                    v0 = v
                    i0 = i
        else:
            for j in range(L):
                bv[j] = row[j]
                bi[j] = j
            n = P - P % L
            for i in range(L, n, L):
                for j in range(L):
                    v = row[i + j]
                    tk = _better(v, bv[j], op)
                    bv[j] = v if tk else bv[j]
                    bi[j] = (i + j) if tk else bi[j]
            for i in range(n, P):                 # the tail joins lanes 0 .. P - n - 1
                v = row[i]
                if _better(v, bv[i - n], op):
                    bv[i - n] = v
                    bi[i - n] = i
            v0 = bv[0]
            i0 = bi[0]
            for j in range(1, L):
                v = bv[j]
                i = bi[j]
                if v != v:
                    take = v0 == v0 or i > i0
                elif v0 != v0:
                    take = False
                elif op == MAX:
                    take = v > v0 or (v == v0 and i < i0)
                else:
                    take = v < v0 or (v == v0 and i < i0)
                if take:
                    v0 = v
                    i0 = i
        y[b] = v0
        if with_arg:
            arg[b] = i0


@njit(cache=_CACHE, nogil=True)
def _global_sum_cf(x, y, div, r0, r1):
    """Sum of each whole plane (float dtypes) in order from 0, as every average kernel sums a
    window (a window's sum must not depend on the kernel path), divided by div[0]. Four planes
    at a time: four independent sums keep the adder busy, each in its own sequential order."""
    P = x.shape[1]
    b = r0
    while b + 4 <= r1:
        x0, x1, x2, x3 = x[b], x[b + 1], x[b + 2], x[b + 3]
        s0 = div[0] - div[0]
        s1 = div[0] - div[0]
        s2 = div[0] - div[0]
        s3 = div[0] - div[0]
        for i in range(P):
            s0 += x0[i]
            s1 += x1[i]
            s2 += x2[i]
            s3 += x3[i]
        y[b] = s0 / div[0]
        y[b + 1] = s1 / div[0]
        y[b + 2] = s2 / div[0]
        y[b + 3] = s3 / div[0]
        b += 4
    for b in range(b, r1):
        row = x[b]
        s0 = div[0] - div[0]
        for i in range(P):
            s0 += row[i]
        y[b] = s0 / div[0]


# ----------------------------------------------------------------------------------------------
# box windows (adaptive, fractional pools): one axis of (B, P, L, Q) per call, rows r = b*P + p
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _axis_max(v, c, y, idx, starts, sizes, mult, has_carry, with_arg, r0, r1):
    """y[b, p, o, :] = best of v[b, p, s:s+n, :] scanned in order, idx its index (position *
    mult + the carried index c there). Q == 1 (the last axis of a channels-first array) keeps
    the running best in registers; otherwise rows of Q are combined, vectorized over Q."""
    P, L, Q = v.shape[1], v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = v[b, p]
        dst = y[b, p]
        if Q == 1:
            s1 = src.reshape(L)
            d1 = dst.reshape(O)
            c1 = c[b, p].reshape(L) if has_carry else c.reshape(1)
            i1 = idx[b, p].reshape(O) if with_arg else idx.reshape(1)
            for o in range(O):
                s = starts[row, o]
                bv = s1[s]
                bj = s
                for j in range(s + 1, s + sizes[row, o]):
                    val = s1[j]
                    if val > bv or val != val:
                        bv = val
                        bj = j
                d1[o] = bv
                if with_arg:
                    i1[o] = bj * mult + (c1[bj] if has_carry else 0)
            continue
        for o in range(O):
            s = starts[row, o]
            d = dst[o]
            a = src[s]
            for q in range(Q):
                d[q] = a[q]
            if with_arg:
                io = idx[b, p, o]
                for q in range(Q):
                    io[q] = s * mult + (c[b, p, s, q] if has_carry else 0)
            for j in range(s + 1, s + sizes[row, o]):
                a = src[j]
                if with_arg:
                    io = idx[b, p, o]
                    for q in range(Q):
                        val = a[q]
                        if val > d[q] or val != val:
                            d[q] = val
                            io[q] = j * mult + (c[b, p, j, q] if has_carry else 0)
                else:
                    for q in range(Q):
                        val = a[q]
                        bv = d[q]
                        d[q] = val if (val > bv) | (val != val) else bv


@njit(cache=_CACHE, nogil=True)
def _axis_sum(v, y, starts, sizes, r0, r1):
    P, L, Q = v.shape[1], v.shape[2], v.shape[3]
    O = y.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = v[b, p]
        dst = y[b, p]
        if Q == 1:
            s1 = src.reshape(L)
            d1 = dst.reshape(O)
            for o in range(O):
                s = starts[row, o]
                d1[o] = s1[s] + 0         # + 0: a sum of -0s is +0, as when summing from 0
                t = d1[o]                 # the running sum in v's dtype, as with Q > 1
                for j in range(s + 1, s + sizes[row, o]):
                    t += s1[j]
                d1[o] = t
            continue
        for o in range(O):
            s = starts[row, o]
            d = dst[o]
            a = src[s]
            for q in range(Q):
                d[q] = a[q] + 0
            for j in range(s + 1, s + sizes[row, o]):
                a = src[j]
                for q in range(Q):
                    d[q] += a[q]


@njit(cache=_CACHE, nogil=True)
def _axis_spread(g, out, starts, sizes, r0, r1):
    P, O, Q = g.shape[1], g.shape[2], g.shape[3]
    L = out.shape[2]
    per_plane = starts.shape[0] > 1
    for r in range(r0, r1):
        b = r // P
        p = r - b * P
        row = b if per_plane else 0
        src = g[b, p]
        dst = out[b, p]
        if Q == 1:
            s1 = src.reshape(O)
            d1 = dst.reshape(L)
            for o in range(O):
                s = starts[row, o]
                t = s1[o]
                for j in range(s, s + sizes[row, o]):
                    d1[j] += t
            continue
        for o in range(O):
            s = starts[row, o]
            a = src[o]
            for j in range(s, s + sizes[row, o]):
                d = dst[j]
                for q in range(Q):
                    d[q] += a[q]


# ----------------------------------------------------------------------------------------------
# index scatter/gather over (B, plane, T) arrays: unpool and the box pools' max backward
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE, nogil=True)
def _scatter(src, idx, dst, accumulate, r0, r1):
    O, T = src.shape[1], src.shape[2]
    for b in range(r0, r1):
        for o in range(O):             # in order: for a repeated index the last write wins
            for t in range(T):
                if accumulate:
                    dst[b, idx[b, o, t], t] += src[b, o, t]
                else:
                    dst[b, idx[b, o, t], t] = src[b, o, t]


@njit(cache=_CACHE, nogil=True)
def _gather(src, idx, out, r0, r1):
    O, T = out.shape[1], out.shape[2]
    for b in range(r0, r1):
        for o in range(O):
            for t in range(T):
                out[b, o, t] = src[b, idx[b, o, t], t]


# ----------------------------------------------------------------------------------------------
# the engine protocol (Python side): shapes, tables, dtype widening, thread choice
# ----------------------------------------------------------------------------------------------

class _Pool:
    """Runs a kernel over ``range(n)`` split into one contiguous chunk per thread. The kernels
    are ``nogil``, so Python threads run them in parallel; the thread count is Numba's
    (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``). Small problems run on the caller's
    thread alone.

    Where the OS allows it (Linux), each worker is pinned to its own CPU of the process's
    affinity set and the caller waits instead of taking a chunk: unpinned, the scheduler often
    woke the worker on the caller's own CPU, and the two chunks then shared one core while the
    other idled (a 3x3 pool of 16x64x112x112 took 6.3-6.8 ms that way in most calls, 3.4 ms
    pinned). ``POOLND_PIN_THREADS=0`` turns pinning off (the caller then takes a chunk)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._executor = None
        self._size = 0
        self._next_cpu = 0
        self._pin = _PIN and hasattr(os, "sched_setaffinity")

    def _pin_worker(self):
        with self._lock:
            i = self._next_cpu
            self._next_cpu += 1
        try:
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpus[i % len(cpus)]})
        except OSError:                      # a restricted container: run unpinned
            pass

    def _get(self, workers):
        with self._lock:
            if self._executor is None or self._size < workers:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                self._next_cpu = 0
                self._executor = ThreadPoolExecutor(
                    workers, thread_name_prefix="poolnd",
                    initializer=self._pin_worker if self._pin else None)
                self._size = workers
            return self._executor

    def run(self, kernel, n, work, *args):
        nt = 1 if _serial(work) else min(_threads(), n)
        if nt <= 1:
            kernel(*args, 0, n)
            return
        bounds = [n * i // nt for i in range(nt + 1)]
        if self._pin:
            ex = self._get(nt)
            futures = [ex.submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(nt)]
        else:
            ex = self._get(nt - 1)
            futures = [ex.submit(kernel, *args, bounds[i], bounds[i + 1])
                       for i in range(1, nt)]
            kernel(*args, bounds[0], bounds[1])
        for f in futures:
            f.result()
        _last_parallel[0] = time.perf_counter()


_pool = _Pool()


def _forget_pool_in_child():
    """A forked child has none of the parent's worker threads: start a fresh pool there
    (otherwise its first parallel call would wait forever on threads that do not exist)."""
    _pool._executor = None
    _pool._size = 0
    _pool._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _tables(g: Geometry) -> dict:
    """Plain-int tables the kernels read, cached on the geometry."""
    if "numba" in g._cache:
        return g._cache["numba"]
    t = {}
    if g.ndim <= 3:
        pad = 3 - g.ndim
        ones, zeros = (1,) * pad, (0,) * pad
        t["in3"] = ones + g.in_size
        t["out3"] = ones + g.out_size
        t["geo"] = np.array(ones + g.kernel + ones + g.stride + ones + g.dilation + zeros
                            + g.pad_before, dtype=np.int64)
        ranges = g.tap_ranges(g.ndim - 1)
        t["wtab"] = np.array([(r.o_lo, r.o_hi, r.i_lo) for r in ranges],
                             dtype=np.int64).reshape(-1, 3)
        wfirst = np.full(g.out_size[-1], -1, dtype=np.int64)
        for j in reversed(range(len(ranges))):
            wfirst[ranges[j].o_lo:ranges[j].o_hi] = j
        t["wfirst"] = wfirst
    else:
        width = max(max(g.out_size), 1)
        kmax = max(g.kernel)
        pos = np.full((g.ndim, width, kmax), -1, dtype=np.int64)
        for d in range(g.ndim):
            o = np.arange(g.out_size[d])[:, None]
            z = o * g.stride[d] - g.pad_before[d] + np.arange(g.kernel[d])[None] * g.dilation[d]
            pos[d, :g.out_size[d], :g.kernel[d]] = np.where((z >= 0) & (z < g.in_size[d]), z, -1)
        t["pos"] = pos
        t["kern"] = np.array(g.kernel, dtype=np.int64)
        t["outsh"] = np.array(g.out_size, dtype=np.int64)
        instr = np.ones(g.ndim, dtype=np.int64)
        for d in range(g.ndim - 2, -1, -1):
            instr[d] = instr[d + 1] * g.in_size[d + 1]
        t["instr"] = instr
    g._cache["numba"] = t
    return t


def _k2_fast(g: Geometry):
    """kd (1 or 2) when the 3-d view is a 2x2(x2) pool with stride = kernel, no dilation or
    padding and every window inside the input (the literal fast kernel applies), else 0."""
    if "k2" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        inside = all(o * k <= n for o, k, n in zip(tb["out3"], (kd, kh, kw), tb["in3"]))
        ok = (kh == kw == sh == sw == 2 and kd == sd and kd in (1, 2) and dd == dh == dw == 1
              and pd == ph == pw == 0 and inside)
        g._cache["k2"] = kd if ok else 0
    return g._cache["k2"]


def _tiles(g: Geometry) -> bool:
    """Whether the 3-d view is a non-overlapping kh x kw pool (stride = kernel, no padding or
    dilation, every window inside, depth untouched) larger than the 2x2 literal kernel's."""
    if "tiles" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        _, OH, OW = tb["out3"]
        _, H, W = tb["in3"]
        g._cache["tiles"] = (kd == sd == 1 and pd == 0 and tb["out3"][0] == tb["in3"][0]
                             and kh == sh and kw == sw and dh == dw == 1 and ph == pw == 0
                             and OH * kh <= H and OW * kw <= W and kh * kw > 4
                             and not any(g.pad_after))
    return g._cache["tiles"]


def _global(g: Geometry) -> bool:
    """Whether every window is its whole plane: one output per dim, kernel = input size, no
    padding or dilation (global pools, adaptive pools to size 1)."""
    return (all(o == 1 for o in g.out_size) and tuple(g.kernel) == tuple(g.in_size)
            and not any(g.pad_before) and not any(g.pad_after)
            and all(d == 1 for d in g.dilation))


def _k3_fast(g: Geometry) -> bool:
    """Whether the 3x3 kernels apply: kernel 3x3 over H, W, no dilation, W stride 1 or 2, and
    depth untouched (kernel 1, stride 1, no padding: output depth = input depth, which the
    kernel indexes directly)."""
    if "k3" not in g._cache:
        tb = _tables(g)
        kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw = (int(v) for v in tb["geo"])
        g._cache["k3"] = (kd == 1 and sd == 1 and pd == 0 and tb["out3"][0] == tb["in3"][0]
                          and kh == kw == 3 and dh == dw == 1 and sw in (1, 2))
    return g._cache["k3"]


def _counts3(g: Geometry, include_pad: bool, dtype):
    """Per-dim divisor counts of the 3-d view, in ``dtype`` (the division's dtype)."""
    c = g.counts(include_pad)
    ones = (np.ones(1, dtype=np.int64),) * (3 - g.ndim)
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in ones + c)


def _widen(x):
    """Numba has no float16 arithmetic: float16 runs as float32 (exact), results go back."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _dummy(ndim, dtype=np.int8):
    return np.empty((1,) * ndim, dtype=dtype)


def max_forward(x, g: Geometry, *, minimum, with_arg):
    dtype = x.dtype
    xw = _widen(x)
    B, T = x.shape[0], x.shape[-1]
    P, Q = math.prod(g.in_size), math.prod(g.out_size)
    tb = _tables(g)
    op = MIN if minimum else MAX
    ident = identity(xw.dtype, minimum)
    adt = arg_dtype(g.taps)
    y = np.empty((B,) + g.out_size + (T,), dtype=xw.dtype)
    arg = np.empty(y.shape, dtype=adt) if with_arg else _dummy(y.ndim, adt)
    work = y.size
    if T == 1 and _global(g):
        _pool.run(_global_best_cf, B, x.size, xw.reshape(B, P), y.reshape(B),
                  arg.reshape(B) if with_arg else _dummy(1, adt), op, with_arg)
        return y.astype(dtype, copy=False), (arg if with_arg else None)
    if g.ndim > 3:
        _pool.run(_best_nd, B * Q, work, xw.reshape(B, P, T), y.reshape(B, Q, T),
                  arg.reshape(B, Q, T) if with_arg else _dummy(3, adt), tb["pos"], tb["kern"],
                  tb["outsh"], tb["instr"], op, with_arg, ident)
    elif T == 1:
        OD, OH, _ = tb["out3"]
        x4 = xw.reshape((B,) + tb["in3"])
        y4 = y.reshape((B,) + tb["out3"])
        a4 = arg.reshape((B,) + tb["out3"]) if with_arg else _dummy(4, adt)
        rows = B * OD * OH
        if _k2_fast(g) and with_arg:
            _pool.run(_k2_arg_2d if _k2_fast(g) == 1 else _k2_arg_3d, rows, work, x4, y4, a4,
                      op, np.arange(8, dtype=adt))
        elif _k2_fast(g):
            _pool.run(_k2_2d if _k2_fast(g) == 1 else _k2_3d, rows, work, x4, y4, op,
                      np.ones(1, xw.dtype))
        elif with_arg and _tiles(g):
            geo = tb["geo"]
            _pool.run(_tiles_arg_cf, B * OD, x.size, x4, y4, a4, int(geo[1]), int(geo[2]), op)
        elif with_arg:
            _pool.run(_best_arg_cf, rows, work, x4, y4, a4, tb["geo"], tb["wtab"], tb["wfirst"],
                      op, ident)
        elif _tiles(g):
            geo = tb["geo"]
            _pool.run(_tiles_cf, B * OD, x.size, x4, y4, int(geo[1]), int(geo[2]), op,
                      np.ones(1, xw.dtype))
        elif _k3_fast(g):
            geo = tb["geo"]
            sh, sw, ph, pw = int(geo[4]), int(geo[5]), int(geo[10]), int(geo[11])
            planes = B * OD
            W, OW = tb["in3"][2], tb["out3"][2]
            if W % sw == 0 and OW <= W // sw and planes >= 4 * _threads():
                _pool.run(_k3_flat_cf, planes, work, x4, y4, sh, sw, ph, pw, op, ident)
            else:
                nchunk = max(1, min(OH, -(-4 * _threads() // max(planes, 1))))
                _pool.run(_k3_roll_cf, planes * nchunk, work, x4, y4, sh, sw, ph, pw, nchunk,
                          op, ident)
        else:
            _pool.run(_best_cf, B * OD * OH, work, x4, y4, tb["geo"], tb["wtab"], op, ident)
    elif _k2_fast(g) == 1 and not with_arg:
        OD, OH, _ = tb["out3"]
        _pool.run(_k2_cl, B * OD * OH, work, xw.reshape((B,) + tb["in3"] + (T,)),
                  y.reshape((B,) + tb["out3"] + (T,)), op, np.ones(1, xw.dtype))
    elif _k2_fast(g) == 1:
        OD, OH, _ = tb["out3"]
        _pool.run(_k2_arg_cl, B * OD * OH, work, xw.reshape((B,) + tb["in3"] + (T,)),
                  y.reshape((B,) + tb["out3"] + (T,)), arg.reshape((B,) + tb["out3"] + (T,)),
                  op, np.arange(8, dtype=adt))
    else:
        OD, OH, _ = tb["out3"]
        _pool.run(_best_cl, B * OD * OH, work, xw.reshape((B,) + tb["in3"] + (T,)),
                  y.reshape((B,) + tb["out3"] + (T,)),
                  arg.reshape((B,) + tb["out3"] + (T,)) if with_arg else _dummy(5, adt),
                  tb["geo"], op, with_arg, ident)
    return y.astype(dtype, copy=False), (arg if with_arg else None)


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


def _backward(dy, arg, g: Geometry, with_arg, count_include_pad=True, override=0):
    """Gradient from ``dy``: routed by ``arg`` (max/min) or spread as dy / divisor (averages;
    ``override`` 1 passes dy through as already divided)."""
    B, T = dy.shape[0], dy.shape[-1]
    P, Q = math.prod(g.in_size), math.prod(g.out_size)
    tb = _tables(g)
    adt = arg.dtype if with_arg else np.int8
    work = B * T * (P + Q)
    if g.ndim > 3:
        if not with_arg and override != 1:
            dy = _shares(dy, g, count_include_pad, override)
        dx = np.zeros((B,) + g.in_size + (T,), dtype=dy.dtype)
        _pool.run(_back_nd, B, work, dy.reshape(B, Q, T),
                  arg.reshape(B, Q, T) if with_arg else _dummy(3, adt), dx.reshape(B, P, T),
                  tb["pos"], tb["kern"], tb["outsh"], tb["instr"], with_arg)
        return dx
    if with_arg:
        route = _route_tables(g, tb)
        if T == 1:
            dx = np.empty((B,) + g.in_size + (T,), dtype=dy.dtype)    # zeroed per plane
            _pool.run(_route_cf, B, work, dy.reshape((B,) + tb["out3"]),
                      arg.reshape((B,) + tb["out3"]), dx.reshape(B, P), *route)
        else:
            dx = np.zeros((B,) + g.in_size + (T,), dtype=dy.dtype)
            cs = _channel_block(B, T)
            _pool.run(_route_cl, B * (-(-T // cs)), work, dy.reshape((B,) + tb["out3"] + (T,)),
                      arg.reshape((B,) + tb["out3"] + (T,)), dx.reshape(B, P, T), *route, cs)
        return dx
    if T > 1:
        if override != 1:
            dy = _shares(dy, g, count_include_pad, override)
        dx = np.zeros((B,) + g.in_size + (T,), dtype=dy.dtype)
        cs = _channel_block(B, T)
        _pool.run(_back_cl, B * (-(-T // cs)), work, dy.reshape((B,) + tb["out3"] + (T,)),
                  _dummy(5, adt), dx.reshape((B,) + tb["in3"] + (T,)), tb["geo"], False, cs)
        return dx
    dx = np.empty((B,) + g.in_size + (T,), dtype=dy.dtype)     # every row is written
    D, H, _ = tb["in3"]
    if _tiles(g) and override != 1:
        geo = tb["geo"]
        _pool.run(_tiles_back_cf, B * D, dx.size, dy.reshape((B,) + tb["out3"]),
                  dx.reshape((B,) + tb["in3"]), int(geo[1]), int(geo[2]),
                  np.array([override or g.taps], dtype=dy.dtype))
        return dx
    if _k2_fast(g) and override != 1:
        _pool.run(_k2_avg_back_cf, B * D * H, work, dy.reshape((B,) + tb["out3"]),
                  dx.reshape((B,) + tb["in3"]), _k2_fast(g),
                  np.array([override or g.taps], dtype=dy.dtype))
        return dx
    cd, ch, cw = _counts3(g, count_include_pad, dy.dtype)
    _pool.run(_back_cf, B * D * H, work, dy.reshape((B,) + tb["out3"]),
              dx.reshape((B,) + tb["in3"]), tb["geo"], tb["wtab"], cd, ch, cw,
              dy.dtype.type(override))
    return dx


def _shares(dy, g: Geometry, count_include_pad, override):
    """dy / divisor in the accumulation dtype (integers truncate toward zero)."""
    div = (np.asarray(override, dtype=np.int64) if override
           else g.divisor(count_include_pad)[..., None])
    if dy.dtype.kind in "iu":
        s = dy.astype(np.int64)
        q = np.floor_divide(s, div)
        return q + ((q * div != s) & ((s < 0) != (div < 0)))
    return np.divide(dy, div.astype(dy.dtype))


def max_backward(dy, arg, g: Geometry):
    dtype = dy.dtype
    return _backward(_widen(dy), arg, g, True).astype(dtype, copy=False)


def avg_forward(x, g: Geometry, *, count_include_pad, divisor_override, rounding="trunc"):
    """Window averages. Integers sum in int64 and divide truncating toward zero, or, with
    ``rounding="nearest"``, round half to even in the same pass (``rounds_nearest``: the
    driver sends only integers narrower than 64 bits here, whose sums int64 holds)."""
    dtype = x.dtype
    xw = _widen(x)
    acc = acc_dtype(dtype)
    proto = np.zeros(1, dtype=acc)
    is_int = (2 if rounding == "nearest" else 1) if dtype.kind in "iu" else 0
    override = divisor_override or 0
    B, T = x.shape[0], x.shape[-1]
    P, Q = math.prod(g.in_size), math.prod(g.out_size)
    tb = _tables(g)
    y = np.empty((B,) + g.out_size + (T,), dtype=xw.dtype if not is_int else dtype)
    work = y.size
    if T == 1 and _global(g) and not is_int:
        _pool.run(_global_sum_cf, B, x.size, xw.reshape(B, P), y.reshape(B),
                  np.array([override or P], dtype=acc))
        return y.astype(dtype, copy=False)
    if g.ndim > 3:
        div = (np.full(Q, override, dtype=np.int64) if override else
               np.ascontiguousarray(g.divisor(count_include_pad)).reshape(-1))
        _pool.run(_avg_nd, B * Q, work, xw.reshape(B, P, T), y.reshape(B, Q, T), tb["pos"],
                  tb["kern"], tb["outsh"], tb["instr"], div, proto, is_int)
        return y.astype(dtype, copy=False)
    OD, OH, _ = tb["out3"]
    cd, ch, cw = _counts3(g, count_include_pad, acc)
    if T == 1 and _k2_fast(g) and not is_int:
        _pool.run(_k2_2d_sum if _k2_fast(g) == 1 else _k2_3d_sum, B * OD * OH, work,
                  xw.reshape((B,) + tb["in3"]), y.reshape((B,) + tb["out3"]), SUM,
                  np.array([override or g.taps], dtype=acc))
    elif T == 1 and _tiles(g) and not is_int:
        geo = tb["geo"]
        _pool.run(_tiles_cf, B * OD, x.size, xw.reshape((B,) + tb["in3"]),
                  y.reshape((B,) + tb["out3"]), int(geo[1]), int(geo[2]), SUM,
                  np.array([override or g.taps], dtype=acc))
    elif T == 1 and _k3_fast(g) and not is_int:
        _pool.run(_k3_avg_cf, B * OD * OH, work, xw.reshape((B,) + tb["in3"]),
                  y.reshape((B,) + tb["out3"]), tb["geo"], tb["wtab"], ch, cw,
                  acc.type(override))
    elif T == 1:
        _pool.run(_avg_cf, B * OD * OH, work, xw.reshape((B,) + tb["in3"]),
                  y.reshape((B,) + tb["out3"]), tb["geo"], tb["wtab"], cd, ch, cw,
                  acc.type(override), proto, is_int)
    elif _k2_fast(g) == 1 and not is_int:
        _pool.run(_k2_cl, B * OD * OH, work, xw.reshape((B,) + tb["in3"] + (T,)),
                  y.reshape((B,) + tb["out3"] + (T,)), SUM,
                  np.array([override or g.taps], dtype=acc))
    else:
        _pool.run(_avg_cl, B * OD * OH, work, xw.reshape((B,) + tb["in3"] + (T,)),
                  y.reshape((B,) + tb["out3"] + (T,)), tb["geo"], cd, ch, cw,
                  acc.type(override), proto, is_int)
    return y.astype(dtype, copy=False)


def avg_backward(dy, g: Geometry, *, count_include_pad, divisor_override):
    dtype = dy.dtype
    dyw = _widen(dy)
    B, T = dy.shape[0], dy.shape[-1]
    if T == 1 and _global(g) and dtype.kind == "f":      # every input of a plane gets dy / n
        share = dyw.reshape(B, 1) / dyw.dtype.type(divisor_override or math.prod(g.in_size))
        dx = np.empty((B, math.prod(g.in_size)), dtype=dyw.dtype)
        dx[...] = share
        return dx.reshape((B,) + g.in_size + (1,)).astype(dtype, copy=False)
    if dtype.kind in "iu":          # integer shares truncate first, then pass through
        return _backward(_shares(dyw, g, count_include_pad, divisor_override or 0), None, g,
                         False, count_include_pad, 1).astype(dtype, copy=False)
    return _backward(dyw, None, g, False, count_include_pad,
                     divisor_override or 0).astype(dtype, copy=False)


def rank_forward(x, g: Geometry, *, mode, omit, with_arg):
    """Median, mode, and max/min skipping NaN: the kernels live in :mod:`._numba_rank`
    (loaded on the first call; its table says which kernel runs when)."""
    from ._numba_rank import rank_forward as run
    return run(x, g, mode=mode, omit=omit, with_arg=with_arg)


def pool_checked(x, g: Geometry, op, divisor):
    """nan_policy="omit"'s fast path: max/min/avg with the NaN check fused in, where a kernel
    for it exists (:mod:`._numba_rank`); None elsewhere."""
    from ._numba_rank import pool_checked as run
    return run(x, g, op, divisor)


# ----------------------------------------------------------------------------------------------
# box windows and index scatter/gather (Python side)
# ----------------------------------------------------------------------------------------------

class _Axis:
    """The axis primitives of :mod:`._separable` on the kernels above."""

    @staticmethod
    def axis_max(v4, c4, starts, sizes, max_size, mult, with_arg):
        B, P, _, Q = v4.shape
        y = np.empty((B, P, starts.shape[1], Q), dtype=v4.dtype)
        idx = np.empty(y.shape, dtype=np.int64) if with_arg else _dummy(4, np.int64)
        carry = c4 if c4 is not None else _dummy(4, np.int64)
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
    from ._separable import box_max as compose
    y, idx = compose(_Axis, _widen(np.ascontiguousarray(x)), boxes, with_arg)
    return y.astype(x.dtype, copy=False), idx


def box_sum(x, boxes):
    from ._separable import box_sum as compose
    return compose(_Axis, np.ascontiguousarray(x, dtype=acc_dtype(x.dtype)), boxes)


def box_spread(g, boxes):
    from ._separable import box_spread as compose
    return compose(_Axis, _widen(np.ascontiguousarray(g)), boxes).astype(g.dtype, copy=False)


def _planes3(a):
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:-1]), a.shape[-1])


def scatter_add(dy, idx, in_size):
    src = _widen(np.ascontiguousarray(dy, dtype=acc_dtype(dy.dtype)))
    dx = np.zeros((dy.shape[0],) + tuple(in_size) + dy.shape[-1:], dtype=src.dtype)
    _pool.run(_scatter, dy.shape[0], dy.size, _planes3(src), _planes3(idx), _planes3(dx), True)
    return dx.astype(dy.dtype, copy=False)


def scatter_set(x, idx, out_size):
    src = _widen(np.ascontiguousarray(x))
    y = np.zeros((x.shape[0],) + tuple(out_size) + x.shape[-1:], dtype=src.dtype)
    _pool.run(_scatter, x.shape[0], x.size, _planes3(src), _planes3(idx), _planes3(y), False)
    return y.astype(x.dtype, copy=False)


def gather(src, idx):
    s = _widen(np.ascontiguousarray(src))
    out = np.empty(idx.shape, dtype=s.dtype)
    _pool.run(_gather, idx.shape[0], idx.size, _planes3(s), _planes3(idx), _planes3(out))
    return out.astype(src.dtype, copy=False)
