"""House rules that are cheap to check: ruff-clean code and notebooks, importing utils is inert."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean_including_notebooks():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_importing_utils_has_no_side_effects(tmp_path):
    script = textwrap.dedent("""
        import random, sys
        import numpy as np
        import matplotlib
        rc_before = dict(matplotlib.rcParams)
        np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
        import utils
        from utils import (archtable, cache, checks, colab, data, idx, images, inspection,
                           pipeline, plotting, quick, runtime, selfcheck, sources, training)
        from utils.labs import (build, execute, feedback, format, grade, kernel, limits,
                                notebooks, report, sandbox, submission)
        from utils.labs import selfcheck as labs_selfcheck
        assert selfcheck.check is labs_selfcheck.check  # the alias of notebooks saved before
        assert dict(matplotlib.rcParams) == rc_before, "rcParams changed"
        assert (np.random.get_state()[1] == np_state).all(), "NumPy was seeded"
        assert random.getstate() == py_state, "random was seeded"
        assert "tensorflow" not in sys.modules, "TensorFlow imported at import time"
        print("inert")
    """)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "COURSE_CACHE_DIR": str(tmp_path / "cache"),
           "MPLCONFIGDIR": str(tmp_path / "matplotlib"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "inert"
    assert list(home.iterdir()) == [], "importing utils wrote files in the home folder"
    assert not (tmp_path / "cache").exists(), "importing utils created the data cache"


def test_no_code_cell_carries_a_test_directive():
    """nbval's directives are cell tags (nbval-ignore-output), never comments students read."""
    import nbformat

    found = [
        f"{path.relative_to(ROOT)}, cell {index}"
        for folder in ("lectures", "solutions", "labs")
        for path in sorted((ROOT / folder).glob("*.ipynb"))
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells)
        if cell.cell_type == "code" and "NBVAL_" in cell.source
    ]
    assert not found, "move these to the cell tag nbval-ignore-output:\n" + "\n".join(found)


DOCS = ["README.md", "docs/instructors.md", "docs/how-it-works.md", "docs/gradescope.md"]
REPO_PATH = re.compile(r"`((?:lectures|labs|solutions|utils|tests|benchmarks|docs|\.ci)/[^`\s]*)`")
PLACEHOLDER = re.compile(r"[<*]|NAME|\bNB\b|\bLAB\b")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_links_paths_and_commands_in_the_docs_resolve(doc):
    import importlib.util

    text = (ROOT / doc).read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = (ROOT / doc).parent / file if file else ROOT / doc
        if not path.exists():
            broken.append(f"link {target}: no file {path.relative_to(ROOT)}")
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
            if anchor not in {_anchor(heading) for heading in headings}:
                broken.append(f"link {target}: no such heading")
    for name in REPO_PATH.findall(text):
        if not PLACEHOLDER.search(name) and not (ROOT / name.rstrip("/")).exists():
            broken.append(f"path {name} does not exist")
    for module in re.findall(r"python3? -m ((?:utils|benchmarks)(?:\.\w+)+)", text):
        if importlib.util.find_spec(module) is None:
            broken.append(f"command python -m {module}: no such module")
    assert not broken, f"{doc}:\n" + "\n".join(broken)
