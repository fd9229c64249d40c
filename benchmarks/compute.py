"""Training compute of every notebook at every size, counted without training (a dry run).

Run:  python -m benchmarks.compute [NOTEBOOK ...] [--size smoke|cpu|full|all]

NOTEBOOK is a path or a file stem (``01_filters``, ``lab3_vgg``); by default every training
notebook: the lecture and solution notebooks whose code calls ``training.fit(``. The default
size is ``full``, the one the budget is about.

How a notebook is counted: it runs top to bottom in a fresh kernel
(:func:`utils.labs.notebooks.run`, cells continue after errors) with

- ``COURSE_SIZE=<size>``: the notebook picks the constants of that size;
- ``COURSE_DRY_RUN=1``: ``training.fit`` builds and compiles each model and appends its entry
  to the compute ledger (:func:`utils.ledger.ledger`) but trains nothing; ``evaluate`` and
  ``predict`` return NaN metrics and uniform probabilities. ``data.load`` loads the real data;
- a cell put first (:data:`FIRST_CELL`) that makes IPython skip the notebook's plain ``assert``
  statements, as ``python -O`` would (:class:`SkipAsserts`), so an assert on a NaN result does
  not stop a cell before a later ``fit`` call; the ``checks.*`` helpers still raise.
  (``PYTHONOPTIMIZE`` would do the same, but recompiles TensorFlow's modules at every start.)

A cell appended to the notebook prints ``json.dumps(training.ledger())``, which is read back;
both added cells are removed from the executed notebook before its errors are read.
A cell that raises still loses the ``fit`` calls after the error: for every cell that raised,
the line of the error is read from the traceback, and the cell is flagged when a
``training.fit`` call (or a call of a notebook function that calls it) comes at or after that
line, or in a loop around it. A flagged notebook's total is a lower bound.

What is counted: ``FLOP = 6 x multiply-adds per image x training images x epochs``
(:data:`utils.ledger.FLOP_PER_MULT_ADD`); validation and test passes are not counted, and
every epoch is (a callback that stops training early would make the total an upper bound), as
are frozen layers' weight gradients, which are never computed (likewise an upper bound).
A model with a layer that ``archtable.model_mult_adds`` cannot count adds nothing and is named.
A notebook whose full-size total passes :data:`BUDGET_PFLOP` is flagged: exit status 1.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("lectures", "solutions")  # the students' lab versions train the same models
SIZES = ("smoke", "cpu", "full")
BUDGET_PFLOP = 10.0  # the course's compute budget for one notebook's full-size run
DRY_CELL_TIMEOUT_S = 600  # one cell of a dry run: data loading and model building only
LEDGER_MARKER = "compute-ledger: "  # the appended cell prints this, then the ledger's JSON
FIRST_CELL = ("get_ipython().ast_transformers.append("
              "__import__('benchmarks.compute', fromlist=['SkipAsserts']).SkipAsserts())")
LEDGER_CELL = ("import json\nfrom utils import training\n"
               f"print({LEDGER_MARKER!r} + json.dumps(training.ledger()))")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")


@dataclass
class LedgerRun:
    """One notebook run at one size: its ledger entries and the cells that raised.

    ``raised`` holds ``(cell index, exception name, line in the cell or None)``; ``missed``
    the cells among them that may have skipped a ``training.fit`` call.
    """

    notebook: str
    size: str
    entries: list[dict]
    raised: list[tuple[int, str, int | None]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    executed: object = None  # the executed nbformat notebook, outputs included
    dry: bool = True

    @property
    def pflop(self) -> float:
        return sum(e["flop"] for e in self.entries if e["flop"] is not None) / 1e15


class SkipAsserts(ast.NodeTransformer):
    """Turns every ``assert`` statement of a cell into ``pass`` (lines keep their numbers)."""

    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)


def training_notebooks(root: Path = ROOT) -> list[Path]:
    """The lecture and solution notebooks whose code cells call ``training.fit(``."""
    import nbformat

    found = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((Path(root) / folder).glob("*.ipynb")):
            cells = nbformat.read(path, as_version=4).cells
            if any(c.cell_type == "code" and "training.fit(" in c.source for c in cells):
                found.append(path)
    return found


def run_notebook(path: str | Path, size: str, dry: bool = True,
                 timeout: int = DRY_CELL_TIMEOUT_S) -> LedgerRun:
    """Execute ``path`` at ``size`` with a ledger cell appended, and read the ledger back.

    Args:
        path: the ``.ipynb`` file (not modified; a copy runs in the notebook's folder).
        size: ``"smoke"``, ``"cpu"`` or ``"full"``.
        dry: a dry run (``COURSE_DRY_RUN=1``, plain asserts skipped); False trains for real.
        timeout: seconds allowed per cell.

    Raises:
        ValueError: for an unknown size.
        RuntimeError: if the appended cell printed no ledger.
    """
    import nbformat

    from utils import training
    from utils.labs import notebooks

    if size not in SIZES:
        raise ValueError(f"size={size!r} should be one of {SIZES}.")
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if dry:
        nb.cells.insert(0, nbformat.v4.new_code_cell(FIRST_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(LEDGER_CELL))
    settings = {"COURSE_SIZE": size, "COURSE_QUICK": None,
                training.DRY_RUN_VAR: "1" if dry else None}
    with tempfile.TemporaryDirectory() as folder, notebooks.environment(**settings):
        copy = Path(folder) / path.name
        nbformat.write(nb, str(copy))
        started = time.perf_counter()
        result = notebooks.run(copy, timeout=timeout, cwd=path.parent)
        seconds = time.perf_counter() - started
    executed = result.notebook
    printed = "".join(o.get("text", "") for o in executed.cells[-1].get("outputs", [])
                      if o.get("name") == "stdout")
    found = [ln for ln in printed.splitlines() if ln.startswith(LEDGER_MARKER)]
    if not found:
        errors = [error for error in result.errors if error[0] == len(nb.cells) - 1]
        raise RuntimeError(f"{path.name}: the ledger cell printed no ledger ({errors})")
    entries = json.loads(found[-1][len(LEDGER_MARKER):])
    executed.cells = executed.cells[1 if dry else 0:-1]  # only the notebook's own cells
    raised = raised_cells(executed)
    return LedgerRun(_name(path), size, entries, raised, missed_fits(executed, raised), seconds,
                     executed, dry)


def _name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def raised_cells(nb) -> list[tuple[int, str, int | None]]:
    """``(cell index, exception name, line)`` of every error output; the line is the cell's own
    frame in the traceback (None when the traceback names none)."""
    raised = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                line = _CELL_LINE.search(trace)
                raised.append((index, output["ename"], int(line.group(1)) if line else None))
    return raised


def _calls(node, callers: set[str]):
    """Calls of ``training.fit`` or of a function in ``callers`` under ``node``, not counting
    the bodies of functions, lambdas and classes (defining them calls nothing)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(child, ast.Call) and (
            (isinstance(child.func, ast.Attribute) and child.func.attr == "fit"
             and isinstance(child.func.value, ast.Name) and child.func.value.id == "training")
            or (isinstance(child.func, ast.Name) and child.func.id in callers)
        ):
            yield child
        yield from _calls(child, callers)


def _parse(source: str):
    from utils.labs import notebooks

    try:
        return notebooks.parse_cell(source)
    except SyntaxError:
        return None


def missed_fits(nb, raised) -> list[int]:
    """The cells in ``raised`` whose error may have skipped a ``training.fit`` call."""
    trees = [_parse(c.source) if c.cell_type == "code" else None for c in nb.cells]
    functions = [n for tree in trees if tree for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    callers: set[str] = set()  # notebook functions that call training.fit, however indirectly
    while True:
        more = {f.name for f in functions if any(_calls(f, callers))} - callers
        if not more:
            break
        callers |= more
    missed = []
    for index, _, line in raised:
        tree = trees[index]
        if tree is None:
            skipped = "training.fit(" in nb.cells[index].source
        else:
            calls = list(_calls(tree, callers))
            loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.While))
                     and line is not None and n.lineno <= line <= n.end_lineno]
            skipped = bool(calls) and (line is None or any(c.end_lineno >= line for c in calls)
                                       or any(any(_calls(loop, callers)) for loop in loops))
        if skipped and index not in missed:
            missed.append(index)
    return missed


def _count(value) -> str:
    return "unknown" if value is None else f"{value:,}"


def describe(run: LedgerRun) -> list[str]:
    """A notebook's line at one size, then one line per model (identical calls merged)."""
    calls = len(run.entries)
    lines = [f"{run.notebook} [{run.size}]: {run.pflop:.3g} PFLOP in {calls} fit "
             f"call{'s' if calls != 1 else ''}; {'dry ' if run.dry else ''}run "
             f"{run.seconds:.1f} s"]
    merged = Counter((e["model"], e["mult_adds"], e["images"], e["epochs"], e["flop"])
                     for e in run.entries)
    for (model, mult_adds, images, epochs, flop), times in merged.items():
        pflop = "not counted" if flop is None else f"{flop * times / 1e15:.3g} PFLOP"
        repeat = f" (x{times} calls)" if times > 1 else ""
        plural = "s" if epochs != 1 else ""
        lines.append(f"    {model:24s} {_count(mult_adds):>13s} mult-adds/image x "
                     f"{images:,} images x {epochs} epoch{plural} = {pflop}{repeat}")
    for index, name, line in run.raised:
        where = f"line {line}" if line else "an unknown line"
        note = (": a later training.fit may have been skipped, the total is a lower bound"
                if index in run.missed else "")
        lines.append(f"    cell {index} raised {name} at {where}{note}")
    return lines


def table(runs: list[LedgerRun], size: str, budget: float = BUDGET_PFLOP) -> list[str]:
    """The summary table of one size: PFLOP per notebook, the largest, and the budget check."""
    runs = [r for r in runs if r.size == size]
    lines = [f"size {size}" + (f" (budget {budget:g} PFLOP per notebook)" if size == "full"
                               else ""),
             f"{'notebook':44s} {'fit calls':>9s} {'PFLOP':>10s} {'dry run':>9s}  cells raised"]
    for run in runs:
        cells = " ".join(f"{i}{'*' if i in run.missed else ''}" for i, _, _ in run.raised)
        lines.append(f"{run.notebook:44s} {len(run.entries):9d} {run.pflop:10.3g} "
                     f"{run.seconds:8.1f}s  {cells or '-'}")
    if runs:
        largest = max(runs, key=lambda r: r.pflop)
        lines.append(f"{'total':44s} {sum(len(r.entries) for r in runs):9d} "
                     f"{sum(r.pflop for r in runs):10.3g}")
        lines.append(f"largest: {largest.notebook}, {largest.pflop:.3g} PFLOP")
    if any(r.missed for r in runs):
        lines.append("* a training.fit call after the error may have been skipped")
    lines += [f"OVER BUDGET: {r.notebook} needs {r.pflop:.3g} PFLOP > {budget:g} at full size"
              for r in over_budget(runs, budget)]
    return lines


def over_budget(runs: list[LedgerRun], budget: float = BUDGET_PFLOP) -> list[LedgerRun]:
    """The full-size runs whose total passes ``budget`` PFLOP."""
    return [r for r in runs if r.size == "full" and r.pflop > budget]


def _resolve(name: str, root: Path = ROOT) -> Path:
    if Path(name).is_file():
        return Path(name)
    matches = [p for p in training_notebooks(root) if p.stem.startswith(name)]
    if len(matches) != 1:
        raise SystemExit(f"{name!r} should name one training notebook, matched "
                         f"{[p.name for p in matches]}")
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status: 1 when a notebook is over budget, else 0."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compute",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*",
                        help="paths or stems (default: every notebook that calls training.fit)")
    parser.add_argument("--size", choices=[*SIZES, "all"], default="full",
                        help="run size (default full, the budget's size)")
    args = parser.parse_args(argv)
    paths = [_resolve(n) for n in args.notebooks] or training_notebooks()
    sizes = SIZES if args.size == "all" else (args.size,)
    runs = []
    for size in sizes:
        for path in paths:
            runs.append(run_notebook(path, size))
            print("\n".join(describe(runs[-1])), flush=True)
    for size in sizes:
        print("\n" + "\n".join(table(runs, size)))
    return 1 if over_budget(runs) else 0


if __name__ == "__main__":
    sys.exit(main())
