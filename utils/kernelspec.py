"""The course's Jupyter kernel: Python, without TensorFlow's start-up log lines in the cells.

TensorFlow and absl write log lines from C++ while TensorFlow is imported ("Could not find
cuda drivers", "failed call to cuInit", "oneDNN custom operations"), straight to the
process's standard error, before any Python code can change a setting. ipykernel copies
that file descriptor into the cells, where JupyterLab shows it in pink. The course kernel

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` before the kernel starts (TensorFlow's C++ warnings and
  information lines are not written), and
- does not copy the process's own standard error into the cells
  (``--IPKernelApp.capture_fd_output=False``): what remains of those lines goes to the
  terminal that runs JupyterLab. Python's warnings and errors, and everything a notebook
  prints, still reach the cells.

``python -m utils.kernelspec install`` installs it into this environment (``--user`` for
the user's Jupyter folder); the notebooks name it, and JupyterLab and VS Code pick it. Colab
and Kaggle run their own kernel and ignore the name.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

KERNEL_NAME = "dl-vision-course"
DISPLAY_NAME = "Python 3 (deep-learning course)"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # TensorFlow's C++ log: errors only


def spec(python: str = sys.executable) -> dict:
    """The ``kernel.json`` of the course kernel, for the interpreter ``python``."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.capture_fd_output=False"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "env": dict(ENV),
        "metadata": {"debugger": True},
    }


def install(prefix: str | None = None, user: bool = False) -> Path:
    """Install the course kernel; return the folder it was written to.

    Args:
        prefix: install under ``PREFIX/share/jupyter/kernels`` (default: this Python's
            ``sys.prefix``, i.e. the virtual environment), unless ``user``.
        user: install into the user's own Jupyter folder instead.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernel.json").write_text(json.dumps(spec(), indent=1),
                                                   encoding="utf-8")
        where = KernelSpecManager().install_kernel_spec(
            folder, kernel_name=KERNEL_NAME, user=user,
            prefix=None if user else (prefix or sys.prefix))
    return Path(where)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m utils.kernelspec install [--user | --prefix DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m utils.kernelspec")
    parser.add_argument("command", choices=["install"])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="the user's Jupyter folder")
    where.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    args = parser.parse_args(argv)
    path = install(prefix=args.prefix, user=args.user)
    print(f"installed the kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
