"""Lab 2 ("trained on 2 GPUs for a week"): the lab's 32x32 AlexNet trains under the kit's
data-parallel strategy, here a MirroredStrategy over two logical CPU devices."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_alexnet_small_trains_under_a_mirrored_strategy_on_two_logical_cpus():
    # Logical devices must be configured before TensorFlow initialises, hence a fresh process.
    script = textwrap.dedent("""
        import numpy as np
        from utils import runtime, training
        from utils.labs import format as labformat

        rt = runtime.setup(seed=0, logical_cpus=2)
        builder = labformat.load_functions("lab2_alexnet", ["alexnet_small"])["alexnet_small"]
        rng = np.random.default_rng(0)
        x = rng.random((256, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, size=256)
        colour = (np.array([0.05, 0.01, 0.001]), np.eye(3))  # exercise the FancyPCA layer too
        history = training.fit(
            lambda: builder(input_shape=(32, 32, 3), num_classes=10, width=0.125,
                            color_pca=colour),
            x, y, epochs=1, batch_size=64, runtime=rt, verbose=0)
        variable = type(history.model.weights[0].value).__name__
        print("STRATEGY", type(rt.strategy).__name__, rt.num_replicas, variable)
        print("LOSS", history.history["loss"][0])
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()
             if line.startswith(("STRATEGY", "LOSS"))}
    assert set(lines) == {"STRATEGY", "LOSS"}, done.stdout[-2000:]
    strategy, replicas, variable = lines["STRATEGY"]
    assert (strategy, int(replicas)) == ("MirroredStrategy", 2), lines["STRATEGY"]
    assert "Mirrored" in variable, f"the model's variables should be mirrored, got {variable}"
    loss = float(lines["LOSS"][0])
    assert math.isfinite(loss), f"loss after one epoch: {loss}"
