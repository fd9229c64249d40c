"""``tf.data`` input pipelines and augmentation layers.

The documented recipe for fast training::

    train = pipeline.make(x_train, y_train, batch_size=128, training=True, seed=0)
    test = pipeline.make(x_test, y_test, batch_size=128)

``make`` takes images ``(N, H, W, C)`` as ``uint8`` (0..255) or ``float32``
(0..1) and labels ``(N,)``. It caches the raw arrays once, shuffles every epoch
(training only, seeded), batches, converts each *batch* to ``float32`` in [0, 1]
and prefetches. Training batches all have the same shape (the last, partial
batch is dropped, and reshuffling means every image is still seen), so XLA
compiles the training step once. Caching the arrays as ``uint8`` takes a
quarter of the memory of ``float32``; the conversion is one vectorised op per batch.

Augmentation runs on the accelerator by making it part of the model: put
:func:`augmentation` right after the model's ``Input``. Keras' random
preprocessing layers are active only in training and are the identity at
inference, so evaluation needs no special case.
"""

from __future__ import annotations

import functools

import numpy as np

AUTOTUNE = -1  # tf.data.AUTOTUNE


def _check_arrays(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"x should be images of shape (N, H, W, C), got shape {x.shape}; "
            "add a channel axis with x[..., None] for grey images."
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y should have shape ({len(x)},) to match x, got {y.shape}.")
    if x.dtype not in (np.uint8, np.float32):
        raise TypeError(f"x should be uint8 (0..255) or float32 (0..1), got {x.dtype}.")


def _shuffled_batches(x, y, batch_size: int, training: bool, seed, cache: bool = True):
    """The batching shared by :func:`make` and :func:`make_indices`: same seed, same order."""
    import tensorflow as tf

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} should be a positive integer.")
    if training and batch_size > len(x):
        raise ValueError(
            f"batch_size={batch_size} is larger than the {len(x)} training images, and the "
            "partial batch is dropped in training; use a smaller batch_size."
        )
    dataset = tf.data.Dataset.from_tensor_slices((x, np.asarray(y).astype(np.int64)))
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    else:
        batch_size = even_batch_size(len(x), batch_size)
    return dataset.batch(batch_size, drop_remainder=training)


def even_batch_size(n: int, batch_size: int) -> int:
    """The largest size <= ``batch_size`` that splits ``n`` images into equal batches.

    Evaluation keeps every image, so a last, partial batch would have a new shape, and
    under XLA a new shape means another compilation. Sizes below half of ``batch_size``
    are not worth it; then ``batch_size`` is kept (10,000 images at 128 give 125).
    """
    for size in range(min(batch_size, n), (batch_size + 1) // 2 - 1, -1):
        if size > 0 and n % size == 0:
            return size
    return batch_size


def make(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    training: bool = False,
    seed: int | None = 0,
    cache: bool = True,
):
    """Build a batched ``tf.data.Dataset`` of ``(images, labels)``.

    Args:
        x: images ``(N, H, W, C)``, uint8 0..255 or float32 0..1.
        y: integer labels ``(N,)``.
        batch_size: global batch size (a mirrored strategy splits it across devices).
        training: shuffle each epoch and drop the last partial batch. Otherwise every
            image is kept, in order, in batches of :func:`even_batch_size` (one shape).
        seed: shuffle seed (training only).
        cache: keep the arrays in memory after the first epoch.

    Returns:
        A dataset of ``(float32 (B, H, W, C) in [0, 1], int64 (B,))`` batches.
    """
    import tensorflow as tf

    x, y = np.asarray(x), np.asarray(y)
    _check_arrays(x, y)
    dataset = _shuffled_batches(x, y, batch_size, training, seed, cache)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0

    def to_float(images, labels):
        return tf.cast(images, tf.float32) * scale, labels

    return dataset.map(to_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def augmentation(flip: bool = True, crop_padding: int = 4, input_shape=None, name="augment"):
    """Random horizontal flips and padded random crops, as Keras layers.

    Place it right after the model's ``Input``; it runs wherever the model runs
    (the GPU), only in training.

    Args:
        flip: random left-right flips (not for digits, where they change the class).
        crop_padding: shift by up to this many pixels with zero fill (the same as
            padding and cropping back at a random offset); 0 turns it off.
        input_shape: ``(H, W, C)``; needed for cropping.
        name: the block's name.

    Returns:
        A ``keras.Sequential`` mapping ``(B, H, W, C)`` to ``(B, H, W, C)``.
    """
    import keras
    from keras import layers

    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", name=f"{name}_flip"))
    if crop_padding:
        if input_shape is None or len(input_shape) != 3:
            raise ValueError(f"input_shape=(H, W, C) is needed for cropping, got {input_shape!r}.")
        steps.append(_random_shift_class()(crop_padding, name=f"{name}_shift"))
    return keras.Sequential(steps, name=name)


@functools.cache
def _random_shift_class():
    """The RandomShift layer class (made on first use: importing utils must not import Keras)."""
    import keras
    from keras import ops

    class RandomShift(keras.layers.Layer):
        """Shift each image by its own random offset of up to ``padding`` pixels, zero fill.

        The same as padding by ``padding`` and cropping back at a random offset, but exactly
        the identity at inference. Written with gathers, so it compiles under XLA, unlike
        Keras' RandomTranslation and RandomCrop, which turn XLA off for the whole model.
        Input and output ``(B, H, W, C)``.
        """

        def __init__(self, padding, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.padding, self.seed = int(padding), seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training:
                return images
            pad = self.padding
            batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
            padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            offsets = keras.random.randint((batch, 2), 0, 2 * pad + 1, seed=self.seed_generator)
            rows = offsets[:, :1] + ops.arange(height)[None, :]  # (B, H): source rows
            cols = offsets[:, 1:] + ops.arange(width)[None, :]  # (B, W): source columns
            shifted = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)
            return ops.take_along_axis(shifted, cols[:, None, :, None], axis=2)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "padding": self.padding, "seed": self.seed}

    return RandomShift


def make_indices(
    indices: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    training: bool = False,
    seed: int | None = 0,
):
    """Like :func:`make`, but yields image *indices* ``(B,)`` int32 instead of images.

    Used with :func:`on_device`: the images stay on the accelerator, and only the
    indices and labels of each batch cross over. Shuffling uses the same seed and
    buffer as :func:`make`, so both give the same batches in the same order.
    """
    indices, y = np.asarray(indices, dtype=np.int32), np.asarray(y)
    if indices.ndim != 1 or y.shape != indices.shape:
        raise ValueError(f"indices {indices.shape} and y {y.shape} should both have shape (N,).")
    return _shuffled_batches(indices, y, batch_size, training, seed).prefetch(AUTOTUNE)


def on_device(model, images: np.ndarray):
    """Wrap ``model`` so that it takes image indices and reads the images from device memory.

    The images are copied once into a tensor on the default device (the GPU when
    there is one); each step gathers its batch there and converts it to float32
    in [0, 1], exactly as :func:`make` does on the host.

    Args:
        model: a ``keras.Model`` taking images ``(B, H, W, C)``.
        images: every image the wrapper may index, ``(N, H, W, C)`` uint8 or float32.

    Returns:
        A ``keras.Model`` mapping int32 indices ``(B,)`` to ``model``'s outputs; it
        shares ``model``'s layers and weights.
    """
    import keras
    import tensorflow as tf

    images = np.asarray(images)
    _check_arrays(images, np.zeros(len(images)))
    stored = tf.constant(images)
    scale = 1.0 / 255.0 if images.dtype == np.uint8 else 1.0

    class GatherImages(keras.layers.Layer):
        """Indices ``(B,)`` -> float32 images ``(B, H, W, C)`` from the stored tensor."""

        def call(self, indices):
            batch = tf.gather(stored, tf.cast(indices, tf.int32))
            return tf.cast(batch, tf.float32) * scale

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *images.shape[1:])

    indices = keras.Input(shape=(), dtype="int32", name="image_index")
    gathered = GatherImages(dtype="float32", name="images_on_device")(indices)
    return keras.Model(indices, model(gathered), name=f"{model.name}_on_device")
