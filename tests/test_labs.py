"""Every lab in solutions/: full marks for the solution, zero for the generated lab, and
partial credit, on exactly the expected exercises, for deliberately buggy submissions.

To add a lab, add at least two bugs for it to BUGS: (name, text in the solution, its
replacement, the exercises that must fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils import build, grade, labformat

BUGS = {
    "lab0_perceptron": [
        (
            "perceptron_update_sign",
            "w = w + learning_rate * error * x",
            "w = w - learning_rate * error * x",
            {"ex2"},
        ),
        (
            "softmax_without_max_shift",
            "shifted = logits - logits.max(axis=1, keepdims=True)",
            "shifted = logits",
            {"ex3"},
        ),
        (
            "one_sided_scale",
            "grad[index] = (above - below) / (2 * eps)",
            "grad[index] = (above - below) / eps",
            {"ex4"},
        ),
        (
            "logits_changed_in_place",
            "shifted = logits - logits.max(axis=1, keepdims=True)",
            "logits -= logits.max(axis=1, keepdims=True)\n    shifted = logits",
            {"ex3"},
        ),
        (
            "bias_update_sign",
            "b -= learning_rate * grad.sum(axis=0)",
            "b += learning_rate * grad.sum(axis=0)",
            {"ex5"},
        ),
        (
            "same_order_every_epoch",
            "order = generator.permutation(len(X))",
            "order = np.random.default_rng(seed).permutation(len(X))",
            {"ex5"},
        ),
    ],
    "lab1_lenet": [
        (
            "output_size_true_division",
            "return (size + 2 * padding - kernel) // stride + 1",
            "return (size + 2 * padding - kernel) / stride + 1",
            {"ex1"},
        ),
        (
            "same_padding_ignores_stride",
            "return -(-size // stride)",
            "return size",
            {"ex1"},
        ),
        (
            "c3_kernel_3x3",
            'x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)',
            'x = layers.Conv2D(16, 3, activation=activation, name="c3")(x)',
            {"ex2"},
        ),
        (
            "output_not_float32",  # only the hidden mixed-precision test sees it
            'activation="softmax", dtype="float32", name="output")(x)',
            'activation="softmax", name="output")(x)',
            {"ex2"},
        ),
        (
            "num_classes_ignored",  # only the hidden test with 5 classes sees it
            'outputs = layers.Dense(num_classes, activation="softmax"',
            'outputs = layers.Dense(10, activation="softmax"',
            {"ex2"},
        ),
        (
            "c3_table_wraps_backwards",
            "table[[(j + offset) % 6 for offset in range(3)], j] = True",
            "table[[(j - offset) % 6 for offset in range(3)], j] = True",
            {"ex3"},
        ),
        (
            "least_confident_mistakes_first",
            'order = np.argsort(-confidence[wrong], kind="stable")',
            'order = np.argsort(confidence[wrong], kind="stable")',
            {"ex4"},
        ),
        (
            "right_answers_counted_as_mistakes",
            "wrong = np.flatnonzero(predicted != labels)",
            "wrong = np.arange(len(labels))",
            {"ex4"},
        ),
    ],  # BUGS lab1_lenet
    "lab2_alexnet": [],  # BUGS lab2_alexnet
    "lab3_vgg": [],  # BUGS lab3_vgg
    "lab4_inception": [],  # BUGS lab4_inception
    "lab5_resnet": [],  # BUGS lab5_resnet
}
LABS = [path.stem for path in labformat.solution_paths()]


def _buggy(lab, old, new):
    nb = build.completed_version(lab)
    cells = [cell for cell in nb.cells if old in cell.source]
    assert len(cells) == 1, f"{old!r} should be in exactly one cell of {lab.id}"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grades one lab's submissions in one batch, the first time that lab is asked for
    (so `pytest -k lab1_lenet` grades only Lab 1): graded(lab_id)[name] is a report."""
    done = {}

    def reports(lab_id):
        if lab_id not in done:
            folder = tmp_path_factory.mktemp(f"{lab_id}_submissions")
            out = tmp_path_factory.mktemp(f"{lab_id}_grades")
            lab = labformat.find(lab_id)
            nbformat.write(lab.notebook, str(folder / "solution.ipynb"))
            nbformat.write(build.student_version(lab), str(folder / "generated.ipynb"))
            for name, old, new, _ in BUGS.get(lab_id, []):
                nbformat.write(_buggy(lab, old, new), str(folder / f"{name}.ipynb"))
            args = [str(folder), "--out", str(out), "--quiet", "--jobs", "2"]
            assert grade.main(args) == grade.EXIT_GRADED
            summary = json.loads((out / "summary.json").read_text())
            done[lab_id] = {Path(r["file"]).stem: r for r in summary}
        return done[lab_id]

    return reports


def test_there_is_at_least_one_lab():
    assert "lab0_perceptron" in LABS


@pytest.mark.parametrize("lab_id", LABS)
def test_every_lab_has_at_least_two_buggy_submissions(lab_id):
    assert len(BUGS.get(lab_id, [])) >= 2, f"add buggy submissions for {lab_id} to BUGS"


@pytest.mark.parametrize("lab_id", LABS)
def test_the_solution_earns_full_marks(graded, lab_id):
    report = graded(lab_id)["solution"]
    assert report["errors"] == [] and report["total"] == report["max_total"] > 0, report
    assert report["warnings"] == [], report["warnings"]


@pytest.mark.parametrize("lab_id", LABS)
def test_the_generated_lab_earns_zero_without_errors(graded, lab_id):
    report = graded(lab_id)["generated"]
    assert report["errors"] == [] and report["total"] == 0, report
    statuses = {t["status"] for ex in report["exercises"] for t in ex["tests"]}
    assert statuses == {"not attempted"}, statuses


@pytest.mark.parametrize(
    "lab_id, name, failing",
    [(lab_id, name, failing) for lab_id, bugs in BUGS.items() for name, _, _, failing in bugs],
)
def test_a_buggy_submission_fails_exactly_the_expected_exercises(graded, lab_id, name, failing):
    report = graded(lab_id)[name]
    found = {ex["id"] for ex in report["exercises"] if ex["points"] < ex["max_points"]}
    assert found == failing, report
    assert 0 < report["total"] < report["max_total"]
