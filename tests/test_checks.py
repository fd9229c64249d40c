"""checks: every helper passes on a right answer and fails with expected-vs-found on a wrong one."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from utils import checks


def small_model():
    inputs = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(6, 5, padding="same", name="conv1")(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, name="out")(x)
    return keras.Model(inputs, outputs, name="small")


def test_assert_shape_and_wildcard():
    checks.assert_shape(np.zeros((2, 3)), (2, 3))
    checks.assert_shape((None, 5), (None, 5))
    checks.assert_shape(np.zeros((7, 5)), (None, 5))
    with pytest.raises(checks.CheckError, match=r"logits: expected \(2, 4\), found \(2, 3\)"):
        checks.assert_shape(np.zeros((2, 3)), (2, 4), what="logits")
    with pytest.raises(checks.CheckError, match="expected"):
        checks.assert_shape(np.zeros((2, 3, 1)), (2, 3))


def test_assert_param_count_says_how_far_off():
    model = small_model()
    expected = (5 * 5 * 1 * 6 + 6) + (28 * 28 * 6 * 10 + 10)
    checks.assert_param_count(model, expected)
    with pytest.raises(checks.CheckError) as info:
        checks.assert_param_count(model, expected - 6)
    message = str(info.value)
    assert f"expected {expected - 6:,}" in message and f"found {expected:,}" in message
    assert "6 too many" in message


def test_assert_layer_shapes_names_the_layer():
    model = small_model()
    checks.assert_layer_shapes(model, {"conv1": (28, 28, 6), "out": (10,)})
    with pytest.raises(checks.CheckError, match=r"conv1 output shape: expected \(24, 24, 6\)"):
        checks.assert_layer_shapes(model, {"conv1": (24, 24, 6)})
    with pytest.raises(checks.CheckError, match="layer 'c1'"):
        checks.assert_layer_shapes(model, {"c1": (28, 28, 6)})


def test_assert_close_reports_the_worst_entry():
    checks.assert_close([1.0, 2.0], [1.0, 2.0 + 1e-9], "values")
    with pytest.raises(checks.CheckError, match=r"kernel: expected 3 .*found 3\.5.*index \(1,\)"):
        checks.assert_close([1.0, 3.5], [1.0, 3.0], "kernel")
    with pytest.raises(checks.CheckError, match="shape"):
        checks.assert_close([1.0], [1.0, 2.0], "kernel")


def test_assert_equal_and_accuracy():
    checks.assert_equal(290400, 290400, "neurons")
    with pytest.raises(checks.CheckError, match="neurons: expected 290400, found 290401"):
        checks.assert_equal(290401, 290400, "neurons")
    checks.assert_accuracy(0.91, 0.9, "fashion_mnist")
    with pytest.raises(checks.CheckError, match="test accuracy on fashion_mnist"):
        checks.assert_accuracy(0.5, 0.9, "fashion_mnist")
    with pytest.raises(ValueError, match="minimum=90"):
        checks.assert_accuracy(0.5, 90, "fashion_mnist")


def test_a_nan_accuracy_fails_except_in_a_dry_run():
    # A model whose outputs are NaN has no accuracy: it must not pass its floor. A dry run
    # (the grader's build of a solution, benchmarks.compute) trained nothing to check.
    from utils import training

    with pytest.raises(checks.CheckError, match="test accuracy on fashion_mnist"):
        checks.assert_accuracy(float("nan"), 0.5, "fashion_mnist")
    with training.dry_running():
        checks.assert_accuracy(float("nan"), 0.5, "fashion_mnist")


def test_check_error_is_an_assertion_error():
    assert issubclass(checks.CheckError, AssertionError)


def test_assert_close_points_at_the_entry_outside_its_tolerance():
    expected = np.arange(6.0).reshape(2, 3)
    found = expected - 1e-5  # within rtol=1e-5 everywhere except at 0, where only atol counts
    with pytest.raises(checks.CheckError, match=r"at index \(0, 0\)"):
        checks.assert_close(found, expected, "x")
    with pytest.raises(checks.CheckError, match=r"found nan at index \(1,\)"):
        checks.assert_close([1.0, np.nan], [1.0, 2.0], "y")


def _small_model(order="bn-relu", pooling="max", extra=False, name="net"):
    import keras
    from keras import layers

    keras.utils.set_random_seed(len(order) + len(pooling) + extra)  # different initial weights
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    steps = [layers.BatchNormalization(name="bn"), layers.Activation("relu", name="act")]
    for step in steps if order == "bn-relu" else steps[::-1]:
        x = step(x)
    pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
    x = layers.Flatten(name="flatten")(pool(2, name="pool")(x))
    x = layers.Dropout(0.5, name="drop")(x)
    if extra:
        x = layers.Dense(64, name="extra")(x)  # the same shape: only the function differs
    outputs = layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs, name=name)


def test_assert_same_function_accepts_the_same_function_with_other_weights():
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
    checks.assert_same_function(_small_model(), _small_model(), x, "the same builder")


@pytest.mark.parametrize(
    "change, message",
    [({"order": "relu-bn"}, "outputs in"), ({"pooling": "average"}, "outputs in"),
     ({"extra": True}, "should not be there")],
)
def test_assert_same_function_catches_another_function(change, message):
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
    with pytest.raises(checks.CheckError, match=message):
        checks.assert_same_function(_small_model(**change), _small_model(), x, "a changed net")


@pytest.mark.parametrize("change, message", [
    ("zeros", "spread .* of the initial conv/kernel"), ("frozen", "layer 'conv' trainable")])
def test_assert_same_function_catches_a_network_that_cannot_learn(change, message):
    # Transplanted weights would hide both: the check looks at the fresh model first.
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
    model = _small_model()
    conv = model.get_layer("conv")
    if change == "zeros":
        conv.kernel.assign(np.zeros(conv.kernel.shape, dtype=np.float32))
    else:
        conv.trainable = False
    with pytest.raises(checks.CheckError, match=message):
        checks.assert_same_function(model, _small_model(), x, "a net that cannot learn")


def test_assert_same_function_compares_each_of_several_outputs():
    from keras import layers

    def two_heads(second="relu"):
        inputs = keras.Input((4,))
        hidden = layers.Dense(3, name="hidden")(inputs)
        return keras.Model(inputs, {"main": layers.Dense(2, name="main")(hidden),
                                    "aux": layers.Dense(2, activation=second, name="aux")(hidden)})

    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    checks.assert_same_function(two_heads(), two_heads(), x, "two heads")
    with pytest.raises(checks.CheckError, match="output 1 of 2"):  # "aux" comes first by name
        checks.assert_same_function(two_heads("tanh"), two_heads(), x, "two heads")


def test_block_model_wraps_a_block_and_its_arguments():
    from keras import layers

    def block(x, filters, name):
        return layers.Conv2D(filters, 3, strides=2, padding="same", name=f"{name}_conv")(x)

    model = checks.block_model(block, (8, 8, 3), filters=5, name="b")
    assert model.input_shape == (None, 8, 8, 3) and model.output_shape == (None, 4, 4, 5)
    assert [layer.name for layer in model.layers][1:] == ["b_conv"]


def test_transplant_names_a_missing_layer():
    import keras
    from keras import layers

    inputs = keras.Input((4,))
    other = keras.Model(inputs, layers.Dense(3, name="dense")(inputs), name="other")
    reference = keras.Model(inputs, layers.Dense(3, name="out")(inputs), name="reference")
    with pytest.raises(checks.CheckError, match="a layer named 'out'"):
        checks.transplant(reference, other)


def test_assert_float32_output_builds_under_mixed_precision():
    def build(output_dtype):
        inputs = keras.Input((4,))
        hidden = layers.Dense(3, name="hidden")(inputs)
        return keras.Model(inputs, layers.Dense(2, dtype=output_dtype, name="out")(hidden))

    checks.assert_float32_output(lambda: build("float32"), "hidden", "a good model")
    with pytest.raises(checks.CheckError, match="output dtype under mixed_float16"):
        checks.assert_float32_output(lambda: build(None), "hidden", "a model without it")
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy is restored


def test_learning_sample_gives_the_asked_sizes():
    (x, y), (x_test, y_test) = checks.learning_sample((16, 12), train_size=64, test_size=32)
    assert x.shape == (64, 16, 12, 1) and x_test.shape == (32, 16, 12, 1)
    assert y.shape == (64,) and y_test.shape == (32,)
    assert set(np.unique(y)) <= set(range(10)) and len(np.unique(y)) > 1


def test_assert_learns_passes_a_model_that_learns_and_fails_one_that_cannot():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1) in [0, 1]
    y = digits.target.astype(np.int64)
    train, test = (x[:1200], y[:1200]), (x[1200:], y[1200:])

    def build(regulariser=None):
        inputs = keras.Input((8, 8, 1))
        hidden = layers.Dense(32, activation="relu", kernel_regularizer=regulariser,
                              name="hidden")(layers.Flatten(name="flatten")(inputs))
        outputs = layers.Dense(10, activation="softmax", kernel_regularizer=regulariser,
                               name="out")(hidden)
        return keras.Model(inputs, outputs)

    checks.assert_learns(build, train, test, 0.5, "a small network", epochs=5)
    # The same network, its weights pulled to 0 by an L2 penalty 10,000 times the usual one.
    with pytest.raises(checks.CheckError, match="does not learn"):
        checks.assert_learns(lambda: build(keras.regularizers.L2(10.0)), train, test, 0.5,
                             "a network held at 0", epochs=5)
    with pytest.raises(ValueError, match="fraction"):
        checks.assert_learns(build, train, test, 80, "a percentage")
