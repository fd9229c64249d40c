"""What a student may see of a grade, and Gradescope's ``results.json``.

The grader's own report (:mod:`utils.labs.report`) is for instructors: it names the hidden
tests and shows their messages. :func:`feedback_markdown` writes what a student may read:
each exercise's points, each public test's result and message, and for the hidden tests only
how many passed (their names and messages only when the instructor asks, after the
deadline). :func:`gradescope_results` writes the file Gradescope's autograder reads
(https://gradescope-autograders.readthedocs.io/en/latest/specs/). Every text in them goes
through :func:`utils.labs.report.clean` (control characters escaped, length capped) and is
put on one line.
"""

from __future__ import annotations

from utils.labs.report import Report, clean

MAX_MESSAGE = 500  # characters of a test's message shown to a student
HIDDEN_VISIBILITIES = ("hidden", "after_published")  # Gradescope's names


def _plain(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters."""
    return clean(str(text)[: limit * 4].replace("\n", " ").replace("\t", " ").strip(), limit)


def _code(text: str) -> str:
    """``text`` as Markdown inline code (it may contain backticks or Markdown)."""
    text = _plain(text).replace("`", "'")
    return f"`{text}`" if text else ""


_STATUS = {"pass": "passed", "fail": "failed", "error": "error", "not attempted": "not attempted"}


def feedback_markdown(report: Report, show_hidden: bool = False) -> str:
    """A Markdown page a student may read about their graded submission.

    Args:
        report: the grader's report of the submission.
        show_hidden: also name the hidden tests and show their messages (after the deadline).
    """
    name = report.file.replace("\\", "/").rsplit("/", 1)[-1]
    lines = [f"# Feedback: {_plain(name, 200)}", ""]
    lines.append(f"Lab `{_plain(report.lab or '?', 80)}`: **{report.total:g} of "
                 f"{report.max_total:g} points**.")
    if report.errors:
        lines += ["", "## What stopped the grading", ""]
        lines += [f"- {_code(text)}" for text in report.errors]
        lines.append("")
        lines.append("Points could not be earned for the tests that did not run. Check that "
                     "your notebook runs top to bottom in a fresh kernel, within the time limit.")
    for entry in report.exercises:
        lines += ["", f"## {_plain(entry['id'], 40)}: {_plain(entry['title'], 120)} — "
                      f"{entry['points']:g} of {entry['max_points']:g} points", ""]
        public = [t for t in entry["tests"] if t["visibility"] == "public"]
        hidden = [t for t in entry["tests"] if t["visibility"] != "public"]
        for test in public:
            message = f": {_code(test['message'])}" if test.get("message") else ""
            lines.append(f"- {_STATUS.get(test['status'], 'failed')}: "
                         f"{_code(test['name'])}{message}")
        if hidden and show_hidden:
            for test in hidden:
                message = f": {_code(test['message'])}" if test.get("message") else ""
                lines.append(f"- {_STATUS.get(test['status'], 'failed')} (hidden test): "
                             f"{_code(test['name'])}{message}")
        elif hidden:
            passed = sum(t["status"] == "pass" for t in hidden)
            lines.append(f"- hidden tests: {passed} of {len(hidden)} passed")
    notes = [_student_note(text) for text in report.warnings]
    notes = [note for note in notes if note]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _student_note(warning: str) -> str:
    """A grader warning in words for the student, or "" when it names hidden tests."""
    if "differs from the master copy" in warning or "is missing" in warning:
        exercise = warning.split()[4] if warning.startswith("the test cell of") else ""
        return (f"Your test cell of {_code(exercise)} was edited or deleted; the grader ran "
                "its own copy of the tests, so code written in that cell did not run.")
    if "another version of the lab" in warning:
        return _code(warning)
    if "undone before testing" in warning:
        return "Your code changed the testing machinery; the change was undone before testing."
    if " raised " in warning:
        return f"A cell raised an error: {_code(warning)}"
    if "interrupted" in warning:
        return f"A cell took too long and was interrupted: {_code(warning)}"
    return ""


def gradescope_results(report: Report, hidden_visibility: str = "after_published") -> dict:
    """Gradescope's ``results.json`` for one submission, as a dict.

    Each test of each exercise is one Gradescope test worth its share of the exercise's
    points: ``visible`` for public tests, ``hidden_visibility`` ("hidden" or
    "after_published") for hidden ones.

    Raises:
        ValueError: for an unknown ``hidden_visibility``.
    """
    if hidden_visibility not in HIDDEN_VISIBILITIES:
        raise ValueError(f"hidden_visibility={hidden_visibility!r} should be one of "
                         f"{', '.join(HIDDEN_VISIBILITIES)}.")
    tests = []
    for entry in report.exercises:
        share = entry["max_points"] / len(entry["tests"]) if entry["tests"] else 0.0
        for test in entry["tests"]:
            passed = test["status"] == "pass"
            tests.append({
                "name": f"{entry['id']}: {test['name']}",
                "score": round(share if passed else 0.0, 4),
                "max_score": round(share, 4),
                "output": _plain(test.get("message") or _STATUS.get(test["status"], "failed")),
                "visibility": "visible" if test["visibility"] == "public" else hidden_visibility,
            })
    output = "; ".join(_plain(text, 300) for text in report.errors)
    return {"score": report.total, "output": output, "visibility": "visible",
            "execution_time": report.seconds, "tests": tests}
