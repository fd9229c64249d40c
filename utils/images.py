"""Image helpers: adapting a dataset's image size and channels, and offline sample images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from utils.data import Dataset

SAMPLE_IMAGES = (
    "astronaut",
    "camera",
    "coins",
    "moon",
    "chelsea",
    "coffee",
    "brick",
    "grass",
    "gravel",
    "checkerboard",
    "horse",
    "page",
    "text",
    "rocket",
    "clock",
)


def sample_image(name: str = "camera", gray: bool = True) -> np.ndarray:
    """One of scikit-image's bundled images, offline.

    Returns:
        float32 in [0, 1], shape ``(H, W)`` when ``gray`` else ``(H, W, 3)``
        (a grey image is repeated to 3 channels).
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(
            f"name={name!r} is not a bundled sample image; choose one of {SAMPLE_IMAGES}."
        )
    from skimage import color, data, util

    image = util.img_as_float32(getattr(data, name)())
    if image.ndim == 3 and image.shape[-1] == 4:
        image = color.rgba2rgb(image).astype(np.float32)
    if gray and image.ndim == 3:
        image = color.rgb2gray(image).astype(np.float32)
    if not gray and image.ndim == 2:
        image = np.repeat(image[..., np.newaxis], 3, axis=-1)
    return image


def adapt(
    dataset: Dataset,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    verbose: bool = True,
) -> Dataset:
    """Return ``dataset`` with its images padded/resized to ``size`` and ``channels`` channels.

    Growing 28x28 to 32x32 zero-pads 2 pixels on each side (as LeNet-5 did for
    MNIST); other size changes resize bilinearly. 1 -> 3 channels repeats the
    grey level; 3 -> 1 takes the luminance (ITU-R 601 weights).

    Args:
        dataset: from :func:`load`; images ``(N, H, W, C)``.
        size: target ``(height, width)``, or None to keep.
        channels: 1 or 3, or None to keep.
    """
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size={size!r} should be (height, width) with positive integers.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels={channels!r} should be 1, 3 or None.")
    changes = []

    def convert(images: np.ndarray) -> np.ndarray:
        out = images
        if size is not None and tuple(out.shape[1:3]) != tuple(size):
            (h, w), (th, tw) = out.shape[1:3], size
            if th >= h and tw >= w and (th - h) % 2 == 0 and (tw - w) % 2 == 0:
                pad = ((0, 0), ((th - h) // 2,) * 2, ((tw - w) // 2,) * 2, (0, 0))
                out = np.pad(out, pad)
            else:
                import tensorflow as tf

                out = tf.image.resize(out.astype(np.float32), size).numpy().astype(out.dtype)
        if channels is not None and out.shape[-1] != channels:
            if channels == 3:
                out = np.repeat(out, 3, axis=-1)
            else:
                weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
                out = (out.astype(np.float32) @ weights)[..., np.newaxis].astype(out.dtype)
        return out

    x_train, x_test = convert(dataset.x_train), convert(dataset.x_test)
    if x_train.shape[1:] != dataset.x_train.shape[1:]:
        changes.append(
            f"{dataset.name} images adapted from {'x'.join(map(str, dataset.input_shape))} "
            f"to {'x'.join(map(str, x_train.shape[1:]))}"
        )
        if verbose:
            print(changes[-1])
    return replace(dataset, x_train=x_train, x_test=x_test, notes=dataset.notes + changes)
