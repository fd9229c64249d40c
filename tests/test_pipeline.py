"""pipeline.make and pipeline.augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from utils import pipeline


def images(n=10, dtype=np.uint8):
    x = (np.arange(n * 4 * 4 * 1) % 256).reshape(n, 4, 4, 1).astype(dtype)
    return x, np.arange(n) % 3


def test_uint8_batches_become_float_in_unit_range_with_fixed_training_shape():
    x, y = images(10)
    batches = list(pipeline.make(x, y, batch_size=4, training=True, seed=0))
    assert [tuple(b[0].shape) for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1)]  # partial dropped
    first = batches[0][0].numpy()
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0
    assert batches[0][1].dtype.name == "int64"


def test_evaluation_keeps_every_image_in_order():
    x, y = images(10)
    batches = list(pipeline.make(x, y, batch_size=4))
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(labels, y)
    pixels = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_allclose(pixels, x / 255.0, rtol=1e-6)


@pytest.mark.parametrize("n, batch_size, sizes", [
    (10, 4, [2] * 5),  # 2 divides 10 and is half of 4
    (7, 4, [4, 3]),  # nothing in 2..4 divides 7: the partial batch is kept
    (12, 5, [4, 4, 4]),  # 4 divides 12 and is at least half of 5
    (1000, 128, [125] * 8),
    (3, 128, [3]),
])
def test_evaluation_batches_have_one_shape_when_a_close_size_divides_n(n, batch_size, sizes):
    x, y = images(n)
    assert [len(b[1]) for b in pipeline.make(x, y, batch_size=batch_size)] == sizes
    indices = pipeline.make_indices(np.arange(n), y, batch_size=batch_size)
    assert [len(b[1]) for b in indices] == sizes


def test_training_shuffles_differently_each_epoch_but_reproducibly():
    x, y = images(64)
    data = pipeline.make(x, y, batch_size=64, training=True, seed=5)
    epoch1, epoch2 = (next(iter(data))[1].numpy() for _ in range(2))
    assert not np.array_equal(epoch1, epoch2)
    again = next(iter(pipeline.make(x, y, batch_size=64, training=True, seed=5)))[1].numpy()
    np.testing.assert_array_equal(epoch1, again)
    assert sorted(epoch1.tolist()) == sorted(y.tolist())


def test_float_input_is_not_rescaled():
    x, y = images(4, dtype=np.float32)
    x = x / 255.0
    batch = next(iter(pipeline.make(x.astype(np.float32), y, batch_size=4)))[0].numpy()
    np.testing.assert_allclose(batch, x, rtol=1e-6)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((4, 4, 4), np.uint8), np.zeros(4), r"\(N, H, W, C\)"),
        (np.zeros((4, 4, 4, 1), np.uint8), np.zeros(3), r"y should have shape \(4,\)"),
        (np.zeros((4, 4, 4, 1), np.int32), np.zeros(4), "uint8 .* or float32"),
    ],
)
def test_bad_inputs_name_the_problem(x, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        pipeline.make(x, y, batch_size=2)


def test_batch_larger_than_training_set_is_refused():
    x, y = images(3)
    with pytest.raises(ValueError, match="batch_size=8 is larger than the 3"):
        pipeline.make(x, y, batch_size=8, training=True)


def test_augmentation_is_identity_at_inference_and_random_in_training():
    block = pipeline.augmentation(flip=True, crop_padding=2, input_shape=(8, 8, 1))
    x = np.random.default_rng(0).random((6, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(block(x, training=False)), x)
    changed = np.asarray(block(x, training=True))
    assert changed.shape == x.shape and not np.allclose(changed, x)
    assert [layer.name for layer in block.layers] == ["augment_flip", "augment_shift"]


def test_augmentation_needs_input_shape_for_cropping():
    with pytest.raises(ValueError, match="input_shape"):
        pipeline.augmentation(crop_padding=4)


def test_the_shift_is_a_random_crop_of_the_padded_image_per_image_and_compiles_under_xla():
    import tensorflow as tf

    pad = 2
    block = pipeline.augmentation(flip=False, crop_padding=pad, input_shape=(6, 6, 1))
    x = np.random.default_rng(1).random((16, 6, 6, 1)).astype(np.float32) + 1.0  # no zeros
    shifted = np.asarray(block(x, training=True))
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    offsets = []
    for image, source in zip(shifted, padded, strict=True):
        found = [(r, c) for r in range(2 * pad + 1) for c in range(2 * pad + 1)
                 if np.array_equal(source[r:r + 6, c:c + 6], image)]
        assert found, "a shifted image is not a crop of the zero-padded image"
        offsets.append(found[0])
    assert len(set(offsets)) > 3, f"every image should get its own offset, got {set(offsets)}"
    # Keras turns XLA off for a whole model when one layer has supports_jit=False
    # (RandomTranslation and RandomCrop do); these layers compile under XLA.
    assert all(layer.supports_jit for layer in block.layers)
    compiled = tf.function(lambda images: block(images, training=True), jit_compile=True)
    assert compiled(tf.constant(x)).shape == x.shape
