"""Generate the student notebooks in ``labs/`` from the solution notebooks in ``solutions/``.

    python -m utils.labs.build                 # (re)build every lab
    python -m utils.labs.build lab0_perceptron # one lab
    python -m utils.labs.build --check         # exit 1, with a diff, if labs/ is out of date
    python -m utils.labs.build --force         # overwrite lab notebooks that were edited by hand

Exit status: 0 when every lab is up to date or was written; 1 when ``--check`` finds a lab
out of date (or a lab in ``labs/`` whose solution is gone); 2 when a lab was refused (edited
by hand) or a solution notebook does not follow the lab format (the message says where).

The student version of a solution notebook has every solution region replaced by a stub
that raises ``NotImplementedError`` (with the region's hints), no hidden test cells, no
outputs, cell metadata reduced to ``tags`` (nbval's ``nbval-ignore-output``) and ``editable``,
and metadata ``course = {lab, version, build}``: ``version`` is the hash of the
solution's cells and ``build`` the hash of the generated cells. A lab notebook whose cells no
longer hash to its ``build`` stamp has been edited since it was generated (by a student or
an instructor), and the build refuses to overwrite it unless ``--force`` is given.
"""

from __future__ import annotations

import copy
import difflib
import json
import sys
from pathlib import Path

from utils import cache
from utils.labs import format as labformat

EXIT_OK, EXIT_OUT_OF_DATE, EXIT_REFUSED = 0, 1, 2


def student_version(lab: labformat.Lab):
    """The generated student notebook (an nbformat ``NotebookNode``) of a parsed lab."""
    nb = copy.deepcopy(lab.notebook)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            header = labformat.test_header(cell.source)
            if header is not None and header["hidden"]:
                continue
            cell.source = labformat.strip_solutions(cell.source, f"{lab.id}, cell {index}")
            cell.outputs, cell.execution_count = [], None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags", "editable")}
        cells.append(cell)
    nb.cells = cells
    nb.metadata["course"] = {
        "lab": lab.id,
        "title": lab.title,
        "version": lab.version,
        "build": labformat.cells_hash(nb),
    }
    return nb


def completed_version(lab: labformat.Lab):
    """The student notebook as a student who solved everything would hand it in.

    It is the generated notebook with each cell's source taken back from the solution (test
    cells included), so its metadata is the student version's. Used by the tests and the
    grading benchmark to make realistic submissions.
    """
    nb = student_version(lab)
    solved = {cell.get("id"): cell.source for cell in lab.notebook.cells}
    for cell in nb.cells:
        cell.source = solved[cell.get("id")]
    return nb


def _text(nb) -> list[str]:
    """A readable line-by-line rendering of a notebook's cells, for diffs."""
    stamp = json.dumps(dict(nb.metadata.get("course", {})), sort_keys=True)
    lines = [f"metadata.course = {stamp}\n"]
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags")  # nbval's tags (nbval-ignore-output) travel too
        lines.append(f"--- cell {index} ({cell.cell_type}){f' tags {tags}' if tags else ''} ---\n")
        lines.extend(line + "\n" for line in cell.source.split("\n"))
    return lines


def diff(old, new, name: str) -> str:
    """Unified diff between the cells of two notebooks (empty when they agree)."""
    return "".join(
        difflib.unified_diff(
            _text(old), _text(new), f"{name} (on disk)", f"{name} (from solutions/)"
        )
    )


def edited_by_hand(nb) -> bool:
    """True when a generated notebook's cells no longer match its ``build`` stamp."""
    stamp = nb.metadata.get("course", {}).get("build")
    return stamp != labformat.cells_hash(nb)


def _write_atomic(nb, path: Path) -> None:
    import nbformat

    with cache.atomic_path(path) as tmp:
        nbformat.write(nb, str(tmp))


def _read(path: Path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # unreadable or not a notebook: treated as edited by hand
        return None


def _has_outputs(nb) -> bool:
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def build(
    solution: Path, labs_dir: Path, check: bool = False, force: bool = False, out=None
) -> int:
    """Build (or with ``check``, compare) the student version of one solution notebook.

    Returns:
        ``EXIT_OK``; ``EXIT_OUT_OF_DATE`` when ``check`` finds a difference (cells, stamp, or
        stored outputs); ``EXIT_REFUSED`` when the target was edited by hand and ``force`` is
        not set.
    """
    out = out or sys.stdout
    new = student_version(labformat.read(solution))
    target = labs_dir / solution.name
    old = _read(target) if target.exists() else None
    same = old is not None and not diff(old, new, target.name)
    hand_edited = target.exists() and (old is None or edited_by_hand(old))
    if check:
        if same and not _has_outputs(old):
            print(f"up to date: {target}", file=out)
            return EXIT_OK
        if old is None:
            print(f"OUT OF DATE: {target} is missing or unreadable", file=out)
        elif same:
            print(
                f"OUT OF DATE: {target} has stored outputs; student versions ship without", file=out
            )
        else:
            print(f"OUT OF DATE: {target} differs from {solution}:", file=out)
            print(diff(old, new, target.name), file=out)
        fix = f"python -m utils.labs.build {solution.stem}" + (" --force" if hand_edited else "")
        why = " (it was edited by hand, so the build needs --force)" if hand_edited else ""
        print(f"Run `{fix}` to regenerate it{why}.", file=out)
        return EXIT_OUT_OF_DATE
    if same and not _has_outputs(old):
        print(f"unchanged: {target}", file=out)
        return EXIT_OK
    if hand_edited and not force:
        print(
            f"REFUSED: {target} was edited since it was generated, so it was not overwritten. "
            "Move it away to keep it, or run "
            f"`python -m utils.labs.build {solution.stem} --force` to replace it.",
            file=out,
        )
        return EXIT_REFUSED
    _write_atomic(new, target)
    print(f"wrote {target} (version {new.metadata['course']['version']})", file=out)
    return EXIT_OK


def orphans(solutions_dir: Path, labs_dir: Path) -> list[Path]:
    """Generated labs whose solution notebook is gone (renamed or deleted)."""
    sources = {path.name for path in labformat.solution_paths(solutions_dir)}
    return [
        path
        for path in sorted(labs_dir.glob("*.ipynb"))
        if path.name not in sources and (_read(path) or {}).get("metadata", {}).get("course")
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m utils.labs.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("labs", nargs="*", help="lab ids (default: every lab in solutions/)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if out of date")
    parser.add_argument("--force", action="store_true", help="overwrite hand-edited lab notebooks")
    parser.add_argument("--solutions", type=Path, default=labformat.SOLUTIONS_DIR)
    parser.add_argument("--labs-dir", type=Path, default=labformat.LABS_DIR)
    args = parser.parse_args(argv)
    if args.labs:
        paths = [args.solutions / f"{lab}.ipynb" for lab in args.labs]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            print(
                f"no such lab: {', '.join(p.stem for p in missing)} (looked in {args.solutions})",
                file=sys.stderr,
            )
            return EXIT_REFUSED
    else:
        paths = labformat.solution_paths(args.solutions)
    worst = EXIT_OK
    if not args.labs:
        for path in orphans(args.solutions, args.labs_dir):
            print(
                f"ORPHAN: {path} was generated from a solution that no longer exists in "
                f"{args.solutions}; delete it or restore its source",
                file=sys.stderr,
            )
            worst = max(worst, EXIT_OUT_OF_DATE)
    for path in paths:
        try:
            worst = max(worst, build(path, args.labs_dir, args.check, args.force))
        except labformat.LabFormatError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            worst = EXIT_REFUSED
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
