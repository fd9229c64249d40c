"""Per-lab results: test accuracy and training time of each lab's main model, as the lab trains it.

Run:  python -m benchmarks.lab_results [LAB ...] [--size smoke|cpu|full] [--full]

It executes each solution notebook (``solutions/<lab>.ipynb``, all labs by default) top to
bottom in a fresh kernel at the chosen size (``COURSE_SIZE``; default cpu, ``--full`` is
``--size full``), and reads the
line that the lab prints with ``training.report`` after training its main model::

    Result: lenet5 on fashion_mnist: test accuracy 0.9102, 2 epochs in 12.3 s

It prints one row per lab with that line's figures and the whole notebook's wall-clock time,
the figures of the README's results table. Nothing is asserted: timings are noisy.
"""

from __future__ import annotations

import argparse

from benchmarks import notebook_times
from utils import training
from utils.labs import format as labformat


def reporting_labs(solutions_dir=labformat.SOLUTIONS_DIR) -> list[str]:
    """The labs whose solution calls ``training.report`` (Lab 0 trains no Keras model)."""
    return [path.stem for path in labformat.solution_paths(solutions_dir)
            if "training.report(" in path.read_text(encoding="utf-8")]


def run_lab(lab_id: str, size: str, solutions_dir=labformat.SOLUTIONS_DIR) -> dict:
    """Execute one lab's solution notebook at ``size`` and return its result line's figures."""
    path = labformat.find(lab_id, solutions_dir).path
    run = notebook_times.time_notebook(path, size)
    if run["errors"]:
        raise RuntimeError(f"{path.name} failed: {run['errors']}")
    seconds = run["seconds"]
    text = "".join(output.get("text", "") for cell in run["executed"].cells
                   for output in cell.get("outputs", []) if output.get("name") == "stdout")
    found = list(training.RESULT_LINE.finditer(text))
    if len(found) != 1:
        raise RuntimeError(f"{path.name} printed {len(found)} result lines; it should call "
                           "training.report once, for its main model.")
    figures = found[0].groupdict()
    return {"lab": lab_id, "model": figures["model"], "dataset": figures["dataset"],
            "accuracy": float(figures["accuracy"]), "epochs": int(figures["epochs"]),
            "train_seconds": float(figures["seconds"]), "notebook_seconds": seconds}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lab_results")
    parser.add_argument("labs", nargs="*",
                        help="lab ids (default: every lab that calls training.report)")
    parser.add_argument("--size", choices=["smoke", "cpu", "full"], default="cpu",
                        help="run size (default cpu, what a laptop without a GPU gets)")
    parser.add_argument("--full", action="store_true", help="the same as --size full")
    parser.add_argument("--solutions", default=labformat.SOLUTIONS_DIR)
    args = parser.parse_args(argv)
    labs = args.labs or reporting_labs(args.solutions)
    size = "full" if args.full else args.size
    print(f"size: {size}")
    print(f"{'lab':16s} {'model':18s} {'data':14s} {'accuracy':>8s} {'epochs':>6s} "
          f"{'training':>9s} {'notebook':>9s}")
    rows = []
    for lab_id in labs:
        row = run_lab(lab_id, size, args.solutions)
        rows.append(row)
        print(f"{lab_id:16s} {row['model']:18s} {row['dataset']:14s} {row['accuracy']:8.4f} "
              f"{row['epochs']:6d} {row['train_seconds']:8.1f}s {row['notebook_seconds']:8.1f}s",
              flush=True)
    return rows


if __name__ == "__main__":
    main()
