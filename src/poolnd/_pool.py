"""The generic driver: normalize -> geometry -> canonical layout -> engine -> indices -> layout out.

Every public op, functional or layer, goes through :func:`forward` and :func:`backward`. This module
composes; the window math lives in ``_geometry``, the checks in ``_args``, the loops in the engines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _args, _dask, engines
from ._clipped import Clipped
from .engines._common import acc_dtype, exact_int_pool, sum_dtype
from ._geometry import Geometry
from ._layout import Layout


@dataclass(frozen=True)
class Saved:
    """What a layer keeps from its last forward so that backward needs nothing else.

    ``arg`` is the window-local argmax (the max family only): the smallest int dtype that holds a
    tap index, not PyTorch's int64 indices."""

    params: _args.Params
    geometry: Geometry
    layout: Layout
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: np.dtype
    engine: str
    arg: np.ndarray | None
    channels_last: bool = False       # the canonical form the engine saw
    aux: tuple = ()                   # mode "lp": the canonical input and output it needs


def _engine(name: str, g: Geometry):
    """The engine module ``name``, or its box-window form when the kernel is mostly padding
    (:mod:`poolnd._clipped`: the cost then follows the input and output sizes)."""
    eng = engines.get(name)
    return Clipped(eng) if g.wasteful else eng


def front(p: _args.Params, input):
    """The front door of every fixed-window function: a Dask array goes to ``_dask`` (which
    runs :func:`forward` on each block), anything else straight to :func:`forward`."""
    return _dask.pool(p, input) if _dask.is_dask_array(input) else forward(p, input)


def forward(p: _args.Params, input, *, keep: bool = False):
    """Run the pooling call ``p`` on ``input``.

    Returns ``y`` or ``(y, indices)`` (``p.return_indices``), and with ``keep=True`` also the
    :class:`Saved` record for :func:`backward`: ``(result, saved)``. The record owns what it
    holds: nothing in it is a view of ``input`` or of the returned arrays, so changing those in
    place later never changes the gradient.
    """
    x, lay, g = _args.bind(p, input)
    eng_name = p.engine or engines.default()
    eng = _engine(eng_name, g)
    xc, cl = lay.to_canonical(x, channels_last_ok=getattr(eng, "channels_last", False))
    arg, aux = None, ()
    omit = p.nan_policy == "omit" and x.dtype.kind == "f"     # integers hold no NaN
    with np.errstate(all="ignore"):        # inf - inf, integer wrap: results as documented
        if p.mode == "lp":
            yc, arg, aux = _lp_forward(eng, x, xc, g, p.norm_type, keep)
        elif p.mode in _args.RANK_MODES:
            yc, arg = eng.rank_forward(xc, g, mode=p.mode, omit=omit,
                                       with_arg=p.return_indices or (keep and p.mode == "median"))
            if omit and keep:
                aux = (np.isnan(xc),)
        elif p.mode in ("max", "min"):
            with_arg = p.return_indices or keep
            fused = _checked(eng, xc, g, p, p.mode) if omit and not with_arg else None
            if fused is not None:
                yc, holds_nan = fused
            else:
                yc, arg = eng.max_forward(xc, g, minimum=p.mode == "min", with_arg=with_arg)
                holds_nan = omit and _has_nan(yc)
            if holds_nan:                  # some window holds a NaN: skip them there
                yc, arg = eng.rank_forward(xc, g, mode=p.mode, omit=True, with_arg=with_arg)
                aux = (np.isnan(xc),) if keep else ()
        else:
            fused = _checked(eng, xc, g, p, "avg") if omit else None
            if fused is not None:
                yc, holds_nan = fused
            else:
                yc = _avg_forward(eng, xc, g, p)
                holds_nan = omit and _has_nan(yc)
            if holds_nan:
                yc, aux = _avg_omit_forward(eng, xc, g, p, keep)
    y = lay.from_canonical(yc, x.shape, cl)
    result = y
    if p.return_indices:
        idx = arg if getattr(eng, "plane_arg", False) else g.plane_indices(arg)
        result = (y, lay.from_canonical(idx, x.shape, cl))
        if keep and np.may_share_memory(result[1], arg):
            arg = arg.copy()
    if not keep:
        return result
    return result, Saved(p, g, lay, x.shape, y.shape, x.dtype, eng_name, arg, cl, aux)


def _avg_forward(eng, xc, g: Geometry, p: _args.Params):
    """Averages and sums. Integer sums come out as int64 (uint64 for unsigned input), as
    ``np.sum`` gives them; 64-bit integers take the exact two-digit path of
    :func:`~poolnd.engines._common.exact_int_pool`, so nothing wraps, and so does every integer
    average with ``rounding="nearest"``, but on an engine that rounds half to even itself
    (``rounds_nearest``) an integer narrower than 64 bits, summed there in int64 exactly."""
    override = _divisor_override(p)
    nearest = p.mode == "avg" and p.rounding == "nearest"
    if nearest and xc.dtype.kind in "iu" and xc.dtype.itemsize < 8 and \
            getattr(eng, "rounds_nearest", False):      # one fused pass, no int64 copy
        return eng.avg_forward(xc, g, count_include_pad=p.count_include_pad,
                               divisor_override=override, rounding="nearest")
    if xc.dtype.kind in "iu" and (p.mode == "sum" or xc.dtype.itemsize == 8 or nearest):
        def window_sum(a):
            return eng.avg_forward(a, g, count_include_pad=True, divisor_override=1)
        if p.mode == "sum":
            return exact_int_pool(window_sum, xc, None, sum_dtype(xc.dtype))
        divisor = (np.int64(override) if override else
                   g.divisor(p.count_include_pad).reshape((1,) + g.out_size + (1,)))
        return exact_int_pool(window_sum, xc, divisor, xc.dtype, p.rounding)
    return eng.avg_forward(xc, g, count_include_pad=p.count_include_pad,
                           divisor_override=override)


def backward(saved: Saved, dy):
    """Gradient w.r.t. the input of the forward that made ``saved``; ``dy`` has the output's
    shape and layout. Returns an array of the input's shape, dtype and layout."""
    p = saved.params
    _args.check_grad_dtype(p.op, saved.dtype)
    dy = _args.check_grad(p.op, dy, saved.output_shape)
    dyc, _ = saved.layout.to_canonical(dy.astype(saved.dtype, copy=False),
                                       channels_last_ok=saved.channels_last)
    eng = _engine(saved.engine, saved.geometry)
    with np.errstate(all="ignore"):
        if p.mode == "mode":              # a mode is piecewise constant: zero gradient
            return np.zeros(saved.input_shape, dtype=saved.dtype)
        if p.mode == "lp":
            dxc = _lp_backward(eng, dyc, saved, p.norm_type)
        elif p.mode in ("max", "min", "median"):
            dxc = eng.max_backward(dyc, saved.arg, saved.geometry)
            if saved.aux:                  # nan_policy="omit": NaN inputs get no gradient
                dxc[saved.aux[0]] = 0
        elif saved.aux:
            dxc = _avg_omit_backward(eng, dyc, saved)
        else:
            dxc = eng.avg_backward(dyc, saved.geometry, count_include_pad=p.count_include_pad,
                                   divisor_override=_divisor_override(p))
    return saved.layout.from_canonical(dxc, saved.input_shape, saved.channels_last)


def _has_nan(y) -> bool:
    """Whether a float result holds a NaN: one reduction (``max`` propagates NaN), no
    temporary. Under nan_policy="propagate" a max, min, sum or average is NaN exactly where its
    window holds a NaN (or, for sums, adds inf to -inf, which "omit" gives as NaN too), so
    without one the propagating result is already the omitting one: the fast path."""
    return y.dtype.kind == "f" and y.size > 0 and bool(np.isnan(np.max(y)))


def _checked(eng, xc, g: Geometry, p: _args.Params, op: str):
    """The engine's float max, min or average (``op``) with the NaN check fused into its
    kernel, ``(y, holds_nan)``, where the engine has one (the numba engine); else None."""
    fused = getattr(eng, "pool_checked", None)
    if fused is None:
        return None
    if op == "avg":
        return fused(xc, g, op, count_include_pad=p.count_include_pad,
                     divisor_override=_divisor_override(p))
    return fused(xc, g, op)


def _avg_omit_forward(eng, xc, g: Geometry, p: _args.Params, keep: bool):
    """Sums and averages that skip NaN: the window sum of the non-NaN inputs (in the
    accumulation dtype) over their count, plus the padded positions under
    ``count_include_pad=True`` (never a ceil-mode overhang), or over ``divisor_override``. A
    window whose inputs are all NaN gives NaN. -> ``(y, aux)``, aux what backward needs."""
    acc = acc_dtype(xc.dtype)
    nan = np.isnan(xc)
    total = eng.avg_forward(np.where(nan, 0, xc).astype(acc), g, count_include_pad=True,
                            divisor_override=1)
    count = eng.avg_forward((~nan).astype(np.float64), g, count_include_pad=True,
                            divisor_override=1)               # exact up to 2**53 taps
    inside = g.divisor(False).reshape((1,) + g.out_size + (1,))
    all_nan = (count == 0) & (inside > 0)
    if p.mode == "sum":
        divisor = np.ones((), dtype=np.float64)
    elif p.divisor_override:
        divisor = np.float64(p.divisor_override)
    else:
        divisor = count + ((g.divisor(True) - g.divisor(False)).reshape(inside.shape)
                           if p.count_include_pad else 0)
    y = total / divisor.astype(acc)
    y[all_nan] = np.nan
    return y.astype(xc.dtype, copy=False), ((nan, divisor, all_nan) if keep else ())


def _avg_omit_backward(eng, dyc, saved: Saved):
    """Each window's ``dy / divisor`` spread over its non-NaN inputs (``dy`` itself for sums);
    NaN inputs and all-NaN windows pass no gradient."""
    nan, divisor, all_nan = saved.aux
    acc = acc_dtype(dyc.dtype)
    share = dyc.astype(acc) / np.asarray(divisor).astype(acc)
    share[np.broadcast_to(all_nan, share.shape)] = 0
    dx = eng.avg_backward(np.ascontiguousarray(share), saved.geometry, count_include_pad=True,
                          divisor_override=1)
    dx[nan] = 0
    return dx.astype(dyc.dtype, copy=False)


def _lp_forward(eng, x, xc, g: Geometry, norm_type: float, keep: bool):
    """The window p-norm of ``|x|``, as PyTorch composes it: ``(avg_pool(|x|**p) * K)**(1/p)``
    with the average's ``count_include_pad=True`` divisor, so a ceil-mode window cut short by
    the input's end is scaled by ``K / count``; ``p = inf`` is the max of ``|x|``; a negative
    ``p`` is PyTorch's same formula (a window holding a 0 gives 0).
    -> ``(y, arg, aux)``: the window-local argmax (``p = inf``) and what backward needs: copies
    of the canonical input and output (``xc`` is a view of the caller's ``x`` when that is
    contiguous; the returned ``y`` is the caller's), so later in-place changes to either never
    reach the gradient. That costs one input-sized and one output-sized copy per kept forward
    (for ``p = 2`` an engine's ``square_and_copy``, where it has one, writes ``x * x`` and the
    input's copy in one pass)."""
    acc = acc_dtype(xc.dtype)
    private = keep and np.may_share_memory(xc, x)         # a copy of xc is to be kept
    fused = getattr(eng, "square_and_copy", None)
    terms = fused(xc) if private and norm_type == 2 and xc.dtype == acc and fused else None
    if terms is not None:                 # the engine's one pass: x * x and the kept copy
        t, x_kept = terms
    else:
        x_kept = (xc.copy() if private else xc) if keep else None
    if np.isinf(norm_type):
        a = np.absolute(xc, dtype=acc)
        y, arg = eng.max_forward(a, g, minimum=False, with_arg=keep)
        y = np.maximum(y, 0)              # a window wholly in padding: the norm of zeros
        return y.astype(xc.dtype, copy=False), arg, ((x_kept,) if keep else ())
    if terms is None and norm_type == 2:  # x * x is |x| * |x|: one pass, one temporary
        t = np.multiply(xc, xc, dtype=acc)
    elif terms is None:
        t = np.power(np.absolute(xc, dtype=acc), acc.type(norm_type))
    y = eng.avg_forward(t, g, count_include_pad=True, divisor_override=None)
    del t
    if not y.flags.writeable or np.may_share_memory(y, xc):       # an engine's own array
        y = y.copy()
    np.multiply(y, acc.type(math.prod(g.kernel)), out=y)        # in place: the same values
    if norm_type == 2:                    # PyTorch's pow(y, 0.5) is its sqrt (correctly rounded)
        np.sqrt(y, out=y)
    else:
        np.power(y, acc.type(1.0 / norm_type), out=y)
    return y.astype(xc.dtype, copy=keep), None, ((x_kept, y) if keep else ())


def _lp_backward(eng, dyc, saved: Saved, norm_type: float):
    """``dx = sign(x) |x|**(p-1) * spread(dy * K * y**(1-p)) / count``; zero where ``y == 0``
    (PyTorch's relu in the composition passes no gradient there); ``sign(0) = +1``, so for
    ``x >= 0`` this is PyTorch's ``p * x**(p-1)`` chain exactly (for p = 2, ``x`` itself).
    The full-size passes work in place on the spread gradient."""
    xc = saved.aux[0]
    acc = acc_dtype(xc.dtype)
    x = xc.astype(acc, copy=False)
    dy = dyc.astype(acc, copy=False)
    if np.isinf(norm_type):
        sign = np.where(x < 0, acc.type(-1), acc.type(1))
        return (eng.max_backward(dy, saved.arg, saved.geometry) * sign).astype(xc.dtype)
    y = saved.aux[1]
    p = acc.type(norm_type)
    share = np.where(y > 0, dy * acc.type(math.prod(saved.geometry.kernel))
                     * np.power(y, acc.type(1) - p), acc.type(0))
    spread = eng.avg_backward(share, saved.geometry, count_include_pad=True,
                              divisor_override=None)
    if not spread.flags.writeable:
        spread = spread.copy()
    if norm_type == 2:                    # sign(x) |x| is x (a -0 input: -0, as 2 x gives)
        np.multiply(spread, x, out=spread)
        return spread.astype(xc.dtype, copy=False)
    grad_t = np.power(np.absolute(x), p - acc.type(1))
    np.negative(grad_t, out=grad_t, where=x < 0)                # sign(x), with sign(0) = +1
    np.multiply(spread, grad_t, out=spread)
    return spread.astype(xc.dtype, copy=False)


def _divisor_override(p: _args.Params):
    return 1 if p.mode == "sum" else p.divisor_override


def pool(input, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
         spatial_dims, layout=None, return_indices=False, count_include_pad=True,
         divisor_override=None, norm_type=None, nan_policy="propagate", rounding="trunc",
         engine=None):
    """Pool over any number of spatial dims with one of the modes max, avg, min, sum, lp,
    median, mode.

    ``y[b, o] = reduce over taps j of x[b, o * stride - pad_before + j * dilation]``, with padded
    positions holding the mode's identity (never selected by max/min; counted by avg only with
    ``count_include_pad=True``). ``"median"`` is the lower median of the ``n`` elements of the
    window that lie inside the input (the ``ceil(n/2)``-th smallest), ``"mode"`` their most
    frequent value (the smallest of tied values); padded positions never count in either.

    Parameters
    ----------
    input : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``, or as ``layout`` says
    mode : {"max", "avg", "min", "sum", "lp", "median", "mode"}
    kernel_size, stride, dilation : int or tuple of ``spatial_dims`` ints
        ``stride`` defaults to ``kernel_size``.
    padding : int, tuple of ints, tuple of ``(before, after)`` pairs, "valid", "same" or "same_lower"
        An int or tuple of ints pads both sides and is at most half the kernel (PyTorch's rule);
        the pair and string forms take any pad >= 0 (ONNX's rule).
    ceil_mode : bool
        Round the output size up (a last window starting past the input and its left pad is
        dropped, as in PyTorch).
    spatial_dims : int
        Number of trailing (or, with ``layout``, named) spatial dims to pool over; 1, 2, 3, 4, ...
    layout : str, optional
        Axis letters of input and output: ``N`` batch, ``C`` channels (either or both may be left
        out: ``"HW"``, ``"HWC"``, ``"ZYX"``), every other letter a spatial axis, ``spatial_dims``
        of them. PyTorch's letters (``W``; ``H W``; ``D H W``) take per-dim tuples and give
        indices in D, H, W order wherever they stand; any other letters are taken in the order
        written (``"ZYX"``: kernel ``(kz, ky, kx)``). Default channels-first.
    return_indices : bool
        max, min, median, mode: also return PyTorch's int64 indices (flat offset inside the
        input plane) of the chosen element: the first in scan order holding the result.
    count_include_pad, divisor_override
        avg only, as in :func:`poolnd.avg_pool2d` (median and mode refuse
        ``count_include_pad=False``: padding never counts there).
    norm_type : float, lp only
        The p of the window p-norm ``(sum |x|**p)**(1/p)``, > 0 or ``inf`` (max of ``|x|``).
        Padding adds zeros; a ceil-mode window cut short by the end of the padded input is scaled
        by ``kernel taps / taps inside``, as PyTorch's ``lp_pool`` does.
    nan_policy : {"propagate", "omit"}
        "propagate" (default): a window holding a NaN gives NaN. "omit": NaN inputs are skipped
        (nanmax, nanmin, nansum, nanmean, and the median or mode of the rest); a window whose
        inputs are all NaN gives NaN; an average divides by the non-NaN inputs (plus the
        padded positions under ``count_include_pad=True``) unless ``divisor_override`` is
        given. Not for "lp". Integer inputs hold no NaN: it changes nothing there.
    rounding : {"trunc", "nearest"}
        How an integer average (mode "avg") rounds: toward zero (default, PyTorch's) or to
        nearest, ties to even, from the exact sum (exact for 64-bit integers too). Accepted by
        every mode, so one call can serve them all; it changes nothing for float inputs or the
        other modes.
    engine : {"numba", "numpy", "reference"}, optional
        Default: the fastest available ("numba" when Numba is installed).

    Returns
    -------
    y : ndarray, or ``(y, indices)`` with ``return_indices=True``

    Raises
    ------
    ValueError, TypeError
        For any bad argument or input, naming the argument, the value and the rule.

    Notes
    -----
    Output size per dim: ``floor((L + pad_before + pad_after - dilation*(k-1) - 1) / s) + 1``
    (``ceil`` with ``ceil_mode``). Ties: the first maximum in row-major window order wins; a NaN
    wins over any number, and the last NaN's index is returned. Median and mode always give
    an element of the window (exact in every dtype; ``-0.0 == 0.0`` counts as one value, and
    the result is the first element holding it); a window with a NaN gives NaN at its last
    NaN, as max does, unless ``nan_policy="omit"``. Gradients: median routes ``dy`` to the
    chosen element as max does; mode has zero gradient; under "omit" NaN inputs get none.
    A window wholly in padding has no median or mode (a ``ValueError``).

    Examples
    --------
    >>> import numpy as np, poolnd
    >>> x = np.arange(16.0).reshape(1, 1, 2, 2, 2, 2)      # one plane, 4 spatial dims
    >>> poolnd.pool(x, "sum", 2, spatial_dims=4).ravel()
    array([120.])
    >>> poolnd.pool(np.array([[4.0, 1.0, 3.0]]), "min", 2, stride=1, spatial_dims=1)
    array([[1., 1.]])
    >>> poolnd.pool(np.array([[3.0, -4.0]]), "lp", 2, spatial_dims=1, norm_type=2)
    array([[5.]])
    >>> vol = np.arange(8, dtype=np.uint8).reshape(2, 2, 2) + 1     # a (Z, Y, X) volume
    >>> poolnd.pool(vol, "avg", (2, 1, 2), spatial_dims=3, layout="ZYX", rounding="nearest")
    array([[[4],
            [6]]], dtype=uint8)

    The lower median of 2, 9, 4, 7 is 4 (the 2nd smallest of four); of 5, 8, 6 (the last
    window's fourth tap is padding, which never counts), 6:

    >>> poolnd.pool(np.array([[2, 9, 4, 7, 5, 8, 6]]), "median", 4, padding=((0, 1),),
    ...             spatial_dims=1)
    array([[4, 6]])

    The mode of a label row, the smaller label where two tie; with its indices:

    >>> labels = np.array([[7, 7, 3, 3, 3, 9, 2, 2]], dtype=np.uint32)
    >>> poolnd.pool(labels, "mode", 4, spatial_dims=1, return_indices=True)
    (array([[3, 2]], dtype=uint32), array([[2, 6]]))

    Skipping NaN (a no-data value): the average of the non-NaN inputs, NaN where all are NaN:

    >>> poolnd.pool(np.array([[1.0, np.nan, np.nan, np.nan, 4.0, 6.0]]), "avg", 2,
    ...             spatial_dims=1, nan_policy="omit")
    array([[ 1., nan,  5.]])
    """
    p = _args.normalize("pool", mode, spatial_dims, kernel_size, stride, padding, dilation,
                        ceil_mode, layout=layout, return_indices=return_indices,
                        count_include_pad=count_include_pad, divisor_override=divisor_override,
                        norm_type=norm_type, nan_policy=nan_policy, engine=engine,
                        torch_empty_rule="any", rounding=rounding)
    return front(p, input)


def global_pool(op: str, mode: str, input, spatial_dims, layout, engine, rounding="trunc"):
    """Pool each whole spatial plane to size 1, keeping the dims (ONNX GlobalMaxPool/AveragePool)."""
    if _dask.is_dask_array(input):
        return _dask.global_pool(op, mode, input, spatial_dims, layout, engine, rounding)
    x, p = _args.normalize_global(op, mode, input, spatial_dims, layout, engine, rounding)
    return forward(p, x)
