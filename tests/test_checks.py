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


def test_check_error_is_an_assertion_error():
    assert issubclass(checks.CheckError, AssertionError)


def test_assert_close_points_at_the_entry_outside_its_tolerance():
    expected = np.arange(6.0).reshape(2, 3)
    found = expected - 1e-5  # within rtol=1e-5 everywhere except at 0, where only atol counts
    with pytest.raises(checks.CheckError, match=r"at index \(0, 0\)"):
        checks.assert_close(found, expected, "x")
    with pytest.raises(checks.CheckError, match=r"found nan at index \(1,\)"):
        checks.assert_close([1.0, np.nan], [1.0, 2.0], "y")
