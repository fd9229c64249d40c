"""pytest configuration for `pytest --nbval` at the repository root.

- Quick mode and quiet TensorFlow for every notebook kernel (utils.labs.notebooks.TEST_ENV);
  `COURSE_QUICK=0 pytest --nbval` runs the full versions.
- nbval compares outputs strictly, but never stderr (TensorFlow's log lines and
  warnings vary by machine) and sanitises timings (tests/nbval_sanitize.cfg). A cell whose
  output legitimately varies carries nbval's cell tag ``nbval-ignore-output`` (cell
  metadata, which students do not see), never an ``# NBVAL_...`` comment in its code.
- Student notebooks in labs/ are executed by utils.labs.notebooks.run instead of nbval:
  an unfinished exercise (NotImplementedError) is accepted, and so is a NameError for a
  variable that such a cell never assigned; any other error fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utils.labs import notebooks

ROOT = Path(__file__).parent

os.environ.update(notebooks.test_environment())


def pytest_configure(config):
    option = config.option
    if getattr(option, "nbval", False) or getattr(option, "nbval_lax", False):
        option.nbval_current_env = True
        if not option.nbval_sanitize_with:
            option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")


def _is_lab(path: Path) -> bool:
    """Student notebooks are the ones in a folder named ``labs`` (the tests use their own)."""
    return path.suffix == ".ipynb" and path.parent.name == "labs"


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent):
    collected = yield
    if file_path.suffix != ".ipynb":
        return collected
    if _is_lab(file_path):
        if not (parent.config.option.nbval or parent.config.option.nbval_lax):
            return []
        return [LabNotebook.from_parent(parent, path=file_path)]
    for item in collected:
        if hasattr(item, "skip_compare"):  # nbval's notebook collector
            item.skip_compare = tuple(item.skip_compare) + ("stderr",)
    return collected


class LabNotebook(pytest.File):
    """A student notebook: runs top to bottom, unfinished exercises allowed."""

    def collect(self):
        yield LabRun.from_parent(self, name="run")


class LabRun(pytest.Item):
    def runtest(self):
        result = notebooks.run(self.path, accept=("NotImplementedError",))
        if not result.ok:
            details = "\n".join(f"cell {i}: {name}: {msg}" for i, name, msg in result.errors)
            raise LabNotebookError(f"{self.path.name} raised errors other than "
                                   f"NotImplementedError:\n{details}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, LabNotebookError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name} (student version)"


class LabNotebookError(Exception):
    """A lab notebook failed with something other than an unfinished exercise."""
