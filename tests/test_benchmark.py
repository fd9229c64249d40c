"""The training-speed benchmark runs end to end and prints its figures (no timing is asserted)."""

from __future__ import annotations

import re

import pytest

from benchmarks import train_speed


def test_train_speed_prints_both_figures_and_ratio(capsys):
    figures = train_speed.main(["--rounds", "2", "--train-size", "2048", "--batch-size", "128"])
    out = capsys.readouterr().out
    plain = re.search(r"plain model.fit on NumPy arrays:\s+([\d,]+) images/s", out)
    kit = re.search(r"kit training.fit:\s+([\d,]+) images/s", out)
    ratio = re.search(r"ratio \(kit / plain\):\s+([\d.]+)", out)
    assert plain and kit and ratio, out
    assert figures["plain"] > 0 and figures["kit"] > 0
    assert abs(float(ratio.group(1)) - figures["kit"] / figures["plain"]) < 0.01
    assert int(plain.group(1).replace(",", "")) == round(figures["plain"])
    rounds = re.search(r"per-round ratios:\s+([\d.]+) ([\d.]+)\n", out)
    assert rounds, out


def test_grade_speed_prints_its_figures(capsys):
    from pathlib import Path

    from benchmarks import grade_speed

    fixtures = Path(__file__).parent / "fixtures" / "solutions"
    figures = grade_speed.main(["--count", "2", "--lab", "fixture_lab", "--solutions",
                                str(fixtures)])
    out = capsys.readouterr().out
    assert "lab fixture_lab: 2 submissions, 2 graded without error, jobs=1" in out
    minute = re.search(r"throughput:\s+([\d.]+) notebooks/min", out)
    assert minute and abs(float(minute.group(1)) - figures["notebooks_per_minute"]) < 0.1


def test_lab_results_reads_the_result_line_of_a_lab(tmp_path, capsys):
    import shutil
    from pathlib import Path

    import nbformat

    from benchmarks import lab_results

    fixture = Path(__file__).parent / "fixtures" / "solutions" / "fixture_lab.ipynb"
    shutil.copy(fixture, tmp_path)
    assert lab_results.reporting_labs(tmp_path) == []  # the fixture lab trains nothing
    nb = nbformat.read(tmp_path / "fixture_lab.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import keras\n"
        "import numpy as np\n"
        "from utils import runtime, training\n"
        "runtime.setup(seed=0, verbose=False)\n"
        "x = np.random.default_rng(0).random((64, 4, 4, 1), dtype=np.float32)\n"
        "y = np.arange(64) % 2\n"
        "def tiny():\n"
        "    inputs = keras.Input((4, 4, 1))\n"
        "    outputs = keras.layers.Dense(2, activation='softmax', name='out')(\n"
        "        keras.layers.Flatten(name='flat')(inputs))\n"
        "    return keras.Model(inputs, outputs, name='tiny')\n"
        "history = training.fit(tiny, x, y, epochs=2, batch_size=32, verbose=0)\n"
        "training.report(history, 0.75, 'toy')"))
    nbformat.write(nb, str(tmp_path / "fixture_lab.ipynb"))
    assert lab_results.reporting_labs(tmp_path) == ["fixture_lab"]
    rows = lab_results.main(["--solutions", str(tmp_path)])
    assert [(r["lab"], r["model"], r["dataset"], r["accuracy"], r["epochs"]) for r in rows] == [
        ("fixture_lab", "tiny", "toy", 0.75, 2)]
    assert 0 < rows[0]["train_seconds"] < rows[0]["notebook_seconds"]
    assert "fixture_lab      tiny               toy" in capsys.readouterr().out


def test_notebook_times_runs_each_notebook_and_judges_the_budget(tmp_path, capsys):
    import nbformat

    from benchmarks import notebook_times

    fine, broken = tmp_path / "fine.ipynb", tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.environ['COURSE_SIZE'])")]
    nbformat.write(nb, str(fine))
    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('no data')"))
    nbformat.write(nb, str(broken))
    before = fine.read_bytes()
    assert notebook_times.main([str(fine), "--size", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "size: smoke; budget 300 s per notebook" in out
    assert "fine.ipynb" in out and "within budget" in out
    assert fine.read_bytes() == before  # the notebook file is not changed
    assert notebook_times.main([str(fine), "--budget", "0"]) == 1  # any run takes > 0 s
    assert "over budget" in capsys.readouterr().out
    assert notebook_times.main([str(broken)]) == 1
    assert "FAILED" in capsys.readouterr().out and "ValueError" in str(
        notebook_times.time_notebook(broken, "smoke")["errors"])
    with pytest.raises(FileNotFoundError, match="missing.ipynb: no such notebook"):
        notebook_times.main([str(tmp_path / "missing.ipynb")])
    assert [p.name for p in notebook_times.default_notebooks()][:2] == [
        "00_start_here.ipynb", "01_filters.ipynb"]
