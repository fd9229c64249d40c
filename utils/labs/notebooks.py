"""Executing notebooks outside JupyterLab: for the tests and for refreshing stored outputs.

``python -m utils.labs.notebooks refresh lectures/00_start_here.ipynb`` re-runs a
notebook in a fresh kernel with the same settings as ``pytest --nbval``
(the smoke size, quiet TensorFlow) and stores the outputs it produced, so the
stored outputs are always what the current code gives.

:func:`run` is also how the tests execute the student notebooks in ``labs/``:
cells that raise ``NotImplementedError`` (unfinished exercises) are accepted, and so
is a ``NameError`` for a variable that such a cell never got to assign; any other
error is reported.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# What `pytest --nbval` and `refresh` put in the kernel's environment.
TEST_ENV = {
    "COURSE_SIZE": "smoke",  # the tests' size unless the caller chose one (or COURSE_QUICK)
    "TF_CPP_MIN_LOG_LEVEL": "2",  # hide TensorFlow's C++ info and warning lines
    "PYTHONHASHSEED": "0",  # stable set/dict ordering in printed outputs
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}
CELL_TIMEOUT_S = 600  # one cell; quick-mode cells take seconds
# Log lines TensorFlow and absl write to stderr; they vary by machine, so they are never stored.
LOG_LINE = re.compile(
    r"^([IWE]\d{4} [\d:.]+\s+\d+ \S+\] |WARNING: All log messages before absl|"
    r"To enable the following instructions|oneDNN custom operations|"
    r"WARNING:absl:|.*cuda.*(drivers|factory|plugin))"
)


def test_environment() -> dict[str, str]:
    """``TEST_ENV`` merged under the current environment (explicit settings win), and the
    repository root first on ``PYTHONPATH``, so kernels import this checkout's ``utils``
    even where the editable install points elsewhere."""
    env = dict(TEST_ENV)
    env.update({k: v for k, v in os.environ.items() if k in TEST_ENV})
    if os.environ.get("COURSE_QUICK", "").strip() and not os.environ.get("COURSE_SIZE", "").strip():
        del env["COURSE_SIZE"]  # the caller chose a size with the older switch
    root = str(Path(__file__).resolve().parents[2])  # the repository: utils/labs/notebooks.py
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def _assign(values: dict) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def environment(**values: str | None):
    """Set (a string) or remove (None) environment variables; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _assign(values)
        yield
    finally:
        _assign(saved)


@dataclass
class RunResult:
    """Outcome of :func:`run`: the executed notebook and the errors, by cell index."""

    notebook: object
    accepted: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _error_outputs(nb):
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield index, output


def run(
    path: str | Path,
    accept: tuple[str, ...] = (),
    timeout: int = CELL_TIMEOUT_S,
    cwd: str | Path | None = None,
) -> RunResult:
    """Execute a notebook in a fresh kernel, cell by cell, continuing after errors.

    Args:
        path: the ``.ipynb`` file (not modified).
        accept: exception names that are expected (e.g. ``("NotImplementedError",)``). A
            ``NameError`` for a name that a cell stopped by an accepted error would have
            bound is accepted too: it is a consequence of the same unfinished exercise.
        timeout: seconds allowed per cell.
        cwd: working directory of the kernel (default: the notebook's folder).

    Returns:
        :class:`RunResult`; ``errors`` lists ``(cell index, exception name, message)``
        of every error not in ``accept``.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, **test_environment()}
    resources = {"metadata": {"path": str(cwd or path.parent)}}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        record_timing=False,
        resources=resources,
    )
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        # The kernel's own stderr (a warning about unencrypted local TCP) is not output.
        client.execute(stderr=subprocess.DEVNULL)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result = RunResult(notebook=nb)
    unset = set()  # names that cells stopped by an accepted error never bound
    for index, output in _error_outputs(nb):
        missing = re.fullmatch(r"name '(\w+)' is not defined", output.get("evalue", ""))
        if output["ename"] in accept or (
            output["ename"] == "NameError" and missing and missing.group(1) in unset
        ):
            result.accepted.append((index, output["ename"]))
            unset |= _bound_names(nb.cells[index].source)
        else:
            result.errors.append((index, output["ename"], output.get("evalue", "")))
    return result


def python_source(source: str) -> str:
    """A code cell's source without IPython magics and shell lines, ready for ``ast.parse``."""
    return "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


_PARSE_LOCK = threading.Lock()


def parse_cell(source: str):
    """``ast.parse`` of a code cell without its magics and shell lines, one thread at a time.

    The grader grades notebooks in threads, and CPython 3.11 before 3.11.8 can fail with
    "SystemError: AST constructor recursion depth mismatch" when two threads parse at once
    (python/cpython#106905).
    """
    import ast

    with _PARSE_LOCK:
        return ast.parse(python_source(source))


def compile_cell(source: str, name: str):
    """A code cell compiled for ``exec`` (magics and shell lines skipped), under the same
    one-thread-at-a-time lock as :func:`parse_cell` (compiling a tree converts it too)."""
    import ast

    with _PARSE_LOCK:
        return compile(ast.parse(python_source(source)), name, "exec")


def _bound_names(source: str) -> set[str]:
    """Names a cell assigns, defines or imports at any level (magics and shell lines skipped)."""
    import ast

    try:
        tree = parse_cell(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def strip_logs(nb) -> None:
    """Remove TensorFlow/absl log lines from the stderr outputs of ``nb`` (in place)."""
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = [ln for ln in output["text"].splitlines(True) if not LOG_LINE.match(ln)]
                if not "".join(lines).strip():
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


def refresh(path: str | Path) -> None:
    """Re-execute ``path`` and save it with the outputs the current code produces.

    Raises:
        RuntimeError: if any cell fails (the file is then left unchanged).
    """
    import nbformat

    result = run(path)
    if not result.ok:
        problems = "; ".join(f"cell {i}: {name}: {msg}" for i, name, msg in result.errors)
        raise RuntimeError(f"{path} did not run cleanly, so it was not saved: {problems}")
    strip_logs(result.notebook)
    nbformat.write(result.notebook, str(path))


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m utils.labs.notebooks refresh NOTEBOOK...``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m utils.labs.notebooks")
    parser.add_argument("command", choices=["refresh"])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    for path in args.paths:
        try:
            refresh(path)
        except (RuntimeError, OSError) as error:
            print(f"not refreshed: {error}", file=sys.stderr)
            return 1
        print(f"refreshed {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
