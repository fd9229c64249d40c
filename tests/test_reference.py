"""Hidden tests that compare a student's function with the solution's (``selfcheck.reference``)."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from utils.labs import format as labformat
from utils.labs import kernel as gradekernel
from utils.labs import selfcheck

SCALE_CELL = ("SCALE = 2  # a literal: part of the reference\n\n\n"
              "def double(x):\n    ### BEGIN SOLUTION\n    return SCALE * np.asarray(x)\n"
              "    ### END SOLUTION\n\n\nprint('not a definition: left out')")
TWICE_CELL = ("def twice_sum(x):\n    ### BEGIN SOLUTION\n    return float(double(x).sum())\n"
              "    ### END SOLUTION")
HIDDEN_EX1 = ("### HIDDEN TESTS ex1\nfrom utils.labs.selfcheck import reference\n\n\n@test('ex1')\n"
              "def like_the_solution():\n    x = np.arange(-3.0, 4.0)\n"
              "    checks.assert_close(double(x), reference.double(x), 'double(x)')")
HIDDEN_EX2 = ("### HIDDEN TESTS ex2\nfrom utils.labs.selfcheck import reference\n\n\n@test('ex2')\n"
              "def like_the_solution():\n    x = np.arange(-3.0, 4.0) ** 2\n"
              "    checks.assert_close(twice_sum(x), reference.twice_sum(x), 'twice_sum(x)')")


def _lab():
    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(metadata={"course": {"lab": "reference_lab"}})
    nb.cells = [
        code("import numpy as np\nfrom utils import checks\n"
             "from utils.labs.selfcheck import check, test"),
        code(SCALE_CELL),
        code("### TESTS ex1 (1 point): double\n@test('ex1')\ndef three():\n"
             "    checks.assert_close(double(3.0), 6.0, 'double(3)')"),
        code(HIDDEN_EX1),
        code("x = double(1.0)  # no solution region: not part of any reference"),
        code(TWICE_CELL),
        code("### TESTS ex2 (1 point): twice_sum\n@test('ex2')\ndef ones():\n"
             "    checks.assert_close(twice_sum(np.ones(2)), 4.0, 'twice_sum(ones(2))')"),
        code(HIDDEN_EX2),
    ]
    return labformat.parse(nb)


def test_each_exercise_references_only_its_own_solution_cells():
    lab = _lab()
    ex1, ex2 = lab.exercises["ex1"].reference, lab.exercises["ex2"].reference
    assert "SCALE = 2" in ex1 and "def double" in ex1 and "print" not in ex1
    assert "def twice_sum" in ex2 and "double(x).sum()" in ex2
    assert "def double" not in ex2 and "x = double" not in ex2


@pytest.fixture
def kernel(monkeypatch):
    """run_exercise in this process: its results are returned instead of published."""
    monkeypatch.setitem(gradekernel._SNAPSHOT, "display", lambda *args, **kwargs: None)
    yield
    assert selfcheck._REFERENCE is None, "run_exercise left its reference in place"


def _grade(student_source: str, exercise: str) -> dict[str, str]:
    """Each test's status when the student's globals come from ``student_source``."""
    lab = _lab()
    namespace: dict = {}
    exec("import numpy as np\nfrom utils import checks\n" + student_source, namespace)
    item = lab.exercises[exercise]
    sources = [("public", s) for s in item.public] + [("hidden", s) for s in item.hidden]
    payload = gradekernel.run_exercise(exercise, sources, namespace=namespace,
                                       reference=item.reference)
    assert payload["problems"] == []
    return {test["name"]: test["status"] for test in payload["tests"]}


def test_a_function_right_only_where_the_public_test_looks_fails_the_hidden_one(kernel):
    wrong = "def double(x):\n    return np.abs(2 * np.asarray(x))  # wrong for negatives\n"
    assert _grade(wrong, "ex1") == {"three": "pass", "like_the_solution": "fail"}
    right = "def double(x):\n    return np.asarray(x) + np.asarray(x)\n"
    assert _grade(right, "ex1") == {"three": "pass", "like_the_solution": "pass"}


def test_the_reference_uses_the_students_earlier_functions(kernel):
    # double is wrong (ex1), twice_sum right: ex2's reference calls the student's double too,
    # so ex2 does not lose its points for ex1's mistake...
    student = ("def double(x):\n    return 3 * np.asarray(x)\n\n\n"
               "def twice_sum(x):\n    return float(double(x).sum())\n")
    assert _grade(student, "ex2") == {"ones": "fail", "like_the_solution": "pass"}
    # ...while a wrong twice_sum fails it.
    student = student.replace("float(double(x).sum())", "float(double(x).mean())")
    assert _grade(student, "ex2")["like_the_solution"] == "fail"


def test_outside_the_grader_reference_is_the_notebooks_own_namespace(monkeypatch):
    import __main__

    monkeypatch.setattr(__main__, "solution_function", np.square, raising=False)
    assert selfcheck.reference.solution_function is np.square
    with pytest.raises(NameError, match="reference.no_such_name"):
        selfcheck.reference.no_such_name  # noqa: B018
