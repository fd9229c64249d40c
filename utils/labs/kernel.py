"""The autograder's code inside the grading kernel (called by cells that utils.labs.grade injects).

The grader runs a submission in a fresh kernel as: one :func:`begin` cell, the student's code
cells, and, where each exercise's test cell was, one :func:`run_exercise` cell holding the
master copy of that exercise's public and hidden tests. Its results leave the kernel as a
display output of type :data:`MIME` *of that injected cell*; the grader never reads anything
else the kernel prints, so printed "PASS" lines or fake result files earn nothing.

Student code runs in the same interpreter, so before each exercise :func:`run_exercise`
puts back whatever the student replaced since :func:`begin`: attributes of the modules the
tests rely on (``builtins``, ``numpy``, ``math``, ``utils.checks``, ``utils.labs.selfcheck``, this
module) and of those that carry the result out (IPython's display publisher, the Jupyter
session), the code objects of their functions and the methods of their classes,
``sys.modules`` entries, trace and profile hooks, and IPython's input transformers and event
callbacks. It does so again after the tests (which call the student's code) and publishes
with the ``display`` function saved by :func:`begin`. What it had to put back is
reported to the grader as tampering. The tests themselves run in a copy of the student's
globals where ``test``, ``check``, ``checks`` and ``np`` are the grader's own, whatever the
student defined under those names. As in the notebook, what a *public* test cell defines (a
constant, a helper) is then added to the student's globals for the cells after it; what
hidden test cells define stays private.

Each message, tampering note and problem published is cut at :data:`MAX_TEXT` characters
(and each list at :data:`MAX_NOTES` entries), so a result stays far below the size of
message the grader accepts (:data:`utils.labs.execute.MAX_MESSAGE_BYTES`).

None of this is a security boundary: code that already ran in this interpreter can read the
tests and forge their results whatever is restored. The kernel runs in the grader's sandbox
(:mod:`utils.labs.sandbox`), which keeps it from the grader, the reports and other submissions,
but not from its own results; ``docs/security.md`` says what is and is not guaranteed.
"""

from __future__ import annotations

import os
import signal
import sys
import types

MIME = "application/vnd.dlvision.grade+json"
MAX_TEXT = 2000  # characters of one published message or note
MAX_NOTES = 50  # tampering notes or problems published per exercise
GUARDED = (
    "builtins",
    "math",
    "numpy",
    "numpy.testing",
    "utils",
    "utils.labs",
    "utils.checks",
    "utils.labs.selfcheck",
    "utils.selfcheck",  # the alias that notebooks saved before utils.labs import
    "utils.labs.kernel",
    "IPython.display",
    "IPython.core.display_functions",
    "IPython.core.displaypub",
    "ipykernel.zmqshell",
    "jupyter_client.session",
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


def _functions(namespace: dict) -> dict:
    """``{name: (function, code, defaults, kwdefaults)}`` of the plain functions in a namespace."""
    return {
        key: (value, value.__code__, value.__defaults__, value.__kwdefaults__)
        for key, value in namespace.items()
        if isinstance(value, types.FunctionType)
    }


def _restore_functions(owner, saved: dict, where: str, notes: list[str]) -> None:
    """Put back ``owner``'s functions (module or class) as ``_functions`` saw them."""
    for key, (function, code, defaults, kwdefaults) in saved.items():
        if vars(owner).get(key) is not function:
            setattr(owner, key, function)
            notes.append(f"{where}.{key} was replaced")
        if (function.__code__, function.__defaults__, function.__kwdefaults__) != (
            code,
            defaults,
            kwdefaults,
        ):
            function.__code__, function.__defaults__ = code, defaults
            function.__kwdefaults__ = kwdefaults
            notes.append(f"the code of {where}.{key} was changed")


def _instances(shell) -> list:
    """The objects that carry a result out of the kernel: shell, display publisher, session."""
    publisher = getattr(shell, "display_pub", None)
    return [obj for obj in (shell, publisher, getattr(publisher, "session", None)) if obj]


def begin(memory_bytes: int | None = None) -> None:
    """Prepare the kernel: grading mode, a memory cap, and a snapshot of what tests rely on."""
    import importlib

    os.environ["COURSE_GRADING"] = "1"  # utils.labs.selfcheck.check() becomes a no-op
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
        classes = {
            value: (set(vars(value)), _functions(vars(value)))
            for value in attributes.values()
            if isinstance(value, type) and value.__module__ == name
        }
        modules[name] = (module, attributes, _functions(attributes), classes)
    _SNAPSHOT["modules"] = modules
    _SNAPSHOT["display"] = importlib.import_module("IPython.display").display
    _SNAPSHOT["streams"] = (sys.stdout, sys.stderr, sys.displayhook)
    shell = _ipython()
    if shell is not None:
        _SNAPSHOT["ipython"] = {name: list(getattr(shell, name, [])) for name in _IPYTHON_LISTS}
        _SNAPSHOT["instances"] = [(obj, set(vars(obj))) for obj in _instances(shell)]
        _SNAPSHOT["display_pub"] = shell.display_pub
        _SNAPSHOT["events"] = {
            event: list(callbacks) for event, callbacks in shell.events.callbacks.items()
        }


def restore() -> list[str]:
    """Undo the student's changes to what the tests rely on; describe each one undone."""
    notes: list[str] = []
    for name, (module, attributes, functions, classes) in _SNAPSHOT.get("modules", {}).items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            notes.append(f"sys.modules[{name!r}] was replaced")
        for key, value in attributes.items():
            if (name, key) in _KERNEL_MANAGED or key in functions:
                continue
            if module.__dict__.get(key, _SNAPSHOT) is not value:
                if not (name == "builtins" and key.startswith("_") and key != "__import__"):
                    notes.append(f"{name}.{key} was replaced")
                setattr(module, key, value)
        _restore_functions(module, functions, name, notes)
        for cls, (keys, methods) in classes.items():
            where = f"{name}.{cls.__name__}"
            _restore_functions(cls, methods, where, notes)
            for key in set(vars(cls)) - keys:
                if callable(vars(cls)[key]):
                    delattr(cls, key)
                    notes.append(f"{where}.{key} was added")
    shell = _ipython()
    if shell is not None and "instances" in _SNAPSHOT:
        if shell.display_pub is not _SNAPSHOT["display_pub"]:
            shell.display_pub = _SNAPSHOT["display_pub"]
            notes.append("the IPython display publisher was replaced")
        for obj, keys in _SNAPSHOT["instances"]:
            for key in set(vars(obj)) - keys:
                if callable(getattr(type(obj), key, None)):  # shadows a method
                    delattr(obj, key)
                    notes.append(f"{type(obj).__name__}.{key} was replaced on the instance")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.settrace(None)
        sys.setprofile(None)
        notes.append("a trace or profile hook was installed")
    if "streams" in _SNAPSHOT and (sys.stdout, sys.stderr, sys.displayhook) != _SNAPSHOT["streams"]:
        sys.stdout, sys.stderr, sys.displayhook = _SNAPSHOT["streams"]
        notes.append("sys.stdout, sys.stderr or sys.displayhook was replaced")
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
    reference: str = "",
) -> dict:
    """Run the master tests of one exercise against the student's globals; publish the result.

    Args:
        exercise: the exercise id, e.g. ``"ex1"``.
        sources: ``(visibility, source)`` of each master test cell, visibility "public" or
            "hidden".
        test_timeout: seconds allowed per test.
        namespace: the student's globals (default: the kernel's ``__main__``).
        reference: the definitions of the exercise's solution cells; run on a copy of the
            student's globals, they are what ``utils.labs.selfcheck.reference`` holds in the tests.

    Returns:
        The published payload: ``{"exercise", "tests": [{name, visibility, status,
        message}], "tampering": [...]}``.
    """
    tampering = restore()
    import numpy

    from utils import checks
    from utils.labs import selfcheck

    student = vars(sys.modules["__main__"]) if namespace is None else namespace
    found: list[tuple[str, object]] = []  # (name, function), in the order they are defined

    def test(exercise_id, name=None):
        def register(function):
            found.append((name or function.__name__, function))
            return function

        return register

    registered: list[tuple[str, str, object]] = []  # (visibility, name, function)
    tests, problems = [], []
    solution = dict(student)  # the reference's own helpers win over the student's
    try:
        exec(compile(reference, f"<the reference solution of {exercise}>", "exec"), solution)
    except Exception as error:
        problems.append(f"the reference solution failed: {type(error).__name__}: {error}")
    selfcheck.use_reference(
        {key: value for key, value in solution.items() if student.get(key, solution) is not value}
    )
    trusted = {"test": test, "check": lambda *args, **kwargs: None, "checks": checks, "np": numpy}
    scope = {**student, **trusted}  # a copy: the tests run with the grader's helpers
    for visibility, source in sources:
        before = dict(scope)
        try:
            exec(compile(source, f"<{visibility} tests of {exercise}>", "exec"), scope)
        except Exception as error:  # e.g. a NameError at the top of a test cell
            problems.append(f"{type(error).__name__}: {error}")
        registered += [(visibility, name, function) for name, function in found]
        found.clear()
        if visibility == "public":
            # As in the notebook, names a public test cell defines are there for later cells
            # (students see these cells anyway); what hidden cells define stays private.
            student.update(
                {
                    key: value
                    for key, value in scope.items()
                    if key not in trusted and before.get(key, trusted) is not value
                }
            )
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
        message = str(outcome.message)[:MAX_TEXT]
        tests.append(
            {"name": name, "visibility": kind, "status": outcome.status, "message": message}
        )
    selfcheck.use_reference(None)
    tampering += restore()  # the student's code may have run again inside the tests
    payload = {
        "exercise": exercise,
        "tests": tests,
        "tampering": [note[:MAX_TEXT] for note in tampering[:MAX_NOTES]],
        "problems": [problem[:MAX_TEXT] for problem in problems[:MAX_NOTES]],
    }
    _SNAPSHOT["display"]({MIME: payload}, raw=True)  # the display function saved by begin()
    return payload
