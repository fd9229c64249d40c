"""The full-size check on a GPU: every lab's models and lecture 05's comparison, timed.

Run:  python -m benchmarks.gpu_check

On a machine with a GPU it runs, each in a fresh kernel at the full size (``COURSE_SIZE=full``)
and with a compute-ledger cell appended (:func:`benchmarks.compute.run_notebook`, for real,
not dry):

- every lab's solution notebook that calls ``training.report``
  (:func:`benchmarks.lab_results.reporting_labs`);
- ``lectures/05_architectures_compared.ipynb``.

It prints one row per ``training.fit`` call, from the ledger: the model, its test accuracy where
the notebook printed a result line for it (:data:`utils.training.RESULT_LINE`; lecture 05 may
print several or none), the epochs, the training seconds and the images per second
(``images x epochs / seconds``, compilation included). Then it runs ``benchmarks.train_speed``
with the data on the device (:data:`TRAIN_SPEED_ARGS`) and prints its kit / plain ratio, and
ends with the GPU's name, the total wall time and the target: :data:`TARGET_MINUTES` minutes on
an H100. Exit status: 0, 1 when a notebook raised an error, 2 without a GPU.

Without a GPU it says so, and how to measure the labs on a CPU instead, before importing
TensorFlow: ``nvidia-smi -L`` (or ``/proc/driver/nvidia/gpus``) is asked first, and
``CUDA_VISIBLE_DEVICES=-1`` or empty hides the GPUs as it does from TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ("lectures/05_architectures_compared.ipynb",)  # trains every family, no report line
TARGET_MINUTES = 8  # the whole check, on one H100
CELL_TIMEOUT_S = 3600  # one training cell at the full size on a GPU
# The training-speed comparison, kept short: 2 rounds on 16,384 images (a few seconds on a GPU).
TRAIN_SPEED_ARGS = ["--rounds", "2", "--train-size", "16384", "--data-on-device"]
NO_GPU = ("benchmarks.gpu_check needs a GPU, and this machine shows none ({why}).\n"
          "On a CPU, measure the labs at the CPU size instead:\n"
          "    python -m benchmarks.lab_results --size cpu")


def gpu_hint() -> str | None:
    """Why this machine has no usable NVIDIA GPU, or None when one seems present.

    Cheap: reads ``CUDA_VISIBLE_DEVICES``, then asks ``nvidia-smi -L`` or the driver's
    ``/proc`` folder; imports nothing. TensorFlow has the last word (:func:`main`).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        if "GPU" in listing:
            return None
    driver = Path("/proc/driver/nvidia/gpus")
    if driver.is_dir() and any(driver.iterdir()):
        return None
    return "no NVIDIA driver answered: nvidia-smi -L lists no GPU"


def model_rows(run) -> list[dict]:
    """One row per ``fit`` call of a :class:`benchmarks.compute.LedgerRun` (a real run).

    A model's accuracy comes from the notebook's result lines, matched by model name (the last
    ``fit`` of that name gets it); None where no line names it.
    """
    from utils import training

    text = "".join(output.get("text", "") for cell in run.executed.cells
                   for output in cell.get("outputs", []) if output.get("name") == "stdout")
    accuracy = {m["model"]: float(m["accuracy"]) for m in training.RESULT_LINE.finditer(text)}
    last = {entry["model"]: index for index, entry in enumerate(run.entries)}
    return [{"notebook": Path(run.notebook).stem, "model": entry["model"],
             "accuracy": accuracy.get(entry["model"]) if last[entry["model"]] == index else None,
             "epochs": entry["epochs"], "seconds": entry["seconds"],
             "images": entry["images"] * entry["epochs"]}
            for index, entry in enumerate(run.entries)]


def format_rows(rows: list[dict]) -> list[str]:
    """The table of :func:`model_rows`' rows: notebook, model, accuracy, epochs, seconds, images/s.

    Images per second are ``images / seconds`` (the images of all epochs); "-" where a figure is
    missing (no result line, or no measurable time).
    """
    lines = [f"{'notebook':30s} {'model':24s} {'accuracy':>8s} {'epochs':>6s} {'training':>9s} "
             f"{'images/s':>9s}"]
    for row in rows:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        rate = f"{row['images'] / row['seconds']:9,.0f}" if row["seconds"] > 0 else f"{'-':>9s}"
        lines.append(f"{row['notebook']:30s} {row['model']:24s} {accuracy:>8s} "
                     f"{row['epochs']:6d} {row['seconds']:8.1f}s {rate}")
    if rows:
        seconds = sum(row["seconds"] for row in rows)
        lines.append(f"{'total training':30s} {'':24s} {'':8s} {'':6s} {seconds:8.1f}s")
    return lines


def gpu_names() -> list[str]:
    """The GPUs TensorFlow sees, by name (``device_name`` of their device details)."""
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status (0 passed, 1 a notebook raised, 2 no GPU)."""
    import argparse

    argparse.ArgumentParser(prog="python -m benchmarks.gpu_check",
                            description=__doc__.splitlines()[0]).parse_args(argv)
    why = gpu_hint()
    if why is None and not gpu_names():
        why = "TensorFlow sees no GPU: is the CUDA build of TensorFlow installed?"
    if why is not None:
        print(NO_GPU.format(why=why), file=sys.stderr)
        return 2
    from benchmarks import compute, lab_results, train_speed
    from utils.labs import format as labformat

    started = time.perf_counter()
    paths = [labformat.find(lab).path for lab in lab_results.reporting_labs()]
    paths += [ROOT / lecture for lecture in LECTURES]
    rows, failed = [], []
    for path in paths:
        run = compute.run_notebook(path, "full", dry=False, timeout=CELL_TIMEOUT_S)
        rows += model_rows(run)
        failed += [f"{run.notebook}: cell {index} raised {name}" for index, name, _ in run.raised]
        print(f"{run.notebook}: {len(run.entries)} fit calls, notebook {run.seconds:.1f} s",
              flush=True)
    print("\n" + "\n".join(format_rows(rows)))
    print("\nbenchmarks.train_speed " + " ".join(TRAIN_SPEED_ARGS))
    speed = train_speed.main(TRAIN_SPEED_ARGS)
    print(f"kit / plain with the data on the device: {speed['ratio']:.2f}")
    minutes = (time.perf_counter() - started) / 60
    print(f"\nGPU: {', '.join(gpu_names())}")
    print(f"total wall time: {minutes:.1f} min")
    print(f"target: at most {TARGET_MINUTES} minutes on an H100")
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
