"""Docstring templates for the op families: one text per family, with the number of spatial dims,
their letters and a small doctest filled in, so that the 1-d, 2-d and 3-d front ends cannot drift.
"""
from __future__ import annotations

_LETTERS = {1: "W", 2: "H, W", 3: "D, H, W"}
_SHAPES = {1: "(1, 1, 8)", 2: "(1, 1, 4, 4)", 3: "(1, 1, 2, 2, 2)"}
_SIZES = {1: 8, 2: 16, 3: 8}

_COMMON_PARAMS = """\
input : array_like, shape ``(N, C, {sp})`` or ``(C, {sp})``
    Or any axis order named by ``layout``. float16/32/64 or an integer dtype.
kernel_size : int or tuple of {k} ints
stride : int or tuple of {k} ints, optional
    Default ``kernel_size``.
padding : int, tuple of ints, tuple of {k} ``(before, after)`` pairs, "valid", "same", "same_lower"
    An int or tuple pads both sides with at most half the kernel (PyTorch's rule); pairs and
    strings allow any pad >= 0 ("same": output = ceil(in / stride), the odd pad at the end as in
    TensorFlow and ONNX SAME_UPPER; "same_lower": at the start).
{extra}layout : str, optional
    Axis letters of input and output, e.g. ``"{nc}"`` (default), ``"{cl}"`` (channels last) or
    ``"{ch}"`` (the pooling chapter's layout). Drop ``N`` for unbatched input.
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
    Shape of ``y``: for each output, the flat row-major offset of the chosen element inside its
    own ({sp}) input plane (PyTorch's convention; ``max_unpool`` reads it).

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

float16 accumulates in float32. Integer inputs sum in int64 and divide truncating toward zero, as
PyTorch does for int64 (PyTorch rejects the other integer dtypes{f16note}; poolnd accepts them).
``dilation`` (keyword-only) is an extension from ONNX AveragePool.

Examples
--------
>>> import numpy as np, poolnd
>>> x = np.arange({n}.0).reshape{shape}
>>> poolnd.{name}(x, 2)
{example}
"""

_MAX_EXTRA = """\
dilation : int or tuple of {k} ints
    Spacing between taps.
ceil_mode : bool
    Round the output size up instead of down.
return_indices : bool
    Also return PyTorch's int64 indices.
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
"""

EXAMPLES: dict = {}


def fill(template: str, name: str, k: int, summary: str, extra: str, example: str,
         f16note: str = "") -> str:
    sp = _LETTERS[k]
    letters = sp.replace(", ", "")
    return template.format(
        summary=summary, sp=sp, k=k, name=name, n=_SIZES[k], shape=_SHAPES[k], example=example,
        extra=extra.format(k=k), nc="NC" + letters, cl="N" + letters + "C", ch=letters + "CN",
        f16note=f16note)


def max_doc(k: int, example: str) -> str:
    return fill(MAX, f"max_pool{k}d", k, f"{k}-d max pooling of (N, C, {_LETTERS[k]}) arrays.",
                _MAX_EXTRA, example)


def avg_doc(k: int, example: str) -> str:
    return fill(AVG, f"avg_pool{k}d", k, f"{k}-d average pooling of (N, C, {_LETTERS[k]}) arrays.",
                _AVG_EXTRA, example, ", and float16 in 3-d" if k == 3 else "")
