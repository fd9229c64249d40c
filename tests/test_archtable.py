"""archtable: counts agree with Keras count_params and the formulas; bad tables are refused."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from utils import archtable


def keras_params(layer, input_shape) -> int:
    """Parameters of one Keras layer built for ``input_shape`` (batch axis excluded)."""
    layer.build((None, *input_shape))
    return layer.count_params()


def test_small_sequential_table_matches_keras_layer_by_layer():
    table = [
        {"layer": "in", "kind": "input", "out": "12x12x3"},
        {"layer": "c1", "kind": "conv", "out": 8, "kernel": 3, "padding": "same", "bn": 1},
        {"layer": "p1", "kind": "maxpool", "kernel": 2},
        {
            "layer": "c2",
            "kind": "conv",
            "out": "6",
            "kernel": "3",
            "stride": "2",
            "padding": "1",
            "groups": "2",
            "bias": "0",
        },
        {"layer": "f", "kind": "flatten"},
        {"layer": "d", "kind": "fc", "out": 5},
    ]
    found = archtable.count(table)
    assert [layer.shape for layer in found.layers] == [
        (12, 12, 3),
        (12, 12, 8),
        (6, 6, 8),
        (3, 3, 6),
        (54,),
        (5,),
    ]
    expected = [
        keras_params(layers.Conv2D(8, 3, padding="same"), (12, 12, 3))
        + keras_params(layers.BatchNormalization(), (12, 12, 8)),
        0,
        keras_params(layers.Conv2D(6, 3, strides=2, groups=2, use_bias=False), (8, 8, 8)),
        0,
        keras_params(layers.Dense(5), (54,)),
    ]
    assert [layer.params for layer in found.layers[1:]] == expected
    assert found.params == sum(expected)
    # Multiply-adds: output positions x kernel area x input channels per group x filters.
    assert found.layers[1].mult_adds == 12 * 12 * 3 * 3 * 3 * 8
    assert found.layers[3].mult_adds == 3 * 3 * 3 * 3 * (8 // 2) * 6
    assert found.layers[5].mult_adds == 54 * 5
    assert found.depth == 3


def test_inception_row_is_the_sum_of_its_six_keras_convolutions():
    shape, (n1, r3, n3, r5, n5, pool_proj) = (7, 7, 10), (4, 3, 5, 2, 3, 6)
    table = [{"kind": "input", "out": "7x7x10"}, {"kind": "inception", "out": "4/3/5/2/3/6"}]
    found = archtable.count(table)
    expected = sum(
        keras_params(layers.Conv2D(filters, kernel, padding="same"), in_shape)
        for filters, kernel, in_shape in [
            (n1, 1, shape),
            (r3, 1, shape),
            (n3, 3, (7, 7, r3)),
            (r5, 1, shape),
            (n5, 5, (7, 7, r5)),
            (pool_proj, 1, shape),
        ]
    )
    assert found.params == expected
    assert found.layers[-1].shape == (7, 7, n1 + n3 + n5 + pool_proj)
    assert found.depth == 2


def test_bottleneck_stages_match_keras_resnet50_without_its_top():
    table = [
        {"kind": "input", "out": "64x64x3"},
        {"kind": "conv", "out": 64, "kernel": 7, "stride": 2, "padding": 3, "bn": 1},
        {"kind": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
        {"kind": "bottleneck", "out": "64/64/256", "bn": 1, "repeat": 3},
        {"kind": "bottleneck", "out": "128/128/512", "stride": 2, "bn": 1, "repeat": 4},
        {"kind": "bottleneck", "out": "256/256/1024", "stride": 2, "bn": 1, "repeat": 6},
        {"kind": "bottleneck", "out": "512/512/2048", "stride": 2, "bn": 1, "repeat": 3},
    ]
    reference = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    found = archtable.count(table)
    assert found.params == reference.count_params()
    assert found.layers[-1].shape == tuple(reference.output.shape[1:])
    assert found.depth == 49  # 1 + 16 blocks x 3 convolutions (the fc layer is left out)
    assert archtable.model_mult_adds(reference) == found.mult_adds


def test_model_mult_adds_counts_every_kind_of_kernel_also_in_nested_models():
    inputs = keras.Input((32, 32, 3))
    x = keras.Sequential([layers.Conv2D(8, 3, padding="same", name="c1")], name="stem")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(8, 3, groups=2, name="c2")(x)
    x = layers.DepthwiseConv2D(3, name="dw")(x)
    x = layers.SeparableConv2D(4, 3, name="sep")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, layers.Dense(10, name="fc")(x))
    expected = (32 * 32 * 3 * 3 * 3 * 8  # c1, inside the nested model
                + 30 * 30 * 3 * 3 * (8 // 2) * 8  # c2: each filter sees half the channels
                + 28 * 28 * 3 * 3 * 8  # dw: one 3x3 filter per channel
                + 26 * 26 * (3 * 3 * 8 + 8 * 4)  # sep: depthwise then pointwise
                + 4 * 10)  # fc
    assert archtable.model_mult_adds(model) == expected
    inputs = keras.Input((16, 3))
    with pytest.raises(TypeError, match="'conv1d'.*Conv1D"):
        archtable.model_mult_adds(keras.Model(inputs, layers.Conv1D(2, 3, name="conv1d")(inputs)))


def test_lenet_subsampling_and_partial_connections():
    table = [
        {"kind": "input", "out": "14x14x6"},
        {"kind": "conv", "out": 16, "kernel": 5, "connections": 60},
        {"kind": "subsample", "kernel": 2},
    ]
    found = archtable.count(table)
    assert [layer.params for layer in found.layers[1:]] == [60 * 25 + 16, 2 * 16]
    assert found.layers[1].mult_adds == 10 * 10 * 60 * 25
    assert found.layers[2].shape == (5, 5, 16)


def test_read_table_gives_string_rows(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("layer,kind,out,kernel\nimage,input,4x4x1,\nfc,fc,3,\n", encoding="utf-8")
    rows = archtable.read_table(path)
    assert rows[1] == {"layer": "fc", "kind": "fc", "out": "3", "kernel": ""}
    assert archtable.count(rows).params == 16 * 3 + 3


@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        ("conv", TypeError, "list of dicts"),
        ([{"kind": "conv", "out": 3, "kernel": 3}], ValueError, "start with a row of kind 'input'"),
        ([{"kind": "input", "out": "8x8"}], ValueError, "3 positive whole numbers"),
        ([{"kind": "input", "out": "8x8x1"}, {"kind": "dense"}], ValueError, "kind='dense'"),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "conv", "out": 4}],
            ValueError,
            "'kernel' is required",
        ),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "conv", "out": 4, "kernel": "3.5"}],
            ValueError,
            "kernel='3.5' should be a whole number",
        ),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "conv", "out": 4, "kernel": 3.0}],
            TypeError,
            "kernel=3.0",
        ),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "conv", "out": 4, "kernel": 11}],
            ValueError,
            "does not fit",
        ),
        (
            [
                {"kind": "input", "out": "8x8x3"},
                {"kind": "conv", "out": 4, "kernel": 3, "groups": 2},
            ],
            ValueError,
            "groups=2",
        ),
        (
            [
                {"kind": "input", "out": "8x8x1"},
                {"kind": "fc", "out": 4},
                {"kind": "maxpool", "kernel": 2},
            ],
            ValueError,
            "pooling needs an",
        ),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "inception", "out": "1/2/3"}],
            ValueError,
            "6 positive whole numbers",
        ),
        (
            [{"kind": "input", "out": "8x8x1"}, {"kind": "fc", "out": 4, "bias": 2}],
            ValueError,
            "should be 0 or 1",
        ),
    ],
)
def test_bad_tables_are_refused_with_a_clear_message(table, error, message):
    with pytest.raises(error, match=message):
        archtable.count(table)
