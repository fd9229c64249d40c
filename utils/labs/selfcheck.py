"""Self-checks for the labs: ``@test("ex1")`` defines a test, ``check("ex1")`` runs them.

In a lab notebook, the test cell after an exercise defines its public tests and ends with
``check("ex1")``, which prints one line per test and a score line, for example::

    ex1 PASS  step_of_negative_is_zero
    ex1 FAIL  step_at_zero_is_one: step(0.0): expected 1, found 0
    ex1 not attempted  predict_shape (the exercise still raises NotImplementedError)
    ex1 score: 1 of 3 public tests passed (the grader also runs hidden tests)

``check`` never raises, so "Run All" goes on to the next exercise. A test is a function
without arguments that raises ``AssertionError`` (e.g. through :mod:`utils.checks`) when the
student's code is wrong. The grader (:mod:`utils.labs.grade`) runs the same tests, and hidden
ones, through :func:`run_test`, but keeps its own registry.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

PASS, FAIL, NOT_ATTEMPTED, ERROR = "pass", "fail", "not attempted", "error"
_REGISTRY: dict[str, dict[str, Callable[[], None]]] = {}  # exercise -> test name -> test
_REFERENCE: dict | None = None  # set by the grader while it runs an exercise's tests
_LOCAL = threading.local()  # .namespace: set by the grader's own process (utils.labs.judge)


class _Reference:
    """The solution's functions, for hidden tests: ``reference.lenet5(...)``.

    While the grader runs an exercise's tests, a name the exercise's solution cells define is
    the solution's definition; any other name, and every name outside the grader (the
    solution notebook itself), is looked up in the notebook's own globals. When the grader
    judges a lab in its own process (:mod:`utils.labs.judge`), the solution's namespace that
    it set for this thread is the only place looked in.
    """

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        local = getattr(_LOCAL, "namespace", None)
        if local is not None:
            if name not in local:
                raise NameError(f"reference.{name}: the solution does not define it")
            return local[name]
        if _REFERENCE is not None and name in _REFERENCE:
            return _REFERENCE[name]
        main = vars(sys.modules["__main__"])
        if name not in main:
            raise NameError(f"reference.{name}: neither the solution nor the notebook defines it")
        return main[name]


reference = _Reference()


def use_reference(namespace: dict | None) -> None:
    """What :data:`reference` holds first (the grader's call); ``None`` clears it."""
    global _REFERENCE
    _REFERENCE = namespace


def use_local_reference(namespace: dict | None) -> None:
    """What :data:`reference` holds in this thread only (the grader's own process, which
    grades submissions in threads); ``None`` clears it."""
    _LOCAL.namespace = namespace


@dataclass(frozen=True)
class Outcome:
    """The result of one test: ``status`` (pass, fail, not attempted, error) and a message."""

    exercise: str
    name: str
    status: str
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS


def _student_frame(error: BaseException) -> str:
    """' (raised in FUNC, line N)' for the innermost frame of the error, when the test
    function is not that frame itself (a failure inside the student's code, say). An error
    raised in a student's kernel and carried back by the grader's bridge says where itself."""
    where = getattr(error, "bridge_where", None)
    if isinstance(where, str):
        return where
    frames = traceback.extract_tb(error.__traceback__)
    if len(frames) < 2:
        return ""
    frame = frames[-1]
    return f" (raised in {frame.name}, line {frame.lineno})"


def run_test(exercise: str, name: str, function: Callable[[], None]) -> Outcome:
    """Run one test function and classify what happened; never raises (except on Ctrl-C)."""
    try:
        function()
    except NotImplementedError:
        return Outcome(
            exercise, name, NOT_ATTEMPTED, "the exercise still raises NotImplementedError"
        )
    except NameError as error:
        return Outcome(
            exercise,
            name,
            FAIL,
            f"{error}: run the exercise cell above first (or restore it if it was deleted)",
        )
    except AssertionError as error:
        return Outcome(exercise, name, FAIL, str(error) or "an assertion failed")
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # a student's bug may raise anything, SystemExit included
        return Outcome(
            exercise, name, ERROR, f"{type(error).__name__}: {error}{_student_frame(error)}"
        )
    return Outcome(exercise, name, PASS)


def test(exercise: str, name: str | None = None) -> Callable:
    """Decorator registering a public test of ``exercise`` (re-running a cell replaces it).

    Example:
        >>> @test("ex1")
        ... def step_at_zero_is_one():
        ...     checks.assert_equal(step(0.0), 1, "step(0.0)")
    """
    if not isinstance(exercise, str) or not exercise:
        raise TypeError(f"test(exercise) needs an exercise id such as 'ex1', got {exercise!r}")

    def register(function: Callable[[], None]) -> Callable[[], None]:
        _REGISTRY.setdefault(exercise, {})[name or function.__name__] = function
        return function

    return register


def format_outcome(outcome: Outcome) -> str:
    """One printable line for an outcome."""
    label = {PASS: "PASS ", FAIL: "FAIL ", ERROR: "FAIL ", NOT_ATTEMPTED: "not attempted"}
    line = f"{outcome.exercise} {label[outcome.status]} {outcome.name}"
    return line + (f": {outcome.message}" if outcome.message else "")


def results(exercise: str) -> list[Outcome]:
    """Run the public tests of ``exercise`` and return their outcomes (printing nothing)."""
    return [
        run_test(exercise, name, function) for name, function in _REGISTRY.get(exercise, {}).items()
    ]


def check(exercise: str) -> None:
    """Run the public tests of ``exercise``; print one line per test and a score line.

    Never raises for a wrong answer, so the rest of the notebook still runs, and returns
    nothing, so a cell ending in ``check("ex1")`` shows only the printed lines (use
    :func:`results` to get the outcomes). Under the grader (``COURSE_GRADING=1``) it does
    nothing: the grader runs its own copy of the tests.
    """
    if os.environ.get("COURSE_GRADING") == "1":
        return
    if not _REGISTRY.get(exercise):
        known = ", ".join(sorted(_REGISTRY)) or "none yet"
        print(
            f"{exercise}: no tests are defined for this exercise (defined: {known}). "
            "Run the exercise's test cell, or check the spelling."
        )
        return
    outcomes = results(exercise)
    for outcome in outcomes:
        print(format_outcome(outcome))
    passed = sum(outcome.passed for outcome in outcomes)
    print(
        f"{exercise} score: {passed} of {len(outcomes)} public tests passed"
        " (the grader also runs hidden tests)"
    )
