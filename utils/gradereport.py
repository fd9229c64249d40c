"""The autograder's reports: one per submission (table and JSON) and a batch summary (CSV, JSON).

A report's JSON has: ``file``, ``lab``, ``version`` (of the tests used), ``submitted_version``
(of the lab the student started from), ``exercises`` (each with ``id``, ``title``,
``points``, ``max_points`` and ``tests``: ``name``, ``visibility``, ``status``,
``message``), ``total``, ``max_total``, ``errors`` (why points could not be earned: the
kernel died, a time limit, a wrong lab), ``warnings`` (an older lab version, tampering that
was undone) and ``review`` (lines of code an instructor may want to read), and ``seconds``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Report:
    """The grade of one submission."""

    file: str
    lab: str | None = None
    version: str | None = None
    submitted_version: str | None = None
    exercises: list[dict] = field(default_factory=list)
    total: float = 0.0
    max_total: float = 0.0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def points_of(self, exercise: str) -> float | None:
        for entry in self.exercises:
            if entry["id"] == exercise:
                return entry["points"]
        return None


# Errors in student cells that the report does not repeat: unfinished exercises, and the
# interruption of a cell at its time limit (reported once, on its own).
QUIET_ERRORS = ("NotImplementedError", "KeyboardInterrupt", "CellTimeout")


def score(exercise_points: float, tests: list[dict]) -> float:
    """Points earned (not rounded): the exercise's points shared equally among its tests."""
    if not tests:
        return 0.0
    passed = sum(test["status"] == "pass" for test in tests)
    return exercise_points * passed / len(tests)


def table(report: Report) -> str:
    """A plain-text table of a report, one line per exercise and per test."""
    lines = [f"{report.file}: lab {report.lab or '?'} (tests version {report.version or '?'})"]
    for entry in report.exercises:
        lines.append(
            f"  {entry['id']:<6} {entry['title'][:44]:<44} "
            f"{entry['points']:6.2f} / {entry['max_points']:g}"
        )
        for test in entry["tests"]:
            status = {"pass": "PASS", "not attempted": "NOT ATTEMPTED"}.get(test["status"], "FAIL")
            message = f": {test['message']}" if test["message"] else ""
            lines.append(f"      {status:<13} {test['visibility']:<6} {test['name']}{message}")
    lines.append(f"  {'total':<51} {report.total:6.2f} / {report.max_total:g}")
    lines += [f"  error: {text}" for text in report.errors]
    lines += [f"  warning: {text}" for text in report.warnings]
    lines += [f"  review: {text}" for text in report.review]
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a report)."""
    from utils.cache import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_summary(reports: list[Report], out_dir: Path) -> tuple[Path, Path]:
    """Write ``summary.csv`` (one row per submission) and ``summary.json`` in ``out_dir``."""
    exercises: list[str] = []
    for report in reports:
        for entry in report.exercises:
            if entry["id"] not in exercises:
                exercises.append(entry["id"])
    header = ["file", "lab", "total", "max_total", *exercises, "errors", "warnings", "review"]
    rows = []
    for report in reports:
        row = [report.file, report.lab or "", f"{report.total:g}", f"{report.max_total:g}"]
        row += [
            "" if report.points_of(ex) is None else f"{report.points_of(ex):g}" for ex in exercises
        ]
        row += ["; ".join(report.errors), "; ".join(report.warnings), "; ".join(report.review)]
        rows.append(row)
    csv_path, json_path = out_dir / "summary.csv", out_dir / "summary.json"
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text(csv_path, buffer.getvalue())
    write_text(json_path, json.dumps([asdict(report) for report in reports], indent=2))
    return csv_path, json_path


def collect(lab, nb, execution, report: Report) -> None:
    """Fill ``report`` from the executed grading notebook ``nb``.

    Scores come only from the payloads that the injected test cells (``metadata.grader``)
    published; a test that published nothing is an error, with the reason (a time limit, a
    dead kernel). Errors raised in the student's cells become warnings.
    """
    from utils import gradekernel
    from utils.gradenotebook import expected_tests

    payloads, failures = {}, {}
    for index, cell in enumerate(nb.cells):
        exercise = cell.metadata.get("grader")
        if not exercise:
            report.warnings += [
                f"{cell.metadata.get('label', f'cell {index}')} raised {out.get('ename')}: "
                f"{str(out.get('evalue'))[:200]}"
                for out in cell.get("outputs", [])
                if out.get("output_type") == "error" and out.get("ename") not in QUIET_ERRORS
            ]
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if output.get("output_type") == "display_data" else {}
            if gradekernel.MIME in data and data[gradekernel.MIME].get("exercise") == exercise:
                payloads[exercise] = data[gradekernel.MIME]
            elif output.get("output_type") == "error":
                failures[exercise] = f"{output.get('ename')}: {output.get('evalue')}"
        if exercise not in payloads and exercise not in failures and index > execution.last_cell:
            failures[exercise] = "not run: " + "; ".join(execution.problems or ["no result"])
    total = 0.0
    for exercise in lab.exercises.values():
        payload = payloads.get(exercise.id, {})
        ran = {(t["visibility"], t["name"]): t for t in payload.get("tests", [])}
        why = failures.get(exercise.id) or "; ".join(payload.get("problems", [])) or "not run"
        tests = [
            ran.get(key)
            or {
                "name": key[1],
                "visibility": key[0],
                "status": "error",
                "message": f"the test did not run ({why})",
            }
            for key in expected_tests(exercise)
        ]
        report.warnings += [
            f"{exercise.id}: {note} (undone before testing)"
            for note in payload.get("tampering", [])
        ]
        earned = score(exercise.points, tests)
        total += earned
        report.exercises.append(
            {
                "id": exercise.id,
                "title": exercise.title,
                "points": round(earned, 2),
                "max_points": exercise.points,
                "tests": tests,
            }
        )
    report.total = round(total, 2)  # rounded once, from the exact scores
