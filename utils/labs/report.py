"""The autograder's reports: one per submission (table and JSON) and a batch summary (CSV, JSON).

A report's JSON has: ``file``, ``lab``, ``version`` (of the tests used), ``submitted_version``
(of the lab the student started from), ``exercises`` (each with ``id``, ``title``,
``points``, ``max_points`` and ``tests``: ``name``, ``visibility``, ``status``,
``message``), ``total``, ``max_total``, ``errors`` (why points could not be earned: the
kernel died, a time limit, a wrong lab), ``warnings`` (an older lab version, tampering that
was undone, what the sandbox's limits did, or that there was no sandbox) and ``review`` (lines
of code an instructor may want to read), ``sandbox`` (how the code was confined, "none"
without a sandbox) and ``seconds``.

Text that came from a submission reaches a terminal, a CSV or a page only through
:func:`clean`: control characters (escape sequences, carriage returns, bidirectional
overrides) are written as visible escapes such as ``\\x1b``, bytes of a file name that are
not UTF-8 as ``\\xff``, and each text is cut at :data:`MAX_TEXT` characters.
:meth:`Report.tidy` applies it to every text of a report, keeps at most :data:`MAX_LINES`
errors, warnings and review lines, and accepts only the known test statuses.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

MAX_TEXT = 2000  # characters of one message, error, warning or review line
MAX_LINES = 100  # errors, warnings or review lines kept per report
STATUSES = ("pass", "fail", "error", "not attempted")
# C0 and C1 controls but newline and tab, DEL, bidirectional overrides, lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text, limit: int = MAX_TEXT) -> str:
    """``text`` safe for a terminal: control characters escaped, at most ``limit`` characters."""
    text = str(text)[: limit * 4 + 1]  # escaping at most quadruples a character
    text = _UNSAFE.sub(_escape, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(texts: list, limit: int = MAX_LINES) -> list[str]:
    kept = [clean(text) for text in texts[:limit]]
    if len(texts) > limit:
        kept.append(f"... and {len(texts) - limit} more")
    return kept


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
    sandbox: str = ""
    seconds: float = 0.0

    def tidy(self) -> Report:
        """Clean and cap every text (see :func:`clean`); returns the report itself."""
        self.errors, self.warnings = _lines(self.errors), _lines(self.warnings)
        self.review = _lines(self.review)
        if self.submitted_version is not None:
            self.submitted_version = clean(self.submitted_version, 100)
        for entry in self.exercises:
            for test in entry["tests"]:
                test["name"] = clean(test.get("name", ""), 200)
                test["message"] = clean(test.get("message") or "")
                if test.get("status") not in STATUSES:
                    test["status"] = "error"
        return self

    def as_dict(self) -> dict:
        """The report as plain data, its file name made printable."""
        return {**asdict(self), "file": clean(self.file, 4096)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

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
    lines = [
        f"{clean(report.file, 4096)}: lab {clean(report.lab or '?', 100)} "
        f"(tests version {clean(report.version or '?', 100)})"
    ]
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
        row = [clean(report.file, 4096), report.lab or ""]
        row += [f"{report.total:g}", f"{report.max_total:g}"]
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
    write_text(json_path, json.dumps([report.as_dict() for report in reports], indent=2))
    return csv_path, json_path


def _texts(value) -> list[str]:
    """The strings of a list a payload claims to hold (anything else is dropped)."""
    return [clean(text) for text in value[:MAX_LINES] if isinstance(text, str)] if isinstance(
        value, list
    ) else []


def _ran(payload: dict) -> dict:
    """``{(visibility, name): test}`` of a published payload, keeping only the known fields."""
    tests = payload.get("tests")
    found = {}
    for test in tests if isinstance(tests, list) else []:
        keys = ("name", "visibility")
        if isinstance(test, dict) and all(isinstance(test.get(key), str) for key in keys):
            status, message = test.get("status"), test.get("message")
            found[(test["visibility"], test["name"])] = {
                "name": test["name"],
                "visibility": test["visibility"],
                "status": status if status in STATUSES else "error",
                "message": clean(message) if isinstance(message, str) else "",
            }
    return found


def collect(lab, nb, execution, report: Report, judged: dict | None = None) -> None:
    """Fill ``report`` from the executed grading notebook ``nb``.

    Scores come only from the payloads that the injected test cells (``metadata.grader``)
    published or, for a lab judged in the grader (``judged``: :attr:`utils.labs.judge.Judge.
    results`), from the grader's own results, and then nothing the kernel published counts;
    a test that has no result is an error, with the reason (a time limit, a dead kernel).
    Errors raised in the student's cells become warnings. Whatever a payload holds besides
    the expected tests' status and message is ignored.
    """
    from utils.labs import kernel as gradekernel
    from utils.labs.submission import expected_tests

    payloads, failures = {}, {}
    for index, cell in enumerate(nb.cells):
        exercise = cell.metadata.get("grader")
        if not exercise:
            report.warnings += [
                f"{cell.metadata.get('label', f'cell {index}')} raised "
                f"{clean(out.get('ename'), 100)}: {clean(out.get('evalue'), 200)}"
                for out in cell.get("outputs", [])
                if out.get("output_type") == "error" and out.get("ename") not in QUIET_ERRORS
            ][:MAX_LINES]
            continue
        if judged is not None:  # the grader ran these tests: the cell's outputs do not count
            if exercise in judged:
                payloads[exercise] = judged[exercise]
            elif index > execution.last_cell:
                failures[exercise] = "not run: " + "; ".join(execution.problems or ["no result"])
            continue
        for output in cell.get("outputs", []):
            data = output.get("data") if output.get("output_type") == "display_data" else None
            payload = data.get(gradekernel.MIME) if isinstance(data, dict) else None
            if isinstance(payload, dict) and payload.get("exercise") == exercise:
                payloads[exercise] = payload
            elif output.get("output_type") == "error":
                ename = clean(output.get("ename"), 100)
                failures[exercise] = f"{ename}: {clean(output.get('evalue'))}"
        if exercise not in payloads and exercise not in failures and index > execution.last_cell:
            failures[exercise] = "not run: " + "; ".join(execution.problems or ["no result"])
    total = 0.0
    for exercise in lab.exercises.values():
        payload = payloads.get(exercise.id, {})
        ran = _ran(payload)
        why = failures.get(exercise.id) or "; ".join(_texts(payload.get("problems"))) or "not run"
        tests = [
            ran.get(key)
            or {
                "name": key[1],
                "visibility": key[0],
                "status": "error",
                "message": clean(f"the test did not run ({why})"),
            }
            for key in expected_tests(exercise)
        ]
        report.warnings += [
            f"{exercise.id}: {note} (undone before testing)"
            for note in _texts(payload.get("tampering"))
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
