"""Feedback a student may read, and Gradescope's results.json, from a grader's report."""

from __future__ import annotations

import pytest

from utils.labs import feedback
from utils.labs.report import Report


def _report() -> Report:
    return Report(
        "submissions/alice/lab0.ipynb", lab="lab0_perceptron", total=2.5, max_total=5.0,
        exercises=[
            {"id": "ex1", "title": "Doubling", "points": 2.0, "max_points": 3.0, "tests": [
                {"name": "doubles_a_scalar", "visibility": "public", "status": "pass",
                 "message": ""},
                {"name": "keeps_the_shape", "visibility": "public", "status": "fail",
                 "message": "shape: expected (3,), found (1, 3)\x1b[31m"},
                {"name": "secret_negative_numbers", "visibility": "hidden", "status": "pass",
                 "message": ""},
            ]},
            {"id": "ex2", "title": "The mean", "points": 0.5, "max_points": 2.0, "tests": [
                {"name": "mean_of_three", "visibility": "public", "status": "pass",
                 "message": ""},
                {"name": "secret_mean_of_one", "visibility": "hidden", "status": "fail",
                 "message": "SECRET expected 7.0"},
                {"name": "secret_empty", "visibility": "hidden", "status": "error",
                 "message": "SECRET ZeroDivisionError"},
                {"name": "secret_big", "visibility": "hidden", "status": "fail",
                 "message": "SECRET"},
            ]},
        ],
        errors=["the notebook exceeded its time limit of 300 s"],
        warnings=["the test cell of ex2 differs from the master copy (edited, or from another "
                  "version); the grader ran its own copy, so code written there did not run",
                  "cell 7 ('x = 1') raised ValueError: bad"],
        review=["cell 3 ('import sys') changes modules or builtins"],
    )


def test_feedback_counts_hidden_tests_without_naming_them():
    page = feedback.feedback_markdown(_report())
    assert "**2.5 of 5 points**" in page
    assert "## ex1: Doubling — 2 of 3 points" in page
    assert "- passed: `doubles_a_scalar`" in page
    assert "- failed: `keeps_the_shape`: `shape: expected (3,), found (1, 3)\\x1b[31m`" in page
    assert "- hidden tests: 1 of 1 passed" in page and "- hidden tests: 0 of 3 passed" in page
    assert "secret" not in page and "SECRET" not in page  # no hidden name or message
    assert "\x1b" not in page  # no escape sequence reaches the student's screen either
    assert "exceeded its time limit of 300 s" in page  # errors, in plain words
    assert "Your test cell of `ex2` was edited or deleted" in page
    assert "A cell raised an error" in page
    assert "changes modules or builtins" not in page  # the review is for the instructor


def test_feedback_shows_hidden_tests_when_asked():
    page = feedback.feedback_markdown(_report(), show_hidden=True)
    assert "- failed (hidden test): `secret_mean_of_one`: `SECRET expected 7.0`" in page
    assert "- error (hidden test): `secret_empty`" in page


@pytest.mark.parametrize("visibility", ["hidden", "after_published"])
def test_gradescope_results_follow_the_documented_fields(visibility):
    results = feedback.gradescope_results(_report(), hidden_visibility=visibility)
    assert set(results) == {"score", "output", "visibility", "execution_time", "tests"}
    assert results["score"] == 2.5 and "time limit" in results["output"]
    tests = results["tests"]
    assert len(tests) == 7
    for test in tests:
        assert set(test) == {"name", "score", "max_score", "output", "visibility"}
        assert 0 <= test["score"] <= test["max_score"]
    assert sum(t["max_score"] for t in tests) == pytest.approx(5.0)
    assert sum(t["score"] for t in tests) == pytest.approx(2.5)  # the same total as the report
    by_name = {t["name"]: t for t in tests}
    assert by_name["ex1: doubles_a_scalar"]["visibility"] == "visible"
    assert by_name["ex2: secret_big"]["visibility"] == visibility
    assert by_name["ex1: keeps_the_shape"]["score"] == 0.0
    assert by_name["ex1: keeps_the_shape"]["max_score"] == pytest.approx(1.0)


def test_gradescope_rejects_an_unknown_visibility():
    with pytest.raises(ValueError, match="hidden_visibility='public'"):
        feedback.gradescope_results(_report(), hidden_visibility="public")


def test_feedback_escapes_and_caps_what_a_submission_wrote():
    report = _report()
    report.file = "submissions/\udcff\x1b]0;owned\x07.ipynb"  # not UTF-8, and a title escape
    report.exercises[0]["tests"][1]["message"] = "\x1b[2J" + "x" * 100_000 + "\r\u202e"
    page = feedback.feedback_markdown(report)
    page.encode("utf-8")  # no lone surrogate left to crash the writer
    assert "\x1b" not in page and "\x07" not in page and "\r" not in page
    assert "# Feedback: \\xff\\x1b]0;owned\\x07.ipynb" in page
    assert len(page) < 5000  # the message is cut at MAX_MESSAGE characters
    results = feedback.gradescope_results(report)
    outputs = [t["output"] for t in results["tests"]]
    assert all(len(out) <= feedback.MAX_MESSAGE and "\x1b" not in out for out in outputs)
