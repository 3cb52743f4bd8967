"""Kernels: pools of four and more spatial dims over flattened planes."""
from __future__ import annotations


import numpy as np
from numba import njit

from ._compile import _CACHE
from ._k_rows import _better, _int_div


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
