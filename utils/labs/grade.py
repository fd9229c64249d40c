"""The autograder: ``python -m utils.labs.grade SUBMISSION.ipynb`` or ``... FOLDER``.

For each submission it

1. reads the lab id from the notebook's metadata (``--lab`` overrides) and loads that lab's
   solution notebook, which holds the master tests;
2. builds a grading notebook: the student's code cells, with every test cell the student
   has (edited, deleted or not) replaced by the master public *and* hidden tests of that
   exercise, at the same place (exercises whose test cell is gone are tested at the end);
3. runs it in a fresh kernel inside a sandbox (``--sandbox``, see below), at the smoke size
   (``--size``), with a time limit per notebook (``--timeout``, default 300 s), per cell
   (``--cell-timeout``, 120 s: the cell is interrupted and the next one runs) and per test
   (60 s), a memory cap (``--memory-gb``, default 8, for the sandbox's whole process tree
   and, through ``RLIMIT_AS``, for the kernel; 0 turns both off), a CPU-time cap for the
   tree (``--cpu-seconds``, default the time limit times the CPUs), a cap on its processes
   and threads (``--max-tasks``, 1024), and output cut at 1 MB per cell;
4. once the sandbox and every process in it are gone, prints a table and writes
   ``OUT/<name>.json`` (see :mod:`utils.labs.report`); for a folder, also
   ``OUT/summary.csv`` and ``OUT/summary.json``;
5. with ``--feedback DIR``, writes ``DIR/<name>.md``, what the student may read (hidden tests
   counted, not named; ``--show-hidden`` after the deadline); with ``--format gradescope``,
   Gradescope's ``OUT/results.json`` (one submission) or ``OUT/<name>.results.json``
   (a folder), hidden tests ``--hidden-visibility after_published`` or ``hidden``
   (see :mod:`utils.labs.feedback`).

Scores come only from the results that the injected test cells publish (see
:mod:`utils.labs.kernel`) or, for a lab whose metadata has ``course.judge = "grader"``, from
the tests that the grader runs in its own process, calling the student's functions through a
bridge that carries plain data only (:mod:`utils.labs.judge`); what the student's own cells
print or write is never read.

The sandbox (``--sandbox auto``, the default, or ``bwrap``: :mod:`utils.labs.sandbox`) shows the
kernel the Python environment, the kit's ``utils/`` and the datasets, read-only, and a
private ``/tmp``; not the submissions, ``--solutions``, ``--out`` or ``--feedback``; no
network; its own PID namespace. What is guaranteed, and what is not yet, is in
``docs/security.md``. Where no sandbox can run, the grader refuses (exit status 4) unless
the instructor passes ``--no-sandbox`` (the same as ``--sandbox none``); every report then
says, in ``sandbox`` and in a warning, that the code ran without one.

A file that cannot be graded (not UTF-8, not JSON, nested too deeply, over 50 MB, cells or
course metadata of the wrong type: :func:`utils.labs.submission.load_submission`; an unknown
lab) is one error row of a batch, which goes on.

Exit status: 0 when graded (even at 0 points; for a folder, when the batch ran); 2 when the
file cannot be read or is not a notebook; 3 when its lab is unknown; 4 when no sandbox can
run here and ``--no-sandbox`` was not given.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from utils.labs import execute, sandbox
from utils.labs import feedback as gradefeedback
from utils.labs import format as labformat
from utils.labs import judge as labjudge
from utils.labs import limits as sandboxlimits
from utils.labs.report import Report, clean, collect, table, write_summary, write_text
from utils.labs.submission import (  # noqa: F401  (SubmissionError, load_submission: API)
    EXIT_UNKNOWN_LAB,
    EXIT_UNREADABLE,
    SubmissionError,
    grading_notebook,
    load_submission,
    review,
    test_cell_notes,
)

EXIT_GRADED, EXIT_NO_SANDBOX = 0, 4
TIMEOUT_S = 300  # per notebook; labs grade at the smoke size in well under a minute
TEST_TIMEOUT_S = 60  # per test; a test calls the student's code a few times
CELL_TIMEOUT_S = 120  # per cell, then it is interrupted and the next cell runs
MEMORY_GB = 8  # memory cap (TensorFlow alone maps about 3 GB of address space)
MAX_TASKS = 1024  # processes and threads in a sandbox (TensorFlow starts a few per core)
NO_SANDBOX = (
    "graded without a sandbox (--no-sandbox): the submission's code ran with the grader's "
    "rights, and could read or change other files, other submissions and the reports"
)


def _kernel_env(size: str) -> dict[str, str]:
    from utils.labs.notebooks import TEST_ENV

    env = {**os.environ, **TEST_ENV, "COURSE_GRADING": "1", "MPLBACKEND": "Agg"}
    env["COURSE_SIZE"] = size
    env.pop("COURSE_QUICK", None)
    # The kernel runs in a temporary folder: make sure it imports this copy of utils.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(labformat.ROOT), os.environ.get("PYTHONPATH")])
    )
    return env


def grade(
    path: str | Path,
    lab_id: str | None = None,
    solutions_dir: str | Path = labformat.SOLUTIONS_DIR,
    timeout: float = TIMEOUT_S,
    memory_gb: float = MEMORY_GB,
    size: str = "smoke",
    test_timeout: float = TEST_TIMEOUT_S,
    cell_timeout: float = CELL_TIMEOUT_S,
    sandbox_kind: str = "auto",
    cpu_seconds: float | None = None,
    max_tasks: int = MAX_TASKS,
    hide: tuple = (),
) -> Report:
    """Grade one submission, running it at ``size`` (``"smoke"``, ``"cpu"`` or ``"full"``).

    Args:
        sandbox_kind: ``"auto"``, ``"bwrap"`` or ``"none"`` (see :func:`utils.labs.sandbox.choose`).
        cpu_seconds: CPU time for the sandbox's processes together (default: ``timeout``
            times the CPUs, the most the time limit allows).
        max_tasks: processes and threads the sandbox may run at once.
        hide: more folders the sandbox must not show (the solutions folder and the
            submission's folder are always hidden; a batch adds its folder and ``--out``).

    Raises:
        SubmissionError: unreadable, not a notebook, or an unknown lab.
        utils.labs.sandbox.SandboxUnavailable: the sandbox asked for cannot run here.
    """
    report = _grade(path, lab_id, solutions_dir, timeout, memory_gb, size, test_timeout,
                    cell_timeout, sandbox_kind, cpu_seconds, max_tasks, hide)  # fmt: skip
    return report.tidy()


def _grade(path, lab_id, solutions_dir, timeout, memory_gb, size, test_timeout, cell_timeout,
           sandbox_kind, cpu_seconds, max_tasks, hide) -> Report:  # fmt: skip
    from utils.quick import SIZES

    if size not in SIZES:
        raise ValueError(f"size={size!r} should be one of {', '.join(SIZES)}.")
    box_class = sandbox.choose(sandbox_kind)
    started, path = time.monotonic(), Path(path)
    submission = load_submission(path)
    claimed = submission.metadata.get("course", {}).get("lab")  # a string: load_submission checks
    if not (lab_id or claimed):
        raise SubmissionError(
            f"{path.name}: unknown lab: the notebook's metadata has no lab id "
            "(was it generated by utils.labs.build?); use --lab LAB to grade it",
            EXIT_UNKNOWN_LAB,
        )
    try:
        lab = labformat.find(lab_id or claimed, solutions_dir)
    except LookupError as error:
        raise SubmissionError(f"{path.name}: {error}", EXIT_UNKNOWN_LAB) from None
    report = Report(
        str(path),
        lab.id,
        lab.version,
        submission.metadata.get("course", {}).get("version"),
        max_total=lab.max_points,
        sandbox="none" if box_class is None else "",
    )
    if claimed and claimed != lab.id:
        report.errors.append(f"this notebook is lab {claimed!r}, not {lab.id!r}; not graded")
        report.exercises = [
            {"id": ex.id, "title": ex.title, "points": 0.0, "max_points": ex.points, "tests": []}
            for ex in lab.exercises.values()
        ]
        return report
    if report.submitted_version and report.submitted_version != lab.version:
        report.warnings.append(
            f"the notebook was built from another version of the lab "
            f"({report.submitted_version}, usually an older one); graded with the tests of "
            f"version {lab.version}"
        )
    report.review = review(submission)
    report.warnings += test_cell_notes(lab, submission)
    memory = int(memory_gb * 2**30) if memory_gb > 0 else None
    nb = grading_notebook(lab, submission, memory, min(test_timeout, timeout))
    if box_class is None:
        box, report.sandbox = None, "none"
        report.warnings.append(NO_SANDBOX)
    else:
        cpu = cpu_seconds or timeout * (os.cpu_count() or 1)
        limits = sandboxlimits.Limits(memory, cpu, max_tasks or None)
        box = box_class(limits, hide=(path.parent, Path(solutions_dir), *hide))
        report.sandbox = box.description
    env, judge = _kernel_env(size), None
    if lab.judge == "grader":  # the tests run here, the student's functions in the kernel
        judge = labjudge.Judge(lab, size, min(test_timeout, timeout))
        judge.prepare()  # runs the solution here while the kernel starts
    with tempfile.TemporaryDirectory(prefix="grade-") as workdir:
        execution = execute.execute(
            nb, workdir, env, timeout, cell_timeout=min(cell_timeout, timeout),
            sandbox=box, judge=judge,
        )  # fmt: skip
    # The sandbox, and every process in it, is gone here: what follows is the grader's alone.
    report.errors += execution.problems
    report.warnings += execution.interrupted + execution.sandbox
    collect(lab, nb, execution, report, judge.results if judge is not None else None)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _notebooks(folder: Path) -> list[Path]:
    """Every notebook under ``folder`` (any case of ``.ipynb``), checkpoints excluded."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() == ".ipynb" and p.is_file() and ".ipynb_checkpoints" not in p.parts
    )


def _grade_safely(path: Path, options: dict, max_total: float) -> Report:
    """``grade`` that turns every failure into a report (one bad file never stops a batch)."""
    try:
        return grade(path, **options)
    except SubmissionError as error:
        return Report(str(path), errors=[str(error)], max_total=max_total).tidy()
    except Exception as error:  # RecursionError and MemoryError included
        message = f"grader error: {type(error).__name__}: {error}"
        return Report(str(path), errors=[message], max_total=max_total).tidy()


def grade_folder(folder: Path, out: Path, jobs: int = 1, **options) -> list[Report]:
    """Grade every notebook under ``folder`` (``jobs`` kernels at a time); write a report each.

    The report of ``folder/alice/lab0.ipynb`` is ``out/alice/lab0.json``, so submissions
    with the same file name in different folders keep separate reports. The sandbox of
    each submission shows neither ``folder`` nor ``out``.

    Returns:
        The reports, in file-name order.

    Raises:
        utils.labs.sandbox.SandboxUnavailable: the sandbox asked for cannot run here (checked
            once, before any submission runs).
    """
    from concurrent.futures import ThreadPoolExecutor

    if jobs < 1:
        raise ValueError(f"jobs={jobs!r}: grade at least 1 notebook at a time")
    sandbox.choose(options.get("sandbox_kind", "auto"))
    options = {**options, "hide": (folder, out, *options.get("hide", ()))}
    paths = _notebooks(folder)
    lab_id = options.get("lab_id")
    max_total = labformat.find(lab_id, options["solutions_dir"]).max_points if lab_id else 0.0

    def one(path: Path) -> Report:
        report = _grade_safely(path, options, max_total)
        write_text(out / path.relative_to(folder).with_suffix(".json"), report.to_json())
        errors = f"  ({'; '.join(report.errors)})" if report.errors else ""
        line = f"{clean(path, 4096)}: {report.total:g} / {report.max_total:g}{errors}"
        print(line, flush=True)
        return report

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, paths))


def write_extras(report: Report, name: Path, out: Path, args, single: bool) -> None:
    """The student's feedback page and Gradescope's file, when asked for (``name``: the
    submission's path relative to the folder graded, or its file name)."""
    if args.feedback is not None:
        page = gradefeedback.feedback_markdown(report, show_hidden=args.show_hidden)
        write_text(args.feedback / name.with_suffix(".md"), page)
    if args.format == "gradescope":
        results = gradefeedback.gradescope_results(report, args.hidden_visibility)
        path = out / "results.json" if single else out / name.with_suffix(".results.json")
        write_text(path, json.dumps(results, indent=2))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m utils.labs.grade",
        description="Grade a lab notebook, or every notebook in a folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("submission", type=Path, help="a .ipynb file or a folder of them")
    parser.add_argument(
        "--lab",
        help="the lab expected: notebooks without a lab id are graded as it, notebooks of "
        "another lab get 0 points and an error (default: each notebook's own lab)",
    )
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for the reports")
    parser.add_argument(
        "--solutions",
        type=Path,
        default=labformat.SOLUTIONS_DIR,
        help="folder of solution notebooks holding the master tests",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per notebook")
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=CELL_TIMEOUT_S,
        help="seconds per cell before it is interrupted",
    )
    parser.add_argument(
        "--test-timeout", type=float, default=TEST_TIMEOUT_S, help="seconds per test"
    )
    parser.add_argument("--memory-gb", type=float, default=MEMORY_GB, help="0 for no cap")
    parser.add_argument("--size", choices=["smoke", "cpu", "full"], default="smoke",
                        help="the run size the notebooks use (default smoke)")
    parser.add_argument("--full", action="store_true", help="the same as --size full")
    parser.add_argument("--quiet", action="store_true", help="one line, not a table (one file)")
    parser.add_argument("--feedback", type=Path, default=None,
                        help="also write a Markdown page per submission that a student may read")
    parser.add_argument("--show-hidden", action="store_true",
                        help="feedback names the hidden tests and shows their messages")
    parser.add_argument("--format", choices=["json", "gradescope"], default="json",
                        help="gradescope: also write Gradescope's results.json")
    parser.add_argument("--hidden-visibility", choices=list(gradefeedback.HIDDEN_VISIBILITIES),
                        default="after_published",
                        help="Gradescope visibility of hidden tests")
    parser.add_argument(
        "--jobs", type=_positive, default=1, help="notebooks graded at the same time (folders)"
    )
    parser.add_argument("--sandbox", choices=sandbox.KINDS, default="auto",
                        help="where the submission's code runs: auto (bubblewrap where it "
                        "works, else refuse), bwrap, or none (the same as --no-sandbox)")
    parser.add_argument("--no-sandbox", dest="sandbox", action="store_const", const="none",
                        help="run submissions without a sandbox (every report says so)")
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="CPU time of a sandbox's processes together "
                        "(default: --timeout times the CPUs)")
    parser.add_argument("--max-tasks", type=_positive, default=MAX_TASKS,
                        help="processes and threads a sandbox may run at once")
    args = parser.parse_args(argv)
    if min(args.timeout, args.cell_timeout, args.test_timeout) <= 0:
        parser.error("--timeout, --cell-timeout and --test-timeout must be positive")
    options = dict(
        lab_id=args.lab,
        solutions_dir=args.solutions,
        timeout=args.timeout,
        memory_gb=args.memory_gb,
        size="full" if args.full else args.size,
        cell_timeout=args.cell_timeout,
        test_timeout=args.test_timeout,
        sandbox_kind=args.sandbox,
        cpu_seconds=args.cpu_seconds,
        max_tasks=args.max_tasks,
        hide=tuple(p for p in (args.out, args.feedback) if p is not None),
    )
    try:
        sandbox.choose(args.sandbox)
    except sandbox.SandboxUnavailable as error:
        print(f"cannot grade: no sandbox can run here: {error}. Pass --no-sandbox to run "
              "the submissions without one (every report will say so).", file=sys.stderr)
        return EXIT_NO_SANDBOX
    if args.sandbox == "none":
        print(f"warning: {NO_SANDBOX}", file=sys.stderr)
    if args.lab:  # a typo here would otherwise give every student 0 points
        try:
            labformat.find(args.lab, args.solutions)
        except (LookupError, labformat.LabFormatError) as error:
            print(f"cannot grade: {error}", file=sys.stderr)
            return EXIT_UNKNOWN_LAB
    if args.submission.is_dir():
        if not _notebooks(args.submission):
            print(f"cannot grade: no .ipynb files in {clean(args.submission, 4096)}",
                  file=sys.stderr)
            return EXIT_UNREADABLE
        reports = grade_folder(args.submission, args.out, jobs=args.jobs, **options)
        for report in reports:
            name = Path(report.file).relative_to(args.submission)
            write_extras(report, name, args.out, args, single=False)
        csv_path, json_path = write_summary(reports, args.out)
        unusable = sum(not r.exercises for r in reports)
        print(
            f"graded {len(reports) - unusable} of {len(reports)} notebook(s)"
            + (f" ({unusable} could not be graded, see their errors)" if unusable else "")
            + f"; wrote {csv_path} and {json_path}"
        )
        return EXIT_GRADED
    try:
        report = grade(args.submission, **options)
    except SubmissionError as error:
        print(f"cannot grade: {clean(error)}", file=sys.stderr)
        return error.code
    write_text(args.out / f"{args.submission.stem}.json", report.to_json())
    write_extras(report, Path(args.submission.name), args.out, args, single=True)
    print(
        f"{clean(report.file, 4096)}: {report.total:g} / {report.max_total:g}"
        if args.quiet
        else table(report)
    )
    return EXIT_GRADED


if __name__ == "__main__":
    raise SystemExit(main())
