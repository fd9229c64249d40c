"""Running a notebook for the grader: a fresh kernel, time limits, and a cap on output.

:func:`execute` runs every code cell of a notebook in a new kernel and keeps going after
errors. Three limits protect the grader:

- a cell that runs past ``cell_timeout`` seconds is interrupted and the next cell runs;
- when the whole notebook passes ``timeout`` seconds, the kernel is killed and the
  remaining cells are reported as not run;
- each cell keeps at most ``max_output_bytes`` of output (the rest is dropped, with a note).

A kernel that dies (``os._exit``, a segfault, the memory cap) ends the run; the cells it
did not reach are reported, never raised.

A grading cell whose metadata has ``judge: "grader"`` is not sent to the kernel: ``execute``
calls ``judge(exercise_id, call)`` instead (:class:`utils.labs.judge.Judge`), where
``call(source, seconds)`` runs one ad-hoc cell in the same kernel and returns its outputs,
under the same limits; it raises :class:`KernelLost` when the run cannot go on.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import nbformat
import zmq
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_OUTPUT_BYTES = 1_000_000  # per cell; a loop printing megabytes must not fill memory
MAX_MESSAGE_BYTES = 4 << 20  # per message from the kernel (a large figure is under 1 MB)
QUEUED_MESSAGES = 64  # unread messages the grader's sockets hold; zmq's default is 1000
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
    sandbox: list[str] = field(default_factory=list)  # what the sandbox's limits did


class KernelLost(KeyboardInterrupt):  # noqa: N818 (a KeyboardInterrupt: no test catches it)
    """The kernel died, the notebook's time limit passed, or the connection was closed."""


class _KernelManager(AsyncKernelManager):
    """A kernel manager whose clients cap message sizes, and whose kernel may run in a
    sandbox (``ipc`` sockets in its folder, the command wrapped, interrupts by message)."""

    def __init__(self, sandbox=None, kernel_env: dict[str, str] | None = None):
        if sandbox is None:
            super().__init__(kernel_name="python3")
        else:
            super().__init__(
                kernel_name="python3",
                transport="ipc",
                ip=str(sandbox.folder / "kernel"),
                connection_file=str(sandbox.folder / "kernel.json"),
            )
            self.kernel_spec.interrupt_mode = "message"  # SIGINT cannot reach the namespace
        self._sandbox, self._kernel_env = sandbox, kernel_env or {}
        _cap(self.context)  # the control socket it sends interrupts on

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        if self._sandbox is None:
            return command
        return self._sandbox.command(command, self._kernel_env)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if self._sandbox is not None:
            self._sandbox.started(self.provisioner.pid)

    def client(self, **kwargs):
        client = super().client(**kwargs)
        _cap(client.context)
        return client


def _cap(context) -> None:
    """Make every socket ``context`` creates from now on refuse a message over
    ``MAX_MESSAGE_BYTES`` and hold at most ``QUEUED_MESSAGES`` unread ones."""
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)


def _disconnections(client):
    """A function that says whether the kernel's iopub or shell connection was closed (a
    message over ``MAX_MESSAGE_BYTES``), read from zmq socket monitors."""
    from zmq.utils.monitor import recv_monitor_message

    context = zmq.Context.shadow(client.context.underlying)  # inproc needs the same context
    monitors, sockets = [], []
    for name in ("iopub", "shell"):
        address = f"inproc://grader-monitor-{name}-{id(client)}"
        sockets.append(getattr(client, f"{name}_channel").socket)
        sockets[-1].monitor(address, zmq.EVENT_DISCONNECTED)
        monitor = context.socket(zmq.PAIR)
        monitor.connect(address)
        monitors.append(monitor)

    def closed() -> bool:
        found = False
        for monitor in monitors:
            while monitor.poll(0):
                found |= recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        return found

    def stop() -> None:
        for socket in sockets:
            socket.disable_monitor()
        for monitor in monitors:
            monitor.close(linger=0)

    return closed, stop


class _CappedClient(NotebookClient):
    """A NotebookClient that drops a cell's output past ``max_output_bytes``."""

    def __init__(self, nb, max_output_bytes: int, **kwargs):
        super().__init__(nb, **kwargs)
        self._max_output = max_output_bytes
        self._sizes: dict[int, int] = {}
        self.in_call = False  # running a bridge call (see _caller)

    def output(self, outs, msg, display_id, cell_index):
        limit = self._max_output
        if self.in_call:  # a call through the bridge: one result of up to a message's size,
            limit, display_id = MAX_MESSAGE_BYTES, None  # and no display id to update later
        size = self._sizes.get(cell_index, 0)
        if size > limit:
            return None
        size += len(json.dumps(msg.get("content", {}), default=str))
        self._sizes[cell_index] = size
        if size > limit:
            note = nbformat.v4.new_output(
                "stream",
                name="stderr",
                text=f"[grader: output of this cell cut at {limit:,} bytes]\n",
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


def _alive(client, settle: float = 0.3) -> bool:
    """Whether the kernel's process (or the sandbox's first one) still runs after ``settle`` s."""
    time.sleep(settle)
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    return process is not None and process.poll() is None


def _label(cell, index: int) -> str:
    return cell.metadata.get("label", f"cell {index}")


def _caller(client, result: Execution, deadline: float, closed, kill, index: int):
    """``call(source, seconds) -> outputs``: run one ad-hoc cell in the kernel (a bridge call,
    :mod:`utils.labs.bridge`) in place of the grading cell ``index``, which is put back after
    it; raises :class:`KernelLost` when the run cannot go on."""
    placeholder = result.notebook.cells[index]

    def call(source: str, seconds: float) -> list:
        if result.timed_out or time.monotonic() >= deadline:
            result.timed_out = True
            raise KernelLost("the notebook's time limit passed")
        seconds = max(1, math.ceil(min(seconds, deadline - time.monotonic() + 1)))
        cell = nbformat.v4.new_code_cell(source, metadata={"timeout": seconds})
        client._sizes.pop(index, None)
        client.in_call = True
        try:
            client.execute_cell(cell, index, store_history=False)
        except (DeadKernelError, CellTimeoutError):
            result.died = not result.timed_out
            why = "the kernel died" if result.died else "the time limit passed"
            raise KernelLost(why) from None
        finally:  # nbclient stores the cell it ran in the notebook: put the grading cell back
            client.in_call = False
            client._sizes.pop(index, None)
            result.notebook.cells[index] = placeholder
        if closed() and _alive(client):
            result.problems.append(
                f"{result.last_label} got a message of more than {MAX_MESSAGE_BYTES:,} bytes "
                "from the kernel: the grader closed the connection and stopped the run"
            )
            kill()
            raise KernelLost("the connection to the kernel was closed")
        if result.timed_out:
            raise KernelLost("the notebook's time limit passed")
        return cell.outputs

    return call


def _run_cells(client, result: Execution, deadline: float, cell_timeout: float, closed, kill,
               judge=None):
    """Run every code cell in order until the end, a time limit, or a dead connection."""
    for index, cell in enumerate(result.notebook.cells):
        if cell.cell_type != "code":
            continue
        if time.monotonic() >= deadline:
            result.timed_out = True
            return
        result.last_cell, result.last_label = index, _label(cell, index)
        if judge is not None and cell.metadata.get("judge") == "grader":
            try:  # the tests run in the grader; only the student's functions run in the kernel
                judge(cell.metadata["grader"],
                      _caller(client, result, deadline, closed, kill, index))
            except KernelLost:
                return
            continue
        started = time.monotonic()
        try:
            client.execute_cell(cell, index)
        except (DeadKernelError, CellTimeoutError):
            result.died = not result.timed_out
            return
        if closed() and _alive(client):  # not closed by the kernel's death
            result.problems.append(
                f"{result.last_label} sent a message of more than {MAX_MESSAGE_BYTES:,} "
                "bytes: the grader closed the connection and stopped the run"
            )
            kill()
            return
        limit = cell.metadata.get("timeout", cell_timeout)
        if time.monotonic() - started >= limit and not result.timed_out:
            result.interrupted.append(
                f"{result.last_label} ran past the {limit:g} s limit per cell and was interrupted"
            )
        if result.timed_out:
            return


def _execute(result, cwd, env, timeout, cell_timeout, max_output_bytes, sandbox, judge) -> None:
    """Start the kernel (in ``sandbox`` if given), run the cells, stop the kernel."""
    client = _CappedClient(
        result.notebook,
        max_output_bytes,
        km=_KernelManager(sandbox, env),
        shutdown_kernel="immediate",
        timeout=int(max(1, cell_timeout)),
        allow_errors=True,
        interrupt_on_timeout=True,
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
    kill = sandbox.kill if sandbox is not None else lambda: _kill(client)
    watchdog = threading.Timer(timeout, lambda: (setattr(result, "timed_out", True), kill()))
    launch = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cleanup_kc=True)
    if sandbox is None:
        launch.update(env=env, cwd=cwd)
    else:  # bwrap's own environment and folder; the kernel's are set inside
        launch.update(env={"PATH": os.environ.get("PATH", os.defpath)}, cwd=str(sandbox.folder))
    try:
        with client.setup_kernel(**launch):
            if sandbox is not None:
                sandbox.lock()
            closed, stop_monitors = _disconnections(client.kc)
            watchdog.start()
            try:
                _run_cells(client, result, deadline, cell_timeout, closed, kill, judge)
            finally:
                stop_monitors()  # before the client's context is closed, or closing hangs
    except DeadKernelError:
        result.died = not result.timed_out
    except RuntimeError as error:  # the kernel never started
        result.problems.append(f"the kernel could not start: {error}")
    finally:
        watchdog.cancel()


def execute(
    nb,
    cwd: str,
    env: dict[str, str],
    timeout: float,
    cell_timeout: float,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    sandbox=None,
    judge=None,
) -> Execution:
    """Execute ``nb`` (modified in place) in a fresh ``python3`` kernel.

    Args:
        nb: an nbformat v4 notebook.
        cwd: the kernel's working directory (without a sandbox; a sandbox has its own).
        env: the kernel's complete environment (a sandbox passes on only part of it).
        timeout: seconds for the whole notebook.
        cell_timeout: seconds for one cell before it is interrupted (a cell's
            ``metadata.timeout`` overrides it).
        max_output_bytes: output kept per cell.
        sandbox: a :class:`utils.labs.sandbox.Bubblewrap` (or a sandbox with its methods), or
            None to run the kernel as a child of the grader. It is closed before returning.
        judge: ``judge(exercise_id, call)``, run in place of each cell whose metadata has
            ``judge: "grader"`` (see the module's doc); None sends those cells to the kernel.
    """
    result = Execution(nb, last_label="the kernel's start")
    try:
        _execute(result, cwd, env, timeout, cell_timeout, max_output_bytes, sandbox, judge)
    finally:
        if sandbox is not None:  # every process of the sandbox is gone after this
            result.sandbox = sandbox.close()
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
