"""What students read cites papers and public pages only, and runtime lines carry no anecdotes.

The slides the kit was designed from (``../shared/seeds/``) are the authors' source, not the
students': no notebook and no data file may cite them. See STYLE.md, "What students see".
"""

import csv
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
STUDENT_FILES = sorted(
    [
        *ROOT.glob("lectures/*.ipynb"),
        *ROOT.glob("solutions/*.ipynb"),
        *ROOT.glob("lectures/data/*.csv"),
    ]
)
SLIDE_CITATION = re.compile(
    r"seed 00\d|seeds/|\b(?:the|course|course's|lecture|lecture's|seed) slides?\b"
    r"|\bslide's\b|\bslides'|'s slides\b|\(slides?\)|\bslide \d|\bslides \d+[-–]",
    re.IGNORECASE,
)
ANECDOTE = re.compile(
    r"shared with other|shared machine|busy machine|other jobs|lightly loaded", re.IGNORECASE
)


def _texts(path):
    """(place, text) for every cell of a notebook, or every row of a CSV file."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [(f"cell {i}", cell.source) for i, cell in enumerate(nb.cells)]
    with path.open(newline="") as f:
        return [(f"row {i}", ",".join(row)) for i, row in enumerate(csv.reader(f), start=1)]


def test_the_patterns_catch_what_they_are_for():
    cited = ("seed 003, slide 30", "the slides' rho", "as the course slides put it", "(slides)")
    cited += ("the slide's derivative", "lecture 1a, slides 9-12", "G. Chiachia's slides")
    for text in cited:
        assert SLIDE_CITATION.search(text), text
    assert ANECDOTE.search("2 CPU cores shared with other jobs")
    # The verb is fine: a filter slides over an image.
    assert not SLIDE_CITATION.search("the kernel slides 96 filters over the image")


@pytest.mark.parametrize("path", STUDENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_slide_citations_and_no_anecdotes(path):
    found = [
        f"{place}: ...{text[max(0, m.start() - 40) : m.end() + 40]}..."
        for place, text in _texts(path)
        for pattern in (SLIDE_CITATION, ANECDOTE)
        for m in pattern.finditer(text)
    ]
    assert not found, f"{path.name} cites the slides or tells an anecdote:\n" + "\n".join(found)
