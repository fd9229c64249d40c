"""Wall-clock time of whole notebooks at one size, against the per-notebook budget.

Run:  python -m benchmarks.notebook_times [NOTEBOOK ...] [--size smoke|cpu|full] [--budget S]

Each notebook (default: every lecture, ``lectures/*.ipynb``) runs top to bottom in a fresh
kernel at the chosen size (``COURSE_SIZE``; default cpu), start to end, compilation and data
loading included; the notebook file is not changed. One row per notebook: its seconds and
whether it stayed within the budget (default :data:`BUDGET_S`, the five minutes a cpu-size
notebook may take on 2 CPU cores). Exit status 1 when a notebook failed or went over.
For the labs, ``benchmarks.lab_results`` gives the same time with the main model's accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from utils.labs import notebooks

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0  # the cpu size's budget per notebook, on 2 CPU cores
CELL_TIMEOUT_S = 6 * 3600  # a full run of one training cell on a slow machine


def default_notebooks() -> list[Path]:
    """Every lecture notebook, in course order."""
    return sorted((ROOT / "lectures").glob("*.ipynb"))


def time_notebook(path: str | Path, size: str) -> dict:
    """Run ``path`` at ``size`` in a fresh kernel.

    Returns:
        ``{"notebook": file name, "seconds": wall-clock time, "errors": [(cell, name,
        message)], "executed": the executed nbformat notebook}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook; give the path of an .ipynb file.")
    with notebooks.environment(COURSE_SIZE=size, COURSE_QUICK=None):
        started = time.perf_counter()
        result = notebooks.run(path, timeout=CELL_TIMEOUT_S)
        seconds = time.perf_counter() - started
    return {"notebook": path.name, "seconds": seconds, "errors": result.errors,
            "executed": result.notebook}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.notebook_times")
    parser.add_argument("notebooks", nargs="*", help="notebook paths (default: every lecture)")
    parser.add_argument("--size", choices=["smoke", "cpu", "full"], default="cpu")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help=f"seconds allowed per notebook (default {BUDGET_S:.0f})")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or default_notebooks()
    print(f"size: {args.size}; budget {args.budget:.0f} s per notebook")
    print(f"{'notebook':40s} {'seconds':>8s}  verdict")
    failed = False
    for path in paths:
        row = time_notebook(path, args.size)
        if row["errors"]:
            verdict = f"FAILED: {row['errors'][0]}"
        elif row["seconds"] > args.budget:
            verdict = "over budget"
        else:
            verdict = "within budget"
        failed |= verdict != "within budget"
        print(f"{row['notebook']:40s} {row['seconds']:8.1f}  {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
