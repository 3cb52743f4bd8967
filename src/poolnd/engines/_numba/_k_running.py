"""Stride-1 max/min pooling over 2-d windows at a cost per output that does not grow with the
kernel: van Herk / Gil-Werman running maxima (block prefix and suffix maxima), one axis at a time.

What belongs here: the compiled kernels of this one family, their helpers, ``fits(g)`` (when
the family applies), ``running_plan`` (how a call is cut into work) and
``running_max_forward(x, g, minimum=, with_arg=)`` (the family alone, with the contract of the
engine's ``max_forward``: what the tests call). The choice of kernel is
:data:`._dispatch.MAX_FORWARD`'s.

The algorithm. For a row ``a[0..L)`` and a window of ``k`` taps, cut the row into blocks of
``k`` and compute, inside each block, the running best from the block's start (prefix ``P``)
and from its end (suffix ``S``). The window ``[u, u + k)`` covers the tail of one block and the
head of the next, so its best is ``S[u]`` combined with ``P[u + k - 1]``: three selects per
element whatever ``k`` is. A kh x kw window is the kw-window along W of each input row first
(the horizontal pass), then the kh-window along H of those row results (the vertical pass).

Why the result is bit-identical to the scanning kernels (``_best_cf``, ``_best_arg_cf``,
``_k3_roll_cf``, ``_k3_flat_cf``). Those fold a window's taps in row-major order with the select
``best = v if (v > best or v != v) else best`` (``<`` for min), starting from the identity.
Write ``a . b`` for that select with ``a`` the earlier operand and ``b`` the later one:
``a . b = b`` if ``b > a`` or ``b`` is NaN, else ``a``. Its fold over a sequence picks one
element, and that element is, by induction over the sequence: the last NaN if the sequence
holds one, else the first element equal to the maximum (-0.0 and +0.0 compare equal, so the
first of them wins and its bits are returned). Given the picks ``a`` of a sequence A and
``b`` of a sequence B that follows it, ``a . b`` is the pick of A + B: if B holds a NaN,
``b`` is its last NaN and so the last NaN of A + B; if only A holds one, ``b`` is not NaN and
``a`` (A's last NaN) is kept; if neither does, ``b`` wins only when strictly greater, so ties
keep A's first maximum. So the select is associative and the fold of a concatenation is the
select of the folds of its parts, in order. It follows that
  1. a row's window is ``S[u] . P[u + k - 1]`` (S covers the earlier taps, P the later ones;
     where both cover the whole block, ``a . a = a``, a NaN included, bit for bit);
  2. a 2-d window in row-major order is the concatenation of its rows' tap sequences, top to
     bottom, so folding each row first (horizontal pass) and then the row results top to
     bottom (vertical pass, again as ``S . P``) gives the pick of the whole window in row-major
     order: the same element, so the same value, the same NaN payload and the same sign of
     zero as the scan. (Column-then-row would be column-major order: a different element on
     ties and on several NaNs, which is why the horizontal pass runs first.)
The selects only move values (no arithmetic, no min/max intrinsics, no fastmath), so payloads
survive; float16 runs widened to float32, exactly as the engine widens it.

Padding never wins. Values only: padded taps hold the identity (-inf, +inf for min, or the
integer extreme), which is never strictly better than anything and not NaN, so it changes a
pick only where every tap is the identity, and then the value is the identity either way (a
window wholly in padding gives the identity, as the scanning kernels do). With indices the
pick must also be an in-range tap: every element carries an index, -1 for a padded one, and
the select becomes ``b`` if ``b > a``, ``b`` is NaN, or ``a`` is padding. That adds a bottom
element below every value (padding loses to any real tap, ties included) and keeps the
select associative, so the same proof holds and the pick is the first in-range tap among tied
maxima, exactly what ``_best_arg_cf`` records (it starts from the first in-range tap). A
window with no in-range tap keeps index -1 and the identity, as there.

Indices are window-local tap numbers ``j * kw + l`` (row j, column l of the window), the
``arg`` convention of ``_best_arg_cf`` (depth untouched: its depth tap is 0), -1 for a window
wholly in padding, in ``arg_dtype(g.taps)``; ``Geometry.plane_indices`` and the backward
kernels take them unchanged.

Layout of the work. A work item is a plane and a range of its output rows. The item walks its
rows in sub-chunks of ``C`` output rows: the horizontal pass of the ``C`` new input rows (a
sub-chunk needs ``C + kh - 1`` rows; the last ``kh - 1`` of the previous one are kept), then
the vertical pass into the output rows. The horizontal pass runs on a transposed copy of
``NB`` rows at a time (``xt[v, i]`` = row i, padded column v), so that its prefix, suffix and
combining loops run along contiguous memory across the rows and vectorize; its results are
transposed back into the row buffer. The vertical pass vectorizes along W as it stands. All
buffers are a few rows per thread (sized from the Python side), never a plane.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..._geometry import Geometry
from .._common import arg_dtype, identity
from ._compile import _CACHE
from ._k_rows import MAX, MIN, _better
from ._k_half import narrow as _narrow, widen as _widen
from ._plan import _tables

__all__ = ["fits", "running_max_forward"]

# sub-chunks: about this many elements in one sub-chunk's row buffer ((C + kh - 1) x OW), and
# never fewer than _HALO_ROWS * kh output rows, so that the kh - 1 carried rows stay a small part
# (both module globals read at each call; the tests shrink them to reach the carrying code)
_ROWS_ELEMS = 1 << 14
_HALO_ROWS = 4


# ----------------------------------------------------------------------------------------------
# the horizontal pass: NB rows at a time, transposed, values only and with indices
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE)
def _h_rows(xpl, r_lo, n, hbuf, s_lo, kw, pw, xt, pre, ht, op, ident):
    """hbuf[s_lo + i, q] = best of row ``r_lo + i``'s window q (columns q - pw .. q - pw + kw - 1,
    padding = ident), for i < n (n <= xt.shape[1]). xt, pre: (Lb, NB) scratch, Lb a multiple
    of kw and >= OW + kw - 1."""
    W = xpl.shape[1]
    OW = ht.shape[0]
    Lb, NB = xt.shape
    c_lo, c_hi = min(pw, Lb), min(pw + W, Lb)    # xt rows holding input columns
    for v in range(c_lo):                    # padding
        xt[v, :] = ident
    for v in range(c_hi, Lb):
        xt[v, :] = ident
    for i in range(n):                       # transpose in, x read row by row (prefetched)
        row = xpl[r_lo + i]
        for v in range(c_lo, c_hi):
            xt[v, i] = row[v - pw]
    for base in range(0, Lb, kw):            # prefix best inside each block of kw
        p0 = pre[base]
        x0 = xt[base]
        for i in range(NB):
            p0[i] = x0[i]
        for v in range(base + 1, base + kw):
            pa = pre[v - 1]
            pv = pre[v]
            xv = xt[v]
            for i in range(NB):
                a = pa[i]
                b = xv[i]
                pv[i] = b if _better(b, a, op) else a
        for v in range(base + kw - 2, base - 1, -1):   # suffix best, in place in xt
            xv = xt[v]
            xb = xt[v + 1]
            for i in range(NB):
                a = xv[i]
                b = xb[i]
                xv[i] = b if _better(b, a, op) else a
    for q in range(OW):                      # window q = S[q] . P[q + kw - 1]
        sq = xt[q]
        pq = pre[q + kw - 1]
        hq = ht[q]
        for i in range(NB):
            a = sq[i]
            b = pq[i]
            hq[i] = b if _better(b, a, op) else a
    for i in range(n):                       # transpose back
        h = hbuf[s_lo + i]
        for q in range(OW):
            h[q] = ht[q, i]


@njit(cache=_CACHE)
def _h_rows_arg(xpl, r_lo, n, hbuf, hcode, s_lo, u_lo, kw, pw, xt, pre, xti, prei, ht, hti,
                op, ident):
    """As _h_rows, also hcode[s_lo + i, q] = (u_lo + i) * kw + l for the window-local column l
    of the pick (-1 when the window has no in-range column). Indices: a padded column carries
    -1 and loses every select (``take = better(b, a) or ia < 0``)."""
    W = xpl.shape[1]
    OW = ht.shape[0]
    Lb, NB = xt.shape
    c_lo, c_hi = min(pw, Lb), min(pw + W, Lb)
    for v in range(Lb):
        inside = c_lo <= v < c_hi
        if not inside:
            xt[v, :] = ident
        xti[v, :] = v if inside else -1
    for i in range(n):
        row = xpl[r_lo + i]
        for v in range(c_lo, c_hi):
            xt[v, i] = row[v - pw]
    for base in range(0, Lb, kw):
        p0 = pre[base]
        x0 = xt[base]
        pi0 = prei[base]
        xi0 = xti[base]
        for i in range(NB):
            p0[i] = x0[i]
            pi0[i] = xi0[i]
        for v in range(base + 1, base + kw):
            pa = pre[v - 1]
            pia = prei[v - 1]
            pv = pre[v]
            piv = prei[v]
            xv = xt[v]
            xiv = xti[v]
            for i in range(NB):
                a = pa[i]
                ia = pia[i]
                b = xv[i]
                take = _better(b, a, op) | (ia < 0)
                pv[i] = b if take else a
                piv[i] = xiv[i] if take else ia
        for v in range(base + kw - 2, base - 1, -1):
            xv = xt[v]
            xiv = xti[v]
            xb = xt[v + 1]
            xib = xti[v + 1]
            for i in range(NB):
                a = xv[i]
                ia = xiv[i]
                b = xb[i]
                take = _better(b, a, op) | (ia < 0)
                xv[i] = b if take else a
                xiv[i] = xib[i] if take else ia
    for q in range(OW):
        sq = xt[q]
        siq = xti[q]
        pq = pre[q + kw - 1]
        piq = prei[q + kw - 1]
        hq = ht[q]
        hiq = hti[q]
        for i in range(NB):
            a = sq[i]
            ia = siq[i]
            b = pq[i]
            take = _better(b, a, op) | (ia < 0)
            hq[i] = b if take else a
            at = piq[i] if take else ia
            hiq[i] = at - q if at >= 0 else -1
    for i in range(n):                       # transpose back; codes (u_lo + i) * kw + l
        h = hbuf[s_lo + i]
        hc = hcode[s_lo + i]
        shift = (u_lo + i) * kw
        for q in range(OW):
            h[q] = ht[q, i]
            l = hti[q, i]
            hc[q] = l + shift if l >= 0 else -1


# ----------------------------------------------------------------------------------------------
# the vertical pass over a sub-chunk's rows, and the kernels
# ----------------------------------------------------------------------------------------------

@njit(cache=_CACHE)
def _v_rows(hbuf, R, kh, vpre, vsuf, yp, o0, nout, op):
    """yp[o0 + i] = best of hbuf rows i .. i + kh - 1 (top to bottom), i < nout; R = nout + kh - 1
    rows of hbuf are filled."""
    OW = hbuf.shape[1]
    for base in range(0, R, kh):
        end = min(base + kh, R)
        p0 = vpre[base]
        h0 = hbuf[base]
        for q in range(OW):
            p0[q] = h0[q]
        for s in range(base + 1, end):
            pa = vpre[s - 1]
            ps = vpre[s]
            hs = hbuf[s]
            for q in range(OW):
                a = pa[q]
                b = hs[q]
                ps[q] = b if _better(b, a, op) else a
        s0 = vsuf[end - 1]
        h1 = hbuf[end - 1]
        for q in range(OW):
            s0[q] = h1[q]
        for s in range(end - 2, base - 1, -1):
            sb = vsuf[s + 1]
            ss = vsuf[s]
            hs = hbuf[s]
            for q in range(OW):
                a = hs[q]
                b = sb[q]
                ss[q] = b if _better(b, a, op) else a
    for i in range(nout):
        o = yp[o0 + i]
        si = vsuf[i]
        pi = vpre[i + kh - 1]
        for q in range(OW):
            a = si[q]
            b = pi[q]
            o[q] = b if _better(b, a, op) else a


@njit(cache=_CACHE)
def _v_rows_arg(hbuf, hcode, R, kh, kw, vpre, vsuf, cpre, csuf, yp, ap, o0, nout, op):
    """As _v_rows, carrying hcode's codes ``u * kw + l`` (padded row u = r + ph, window column
    l; -1: no in-range tap, which loses every select) through the same selects. Output row oh's
    window starts at u = oh, so its window-local tap is ``code - oh * kw``; ap[o0 + i] gets it
    (-1 for a window wholly in padding)."""
    OW = hbuf.shape[1]
    for base in range(0, R, kh):
        end = min(base + kh, R)
        p0 = vpre[base]
        c0 = cpre[base]
        h0 = hbuf[base]
        hc0 = hcode[base]
        for q in range(OW):
            p0[q] = h0[q]
            c0[q] = hc0[q]
        for s in range(base + 1, end):
            pa = vpre[s - 1]
            ca = cpre[s - 1]
            ps = vpre[s]
            cs = cpre[s]
            hs = hbuf[s]
            hcs = hcode[s]
            for q in range(OW):
                a = pa[q]
                ia = ca[q]
                b = hs[q]
                take = _better(b, a, op) | (ia < 0)
                ps[q] = b if take else a
                cs[q] = hcs[q] if take else ia
        s0 = vsuf[end - 1]
        sc0 = csuf[end - 1]
        h1 = hbuf[end - 1]
        hc1 = hcode[end - 1]
        for q in range(OW):
            s0[q] = h1[q]
            sc0[q] = hc1[q]
        for s in range(end - 2, base - 1, -1):
            sb = vsuf[s + 1]
            scb = csuf[s + 1]
            ss = vsuf[s]
            scs = csuf[s]
            hs = hbuf[s]
            hcs = hcode[s]
            for q in range(OW):
                a = hs[q]
                ia = hcs[q]
                b = sb[q]
                take = _better(b, a, op) | (ia < 0)
                ss[q] = b if take else a
                scs[q] = scb[q] if take else ia
    for i in range(nout):
        o = yp[o0 + i]
        ao = ap[o0 + i]
        si = vsuf[i]
        sci = csuf[i]
        pi = vpre[i + kh - 1]
        pci = cpre[i + kh - 1]
        shift = (o0 + i) * kw
        for q in range(OW):
            a = si[q]
            ia = sci[q]
            b = pi[q]
            take = _better(b, a, op) | (ia < 0)
            o[q] = b if take else a
            c = pci[q] if take else ia
            ao[q] = c - shift if c >= 0 else -1


@njit(cache=_CACHE, nogil=True)
def _running_cf(x, y, kh, kw, ph, pw, nchunk, C, Lb, op, ident, r0, r1):
    """Max/min of kh x kw windows at stride 1 (2-d, no dilation, depth untouched), values only,
    channels-first x (B, D, H, W) -> y (B, D, OH, OW). Work item i: plane i // nchunk, its
    chunk i % nchunk of output rows, walked in sub-chunks of C rows."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    per = (OH + nchunk - 1) // nchunk
    NB = min(32, C + kh - 1)
    xt = np.empty((Lb, NB), dtype=y.dtype)
    pre = np.empty((Lb, NB), dtype=y.dtype)
    ht = np.empty((OW, NB), dtype=y.dtype)
    hbuf = np.empty((C + kh - 1, OW), dtype=y.dtype)
    vpre = np.empty((C + kh - 1, OW), dtype=y.dtype)
    vsuf = np.empty((C + kh - 1, OW), dtype=y.dtype)
    for it in range(r0, r1):
        plane = it // nchunk
        b = plane // D
        d = plane - b * D
        xpl = x[b, d]
        yp = y[b, d]
        oa = (it - plane * nchunk) * per
        ob = min(OH, oa + per)
        have = 0                          # rows of hbuf already holding rows u = o0 .. (carry)
        for o0 in range(oa, ob, C):
            nout = min(C, ob - o0)
            R = nout + kh - 1
            if have > 0:                  # keep the previous sub-chunk's last kh - 1 rows
                for s in range(kh - 1):
                    hbuf[s, :] = hbuf[C + s, :]
            s = have
            while s < R:                  # row s holds input row o0 - ph + s
                r = o0 - ph + s
                if r < 0 or r >= H:
                    hbuf[s, :] = ident
                    s += 1
                    continue
                n = min(NB, R - s, H - r)
                _h_rows(xpl, r, n, hbuf, s, kw, pw, xt, pre, ht, op, ident)
                s += n
            _v_rows(hbuf, R, kh, vpre, vsuf, yp, o0, nout, op)
            have = kh - 1


@njit(cache=_CACHE, nogil=True)
def _running_arg_cf(x, y, arg, kh, kw, ph, pw, nchunk, C, Lb, op, ident, r0, r1):
    """As _running_cf, also arg (B, D, OH, OW): the window-local tap j * kw + l of the pick
    (the first in-range tap among tied maxima, the last NaN), -1 for a window wholly in
    padding."""
    B, D, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    per = (OH + nchunk - 1) // nchunk
    NB = min(32, C + kh - 1)
    xt = np.empty((Lb, NB), dtype=y.dtype)
    pre = np.empty((Lb, NB), dtype=y.dtype)
    xti = np.empty((Lb, NB), dtype=np.int32)
    prei = np.empty((Lb, NB), dtype=np.int32)
    ht = np.empty((OW, NB), dtype=y.dtype)
    hti = np.empty((OW, NB), dtype=np.int32)
    hbuf = np.empty((C + kh - 1, OW), dtype=y.dtype)
    vpre = np.empty((C + kh - 1, OW), dtype=y.dtype)
    vsuf = np.empty((C + kh - 1, OW), dtype=y.dtype)
    hcode = np.empty((C + kh - 1, OW), dtype=np.int32)
    cpre = np.empty((C + kh - 1, OW), dtype=np.int32)
    csuf = np.empty((C + kh - 1, OW), dtype=np.int32)
    for it in range(r0, r1):
        plane = it // nchunk
        b = plane // D
        d = plane - b * D
        xpl = x[b, d]
        yp = y[b, d]
        ap = arg[b, d]
        oa = (it - plane * nchunk) * per
        ob = min(OH, oa + per)
        have = 0
        for o0 in range(oa, ob, C):
            nout = min(C, ob - o0)
            R = nout + kh - 1
            if have > 0:
                for s in range(kh - 1):
                    hbuf[s, :] = hbuf[C + s, :]
                    hcode[s, :] = hcode[C + s, :]
            s = have
            while s < R:
                r = o0 - ph + s
                if r < 0 or r >= H:
                    hbuf[s, :] = ident
                    hcode[s, :] = -1
                    s += 1
                    continue
                n = min(NB, R - s, H - r)
                _h_rows_arg(xpl, r, n, hbuf, hcode, s, o0 + s, kw, pw, xt, pre, xti, prei, ht,
                            hti, op, ident)
                s += n
            _v_rows_arg(hbuf, hcode, R, kh, kw, vpre, vsuf, cpre, csuf, yp, ap, o0, nout, op)
            have = kh - 1


# ----------------------------------------------------------------------------------------------
# the Python side: when the family applies, and the entry
# ----------------------------------------------------------------------------------------------

def _geo(g: Geometry):
    tb = _tables(g)
    return tuple(int(v) for v in tb["geo"]), tb


def fits(g: Geometry, T: int = 1) -> bool:
    """Whether :func:`running_max_forward` applies to ``g`` on a canonical array with ``T``
    trailing channels: channels-first (``T == 1``), at most 3 spatial dims whose 3-d view
    (``_tables``) has depth untouched (kernel 1, stride 1, no depth padding), stride 1 and no
    dilation on H and W, a kernel of at least 3 on H or W, and padding at most the input's size
    on each side of H and W (so that a row's padded span, and the work, stay within a few times
    the input's; the padded span is what the buffers hold). Windows wholly in padding are
    handled (identity, index -1), so no other configuration is refused."""
    if T != 1 or g.ndim > 3:
        return False
    if "running" not in g._cache:
        (kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw), tb = _geo(g)
        _, H, W = tb["in3"]
        OD, OH, OW = tb["out3"]
        pa = (0,) * (3 - g.ndim) + tuple(g.pad_after)
        g._cache["running"] = bool(
            kd == 1 and sd == 1 and pd == 0 and pa[0] == 0 and OD == tb["in3"][0]
            and sh == sw == 1 and dh == dw == 1 and max(kh, kw) >= 3
            and OH >= 1 and OW >= 1 and ph <= H and pa[1] <= H and pw <= W and pa[2] <= W
            and (H + 2 * ph + 2) * kw < (1 << 31) and (W + 2 * pw + 2 * kw) < (1 << 31))
    return g._cache["running"]


def running_plan(OH, OW, kh, kw, planes, threads):
    """(nchunk, C, Lb): chunks of output rows per plane (enough work items for the threads),
    output rows per sub-chunk (a row buffer of about _ROWS_ELEMS elements), padded row span."""
    nchunk = max(1, min(OH, -(-4 * threads // max(planes, 1))))
    per = -(-OH // nchunk)
    C = max(1, min(per, _ROWS_ELEMS // max(OW, 1) - (kh - 1)))
    C = max(C, min(per, _HALO_ROWS * kh))
    span = OW + kw - 1
    Lb = -(-span // kw) * kw
    return nchunk, C, Lb


def running_max_forward(x, g: Geometry, *, minimum, with_arg):
    """Max (``minimum=False``) or min of every stride-1 window of ``g`` over a canonical
    channels-first ``x`` (``(B, *in_size, 1)``), as ``_numba.max_forward`` computes it, bit for
    bit: returns ``(y, arg)``, ``arg`` the window-local argmax (``arg_dtype(g.taps)``) or None.
    Only for ``fits(g, x.shape[-1])``; raises ValueError otherwise."""
    if not fits(g, x.shape[-1]):
        raise ValueError(f"running_max_forward: geometry {g} does not fit the running-max "
                         f"kernels (see fits)")
    from ._dispatch import Call, _max_running      # the engine's own runner of this family
    xw = _widen(x)
    y = np.empty((x.shape[0],) + g.out_size + (1,), dtype=xw.dtype)
    arg = np.empty(y.shape, dtype=arg_dtype(g.taps)) if with_arg else None
    _max_running(Call(g, xw, y, arg, op=MIN if minimum else MAX, with_arg=with_arg,
                      ident=identity(xw.dtype, minimum)))
    return _narrow(y, x.dtype), arg
