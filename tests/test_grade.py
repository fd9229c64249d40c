"""The autograder on the fixture lab: good, buggy, broken and cheating submissions.

Every submission below is graded in ONE batch run of ``python -m utils.labs.grade FOLDER`` (a
fresh kernel each), which also tests that one bad submission never stops the batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils.labs import build, grade
from utils.labs import format as labformat
from utils.labs import submission as gradenotebook

FIXTURES = Path(__file__).parent / "fixtures" / "solutions"
SOLUTION = FIXTURES / "fixture_lab.ipynb"
# 20 s per notebook: endless_function spends 6 s in ex1's tests, and a loaded 2-core machine
# (two pytest workers, each with a kernel) took 13 s over all of its cells.
LIMITS = ["--timeout", "20", "--cell-timeout", "3", "--test-timeout", "2", "--memory-gb", "3"]


def _solution():
    return nbformat.read(SOLUTION, as_version=4)


def _student():
    """The generated student notebook of the fixture lab, completed with the solution code."""
    return build.completed_version(labformat.read(SOLUTION))


def _edit(nb, old: str, new: str):
    """Replace ``old`` by ``new`` in exactly one cell (so a typo in a test cannot pass)."""
    cells = [cell for cell in nb.cells if old in cell.source]
    assert len(cells) == 1, f"{old!r} is in {len(cells)} cells"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


def _append(nb, source: str):
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def _before_last_test(nb, source: str):
    """Insert a cell just before the last test cell: the grader runs nothing after that cell."""
    last = max(i for i, cell in enumerate(nb.cells) if cell.source.startswith("### TESTS"))
    return _insert(nb, source, last)


def _insert(nb, source: str, index: int = 2):
    """Insert a cell after the imports, so every exercise and its tests run after it."""
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def _drop(nb, marker: str):
    nb.cells = [cell for cell in nb.cells if marker not in cell.source]
    return nb


SUBMISSIONS = {
    "solution": lambda: _solution(),
    "generated_lab": lambda: build.student_version(labformat.read(SOLUTION)),
    "completed": _student,
    "buggy_double": lambda: _edit(
        _student(), "return 2 * np.asarray(x)", "return 2 * np.asarray(x) + 1"
    ),
    "buggy_mean": lambda: _edit(
        _student(), "values.sum() / len(values)", "values.sum() / (len(values) + 1)"
    ),
    "older_version": lambda: _set_version(_student(), "0123456789ab"),
    # Saved before the lab machinery moved to utils.labs: the alias utils.selfcheck.
    "saved_before_utils_labs": lambda: _edit(
        _student(), "from utils.labs.selfcheck import", "from utils.selfcheck import"
    ),
    "syntax_error": lambda: _edit(_student(), "def mean_of(values):", "def mean_of(values)"),
    "endless_cell": lambda: _insert(_student(), "while True:\n    pass"),
    "endless_function": lambda: _edit(
        _student(), "return 2 * np.asarray(x)", "while True:\n        pass"
    ),
    "ignores_interrupts": lambda: _insert(
        _student(),
        "while True:\n    try:\n        while True:\n"
        "            pass\n    except BaseException:\n        pass",
    ),
    "allocates_too_much": lambda: _insert(_student(), "import numpy\nbig = numpy.ones(2**33)"),
    "os_exit": lambda: _before_last_test(_student(), "import os\nos._exit(1)"),
    "segfault": lambda: _before_last_test(_student(), "import ctypes\nctypes.string_at(0)"),
    "megabytes_of_output": lambda: _insert(
        _student(), "for _ in range(3000):\n    print('x' * 1000)"
    ),
    "exercise_deleted": lambda: _drop(_student(), "def mean_of"),
    "test_cells_deleted": lambda: _drop(_drop(_student(), "### TESTS"), "check("),
    "edited_tests": lambda: _edit(
        _edit(_student(), "return 2 * np.asarray(x)", "return x"),
        'checks.assert_close(double(3.0), 6.0, "double(3.0)")',
        "pass",
    ),
    # Cheating: every one of these has a wrong `double`, so ex1 must still fail.
    "redefines_check_and_helpers": lambda: _edit(
        _student(),
        "return 2 * np.asarray(x)",
        "return x\n\n"
        "class _Lenient:\n    def __getattr__(self, name):\n"
        "        return lambda *a, **k: None\n\n\n"
        "checks = _Lenient()\n\ndef check(*args, **kwargs):\n    print('ex1 PASS  everything')\n\n"
        "def test(*args, **kwargs):\n    return lambda function: None",
    ),
    "monkeypatches_helpers": lambda: _edit(
        _student(),
        "return 2 * np.asarray(x)",
        "return x\n\n"
        "import numpy\nimport utils.checks\nimport utils.labs.selfcheck\n"
        "utils.checks.assert_close = lambda *a, **k: None\n"
        "utils.checks.assert_shape = lambda *a, **k: None\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "utils.labs.selfcheck.run_test.__code__ = (lambda exercise, name, function: "
        "utils.labs.selfcheck.Outcome(exercise, name, 'pass')).__code__",
    ),
    "patches_the_result_channel": lambda: _edit(
        _student(),
        "return 2 * np.asarray(x)",
        "import ipykernel.zmqshell\n"
        "    publisher = ipykernel.zmqshell.ZMQDisplayPublisher\n"
        "    original = getattr(publisher, '_original', publisher.publish)\n"
        "    def publish(self, data, *args, **kwargs):\n"
        "        grade = data.get('application/vnd.dlvision.grade+json', {})\n"
        "        for test in grade.get('tests', []):\n"
        "            test['status'] = 'pass'\n"
        "        return original(self, data, *args, **kwargs)\n"
        "    publisher._original, publisher.publish = original, publish\n"
        "    return x",
    ),
    "prints_fake_results": lambda: _before_last_test(
        _edit(_student(), "return 2 * np.asarray(x)", "return x"),
        "from IPython.display import display\n"
        "print('ex1 PASS  doubles_a_scalar')\nprint('ex1 score: 3 of 3')\n"
        "display({'application/vnd.dlvision.grade+json': {'exercise': 'ex1', 'tests': ["
        "{'name': n, 'visibility': v, 'status': 'pass', 'message': ''} for v, n in ["
        "('public', 'doubles_a_scalar'), ('public', 'keeps_the_shape'), "
        "('hidden', 'doubles_negative_numbers')]], 'tampering': [], 'problems': []}}, raw=True)",
    ),
    "writes_results_file": lambda: _before_last_test(
        _edit(_student(), "return 2 * np.asarray(x)", "return x"),
        "import json, os, pathlib\n"
        "for folder in [os.environ.get('GRADES_DIR', ''), 'grades', '.']:\n"
        "    if folder:\n        pathlib.Path(folder).mkdir(exist_ok=True)\n"
        "        pathlib.Path(folder, 'writes_results_file.json').write_text("
        "json.dumps({'total': 100, 'max_total': 3}))",
    ),
}


def _set_version(nb, version):
    nb.metadata["course"]["version"] = version
    return nb


@pytest.fixture(scope="module")
def batch(tmp_path_factory, monkeypatch_module):
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("grades")
    monkeypatch_module.setenv("GRADES_DIR", str(out))
    for name, make in SUBMISSIONS.items():
        nbformat.write(make(), str(folder / f"{name}.ipynb"))
    (folder / "invalid_json.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / "not_a_notebook.ipynb").write_text('{"hello": "world"}', encoding="utf-8")
    (folder / "binary.ipynb").write_bytes(b"\xff\xfe\x00garbage")
    other = _solution()
    other.metadata["course"]["lab"] = "lab_that_does_not_exist"
    nbformat.write(other, str(folder / "unknown_lab.ipynb"))
    code = grade.main([str(folder), "--solutions", str(FIXTURES), "--out", str(out), *LIMITS,
                       "--jobs", "2", "--feedback", str(out / "feedback"),
                       "--format", "gradescope"])
    reports = {Path(r["file"]).stem: r for r in json.loads((out / "summary.json").read_text())}
    return code, reports, out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def failing(report) -> set[str]:
    return {ex["id"] for ex in report["exercises"] if ex["points"] < ex["max_points"]}


def test_batch_grades_every_file_and_writes_the_summary(batch):
    code, reports, out = batch
    assert code == grade.EXIT_GRADED
    expected = set(SUBMISSIONS) | {"invalid_json", "not_a_notebook", "binary", "unknown_lab"}
    assert set(reports) == expected
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("file,lab,total,max_total,ex1,ex2,errors")
    assert len(rows) == 1 + len(expected)
    assert (
        json.loads((out / "buggy_mean.json").read_text())["total"] == reports["buggy_mean"]["total"]
    )


@pytest.mark.parametrize(
    "name",
    ["solution", "completed", "saved_before_utils_labs", "test_cells_deleted",
     "megabytes_of_output"],
)
def test_correct_code_earns_full_marks(batch, name):
    report = batch[1][name]
    assert (report["total"], report["max_total"]) == (3.0, 3.0), report


def test_clean_submissions_get_no_warnings(batch):
    for name in ("solution", "completed", "saved_before_utils_labs"):
        assert batch[1][name]["warnings"] == [], batch[1][name]["warnings"]


def test_edited_and_missing_test_cells_are_noted(batch):
    edited = " ".join(batch[1]["edited_tests"]["warnings"])
    assert "the test cell of ex1 differs from the master copy" in edited
    missing = " ".join(batch[1]["test_cells_deleted"]["warnings"])
    assert "the test cell of ex1 is missing" in missing
    assert "the test cell of ex2 is missing" in missing


def test_generated_lab_scores_zero_as_not_attempted(batch):
    report = batch[1]["generated_lab"]
    assert report["total"] == 0 and report["errors"] == []
    statuses = {t["status"] for ex in report["exercises"] for t in ex["tests"]}
    assert statuses == {"not attempted"}


@pytest.mark.parametrize(
    "name, failing_exercises, total",
    [
        ("buggy_double", {"ex1"}, 1.67),
        ("buggy_mean", {"ex2"}, 2.0),
        ("syntax_error", {"ex2"}, 2.0),
        ("exercise_deleted", {"ex2"}, 2.0),
        ("edited_tests", {"ex1"}, 1.67),
    ],
)
def test_partial_credit_fails_exactly_the_broken_exercises(batch, name, failing_exercises, total):
    report = batch[1][name]
    assert failing(report) == failing_exercises
    assert report["total"] == total


def test_hidden_tests_are_reported_by_name(batch):
    tests = batch[1]["buggy_double"]["exercises"][0]["tests"]
    assert [(t["visibility"], t["name"], t["status"]) for t in tests] == [
        ("public", "doubles_a_scalar", "fail"),
        ("public", "keeps_the_shape", "pass"),
        ("hidden", "doubles_negative_numbers", "fail"),
    ]
    assert (
        tests[0]["message"].startswith("double(3.0): expected 6 (within")
        and "found 7" in tests[0]["message"]
    )


def test_a_deleted_exercise_cell_is_named(batch):
    messages = [t["message"] for t in batch[1]["exercise_deleted"]["exercises"][1]["tests"]]
    assert all("mean_of" in m and "deleted" in m for m in messages), messages


def test_older_version_is_graded_with_a_warning(batch):
    report = batch[1]["older_version"]
    assert report["total"] == 3.0
    assert any("another version of the lab (0123456789ab" in w for w in report["warnings"])


@pytest.mark.parametrize(
    "name, needle",
    [
        ("invalid_json", "invalid JSON"),
        ("not_a_notebook", "not a notebook"),
        ("binary", "cannot read"),
        ("unknown_lab", "unknown lab 'lab_that_does_not_exist'"),
    ],
)
def test_unusable_files_get_one_clear_error(batch, name, needle):
    report = batch[1][name]
    assert report["total"] == 0 and len(report["errors"]) == 1
    assert needle in report["errors"][0]


def test_an_endless_function_loses_only_its_tests(batch):
    report = batch[1]["endless_function"]
    assert failing(report) == {"ex1"} and report["total"] == 1.0
    assert all(
        "stopped after the 2 s limit per test" in t["message"]
        for t in report["exercises"][0]["tests"]
    )


def test_the_memory_cap_stops_a_huge_allocation(batch):
    report = batch[1]["allocates_too_much"]  # 64 GiB of float64 against a 3 GiB cap
    assert report["total"] == 3.0 and report["errors"] == []
    assert any("cell 3 ('import numpy') raised MemoryError" in w for w in report["warnings"])


def test_megabytes_of_output_are_cut(batch):
    report = batch[1]["megabytes_of_output"]
    assert report["errors"] == [] and report["total"] == 3.0


@pytest.mark.parametrize("name", ["os_exit", "segfault"])
def test_a_dead_kernel_keeps_the_tests_already_run(batch, name):
    report = batch[1][name]
    assert any("kernel died" in error for error in report["errors"]), report["errors"]
    # The fatal cell comes after ex1's tests and before ex2's: ex1 keeps its points.
    points = {ex["id"]: ex["points"] for ex in report["exercises"]}
    assert points == {"ex1": 2.0, "ex2": 0.0}, report


def test_an_interrupted_cell_is_reported_and_the_rest_runs(batch):
    report = batch[1]["endless_cell"]
    assert any(
        "cell 3 ('while True:') ran past the 3 s limit per cell" in w for w in report["warnings"]
    ), report
    assert report["total"] == 3.0


def test_a_kernel_that_ignores_interrupts_is_stopped_at_the_notebook_limit(batch):
    report = batch[1]["ignores_interrupts"]
    assert any("past the 20 s limit" in error for error in report["errors"]), report["errors"]
    assert report["total"] == 0
    assert all("did not run" in t["message"] for ex in report["exercises"] for t in ex["tests"])


@pytest.mark.parametrize(
    "name",
    [
        "redefines_check_and_helpers",
        "monkeypatches_helpers",
        "patches_the_result_channel",
        "prints_fake_results",
        "writes_results_file",
    ],
)
def test_cheating_earns_nothing(batch, name):
    code, reports, out = batch
    report = reports[name]
    # Only keeps_the_shape passes for `return x`: 1 of 3 tests of ex1 (2 points), and ex2.
    assert failing(report) == {"ex1"} and report["total"] == 1.67, report
    assert json.loads((out / f"{name}.json").read_text())["total"] == 1.67


def test_a_patched_result_channel_is_put_back_before_publishing(batch):
    warnings = " ".join(batch[1]["patches_the_result_channel"]["warnings"])
    assert "ipykernel.zmqshell.ZMQDisplayPublisher.publish was replaced" in warnings


def test_undone_tampering_is_reported(batch):
    report = batch[1]["monkeypatches_helpers"]
    warnings = " ".join(report["warnings"])
    assert "utils.checks.assert_close was replaced" in warnings
    assert "numpy.allclose was replaced" in warnings
    assert "the code of utils.labs.selfcheck.run_test was changed" in warnings
    assert any("assigns into a library module" in note for note in report["review"])


def test_single_file_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json", encoding="utf-8")
    assert grade.main([str(bad), "--out", str(tmp_path)]) == grade.EXIT_UNREADABLE
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "invalid JSON" in error
    anonymous = _solution()
    del anonymous.metadata["course"]
    nbformat.write(anonymous, str(tmp_path / "anonymous.ipynb"))
    assert (
        grade.main([str(tmp_path / "anonymous.ipynb"), "--out", str(tmp_path)])
        == grade.EXIT_UNKNOWN_LAB
    )
    assert "no lab id" in capsys.readouterr().err
    assert grade.main([str(tmp_path / "missing.ipynb")]) == grade.EXIT_UNREADABLE


def test_a_notebook_of_another_lab_is_not_graded_as_this_one(tmp_path):
    other = _solution()
    other.metadata["course"]["lab"] = "lab0_perceptron"
    nbformat.write(other, str(tmp_path / "other.ipynb"))
    report = grade.grade(tmp_path / "other.ipynb", lab_id="fixture_lab", solutions_dir=FIXTURES)
    assert report.total == 0 and "is lab 'lab0_perceptron', not 'fixture_lab'" in report.errors[0]


def test_expected_tests_come_from_the_master_cells():
    lab = labformat.read(SOLUTION)
    assert gradenotebook.expected_tests(lab.exercises["ex1"]) == [
        ("public", "doubles_a_scalar"),
        ("public", "keeps_the_shape"),
        ("hidden", "doubles_negative_numbers"),
    ]


def test_the_grading_notebook_puts_master_tests_where_the_student_had_them():
    lab = labformat.read(SOLUTION)
    submission = _drop(_student(), "### TESTS ex2")  # ex2's public test cell deleted
    _edit(submission, "def doubles_a_scalar():", "def doubles_a_scalar_weakened():")
    nb = gradenotebook.grading_notebook(lab, submission, memory_bytes=None, test_timeout=5)
    roles = [cell.metadata.get("grader") or cell.metadata["label"] for cell in nb.cells]
    assert roles[0] == "the grader's setup"
    assert roles.index("ex1") == roles.index("cell 4 ('def double(x):')") + 1  # in place
    assert roles[-1] == "ex2"  # appended, since the student's cell is gone
    ex1 = nb.cells[roles.index("ex1")].source
    assert "doubles_negative_numbers" in ex1 and "weakened" not in ex1  # master, hidden too
    assert all(cell.cell_type == "code" for cell in nb.cells)  # markdown is not run


def test_a_batch_writes_feedback_pages_and_gradescope_files(batch):
    out = batch[2]
    page = (out / "feedback" / "buggy_double.md").read_text(encoding="utf-8")
    assert "# Feedback: buggy_double.ipynb" in page and "hidden tests: 0 of 1 passed" in page
    assert "doubles_negative_numbers" not in page  # a hidden test's name stays hidden
    results = json.loads((out / "buggy_double.results.json").read_text())
    assert results["score"] == batch[1]["buggy_double"]["total"]
    visibility = {t["name"]: t["visibility"] for t in results["tests"]}
    assert visibility["ex1: doubles_negative_numbers"] == "after_published"
    assert visibility["ex1: doubles_a_scalar"] == "visible"


def test_one_submission_gets_results_json_for_gradescope(tmp_path):
    submission = tmp_path / "submission.ipynb"
    nbformat.write(_student(), str(submission))
    code = grade.main([str(submission), "--solutions", str(FIXTURES), "--out", str(tmp_path),
                       "--quiet", "--format", "gradescope", "--hidden-visibility", "hidden",
                       *LIMITS])
    assert code == grade.EXIT_GRADED
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 3.0 and len(results["tests"]) == 5
    assert {t["visibility"] for t in results["tests"]} == {"visible", "hidden"}


def test_the_grading_notebook_ends_with_the_last_test_cell():
    lab = labformat.read(SOLUTION)
    submission = _append(_student(), "raise SystemExit('a demonstration after the tests')")
    nb = gradenotebook.grading_notebook(lab, submission, memory_bytes=None, test_timeout=5)
    assert nb.cells[-1].metadata.get("grader") == "ex2"
    assert not any("a demonstration after the tests" in cell.source for cell in nb.cells)
    # With a test cell deleted, its tests run at the end, after every student cell.
    submission = _append(_drop(_student(), "### TESTS ex1"), "late = 1")
    nb = gradenotebook.grading_notebook(lab, submission, memory_bytes=None, test_timeout=5)
    assert [c.metadata.get("grader") for c in nb.cells[-2:]] == [None, "ex1"]
    assert nb.cells[-2].source == "late = 1"


def test_review_flags_code_that_touches_the_grader():
    nb = _append(_student(), "import sys\nsys.modules['utils.checks'] = None")
    _append(nb, "def check(*args):\n    pass")
    notes = gradenotebook.review(nb)
    assert any("changes modules or builtins" in note for note in notes)
    assert any("redefines check or test" in note for note in notes)
    _append(nb, "import utils.labs.kernel as k")
    assert any("names the grader's internals" in note for note in gradenotebook.review(nb))
    assert gradenotebook.review(_student()) == []


def test_folder_reports_mirror_subfolders_and_bad_options_fail_early(tmp_path, capsys):
    folder, out = tmp_path / "submissions", tmp_path / "grades"
    for student in ("alice", "bob"):
        (folder / student).mkdir(parents=True)
        (folder / student / "Lab.IPYNB").write_text(f"not json from {student}", encoding="utf-8")
    args = [str(folder), "--out", str(out), "--solutions", str(FIXTURES)]
    assert grade.main([*args, "--lab", "fixture_lb"]) == grade.EXIT_UNKNOWN_LAB  # a typo
    assert "unknown lab 'fixture_lb'" in capsys.readouterr().err and not out.exists()
    assert grade.main([*args, "--lab", "fixture_lab"]) == grade.EXIT_GRADED
    assert "graded 0 of 2 notebook(s) (2 could not be graded" in capsys.readouterr().out
    for student in ("alice", "bob"):
        report = json.loads((out / student / "Lab.json").read_text())
        assert report["file"].endswith(f"{student}/Lab.IPYNB")
        assert "invalid JSON" in report["errors"][0] and report["max_total"] == 3.0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert grade.main([str(empty), "--out", str(out)]) == grade.EXIT_UNREADABLE
    assert "no .ipynb files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.main([str(folder), "--jobs", "0"])
