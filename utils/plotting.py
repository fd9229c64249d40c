"""Figures for lectures and labs. Every function returns a ``matplotlib.figure.Figure``.

Figures are made directly (not through ``pyplot``), so nothing global changes
and a notebook shows each one exactly once: as the value of the cell. They are
:class:`CourseFigure` objects, a ``Figure`` that renders itself as PNG in Jupyter
whatever backend is active.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class CourseFigure(Figure):
    """A ``Figure`` that Jupyter can display without pyplot (via ``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        FigureCanvasAgg(self).print_png(buffer)
        return buffer.getvalue()


def _grid(count: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, count))
    return math.ceil(count / ncols), ncols


def _as_images(images, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(
            f"{what} should have shape (N, H, W), (N, H, W, 1) or (N, H, W, 3), got {images.shape}."
        )
    return images


def image_grid(
    images,
    labels: Sequence | None = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """Show images ``(N, H, W[, C])`` in a grid, each titled with its label.

    Args:
        images: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)``, values in [0, 1] or 0..255.
        labels: ``(N,)`` integer labels or strings, optional.
        class_names: maps integer labels to names.
        ncols: images per row.
    """
    images = _as_images(images, "images")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images.")
    rows, cols = _grid(len(images), ncols)
    fig = CourseFigure(figsize=(1.4 * cols, 1.5 * rows + (0.4 if title else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap=cmap if images.ndim == 3 else None)
        if labels is not None:
            label = labels[i]
            if class_names is not None and not isinstance(label, str):
                label = class_names[int(label)]
            ax.set_title(str(label), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(
    history, metrics: Sequence[str] = ("loss", "accuracy"), title: str | None = None
) -> Figure:
    """Plot training (and validation, when present) curves per epoch.

    Args:
        history: a ``keras.callbacks.History`` or its ``.history`` dict
            (``{"loss": [...], "val_loss": [...], ...}``).
        metrics: which metrics to plot, one panel each.
    """
    logs = history.history if hasattr(history, "history") else dict(history)
    missing = [m for m in metrics if m not in logs]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(logs)}.")
    fig = CourseFigure(figsize=(4.5 * len(metrics), 3.2))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], marker="o", label="train")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def filter_bank(
    kernels, ncols: int = 8, titles: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """Show convolution kernels, each scaled to its own range.

    Args:
        kernels: Keras layout ``(kh, kw, in_channels, filters)`` (in_channels 1 or 3),
            or a stack ``(filters, kh, kw)``.
        titles: one per filter, optional.
    """
    kernels = np.asarray(kernels, dtype=np.float32)
    if kernels.ndim == 4:
        if kernels.shape[2] not in (1, 3):
            raise ValueError(f"kernels has {kernels.shape[2]} input channels; 1 or 3 can be drawn.")
        kernels = np.moveaxis(kernels, -1, 0)
        kernels = kernels[..., 0] if kernels.shape[-1] == 1 else kernels
    elif kernels.ndim != 3:
        raise ValueError(
            f"kernels should be (kh, kw, in, filters) or (filters, kh, kw), got {kernels.shape}."
        )
    low = kernels.reshape(len(kernels), -1).min(axis=1)
    high = kernels.reshape(len(kernels), -1).max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    shape = (-1,) + (1,) * (kernels.ndim - 1)
    scaled = (kernels - low.reshape(shape)) / span.reshape(shape)
    return image_grid(scaled, labels=titles, ncols=ncols, title=title)


def feature_maps(model, layer_name: str, image, ncols: int = 8, max_maps: int = 32) -> Figure:
    """Show the activations of one layer for one image.

    Args:
        model: a built ``keras.Model``.
        layer_name: the layer whose output ``(1, H', W', channels)`` to show.
        image: one image ``(H, W, C)`` as the model expects it.
        max_maps: show at most this many channels.
    """
    import keras

    image = np.asarray(image, dtype=np.float32)
    if image.shape != tuple(model.input_shape[1:]):
        raise ValueError(
            f"image should have the model's input shape {model.input_shape[1:]}, got {image.shape}."
        )
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"model {model.name!r} has no layer {layer_name!r}; it has {names}.")
    probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
    maps = np.asarray(probe([image[np.newaxis]], training=False))[0]
    if maps.ndim != 3:
        raise ValueError(f"layer {layer_name!r} outputs shape {maps.shape[1:]}, not feature maps.")
    maps = np.moveaxis(maps[..., :max_maps], -1, 0)
    titles = [f"{layer_name}:{i}" for i in range(len(maps))]
    total = model.get_layer(layer_name).output.shape[-1]
    return filter_bank(
        maps, ncols=ncols, titles=titles, title=f"{layer_name}: {len(maps)} of {total} feature maps"
    )


def confusion_matrix(
    y_true, y_pred, class_names: Sequence[str], normalize: bool = True, title: str | None = None
) -> Figure:
    """Plot the confusion matrix: rows are true classes, columns predictions.

    Args:
        y_true, y_pred: integer labels ``(N,)``.
        class_names: ``num_classes`` names.
        normalize: show row fractions (recall per class) instead of counts.
    """
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}.")
    n = len(class_names)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    fig = CourseFigure(figsize=(0.6 * n + 2.5, 0.6 * n + 2))
    ax = fig.subplots()
    im = ax.imshow(values, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            text = f"{values[i, j]:.2f}" if normalize else str(values[i, j])
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if values[i, j] > values.max() / 2 else "black",
            )
    ax.set_title(title or f"accuracy {np.trace(counts) / max(counts.sum(), 1):.3f}")
    fig.tight_layout()
    return fig
