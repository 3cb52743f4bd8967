"""Docstring templates for the op families: one text per family, with the number of spatial dims,
their letters and a small doctest filled in, so that the 1-d, 2-d and 3-d front ends cannot drift.
"""
from __future__ import annotations

_LETTERS = {1: "W", 2: "H, W", 3: "D, H, W"}
_SHAPES = {1: "(1, 1, 8)", 2: "(1, 1, 4, 4)", 3: "(1, 1, 2, 2, 2)"}
_SIZES = {1: 8, 2: 16, 3: 8}

_ROUNDING_TEXT_BODY = """\
How an average of integers rounds: ``"trunc"`` (default) toward zero, as PyTorch does;
    ``"nearest"`` to the nearest integer, ties to even (TensorStore's downsampling), from the
    exact sum (no float round trip, exact for 64-bit integers too). Float inputs are unchanged
    by it."""

_LAYOUT_TEXT = """\
layout : str, optional
    Axis letters of input and output, e.g. ``"{nc}"`` (default), ``"{cl}"`` (channels last),
    ``"{ch}"`` (the pooling chapter's layout), or without batch or channel axis: ``"{pl}"`` (a
    single plane), ``"{pl}C"``, ``"{ot}"``. Drop ``N`` for unbatched input, ``C`` for a single
    channel; the output leaves them out too. Every letter other than ``N`` and ``C`` is a
    spatial axis ({k} of them): PyTorch's letters ({sp}) take per-dim tuples, and give indices,
    in {sp} order wherever they stand; any other letters (``"{ot}"``) in the order written."""

_COMMON_PARAMS = """\
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``, with or without the ``N`` and ``C`` axes.
    float16/32/64 or an integer dtype.
kernel_size : int or tuple of {k} ints
stride : int or tuple of {k} ints, optional
    Default ``kernel_size``.
padding : int, tuple of ints, tuple of {k} ``(before, after)`` pairs, "valid", "same", "same_lower"
    An int or tuple pads both sides with at most half the kernel (PyTorch's rule); pairs and
    strings allow any pad >= 0 ("same": output = ceil(in / stride), the odd pad at the end as in
    TensorFlow and ONNX SAME_UPPER; "same_lower": at the start).
{extra}""" + _LAYOUT_TEXT + """
engine : {{"numba", "numpy", "reference"}}, optional
    Default: the fastest available ("numba" when Numba is installed). All engines give the same
    results (max results bit for bit)."""

_SHAPE_NOTE = """\
Shape: ``L_out = floor((L_in + pad_before + pad_after - dilation * (kernel_size - 1) - 1)
/ stride) + 1`` per spatial dim ({sp}), ``ceil`` instead of ``floor`` with ``ceil_mode=True``
(a last window that would start past the input and its left padding is dropped)."""

MAX = """{summary}

``y[n, c, o] = max over taps j of x[n, c, o * stride - pad + j * dilation]`` for every output
position ``o`` ({sp}); padded positions never win.

Parameters
----------
""" + _COMMON_PARAMS + """

Returns
-------
y : ndarray
    Same dtype and layout as ``input``.
indices : ndarray of int64, only with ``return_indices=True``
    Shape and layout of ``y``: for each output, the flat row-major offset of the chosen element
    inside its own ({sp}) input plane (PyTorch's convention; ``max_unpool`` reads it), the
    spatial axes taken in the order per-dim tuples are (see ``layout``).

Raises
------
ValueError, TypeError
    For a bad argument or input, naming the argument, the value and the rule.

Notes
-----
""" + _SHAPE_NOTE + """

Ties and NaN follow PyTorch's CPU kernels: the window is scanned in row-major order and the
running maximum is replaced when ``v > best or isnan(v)``, so the first of tied maxima wins and a
window holding NaN gives NaN with the index of its last NaN. Integer dtypes are exact (PyTorch
rejects integers in ``max_pool1d``; poolnd accepts them). A window lying wholly in padding (only
possible with dilation or large pads) gives -inf (the dtype's minimum for integers) and index -1.

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> poolnd.{name}(x, 2)
{example}
>>> poolnd.{name}(x[0, 0], 2, layout="{pl}")          # one plane, no batch or channel axis
{plain}
"""

AVG = """{summary}

``y[n, c, o] = sum over taps j of x[n, c, o * stride - pad + j * dilation] / divisor`` for every
output position ``o`` ({sp}). The divisor is ``divisor_override`` if given, else the number of
taps inside the padded input (``count_include_pad=True``, PyTorch's default) or inside the input
(``False``: TensorFlow's and ONNX's default meaning).

Parameters
----------
""" + _COMMON_PARAMS + """

Returns
-------
y : ndarray
    Same dtype and layout as ``input``.

Raises
------
ValueError, TypeError
    For a bad argument or input, naming the argument, the value and the rule.

Notes
-----
""" + _SHAPE_NOTE + """

float16 accumulates in float32. Integer inputs sum exactly (int64, two 32-bit digits for 64-bit
inputs) and divide truncating toward zero, as PyTorch does for int64 (PyTorch rejects the other
integer dtypes{f16note}; poolnd accepts them), or round half to even with ``rounding="nearest"``.
``dilation`` (keyword-only) is an extension from ONNX AveragePool.

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> poolnd.{name}(x, 2)
{example}
>>> poolnd.{name}(x[0, 0], 2, layout="{pl}")          # one plane, no batch or channel axis
{plain}
>>> u8 = (x + {off}).astype(np.uint8)                   # window means {means}
>>> poolnd.{name}(u8, 2, rounding="nearest")
{rounded}
"""

_MAX_EXTRA = """\
dilation : int or tuple of {k} ints
    Spacing between taps.
ceil_mode : bool
    Round the output size up instead of down.
return_indices : bool
    Also return PyTorch's int64 indices.
nan_policy : {{"propagate", "omit"}}, keyword-only
    "omit" skips NaN inputs (the max of the rest; NaN where a window holds only NaN; NaN
    inputs get no gradient). Default "propagate": a NaN wins, as in PyTorch.
"""

_AVG_EXTRA = """\
ceil_mode : bool
    Round the output size up instead of down.
count_include_pad : bool
    Whether padded positions count in the divisor (they add 0 to the sum).
divisor_override : int, optional
    Divide every window's sum by this nonzero int instead.
dilation : int or tuple of {k} ints, keyword-only
    Spacing between taps (ONNX AveragePool's ``dilations``).
nan_policy : {{"propagate", "omit"}}, keyword-only
    "omit" averages the non-NaN inputs: the divisor counts them (plus the padded positions
    under ``count_include_pad=True``, never a ceil-mode overhang) unless ``divisor_override``
    is given; NaN where a window holds only NaN; NaN inputs get no gradient. Default
    "propagate": a NaN in the window gives NaN.
rounding : {{"trunc", "nearest"}}, keyword-only
""" + "    " + _ROUNDING_TEXT_BODY + """
"""

EXAMPLES: dict = {}


def fill(template: str, name: str, k: int, summary: str, extra: str, example: str,
         plain: str, f16note: str = "", rounded: tuple = ("", "", "")) -> str:
    off, means, rounded = rounded
    return template.format(
        summary=summary, sp=_LETTERS[k], k=k, name=name, n=_SIZES[k], shape=_SHAPES[k],
        example=_blank(example), plain=_blank(plain), extra=extra.format(k=k), f16note=f16note,
        off=off, means=means, rounded=_blank(rounded), **_layout_fill(k))


def max_doc(k: int, example: str, plain: str) -> str:
    return fill(MAX, f"max_pool{k}d", k, f"{k}-d max pooling of (N, C, {_LETTERS[k]}) arrays.",
                _MAX_EXTRA, example, plain)


def avg_doc(k: int, example: str, plain: str, rounded: tuple) -> str:
    """``rounded``: ``(offset, the window means it gives, the doctest's rounded output)``."""
    return fill(AVG, f"avg_pool{k}d", k, f"{k}-d average pooling of (N, C, {_LETTERS[k]}) arrays.",
                _AVG_EXTRA, example, plain, ", and float16 in 3-d" if k == 3 else "", rounded)


# ----------------------------------------------------------------------------------------------
# the rest of the family: LP, adaptive, unpool, fractional
# ----------------------------------------------------------------------------------------------

_LAYOUT_PARAMS = _LAYOUT_TEXT + """
engine : {{"numba", "numpy", "reference"}}, optional
    Default: the fastest available. All engines give the same results."""

LP = """{k}-d power-average (LP) pooling of (N, C, {sp}) arrays: the p-norm of every window.

``y = (sum over the window of |x|**p) ** (1/p)``; ``norm_type=inf`` gives ``max |x|``. For
inputs >= 0 this equals PyTorch's ``lp_pool{k}d``, which computes it as
``(avg_pool(x**p) * K) ** (1/p)`` (``K`` taps per window): a ceil-mode window cut short by the
end of the input is therefore scaled by ``K / (taps inside)``, and so it is here. For negative
inputs poolnd uses ``|x|`` (ONNX LpPool's definition) where PyTorch's ``x**p`` gives NaN or a
signed sum.

Parameters
----------
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``, with or without ``N`` and ``C``. float16/32/64
    (integers are rejected: the norm is not an integer).
norm_type : float
    ``p > 0``, or ``inf``. ``p = 0`` is rejected with ValueError.
kernel_size : int or tuple of {k} ints
stride : int or tuple of {k} ints, optional
    Default ``kernel_size``.
ceil_mode : bool
    Round the output size up instead of down.
dilation : int or tuple of {k} ints, keyword-only
    Spacing between taps (ONNX LpPool's ``dilations``). Padding is in :func:`poolnd.pool`
    (mode "lp").
""" + _LAYOUT_PARAMS + """

Returns
-------
y : ndarray, same dtype and layout as ``input`` (float16 computes in float32)

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> poolnd.lp_pool{k}d(x, 1, 2)
{example}
"""

ADAPTIVE = """{k}-d adaptive {what} pooling of (N, C, {sp}) arrays: the output has
``output_size`` whatever the input size.

Output position ``o`` of a dim with input length ``L`` and output length ``O`` pools the
input interval ``[floor(o * L / O), ceil((o + 1) * L / O))``, PyTorch's rule; neighbouring
windows may overlap. {rule}

Parameters
----------
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``, with or without ``N`` and ``C``. float16/32/64 or
    an integer dtype{intnote}.
output_size : int or tuple of {k} entries, each an int >= 0 or None
    None keeps that dim's input size (also in 1-d, where PyTorch refuses None).
{extra}""" + _LAYOUT_PARAMS + """

Returns
-------
y : ndarray, same dtype and layout as ``input``
{ret}
Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> poolnd.adaptive_{what}_pool{k}d(x, {osize})
{example}
"""

UNPOOL = """{k}-d max unpooling: the partial inverse of ``max_pool{k}d``.

Returns zeros of the output size with every element of ``input`` written at its index:
``y[n, c].flat[indices[n, c, o]] = input[n, c, o]``. Where indices repeat, the last in row-major
order wins, deterministically (PyTorch's CPU kernel writes repeats from several threads, so
which one lands there is unspecified; indices from a max pool with stride >= kernel never
repeat).

Parameters
----------
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``, with or without ``N`` and ``C``. float16/32/64 or
    an integer dtype (PyTorch rejects integers; poolnd accepts them).
indices : ndarray of int64, the shape of ``input``
    Flat offsets into each output plane, in ``input``'s layout and spatial order, as
    ``max_pool{k}d(..., return_indices=True, layout=...)`` returns them; ONNX's whole-tensor
    indices convert with :func:`poolnd.indices_from_flat`. An index outside the plane is a
    ValueError.
kernel_size, stride, padding : int or tuple of {k} ints
    Those of the max pool being inverted; ``stride`` defaults to ``kernel_size``.
output_size : tuple of ints, optional
    The spatial size ({k} ints, in the order per-dim tuples take) or the whole output shape
    (``(N, C, {sp})``, or as many ints as ``layout`` names axes, in its order). Default
    ``(L - 1) * stride + kernel_size - 2 * padding``; a given size must lie strictly within one
    stride of that (PyTorch's rule), which resolves the ambiguity of ``max_pool``'s floor.
""" + _LAYOUT_PARAMS + """

Returns
-------
y : ndarray, same dtype and layout as ``input``

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> y, i = poolnd.max_pool{k}d(x, 2, return_indices=True)
>>> poolnd.max_unpool{k}d(y, i, 2)
{example}
"""

FRACTIONAL = """{k}-d fractional max pooling (Graham, 2014) of (N, C, {sp}) arrays.

Windows of ``kernel_size`` start at pseudo-random positions so that the output has
``output_size`` (or ``int(L * output_ratio)``) for any ratio between 1/2 and 1. The starts come
from one sample ``u`` in [0, 1) per plane and dim, exactly as PyTorch computes them:
``alpha = (L - k) / (O - 1)``, ``start[i] = int((i + u) * alpha) - int(u * alpha)`` and
``start[O - 1] = L - k``, every operation in the input's dtype (float64 for integer input).
``_random_samples[..., j]`` drives {mapping}, as in PyTorch; with other
spatial letters, the same positions in the order written ({mapping_other}).

Parameters
----------
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``, with or without ``N`` and ``C``. float16/32/64 or
    an integer dtype.
kernel_size : int or tuple of {k} ints
output_size : int or tuple of {k} ints, optional
    Needs ``output + kernel_size - 1 {rule} input`` per dim (PyTorch's {k}-d rule). Wins over
    ``output_ratio``.
output_ratio : float or tuple of {k} floats, optional
    In (0, 1): ``output = int(input * ratio)``.
return_indices : bool
    Also return int64 indices (flat offset of the chosen element in its input plane).
_random_samples : ndarray, shape ``(N, C, {k})``, optional
    The samples, in the input's dtype (float64 for integer input), each in [0, 1). Always
    PyTorch's three axes, a missing batch or channel axis counting as size 1: unbatched input
    takes ``(1, C, {k})``, a layout without ``C`` ``(N, 1, {k})``, a single ``"{pl}"`` plane
    ``(1, 1, {k})``.
""" + _LAYOUT_PARAMS + """
rng : numpy.random.Generator, optional, keyword-only
    Draws the samples when ``_random_samples`` is None (default: a fresh
    ``numpy.random.default_rng()``).

Returns
-------
y : ndarray, or ``(y, indices)`` with ``return_indices=True``

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> u = np.full((1, 1, {k}), 0.5)
>>> poolnd.fractional_max_pool{k}d(x, 2, output_size={osize}, _random_samples=u)
{example}
>>> poolnd.fractional_max_pool{k}d(x[0, 0], 2, output_size={osize}, _random_samples=u,
...                               layout="{pl}").shape    # one plane: samples (1, 1, {k})
{plshape}
"""

_FR_SHAPES = {2: "(1, 1, 5, 5)", 3: "(1, 1, 4, 4, 4)"}
_FR_SIZES = {2: 25, 3: 64}


def _blank(example: str) -> str:
    return example.replace("\n\n", "\n<BLANKLINE>\n")


_OTHER = {1: "X", 2: "YX", 3: "ZYX"}


def _layout_fill(k: int) -> dict:
    letters = _LETTERS[k].replace(", ", "")
    return dict(nc="NC" + letters, cl="N" + letters + "C", ch=letters + "CN", pl=letters,
                ot=_OTHER[k])


def lp_doc(k: int, example: str) -> str:
    return LP.format(k=k, sp=_LETTERS[k], n=_SIZES[k], shape=_SHAPES[k], example=_blank(example),
                     **_layout_fill(k))


def adaptive_doc(k: int, what: str, example: str) -> str:
    if what == "max":
        rule = ("Ties and NaN as in :func:`poolnd.max_pool{k}d`: the first maximum in row-major "
                "window order wins, and a window holding NaN gives its last NaN.").format(k=k)
        extra = ("return_indices : bool\n    Also return int64 indices (flat offset of the "
                 "chosen element in its input plane).\n")
        ret = ("indices : ndarray of int64, only with ``return_indices=True``\n")
        intnote = ""
    else:
        rule = ("float16 accumulates in float32; integers sum exactly and divide truncating "
                "toward zero, or round half to even with ``rounding=\"nearest\"``.")
        extra, ret = ("rounding : {\"trunc\", \"nearest\"}, keyword-only\n    "
                      + _ROUNDING_TEXT_BODY + "\n"), ""
        intnote = " (PyTorch rejects integers; poolnd accepts them)"
    osize = "2" if k != 3 else "(1, 1, 1)"
    return ADAPTIVE.format(k=k, what=what, sp=_LETTERS[k], n=_SIZES[k], shape=_SHAPES[k],
                           example=_blank(example), rule=rule, extra=extra, ret=ret, intnote=intnote,
                           osize=osize, **_layout_fill(k))


def unpool_doc(k: int, example: str) -> str:
    return UNPOOL.format(k=k, k2=k + 2, sp=_LETTERS[k], n=_SIZES[k], shape=_SHAPES[k],
                         example=_blank(example), **_layout_fill(k))


def fractional_doc(k: int, example: str) -> str:
    mapping = "W for j = 0 and H for j = 1" if k == 2 else "D, H, W for j = 0, 1, 2"
    mapping_other = ('X for j = 0 and Y for j = 1 in ``"YX"``' if k == 2 else
                     'Z, Y, X for j = 0, 1, 2 in ``"ZYX"``')
    osize = "3" if k == 2 else "2"
    return FRACTIONAL.format(k=k, sp=_LETTERS[k], n=_FR_SIZES[k], shape=_FR_SHAPES[k],
                             example=_blank(example), mapping=mapping,
                             mapping_other=mapping_other, plshape=(int(osize),) * k,
                             rule="<=" if k == 2 else "<", osize=osize, **_layout_fill(k))
