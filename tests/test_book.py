"""The book's structural invariants: every chapter's .py and .ipynb agree, and the notebook is executed.

The notebooks themselves run under nbval (``pytest`` collects ``chapters/*.ipynb`` with --nbval-lax;
cells marked ``# NBVAL_CHECK_OUTPUT`` have their outputs compared).
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_pair_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run python scripts/build_book.py {py}"
    source, executed = _cells(jupytext.read(py)), _cells(nbformat.read(ipynb, as_version=4))
    assert source == executed, f"{ipynb.name} differs from {py.name}: run python scripts/build_book.py {py}"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_executed_with_checked_cells(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.get("execution_count") for c in code), f"{py.stem}: some code cells were not executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    if not py.stem.startswith("00_"):
        checked = [c for c in code if "NBVAL_CHECK_OUTPUT" in c.source]
        assert len(checked) >= 3, f"{py.stem}: fewer than three cells whose output nbval compares"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_stored_notebooks_carry_no_execution_timestamps(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    stamped = [i for i, c in enumerate(nb.cells) if "execution" in c.get("metadata", {})]
    assert not stamped, f"{py.stem}: cells {stamped[:5]} carry execution timestamps; rebuild with scripts/build_book.py"


def test_there_is_a_book():
    assert len(CHAPTERS) >= 1


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_stored_cell_ids_follow_the_cells_content(py):
    """Cell ids come from each cell's content (scripts/build_book.py): a rebuild leaves unchanged cells' ids."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    stored = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    ids = [cell.id for cell in stored.cells]
    build_book.stable_ids(stored)
    assert ids == [cell.id for cell in stored.cells], "rebuild it: python scripts/build_book.py " + py.name
