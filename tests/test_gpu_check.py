"""benchmarks.gpu_check: the exit without a GPU, and its table on synthetic rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from benchmarks import compute, gpu_check

ROOT = Path(__file__).resolve().parents[1]


def run_without_gpu(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_without_a_gpu_it_exits_2_and_says_how_to_run_on_a_cpu():
    done = run_without_gpu("-m", "benchmarks.gpu_check")
    assert done.returncode == 2, done.stderr
    assert "benchmarks.gpu_check needs a GPU" in done.stderr
    assert "CUDA_VISIBLE_DEVICES='-1' hides every GPU" in done.stderr
    assert "python -m benchmarks.lab_results --size cpu" in done.stderr
    assert done.stdout == ""


def test_without_a_gpu_it_stops_before_importing_tensorflow():
    done = run_without_gpu("-c", "import sys\nfrom benchmarks import gpu_check\n"
                                 "status = gpu_check.main([])\n"
                                 "print(status, 'tensorflow' in sys.modules)")
    assert done.stdout.split() == ["2", "False"], done.stderr


def test_format_rows_gives_accuracy_time_and_images_per_second():
    rows = [
        {"notebook": "lab1_lenet", "model": "lenet5_augmented", "accuracy": 0.91234,
         "epochs": 30, "seconds": 60.0, "images": 1_800_000},
        {"notebook": "05_architectures_compared", "model": "resnet20", "accuracy": None,
         "epochs": 2, "seconds": 0.0, "images": 1000},
    ]
    lines = gpu_check.format_rows(rows)
    assert lines[0].split() == ["notebook", "model", "accuracy", "epochs", "training",
                                "images/s"]
    assert lines[1].split() == ["lab1_lenet", "lenet5_augmented", "0.9123", "30", "60.0s",
                                "30,000"]
    assert lines[2].split() == ["05_architectures_compared", "resnet20", "-", "2", "0.0s", "-"]
    assert lines[3].split() == ["total", "training", "60.0s"]
    assert gpu_check.format_rows([]) == lines[:1]


def test_model_rows_take_each_accuracy_from_the_result_line_of_that_model():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    printed = "epoch 1\nResult: lenet5 on fashion_mnist: test accuracy 0.9102, 2 epochs in 12.3 s\n"
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    entries = [{"model": name, "mult_adds": 10, "images": 100, "epochs": 2, "flop": 12000,
                "seconds": seconds} for name, seconds in
               (("lenet5", 4.0), ("tiny", 1.0), ("lenet5", 12.3))]
    run = compute.LedgerRun("solutions/lab1_lenet.ipynb", "full", entries, executed=nb, dry=False)
    rows = gpu_check.model_rows(run)
    figures = [(r["notebook"], r["model"], r["accuracy"], r["seconds"], r["images"]) for r in rows]
    assert figures == [("lab1_lenet", "lenet5", None, 4.0, 200),
                       ("lab1_lenet", "tiny", None, 1.0, 200),
                       ("lab1_lenet", "lenet5", 0.9102, 12.3, 200)]
