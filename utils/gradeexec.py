"""Running a notebook for the grader: a fresh kernel, time limits, and a cap on output.

:func:`execute` runs every code cell of a notebook in a new kernel and keeps going after
errors. Three limits protect the grader:

- a cell that runs past ``cell_timeout`` seconds is interrupted and the next cell runs;
- when the whole notebook passes ``timeout`` seconds, the kernel is killed and the
  remaining cells are reported as not run;
- each cell keeps at most ``max_output_bytes`` of output (the rest is dropped, with a note).

A kernel that dies (``os._exit``, a segfault, the memory cap) ends the run; the cells it
did not reach are reported, never raised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_OUTPUT_BYTES = 1_000_000  # per cell; a loop printing megabytes must not fill memory
KERNEL_STARTUP_S = 60  # seconds allowed for the kernel to start


@dataclass
class Execution:
    """What happened: the executed notebook, and problems that stopped or cut the run."""

    notebook: object
    last_cell: int = -1  # index of the last cell that was started
    last_label: str = ""  # its description, from cell.metadata.label or "cell N"
    died: bool = False
    timed_out: bool = False
    problems: list[str] = field(default_factory=list)  # what stopped the run
    interrupted: list[str] = field(default_factory=list)  # cells stopped at the per-cell limit


class _CappedClient(NotebookClient):
    """A NotebookClient that drops a cell's output past ``max_output_bytes``."""

    def __init__(self, nb, max_output_bytes: int, **kwargs):
        super().__init__(nb, **kwargs)
        self._max_output = max_output_bytes
        self._sizes: dict[int, int] = {}

    def output(self, outs, msg, display_id, cell_index):
        size = self._sizes.get(cell_index, 0)
        if size > self._max_output:
            return None
        size += len(json.dumps(msg.get("content", {}), default=str))
        self._sizes[cell_index] = size
        if size > self._max_output:
            note = nbformat.v4.new_output(
                "stream",
                name="stderr",
                text=f"[grader: output of this cell cut at {self._max_output:,} bytes]\n",
            )
            outs.append(note)
            return note
        return super().output(outs, msg, display_id, cell_index)


def _kill(client) -> None:
    """Kill the kernel process (and its children) without waiting for it."""
    pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
    if not pid:
        return
    try:
        group = os.getpgid(pid)
        if group != os.getpgid(0):  # never the grader's own process group
            os.killpg(group, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    except OSError:  # already gone
        pass


def _label(cell, index: int) -> str:
    return cell.metadata.get("label", f"cell {index}")


def execute(
    nb,
    cwd: str,
    env: dict[str, str],
    timeout: float,
    cell_timeout: float,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
) -> Execution:
    """Execute ``nb`` (modified in place) in a fresh ``python3`` kernel.

    Args:
        nb: an nbformat v4 notebook.
        cwd: the kernel's working directory.
        env: the kernel's complete environment.
        timeout: seconds for the whole notebook.
        cell_timeout: seconds for one cell before it is interrupted (a cell's
            ``metadata.timeout`` overrides it).
        max_output_bytes: output kept per cell.
    """
    result = Execution(nb, last_label="the kernel's start")
    client = _CappedClient(
        nb,
        max_output_bytes,
        timeout=int(max(1, cell_timeout)),
        allow_errors=True,
        interrupt_on_timeout=True,
        kernel_name="python3",
        record_timing=False,
        startup_timeout=KERNEL_STARTUP_S,
        resources={"metadata": {"path": cwd}},
        timeout_func=lambda cell: cell.metadata.get("timeout", int(max(1, cell_timeout))),
        error_on_timeout={
            "ename": "CellTimeout",
            "evalue": f"the cell ran past {cell_timeout:g} s and was interrupted",
            "traceback": [],
        },
    )
    deadline = time.monotonic() + timeout
    watchdog = threading.Timer(timeout, lambda: (setattr(result, "timed_out", True), _kill(client)))
    try:
        with client.setup_kernel(env=env, cwd=cwd, stderr=subprocess.DEVNULL):
            watchdog.start()
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if time.monotonic() >= deadline:
                    result.timed_out = True
                    break
                result.last_cell, result.last_label = index, _label(cell, index)
                started = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                except (DeadKernelError, CellTimeoutError):
                    result.died = not result.timed_out
                    break
                limit = cell.metadata.get("timeout", cell_timeout)
                if time.monotonic() - started >= limit and not result.timed_out:
                    result.interrupted.append(
                        f"{result.last_label} ran past the {limit:g} s limit "
                        "per cell and was interrupted"
                    )
                if result.timed_out:
                    break
    except DeadKernelError:
        result.died = not result.timed_out
    except RuntimeError as error:  # the kernel never started
        result.problems.append(f"the kernel could not start: {error}")
    finally:
        watchdog.cancel()
    if result.timed_out:
        result.problems.append(
            f"the notebook ran past the {timeout:g} s limit in {result.last_label} and was stopped"
        )
    elif result.died:
        result.problems.append(
            f"the kernel died while running {result.last_label} "
            "(os._exit, a crash, or the memory limit)"
        )
    return result
