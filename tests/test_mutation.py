"""benchmarks.mutants makes one-change mutants of solution regions; benchmarks.mutation grades
them with the lab's own tests."""

from __future__ import annotations

import pytest

from benchmarks import mutation
from benchmarks.mutants import mutants, solution_lines

CELL = '''def block(x, k):
    """Docstring with "relu" in it."""
    outside = "relu"
    ### BEGIN SOLUTION
    x = layers.Dense(3, activation="relu", name="a")(x)
    y = layers.MaxPooling2D(2)(x)
    return x + y if k < 2 else x * 2.0
    ### END SOLUTION
'''


def test_only_the_solution_region_is_mutated():
    assert solution_lines(CELL) == {5, 6, 7}
    found = mutants(CELL)
    assert {m.line for m in found} == {5, 6, 7}
    assert all("outside = 'relu'" in m.source for m in found)  # line 3 never changes


def test_each_kind_of_change_is_made_once_per_place():
    descriptions = [m.description for m in mutants(CELL)]
    for expected in ["'relu' -> 'tanh'", "MaxPooling2D -> AveragePooling2D",
                     "keyword activation= deleted", "k < 2 -> k <= 2", "x + y -> x - y",
                     "x * 2.0 -> x / 2.0", "2.0 -> 4.0", "3 -> 4"]:
        assert expected in descriptions
    assert any(d.startswith("layer call deleted") for d in descriptions)
    sources = [m.source for m in mutants(CELL)]
    assert len(sources) == len(set(sources))  # no duplicates
    for m in mutants(CELL):
        compile(m.source, "mutant", "exec")  # every mutant is valid Python


def test_a_cell_without_a_solution_region_has_no_mutants():
    assert mutants("x = 1\ny = x + 2\n") == []


@pytest.mark.slow
def test_lab0_mutants_are_graded_and_survivors_listed(capsys):
    status = mutation.main(["lab0_perceptron", "--limit", "4", "--min-score", "0"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "lab0_perceptron: " in out and "mutants killed" in out and "4 graded" in out


def test_an_unknown_lab_is_refused(capsys):
    assert mutation.main(["no_such_lab"]) == 2
    assert "no_such_lab" in capsys.readouterr().err
