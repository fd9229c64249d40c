"""Colab and Kaggle: every notebook's badges and setup cell, and what that cell runs there.

Every lecture and lab starts with two generated cells:

1. a markdown cell with an "Open in Colab" and an "Open in Kaggle" badge for that notebook
   (a lab's badges, also in its solution notebook, point at ``labs/``, never ``solutions/``);
2. a setup code cell, the same in every notebook. On Colab or Kaggle it clones the course
   repository into ``~/dl-vision-course``, puts it on ``sys.path`` and calls :func:`setup`,
   which installs only the packages the platform lacks. Anywhere else it does nothing and
   prints nothing.

The repository's URL and branch are set once, in ``pyproject.toml`` (``[tool.course]``)::

    python -m utils.colab            # write the two cells into lectures/ and solutions/
    python -m utils.colab --check    # exit 1, naming the notebooks, if any cell is not current
    python -m utils.labs.build            # then regenerate labs/, which copies them from solutions/
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
BADGES_ID, SETUP_ID = "course-badges", "course-setup"  # the two cells' ids, in every notebook
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KAGGLE_BADGE = "https://kaggle.com/static/images/open-in-kaggle.svg"
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$")
# Never installed on Colab or Kaggle: their own TensorFlow and Keras (a second copy in a
# running kernel breaks it), their own Jupyter, and the tools only the tests and authors use.
NOT_INSTALLED = {"tensorflow", "keras", "jupyterlab", "ipykernel", "nbval", "pytest",
                 "pytest-xdist", "ruff"}
FOLDERS = ("lectures", "solutions", "labs")  # where the notebooks are

SETUP_TEMPLATE = '''\
# On Colab or Kaggle: fetch the course kit and the packages missing there. Elsewhere: nothing.
import os
import subprocess
import sys
from importlib.util import find_spec

KIT_URL, KIT_BRANCH = "{url}", "{branch}"
on_colab = find_spec("google") is not None and find_spec("google.colab") is not None
if on_colab or "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
    kit = os.path.expanduser("~/dl-vision-course")
    if not os.path.isdir(kit):
        subprocess.run(["git", "clone", "--quiet", "--depth=1", "--branch", KIT_BRANCH,
                        KIT_URL, kit], check=True)
    sys.path.insert(0, kit)
    from utils import colab

    colab.setup(kit)'''

BADGES_TEMPLATE = """\
[![Open In Colab]({colab_badge})]({colab}) [![Open In Kaggle]({kaggle_badge})]({kaggle})

On Colab or Kaggle, run the next cell first: it fetches the course kit. On Kaggle, switch \
Internet on in the notebook's settings."""


# --- The settings and the two cells ---------------------------------------------------


def settings(pyproject: Path = PYPROJECT) -> tuple[str, str]:
    """The repository URL and branch from ``[tool.course]`` in ``pyproject.toml``."""
    import tomllib

    with open(pyproject, "rb") as file:
        course = tomllib.load(file).get("tool", {}).get("course", {})
    url, branch = course.get("repository"), course.get("branch")
    if not isinstance(url, str) or not GITHUB.match(url):
        raise ValueError(f"[tool.course] repository in {pyproject} should be a GitHub URL "
                         f"(https://github.com/OWNER/NAME), got {url!r}")
    if not isinstance(branch, str) or not branch:
        raise ValueError(f"[tool.course] branch in {pyproject} should be a branch name, "
                         f"got {branch!r}")
    return url.rstrip("/").removesuffix(".git"), branch


def published_path(path: Path) -> str:
    """Where a notebook is opened from: ``lectures/NAME`` or ``labs/NAME`` (a solution's
    badges open its student version)."""
    folder = path.resolve().parent.name
    if folder not in FOLDERS:
        raise ValueError(f"path should be a notebook in one of {FOLDERS}, got {path}")
    return f"{'labs' if folder == 'solutions' else folder}/{path.name}"


def badges_source(notebook: str, url: str, branch: str) -> str:
    """The badge cell's markdown for ``notebook`` (a path in the repository)."""
    match = GITHUB.match(url)
    where = f"{match['owner']}/{match['name']}/blob/{branch}/{notebook}"
    return BADGES_TEMPLATE.format(
        colab_badge=COLAB_BADGE, kaggle_badge=KAGGLE_BADGE,
        colab=f"https://colab.research.google.com/github/{where}",
        kaggle=f"https://kaggle.com/kernels/welcome?src=https://github.com/{where}",
    )


def setup_source(url: str, branch: str) -> str:
    """The setup cell's code, the same in every notebook."""
    return SETUP_TEMPLATE.format(url=url, branch=branch)


def stamp(nb, notebook: str, url: str, branch: str) -> bool:
    """Put the badge and setup cells first in ``nb`` (in place); True when anything changed.

    Re-stamping a current notebook changes nothing. An existing setup cell keeps its
    execution count (a refreshed notebook numbers it 1); its outputs, which it has only on
    Colab or Kaggle, are cleared.
    """
    import nbformat

    old = {cell.get("id"): cell for cell in nb.cells if cell.get("id") in (BADGES_ID, SETUP_ID)}
    badges = nbformat.v4.new_markdown_cell(badges_source(notebook, url, branch), id=BADGES_ID)
    setup = nbformat.v4.new_code_cell(setup_source(url, branch), id=SETUP_ID)
    if SETUP_ID in old:
        setup.execution_count = old[SETUP_ID].get("execution_count")
    rest = [cell for cell in nb.cells if cell.get("id") not in old]
    head = [badges, setup]
    changed = nb.cells[:2] != head or len(old) != 2
    nb.cells = head + rest
    return changed


# --- The command ------------------------------------------------------------------------


def notebook_paths(root: Path = ROOT, folders=("lectures", "solutions")) -> list[Path]:
    return [path for folder in folders for path in sorted((root / folder).glob("*.ipynb"))]


def main(argv: list[str] | None = None) -> int:
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(prog="python -m utils.colab",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: every notebook in lectures/ and solutions/ "
                             "(with --check, labs/ too)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook's cells are not current")
    args = parser.parse_args(argv)
    url, branch = settings()
    folders = FOLDERS if args.check else ("lectures", "solutions")
    paths = args.notebooks or notebook_paths(ROOT, folders)
    stale = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not stamp(nb, published_path(path), url, branch):
            continue
        stale.append(path)
        if not args.check:
            nbformat.write(nb, str(path))
            print(f"stamped {path}")
    if args.check and stale:
        for path in stale:
            labs = path.parent.name == "labs"
            fix = "python -m utils.labs.build" if labs else "python -m utils.colab"
            print(f"OUT OF DATE: {path}: its badge or setup cell is not current; run `{fix}`")
        return 1
    if not args.check and any(path.parent.name == "solutions" for path in stale):
        print("Now run `python -m utils.labs.build` to regenerate labs/ from solutions/.")
    return 0


# --- What the setup cell runs on Colab and Kaggle ------------------------------------------


def requirements(kit: Path) -> list[tuple[str, str]]:
    """``(name, requirement)`` of each package line of ``kit/requirements.txt``."""
    found = []
    for line in (Path(kit) / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match and not requirement.startswith("-"):
            found.append((match.group().lower().replace("_", "-"), requirement))
    return found


def installed_versions(names) -> dict[str, str]:
    """The installed version of each of ``names`` that is installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def missing(kit: Path, installed: dict[str, str]) -> list[str]:
    """The requirements of ``kit/requirements.txt`` that are not installed, less
    ``NOT_INSTALLED``."""
    return [requirement for name, requirement in requirements(kit)
            if name not in NOT_INSTALLED and name not in installed]


def pip_command(requirements: list[str], installed: dict[str, str], constraints: Path):
    """The pip command that installs ``requirements`` and changes no installed package.

    ``constraints`` (a file this writes) pins every package of ``installed`` to its version,
    so pip keeps them while it resolves the new ones.
    """
    constraints.write_text("".join(f"{name}=={version}\n"
                                   for name, version in sorted(installed.items())))
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--constraint", str(constraints), *requirements]


def setup(kit: str | Path, run=None) -> None:
    """Finish the setup cell's work on Colab or Kaggle, and say what was done.

    Installs the kit's requirements that the platform lacks (never TensorFlow or Keras), and
    makes ``kit/lectures`` the working folder, as it is where the notebooks run locally
    (lecture 04 reads its tables from ``data/`` there).
    """
    kit, run = Path(kit), run or subprocess.run
    platform = "Kaggle" if "KAGGLE_KERNEL_RUN_TYPE" in os.environ else "Colab"
    installed = installed_versions(name for name, _ in requirements(kit))
    lacking = missing(kit, installed)
    if lacking:
        with tempfile.TemporaryDirectory() as folder:
            run(pip_command(lacking, installed, Path(folder) / "constraints.txt"), check=True)
        importlib.invalidate_caches()
    os.chdir(kit / "lectures")
    print(f"{platform}: the course kit is in {kit}, and lectures/ is the working folder. "
          f"Installed: {', '.join(lacking) or 'nothing'} "
          f"(TensorFlow and Keras are {platform}'s own).")
    print("Data sets (Fashion-MNIST, MNIST, CIFAR-10) download on first use, through "
          "TensorFlow Datasets, and stay cached until the session ends.")


if __name__ == "__main__":
    raise SystemExit(main())
