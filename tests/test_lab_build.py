"""Lab authoring and the build: markers, parsing, generated labs, --check, refusing to overwrite."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from utils.labs import build
from utils.labs import format as labformat

FIXTURES = Path(__file__).parent / "fixtures" / "solutions"


def test_a_solution_region_becomes_a_stub_with_its_hints():
    source = (
        'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    ### HINT: square it.\n'
        "    y = x * x\n    return y\n    ### END SOLUTION\n\nprint(f)"
    )
    stub = labformat.strip_solutions(source)
    assert stub == (
        'def f(x):\n    """Doc."""\n    # Hint: square it.\n'
        "    raise NotImplementedError('Exercise not done yet: replace this line with "
        "your code. Hint: square it.')\n\nprint(f)"
    )
    compile(stub, "stub", "exec")  # still valid Python


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1", "has no matching"),
        ("x = 1\n### END SOLUTION", "without ### BEGIN SOLUTION"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another region"),
    ],
)
def test_broken_markers_are_reported_with_their_place(source, problem):
    with pytest.raises(labformat.LabFormatError, match=problem) as error:
        labformat.strip_solutions(source, "lab.ipynb, cell 4")
    assert "lab.ipynb, cell 4" in str(error.value)


def test_parse_reads_exercises_points_and_tests():
    lab = labformat.read(FIXTURES / "fixture_lab.ipynb")
    assert lab.id == "fixture_lab" and list(lab.exercises) == ["ex1", "ex2"]
    assert (lab.exercises["ex1"].points, lab.exercises["ex1"].title) == (2.0, "Doubling")
    assert lab.max_points == 3.0
    assert len(lab.exercises["ex1"].public) == 1 and len(lab.exercises["ex1"].hidden) == 1


def _notebook(*sources, lab="demo"):
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.v4.new_notebook(cells=cells, metadata={"course": {"lab": lab}})


@pytest.mark.parametrize(
    "nb, problem",
    [
        (_notebook("## HIDDEN TESTS ex1"), "looks like a test header"),
        (_notebook("### HIDDEN TEST ex1"), "looks like a test header"),
        (_notebook("### TESTS ex1 (1.5 pts)"), "looks like a test header"),
        (_notebook('### TESTS ex1 (1 point)\n@test("ex2")\ndef t():\n    pass'), "@test('ex1')"),
        (
            _notebook(
                '### TESTS ex1 (1 point)\n@test("ex1")\ndef t():\n    pass',
                "### HIDDEN TESTS ex1 (2 points)",
            ),
            "points go on the public",
        ),
        (_notebook("### TESTS ex1 (1 point)\nx = 1"), "has no @test functions"),
        (_notebook("### TESTS ex1 (1 point)", lab="lab-9"), "letters, digits and _"),
        (_notebook("### TESTS ex1 (1 point)", lab=None), "no course.lab"),
        (_notebook("### TESTS ex1: no points"), "has no points"),
        (_notebook("### TESTS ex1 (1 point)", "### TESTS ex1 (2 points)"), "a second public TESTS"),
        (_notebook("### HIDDEN TESTS ex2"), "no public TESTS cell"),
        (_notebook("x = 1"), "nothing to grade"),
    ],
)
def test_parse_rejects_malformed_labs(nb, problem):
    if nb.metadata["course"]["lab"] is None:
        del nb.metadata["course"]
    with pytest.raises(labformat.LabFormatError, match=re.escape(problem)):
        labformat.parse(nb)


def test_find_names_the_known_labs():
    with pytest.raises(LookupError, match="unknown lab 'nope'.*fixture_lab"):
        labformat.find("nope", FIXTURES)


def test_load_functions_runs_only_the_definitions(tmp_path):
    """A later notebook loads a lab's builder without running its training or its tests."""
    nb = nbformat.read(FIXTURES / "fixture_lab.ipynb", as_version=4)
    nb.cells[1:1] = [
        nbformat.v4.new_code_cell("import math\nTABLE = {'A': [1, 2]}\nSIZE = math.pi\n"
                                  "raise RuntimeError('a side effect ran')"),
        nbformat.v4.new_code_cell("%matplotlib inline\ndef area(r):\n"
                                  "    return SCALE * math.pi * r * r * len(TABLE['A'])\n\n"
                                  "SCALE = 0.5\nprint('not a definition')"),
    ]
    nbformat.write(nb, str(tmp_path / "fixture_lab.ipynb"))
    area = labformat.load_functions("fixture_lab", ["area"], tmp_path)["area"]
    assert area(1.0) == pytest.approx(math.pi)
    with pytest.raises(NameError):  # SIZE = math.pi is not a literal, so it was not run
        exec("SIZE", area.__globals__)
    assert labformat.load_functions("fixture_lab", ["TABLE"], tmp_path) == {"TABLE": {"A": [1, 2]}}
    with pytest.raises(LookupError, match="defines no nope.*SCALE, TABLE, area"):
        labformat.load_functions("fixture_lab", ["nope"], tmp_path)


@pytest.fixture
def workspace(tmp_path):
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    shutil.copy(FIXTURES / "fixture_lab.ipynb", solutions)
    return solutions, labs


def _edit_cell(path, index, change):
    """Rewrite cell ``index`` of the notebook at ``path`` with ``change(source) -> source``."""
    nb = nbformat.read(path, as_version=4)
    nb.cells[index].source = change(nb.cells[index].source)
    nbformat.write(nb, str(path))


def _run(solutions, labs, *flags):
    return build.main(["--solutions", str(solutions), "--labs-dir", str(labs), *flags])


def test_build_writes_a_clean_student_version(workspace):
    solutions, labs = workspace
    assert _run(solutions, labs) == build.EXIT_OK
    nb = nbformat.read(labs / "fixture_lab.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "doubles_negative_numbers" not in text  # the hidden test's name
    assert text.count("raise NotImplementedError") == 2
    assert all(cell.get("outputs", []) == [] for cell in nb.cells if cell.cell_type == "code")
    stamp = nb.metadata["course"]
    source = labformat.read(solutions / "fixture_lab.ipynb")
    assert stamp["lab"] == "fixture_lab" and stamp["version"] == source.version
    assert stamp["build"] == labformat.cells_hash(nb)


def test_check_passes_when_up_to_date_and_shows_a_diff_when_not(workspace, capsys):
    solutions, labs = workspace
    assert _run(solutions, labs, "--check") == build.EXIT_OUT_OF_DATE  # not built yet
    _run(solutions, labs)
    capsys.readouterr()
    assert _run(solutions, labs, "--check") == build.EXIT_OK
    _edit_cell(
        solutions / "fixture_lab.ipynb",
        0,
        lambda text: text + "\nA sentence added by the instructor.",
    )
    before = (labs / "fixture_lab.ipynb").read_bytes()
    assert _run(solutions, labs, "--check") == build.EXIT_OUT_OF_DATE
    out = capsys.readouterr().out
    assert "+A sentence added by the instructor." in out and "python -m utils.labs.build" in out
    assert (labs / "fixture_lab.ipynb").read_bytes() == before  # --check never writes
    assert _run(solutions, labs) == build.EXIT_OK
    assert _run(solutions, labs, "--check") == build.EXIT_OK


def test_build_refuses_to_overwrite_a_hand_edited_lab(workspace, capsys):
    solutions, labs = workspace
    _run(solutions, labs)
    target = labs / "fixture_lab.ipynb"
    _edit_cell(target, 3, lambda _: "def double(x):\n    return 2 * x  # my answer")
    _edit_cell(solutions / "fixture_lab.ipynb", 0, lambda text: text + "\nNew text.")
    capsys.readouterr()
    assert _run(solutions, labs) == build.EXIT_REFUSED
    out = capsys.readouterr().out
    assert out.startswith(f"REFUSED: {target} was edited") and "--force" in out
    assert "my answer" in target.read_text()
    assert _run(solutions, labs, "--force") == build.EXIT_OK
    assert "my answer" not in target.read_text()


def test_running_a_lab_is_not_an_edit_but_its_outputs_are_cleared(workspace, capsys):
    solutions, labs = workspace
    _run(solutions, labs)
    target = labs / "fixture_lab.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.cells[1].execution_count = 1
    nbformat.write(nb, str(target))
    assert not build.edited_by_hand(nb)
    capsys.readouterr()
    assert _run(solutions, labs, "--check") == build.EXIT_OUT_OF_DATE
    assert "has stored outputs" in capsys.readouterr().out
    assert _run(solutions, labs) == build.EXIT_OK  # not refused: only outputs differ
    assert "hello" not in target.read_text()
    assert _run(solutions, labs, "--check") == build.EXIT_OK


def test_nbval_tags_are_kept_and_a_changed_tag_is_a_change(workspace, capsys):
    solutions, labs = workspace
    source = solutions / "fixture_lab.ipynb"
    nb = nbformat.read(source, as_version=4)
    nb.cells[1].metadata["tags"] = ["nbval-ignore-output"]
    nb.cells[1].metadata["scrolled"] = True  # other cell metadata is not kept
    nbformat.write(nb, str(source))
    assert _run(solutions, labs) == build.EXIT_OK
    cell = nbformat.read(labs / "fixture_lab.ipynb", as_version=4).cells[1]
    assert cell.metadata == {"tags": ["nbval-ignore-output"]}
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, str(source))
    capsys.readouterr()
    assert _run(solutions, labs, "--check") == build.EXIT_OUT_OF_DATE
    assert "tags ['nbval-ignore-output']" in capsys.readouterr().out


def test_check_says_when_force_is_needed(workspace, capsys):
    solutions, labs = workspace
    _run(solutions, labs)
    target = labs / "fixture_lab.ipynb"
    _edit_cell(target, 3, lambda text: text + "\n# my note")
    capsys.readouterr()
    assert _run(solutions, labs, "--check") == build.EXIT_OUT_OF_DATE
    assert "python -m utils.labs.build fixture_lab --force" in capsys.readouterr().out


def test_a_lab_whose_solution_is_gone_is_reported(workspace, capsys):
    solutions, labs = workspace
    _run(solutions, labs)
    (solutions / "fixture_lab.ipynb").rename(solutions / "renamed.ipynb")
    capsys.readouterr()
    assert _run(solutions, labs, "--check") != build.EXIT_OK
    assert "ORPHAN: " in capsys.readouterr().err


def test_a_solution_without_lab_metadata_is_an_error_not_skipped(workspace, capsys):
    solutions, labs = workspace
    nb = nbformat.read(solutions / "fixture_lab.ipynb", as_version=4)
    del nb.metadata["course"]
    nbformat.write(nb, str(solutions / "fixture_lab.ipynb"))
    assert _run(solutions, labs) == build.EXIT_REFUSED
    assert "no course.lab" in capsys.readouterr().err


def test_an_unknown_lab_name_is_an_error(workspace, capsys):
    solutions, labs = workspace
    assert _run(solutions, labs, "nope") == build.EXIT_REFUSED
    assert "no such lab: nope" in capsys.readouterr().err


def test_repository_labs_are_up_to_date():
    """A solution edited without `python -m utils.labs.build` fails here."""
    assert build.main(["--check"]) == build.EXIT_OK


def test_nothing_secret_leaks_into_the_repository_labs():
    for path in labformat.solution_paths():
        lab = labformat.read(path)
        student = labformat.LABS_DIR / path.name
        text = student.read_text(encoding="utf-8")
        for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "### HINT"):
            assert secret not in text, f"{student.name} contains {secret!r}"
        from utils.labs.submission import expected_tests

        for exercise in lab.exercises.values():
            hidden = [name for kind, name in expected_tests(exercise) if kind == "hidden"]
            assert hidden, f"{lab.id} {exercise.id} has no hidden test"
            for name in hidden:
                assert name not in text, f"hidden test {name} leaks into {student.name}"
