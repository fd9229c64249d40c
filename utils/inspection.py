"""Looking inside a trained network: layer outputs, class scores and their gradients, the
geometry of its receptive fields, and the image transformations that probe its invariances.

- :func:`extractor`: a model from the input to the outputs of named layers;
- :func:`class_scores`: the scores a softmax output layer turns into probabilities;
- :func:`score_gradient`: the gradient of one class score per image with respect to the image
  (Simonyan, Vedaldi & Zisserman, 2014, Sec. 3), and :func:`smooth_gradient`, its average over
  noisy copies of the image (SmoothGrad, Smilkov et al., 2017);
- :func:`layer_specs`: ``(kernel, stride, padding)`` of every layer from the input to a named
  one, the data a receptive-field formula reads;
- :func:`translate`, :func:`rescale`, :func:`rotate`: images moved, zoomed about their centre,
  or turned about it, at the same size, with zeros where nothing was;
- :func:`tile`: many small images (receptive-field patches) laid out as one, for one ``imshow``.

Images are NumPy arrays ``(N, H, W, C)``; gradients are computed in float32.
"""

from __future__ import annotations

import math

import numpy as np

POINTWISE = ("BatchNormalization", "ReLU", "Activation", "Dropout", "LeakyReLU", "Rescaling",
             "SpatialDropout2D", "LayerNormalization", "InputLayer")  # act on each position alone
_POOLINGS = ("MaxPooling2D", "AveragePooling2D")


def extractor(model, layer_names):
    """A ``keras.Model`` from ``model``'s input to the outputs of ``layer_names`` (a list).

    Raises:
        ValueError: for a name that is not a layer of ``model`` (the message lists them).
    """
    import keras

    known = [layer.name for layer in model.layers]
    missing = [name for name in layer_names if name not in known]
    if missing:
        raise ValueError(f"layer_names: {missing} are not layers of {model.name!r}; it has "
                         f"{known}.")
    outputs = [model.get_layer(name).output for name in layer_names]
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


def class_scores(model):
    """A ``keras.Model`` from ``model``'s input to its class scores before the softmax.

    ``model``'s last layer must be a ``Dense`` layer with a softmax activation; the scores are
    that layer's kernel and bias applied to its input, in float32.

    Raises:
        ValueError: when the last layer is not a softmax ``Dense`` layer.
    """
    import keras
    from keras import ops

    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if not isinstance(last, keras.layers.Dense) or activation != "softmax":
        raise ValueError(f"model {model.name!r} should end in a Dense layer with a softmax "
                         f"activation; its last layer is {type(last).__name__} {last.name!r} "
                         f"(activation {activation}).")
    hidden = ops.cast(last.input, "float32")
    scores = ops.matmul(hidden, ops.cast(last.kernel, "float32"))
    if last.use_bias:
        scores = scores + ops.cast(last.bias, "float32")
    return keras.Model(model.input, scores, name=f"{model.name}_scores")


def score_gradient(scores_model, images, classes) -> np.ndarray:
    """The gradient of each image's class score with respect to the image.

    Args:
        scores_model: from :func:`class_scores` (or any model from images to scores).
        images: ``(N, H, W, C)``.
        classes: ``(N,)`` integers: which score to differentiate for each image.

    Returns:
        float32 array ``(N, H, W, C)``: entry ``[i]`` is ``dS_{classes[i]}(x_i) / dx_i``.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) != images.shape[0]:
        raise ValueError(f"classes has {len(classes)} entries for {images.shape[0]} images.")
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = tf.cast(scores_model(images, training=False), tf.float32)
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    return tape.gradient(chosen, images).numpy()


def smooth_gradient(scores_model, images, classes, noise: float = 0.15, samples: int = 25,
                    seed: int = 0) -> np.ndarray:
    """:func:`score_gradient` averaged over ``samples`` copies of each image with Gaussian noise
    of standard deviation ``noise`` added (Smilkov et al., 2017, "SmoothGrad").

    Returns:
        float32 array ``(N, H, W, C)``. The noise comes from ``np.random.default_rng(seed)``, one
        draw of the images' shape per sample, in order.
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} should be a positive integer.")
    images = np.asarray(images, dtype=np.float32)
    generator = np.random.default_rng(seed)
    total = np.zeros_like(images)
    for _ in range(samples):
        noisy = images + generator.normal(0.0, noise, size=images.shape).astype(np.float32)
        total += score_gradient(scores_model, noisy, classes)
    return total / samples


def _square(value, what: str, layer) -> int:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(values)) != 1:
        raise ValueError(f"layer {layer.name!r} has {what} {values}; only square ones are read.")
    return int(values[0])


def _spec(layer) -> tuple[int, int, int]:
    """(kernel, stride, padding before) of one convolution, pooling or zero-padding layer."""
    kind = type(layer).__name__
    if kind == "ZeroPadding2D":
        (top, _), (left, _) = layer.padding
        if top != left:
            raise ValueError(f"layer {layer.name!r} pads {layer.padding}; only square padding.")
        return 1, 1, int(top)
    if kind in _POOLINGS:
        kernel, stride = _square(layer.pool_size, "pool_size", layer), _square(
            layer.strides, "strides", layer)
    else:
        kernel, stride = _square(layer.kernel_size, "kernel_size", layer), _square(
            layer.strides, "strides", layer)
        if _square(layer.dilation_rate, "dilation_rate", layer) != 1:
            raise ValueError(f"layer {layer.name!r} is dilated; dilation is not read.")
    if layer.padding == "valid":
        return kernel, stride, 0
    size = int(layer.input.shape[1])  # "same": TensorFlow puts the odd pixel after the image
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return kernel, stride, total // 2


def layer_specs(model, layer_name: str) -> list[tuple[int, int, int]]:
    """``(kernel, stride, padding)`` of each layer from ``model``'s input up to ``layer_name``.

    ``padding`` is the number of zeros added before the first row (and column): 0 for
    ``"valid"``, ``(kernel - 1) // 2`` for ``"same"`` with stride 1. ``model`` must be a chain of
    layers; convolutions, poolings and zero padding each give one entry, layers that act on
    each position alone (:data:`POINTWISE`) none.

    Raises:
        ValueError: for an unknown name, non-square kernels, strides or padding, dilation, or a
            layer before ``layer_name`` that is neither spatial nor pointwise.
    """
    import keras

    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"layer_name={layer_name!r} is not a layer of {model.name!r}; it has "
                         f"{names}.")
    specs = []
    for layer in model.layers[: names.index(layer_name) + 1]:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.Conv2D) or kind in _POOLINGS + ("ZeroPadding2D",):
            specs.append(_spec(layer))
        elif kind not in POINTWISE:
            raise ValueError(f"layer {layer.name!r} ({kind}) is neither a convolution, a "
                             "pooling, zero padding nor a layer that acts on each position "
                             "alone, so its receptive field is not known.")
    return specs


def _per_image(images, transform) -> np.ndarray:
    """Apply ``transform`` (one (H, W) plane to another) to every image and channel."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images should have shape (N, H, W, C), got {images.shape}.")
    out = np.empty_like(images)
    for index in range(images.shape[0]):
        for channel in range(images.shape[3]):
            out[index, :, :, channel] = transform(images[index, :, :, channel])
    return out


def translate(images, columns: float, rows: float = 0.0) -> np.ndarray:
    """Images moved right by ``columns`` and down by ``rows`` pixels (negative: left, up).

    Whole pixels move exactly; fractions interpolate bilinearly. Zeros come in at the border.
    """
    from scipy import ndimage

    return _per_image(images, lambda plane: ndimage.shift(
        plane, (rows, columns), order=1, mode="constant", cval=0.0))


def rescale(images, factor: float) -> np.ndarray:
    """Images zoomed by ``factor`` about their centre (above 1: larger), at the same size.

    Output pixel ``p`` takes the input at ``centre + (p - centre) / factor`` (bilinear), zeros
    outside the image.
    """
    from scipy import ndimage

    if factor <= 0:
        raise ValueError(f"factor={factor!r} should be positive.")

    def zoom(plane):
        centre = (np.array(plane.shape) - 1) / 2
        return ndimage.affine_transform(plane, np.full(2, 1 / factor),
                                        offset=centre - centre / factor, order=1,
                                        mode="constant", cval=0.0)

    return _per_image(images, zoom)


def rotate(images, degrees: float) -> np.ndarray:
    """Images turned anticlockwise by ``degrees`` about their centre, at the same size
    (bilinear; zeros where the corners come from outside)."""
    from scipy import ndimage

    return _per_image(images, lambda plane: ndimage.rotate(
        plane, degrees, reshape=False, order=1, mode="constant", cval=0.0))


def tile(images, columns: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Images ``(N, H, W, C)`` laid out in rows of ``columns``, ``gap`` pixels of ``fill`` apart.

    Returns:
        ``(rows * (H + gap) - gap, columns * (W + gap) - gap, C)``, ``rows = ceil(N / columns)``;
        image ``n`` sits in row ``n // columns``, column ``n % columns``; empty places are ``fill``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images should have shape (N, H, W, C) with N >= 1, got {images.shape}.")
    if not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns={columns!r} should be a positive integer.")
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, channels), fill,
                  dtype=images.dtype)
    for index, image in enumerate(images):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        out[top : top + height, left : left + width] = image
    return out
