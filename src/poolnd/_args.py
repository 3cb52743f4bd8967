"""Argument normalization and every user-facing check.

Everything a user passes is turned here, once, into plain hashable values: per-dim int tuples,
``(before, after)`` pad pairs or a "same" rule, a parsed :class:`~poolnd._layout.Layout`, a checked
array. Every ``ValueError``/``TypeError`` poolnd raises for bad input is raised from this module,
through :func:`fail`, and names the op, the argument, the value and the rule. Nothing here computes a
pooling result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _geometry
from ._layout import SPATIAL_LETTERS, Layout

__all__ = ["Params", "normalize", "bind", "fail", "check_array", "check_bool", "check_engine"]

MODES = ("max", "min", "avg", "sum")
PAD_STRINGS = ("valid", "same", "same_lower")
_EXTRA_LETTERS = "ABEFGIJKLMOPQRSTUVXYZ"   # default names of spatial dims beyond D, H, W


def fail(op: str, message: str, exc: type[Exception] = ValueError):
    """Raise ``exc("<op>: <message>")``: the one formatter of every user-facing error."""
    raise exc(f"{op}: {message}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_bool(op: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        fail(op, f"{name} must be a bool, got {value!r} ({type(value).__name__})", TypeError)
    return bool(value)


def int_tuple(op: str, name: str, value, k: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of 1 or ``k`` ints -> a ``k``-tuple of ints ``>= minimum``."""
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


def _padding(op: str, padding, k: int, kernel: tuple[int, ...]):
    """-> a tuple of ``(before, after)`` pairs or ``"same"``/``"same_lower"``."""
    if isinstance(padding, str):
        if padding not in PAD_STRINGS:
            fail(op, f"padding={padding!r} must be an int, a tuple of ints, a tuple of "
                     f"(before, after) pairs, or one of {PAD_STRINGS}")
        return ((0, 0),) * k if padding == "valid" else padding
    is_pairs = (isinstance(padding, (tuple, list)) and len(padding) > 0
                and all(isinstance(p, (tuple, list)) for p in padding))
    if is_pairs:
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
    if layout is None:
        return None
    if not isinstance(layout, str):
        fail(op, f"layout must be a string such as 'NCHW' or 'NHWC' or None, got {layout!r}",
             TypeError)
    if not layout.isalpha() or not layout.isupper() or len(set(layout)) != len(layout):
        fail(op, f"layout={layout!r} must be distinct upper-case letters, one per axis")
    if "C" not in layout:
        fail(op, f"layout={layout!r} must name the channel axis 'C'")
    spatial = "".join(c for c in layout if c not in "NC")
    if len(spatial) != k:
        fail(op, f"layout={layout!r} names {len(spatial)} spatial axes ({spatial!r}), but the op "
                 f"pools {k} spatial dims")
    if k in SPATIAL_LETTERS:
        if set(spatial) != set(SPATIAL_LETTERS[k]):
            fail(op, f"layout={layout!r}: the {k} spatial axes must be named "
                     f"{SPATIAL_LETTERS[k]!r} (in any order), got {spatial!r}")
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
    """``numpy.asarray(input)`` with a supported dtype: float16/32/64, and the integer dtypes."""
    try:
        x = np.asarray(input)
    except Exception as e:  # noqa: BLE001 - anything asarray refuses is the user's type error
        fail(op, f"input must be a NumPy array or convertible to one ({e})", TypeError)
    kind = x.dtype.kind
    ok = (kind == "f" and x.dtype.itemsize <= 8) or (integer_ok and kind in "iu")
    if not ok:
        allowed = "float16, float32, float64" + (" or an integer dtype" if integer_ok else "")
        fail(op, f"input dtype {x.dtype} is not supported; use {allowed}", TypeError)
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


def normalize(op: str, mode: str, k: int, kernel_size, stride=None, padding=0, dilation=1,
              ceil_mode=False, *, layout=None, return_indices=False, count_include_pad=True,
              divisor_override=None, engine=None, torch_empty_rule="batch",
              input_at_least_kernel=False) -> Params:
    """Check and normalize everything but the input array."""
    if mode not in MODES:
        fail(op, f"mode={mode!r} must be one of {MODES}")
    if not _is_int(k) or k < 1:
        fail(op, f"spatial_dims={k!r} must be an int >= 1")
    kernel = int_tuple(op, "kernel_size", kernel_size, k, 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        strides = kernel
    else:
        strides = int_tuple(op, "stride", stride, k, 1)
    dil = int_tuple(op, "dilation", dilation, k, 1)
    pads = _padding(op, padding, k, kernel)
    ceil_mode = check_bool(op, "ceil_mode", ceil_mode)
    return_indices = check_bool(op, "return_indices", return_indices)
    count_include_pad = check_bool(op, "count_include_pad", count_include_pad)
    if divisor_override is not None and mode != "avg":
        fail(op, f"divisor_override={divisor_override!r} applies to mode 'avg' only, got "
                 f"mode={mode!r}")
    if return_indices and mode not in ("max", "min"):
        fail(op, f"return_indices=True needs mode 'max' or 'min', got mode={mode!r}")
    if divisor_override is not None:
        if not _is_int(divisor_override):
            fail(op, f"divisor_override must be an int or None, got {divisor_override!r}",
                 TypeError)
        if divisor_override == 0:
            fail(op, "divisor_override=0 must not be zero")
        divisor_override = int(divisor_override)
    return Params(op, mode, k, kernel, strides, dil, pads, ceil_mode, parse_layout(op, layout, k),
                  return_indices, count_include_pad, divisor_override, check_engine(op, engine),
                  torch_empty_rule, input_at_least_kernel)


def resolve_layout(op: str, layout: Layout | None, k: int, shape: tuple[int, ...]) -> Layout:
    ndim = len(shape)
    if layout is None:
        if ndim == k + 2:
            return default_layout(k, True)
        if ndim == k + 1:
            return default_layout(k, False)
        sp = default_layout(k, True).spatial
        fail(op, f"expected a {k + 1}-D (unbatched, C{sp}) or {k + 2}-D (batched, NC{sp}) input, "
                 f"got {ndim}-D with shape {shape}")
    if len(layout.letters) != ndim:
        hint = (f"; for unbatched input drop 'N' (layout={layout.letters.replace('N', '')!r})"
                if layout.batched and len(layout.letters) == ndim + 1 else "")
        fail(op, f"layout={layout.letters!r} names {len(layout.letters)} axes, but the input has "
                 f"{ndim} (shape {shape}){hint}")
    return layout


def bind(p: Params, input) -> tuple[np.ndarray, Layout, _geometry.Geometry]:
    """Check ``input`` against ``p``: -> (array, layout, geometry). Raises for every bad input."""
    x = check_array(p.op, input)
    lay = resolve_layout(p.op, p.layout, p.k, x.shape)
    spatial = lay.spatial_shape(x.shape)
    n, c = lay.batch_channels(x.shape)
    # PyTorch allows only an empty batch; the generic ops also allow empty channels
    zero_ok = "NC" if p.torch_empty_rule == "any" else "N"
    for letter, size in zip(lay.letters, x.shape):
        if size == 0 and letter not in zero_ok:
            what = {"N": "batch", "C": "channel"}.get(letter, "spatial")
            fail(p.op, f"input of shape {x.shape} (layout {lay.letters!r}) has an empty {what} "
                       f"axis {letter!r}; only the {' and '.join(zero_ok)} axes may be empty")
    if p.input_at_least_kernel and any(L < kk for L, kk in zip(spatial, p.kernel)):
        fail(p.op, f"input spatial size {spatial} must be at least kernel_size={p.kernel} in every "
                   f"dim (PyTorch's rule for this op)")
    g = _geometry.windows(spatial, p.kernel, p.stride, p.dilation, p.padding, p.ceil_mode)
    if any(o < 1 for o in g.out_size):
        fail(p.op, f"input spatial size {spatial} gives output size {g.out_size}, which is too "
                   f"small (kernel_size={p.kernel}, stride={p.stride}, dilation={p.dilation}, "
                   f"pads={tuple(zip(g.pad_before, g.pad_after))}, ceil_mode={p.ceil_mode})")
    if (p.mode == "avg" and not p.count_include_pad and p.divisor_override is None
            and g.has_empty_window):
        fail(p.op, f"with count_include_pad=False some window of input size {spatial} holds no "
                   f"input element (pads={tuple(zip(g.pad_before, g.pad_after))}, dilation="
                   f"{p.dilation}), so its average is undefined; use smaller pads or "
                   f"divisor_override")
    return x, lay, g


def normalize_global(op: str, mode: str, input, spatial_dims, layout, engine):
    """Checks for the global pools: -> (array, Params) pooling each whole spatial plane."""
    x = check_array(op, input)
    if spatial_dims is None:
        if layout is not None:
            spatial_dims = sum(c not in "NC" for c in str(layout))
        else:
            spatial_dims = x.ndim - 2
            if spatial_dims < 1:
                fail(op, f"input of shape {x.shape} needs (N, C, *spatial) with at least one "
                         f"spatial dim, or spatial_dims/layout to say which axes to pool")
    if not _is_int(spatial_dims) or spatial_dims < 1:
        fail(op, f"spatial_dims={spatial_dims!r} must be None or an int >= 1")
    lay = resolve_layout(op, parse_layout(op, layout, spatial_dims), spatial_dims, x.shape)
    kernel = lay.spatial_shape(x.shape)
    if any(s == 0 for s in kernel):
        fail(op, f"input of shape {x.shape} has an empty spatial axis")
    return x, normalize(op, mode, spatial_dims, kernel, 1, 0, 1, False, layout=lay.letters,
                        engine=engine, torch_empty_rule="any")


def check_grad(op: str, dy, output_shape: tuple[int, ...]) -> np.ndarray:
    """``dy`` for a backward pass: a supported array of the forward output's shape."""
    dy = check_array(op + " backward", dy)
    if dy.shape != output_shape:
        fail(op + " backward", f"dy of shape {dy.shape} must have the shape of the last "
                               f"forward's output, {output_shape}")
    return dy
