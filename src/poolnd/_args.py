"""Argument normalization and every user-facing check.

Everything a user passes is turned here, once, into plain hashable values: per-dim int tuples,
``(before, after)`` pad pairs or a "same" rule, a parsed :class:`~poolnd._layout.Layout`, a checked
array. Every ``ValueError``/``TypeError`` poolnd raises for bad input is raised from this module,
through :func:`fail`, and names the op, the argument, the value and the rule. Nothing here computes a
pooling result.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from . import _geometry
from ._layout import SPATIAL_LETTERS, Layout

__all__ = ["Params", "normalize", "bind", "fail", "check_array", "check_bool", "check_engine"]

MODES = ("max", "min", "avg", "sum", "lp", "median", "mode")
RANK_MODES = ("median", "mode")          # reducers that pick an element by its rank or count
NAN_POLICIES = ("propagate", "omit")
PAD_STRINGS = ("valid", "same", "same_lower")
ROUNDINGS = ("trunc", "nearest")          # integer averages: toward zero, or half to even
# default names of spatial dims beyond D, H, W (lower case past the 21 free capitals: internal
# names only, for up to MAX_DIMS - 1 spatial dims)
_EXTRA_LETTERS = "ABEFGIJKLMOPQRSTUVXYZ" + "abcdefghijklmnopqrstuvwxyz"


def fail(op: str, message: str, exc: type[Exception] = ValueError):
    """Raise ``exc("<op>: <message>")``: the one formatter of every user-facing error."""
    raise exc(f"{op}: {message}")


MAX_DIMS = 32                              # dims of an input in all (section 5 of the contract)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def as_plain(value):
    """An integer NumPy array (0-d or 1-d) as the int or tuple of ints it stands for, so that
    ``MaxPool2d(np.array([2, 2]))`` means ``MaxPool2d((2, 2))``; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim <= 1:
        return int(value) if value.ndim == 0 else tuple(int(v) for v in value)
    return value


def check_bool(op: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        fail(op, f"{name} must be a bool, got {value!r} ({type(value).__name__})", TypeError)
    return bool(value)


def int_tuple(op: str, name: str, value, k: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of 1 or ``k`` ints -> a ``k``-tuple of ints ``>= minimum``."""
    value = as_plain(value)
    if _is_int(value):
        vals = (int(value),) * k
    elif isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            fail(op, f"{name} must be an int or a tuple of ints, got {value!r}", TypeError)
        if len(value) == 1:
            vals = (int(value[0]),) * k
        elif len(value) == k:
            vals = tuple(int(v) for v in value)
        else:
            fail(op, f"{name}={value!r} must be a single int or a tuple of {k} ints "
                     f"(one per spatial dim), got {len(value)} values")
    else:
        fail(op, f"{name} must be an int or a tuple of ints, got {value!r} "
                 f"({type(value).__name__})", TypeError)
    for d, v in enumerate(vals):
        if v < minimum:
            fail(op, f"{name}={value!r} must be >= {minimum} in every dim, got {v} in dim {d}")
    return vals


def _is_pairs(padding) -> bool:
    return (isinstance(padding, (tuple, list)) and len(padding) > 0
            and all(isinstance(p, (tuple, list)) for p in padding))


def _padding(op: str, padding, k: int, kernel: tuple[int, ...]):
    """-> a tuple of ``(before, after)`` pairs or ``"same"``/``"same_lower"``."""
    if isinstance(padding, str):
        if padding not in PAD_STRINGS:
            fail(op, f"padding={padding!r} must be an int, a tuple of ints, a tuple of "
                     f"(before, after) pairs, or one of {PAD_STRINGS}")
        return ((0, 0),) * k if padding == "valid" else padding
    if _is_pairs(padding):
        if len(padding) != k or not all(len(p) == 2 for p in padding):
            fail(op, f"padding={padding!r} as (before, after) pairs needs exactly {k} pairs "
                     f"(one per spatial dim)")
        if not all(_is_int(v) for p in padding for v in p):
            fail(op, f"padding={padding!r}: every (before, after) entry must be an int",
                 TypeError)
        pairs = tuple((int(b), int(a)) for b, a in padding)
        for d, (b, a) in enumerate(pairs):
            if b < 0 or a < 0:
                fail(op, f"padding={padding!r} must be >= 0, got {(b, a)} in dim {d}")
        return pairs
    pads = int_tuple(op, "padding", padding, k, 0)
    for d, (p, kk) in enumerate(zip(pads, kernel)):
        if p > kk // 2:
            fail(op, f"padding={padding!r} must be at most half the kernel size per dim, got "
                     f"{p} > {kk // 2} in dim {d} (kernel_size={kernel}); use (before, after) "
                     f"pairs or 'same' for larger pads")
    return tuple((p, p) for p in pads)


def parse_layout(op: str, layout, k: int) -> Layout | None:
    """A layout string -> :class:`Layout`. ``N`` (batch) and ``C`` (channels) may each be left
    out; every other letter is a spatial axis, and there must be ``k`` of them. When they are
    PyTorch's letters for ``k`` dims (``W``; ``H W``; ``D H W``, in any order) the spatial order
    (per-dim tuples, indices) is D, H, W wherever they stand; any other letters (``"ZYX"``, or a
    mix such as ``"HX"``) are taken in the order written."""
    if layout is None or isinstance(layout, Layout):       # None, or parsed already
        return layout
    if not isinstance(layout, str):
        fail(op, f"layout must be a string such as 'NCHW', 'NHWC' or 'HW', or None, got "
                 f"{layout!r}", TypeError)
    if (not layout.isascii() or not layout.isalpha() or not layout.isupper()
            or len(set(layout)) != len(layout)):
        fail(op, f"layout={layout!r} must be distinct upper-case letters A-Z, one per axis "
                 f"('N' batch, 'C' channels, any other letter a spatial axis)")
    spatial = "".join(c for c in layout if c not in "NC")
    if len(spatial) != k:
        fail(op, f"layout={layout!r} names {len(spatial)} spatial axes ({spatial!r}), but the op "
                 f"pools {k} spatial dims (every letter other than 'N' batch and 'C' channels "
                 f"is a spatial axis)")
    if k in SPATIAL_LETTERS and set(spatial) == set(SPATIAL_LETTERS[k]):
        spatial = SPATIAL_LETTERS[k]
    return Layout(layout, spatial)


def default_layout(k: int, batched: bool) -> Layout:
    sp = SPATIAL_LETTERS.get(k) or (_EXTRA_LETTERS[:k - 3] + "DHW")
    return Layout(("NC" if batched else "C") + sp, sp)


def check_engine(op: str, engine) -> str | None:
    from .engines import available
    if engine is None:
        return None
    names = available()
    if not isinstance(engine, str) or engine not in names:
        fail(op, f"engine={engine!r} must be None or one of {names}")
    return engine


def check_array(op: str, input, *, integer_ok: bool = True) -> np.ndarray:
    """``numpy.asarray(input)`` with a supported dtype: float16/32/64, and the integer dtypes;
    at most ``MAX_DIMS`` dims; in native byte order (a big-endian array, as FITS files and
    network formats deliver them, is copied once to native order: results equal those of the
    native copy). A masked array is refused rather than silently unmasked."""
    if isinstance(input, np.ma.MaskedArray):
        fail(op, "input is a numpy.ma.MaskedArray, whose mask poolnd would silently drop; fill "
                 "the masked elements first, e.g. x.filled(np.nan) with nan_policy='omit', or "
                 "pass x.data to pool the stored values", TypeError)
    try:
        x = np.asarray(input)
    except Exception as e:  # noqa: BLE001 - anything asarray refuses is the user's type error
        fail(op, f"input must be a NumPy array or convertible to one ({e})", TypeError)
    kind = x.dtype.kind
    ok = (kind == "f" and x.dtype.itemsize <= 8) or (integer_ok and kind in "iu")
    if not ok:
        allowed = "float16, float32, float64" + (" or an integer dtype" if integer_ok else "")
        fail(op, f"input dtype {x.dtype} is not supported; use {allowed}", TypeError)
    if x.ndim > MAX_DIMS:
        fail(op, f"input of shape {x.shape} has {x.ndim} dims; poolnd takes at most {MAX_DIMS}")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return x


@dataclass(frozen=True)
class Params:
    """A normalized pooling call, independent of the input array (layers build it once)."""

    op: str
    mode: str
    k: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | str
    ceil_mode: bool
    layout: Layout | None
    return_indices: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    engine: str | None = None
    torch_empty_rule: str = "batch"     # zero-size axes allowed: "batch" (PyTorch's rule) or "any"
    input_at_least_kernel: bool = False  # PyTorch's avg_pool3d also demands input >= kernel
    norm_type: float | None = None       # mode "lp" only
    nan_policy: str = "propagate"        # "omit": NaN inputs are skipped (not for "lp")
    rounding: str = "trunc"              # integer averages: "trunc" or "nearest"


def normalize(op: str, mode: str, k: int, kernel_size, stride=None, padding=0, dilation=1,
              ceil_mode=False, *, layout=None, return_indices=False, count_include_pad=True,
              divisor_override=None, engine=None, torch_empty_rule="batch",
              input_at_least_kernel=False, norm_type=None, nan_policy="propagate",
              rounding="trunc") -> Params:
    """Check and normalize everything but the input array."""
    if mode not in MODES:
        fail(op, f"mode={mode!r} must be one of {MODES}")
    rounding = check_rounding(op, rounding)
    check_spatial_dims(op, k)
    kernel = int_tuple(op, "kernel_size", kernel_size, k, 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        strides = kernel
    else:
        strides = int_tuple(op, "stride", stride, k, 1)
    dil = int_tuple(op, "dilation", dilation, k, 1)
    pads = _padding(op, padding, k, kernel)
    if isinstance(padding, str) or _is_pairs(padding):
        input_at_least_kernel = False      # PyTorch's rule binds its own int/tuple form only
    ceil_mode = check_bool(op, "ceil_mode", ceil_mode)
    return_indices = check_bool(op, "return_indices", return_indices)
    count_include_pad = check_bool(op, "count_include_pad", count_include_pad)
    if divisor_override is not None and mode != "avg":
        fail(op, f"divisor_override={divisor_override!r} applies to mode 'avg' only, got "
                 f"mode={mode!r}")
    if return_indices and mode not in ("max", "min") + RANK_MODES:
        fail(op, f"return_indices=True needs mode 'max', 'min', 'median' or 'mode', got "
                 f"mode={mode!r}")
    if mode in RANK_MODES and not count_include_pad:
        fail(op, f"count_include_pad=False does not apply to mode {mode!r} (padded positions "
                 f"never count in a median or a mode; the option is for 'avg')")
    nan_policy = check_nan_policy(op, nan_policy, mode)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            fail(op, f"divisor_override must be an int or None, got {divisor_override!r}",
                 TypeError)
        if divisor_override == 0:
            fail(op, "divisor_override=0 must not be zero")
        divisor_override = int(divisor_override)
    if mode == "lp":
        norm_type = check_norm_type(op, norm_type)
        if not count_include_pad:
            fail(op, "count_include_pad=False does not apply to mode 'lp' (padding adds zeros "
                     "to the p-norm; partial ceil-mode windows are rescaled as in PyTorch)")
    elif norm_type is not None:
        fail(op, f"norm_type={norm_type!r} applies to mode 'lp' only, got mode={mode!r}")
    return Params(op, mode, k, kernel, strides, dil, pads, ceil_mode, parse_layout(op, layout, k),
                  return_indices, count_include_pad, divisor_override, check_engine(op, engine),
                  torch_empty_rule, input_at_least_kernel, norm_type, nan_policy, rounding)


def check_nan_policy(op: str, nan_policy, mode: str) -> str:
    """``nan_policy``: "propagate" (a window holding a NaN gives NaN) or "omit" (NaN inputs are
    skipped), the latter for max, min, avg, sum, median and mode; "lp" takes only the default."""
    if not isinstance(nan_policy, str):
        fail(op, f"nan_policy must be a string, one of {NAN_POLICIES}, got {nan_policy!r} "
                 f"({type(nan_policy).__name__})", TypeError)
    if nan_policy not in NAN_POLICIES:
        fail(op, f"nan_policy={nan_policy!r} must be one of {NAN_POLICIES}")
    if nan_policy == "omit" and mode == "lp":
        fail(op, "nan_policy='omit' does not apply to mode 'lp' (a p-norm skipping NaN is not "
                 "defined here; it takes only nan_policy='propagate')")
    return nan_policy


def check_rounding(op: str, rounding) -> str:
    """``rounding``: how an average of integers rounds, "trunc" (toward zero, PyTorch's) or
    "nearest" (half to even). Accepted by every mode and dtype; it acts on integer averages."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        fail(op, f"rounding={rounding!r} must be one of {ROUNDINGS} (how an average of "
                 f"integers rounds: toward zero, or to nearest with ties to even)")
    return rounding


def check_spatial_dims(op: str, k) -> int:
    """``spatial_dims``: an int from 1 to ``MAX_DIMS - 1`` (a channel axis needs one more)."""
    if not _is_int(k) or k < 1:
        fail(op, f"spatial_dims={k!r} must be an int >= 1")
    if k > MAX_DIMS - 1:
        fail(op, f"spatial_dims={k!r} is too many: an input has at most {MAX_DIMS} dims in all, "
                 f"so at most {MAX_DIMS - 1} spatial dims (with a channel axis)")
    return int(k)


def check_norm_type(op: str, norm_type) -> float:
    """The p of an LP pool: every value PyTorch computes with, a finite nonzero real number
    (negative ones included) or ``inf`` (the max of ``|x|``); 0, NaN and ``-inf`` are errors."""
    if norm_type is None:
        fail(op, "mode 'lp' needs norm_type= (the p of the p-norm: a finite nonzero number or "
                 "inf)")
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(
            norm_type, (int, float, np.integer, np.floating)):
        fail(op, f"norm_type must be a finite nonzero real number or inf, got {norm_type!r} "
                 f"({type(norm_type).__name__})", TypeError)
    p = float(norm_type)
    if p == 0 or p != p or p == -np.inf:
        fail(op, f"norm_type={norm_type!r} must be a finite nonzero number or inf: the "
                 f"p-mean with p {'= 0' if p == 0 else 'NaN' if p != p else '= -inf'} "
                 f"is not defined")
    return p


def resolve_layout(op: str, layout: Layout | None, k: int, shape: tuple[int, ...]) -> Layout:
    ndim = len(shape)
    if layout is None:
        if ndim == k + 2:
            return default_layout(k, True)
        if ndim == k + 1:
            return default_layout(k, False)
        sp = default_layout(k, True).spatial
        hint = (f"; for an input without batch and channel axes pass layout={sp!r}"
                if ndim == k and k in SPATIAL_LETTERS else "")
        fail(op, f"expected a {k + 1}-D (unbatched, C{sp}) or {k + 2}-D (batched, NC{sp}) input, "
                 f"got {ndim}-D with shape {shape}{hint}")
    if len(layout.letters) != ndim:
        hint = (f"; for unbatched input drop 'N' (layout={layout.letters.replace('N', '')!r})"
                if layout.batched and len(layout.letters) == ndim + 1 else "")
        fail(op, f"layout={layout.letters!r} names {len(layout.letters)} axes, but the input has "
                 f"{ndim} (shape {shape}){hint}")
    return layout


def check_empty(op: str, lay: Layout, shape: tuple[int, ...], allowed: str) -> None:
    """Only the axes whose letters are in ``allowed`` may have size 0."""
    for letter, size in zip(lay.letters, shape):
        if size == 0 and letter not in allowed:
            what = {"N": "batch", "C": "channel"}.get(letter, "spatial")
            fail(op, f"input of shape {shape} (layout {lay.letters!r}) has an empty {what} "
                     f"axis {letter!r}; only the {' and '.join(allowed)} axes may be empty")


def bind(p: Params, input, *, in_memory: bool = True
         ) -> tuple[np.ndarray, Layout, _geometry.Geometry]:
    """Check ``input`` against ``p``: -> (array, layout, geometry). Raises for every bad input.
    ``in_memory=False`` (a Dask array's stand-in) skips the check that the output fits in
    memory: a lazy output is written block by block."""
    x = check_array(p.op, input, integer_ok=p.mode != "lp")
    lay = resolve_layout(p.op, p.layout, p.k, x.shape)
    spatial = lay.spatial_shape(x.shape)
    # PyTorch allows only an empty batch; the generic ops also allow empty channels
    check_empty(p.op, lay, x.shape, "NC" if p.torch_empty_rule == "any" else "N")
    if p.input_at_least_kernel and any(L < kk for L, kk in zip(spatial, p.kernel)):
        fail(p.op, f"input spatial size {spatial} must be at least kernel_size={p.kernel} in every "
                   f"dim (PyTorch's rule for this op)")
    g = _geometry.windows(spatial, p.kernel, p.stride, p.dilation, p.padding, p.ceil_mode)
    if any(o < 1 for o in g.out_size):
        fail(p.op, f"input spatial size {spatial} gives output size {g.out_size}, which is too "
                   f"small (kernel_size={p.kernel}, stride={p.stride}, dilation={p.dilation}, "
                   f"pads={tuple(zip(g.pad_before, g.pad_after))}, ceil_mode={p.ceil_mode})")
    itemsize = 8 if p.mode == "sum" and x.dtype.kind in "iu" else x.dtype.itemsize
    if in_memory:
        check_fits(p.op, lay, x.shape, g.out_size, itemsize + (8 if p.return_indices else 0))
    if (p.mode == "avg" and not p.count_include_pad and p.divisor_override is None
            and g.has_empty_window):
        fail(p.op, f"with count_include_pad=False some window of input size {spatial} holds no "
                   f"input element (pads={tuple(zip(g.pad_before, g.pad_after))}, dilation="
                   f"{p.dilation}), so its average is undefined; use smaller pads or "
                   f"divisor_override")
    if p.mode in RANK_MODES and g.has_empty_window:
        fail(p.op, f"some window of input size {spatial} holds no input element (pads="
                   f"{tuple(zip(g.pad_before, g.pad_after))}, dilation={p.dilation}), so its "
                   f"{p.mode} is undefined (padded positions never count); use smaller pads")
    return x, lay, g


def normalize_global(op: str, mode: str, input, spatial_dims, layout, engine,
                     rounding="trunc"):
    """Checks for the global pools: -> (array, Params) pooling each whole spatial plane."""
    x = check_array(op, input)
    if spatial_dims is None:
        if layout is not None:
            spatial_dims = sum(c not in "NC" for c in str(layout))
            if spatial_dims == 0:
                fail(op, f"layout={layout!r} names no spatial axis to pool (every letter other "
                         f"than 'N' batch and 'C' channels is a spatial axis)")
        else:
            spatial_dims = x.ndim - 2
            if spatial_dims < 1:
                fail(op, f"input of shape {x.shape} needs (N, C, *spatial) with at least one "
                         f"spatial dim, or spatial_dims/layout to say which axes to pool")
    if spatial_dims is not None:
        check_spatial_dims(op, spatial_dims)
    lay = resolve_layout(op, parse_layout(op, layout, spatial_dims), spatial_dims, x.shape)
    kernel = lay.spatial_shape(x.shape)
    if any(s == 0 for s in kernel):
        fail(op, f"input of shape {x.shape} has an empty spatial axis")
    return x, normalize(op, mode, spatial_dims, kernel, 1, 0, 1, False, layout=lay,
                        engine=engine, torch_empty_rule="any", rounding=rounding)


@functools.lru_cache(maxsize=1)
def memory_bytes() -> int:
    """This machine's physical memory (what an output may at most take)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_fits(op: str, lay: Layout, shape: tuple[int, ...], out_spatial: tuple[int, ...],
               itemsize: int) -> None:
    """Refuse up front an output that could not fit in memory (``itemsize`` bytes an element),
    naming the requested shape, rather than failing inside with internal shapes."""
    out = tuple(out_spatial[lay.spatial.index(c)] if c in lay.spatial else n
                for c, n in zip(lay.letters, shape))
    need = math.prod(out) * itemsize
    have = memory_bytes()
    if need > have:
        fail(op, f"the output would have shape {out} (layout {lay.letters!r}) and need "
                 f"{need / 2**30:,.1f} GiB, more than this machine's {have / 2**30:,.1f} GiB of "
                 f"memory; use a smaller output size, a larger stride or smaller padding")


def check_grad_dtype(op: str, dtype: np.dtype) -> None:
    """Gradients need a floating input, as PyTorch refuses ``requires_grad`` on integer
    tensors: an integer forward has no backward."""
    if np.dtype(dtype).kind != "f":
        fail(op + " backward", f"gradients need a floating input, but the forward saw dtype "
                               f"{np.dtype(dtype)} (integer results are exact but not "
                               f"differentiable); run the forward on x.astype(np.float32) or "
                               f"np.float64 to get a gradient", TypeError)


def check_grad(op: str, dy, output_shape: tuple[int, ...]) -> np.ndarray:
    """``dy`` for a backward pass: a supported array of the forward output's shape."""
    dy = check_array(op + " backward", dy)
    if dy.shape != output_shape:
        fail(op + " backward", f"dy of shape {dy.shape} must have the shape of the last "
                               f"forward's output, {output_shape}")
    return dy


# ----------------------------------------------------------------------------------------------
# the adaptive, unpool and fractional ops
# ----------------------------------------------------------------------------------------------

def bind_plain(op: str, k: int, layout, input, *, empty: str = "N", integer_ok: bool = True):
    """Checks shared by the ops without a fixed window: -> (array, layout). ``empty`` names the
    axes that may have size 0 (PyTorch: the batch; adaptive averages also the channels)."""
    lay_parsed = parse_layout(op, layout, k)
    x = check_array(op, input, integer_ok=integer_ok)
    lay = resolve_layout(op, lay_parsed, k, x.shape)
    check_empty(op, lay, x.shape, empty)
    return x, lay


def adaptive_output_size(op: str, output_size, k: int) -> tuple[int | None, ...]:
    """An int, or ``k`` entries each an int >= 0 or None (keep that dim's input size)."""
    if _is_int(output_size):
        vals = (int(output_size),) * k
    elif isinstance(output_size, (tuple, list)):
        if len(output_size) != k:
            fail(op, f"output_size={output_size!r} must be an int or have {k} entries (one per "
                     f"spatial dim), got {len(output_size)}")
        if not all(v is None or _is_int(v) for v in output_size):
            fail(op, f"output_size={output_size!r}: every entry must be an int or None",
                 TypeError)
        vals = tuple(None if v is None else int(v) for v in output_size)
    else:
        fail(op, f"output_size must be an int or a tuple of {k} ints/None, got "
                 f"{output_size!r} ({type(output_size).__name__})", TypeError)
    for d, v in enumerate(vals):
        if v is not None and v < 0:
            fail(op, f"output_size={output_size!r} must be >= 0 in every dim, got {v} in dim {d}")
    return vals


def check_indices(op: str, indices, shape: tuple[int, ...]) -> np.ndarray:
    """The unpool's indices: an int64 array of the input's shape."""
    try:
        idx = np.asarray(indices)
    except Exception as e:  # noqa: BLE001
        fail(op, f"indices must be a NumPy array of int64 ({e})", TypeError)
    if not idx.dtype.isnative:
        idx = idx.astype(idx.dtype.newbyteorder("="))
    if idx.dtype != np.int64:
        fail(op, f"indices must have dtype int64 (as return_indices gives them), got "
                 f"{idx.dtype}; convert with indices.astype(np.int64)", TypeError)
    if idx.shape != shape:
        fail(op, f"indices of shape {idx.shape} must have the shape of input, {shape}")
    return idx


def unpool_output_size(op: str, lay: Layout, spatial, kernel, stride, pads, output_size, k):
    """PyTorch's rule: default ``(L - 1) * stride + kernel - 2 * padding``; a given size (``k``
    spatial entries, or ``k + 2`` naming a whole output shape) must lie strictly within one
    stride of the default."""
    default = tuple((L - 1) * s + kk - 2 * p for L, s, kk, p in zip(spatial, stride, kernel, pads))
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, (tuple, list)) or not all(_is_int(v) for v in output_size):
            fail(op, f"output_size must be None or a tuple of ints, got {output_size!r}",
                 TypeError)
        sizes = tuple(int(v) for v in output_size)
        whole = len(lay.letters)
        if len(sizes) != k and len(sizes) == whole:          # a whole shape in the layout
            sizes = lay.spatial_shape(sizes)
        elif len(sizes) == k + 2:                             # PyTorch's (N, C, *spatial)
            sizes = sizes[2:]
        if len(sizes) != k:
            fail(op, f"output_size={output_size!r} must have {k} (spatial) or "
                     f"{' or '.join(str(v) for v in sorted({whole, k + 2} - {k}))} (whole shape) "
                     f"entries, got {len(output_size)}")
        for d in range(k):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < sizes[d] < hi:
                fail(op, f"output_size={output_size!r}: spatial dim {d} must be strictly "
                         f"between {lo} and {hi} (the default size {default[d]} plus or minus "
                         f"stride {stride[d]}), got {sizes[d]}")
        out = sizes
    for d, v in enumerate(out):
        if v < 0:
            fail(op, f"output size {out} must be >= 0 in every spatial dim (kernel_size="
                     f"{kernel}, stride={stride}, padding={pads})")
    return out


def check_unpool_indices(op: str, idx: np.ndarray, out_size) -> None:
    plane = 1
    for v in out_size:
        plane *= v
    if idx.size == 0:
        return
    # one pass: seen as unsigned, a negative index is above every plane size
    top = idx.view(np.dtype(f"u{idx.dtype.itemsize}")).max() if idx.dtype.kind == "i" \
        else idx.max()
    if top >= plane:
        bad = (idx < 0) | (idx >= plane)
        first = int(idx[bad].flat[0])
        fail(op, f"indices must lie in [0, {plane}) (flat offsets into each output plane of "
                 f"spatial size {tuple(out_size)}), got {first}")


def fractional_output_size(op: str, k: int, spatial, kernel, output_size, output_ratio):
    """Either ``output_size`` (wins when both are given, as in PyTorch's functional form) or
    ``output_ratio`` in (0, 1): ``int(L * ratio)``; then ``out + kernel - 1 <= L`` (``< L`` in
    3-d: PyTorch's kernels check exactly that)."""
    if output_size is None and output_ratio is None:
        fail(op, "needs output_size or output_ratio (neither was given)")
    if output_size is not None:
        out = int_tuple(op, "output_size", output_size, k, 0)
    else:
        ratios = output_ratio if isinstance(output_ratio, (tuple, list)) else (output_ratio,)
        if len(ratios) not in (1, k) or not all(
                isinstance(r, (int, float, np.integer, np.floating))
                and not isinstance(r, (bool, np.bool_)) for r in ratios):
            fail(op, f"output_ratio must be a float or a tuple of {k} floats, got "
                     f"{output_ratio!r}", TypeError)
        ratios = tuple(float(r) for r in ratios) * (k if len(ratios) == 1 else 1)
        for r in ratios:
            if not 0 < r < 1:
                fail(op, f"output_ratio={output_ratio!r} must be between 0 and 1 (exclusive) "
                         f"in every dim, got {r}")
        out = tuple(int(L * r) for L, r in zip(spatial, ratios))
    # PyTorch's rule: output + kernel - 1 <= input in 2-d, < input in 3-d
    for d in range(k):
        reach = out[d] + kernel[d] - 1
        if reach > spatial[d] or (k == 3 and reach == spatial[d]):
            rule = "<" if k == 3 else "<="
            fail(op, f"output size {out} with kernel_size={kernel} does not fit input spatial "
                     f"size {tuple(spatial)}: PyTorch's {k}-d rule needs output + kernel - 1 "
                     f"{rule} input, but dim {d} has {out[d]} + {kernel[d]} - 1 = {reach} vs "
                     f"{spatial[d]}")
    return out


def check_samples(op: str, samples, n: int, c: int, k: int, dtype: np.dtype) -> np.ndarray:
    """``_random_samples``: shape ``(N' >= N, C, k)``, the interval dtype, values in [0, 1)."""
    try:
        s = np.asarray(samples)
    except Exception as e:  # noqa: BLE001
        fail(op, f"_random_samples must be a NumPy array ({e})", TypeError)
    if not s.dtype.isnative:
        s = s.astype(s.dtype.newbyteorder("="))
    if s.dtype != dtype:
        fail(op, f"_random_samples must have dtype {dtype} (the input's dtype; float64 for "
                 f"integer input), got {s.dtype}", TypeError)
    if s.ndim != 3 or s.shape[0] < n or s.shape[1] != c or s.shape[2] != k:
        fail(op, f"_random_samples of shape {s.shape} must have shape (N, C, {k}) with at least "
                 f"N = {n} rows, C = {c} channels and {k} samples per plane")
    s = s[:n]
    if s.size and not ((s >= 0) & (s < 1)).all():
        fail(op, "_random_samples must lie in [0, 1)")
    return s


def check_rng(op: str, rng):
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        fail(op, f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}",
             TypeError)
    return rng
