"""Limits that hold for a sandbox's whole process tree: memory, CPU time and tasks.

``RLIMIT_AS`` and ``RLIMIT_CPU`` hold per process (every child gets its own allowance) and
``RLIMIT_NPROC`` does not bind root, so the grader limits the sandbox as one group:

- :class:`CgroupLimits` (Linux cgroup v1, ``memory``, ``pids`` and ``cpuacct`` controllers, as
  root): the kernel's memory accounting and the ``pids`` controller enforce the caps
  themselves. Past the memory cap the kernel's OOM killer ends the largest process of the
  group (the rest runs on); past the task cap a ``fork`` or a new thread fails.
- :class:`TreeLimits`, the fallback where cgroups cannot be created (cgroup v2 only, not
  root): a watcher thread sums, every :data:`POLL_S` seconds, the resident memory, tasks and
  CPU time of every process in the sandbox's PID namespace; past the memory cap it kills the
  largest process, past the task cap all of them. An allocation faster than the poll can
  overshoot for that long (the kernel's own ``RLIMIT_AS``, set by :mod:`utils.labs.kernel`,
  still applies to each process).

Both watch the CPU time of the whole group and kill every process past ``cpu_seconds``, and
both describe what they did in :attr:`TreeLimits.notes` (for the report). :meth:`kill_all`
kills every process of the sandbox and waits until none is left.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.2  # how often the watcher looks; a fork bomb or an allocation has this long
CGROUP_ROOT = Path("/sys/fs/cgroup")
_names = itertools.count()


@dataclass(frozen=True)
class Limits:
    """Caps for a sandbox's whole process tree; None means no cap."""

    memory_bytes: int | None = None
    cpu_seconds: float | None = None
    tasks: int | None = None  # processes and threads


def _read(path: Path | str, default: str = "") -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return default


def _gib(n: int) -> str:
    return f"{n / 2**30:g} GiB"


def namespace_members(namespace: str) -> list[int]:
    """Host pids of the processes whose PID namespace is ``namespace`` (``pid:[N]``)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.readlink(f"/proc/{entry.name}/ns/pid") == namespace:
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                pass
    return found


def _children(pid: int) -> list[int]:
    text = _read(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in text.split()]


def _stat(pid: int) -> tuple[int, float, int] | None:
    """``(resident bytes, CPU seconds incl. reaped children, threads)`` of a process."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), cpu, int(fields[17])


class TreeLimits:
    """Caps enforced by a watcher thread that polls ``/proc`` (works wherever Linux does)."""

    method = "a watcher thread polling /proc"

    def __init__(self, limits: Limits):
        self.limits = limits
        self.notes: list[str] = []
        self._outer: int | None = None
        self._namespace: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def enter_command(self) -> list[str]:
        """Shell commands, run by the sandbox's first process, that put it under the caps."""
        return []

    def start(self, pid: int) -> None:
        """Watch the sandbox whose outermost process (``bwrap``) is ``pid``."""
        self._outer = pid
        self._thread = threading.Thread(target=self._watch, name="sandbox-limits", daemon=True)
        self._thread.start()

    def members(self) -> list[int]:
        """Host pids of every process of the sandbox still there."""
        if self._outer is None:
            return []
        if self._namespace is None:
            for child in _children(self._outer):
                try:
                    self._namespace = os.readlink(f"/proc/{child}/ns/pid")
                except OSError:
                    continue
        members = namespace_members(self._namespace) if self._namespace else []
        return members + ([self._outer] if os.path.exists(f"/proc/{self._outer}") else [])

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            self._check()

    def _check(self) -> None:
        limits = self.limits
        stats = {pid: s for pid in self.members() if (s := _stat(pid)) is not None}
        if limits.cpu_seconds and sum(cpu for _, cpu, _ in stats.values()) > limits.cpu_seconds:
            self._note(
                f"the sandbox used more than its {limits.cpu_seconds:g} s of CPU time: "
                "every process in it was killed"
            )
            self.kill_all(wait=False)
            self._stop.set()
        elif limits.tasks and sum(threads for *_, threads in stats.values()) > limits.tasks:
            self._note(
                f"the sandbox ran more than {limits.tasks} processes and threads: "
                "every process in it was killed"
            )
            self.kill_all(wait=False)
            self._stop.set()
        elif limits.memory_bytes and sum(rss for rss, *_ in stats.values()) > limits.memory_bytes:
            largest = max(stats, key=lambda pid: stats[pid][0])
            self._note(
                f"the sandbox used more than its {_gib(limits.memory_bytes)} of memory: "
                "its largest process was killed"
            )
            _signal(largest)

    def kill_all(self, wait: bool = True, timeout: float = 10.0) -> bool:
        """SIGKILL every process of the sandbox; with ``wait``, until none is left.

        Returns:
            True when no process of the sandbox is left (or ``wait`` is False).
        """
        deadline = time.monotonic() + timeout
        while True:
            members = self.members()
            for pid in members:
                _signal(pid)
            if not wait:
                return True
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def close(self) -> bool:
        """Kill what is left, stop watching; True when no process of the sandbox is left."""
        gone = self.kill_all()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        return gone


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:  # already gone
        pass


class CgroupLimits(TreeLimits):
    """Caps enforced by cgroup v1 controllers (``memory``, ``pids``, ``cpuacct``)."""

    method = "cgroup v1 (memory, pids and cpuacct controllers)"
    CONTROLLERS = ("memory", "pids", "cpuacct")

    def __init__(self, limits: Limits):
        super().__init__(limits)
        name = f"dlvision-grade-{os.getpid()}-{next(_names)}"
        self.groups: dict[str, Path] = {}
        try:
            for controller in self.CONTROLLERS:
                group = _own_group(controller) / name
                group.mkdir()
                self.groups[controller] = group
            if limits.memory_bytes:
                _write(self.groups["memory"] / "memory.limit_in_bytes", limits.memory_bytes)
                swap = self.groups["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():  # no swapping around the cap either
                    _write(swap, limits.memory_bytes)
            if limits.tasks:
                _write(self.groups["pids"] / "pids.max", limits.tasks)
        except OSError:
            self._remove()
            raise

    def enter_command(self) -> list[str]:
        return [f"echo $$ > '{group}/cgroup.procs'" for group in self.groups.values()]

    def members(self) -> list[int]:
        return [int(pid) for pid in _read(self.groups["pids"] / "cgroup.procs").split()]

    def _check(self) -> None:
        cpu = self.limits.cpu_seconds
        used = int(_read(self.groups["cpuacct"] / "cpuacct.usage", "0") or 0) / 1e9
        if cpu and used > cpu:
            self._note(
                f"the sandbox used more than its {cpu:g} s of CPU time: "
                "every process in it was killed"
            )
            self.kill_all(wait=False)
            self._stop.set()

    def close(self) -> bool:
        gone = super().close()
        oom = _field(_read(self.groups["memory"] / "memory.oom_control"), "oom_kill")
        if oom:
            self._note(
                f"{oom} process(es) in the sandbox were killed at its memory cap of "
                f"{_gib(self.limits.memory_bytes or 0)}"
            )
        refused = _field(_read(self.groups["pids"] / "pids.events"), "max")
        if refused:
            self._note(
                f"{refused} new process(es) or thread(s) were refused at the sandbox's cap "
                f"of {self.limits.tasks} tasks"
            )
        if gone:
            self._remove()
        return gone

    def _remove(self) -> None:
        for group in self.groups.values():
            try:
                group.rmdir()
            except OSError:
                pass


def _own_group(controller: str) -> Path:
    """Where this process's cgroup of ``controller`` is mounted (v1), e.g. /sys/fs/cgroup/pids/."""
    base = CGROUP_ROOT / controller
    for line in _read("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            own = base / path.lstrip("/")
            if os.access(own, os.W_OK):
                return own
    return base


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def enforcer(limits: Limits, prefer_cgroups: bool = True) -> TreeLimits:
    """Cgroup limits where this machine lets the grader create cgroups, else the watcher."""
    if prefer_cgroups and all(
        (CGROUP_ROOT / name / "cgroup.procs").exists() for name in CgroupLimits.CONTROLLERS
    ):
        try:
            return CgroupLimits(limits)
        except OSError:
            pass
    return TreeLimits(limits)
