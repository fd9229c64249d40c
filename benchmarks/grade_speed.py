"""Grading throughput: how long the autograder takes for a batch of submissions.

Run:  python -m benchmarks.grade_speed [--count 20] [--lab lab0_perceptron] [--jobs 1]

It writes ``--count`` submissions of one lab to a temporary folder (alternately a completed
notebook and the untouched generated one, so both the passing and the "not attempted"
paths are timed), grades the folder with ``python -m utils.labs.grade`` in quick mode, exactly
as an instructor would, and prints the wall-clock time, the seconds per notebook and the
notebooks per minute. Nothing is asserted: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nbformat

from utils.labs import build, grade
from utils.labs import format as labformat


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grade_speed")
    parser.add_argument("--count", type=int, default=20, help="submissions in the batch")
    parser.add_argument("--lab", default="lab0_perceptron")
    parser.add_argument("--solutions", type=Path, default=labformat.SOLUTIONS_DIR)
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time")
    args = parser.parse_args(argv)
    lab = labformat.find(args.lab, args.solutions)
    with tempfile.TemporaryDirectory(prefix="grade-speed-") as workdir:
        folder, out = Path(workdir, "submissions"), Path(workdir, "grades")
        folder.mkdir()
        for index in range(args.count):
            nb = build.completed_version(lab) if index % 2 == 0 else build.student_version(lab)
            nbformat.write(nb, str(folder / f"student_{index:03d}.ipynb"))
        started = time.perf_counter()
        reports = grade.grade_folder(folder, out, jobs=args.jobs, solutions_dir=args.solutions)
        seconds = time.perf_counter() - started
    graded = [r for r in reports if not r.errors]
    figures = {"notebooks": len(reports), "graded": len(graded), "seconds": seconds,
               "seconds_per_notebook": seconds / len(reports),
               "notebooks_per_minute": 60 * len(reports) / seconds}
    print(f"lab {lab.id}: {len(reports)} submissions, {len(graded)} graded without error, "
          f"jobs={args.jobs}")
    print(f"wall clock:            {seconds:.1f} s")
    print(f"per notebook:          {figures['seconds_per_notebook']:.2f} s")
    print(f"throughput:            {figures['notebooks_per_minute']:.1f} notebooks/min")
    print(f"slowest single grade:  {max(r.seconds for r in reports):.1f} s")
    return figures


if __name__ == "__main__":
    main()
