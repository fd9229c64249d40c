"""The training-speed benchmark runs end to end and prints its figures (no timing is asserted)."""

from __future__ import annotations

import re

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
