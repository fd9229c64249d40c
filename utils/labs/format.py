"""The format of a lab's source notebook, ``solutions/<lab>.ipynb``, and how to read it.

A lab is authored once, as a solution notebook. Four conventions mark it up:

- Notebook metadata ``{"course": {"lab": "<lab id>", "title": "..."}}``; the lab id is the
  file's stem (``lab0_perceptron``).
- **Solution regions**, inside code cells::

      ### BEGIN SOLUTION
      ### HINT: one line that helps a student start (optional, any number)
      ...the instructor's code...
      ### END SOLUTION

  The student version replaces each region by a ``raise NotImplementedError(...)`` carrying
  the hints, indented like the region.
- **Public tests**: a code cell whose first line is ``### TESTS ex1 (2 points): Title``. It
  defines tests with the ``@test("ex1")`` decorator (:mod:`utils.labs.selfcheck`) and usually ends
  with ``check("ex1")``. Students see these cells. Each exercise has exactly one, and its
  header gives the exercise's points.
- **Hidden tests**: code cells whose first line is ``### HIDDEN TESTS ex1``. They are removed
  from the student version and run only by the grader. They may compare the student's
  functions with the solution's: ``from utils.labs.selfcheck import reference`` then
  ``reference.lenet5(...)``. Under the grader, ``reference`` holds the definitions of the
  exercise's own solution cells (the cells with solution regions since the previous public test
  cell), run on top of the student's globals, so a mistake in an earlier exercise does not
  cost points twice; in the solution notebook it is the notebook's own namespace.

An exercise's points are shared equally among all of its tests, public and hidden.

Optional notebook metadata ``course.judge`` says where the grader runs the tests:
``"kernel"`` (the default) in the student's kernel, next to the student's code;
``"grader"`` in the grader's own process, calling the student's functions through a bridge
that carries plain data only (:mod:`utils.labs.judge`, :mod:`utils.labs.bridge`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

BEGIN, END, HINT = "### BEGIN SOLUTION", "### END SOLUTION", "### HINT:"
TESTS_HEADER = re.compile(
    r"^###\s+(?P<hidden>HIDDEN\s+)?TESTS\s+(?P<exercise>[A-Za-z]\w*)"
    r"(?:\s*\((?P<points>\d+(?:\.\d+)?)\s+points?\))?(?:\s*:\s*(?P<title>.*))?\s*$"
)
# Comment lines that are probably a mistyped header ("## HIDDEN TEST ex2", "### TESTS ex1 (2 pts)").
LOOKS_LIKE_HEADER = re.compile(r"^#{2,}\s*(hidden\s+)?tests?\b", re.IGNORECASE)
ROOT = Path(__file__).resolve().parents[2]  # the repository: utils/labs/format.py
SOLUTIONS_DIR = ROOT / "solutions"  # where labs are authored
LABS_DIR = ROOT / "labs"  # where the student versions are generated
HASH_LENGTH = 12  # hex digits of SHA-256 kept in the version stamps
JUDGES = ("kernel", "grader")  # course.judge: where the grader runs a lab's tests


class LabFormatError(ValueError):
    """A solution notebook does not follow the lab conventions; the message says where."""


@dataclass
class Exercise:
    """One graded exercise: its id, title, points and test-cell sources (public, hidden)."""

    id: str
    points: float
    title: str = ""
    public: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    reference: str = ""  # the definitions of the exercise's solution cells (see the module doc)


@dataclass
class Lab:
    """A parsed solution notebook."""

    id: str
    title: str
    version: str  # hash of the source notebook's cells
    exercises: dict[str, Exercise]
    notebook: object  # the nbformat NotebookNode
    path: Path | None = None
    judge: str = "kernel"  # course.judge: "kernel" or "grader" (see the module's doc)

    @property
    def max_points(self) -> float:
        return sum(ex.points for ex in self.exercises.values())


def test_header(source: str):
    """The ``TESTS_HEADER`` match of a cell's first line, or ``None`` for other cells."""
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    return TESTS_HEADER.match(first) if first.startswith("###") else None


def cells_hash(nb) -> str:
    """Hash of the cell types and sources (outputs and metadata do not count)."""
    payload = [(cell.cell_type, cell.source) for cell in nb.cells]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:HASH_LENGTH]


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every solution region of ``source`` by a stub raising ``NotImplementedError``.

    Raises:
        LabFormatError: for an unmatched or nested marker; ``where`` names the cell.
    """
    out, hints, indent, inside = [], [], "", False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise LabFormatError(f"{where}, line {number}: {BEGIN} inside another region")
            inside, hints, indent = True, [], line[: len(line) - len(line.lstrip())]
        elif stripped.startswith(END):
            if not inside:
                raise LabFormatError(f"{where}, line {number}: {END} without {BEGIN}")
            inside = False
            hint = " ".join(hints)
            for text in hints:
                out.append(f"{indent}# Hint: {text}")
            message = "Exercise not done yet: replace this line with your code."
            message += f" Hint: {hint}" if hint else ""
            out.append(f"{indent}raise NotImplementedError({message!r})")
        elif inside:
            if stripped.startswith(HINT):
                hints.append(stripped[len(HINT) :].strip())
        else:
            out.append(line)
    if inside:
        raise LabFormatError(f"{where}: {BEGIN} has no matching {END}")
    return "\n".join(out)


def declared_tests(source: str) -> list[tuple[object, str]]:
    """``(exercise id given to @test, test name)`` for each ``@test(...)`` function in a cell."""
    from utils.labs import notebooks

    found = []
    for node in ast.walk(notebooks.parse_cell(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "test":
                args = [a.value if isinstance(a, ast.Constant) else None for a in decorator.args]
                found.append((args[0] if args else None, args[1] if len(args) > 1 else node.name))
    return found


def _check_test_cell(source: str, header, where: str) -> None:
    """A test cell's @test ids match its header, and hidden headers carry no points."""
    exercise = header["exercise"]
    try:
        tests = declared_tests(source)
    except SyntaxError as error:
        raise LabFormatError(f"{where}: the test cell is not valid Python: {error}") from None
    wrong = [name for given, name in tests if given != exercise]
    if wrong:
        raise LabFormatError(
            f"{where}: tests {wrong} are not declared with @test({exercise!r}) "
            f"although the cell's header is for {exercise}"
        )
    if header["hidden"] and header["points"] is not None:
        raise LabFormatError(
            f"{where}: points go on the public '### TESTS {exercise}' header, not on a hidden one"
        )


def parse(nb, path: Path | None = None) -> Lab:
    """Read the exercises, points and tests of a solution notebook.

    Raises:
        LabFormatError: missing or invalid lab metadata, a test header that does not parse, a
            hidden test without a public one, an exercise declared twice, without points or
            without tests, @test ids that disagree with their cell, malformed solution markers.
    """
    where = str(path or "notebook")
    meta = nb.metadata.get("course", {})
    lab_id = meta.get("lab")
    if not lab_id:
        raise LabFormatError(
            f"{where}: the notebook metadata has no course.lab (the lab id); add "
            '"course": {"lab": "<file name without .ipynb>", "title": "..."} to it (JupyterLab: '
            "Property Inspector, Advanced Tools, Notebook metadata)"
        )
    if not re.fullmatch(r"[A-Za-z]\w*", str(lab_id)):
        raise LabFormatError(f"{where}: lab id {lab_id!r} should be letters, digits and _ only")
    if path is not None and path.stem != lab_id:
        raise LabFormatError(
            f"{where}: course.lab is {lab_id!r} but the file is {path.name}; "
            "name the file <lab id>.ipynb"
        )
    judge = meta.get("judge", "kernel")
    if judge not in JUDGES:
        raise LabFormatError(
            f"{where}: course.judge is {judge!r}; it should be \"kernel\" (the tests run in "
            "the student's kernel, the default) or \"grader\" (they run in the grader and call "
            "the student's functions through the bridge)"
        )
    exercises: dict[str, Exercise] = {}
    hidden: list[tuple[str, str]] = []
    solved: list[str] = []  # sources of the cells with solution regions since the last TESTS
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        place = f"{where}, cell {index}"
        if strip_solutions(cell.source, place) != cell.source:  # also validates the markers
            solved.append(cell.source)
        header = test_header(cell.source)
        first = cell.source.lstrip("\n").split("\n", 1)[0].strip()
        if header is None and LOOKS_LIKE_HEADER.match(first):
            raise LabFormatError(
                f"{place}: {first!r} looks like a test header but is not one; write "
                "'### TESTS ex1 (2 points): Title' or '### HIDDEN TESTS ex1'"
            )
        if header is None:
            continue
        _check_test_cell(cell.source, header, place)
        exercise = header["exercise"]
        if header["hidden"]:
            hidden.append((exercise, cell.source))
            continue
        if exercise in exercises:
            raise LabFormatError(f"{place}: a second public TESTS cell for {exercise}")
        if header["points"] is None:
            raise LabFormatError(
                f"{place}: TESTS {exercise} has no points; "
                f"write '### TESTS {exercise} (2 points): title'"
            )
        exercises[exercise] = Exercise(
            exercise, float(header["points"]), (header["title"] or "").strip(), [cell.source],
            reference=definitions(solved),
        )
        solved = []
    for exercise, source in hidden:
        if exercise not in exercises:
            raise LabFormatError(f"{where}: HIDDEN TESTS {exercise} has no public TESTS cell")
        exercises[exercise].hidden.append(source)
    if not exercises:
        raise LabFormatError(f"{where}: no '### TESTS exN (P points)' cells, so nothing to grade")
    for exercise in exercises.values():
        if not any(declared_tests(source) for source in exercise.public + exercise.hidden):
            raise LabFormatError(f"{where}: exercise {exercise.id} has no @test functions")
    return Lab(lab_id, meta.get("title", lab_id), cells_hash(nb), exercises, nb, path, judge)


def read(path: str | Path) -> Lab:
    """Parse the solution notebook at ``path``."""
    import nbformat

    path = Path(path)
    return parse(nbformat.read(path, as_version=4), path)


def solution_paths(solutions_dir: str | Path = SOLUTIONS_DIR) -> list[Path]:
    """Every lab source in ``solutions_dir``: each notebook there is a lab."""
    return sorted(Path(solutions_dir).glob("*.ipynb"))


def find(lab_id: str, solutions_dir: str | Path = SOLUTIONS_DIR) -> Lab:
    """The lab whose id is ``lab_id``.

    Raises:
        LookupError: no such lab; the message lists the known ones.
    """
    path = Path(solutions_dir) / f"{lab_id}.ipynb"
    if not re.fullmatch(r"[A-Za-z]\w*", lab_id or "") or not path.is_file():
        known = ", ".join(p.stem for p in solution_paths(solutions_dir)) or "none"
        raise LookupError(f"unknown lab {lab_id!r} (labs in {solutions_dir}: {known})")
    return read(path)


def _is_definition(node) -> bool:
    """Imports, functions, classes and names bound to a literal (``CONFIGS = {"A": [...]}``)."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    return False


def definitions(sources) -> str:
    """The top-level definitions (:func:`_is_definition`) of code cells, as one source."""
    from utils.labs import notebooks

    kept = [node for source in sources for node in notebooks.parse_cell(source).body
            if _is_definition(node)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def load_functions(lab_id: str, names, solutions_dir: str | Path = SOLUTIONS_DIR) -> dict:
    """The functions (or literal constants) ``names`` of a lab's solution, e.g. a builder
    and its configuration table for a later notebook.

    Only the lab's top-level definitions run, in a fresh namespace: imports, function and class
    definitions, and names assigned a literal value. Nothing that trains, loads data or tests.

    Returns:
        ``{name: object}`` for each of ``names``.

    Raises:
        LookupError: no such lab, or a name the lab does not define (the message lists them).
    """
    from utils.labs import notebooks

    lab = find(lab_id, solutions_dir)
    kept = []
    for cell in lab.notebook.cells:
        if cell.cell_type != "code" or test_header(cell.source):
            continue
        tree = notebooks.parse_cell(cell.source)
        kept.extend(node for node in tree.body if _is_definition(node))
    namespace = {"__name__": f"solutions.{lab_id}"}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(lab.path), "exec"), namespace)
    missing = [name for name in names if name not in namespace or name.startswith("__")]
    if missing:
        defined = sorted(k for k, v in namespace.items()
                         if not k.startswith("_") and (callable(v) or k.isupper()))
        raise LookupError(f"lab {lab_id!r} defines no {', '.join(missing)} "
                          f"(it defines: {', '.join(defined) or 'none'})")
    return {name: namespace[name] for name in names}
