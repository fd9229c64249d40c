"""Colab and Kaggle: the generated badge and setup cells, and the setup on a simulated Colab.

The simulation is offline: the course repository is a local git repository made from this
working tree, Colab is a fake ``google.colab`` package, and pip is recorded, not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from utils import colab
from utils.labs import submission

ROOT = Path(__file__).resolve().parents[1]
URL, BRANCH = colab.settings()

# Runs the setup cell (the file argv[1]) as a notebook kernel would, with pip recorded.
RUN_CELL = """
import json, os, subprocess, sys
calls = []
real_run = subprocess.run
def run(command, *args, **kwargs):
    if command[1:3] == ["-m", "pip"]:
        constraints = open(command[command.index("--constraint") + 1]).read()
        calls.append({"pip": command, "constraints": constraints})
        return subprocess.CompletedProcess(command, 0)
    calls.append({"command": command})
    return real_run(command, *args, **kwargs)
subprocess.run = run
for _ in range(int(sys.argv[2])):
    exec(compile(open(sys.argv[1]).read(), "setup cell", "exec"))
if sys.argv[3] == "report":
    import utils
    print("RESULT " + json.dumps({"utils": utils.__file__, "cwd": os.getcwd(), "calls": calls}))
"""


def test_every_notebook_starts_with_the_current_badges_and_setup_cell():
    """A notebook added or edited without `python -m utils.colab` fails here."""
    assert colab.main(["--check"]) == 0


def test_lab_badges_open_the_student_version():
    for folder in ("solutions", "labs"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            badges = nbformat.read(path, as_version=4).cells[0]
            if badges.get("id") != colab.BADGES_ID:
                continue  # reported by the test above
            assert f"/blob/{BRANCH}/labs/{path.name})" in badges.source, path
            assert "solutions/" not in badges.source, path
    lecture = colab.badges_source("lectures/01_filters.ipynb", URL, BRANCH)
    owner_and_name = URL.split("github.com/")[1]
    assert lecture.count(f"{owner_and_name}/blob/{BRANCH}/lectures/01_filters.ipynb)") == 2


def test_stamp_is_idempotent_and_keeps_everything_else():
    nb = nbformat.read(ROOT / "tests" / "fixtures" / "notebooks" / "matching.ipynb", as_version=4)
    before = [dict(cell) for cell in nb.cells]
    assert colab.stamp(nb, "lectures/x.ipynb", URL, BRANCH)
    assert [cell.id for cell in nb.cells[:2]] == [colab.BADGES_ID, colab.SETUP_ID]
    assert [dict(cell) for cell in nb.cells[2:]] == before  # outputs and metadata untouched
    nb.cells[1].execution_count = 1  # as a refresh leaves it
    assert not colab.stamp(nb, "lectures/x.ipynb", URL, BRANCH)
    assert nb.cells[1].execution_count == 1
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Colab: ...")]
    nb.cells.append(nb.cells.pop(0))  # a moved badge cell goes back to the top
    assert colab.stamp(nb, "lectures/x.ipynb", URL, BRANCH)
    assert nb.cells[1].outputs == [] and len(nb.cells) == len(before) + 2
    assert colab.stamp(nb, "lectures/x.ipynb", "https://github.com/someone/fork", "dev")
    assert '"https://github.com/someone/fork", "dev"' in nb.cells[1].source


def test_the_settings_must_name_a_github_repository(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.course]\nrepository = "https://example.org/kit"\nbranch = "main"\n')
    with pytest.raises(ValueError, match="GitHub URL.*example.org"):
        colab.settings(pyproject)
    pyproject.write_text('[tool.course]\nrepository = "https://github.com/a/b.git"\nbranch = "x"\n')
    assert colab.settings(pyproject) == ("https://github.com/a/b", "x")


def test_the_setup_cell_gives_the_grader_nothing_to_review():
    cell = nbformat.v4.new_code_cell(colab.setup_source(URL, BRANCH))
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert submission.review(nb) == []


def test_only_missing_packages_are_installed_and_installed_ones_are_pinned(tmp_path):
    installed = {"tensorflow": "2.19.0", "numpy": "2.0.2", "scipy": "1.14.1"}
    lacking = colab.missing(ROOT, installed)
    names = {name for name, _ in colab.requirements(ROOT)}
    assert "importlib_resources>=6" in lacking and "keras>=3.5,<4" not in lacking
    assert not [r for r in lacking if r.split(">")[0].split("=")[0] in colab.NOT_INSTALLED]
    assert {"tensorflow", "keras", "numpy"} <= names
    command = colab.pip_command(lacking, installed, tmp_path / "constraints.txt")
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert (tmp_path / "constraints.txt").read_text().splitlines() == [
        "numpy==2.0.2", "scipy==1.14.1", "tensorflow==2.19.0"]
    assert not any(arg.startswith(("tensorflow>", "-U", "--upgrade")) for arg in command)


def _kit_repository(tmp_path: Path) -> str:
    """A git repository of this working tree's kit (what the clone needs), as a file:// URL.
    Its requirements gain a package that is surely not installed, so that pip is called."""
    repo = tmp_path / "kit"
    shutil.copytree(ROOT / "utils", repo / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "lectures" / "data", repo / "lectures" / "data")
    shutil.copy(ROOT / "pyproject.toml", repo)
    requirements = (ROOT / "requirements.txt").read_text()
    (repo / "requirements.txt").write_text(requirements + "not-installed-anywhere>=1\n")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    for command in (["init", "--quiet", "--initial-branch", BRANCH], ["add", "."],
                    ["commit", "--quiet", "-m", "kit"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True)
    return repo.as_uri()


def _run_cell(tmp_path, url=URL, colab_module=False, kaggle=False, times=1, report=True):
    """Run the setup cell, pointed at ``url``, in a fresh Python with its own HOME and cwd."""
    home, cwd, fake = tmp_path / "home", tmp_path / "cwd", tmp_path / "fake"
    for folder in (home, cwd):
        folder.mkdir(exist_ok=True)
    if colab_module:  # google is a namespace package, like the one protobuf installs
        (fake / "google" / "colab").mkdir(parents=True, exist_ok=True)
        (fake / "google" / "colab" / "__init__.py").write_text("")
    cell = tmp_path / "cell.py"
    cell.write_text(colab.setup_source(url, BRANCH))
    (tmp_path / "run_cell.py").write_text(RUN_CELL)
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": str(fake),
           "COURSE_CACHE_DIR": str(tmp_path / "cache")}
    if kaggle:
        env["KAGGLE_KERNEL_RUN_TYPE"] = "Interactive"
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run_cell.py"), str(cell), str(times),
         "report" if report else "quiet"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, home


def test_the_stored_setup_cell_is_the_template():
    nb = nbformat.read(ROOT / "lectures" / "00_start_here.ipynb", as_version=4)
    assert nb.cells[1].source == colab.setup_source(URL, BRANCH)
    assert URL in nb.cells[1].source  # so that the tests below replace the real URL


@pytest.mark.parametrize("platform", ["Colab", "Kaggle"])
def test_on_a_simulated_colab_or_kaggle_the_cell_clones_installs_and_imports(tmp_path, platform):
    url = _kit_repository(tmp_path)
    done, home = _run_cell(tmp_path, url, colab_module=platform == "Colab",
                           kaggle=platform == "Kaggle", times=2)
    kit = home / "dl-vision-course"
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert Path(result["utils"]) == kit / "utils" / "__init__.py"  # the clone's, not ours
    assert Path(result["cwd"]) == kit / "lectures"
    clones = [call["command"] for call in result["calls"] if "command" in call]
    assert len(clones) == 1 and clones[0][:2] == ["git", "clone"] and url in clones[0]
    pips = [call for call in result["calls"] if "pip" in call]
    assert len(pips) == 2  # the cell ran twice: a second run clones nothing
    command, pins = pips[0]["pip"], pips[0]["constraints"].splitlines()
    assert command[-1] == "not-installed-anywhere>=1" and command[:2] == [sys.executable, "-m"]
    assert not [arg for arg in command if arg.startswith(("tensorflow", "keras"))]
    assert any(pin.startswith("tensorflow==") for pin in pins)
    assert any(pin.startswith("numpy==") for pin in pins)
    said = done.stdout.split("RESULT ", 1)[0]
    assert said.startswith(f"{platform}: the course kit is in {kit}")
    assert "Installed: not-installed-anywhere>=1" in said and "download on first use" in said


def test_anywhere_else_the_cell_does_nothing_and_prints_nothing(tmp_path):
    done, home = _run_cell(tmp_path, report=False)
    assert (done.stdout, done.stderr) == ("", "")
    assert list(home.iterdir()) == [] and list((tmp_path / "cwd").iterdir()) == []
