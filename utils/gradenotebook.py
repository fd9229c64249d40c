"""The notebook the autograder runs, assembled from a submission and the master tests.

:func:`grading_notebook` keeps the student's code cells, replaces each of the student's test
cells (edited, deleted or intact) by the master public and hidden tests of that exercise, at
the same place, and appends the tests of exercises whose test cell is gone. The student's
cells after the last test cell are left out: they cannot change a grade, and in a lab they
are the long demonstrations (training, plots). :func:`review` lists cells whose code touches
the grader's machinery, for an instructor to read.
"""

from __future__ import annotations

import re

from utils import labformat

# Code an instructor may want to read: it touches the grader's machinery.
SUSPICIOUS = {
    r"\bgradekernel\b|application/vnd\.dlvision": "names the grader's internals",
    r"\bsys\.modules\b|\bbuiltins\b|__builtins__": "changes modules or builtins",
    r"__code__|\bsettrace\b|\bsetprofile\b|\bctypes\b": "uses interpreter hooks",
    r"input_transformers|ast_transformers|events\.register": "hooks IPython",
    r"^\s*(checks|np|numpy|selfcheck|utils)(\.\w+)+\s*=": "assigns into a library module",
    r"^\s*def\s+(check|test)\b|^\s*(check|test)\s*=": "redefines check or test",
}


def expected_tests(exercise: labformat.Exercise) -> list[tuple[str, str]]:
    """``(visibility, name)`` of every ``@test`` function in an exercise's master cells."""
    return [
        (visibility, name)
        for visibility, sources in (("public", exercise.public), ("hidden", exercise.hidden))
        for source in sources
        for _, name in labformat.declared_tests(source)
    ]


def _grader_cell(exercise: labformat.Exercise, test_timeout: float):
    import nbformat

    sources = [("public", s) for s in exercise.public] + [("hidden", s) for s in exercise.hidden]
    source = (
        f"import utils.gradekernel as _grader\n"
        f"_grader.run_exercise({exercise.id!r}, {sources!r}, test_timeout={test_timeout!r})"
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
            f"import utils.gradekernel as _grader\n_grader.begin({memory_bytes!r})",
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
            nb.cells.append(_grader_cell(lab.exercises[header["exercise"]], test_timeout))
    missing = [exercise for exercise in lab.exercises.values() if exercise.id not in placed]
    if not missing:  # every test is in place: what follows the last one cannot change a grade
        last = max(i for i, cell in enumerate(nb.cells) if "grader" in cell.metadata)
        del nb.cells[last + 1:]
    for exercise in missing:
        nb.cells.append(_grader_cell(exercise, test_timeout))
    return nb


def review(submission) -> list[str]:
    """Lines of the student's code that touch the grader's machinery (for a human to read)."""
    notes = []
    for index, cell in enumerate(submission.cells):
        if cell.get("cell_type") != "code" or labformat.test_header(cell.source):
            continue
        for pattern, why in SUSPICIOUS.items():
            if re.search(pattern, cell.source, re.MULTILINE):
                notes.append(f"{cell_label(index, cell.source)} {why}")
    return notes
