"""The GPU configuration, rehearsed on the CPU (no test needs a GPU).

- Every notebook that trains runs top to bottom at the smoke size under
  ``COURSE_REHEARSE_GPU=1``: mixed_float16, XLA and the data on the device.
- Every lab's main model trains a few steps under mixed_bfloat16 (with XLA).
- Every lab's main model gives the same outputs compiled with XLA as eagerly (float32,
  inference). Lab 2 trains under a mirrored strategy in ``test_lab2_distributed.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from utils.labs import format as labformat
from utils.labs import notebooks

ROOT = Path(__file__).resolve().parents[1]
# lab -> (builder, keyword arguments): each lab's main 32x32 model, narrowed where it is wide.
MAIN_MODELS = {
    "lab1_lenet": ("lenet5", {"input_shape": (32, 32, 1), "num_classes": 10}),
    "lab2_alexnet": ("alexnet_small", {"input_shape": (32, 32, 1), "num_classes": 10,
                                       "width": 0.125}),
    "lab3_vgg": ("vgg_cifar", {"config": "deep", "input_shape": (32, 32, 1), "num_classes": 10,
                               "width": 0.125}),
    "lab4_inception": ("inception_small", {"input_shape": (32, 32, 1), "num_classes": 10,
                                           "aux": False, "config": "TINY_INCEPTION"}),
    "lab5_resnet": ("resnet_cifar", {"n": 3, "input_shape": (32, 32, 1), "num_classes": 10}),
    "lab6_looking_inside": ("three_stage_cnn", {"input_shape": (32, 32, 1), "num_classes": 10,
                                                "width": 0.5}),
    "lab7_features": ("source_cnn", {"input_shape": (32, 32, 1), "num_classes": 10, "width": 0.5}),
}
XLA_TOLERANCE = 1e-5  # largest difference allowed between XLA's and the eager probabilities


def _training_notebooks() -> list[Path]:
    paths = sorted((ROOT / "lectures").glob("*.ipynb")) + labformat.solution_paths()
    return [p for p in paths if "training.fit(" in p.read_text(encoding="utf-8")]


def build_main_model(lab_id: str):
    """The lab's main model, built by its solution's builder."""
    name, kwargs = MAIN_MODELS[lab_id]
    kwargs = dict(kwargs)
    if kwargs.get("config") == "TINY_INCEPTION":
        kwargs["config"] = labformat.load_functions(lab_id, ["TINY_INCEPTION"])["TINY_INCEPTION"]
    return labformat.load_functions(lab_id, [name])[name](**kwargs)


def test_every_lab_with_a_keras_model_is_covered():
    keras_labs = {p.stem for p in labformat.solution_paths()
                  if "training.fit(" in p.read_text(encoding="utf-8")}
    missing = keras_labs - set(MAIN_MODELS)
    assert not missing, f"add these labs to MAIN_MODELS: {missing}"


@pytest.mark.parametrize("lab_id", sorted(MAIN_MODELS))
def test_xla_forward_pass_equals_the_eager_one(lab_id):
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("float32")
    model = build_main_model(lab_id)
    x = np.random.default_rng(0).random((8, 32, 32, 1), dtype=np.float32)
    eager = np.asarray(model(x, training=False))
    compiled = tf.function(lambda images: model(images, training=False), jit_compile=True)
    xla = np.asarray(compiled(tf.constant(x)))
    assert xla.shape == eager.shape == (8, 10)
    difference = float(np.max(np.abs(xla - eager)))
    assert difference <= XLA_TOLERANCE, (
        f"{lab_id}: XLA's forward pass differs from the eager one by {difference:.2e} "
        f"(allowed {XLA_TOLERANCE:.0e})")


def test_every_main_model_trains_a_few_steps_under_mixed_bfloat16():
    # A fresh process: op determinism, on in this one, turns XLA off.
    script = textwrap.dedent("""
        import numpy as np
        from tests.test_gpu_rehearsal import MAIN_MODELS, build_main_model
        from utils import runtime, training

        rt = runtime.setup(seed=0, verbose=False)
        assert rt.policy == "mixed_bfloat16" and rt.xla and rt.data_on_device, rt
        rng = np.random.default_rng(0)
        x = rng.random((128, 32, 32, 1), dtype=np.float32)
        y = rng.integers(0, 10, size=128)
        for lab_id in MAIN_MODELS:
            history = training.fit(lambda lab_id=lab_id: build_main_model(lab_id), x, y,
                                   epochs=1, batch_size=32, runtime=rt, verbose=0)
            model = history.model
            convs = [layer for layer in model.layers if "conv" in type(layer).__name__.lower()]
            print("LAB", lab_id, history.history["loss"][-1], model.jit_compile,
                  convs[0].compute_dtype, model.output.dtype)
    """)
    env = {**os.environ, "COURSE_REHEARSE_GPU": "bfloat16"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[1]: line.split()[2:] for line in done.stdout.splitlines()
            if line.startswith("LAB ")}
    assert set(rows) == set(MAIN_MODELS), done.stdout[-2000:]
    for lab_id, (loss, jit, compute, output) in rows.items():
        assert np.isfinite(float(loss)), f"{lab_id}: loss {loss} under mixed_bfloat16"
        assert jit == "True", f"{lab_id}: XLA was off"
        assert compute == "bfloat16", f"{lab_id}: the convolutions computed in {compute}"
        assert output == "float32", f"{lab_id}: the output should be float32, found {output}"


@pytest.mark.parametrize("path", _training_notebooks(), ids=lambda p: p.name)
def test_every_training_notebook_runs_under_the_gpu_rehearsal(path, monkeypatch):
    monkeypatch.setenv("COURSE_REHEARSE_GPU", "1")  # mixed_float16, XLA, data on the device
    result = notebooks.run(path)
    failures = "\n".join(f"cell {index}: {name}: {message}"
                         for index, name, message in result.errors)
    assert result.ok, f"{path.name} failed under the GPU rehearsal:\n{failures}"
