"""The notebook the autograder runs, assembled from a submission and the master tests.

:func:`load_submission` reads a submission and turns every file the grader cannot use (not
UTF-8, not JSON, nested too deeply, over :data:`MAX_SUBMISSION_BYTES`, a cell or course
metadata of the wrong type) into one :class:`SubmissionError`, which a batch reports as one
error row. :func:`grading_notebook` keeps the student's code cells, replaces each of the
student's test cells (edited, deleted or intact) by the master public and hidden tests of
that exercise, at the same place, and appends the tests of exercises whose test cell is
gone. The student's cells after the last test cell are left out: they cannot change a
grade, and in a lab they are the long demonstrations (training, plots). :func:`review` lists
cells whose code touches the grader's machinery, for an instructor to read; its patterns run
in linear time (their blanks never span lines), and a cell longer than :data:`MAX_REVIEWED`
characters is reviewed up to there and flagged as too long.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from utils.labs import format as labformat

EXIT_UNREADABLE, EXIT_UNKNOWN_LAB = 2, 3  # utils.labs.grade's exit statuses for these errors
MAX_SUBMISSION_BYTES = 50 << 20  # a lab notebook with its outputs is under 1 MB

# Code an instructor may want to read: it touches the grader's machinery. Blanks are [ \t]:
# a \s at the start of a MULTILINE pattern spans lines and backtracks quadratically.
SUSPICIOUS = {
    r"\butils\.labs\.kernel\b|\butils\.labs[ \t]+import[ \t]+kernel\b|application/vnd\.dlvision":
        "names the grader's internals",
    r"\bsys\.modules\b|\bbuiltins\b|__builtins__": "changes modules or builtins",
    r"__code__|\bsettrace\b|\bsetprofile\b|\bctypes\b": "uses interpreter hooks",
    r"input_transformers|ast_transformers|events\.register": "hooks IPython",
    r"^[ \t]*(checks|np|numpy|selfcheck|utils)(\.\w+)+[ \t]*=": "assigns into a library module",
    r"^[ \t]*def[ \t]+(check|test)\b|^[ \t]*(check|test)[ \t]*=": "redefines check or test",
}
MAX_REVIEWED = 200_000  # characters of a cell reviewed; a longer cell is flagged as such


class SubmissionError(Exception):
    """A submission that cannot be graded at all; ``code`` is the exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def load_submission(path: Path):
    """Read a submitted notebook, or raise :class:`SubmissionError` saying what is wrong."""
    import nbformat

    try:
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            raise SubmissionError(
                f"{path.name} is larger than {MAX_SUBMISSION_BYTES:,} bytes; not read",
                EXIT_UNREADABLE,
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(f"cannot read {path}: {error}", EXIT_UNREADABLE) from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise SubmissionError(
            f"{path.name} is not a notebook: invalid JSON ({error})", EXIT_UNREADABLE
        ) from None
    except RecursionError:
        raise SubmissionError(
            f"{path.name} is not a notebook: its JSON is nested too deeply", EXIT_UNREADABLE
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise SubmissionError(f"{path.name} is not a notebook: no list of cells", EXIT_UNREADABLE)
    problem = _shape_problem(raw)
    if problem:
        raise SubmissionError(f"{path.name} is not a valid notebook: {problem}", EXIT_UNREADABLE)
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # RecursionError included
        raise SubmissionError(
            f"{path.name} is not a valid notebook: {type(error).__name__}: {error}",
            EXIT_UNREADABLE,
        ) from None


def _shape_problem(raw: dict) -> str | None:
    """What makes a notebook's JSON unusable by the grader (a cell's source that is not
    text, course metadata that is not a mapping of strings), or None."""
    metadata = raw.get("metadata", {})
    course = metadata.get("course", {}) if isinstance(metadata, dict) else None
    if not isinstance(course, dict):
        where = "metadata" if not isinstance(metadata, dict) else "metadata.course"
        found = metadata if where == "metadata" else course
        return f"{where} is a {type(found).__name__}, not a mapping"
    for key in ("lab", "version"):
        if course.get(key) is not None and not isinstance(course[key], str):
            return f"metadata.course.{key} is a {type(course[key]).__name__}, not text"
    for number, cell in enumerate(raw["cells"], start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            return f"cell {number} is not a cell (a mapping with a cell_type)"
        source = cell.get("source", "")
        lines = source if isinstance(source, list) else [source]
        if not all(isinstance(line, str) for line in lines):
            return f"the source of cell {number} is a {type(source).__name__}, not text"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"the metadata of cell {number} is not a mapping"
    return None


def expected_tests(exercise: labformat.Exercise) -> list[tuple[str, str]]:
    """``(visibility, name)`` of every ``@test`` function in an exercise's master cells."""
    return [
        (visibility, name)
        for visibility, sources in (("public", exercise.public), ("hidden", exercise.hidden))
        for source in sources
        for _, name in labformat.declared_tests(source)
    ]


def _grader_cell(exercise: labformat.Exercise, test_timeout: float, judge: str = "kernel"):
    import nbformat

    if judge == "grader":  # run by the grader itself (utils.labs.judge), never by the kernel
        return nbformat.v4.new_code_cell(
            f"# the tests of {exercise.id} run in the grader (course.judge = 'grader')",
            metadata={"grader": exercise.id, "judge": "grader",
                      "label": f"the tests of {exercise.id}"},
        )
    sources = [("public", s) for s in exercise.public] + [("hidden", s) for s in exercise.hidden]
    source = (
        f"import utils.labs.kernel as _grader\n"
        f"_grader.run_exercise({exercise.id!r}, {sources!r}, test_timeout={test_timeout!r},\n"
        f"                     reference={exercise.reference!r})"
    )
    # The cell may take a test time limit per test, plus a margin for defining the tests.
    timeout = int(len(expected_tests(exercise)) * test_timeout + 30)
    return nbformat.v4.new_code_cell(
        source,
        metadata={
            "grader": exercise.id,
            "timeout": timeout,
            "label": f"the tests of {exercise.id}",
        },
    )


def cell_label(index: int, source: str) -> str:
    """How a report names a submission's cell: its position from 1 and its first line."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first[:40] + ('...' if len(first) > 40 else '')!r})"


def test_cell_notes(lab: labformat.Lab, submission) -> list[str]:
    """Warnings about the submission's public test cells: missing, or not the master copy."""
    found: dict[str, str] = {}
    for cell in submission.cells:
        header = (
            labformat.test_header(cell.get("source", ""))
            if cell.get("cell_type") == "code"
            else None
        )
        if header is not None and not header["hidden"]:
            found.setdefault(header["exercise"], cell.source)
    notes = []
    for exercise in lab.exercises.values():
        if exercise.id not in found:
            notes.append(f"the test cell of {exercise.id} is missing; its tests ran at the end")
        elif found[exercise.id].strip() != exercise.public[0].strip():
            notes.append(
                f"the test cell of {exercise.id} differs from the master copy (edited, or from "
                "another version); the grader ran its own copy, so code written there did not run"
            )
    return notes


def grading_notebook(
    lab: labformat.Lab, submission, memory_bytes: int | None, test_timeout: float = 60.0
):
    """The notebook the grader runs: prelude, student code, master tests in place, and
    nothing of the student's after the last test cell."""
    import nbformat

    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import utils.labs.kernel as _grader\n_grader.begin({memory_bytes!r})",
            metadata={"label": "the grader's setup"},
        )
    )
    placed = set()
    for index, cell in enumerate(submission.cells):
        if cell.get("cell_type") != "code" or not isinstance(cell.get("source"), str):
            continue
        header = labformat.test_header(cell.source)
        if header is None:
            nb.cells.append(
                nbformat.v4.new_code_cell(
                    cell.source, metadata={"label": cell_label(index, cell.source)}
                )
            )
        elif header["exercise"] in lab.exercises and header["exercise"] not in placed:
            placed.add(header["exercise"])
            nb.cells.append(
                _grader_cell(lab.exercises[header["exercise"]], test_timeout, lab.judge)
            )
    missing = [exercise for exercise in lab.exercises.values() if exercise.id not in placed]
    if not missing:  # every test is in place: what follows the last one cannot change a grade
        last = max(i for i, cell in enumerate(nb.cells) if "grader" in cell.metadata)
        del nb.cells[last + 1:]
    for exercise in missing:
        nb.cells.append(_grader_cell(exercise, test_timeout, lab.judge))
    return nb


def review(submission) -> list[str]:
    """Lines of the student's code that touch the grader's machinery (for a human to read)."""
    notes = []
    for index, cell in enumerate(submission.cells):
        if cell.get("cell_type") != "code" or labformat.test_header(cell.source):
            continue
        source = cell.source[:MAX_REVIEWED]
        if len(cell.source) > MAX_REVIEWED:
            notes.append(
                f"{cell_label(index, source)} is {len(cell.source):,} characters long; "
                f"only the first {MAX_REVIEWED:,} were reviewed"
            )
        for pattern, why in SUSPICIOUS.items():
            if re.search(pattern, source, re.MULTILINE):
                notes.append(f"{cell_label(index, source)} {why}")
    return notes
