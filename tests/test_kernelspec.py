"""The course kernel keeps TensorFlow's start-up log lines out of the cells."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from utils import kernelspec
from utils.labs import notebooks

ROOT = Path(__file__).resolve().parents[1]
FIRST_CELLS = ("import keras\nimport tensorflow as tf\n"
               "print(float(tf.reduce_sum(tf.ones((2, 2)))))\n")


def _run_like_jupyterlab(tmp_path, kernel_name):
    """Run a TensorFlow cell the way JupyterLab does: the named kernel, no test settings."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(FIRST_CELLS))
    env = {k: v for k, v in os.environ.items()
           if k not in notebooks.TEST_ENV and not k.startswith(("COURSE_", "PYTEST"))}
    env["JUPYTER_PATH"] = str(tmp_path / "share" / "jupyter")
    env["PYTHONPATH"] = str(ROOT)
    with notebooks.environment(**{k: env.get(k) for k in set(os.environ) | set(env)}):
        NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    return stdout, stderr


def test_install_writes_the_kernel_spec(tmp_path):
    folder = kernelspec.install(prefix=str(tmp_path))
    spec = json.loads((folder / "kernel.json").read_text())
    assert folder.name == kernelspec.KERNEL_NAME
    assert spec["env"]["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert "--IPKernelApp.capture_fd_output=False" in spec["argv"]
    assert "{connection_file}" in spec["argv"]


@pytest.mark.slow
def test_a_live_run_in_the_course_kernel_shows_no_tensorflow_log_lines(tmp_path):
    kernelspec.install(prefix=str(tmp_path))
    stdout, stderr = _run_like_jupyterlab(tmp_path, kernelspec.KERNEL_NAME)
    assert stdout.strip() == "4.0"
    logs = [line for line in stderr.splitlines() if notebooks.LOG_LINE.match(line)
            or "cuda" in line.lower() or "absl" in line]
    assert logs == [], f"TensorFlow's log lines reached the cell: {logs}"


def test_every_shipped_notebook_names_the_course_kernel():
    paths = sorted(ROOT.glob("lectures/*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb")) \
        + sorted(ROOT.glob("labs/*.ipynb"))
    wrong = [str(p.relative_to(ROOT)) for p in paths
             if nbformat.read(p, as_version=4).metadata.get("kernelspec", {}).get("name")
             != kernelspec.KERNEL_NAME]
    assert wrong == [], f"these notebooks do not name the course kernel: {wrong}"
