"""runtime.setup: seeding, determinism, strategy, precision; training.fit on top of it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from utils import runtime, training

ROOT = Path(__file__).resolve().parents[1]


def tiny_cnn(input_shape=(8, 8, 1), num_classes=3) -> keras.Model:
    """``(B, 8, 8, 1) -> (B, 3)``: one conv, one dense."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.2
    x[np.arange(n), y * 2, y * 2, 0] = 1.0  # a bright pixel whose position gives the class
    return x, y


def _train_once(seed):
    rt = runtime.setup(seed=seed, verbose=False)
    x, y = toy_data()
    history = training.fit(tiny_cnn, x, y, epochs=2, batch_size=16, runtime=rt, verbose=0)
    return history


def test_setup_on_cpu_reports_and_disables_gpu_features(capsys):
    rt = runtime.setup(seed=3)
    report = capsys.readouterr().out
    assert rt.gpus == [] and rt.num_replicas == 1
    assert rt.mixed_precision is False and rt.xla is False and rt.deterministic is True
    assert keras.mixed_precision.global_policy().name == "float32"
    assert "Accelerator: none" in report and "mixed precision: off" in report
    assert "Seed: 3" in report
    assert "Size: smoke, because COURSE_SIZE=smoke" in report  # the student is told the size
    assert "Precision: float32 (no GPU" in report and rt.rehearsal is False


def test_same_seed_gives_identical_weights_on_cpu():
    first = _train_once(seed=1).model.get_weights()
    second = _train_once(seed=1).model.get_weights()
    other = _train_once(seed=2).model.get_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other, strict=True))


def test_fit_returns_history_with_progress_and_learns():
    rt = runtime.setup(seed=0, verbose=False)
    x, y = toy_data(n=192)
    history = training.fit(tiny_cnn, x, y, epochs=8, batch_size=32, runtime=rt,
                           learning_rate=0.01, validation_data=(x[:64], y[:64]), verbose=0)
    assert isinstance(history, keras.callbacks.History)
    logs = history.history
    assert len(logs["loss"]) == 8 and "val_accuracy" in logs
    assert logs["loss"][-1] < logs["loss"][0]
    result = training.evaluate(history.model, x, y)
    assert result["accuracy"] > 0.9, result
    probabilities = training.predict(history.model, x[:5])
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_fit_rejects_bad_arguments():
    x, y = toy_data(n=32)
    with pytest.raises(ValueError, match="epochs=0"):
        training.fit(tiny_cnn, x, y, epochs=0)
    with pytest.raises(TypeError, match="keras.Model or a builder"):
        training.fit(42, x, y, epochs=1)
    with pytest.raises(ValueError, match=r"shape \(N, H, W, C\)"):
        training.fit(tiny_cnn, x[..., 0], y, epochs=1)


def test_setup_rejects_bad_flags():
    with pytest.raises(ValueError, match="xla='yes'"):
        runtime.setup(xla="yes", verbose=False)
    with pytest.raises(ValueError, match="needs a GPU.*COURSE_REHEARSE_GPU=1"):
        runtime.setup(mixed_precision=True, verbose=False)
    with pytest.raises(ValueError, match="mixed_precision='float8'"):
        runtime.setup(mixed_precision="float8", verbose=False)
    with pytest.raises(ValueError, match="rehearse='sometimes'"):
        runtime.setup(rehearse="sometimes", verbose=False)
    with pytest.raises(ValueError, match="logical_cpus=0"):
        runtime.setup(logical_cpus=0, verbose=False)


def test_mirrored_strategy_on_two_logical_cpus():
    # Logical devices must be configured before TensorFlow starts, hence a fresh process.
    script = textwrap.dedent("""
        import numpy as np
        from tests.test_runtime import tiny_cnn, toy_data
        from utils import runtime, training

        rt = runtime.setup(seed=0, logical_cpus=2)
        assert type(rt.strategy).__name__ == "MirroredStrategy", rt.strategy
        assert rt.num_replicas == 2, rt.num_replicas
        x, y = toy_data(n=128)
        history = training.fit(tiny_cnn, x, y, epochs=3, batch_size=32, runtime=rt, verbose=0)
        variable = history.model.weights[0].value
        print("REPLICAS", rt.num_replicas, type(variable).__name__)
        print("LOSS", history.history["loss"][0], history.history["loss"][-1])
        on_device = training.fit(tiny_cnn, x, y, epochs=3, batch_size=32, runtime=rt,
                                 data_on_device=True, verbose=0)
        print("DEVICE_LOSS", on_device.history["loss"][0], on_device.history["loss"][-1])
        # An optimizer object made outside the strategy's scope (TensorFlow would refuse it).
        import keras
        sgd = keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.05, 12), momentum=0.9)
        scheduled = training.fit(tiny_cnn, x, y, epochs=3, batch_size=32, runtime=rt,
                                 optimizer=sgd, verbose=0)
        print("SGD_LOSS", scheduled.history["loss"][0], scheduled.history["loss"][-1])
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Strategy: MirroredStrategy over 2 devices" in done.stdout
    replicas_line = next(ln for ln in done.stdout.splitlines() if ln.startswith("REPLICAS"))
    assert "Mirrored" in replicas_line, replicas_line
    first, last = map(float, next(ln for ln in done.stdout.splitlines()
                                  if ln.startswith("LOSS")).split()[1:])
    assert last < first
    first, last = map(float, next(ln for ln in done.stdout.splitlines()
                                  if ln.startswith("DEVICE_LOSS")).split()[1:])
    assert last < first
    first, last = map(float, next(ln for ln in done.stdout.splitlines()
                                  if ln.startswith("SGD_LOSS")).split()[1:])
    assert last < first


def test_data_on_device_trains_exactly_like_the_host_pipeline():
    x, y = toy_data(n=192)
    images = (x * 255).astype(np.uint8)
    runs = []
    for on_device in (False, True):
        rt = runtime.setup(seed=0, verbose=False)
        history = training.fit(tiny_cnn, images, y, epochs=3, batch_size=32, runtime=rt,
                               learning_rate=0.01, validation_data=(images[:64], y[:64]),
                               data_on_device=on_device, verbose=0)
        assert history.model.name == "tiny_cnn"  # the model itself, not the device wrapper
        assert 0 < history.seconds < 600, history.seconds
        line = training.report(history, 0.5, "toy")
        found = training.RESULT_LINE.fullmatch(line)
        assert found and found["model"] == "tiny_cnn" and found["epochs"] == "3", line
        assert float(found["seconds"]) == pytest.approx(history.seconds, abs=0.05)
        runs.append(history)
    host, device = runs
    assert host.history == device.history
    for a, b in zip(host.model.get_weights(), device.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert training.evaluate(device.model, images, y)["accuracy"] > 0.9


class _Chosen(Exception):
    """Raised by the stand-ins below once fit has chosen its input pipeline."""


@pytest.mark.parametrize("gpus, on_device", [([], False), (["GPU 0 (a stand-in)"], True)])
def test_data_goes_on_the_device_by_default_exactly_when_there_is_a_gpu(monkeypatch, gpus,
                                                                         on_device):
    rt = dataclasses.replace(runtime.setup(seed=0, verbose=False), gpus=gpus)

    def chose(where):
        def stand_in(*args, **kwargs):
            raise _Chosen(where)
        return stand_in

    monkeypatch.setattr(training, "_on_device", chose("device"))
    monkeypatch.setattr(training.pipeline, "make", chose("host"))
    x, y = toy_data(n=32)
    with pytest.raises(_Chosen) as chosen:
        training.fit(tiny_cnn, x, y, epochs=1, runtime=rt, verbose=0)
    assert str(chosen.value) == ("device" if on_device else "host")


# --- precision choice and the GPU rehearsal ---------------------------------------------------


@pytest.mark.parametrize(("capabilities", "policy", "why"), [
    ([], "float32", "no GPU"),
    ([(6, 1)], "float32", "6.1 < 7.0"),
    ([(7, 0)], "mixed_float16", "7.0 (Volta/Turing)"),  # V100
    ([(7, 5)], "mixed_float16", "7.5 (Volta/Turing)"),  # T4
    ([(8, 0)], "mixed_bfloat16", "8.0 >= 8.0"),  # A100
    ([(8, 9)], "mixed_bfloat16", "8.9 >= 8.0"),  # L4
    ([(9, 0), (9, 0)], "mixed_bfloat16", "9.0 >= 8.0"),  # two H100s
    ([(9, 0), (7, 5)], "mixed_float16", "7.5"),  # the slowest GPU decides
])
def test_choose_precision(capabilities, policy, why):
    chosen, reason = runtime.choose_precision(capabilities)
    assert chosen == policy and why in reason, (chosen, reason)


class _FakeGPU:
    name = "/physical_device:GPU:0"


@pytest.mark.parametrize(("capability", "policy"), [((7, 5), "mixed_float16"),
                                                    ((9, 0), "mixed_bfloat16")])
def test_setup_reports_the_policy_it_chose_for_a_faked_gpu(monkeypatch, capsys, capability,
                                                           policy):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [_FakeGPU()] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda gpu: {"device_name": "Fake GPU", "compute_capability": capability})
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)
    try:
        rt = runtime.setup(seed=0)
        report = capsys.readouterr().out
        assert rt.policy == policy and keras.mixed_precision.global_policy().name == policy
        assert rt.xla and rt.data_on_device and not rt.rehearsal
        assert f"Precision: {policy} (compute capability" in report, report
        assert "1 GPU(s): Fake GPU" in report
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(("raw", "policy"),
                         [("1", "mixed_float16"), ("bfloat16", "mixed_bfloat16")])
def test_the_rehearsal_switch_gives_the_gpu_configuration_on_the_cpu(raw, policy):
    # A fresh process: op determinism, which turns XLA off, cannot be undone in this one.
    script = textwrap.dedent(f"""
        import keras
        from tests.test_runtime import tiny_cnn, toy_data
        from utils import runtime, training

        rt = runtime.setup(seed=0)
        assert rt.rehearsal and rt.policy == "{policy}" and rt.xla and rt.data_on_device, rt
        assert keras.mixed_precision.global_policy().name == "{policy}"
        x, y = toy_data(n=192)
        history = training.fit(tiny_cnn, x, y, epochs=6, batch_size=32, runtime=rt,
                               learning_rate=0.01, verbose=0)
        assert history.model.jit_compile is True, "XLA was turned off"
        assert history.model.get_layer("conv").compute_dtype == "{policy.removeprefix('mixed_')}"
        print("LOSS", history.history["loss"][0], history.history["loss"][-1])
    """)
    env = {**os.environ, "COURSE_REHEARSE_GPU": raw}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rehearsing the GPU configuration" in done.stdout
    assert f"Precision: {policy} (rehearsing" in done.stdout, done.stdout
    first, last = map(float, next(ln for ln in done.stdout.splitlines()
                                  if ln.startswith("LOSS")).split()[1:])
    assert last < first
