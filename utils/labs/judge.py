"""Judging a lab in the grader's own process (``course.judge = "grader"``).

For such a lab the grader never sends a test cell to the student's kernel. Where the
exercise's test cell was, :class:`Judge` runs the master public and hidden tests of that
exercise *here*, in a namespace built from the solution notebook:

- the solution's code cells up to its last test cell are run once per process, lab and size
  (:func:`trusted`), here, at the ``COURSE_SIZE`` graded, printing nothing, as a dry run
  (:func:`utils.training.dry_running`: ``training.fit`` builds and compiles but trains nothing,
  and ``training.evaluate`` gives NaN, which the accuracy checks pass over); public test cells
  run too, with ``test`` and ``check`` doing nothing, so the names they define (constants,
  helpers) are there for the cells after them; hidden cells do not run. Each exercise's tests
  start from a copy of the namespace as it was before that exercise's public test cell;
- every exercise function (the top-level ``def`` and ``class`` names of the cells with
  solution regions: :func:`exercise_functions`) is replaced by a proxy that calls the
  student's function of that name in the student's kernel, through :mod:`utils.labs.bridge`;
- ``utils.labs.selfcheck.reference`` is the solution's own namespace, and ``test``,
  ``check``, ``checks`` and ``np`` are the grader's.

So the expected values, the hidden tests and the solution never enter the student's kernel;
the student's kernel sends back plain data only (a Keras model of Keras' own layers as its
configuration and variables, rebuilt here: :mod:`utils.labs.bridge_models`), and the
comparison and the points are computed here. Each call carries this thread's Keras dtype
policy, which the kernel uses for that call. The results have the shape
:mod:`utils.labs.kernel` publishes for the other labs, and :func:`utils.labs.report.collect`
reads them from :attr:`Judge.results`.

A test passes a function to a student's function (a numerical gradient of ``f``, say) only if
its test cell defines it at the top level with ``def``: it is defined again in the kernel from
its source (:func:`utils.labs.bridge.serve`), where it sees ``np`` and the student's globals,
not the test cell's constants. A lambda, a nested function or another callable fails the test
with a message that says so.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import sys
import threading
import time
import types
from dataclasses import dataclass, field

from utils import quick, training
from utils.labs import bridge, bridge_models, notebooks, selfcheck
from utils.labs import format as labformat

MARGIN_S = 5  # seconds the grader waits past a call's own limit before interrupting the kernel
_CACHE: dict = {}
_LOCK = threading.Lock()


class TestTimedOut(KeyboardInterrupt):
    """A test ran past its limit (``except Exception`` in a test does not catch it)."""


class NotPlainData(BaseException):
    """A student's function sent back what the bridge does not carry, or a malformed result.

    A ``BaseException``, so that a test's ``except Exception`` does not turn it into a pass.
    """

    bridge_where = ""  # the report names no frame of the grader's


class StudentError(Exception):
    """Base of the classes that stand for a student's exception that is not a builtin one."""


def exercise_functions(lab: labformat.Lab) -> list[str]:
    """The top-level ``def`` and ``class`` names of the solution cells with solution regions."""
    names = []
    for cell in lab.notebook.cells:
        if cell.cell_type != "code" or labformat.test_header(cell.source):
            continue
        if labformat.strip_solutions(cell.source) == cell.source:
            continue
        for node in notebooks.parse_cell(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
    return list(dict.fromkeys(names))


def _helpers(source: str) -> dict[str, str]:
    """``{name: source}`` of the functions a test cell defines at the top level with a plain
    ``def`` (no decorator): those a test may pass to a student's function."""
    tree = notebooks.parse_cell(source)
    text = notebooks.python_source(source)
    return {
        node.name: ast.get_source_segment(text, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.decorator_list
    }


@dataclass
class Trusted:
    """The solution run in the grader: the namespace before each exercise's public test cell."""

    snapshots: dict[str, dict] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)
    failure: str = ""  # why the solution could not run here (then no test can)


def _quiet_test(*args, **kwargs):
    return lambda function: function


class _Silenced:
    """A stream that drops what one thread writes (the one running the solution, which may
    run in the background) and passes on what the others write."""

    def __init__(self, stream):
        self._stream, self._thread = stream, threading.current_thread()

    def write(self, text):
        if threading.current_thread() is self._thread:
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _run_solution(lab: labformat.Lab, cells: list, last: int, namespace: dict,
                  result: Trusted) -> None:
    """Run the solution's code cells up to ``last`` in ``namespace``, hidden tests left out,
    keeping the namespace before each public test cell in ``result.snapshots``."""
    for index, cell in enumerate(cells[: last + 1]):
        header = labformat.test_header(cell.source)
        if header is not None and header["hidden"]:
            continue
        if header is not None:
            result.snapshots[header["exercise"]] = dict(namespace)
            namespace.update(test=_quiet_test, check=lambda *args, **kwargs: None)
        try:
            code = notebooks.compile_cell(cell.source, f"<{lab.id}: code cell {index + 1}>")
            exec(code, namespace)
        except (Exception, SystemExit) as error:
            result.failure = (
                f"the solution's code cell {index + 1} failed in the grader: "
                f"{type(error).__name__}: {error}"
            )
            return


def _build(lab: labformat.Lab, size: str) -> Trusted:
    """Run the solution at ``size`` in this thread, without changing the process's
    environment (:func:`utils.quick.fixed`) and with this thread's output dropped."""
    result = Trusted(functions=exercise_functions(lab))
    cells = [cell for cell in lab.notebook.cells if cell.cell_type == "code"]
    tested = [i for i, cell in enumerate(cells) if labformat.test_header(cell.source)]
    namespace = {"__name__": f"solutions.{lab.id}"}
    if "matplotlib" not in sys.modules:  # no window opens from the grader's process
        import matplotlib

        matplotlib.use("Agg")
    streams = (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr = (_Silenced(stream) for stream in streams)
    try:
        # This thread alone runs at the grading size, and dry: the tests need the solution's
        # definitions and data, not its trained models, so nothing is trained twice.
        with quick.fixed(size), training.dry_running():
            _run_solution(lab, cells, max(tested, default=-1), namespace, result)
    finally:
        if isinstance(sys.stdout, _Silenced):
            sys.stdout = streams[0]
        if isinstance(sys.stderr, _Silenced):
            sys.stderr = streams[1]
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    return result


def trusted(lab: labformat.Lab, size: str) -> Trusted:
    """The solution's namespaces for ``lab`` at ``size``, built once per process."""
    key = (lab.id, lab.version, str(lab.path), size)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(lab, size)
        return _CACHE[key]


def _private(snapshot: dict) -> dict:
    """A copy of a snapshot whose data (arrays, lists, datasets, generators) this exercise's
    tests may change without changing the cache; modules and functions are shared."""
    memo: dict = {}
    scope = {}
    for key, value in snapshot.items():
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            scope[key] = value
            continue
        try:
            scope[key] = copy.deepcopy(value, memo)
        except Exception:  # what cannot be copied is shared
            scope[key] = value
    return scope


def _student_exception(found: dict) -> Exception:
    """The exception a student's function raised, as an exception of the grader's: the
    builtin class of that name when there is one (``NotImplementedError`` still means "not
    attempted", ``AssertionError`` a failure), else a class of that name."""
    name, message = found["type"], found["message"]
    kind = getattr(builtins, name, None)
    error = None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            error = kind(message)
        except Exception:  # a builtin that needs other arguments (UnicodeDecodeError)
            error = None
    if error is None:
        error = type(name, (StudentError,), {})(message)
    error.bridge_where = found.get("where", "")
    return error


def _copy_into(target, source):
    """Put ``source`` (the arguments after the call, in the kernel) into ``target`` (the
    test's own objects) in place where it can: arrays, lists, dicts; returns what stands for
    ``target`` afterwards."""
    np = bridge.np
    if isinstance(target, np.ndarray):
        if type(source) is np.ndarray and source.shape == target.shape and target.flags.writeable:
            np.copyto(target, source, casting="unsafe")
        return target
    if type(target) is list and type(source) is list:
        if len(target) == len(source):
            for i, item in enumerate(source):
                target[i] = _copy_into(target[i], item)
        else:
            target[:] = source
        return target
    if type(target) is dict and type(source) is dict:
        if list(target) == list(source):
            for key, item in source.items():
                target[key] = _copy_into(target[key], item)
        else:
            target.clear()
            target.update(source)
        return target
    if type(target) is tuple and type(source) is tuple and len(target) == len(source):
        for old, new in zip(target, source, strict=True):
            _copy_into(old, new)
        return target
    try:
        same = type(source) not in (list, dict, tuple) and bool(target == source)
    except Exception:
        same = False
    return target if same else source


class _Session:
    """One exercise's calls to the student's kernel."""

    def __init__(self, call, scope: dict, helpers: dict[str, str]):
        self.call, self.scope, self.helpers = call, scope, helpers
        self.deadline = time.monotonic() + 60

    def _function_name(self, value, where: str, used: dict) -> str:
        name = getattr(value, "__name__", None)
        if (type(value) is types.FunctionType and name in self.helpers
                and self.scope.get(name) is value):
            used[name] = self.helpers[name]
            return name
        what = "a lambda" if name == "<lambda>" else f"{type(value).__name__} {name or ''}"
        raise bridge.BridgeError(
            f"{where}: {what.strip()} cannot cross to the student's kernel; pass a function "
            "that the test cell defines at its top level with def (not a lambda, a nested "
            "function or another callable)"
        )

    def __call__(self, name: str, args: tuple, kwargs: dict):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TestTimedOut()
        used: dict[str, str] = {}
        text = bridge.dumps(
            (args, kwargs),
            functions=lambda value, where: self._function_name(value, where, used),
            where=f"the arguments of {name}",
        )
        request = json.dumps({  # the kernel builds models under this thread's dtype policy
            "function": name, "call": text, "helpers": used, "seconds": remaining,
            "policy": bridge_models.current_policy(),
        })
        source = f"__import__('utils.labs.bridge', fromlist=['serve']).serve({request!r})"
        outputs = self.call(source, remaining + MARGIN_S)
        found = [
            output["data"][bridge.MIME]
            for output in outputs
            if output.get("output_type") == "display_data"
            and isinstance(output.get("data"), dict)
            and bridge.MIME in output["data"]
        ]
        errors = [output for output in outputs if output.get("output_type") == "error"]
        if not found and any(e.get("ename") in ("CellTimeout", "KeyboardInterrupt")
                             for e in errors):
            raise TestTimedOut()
        if len(found) != 1:
            why = (f"{errors[0].get('ename')}: {str(errors[0].get('evalue'))[:300]}" if errors
                   else f"{len(found)} results")
            raise NotPlainData(f"the call of {name} sent back no single result ({why})")
        try:
            response = bridge.parse_response(
                found[0], functions=lambda helper: self.scope.get(helper)
            )
        except bridge.BridgeError as error:
            raise NotPlainData(f"{name} sent back {error}") from None
        if response["status"] == "timeout":
            raise TestTimedOut()
        if response["status"] == "refused":
            raise NotPlainData(
                f"{response['message']} (a function the grader tests must return plain data, "
                "or a model of Keras' own layers)"
            )
        if response["status"] == "raised":
            raise _student_exception(response)
        if "args" in response:
            _copy_into(args, response["args"][0])
            _copy_into(kwargs, response["args"][1])
        return response["value"]


class _Proxy:
    """Stands for a student's function in the grader's tests: calls it in the kernel."""

    def __init__(self, name: str, session: _Session):
        self.__name__ = self.__qualname__ = name
        self._session = session

    def __call__(self, *args, **kwargs):
        return self._session(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<the student's {self.__name__}>"


class Judge:
    """``judge(exercise_id, call)``: run one exercise's tests here, calling the student's
    functions through ``call(source, seconds) -> outputs`` (see
    :func:`utils.labs.execute.execute`); the results go to :attr:`results`."""

    def __init__(self, lab: labformat.Lab, size: str, test_timeout: float):
        self.lab, self.size, self.test_timeout = lab, size, test_timeout
        self.results: dict[str, dict] = {}

    def prepare(self) -> threading.Thread:
        """Build the solution's namespace in the background (while the kernel starts)."""
        thread = threading.Thread(target=trusted, args=(self.lab, self.size), daemon=True)
        thread.start()
        return thread

    def __call__(self, exercise_id: str, call) -> None:
        lab, exercise = self.lab, self.lab.exercises[exercise_id]
        solution = trusted(lab, self.size)
        payload = {"exercise": exercise_id, "tests": [], "tampering": [], "problems": []}
        self.results[exercise_id] = payload
        if exercise_id not in solution.snapshots:
            payload["problems"].append(solution.failure or "the solution has no such exercise")
            return
        scope = _private(solution.snapshots[exercise_id])
        reference = dict(scope)
        sources = [("public", s) for s in exercise.public]
        sources += [("hidden", s) for s in exercise.hidden]
        helpers: dict[str, str] = {}
        for other in lab.exercises.values():  # earlier public cells' helpers are in scope too
            for source in other.public:
                helpers.update(_helpers(source))
            if other.id == exercise_id:
                break
        for _, source in sources:
            helpers.update(_helpers(source))
        session = _Session(call, scope, helpers)
        found: list[tuple[str, object]] = []

        def test(exercise, name=None):
            def register(function):
                found.append((name or function.__name__, function))
                return function

            return register

        from utils import checks

        scope.update({name: _Proxy(name, session) for name in solution.functions})
        scope.update(test=test, check=lambda *args, **kwargs: None, checks=checks,
                     np=bridge.np)
        registered = []
        for visibility, source in sources:
            try:
                code = notebooks.compile_cell(source, f"<{visibility} tests of {exercise_id}>")
                exec(code, scope)
            except Exception as error:
                payload["problems"].append(f"{type(error).__name__}: {error}"[:bridge.MAX_TEXT])
            registered += [(visibility, name, function) for name, function in found]
            found.clear()
        selfcheck.use_local_reference(reference)
        try:
            for visibility, name, function in registered:
                session.deadline = time.monotonic() + self.test_timeout
                try:
                    outcome = selfcheck.run_test(exercise_id, name, function)
                except TestTimedOut:
                    outcome = selfcheck.Outcome(
                        exercise_id, name, selfcheck.ERROR,
                        f"stopped after the {self.test_timeout:g} s limit per test "
                        "(an endless loop?)",
                    )
                except KeyboardInterrupt as stop:  # the kernel is gone: no test can run
                    payload["problems"].append(f"stopped: {stop}")
                    raise
                payload["tests"].append({
                    "name": name, "visibility": visibility, "status": outcome.status,
                    "message": str(outcome.message)[:bridge.MAX_TEXT],
                })
        finally:
            selfcheck.use_local_reference(None)
