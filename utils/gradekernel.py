"""The autograder's code inside the grading kernel (called by cells that utils.grade injects).

The grader runs a submission in a fresh kernel as: one :func:`begin` cell, the student's code
cells, and, where each exercise's test cell was, one :func:`run_exercise` cell holding the
master copy of that exercise's public and hidden tests. Its results leave the kernel as a
display output of type :data:`MIME` *of that injected cell*; the grader never reads anything
else the kernel prints, so printed "PASS" lines or fake result files earn nothing.

Student code runs in the same interpreter, so before each exercise :func:`run_exercise`
puts back whatever the student replaced since :func:`begin`: attributes of the modules the
tests rely on (``builtins``, ``numpy``, ``math``, ``utils.checks``, ``utils.selfcheck``, this
module), the code objects of their functions, ``sys.modules`` entries, trace and profile
hooks, and IPython's input transformers and event callbacks. What it had to put back is
reported to the grader as tampering. The tests themselves run in a fresh namespace where
``test``, ``check``, ``checks`` and ``np`` are the grader's own, whatever the student
defined under those names.
"""

from __future__ import annotations

import os
import signal
import sys
import types

MIME = "application/vnd.dlvision.grade+json"
GUARDED = (
    "builtins",
    "math",
    "numpy",
    "numpy.testing",
    "utils",
    "utils.checks",
    "utils.selfcheck",
    "utils.gradekernel",
    "IPython.display",
    "IPython.core.display_functions",
)
# Names the kernel itself rebinds for every request (ipykernel's stdin support).
_KERNEL_MANAGED = {("builtins", "input"), ("builtins", "raw_input"), ("getpass", "getpass")}
_IPYTHON_LISTS = ("input_transformers_post", "input_transformers_cleanup", "ast_transformers")
_SNAPSHOT: dict = {}


class TestTimeout(KeyboardInterrupt):
    """Raised in a test that runs past its time limit (``except Exception`` does not catch it)."""


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # not in a kernel (unit tests call these functions directly)
        return None
    return get_ipython()


def begin(memory_bytes: int | None = None) -> None:
    """Prepare the kernel: grading mode, a memory cap, and a snapshot of what tests rely on."""
    import importlib

    os.environ["COURSE_GRADING"] = "1"  # utils.selfcheck.check() becomes a no-op
    if memory_bytes:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        except (ImportError, ValueError, OSError):  # not every OS allows it
            pass
    modules = {}
    for name in GUARDED:
        module = importlib.import_module(name)
        attributes = dict(vars(module))
        code = {
            key: (value.__code__, value.__defaults__, value.__kwdefaults__)
            for key, value in attributes.items()
            if isinstance(value, types.FunctionType)
        }
        modules[name] = (module, attributes, code)
    _SNAPSHOT["modules"] = modules
    _SNAPSHOT["streams"] = (sys.stdout, sys.stderr, sys.displayhook)
    shell = _ipython()
    if shell is not None:
        _SNAPSHOT["ipython"] = {name: list(getattr(shell, name, [])) for name in _IPYTHON_LISTS}
        _SNAPSHOT["events"] = {
            event: list(callbacks) for event, callbacks in shell.events.callbacks.items()
        }


def restore() -> list[str]:
    """Undo the student's changes to what the tests rely on; describe each one undone."""
    notes = []
    for name, (module, attributes, code) in _SNAPSHOT.get("modules", {}).items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            notes.append(f"sys.modules[{name!r}] was replaced")
        for key, value in attributes.items():
            if (name, key) in _KERNEL_MANAGED:
                continue
            if module.__dict__.get(key, _SNAPSHOT) is not value:
                if not (name == "builtins" and key.startswith("_") and key != "__import__"):
                    notes.append(f"{name}.{key} was replaced")
                setattr(module, key, value)
        for key, (function_code, defaults, kwdefaults) in code.items():
            function = attributes[key]
            if (
                function.__code__ is not function_code
                or function.__defaults__ is not defaults
                or function.__kwdefaults__ is not kwdefaults
            ):
                function.__code__, function.__defaults__ = function_code, defaults
                function.__kwdefaults__ = kwdefaults
                notes.append(f"the code of {name}.{key} was changed")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.settrace(None)
        sys.setprofile(None)
        notes.append("a trace or profile hook was installed")
    if "streams" in _SNAPSHOT and (sys.stdout, sys.stderr, sys.displayhook) != _SNAPSHOT["streams"]:
        sys.stdout, sys.stderr, sys.displayhook = _SNAPSHOT["streams"]
        notes.append("sys.stdout, sys.stderr or sys.displayhook was replaced")
    shell = _ipython()
    if shell is not None and "ipython" in _SNAPSHOT:
        for name, saved in _SNAPSHOT["ipython"].items():
            if list(getattr(shell, name, [])) != saved:
                setattr(shell, name, list(saved))
                notes.append(f"IPython {name} were changed")
        for event, saved in _SNAPSHOT["events"].items():
            if shell.events.callbacks.get(event) != saved:
                shell.events.callbacks[event] = list(saved)
                notes.append(f"IPython {event} callbacks were changed")
    return notes


def _alarm(seconds: float):
    """Arm a timer that raises TestTimeout in this thread; returns a disarm function."""
    if not hasattr(signal, "setitimer"):
        return lambda: None

    def on_alarm(signum, frame):
        raise TestTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return disarm


def run_exercise(
    exercise: str,
    sources: list[tuple[str, str]],
    test_timeout: float = 60.0,
    namespace: dict | None = None,
) -> dict:
    """Run the master tests of one exercise against the student's globals; publish the result.

    Args:
        exercise: the exercise id, e.g. ``"ex1"``.
        sources: ``(visibility, source)`` of each master test cell, visibility "public" or
            "hidden".
        test_timeout: seconds allowed per test.
        namespace: the student's globals (default: the kernel's ``__main__``).

    Returns:
        The published payload: ``{"exercise", "tests": [{name, visibility, status,
        message}], "tampering": [...]}``.
    """
    tampering = restore()
    import numpy

    from utils import checks, selfcheck

    student = vars(sys.modules["__main__"]) if namespace is None else namespace
    registered: list[tuple[str, str, object]] = []
    visibility = ["public"]

    def test(exercise_id, name=None):
        def register(function):
            registered.append((visibility[0], name or function.__name__, function))
            return function

        return register

    tests, problems = [], []
    scope = dict(student)  # a copy: the tests' names never reach the student's globals
    scope.update(test=test, check=lambda *args, **kwargs: None, checks=checks, np=numpy)
    for visibility[0], source in sources:
        try:
            exec(compile(source, f"<{visibility[0]} tests of {exercise}>", "exec"), scope)
        except Exception as error:  # e.g. a NameError at the top of a test cell
            problems.append(f"{type(error).__name__}: {error}")
    for kind, name, function in registered:
        disarm = _alarm(test_timeout)
        try:
            outcome = selfcheck.run_test(exercise, name, function)
        except TestTimeout:
            outcome = selfcheck.Outcome(
                exercise,
                name,
                selfcheck.ERROR,
                f"stopped after the {test_timeout:g} s limit per test (an endless loop?)",
            )
        finally:
            disarm()
        tests.append(
            {"name": name, "visibility": kind, "status": outcome.status, "message": outcome.message}
        )
    payload = {"exercise": exercise, "tests": tests, "tampering": tampering, "problems": problems}
    from IPython.display import display

    display({MIME: payload}, raw=True)
    return payload
