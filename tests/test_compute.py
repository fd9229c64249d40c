"""The compute ledger of training.fit, the dry run, and benchmarks.compute's tables."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

from benchmarks import compute
from utils import ledger as ledger_module
from utils import runtime, training

FIXTURE = Path(__file__).parent / "fixtures" / "notebooks" / "ledger_fits.ipynb"


def tiny_cnn(name="tiny_cnn") -> keras.Model:
    """``(B, 8, 8, 1) -> (B, 3)``: a 3x3 convolution to 4 maps (valid: 6x6), then dense."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def tiny_mlp() -> keras.Model:
    """``(B, 8, 8, 1) -> (B, 3)``: 64 pixels -> 5 units -> 3 classes."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = layers.Dense(5, activation="relu", name="hidden")(layers.Flatten(name="flatten")(inputs))
    outputs = layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_mlp")


# Multiply-adds per image, counted by hand: a kernel's weights times its output positions.
TINY_CNN_MULT_ADDS = 6 * 6 * (3 * 3 * 1 * 4) + (6 * 6 * 4) * 3  # conv 1296 + dense 432
TINY_MLP_MULT_ADDS = 64 * 5 + 5 * 3


def toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.2
    x[np.arange(n), 2 * y, 2 * y, 0] = 1.0  # a bright pixel whose position gives the class
    return x, y


@pytest.fixture(autouse=True)
def empty_ledger(monkeypatch):
    monkeypatch.delenv(training.DRY_RUN_VAR, raising=False)
    runtime.setup(seed=0, verbose=False)
    training.reset_ledger()
    yield
    training.reset_ledger()


@pytest.mark.parametrize("build, mult_adds", [(tiny_cnn, TINY_CNN_MULT_ADDS),
                                              (tiny_mlp, TINY_MLP_MULT_ADDS)])
def test_fit_records_the_flop_of_a_hand_counted_model(build, mult_adds):
    x, y = toy_data()
    history = training.fit(build, x, y, epochs=2, batch_size=32, verbose=0)
    assert history.images == 96 * 2
    (entry,) = training.ledger()
    assert entry == {"model": build().name, "mult_adds": mult_adds, "images": 96, "epochs": 2,
                     "flop": 6 * mult_adds * 96 * 2, "seconds": history.seconds}
    assert history.seconds > 0


def test_a_layer_of_unknown_cost_is_recorded_as_none_and_named(monkeypatch, capsys):
    monkeypatch.setenv(training.DRY_RUN_VAR, "1")
    inputs = keras.Input((8, 8, 1))
    outputs = layers.Conv2DTranspose(2, 3, name="upsample")(inputs)  # not counted by archtable
    model = keras.Model(inputs, layers.Dense(3, name="dense")(outputs), name="decoder")
    x, y = toy_data(8)
    training.fit(model, x, y, epochs=1, loss="mse", metrics=(), verbose=0)
    assert "multiply-adds of decoder not counted" in capsys.readouterr().out
    (entry,) = training.ledger()
    assert entry["mult_adds"] is None and entry["flop"] is None
    assert training.compute_report().endswith(
        "; not counted (a layer of unknown cost): decoder")


def test_ledger_is_a_copy_and_reset_empties_it(monkeypatch):
    monkeypatch.setenv(training.DRY_RUN_VAR, "1")
    x, y = toy_data(8)
    training.fit(tiny_mlp, x, y, epochs=1, verbose=0)
    copy = training.ledger()
    copy[0]["flop"] = -1
    copy.append({})
    assert len(training.ledger()) == 1 and training.ledger()[0]["flop"] > 0
    training.reset_ledger()
    assert training.ledger() == []
    assert training.compute_report() == "Compute at this size: no model trained."


def test_compute_report_sums_by_model_costliest_first(monkeypatch, capsys):
    monkeypatch.setenv(training.DRY_RUN_VAR, "1")
    x, y = toy_data(1000)
    training.fit(tiny_mlp, x, y, epochs=3, verbose=0)
    training.fit(tiny_cnn, x[:500], y[:500], epochs=2, verbose=0)
    training.fit(tiny_cnn, x, y, epochs=1, verbose=0)
    cnn = 6 * TINY_CNN_MULT_ADDS * (500 * 2 + 1000) / 1e15  # 2.07e-08 PFLOP
    mlp = 6 * TINY_MLP_MULT_ADDS * 1000 * 3 / 1e15  # 6.03e-09 PFLOP
    expected = (f"Compute at this size: 3 models trained, {cnn + mlp:.2g} PFLOP "
                f"(tiny_cnn {cnn:.2g}, tiny_mlp {mlp:.2g})")
    assert expected == "Compute at this size: 3 models trained, 2.7e-08 PFLOP " \
                       "(tiny_cnn 2.1e-08, tiny_mlp 6e-09)"
    assert training.compute_report() == expected
    assert capsys.readouterr().out.strip() == expected


def test_compute_report_names_the_costliest_few(monkeypatch):
    entries = [{"model": f"m{i}", "mult_adds": 1, "images": 1, "epochs": 1, "flop": i * 1e15,
                "seconds": 0.0} for i in range(1, 7)]
    monkeypatch.setattr(ledger_module, "_LEDGER", entries)
    assert training.compute_report() == (
        "Compute at this size: 6 models trained, 21 PFLOP (m6 6, m5 5, m4 4, m3 3, 2 more)")


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append((epoch, sorted(logs)))


def main_accuracy(y_true, y_pred):
    """A metric function: its name is the history's key (as in Lab 4)."""
    return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)


def test_dry_running_holds_in_its_thread_only(monkeypatch):
    import threading

    monkeypatch.delenv(training.DRY_RUN_VAR, raising=False)
    x, y = toy_data(64)
    seen = {}
    with training.dry_running():
        assert training.dry_run()
        history = training.fit(tiny_cnn, x, y, epochs=2, batch_size=32, verbose=0)
        other = threading.Thread(target=lambda: seen.update(dry=training.dry_run()))
        other.start()
        other.join()
    assert history.seconds == 0 and int(history.model.optimizer.iterations) == 0
    assert seen == {"dry": False}  # another thread trains for real meanwhile
    assert not training.dry_run()


@pytest.mark.parametrize("metrics", [("accuracy",), (main_accuracy,), ()])
def test_dry_run_trains_nothing_and_keeps_the_real_keys(monkeypatch, metrics):
    x, y = toy_data(64)
    real = training.fit(tiny_cnn, x, y, epochs=1, batch_size=32, metrics=metrics,
                        validation_data=(x, y), verbose=0)
    real_scores = training.evaluate(real.model, x, y)
    monkeypatch.setenv(training.DRY_RUN_VAR, "1")
    model, counter = tiny_cnn(), CountEpochs()
    before = [w.copy() for w in model.get_weights()]
    history = training.fit(model, x, y, epochs=3, batch_size=32, metrics=metrics,
                           validation_data=(x, y), callbacks=[counter], verbose=0)
    assert history.model is model and history.epoch == [0, 1, 2]
    assert history.seconds == 0 and history.images == 64 * 3
    assert sorted(history.history) == sorted(real.history)
    assert all(len(v) == 3 and all(map(math.isnan, v)) for v in history.history.values())
    assert counter.events == ["begin"] + [(e, sorted(real.history)) for e in range(3)]
    assert int(model.optimizer.iterations) == 0  # not a single step
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    scores = training.evaluate(model, x, y)
    assert sorted(scores) == sorted(real_scores) and all(map(math.isnan, scores.values()))
    probabilities = training.predict(model, x[:5])
    np.testing.assert_array_equal(probabilities, np.full((5, 3), 1 / 3, dtype=np.float32))
    assert [e["seconds"] for e in training.ledger()] == [real.seconds, 0.0]


def test_skip_asserts_turns_asserts_into_pass_on_the_same_lines():
    tree = compute.SkipAsserts().visit(ast.parse("x = 1\nassert x == 2, 'no'\ny = x + 1"))
    namespace = {}
    exec(compile(ast.fix_missing_locations(tree), "<cell>", "exec"), namespace)
    assert namespace["y"] == 2 and isinstance(tree.body[1], ast.Pass) and tree.body[1].lineno == 2


def error_output(cell_number: int, line: int, ename="CheckError"):
    """An error output as IPython writes it (ANSI colours included)."""
    return nbformat.v4.new_output(
        "error", ename=ename, evalue="found nan",
        traceback=["\x1b[0;31m----\x1b[0m", f"Cell \x1b[0;32mIn[{cell_number}], line {line}\x1b[0m",
                   "\x1b[0;31mCheckError\x1b[0m: found nan"])


def test_raised_and_missed_cells_of_a_notebook():
    sources = [
        "def pretrain(x):\n    return training.fit(build, x, y, epochs=1)",  # 0: defines only
        "checks.assert_equal(1, 2, 'x')\nh = training.fit(build, x, y, epochs=1)",  # 1: missed
        "h = training.fit(build, x, y, epochs=1)\nchecks.assert_equal(1, 2, 'x')",  # 2: after
        "for n in (1, 2):\n    h = training.fit(build, x, y, epochs=n)\n    check(h)",  # 3: loop
        "check(1)\nweights = pretrain(x)",  # 4: a notebook function that calls fit
        "check(1)\nlater = lambda: training.fit(build, x, y, epochs=1)",  # 5: defines only
        "checks.assert_equal(1, 2, 'x'",  # 6: a syntax error, no fit in it
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    for index, line in ((1, 1), (2, 2), (3, 3), (4, 1), (5, 1)):
        nb.cells[index].outputs = [error_output(index + 1, line)]
    nb.cells[6].outputs = [nbformat.v4.new_output("error", ename="SyntaxError", evalue="",
                                                  traceback=[])]
    raised = compute.raised_cells(nb)
    assert raised == [(1, "CheckError", 1), (2, "CheckError", 2), (3, "CheckError", 3),
                      (4, "CheckError", 1), (5, "CheckError", 1), (6, "SyntaxError", None)]
    assert compute.missed_fits(nb, raised) == [1, 3, 4]


def ledger_run(notebook, size, pflops, raised=(), missed=()):
    entries = [{"model": f"model{i}", "mult_adds": 1000, "images": 10, "epochs": 2,
                "flop": p * 1e15, "seconds": 0.0} for i, p in enumerate(pflops)]
    return compute.LedgerRun(notebook, size, entries, list(raised), list(missed), seconds=12.0)


def test_table_names_the_largest_notebook_and_flags_the_budget():
    runs = [ledger_run("lectures/a.ipynb", "full", [2.0, 0.5]),
            ledger_run("solutions/b.ipynb", "full", [11.0], [(7, "CheckError", 3)], [7]),
            ledger_run("solutions/b.ipynb", "cpu", [0.25])]
    assert compute.over_budget(runs) == [runs[1]]
    lines = compute.table(runs, "full")
    assert lines[0] == "size full (budget 10 PFLOP per notebook)"
    assert lines[2].split() == ["lectures/a.ipynb", "2", "2.5", "12.0s", "-"]
    assert lines[3].split() == ["solutions/b.ipynb", "1", "11", "12.0s", "7*"]
    assert lines[4].split() == ["total", "3", "13.5"]
    assert lines[5] == "largest: solutions/b.ipynb, 11 PFLOP"
    assert lines[-1] == "OVER BUDGET: solutions/b.ipynb needs 11 PFLOP > 10 at full size"
    cpu = compute.table(runs, "cpu")
    assert cpu[0] == "size cpu" and not any("OVER BUDGET" in line for line in cpu)
    assert compute.over_budget(runs, budget=12.0) == []


def test_describe_merges_identical_calls_and_marks_the_uncounted():
    run = ledger_run("lectures/a.ipynb", "smoke", [0.5, 0.5], [(4, "ValueError", None)], [4])
    run.entries[1]["model"] = "model0"
    run.entries.append({"model": "odd", "mult_adds": None, "images": 5, "epochs": 1,
                        "flop": None, "seconds": 0.0})
    assert compute.describe(run) == [
        "lectures/a.ipynb [smoke]: 1 PFLOP in 3 fit calls; dry run 12.0 s",
        "    model0                           1,000 mult-adds/image x 10 images x 2 epochs = "
        "1 PFLOP (x2 calls)",
        "    odd                            unknown mult-adds/image x 5 images x 1 epoch = "
        "not counted",
        "    cell 4 raised ValueError at an unknown line: a later training.fit may have been "
        "skipped, the total is a lower bound",
    ]


@pytest.mark.parametrize("pflop, status", [(10.5, 1), (9.5, 0)])
def test_main_exits_1_over_budget(monkeypatch, capsys, pflop, status):
    ran = []

    def fake_run(path, size):
        ran.append((Path(path).name, size))
        return ledger_run(Path(path).name, size, [pflop])

    monkeypatch.setattr(compute, "run_notebook", fake_run)
    assert compute.main([str(FIXTURE), "--size", "all"]) == status
    assert ran == [("ledger_fits.ipynb", size) for size in compute.SIZES]
    out = capsys.readouterr().out
    assert ("OVER BUDGET" in out) == (status == 1) and "size smoke" in out


def test_training_notebooks_are_those_that_call_fit():
    names = [f"{p.parent.name}/{p.stem}" for p in compute.training_notebooks()]
    assert names == ["lectures/01_filters", "lectures/02_perceptron", "lectures/03_autoencoders",
                     "lectures/05_architectures_compared", "lectures/06_what_networks_learn",
                     "solutions/lab1_lenet", "solutions/lab2_alexnet", "solutions/lab3_vgg",
                     "solutions/lab4_inception", "solutions/lab5_resnet",
                     "solutions/lab6_looking_inside", "solutions/lab7_features"]


@pytest.mark.slow
def test_dry_run_ledger_matches_a_real_run_of_the_fixture():
    """The fixture's fits: in cell 2 (two, a plain assert between them), cell 4 (after a cell that
    fails in a dry run) and cell 5 (after a failing check in the same cell: missed, flagged)."""
    dry = compute.run_notebook(FIXTURE, "smoke")
    real = compute.run_notebook(FIXTURE, "smoke", dry=False)
    assert real.raised == [] and len(real.entries) == 4
    assert all(e["seconds"] > 0 for e in real.entries)
    assert all(e["seconds"] == 0 for e in dry.entries)

    def without_seconds(entries):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in entries]

    assert without_seconds(dry.entries) == without_seconds(real.entries[:3])
    assert dry.raised == [(3, "CheckError", 1), (5, "CheckError", 1)]
    assert dry.missed == [5] and dry.seconds > 0
    assert [c.source for c in dry.executed.cells] == [c.source for c in real.executed.cells]
