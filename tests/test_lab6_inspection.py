"""utils.inspection: layer outputs, class scores and their gradients, receptive-field specs and
the image transformations, each against an independent computation on tiny inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from utils import inspection

RNG = np.random.default_rng(0)


def _chain():
    """5x5 same conv, 2x2 pool, 3x3 same conv with batch norm, 2x2 pool, dense softmax."""
    inputs = keras.Input((12, 12, 2), name="image")
    x = layers.Conv2D(3, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(name="conv2_bn")(x)
    x = layers.ReLU(name="conv2_relu")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="chain")


def test_extractor_returns_the_named_layers_outputs():
    model = _chain()
    x = RNG.random((2, 12, 12, 2)).astype("float32")
    first, second = inspection.extractor(model, ["conv1", "pool2"])(x)
    direct = keras.Model(model.input, model.get_layer("pool2").output)(x)
    assert first.shape == (2, 12, 12, 3)
    np.testing.assert_allclose(np.asarray(second), np.asarray(direct), rtol=1e-6)
    with pytest.raises(ValueError, match="'nope'"):
        inspection.extractor(model, ["nope"])


def test_class_scores_are_the_logits_of_the_softmax():
    model = _chain()
    x = RNG.random((4, 12, 12, 2)).astype("float32")
    scores = np.asarray(inspection.class_scores(model)(x), dtype=np.float64)
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, np.asarray(model(x)), atol=1e-6)
    inputs = keras.Input((4,))
    linear = keras.Model(inputs, layers.Dense(2, name="out")(inputs))
    with pytest.raises(ValueError, match="softmax"):
        inspection.class_scores(linear)


def test_score_gradient_against_a_linear_model_and_finite_differences():
    inputs = keras.Input((2, 2, 1))
    flat = layers.Flatten()(inputs)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(flat))
    weights = RNG.normal(size=(4, 3)).astype("float32")
    model.get_layer("out").set_weights([weights, np.zeros(3, "float32")])
    x = RNG.random((2, 2, 2, 1)).astype("float32")
    gradient = inspection.score_gradient(inspection.class_scores(model), x, [2, 0])
    # The score of a linear layer is w_c . x, so its gradient is w_c whatever x is.
    np.testing.assert_allclose(gradient[0].reshape(-1), weights[:, 2], rtol=1e-6)
    np.testing.assert_allclose(gradient[1].reshape(-1), weights[:, 0], rtol=1e-6)

    # A smooth network (tanh, average pooling), so that central differences converge.
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    smooth = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    scores = inspection.class_scores(smooth)
    x = RNG.random((1, 8, 8, 2)).astype("float32")
    gradient = inspection.score_gradient(scores, x, [1])[0]
    step = 1e-3
    for index in [(3, 4, 0), (7, 2, 1), (0, 0, 0)]:
        up, down = x.copy(), x.copy()
        up[(0, *index)] += step
        down[(0, *index)] -= step
        numeric = (np.asarray(scores(up))[0, 1] - np.asarray(scores(down))[0, 1]) / (2 * step)
        assert abs(numeric - gradient[index]) < 1e-3, (index, numeric, gradient[index])
    with pytest.raises(ValueError, match="classes has 2 entries for 1 images"):
        inspection.score_gradient(scores, x, [0, 1])


def test_smooth_gradient_averages_over_noisy_copies():
    inputs = keras.Input((2, 2, 1))
    flat = layers.Flatten()(inputs)
    linear = keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(flat))
    scores = inspection.class_scores(linear)
    x = RNG.random((2, 2, 2, 1)).astype("float32")
    # A linear score has the same gradient everywhere: the noise changes nothing.
    np.testing.assert_allclose(inspection.smooth_gradient(scores, x, [0, 2], samples=4),
                               inspection.score_gradient(scores, x, [0, 2]), rtol=1e-6)
    scores = inspection.class_scores(_chain())
    x = RNG.random((2, 12, 12, 2)).astype("float32")
    generator = np.random.default_rng(3)
    expected = np.mean([inspection.score_gradient(
        scores, x + generator.normal(0.0, 0.2, size=x.shape).astype("float32"), [1, 0])
        for _ in range(3)], axis=0)
    found = inspection.smooth_gradient(scores, x, [1, 0], noise=0.2, samples=3, seed=3)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="samples"):
        inspection.smooth_gradient(scores, x, [1, 0], samples=0)


def test_layer_specs_read_kernels_strides_and_padding():
    model = _chain()
    assert inspection.layer_specs(model, "conv1") == [(5, 1, 2)]
    assert inspection.layer_specs(model, "conv2_relu") == [(5, 1, 2), (2, 2, 0), (3, 1, 1)]
    inputs = keras.Input((9, 9, 1))
    x = layers.ZeroPadding2D(1, name="pad")(inputs)
    x = layers.Conv2D(1, 3, strides=2, padding="same", name="strided")(x)  # 11 -> 6: pads 1
    x = layers.AveragePooling2D(3, strides=1, padding="same", name="blur")(x)
    x = layers.Conv2D(1, 4, strides=2, padding="same", name="even")(x)  # 6 -> 3: pads 2, 1 before
    strided = keras.Model(inputs, x)
    assert inspection.layer_specs(strided, "even") == [(1, 1, 1), (3, 2, 1), (3, 1, 1), (4, 2, 1)]
    with pytest.raises(ValueError, match="Flatten"):
        inspection.layer_specs(model, "predictions")
    with pytest.raises(ValueError, match="'missing'"):
        inspection.layer_specs(model, "missing")


def test_same_padding_matches_keras():
    """The padding read for "same" puts a unit's window where Keras computes it: a one-hot
    input lights exactly the outputs whose window covers it."""
    for size, kernel, stride in [(7, 3, 2), (8, 4, 2), (9, 5, 3), (6, 2, 1)]:
        inputs = keras.Input((size, 1))
        conv = layers.Conv1D(1, kernel, strides=stride, padding="same", use_bias=False,
                             kernel_initializer="ones")
        model = keras.Model(inputs, conv(inputs))
        inputs2d = keras.Input((size, size, 1))
        conv2d = layers.Conv2D(1, kernel, strides=stride, padding="same", name="c")
        _, _, padding = inspection.layer_specs(keras.Model(inputs2d, conv2d(inputs2d)), "c")[0]
        for pixel in range(size):
            x = np.zeros((1, size, 1), "float32")
            x[0, pixel, 0] = 1
            lit = np.flatnonzero(np.asarray(model(x))[0, :, 0]).tolist()
            expected = [u for u in range(-(-size // stride))
                        if u * stride - padding <= pixel <= u * stride - padding + kernel - 1]
            assert lit == expected, (size, kernel, stride, pixel)


def test_translate_moves_whole_pixels_exactly():
    x = RNG.random((2, 6, 7, 3)).astype("float32")
    moved = inspection.translate(x, 2, rows=-1)
    expected = np.zeros_like(x)
    expected[:, :5, 2:, :] = x[:, 1:, :5, :]
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    np.testing.assert_allclose(inspection.translate(x, 0), x, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        inspection.translate(x[0], 1)


def test_rotate_by_quarter_turns_matches_rot90():
    x = RNG.random((2, 7, 7, 1)).astype("float32")
    np.testing.assert_allclose(inspection.rotate(x, 90), np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(inspection.rotate(x, 180), np.rot90(x, 2, axes=(1, 2)), atol=1e-5)


def test_rescale_zooms_about_the_centre():
    rows = np.arange(9, dtype=np.float32)[:, None] * np.ones((1, 9), np.float32)
    x = rows[None, :, :, None]  # a ramp: pixel (r, c) holds r
    zoomed = inspection.rescale(x, 2.0)[0, :, :, 0]
    # Bilinear interpolation is exact on a ramp: output row r reads input row 4 + (r - 4) / 2.
    np.testing.assert_allclose(zoomed[:, 4], 4 + (np.arange(9) - 4) / 2, atol=1e-5)
    shrunk = inspection.rescale(x, 0.5)[0, :, :, 0]
    assert shrunk[4, 4] == pytest.approx(4.0) and shrunk[0, 0] == 0.0  # zeros came in
    np.testing.assert_allclose(inspection.rescale(x, 1.0), x, atol=1e-6)
    with pytest.raises(ValueError, match="factor"):
        inspection.rescale(x, 0)


def test_tile_lays_images_out_in_rows():
    images = np.arange(5 * 2 * 3 * 1, dtype=np.float32).reshape(5, 2, 3, 1)
    out = inspection.tile(images, columns=2, gap=1, fill=-1)
    assert out.shape == (3 * 3 - 1, 2 * 4 - 1, 1)
    np.testing.assert_array_equal(out[0:2, 0:3], images[0])
    np.testing.assert_array_equal(out[0:2, 4:7], images[1])
    np.testing.assert_array_equal(out[6:8, 0:3], images[4])
    assert (out[6:8, 4:7] == -1).all() and (out[2, :] == -1).all() and (out[:, 3] == -1).all()
    with pytest.raises(ValueError, match="columns"):
        inspection.tile(images, columns=0)
