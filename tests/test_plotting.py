"""plotting: each function returns a Figure with the expected content, and rejects bad shapes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers
from matplotlib.figure import Figure

from utils import plotting

RNG = np.random.default_rng(0)


def test_image_grid_titles_and_png():
    fig = plotting.image_grid(RNG.random((5, 8, 8, 1)), [0, 1, 2, 1, 0], ["a", "b", "c"], ncols=3)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["a", "b", "c", "b", "a"]
    assert len(fig.axes) == 6  # 2 rows of 3, one empty
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plotting.image_grid(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="labels has 2 entries for 3 images"):
        plotting.image_grid(np.zeros((3, 8, 8)), [0, 1])


def test_training_curves_from_history_dict():
    logs = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}
    fig = plotting.training_curves(logs)
    assert len(fig.axes) == 2
    loss_axis = fig.axes[0]
    assert [line.get_label() for line in loss_axis.lines] == ["train", "validation"]
    np.testing.assert_allclose(loss_axis.lines[0].get_ydata(), [1.0, 0.5])
    with pytest.raises(ValueError, match="no \\['f1'\\]"):
        plotting.training_curves(logs, metrics=("f1",))


def test_filter_bank_from_keras_kernel_layout():
    kernel = RNG.normal(size=(5, 5, 1, 6))
    fig = plotting.filter_bank(kernel, ncols=3)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 6 and images[0].shape == (5, 5)
    assert all(np.isclose(img.min(), 0) and np.isclose(img.max(), 1) for img in images)
    with pytest.raises(ValueError, match="16 input channels"):
        plotting.filter_bank(RNG.normal(size=(3, 3, 16, 4)))


def test_feature_maps_of_a_named_layer():
    inputs = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    outputs = layers.Dense(2, name="out")(layers.Flatten(name="flatten")(x))
    model = keras.Model(inputs, outputs)
    fig = plotting.feature_maps(model, "conv1", RNG.random((8, 8, 1)))
    assert sum(1 for ax in fig.axes if ax.images) == 3
    assert "conv1: 3 of 3 feature maps" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        plotting.feature_maps(model, "conv9", RNG.random((8, 8, 1)))
    with pytest.raises(ValueError, match="input shape"):
        plotting.feature_maps(model, "conv1", RNG.random((9, 9, 1)))


def test_confusion_matrix_counts_and_accuracy_title():
    fig = plotting.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"], normalize=False)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    assert ax.get_title() == "accuracy 0.750"
    with pytest.raises(ValueError, match="4 labels but y_pred has 3"):
        plotting.confusion_matrix([0, 0, 1, 2], [0, 1, 1], ["a", "b", "c"])
