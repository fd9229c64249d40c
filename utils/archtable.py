"""Parameter count and multiply-adds per image of a network written as a layer table.

A layer table is a list of rows (dicts; :func:`read_table` reads one from a CSV file), one
per line of a paper's architecture table. Values may be ints or strings; "" means default.
The first row is ``kind=input`` with ``out="HxWxC"``. Columns by kind, [default]:

- ``conv``: ``out`` filters, ``kernel``, ``stride`` [1], ``padding`` ["valid"; "same"; or an
  int added on each side], ``groups`` [1] or ``connections``, the number of wired (input map,
  output map) pairs as in LeNet-5's C3 [all], ``bias`` [1], ``bn`` [0] (a BatchNormalization
  after it: 4 numbers per channel, as Keras counts gamma, beta, moving mean and variance).
- ``maxpool``/``avgpool``: ``kernel``, ``stride`` [kernel], ``padding``; ``gap``: global average
  pooling to a vector; ``subsample``: LeNet's pooling, times a trained coefficient plus a
  trained bias per map (2 parameters per map).
- ``fc``: ``out`` units, ``bias`` [1], ``bn`` [0]; a spatial input is flattened first.
- ``inception``: ``out="n1/r3/n3/r5/n5/pp"``, the columns of Szegedy et al. (2015), Table 1:
  1x1 convs; 1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3 max pool then 1x1 projection.
- ``bottleneck``: ``out="a/b/c"``, He et al. (2016), Table 1: 1x1 a (it takes the ``stride``),
  3x3 b, 1x1 c, and a 1x1 projection shortcut when the block changes the shape.
- ``lrn``, ``dropout``, ``relu``, ``softmax``, ``flatten``: no parameters, no multiply-adds.

Any row may have ``repeat`` [1]; only its first repetition strides. Multiply-adds count the
weight multiplications (conv, fc, subsample) of one forward pass of one image; pooling,
normalisation, activations and additions are not counted, as in the papers.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

FREE = {"lrn", "dropout", "relu", "softmax", "flatten"}
KINDS = {"input", "conv", "maxpool", "avgpool", "gap", "subsample", "fc", "inception"}
KINDS |= {"bottleneck"} | FREE


@dataclass
class LayerCount:
    """One row: output ``shape`` (H, W, C) or (units,), and its weight-layer ``depth``."""

    layer: str
    kind: str
    shape: tuple
    params: int
    mult_adds: int
    depth: int


@dataclass
class Summary:
    """Totals; ``depth`` counts the weight layers along the longest path."""

    layers: list[LayerCount] = field(default_factory=list)
    params: int = 0
    mult_adds: int = 0
    depth: int = 0


def read_table(path: str | Path) -> list[dict]:
    """Read a CSV file with a header row (a layer table or another data file): a dict per row."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _int(row: dict, key: str, where: str, default: int | None = None, low: int = 1) -> int:
    value = row.get(key)
    if _blank(value):
        if default is None:
            raise ValueError(f"{where}: column {key!r} is required for kind {row['kind']!r}.")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{where}: {key}={value!r} should be an int or a string of digits.")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{where}: {key}={value!r} should be a whole number.") from None
    if number < low:
        raise ValueError(f"{where}: {key}={number} should be at least {low}.")
    return number


def _ints(row: dict, where: str, count: int) -> list[int]:
    parts = str(row.get("out", "")).replace("x", "/").split("/")
    if len(parts) != count or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"{where}: out={row.get('out')!r} should be {count} positive whole numbers "
            "separated by '/' ('x' for the input shape)."
        )
    return [int(p) for p in parts]


def _side(size: int, kernel: int, stride: int, padding, where: str) -> int:
    """Output length along one axis: ceil(size/stride) for "same", else with padding p
    on each side (p = 0 for "valid"): floor((size + 2p - kernel) / stride) + 1."""
    if isinstance(padding, str) and padding.strip().lower() == "same":
        return math.ceil(size / stride)
    if _blank(padding) or (isinstance(padding, str) and padding.strip().lower() == "valid"):
        padding = 0
    pad = _int({"kind": "padding", "padding": padding}, "padding", where, low=0)
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"{where}: a {kernel}x{kernel} window with padding {pad} does not fit "
            f"a {size}x{size} input."
        )
    return out


def _conv(shape, filters, kernel, stride, padding, bias, bn, where, groups=1, pairs=None):
    """Output shape, parameters and multiply-adds of one convolution on (H, W, C)."""
    if len(shape) != 3:
        raise ValueError(f"{where}: a convolution needs an (H, W, C) input, got {shape}.")
    if shape[2] % groups or filters % groups:
        raise ValueError(
            f"{where}: groups={groups} should divide both the {shape[2]} input "
            f"channels and the {filters} filters."
        )
    pairs = pairs or shape[2] * filters // groups
    side = [_side(n, kernel, stride, padding, where) for n in shape[:2]]
    params = kernel * kernel * pairs + filters * bias + 4 * filters * bn
    return (*side, filters), params, side[0] * side[1] * kernel * kernel * pairs


def _row(row: dict, shape: tuple, where: str) -> tuple[tuple, int, int, int]:
    """Output shape, parameters, multiply-adds and depth of one row, applied once."""
    kind, padding = row["kind"], row.get("padding")
    stride = _int(row, "stride", where, default=1)
    bias, bn = _int(row, "bias", where, 1, low=0), _int(row, "bn", where, 0, low=0)
    if bias > 1 or bn > 1:
        raise ValueError(f"{where}: bias and bn should be 0 or 1, got bias={bias}, bn={bn}.")
    if kind == "conv":
        groups = _int(row, "groups", where, default=1)
        pairs = _int(row, "connections", where, default=0, low=0) or None
        if pairs and groups != 1:
            raise ValueError(f"{where}: give either groups or connections, not both.")
        filters, kernel = _int(row, "out", where), _int(row, "kernel", where)
        return (*_conv(shape, filters, kernel, stride, padding, bias, bn, where, groups, pairs), 1)
    if kind == "fc":
        units, inputs = _int(row, "out", where), math.prod(shape)
        return (units,), inputs * units + units * bias + 4 * units * bn, inputs * units, 1
    if kind in ("maxpool", "avgpool", "subsample"):
        if len(shape) != 3:
            raise ValueError(f"{where}: pooling needs an (H, W, C) input, got {shape}.")
        kernel = _int(row, "kernel", where)
        stride = _int(row, "stride", where, default=kernel)
        out = (*[_side(n, kernel, stride, padding, where) for n in shape[:2]], shape[2])
        return (out, 2 * shape[2], math.prod(out), 1) if kind == "subsample" else (out, 0, 0, 0)
    if kind in ("gap", "flatten"):
        return ((shape[-1],) if kind == "gap" else (math.prod(shape),)), 0, 0, 0
    if kind in FREE:
        return shape, 0, 0, 0
    if kind == "inception":
        n1, r3, n3, r5, n5, pool_proj = _ints(row, where, 6)
        branches = [(shape, n1, 1), (shape, r3, 1), ((*shape[:2], r3), n3, 3)]
        branches += [(shape, r5, 1), ((*shape[:2], r5), n5, 5), (shape, pool_proj, 1)]
        counts = [_conv(s, f, k, 1, "same", bias, bn, where) for s, f, k in branches]
        out = (*shape[:2], n1 + n3 + n5 + pool_proj)
        return out, sum(c[1] for c in counts), sum(c[2] for c in counts), 2
    # bottleneck: the stride sits on the first 1x1 convolution, as in Keras and Caffe.
    reduce, middle, expand = _ints(row, where, 3)
    counts = [_conv(shape, reduce, 1, stride, "valid", bias, bn, where)]
    counts.append(_conv(counts[0][0], middle, 3, 1, "same", bias, bn, where))
    counts.append(_conv(counts[1][0], expand, 1, 1, "valid", bias, bn, where))
    if counts[2][0] != shape:
        counts.append(_conv(shape, expand, 1, stride, "valid", bias, bn, where))
    return counts[2][0], sum(c[1] for c in counts), sum(c[2] for c in counts), 3


def count(table: list[dict]) -> Summary:
    """Count the parameters and multiply-adds per image of the network a table describes.

    Args:
        table: rows as in the module docstring, the first ``{"kind": "input", "out": "HxWxC"}``.

    Returns:
        :class:`Summary`: one :class:`LayerCount` per row (a repeated row gives the shape
        after its last repetition and the sums over all of them) and the network's totals.

    Raises:
        TypeError: ``table`` is not a list of dicts, or a value is neither an int nor a string.
        ValueError: an unknown kind, a missing or malformed value, or a window that does not fit.
    """
    if not isinstance(table, (list, tuple)) or not all(isinstance(r, dict) for r in table):
        raise TypeError(f"table should be a list of dicts (rows), got {type(table).__name__}.")
    if not table or table[0].get("kind") != "input":
        raise ValueError("table should start with a row of kind 'input' (out='HxWxC').")
    summary, shape = Summary(), ()
    for index, row in enumerate(table):
        kind, where = row.get("kind"), f"row {index} ({row.get('layer') or row.get('kind')!r})"
        if kind not in KINDS:
            raise ValueError(f"{where}: kind={kind!r} is not one of {sorted(KINDS)}.")
        if kind == "input":
            if index:
                raise ValueError(f"{where}: only the first row may be of kind 'input'.")
            shape = tuple(_ints(row, where, 3))
            summary.layers.append(LayerCount(row.get("layer") or kind, kind, shape, 0, 0, 0))
            continue
        params = mult_adds = depth = 0
        for time in range(_int(row, "repeat", where, default=1)):
            step = row if time == 0 else {**row, "stride": 1}
            shape, more_params, more_mult_adds, more_depth = _row(step, shape, where)
            params, mult_adds = params + more_params, mult_adds + more_mult_adds
            depth += more_depth
        summary.layers.append(
            LayerCount(row.get("layer") or kind, kind, shape, params, mult_adds, depth)
        )
        summary.params += params
        summary.mult_adds += mult_adds
        summary.depth += depth
    return summary


def model_mult_adds(model) -> int:
    """Multiply-adds per image of a built Keras model, counted as :func:`count` does.

    Conv2D (grouped too), DepthwiseConv2D, SeparableConv2D and Dense layers are counted, also
    inside nested models: a kernel's weights times the output positions it is applied at.
    Pooling, normalisation, activations and additions are free, as in the papers.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += model_mult_adds(layer)
            continue
        kernels = [w for w in layer.weights if w.path.endswith("kernel")]
        if not kernels:
            continue
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.SeparableConv2D, keras.layers.Dense)):
            raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) has a kernel but "
                            "model_mult_adds does not know how to count it.")
        positions = math.prod(layer.output.shape[1:-1])  # output positions, batch axis excluded
        total += positions * sum(math.prod(w.shape) for w in kernels)
    return total
