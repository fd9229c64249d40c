"""Lab 7's pieces outside its graded exercises: the online path's offline failure (fast, with a
clear message, no network touched), the V1-like builder, the optimizer that slows the
transferred layers, the search space, and that the search is never given test data."""

from __future__ import annotations

import ast
import time

import numpy as np
import pytest

from utils.labs import format as labformat
from utils.labs import notebooks

LAB = "lab7_features"


@pytest.fixture(scope="module")
def lab():
    names = ["imagenet_base", "PretrainedUnavailable", "MOBILENET_TAPS", "v1_like", "STAGES",
             "SlowerLayers", "sample_architecture", "source_cnn", "layer_features"]
    return labformat.load_functions(LAB, names)


def test_the_online_path_fails_fast_and_clearly_when_offline(lab, monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights
    monkeypatch.setenv("COURSE_OFFLINE", "1")  # sources.is_online answers False without a probe
    started = time.perf_counter()
    with pytest.raises(lab["PretrainedUnavailable"]) as raised:
        lab["imagenet_base"]()
    assert time.perf_counter() - started < 1.0
    message = str(raised.value)
    assert "MobileNetV2" in message and "offline" in message and str(tmp_path) in message


def test_the_online_path_never_probes_when_told_it_is_offline(lab, monkeypatch, tmp_path):
    from utils import sources

    def no_probe(*args, **kwargs):
        raise AssertionError("the network was probed")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(sources, "is_online", no_probe)
    with pytest.raises(lab["PretrainedUnavailable"]):
        lab["imagenet_base"](online=False)


def test_the_notebook_announces_the_fallback_instead_of_substituting_silently():
    source = "\n".join(cell.source for cell in labformat.find(LAB).notebook.cells)
    assert "except PretrainedUnavailable as error:" in source
    assert 'print(f"not used: {error}' in source


def test_the_pretrained_branch_taps_layers_that_exist(lab):
    base = lab["imagenet_base"]((32, 32, 3), weights=None)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    features = lab["layer_features"](base, list(lab["MOBILENET_TAPS"].values()), x)
    assert [f.shape[0] for f in features.values()] == [2] * len(lab["MOBILENET_TAPS"])


def test_v1_like_has_frozen_zero_mean_unit_norm_filters(lab):
    model = lab["v1_like"]((28, 28, 1), lab["STAGES"])
    assert model.trainable_weights == []
    for number, stage in enumerate(lab["STAGES"], start=1):
        bank = model.get_layer(f"stage{number}_filters").get_weights()[0]
        flat = bank.reshape(-1, stage["filters"])
        np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(flat, axis=0), 1, rtol=1e-5)
    x = np.random.default_rng(1).random((3, 28, 28, 1)).astype("float32")
    assert model(x).shape == (3, 5 * 5 * 32)  # 28 -> 12 (5x5 pool, stride 2) -> 5 (3x3, stride 2)
    same = lab["v1_like"]((28, 28, 1), lab["STAGES"])  # the same seed, the same filters
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(same(x)), rtol=1e-6)


def test_v1_like_ablations_remove_their_layers(lab):
    names = {layer.name for layer in lab["v1_like"]((28, 28, 1), lab["STAGES"], lcn=False,
                                                     rectify=False, normalize=False).layers}
    assert not {"lcn", "stage1_relu", "stage1_norm"} & names
    assert "stage1_pool" in names
    unpooled = lab["v1_like"]((28, 28, 1), lab["STAGES"][:1], pool=False)
    assert unpooled.output.shape[1] == 14 * 14 * 16  # every second position


def test_slower_layers_scales_exactly_the_chosen_updates(lab):
    import keras

    slow, fast = keras.Variable(np.ones(3, "float32")), keras.Variable(np.ones(2, "float32"))
    optimizer = lab["SlowerLayers"]([slow.path], 0.1, learning_rate=0.5)
    optimizer.apply([np.full(3, 2.0, "float32"), np.full(2, 2.0, "float32")], [slow, fast])
    np.testing.assert_allclose(np.asarray(slow), 1 - 0.5 * 0.1 * 2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fast), 1 - 0.5 * 2, rtol=1e-6)
    config = optimizer.get_config()
    assert config["slow_paths"] == [slow.path] and config["factor"] == 0.1


def test_the_search_space_gives_valid_architectures(lab):
    generator = np.random.default_rng(0)
    for _ in range(50):
        stages = lab["sample_architecture"](generator)
        assert 1 <= len(stages) <= 2
        for stage in stages:
            assert stage["size"] % 2 == 1 and stage["norm"] % 2 == 1 and stage["p"] >= 1


def test_the_search_is_given_training_data_only():
    """The notebook's random_search call passes no test array, and the exercise's function reads
    no name of the notebook's data."""
    nb = labformat.find(LAB).notebook
    calls = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(notebooks.parse_cell(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "random_search":
                calls.append(ast.unparse(node))
            if isinstance(node, ast.FunctionDef) and node.name == "random_search":
                read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                assert not {name for name in read if "test" in name or name == "ds"}, read
    assert calls and all("test" not in call for call in calls), calls


def test_the_source_cnn_is_lab6s_builder(lab):
    model = lab["source_cnn"]((28, 28, 1), 5, width=0.25)
    assert model.output.shape == (None, 5)
    for name in ("block1_conv1_relu", "block2_conv1_relu", "block3_conv1_relu", "fc1_relu",
                 "fc1_dropout"):
        model.get_layer(name)
