"""The notebook test machinery: lab runs that accept unfinished exercises, strict outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

from utils import colab
from utils.labs import notebooks

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def _pytest(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_run_accepts_not_implemented_and_keeps_going():
    result = notebooks.run(FIXTURES / "labs" / "unfinished.ipynb", accept=("NotImplementedError",))
    assert result.ok, result.errors
    # The NameErrors are consequences: cell 1 never assigned `total`, so cell 2 never got to
    # assign `doubled`.
    assert result.accepted == [(1, "NotImplementedError"), (2, "NameError"), (3, "NameError")]
    last = result.notebook.cells[4].outputs
    assert last and last[0]["text"] == "after the exercise\n"


def test_run_reports_other_errors():
    result = notebooks.run(FIXTURES / "labs" / "broken.ipynb", accept=("NotImplementedError",))
    assert not result.ok
    assert [(i, name) for i, name, _ in result.errors] == [(2, "NameError")]


def test_pytest_nbval_passes_unfinished_lab_and_fails_broken_lab():
    good = _pytest("--nbval", "tests/fixtures/labs/unfinished.ipynb")
    assert good.returncode == 0, good.stdout[-2000:]
    bad = _pytest("--nbval", "tests/fixtures/labs/broken.ipynb")
    assert bad.returncode == 1, bad.stdout[-2000:]
    assert "NameError" in bad.stdout and "other than NotImplementedError" in bad.stdout


def test_strict_outputs_ignore_stderr_and_timings_but_catch_stale_output():
    matching = _pytest("--nbval", "tests/fixtures/notebooks/matching.ipynb")
    assert matching.returncode == 0, matching.stdout[-2000:]
    stale = _pytest("--nbval", "tests/fixtures/notebooks/stale.ipynb")
    assert stale.returncode == 1, stale.stdout[-2000:]
    assert "Cell outputs differ" in stale.stdout


def test_the_nbval_ignore_output_tag_skips_only_its_own_cell():
    """Cells whose output varies carry nbval's tag, not a comment in their code: tagged.ipynb
    is stale.ipynb's cell, tagged, and a second, untagged cell with the right output."""
    nb = nbformat.read(FIXTURES / "notebooks" / "tagged.ipynb", as_version=4)
    assert [cell.metadata.get("tags") for cell in nb.cells] == [["nbval-ignore-output"], None]
    assert nb.cells[0].source == nbformat.read(FIXTURES / "notebooks" / "stale.ipynb",
                                               as_version=4).cells[0].source
    tagged = _pytest("--nbval", "tests/fixtures/notebooks/tagged.ipynb")
    assert tagged.returncode == 0, tagged.stdout[-2000:]


def test_strip_logs_removes_tensorflow_lines_only():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "I0000 00:00:1795398787.713715    5920 port.cc:153] oneDNN custom operations are on.\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "UserWarning: a real warning\n"))]
    notebooks.strip_logs(nb)
    assert nb.cells[0].outputs[0]["text"] == "UserWarning: a real warning\n"


def test_every_shipped_notebook_has_outputs_that_were_executed():
    for path in sorted((ROOT / "lectures").glob("*.ipynb")) + sorted(
        (ROOT / "solutions").glob("*.ipynb")
    ):
        nb = nbformat.read(path, as_version=4)
        # The generated setup cell does nothing outside Colab, so utils.colab inserts it
        # unexecuted; a refresh numbers it 1 like any other cell.
        code_cells = [c for c in nb.cells if c.cell_type == "code"
                      and not (c.get("id") == colab.SETUP_ID and c.execution_count is None)]
        counts = [c.execution_count for c in code_cells]
        assert all(counts), f"{path.name}: some code cells were never run; refresh it"
        assert counts == sorted(counts), f"{path.name}: cells were run out of order; refresh it"



def test_refresh_stores_fresh_outputs_and_refuses_broken_notebooks(tmp_path):
    stale = tmp_path / "stale.ipynb"
    stale.write_text((FIXTURES / "notebooks" / "stale.ipynb").read_text())
    notebooks.refresh(stale)
    cell = nbformat.read(stale, as_version=4).cells[0]
    assert cell.outputs[0]["text"] == "42\n" and cell.execution_count == 1

    broken = tmp_path / "broken.ipynb"
    original = (FIXTURES / "labs" / "broken.ipynb").read_text()
    broken.write_text(original)
    try:
        notebooks.refresh(broken)
    except RuntimeError as err:
        assert "NotImplementedError" in str(err) and "not saved" in str(err)
    else:
        raise AssertionError("refresh saved a notebook whose cells failed")
    assert broken.read_text() == original


def test_kernels_import_this_checkouts_utils(monkeypatch):
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", str(ROOT)]))
    paths = notebooks.test_environment()["PYTHONPATH"].split(os.pathsep)
    assert paths == [str(ROOT), "/elsewhere"]  # the repository first, once


def test_parse_cell_skips_magics_and_shell_lines():
    tree = notebooks.parse_cell("%matplotlib inline\n!ls\nx = 1\n  %time y = 2")
    assert [type(node).__name__ for node in tree.body] == ["Assign"]
