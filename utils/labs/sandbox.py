"""An operating-system sandbox for a grading kernel, built on bubblewrap (``bwrap``).

:class:`Bubblewrap` wraps the kernel's command line so that the kernel, and every process it
starts, runs

- with a read-only view of the system's libraries (``/usr``), a few files of ``/etc``, the
  Python environment (``sys.prefix``, ``sys.base_prefix``, the user site), the kit's
  ``utils/`` and the data the labs read (Keras' and TFDS' folders, ``$FASHION_MNIST_DIR``,
  the kit cache's ``.npz`` files, in a cache folder of its own where it may add more;
  ``/usr/share/datasets`` is in ``/usr``), and nothing else of the machine: not the
  submissions, the solutions, the reports, the repository's ``.git`` or the grader's
  temporary folders. A folder of ``hide`` that lies inside a shown folder is covered by
  an empty one;
- in a private, writable ``/tmp`` of at most the memory cap (its working folder and
  ``HOME`` are ``/tmp/work``) and a small ``/dev/shm``, which disappear with it; the
  rest of its file system is read-only;
- without network (its own network namespace has only a loopback), in its own PID, IPC and
  UTS namespaces, so it sees and can signal only its own processes; in a new session (no
  controlling terminal to inject keystrokes into); with every capability dropped and
  ``no_new_privs``; with an environment of its own (the grader's is not passed on);
- under the :mod:`utils.labs.limits` caps (memory, CPU time, tasks) for the whole tree.

The grader talks to the kernel through unix-domain sockets (Jupyter's ``ipc`` transport)
in :attr:`Bubblewrap.folder`, the one folder shared with the sandbox; :meth:`lock` makes it
unwritable from inside once the kernel is up. :meth:`close` kills every process of the
sandbox (``--die-with-parent`` ends the whole PID namespace with ``bwrap``) and waits until
none is left, so the grader writes reports only after the sandbox is gone.

:func:`choose` picks a sandbox for ``--sandbox auto|bwrap|none``. Another kind (Docker,
Podman) would be another class with the same methods: ``folder``, ``command``,
``started``, ``lock``, ``kill``, ``close`` and ``description``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from utils.labs import limits as sandboxlimits

KINDS = ("auto", "bwrap", "none")
WORK = "/tmp/work"  # the kernel's working folder and HOME inside the sandbox
KIT_CACHE = f"{WORK}/.cache/dl-vision-course"  # the kit's cache inside: the host's files, read-only
TMP_BYTES = 1 << 30  # the private /tmp's size when there is no memory cap
SHM_BYTES = 256 << 20  # /dev/shm's size (multiprocessing's semaphores and small buffers)
NOBODY = 65534  # owner of the socket folder once locked (the sandbox runs as root, no caps)
# What of /etc a Python kernel needs: the loader, users, time zone, fonts.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
       "hosts", "localtime", "timezone", "fonts", "mime.types", "alternatives", "matplotlibrc",
       f"python{sys.version_info[0]}.{sys.version_info[1]}")  # fmt: skip
NAMESPACES = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
              "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
              "--new-session", "--cap-drop", "ALL"]  # fmt: skip
# The grader's environment variables the kernel may see (others may hold secrets).
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONHASHSEED", "PYTHONPATH", "MPLBACKEND",
            "KERAS_BACKEND", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "XLA_FLAGS")  # fmt: skip
ENV_PREFIXES = ("COURSE_", "TF_", "LC_")


class SandboxUnavailable(RuntimeError):
    """No sandbox of the kind asked for can run on this machine; the message says why."""


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


@functools.cache
def bwrap_problem() -> str | None:
    """None when bubblewrap can build this module's sandbox here, else why not (cached)."""
    path, true = shutil.which("bwrap"), shutil.which("true") or "/bin/true"
    if path is None:
        return "bubblewrap (bwrap) is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    command = [path, "--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs",
               "/tmp", *_system_mounts(), "--remount-ro", "/", *NAMESPACES, true]  # fmt: skip
    try:
        run = subprocess.run(command, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not run: {error}"
    if run.returncode != 0:
        why = run.stderr.decode(errors="replace").strip()[:300]
        return f"bwrap cannot create its namespaces here (exit status {run.returncode}: {why})"
    return None


def choose(kind: str):
    """The sandbox class for ``--sandbox KIND``, or None for ``none``.

    Raises:
        ValueError: an unknown ``kind``.
        SandboxUnavailable: ``auto`` or ``bwrap`` where bubblewrap cannot run.
    """
    if kind not in KINDS:
        raise ValueError(f"sandbox={kind!r} should be one of {', '.join(KINDS)}.")
    if kind == "none":
        return None
    problem = bwrap_problem()
    if problem:
        raise SandboxUnavailable(problem)
    return Bubblewrap


def _real(paths) -> list[Path]:
    """Each existing path, and its real path where a symlink leads elsewhere, without repeats."""
    found: list[Path] = []
    for path in paths:
        if path and Path(path).exists():
            for each in (Path(path).absolute(), Path(path).resolve()):
                if each not in found:
                    found.append(each)
    return found


def shown_folders() -> list[Path]:
    """Folders shown read-only: the Python environment, the kit's utils/, the labs' data."""
    import site

    from utils import sources
    from utils.labs import format as labformat

    python = [sys.prefix, sys.base_prefix, sys.exec_prefix, site.getusersitepackages()]
    data = [os.environ.get("FASHION_MNIST_DIR"), sources.keras_datasets_dir().parent,
            sources.tfds_data_dir()]  # fmt: skip
    return _real([*python, labformat.ROOT / "utils", *data])


def _files_into(folder: Path, pattern: str, inside: str) -> list[str]:
    """Read-only binds of the host's files ``folder/pattern`` into the folder ``inside``,
    which stays writable: the kernel reads them and may write new ones beside them."""
    args = []
    for path in sorted(folder.glob(pattern)):
        args += ["--ro-bind", str(path), f"{inside}/{path.name}"]
    return args


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class Bubblewrap:
    """One submission's sandbox: use as ``with Bubblewrap(limits, hide) as box: ...``."""

    def __init__(self, limits: sandboxlimits.Limits, hide=(), prefer_cgroups: bool = True):
        from utils.labs import format as labformat

        self.limits = sandboxlimits.enforcer(limits, prefer_cgroups)
        self.hide = _real([*hide, labformat.ROOT / ".git", labformat.SOLUTIONS_DIR])
        self.folder = Path(tempfile.mkdtemp(prefix="grade-sbx-"))
        self.description = f"bubblewrap; limits by {self.limits.method}"

    def __enter__(self) -> Bubblewrap:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _environment(self, env: dict[str, str]) -> list[str]:
        keep = {k: v for k, v in env.items() if k in ENV_KEEP or k.startswith(ENV_PREFIXES)}
        from utils import sources

        keep.update(
            HOME=WORK, TMPDIR="/tmp", MPLCONFIGDIR=f"{WORK}/.config/matplotlib",
            XDG_CACHE_HOME=f"{WORK}/.cache", XDG_CONFIG_HOME=f"{WORK}/.config",
            IPYTHONDIR=f"{WORK}/.ipython", JUPYTER_RUNTIME_DIR=f"{WORK}/.jupyter",
            COURSE_OFFLINE="1", COURSE_CACHE_DIR=KIT_CACHE,
            KERAS_HOME=str(sources.keras_datasets_dir().parent),
            TFDS_DATA_DIR=str(sources.tfds_data_dir()), LANG=env.get("LANG", "C.UTF-8"),
        )  # fmt: skip
        args = ["--clearenv"]
        for key, value in sorted(keep.items()):
            args += ["--setenv", key, value]
        return args

    def _mounts(self) -> list[str]:
        memory = self.limits.limits.memory_bytes
        args = ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", str(min(memory or SHM_BYTES, SHM_BYTES)), "--tmpfs", "/dev/shm"]
        args += ["--size", str(memory or TMP_BYTES), "--tmpfs", "/tmp"]
        args += ["--dir", WORK, *_system_mounts()]
        shown = shown_folders()
        # A shown folder under /tmp (a kit cloned there) would leave its parents writable in
        # the private /tmp: give each such top folder a mount of its own, made read-only below.
        tmp = Path("/tmp")
        tops = sorted({tmp / path.relative_to(tmp).parts[0] for path in shown
                       if _inside(path, tmp) and path != tmp})
        tops = [top for top in tops
                if not _inside(self.folder, top) and not _inside(Path(WORK), top)]
        for top in tops:
            args += ["--tmpfs", str(top)]
        for path in shown:
            args += ["--ro-bind", str(path), str(path)]
        # The kit's decoded datasets, and matplotlib's font list (else rebuilt at each start).
        from utils import cache

        args += ["--dir", KIT_CACHE, *_files_into(cache.cache_dir(), "*.npz", KIT_CACHE)]
        fonts = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
        args += _files_into(fonts, "fontlist-*.json", f"{WORK}/.config/matplotlib")
        args += ["--bind", str(self.folder), str(self.folder)]
        for path in self.hide:  # e.g. a submissions folder inside the Python environment
            if any(_inside(path, folder) for folder in shown):
                cover = ["--tmpfs"] if path.is_dir() else ["--ro-bind", "/dev/null"]
                args += [*cover, str(path)]
        for top in tops:
            args += ["--remount-ro", str(top)]
        return [*args, "--remount-ro", "/"]  # bwrap's own root: mount points only

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """``argv`` run in the sandbox, with the variables of ``env`` that it may see."""
        bwrap = [shutil.which("bwrap") or "bwrap", *self._mounts(), *NAMESPACES,
                 *self._environment(env), "--chdir", WORK, "--", *argv]  # fmt: skip
        enter = self.limits.enter_command()
        if not enter:
            return bwrap
        # The first process joins the cgroups, then becomes bwrap; exit status 125 if it cannot.
        script = " && ".join(enter) + ' || exit 125; exec "$@"'
        return ["/bin/sh", "-c", script, "sandbox", *bwrap]

    def started(self, pid: int) -> None:
        """The sandbox's first process is ``pid``: start enforcing the limits."""
        self.limits.start(pid)

    def lock(self) -> None:
        """Make the socket folder unwritable from inside (call once the kernel is up)."""
        try:
            os.chown(self.folder, NOBODY, NOBODY)
            os.chmod(self.folder, 0o700)
        except OSError:  # not root: the folder stays the sandbox's, as its /tmp is
            pass

    def kill(self) -> None:
        """Kill every process of the sandbox now (from any thread; does not wait)."""
        self.limits.kill_all(wait=False)

    def close(self) -> list[str]:
        """Kill every process, wait until none is left, remove the folder.

        Returns:
            Notes for the report: what the limits did, and whether a process outlived it.
        """
        gone = self.limits.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        notes = list(self.limits.notes)
        if not gone:
            notes.append("a process of the sandbox could not be killed")
        return notes
