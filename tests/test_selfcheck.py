"""check() in a notebook: one line per test, a score line, and never an exception."""

from __future__ import annotations

import pytest

from utils import checks
from utils.labs import selfcheck


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(selfcheck, "_REGISTRY", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)


def _define_tests():
    @selfcheck.test("ex1")
    def passes():
        checks.assert_equal(1 + 1, 2, "1 + 1")

    @selfcheck.test("ex1")
    def fails():
        checks.assert_equal(2 + 2, 5, "2 + 2")

    @selfcheck.test("ex1")
    def unfinished():
        raise NotImplementedError("Exercise not done yet")

    @selfcheck.test("ex1")
    def crashes():
        raise SystemExit(3)


def test_check_prints_a_line_per_test_and_a_score(capsys):
    _define_tests()
    assert selfcheck.check("ex1") is None  # a cell ending in check(...) shows only the lines
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "ex1 PASS  passes",
        "ex1 FAIL  fails: 2 + 2: expected 5, found 4",
        "ex1 not attempted unfinished: the exercise still raises NotImplementedError",
    ]
    assert lines[3].startswith("ex1 FAIL  crashes: SystemExit: 3")
    assert lines[4] == "ex1 score: 1 of 4 public tests passed (the grader also runs hidden tests)"
    assert len(lines) == 5
    statuses = [o.status for o in selfcheck.results("ex1")]
    assert statuses == ["pass", "fail", "not attempted", "error"]


def test_rerunning_a_test_cell_replaces_its_tests(capsys):
    _define_tests()
    _define_tests()
    selfcheck.check("ex1")
    assert "1 of 4 public tests" in capsys.readouterr().out


def test_a_missing_name_says_to_run_the_exercise_cell():
    @selfcheck.test("ex2")
    def uses_undefined():
        return undefined_student_function()  # noqa: F821

    (outcome,) = selfcheck.results("ex2")
    assert outcome.status == "fail" and "run the exercise cell above" in outcome.message


def test_unknown_exercise_is_explained_not_raised(capsys):
    _define_tests()
    assert selfcheck.check("ex9") is None
    assert "no tests are defined for this exercise (defined: ex1)" in capsys.readouterr().out


def test_check_is_silent_under_the_grader(monkeypatch, capsys):
    _define_tests()
    monkeypatch.setenv("COURSE_GRADING", "1")
    assert selfcheck.check("ex1") is None and capsys.readouterr().out == ""


def test_test_needs_an_exercise_id():
    with pytest.raises(TypeError, match="exercise id"):
        selfcheck.test(None)


def test_the_old_import_line_still_works(capsys):
    """Notebooks saved before the move import utils.selfcheck: the same check and test."""
    from utils.selfcheck import check, reference, test

    assert (check, test, reference) == (selfcheck.check, selfcheck.test, selfcheck.reference)

    @test("ex1")
    def passes():
        checks.assert_equal(1 + 1, 2, "1 + 1")

    check("ex1")
    assert "ex1 PASS  passes" in capsys.readouterr().out
