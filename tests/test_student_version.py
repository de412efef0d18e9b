"""scripts/student_version.py: the student edition has no solutions and no outputs, keeps every exercise, and runs.

The edition is written once into a temporary folder; one chapter of it is then executed top to bottom with
nbclient, where every exercise cell must print its "not attempted yet" line instead of failing.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "student_version.py"
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


def tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def sources(cells, tag=None) -> list[str]:
    return [c.source.strip() for c in cells if c.source.strip() and (tag is None or tag in tags(c))]


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edition") / "student"
    done = run_script(out)
    assert done.returncode == 0, done.stderr
    assert "solution cells removed" in done.stdout
    return out


def test_every_chapter_is_written_in_both_formats(edition):
    written = sorted(p.name for p in edition.iterdir())
    expected = sorted([nb.name for nb in CHAPTERS] + [nb.with_suffix(".py").name for nb in CHAPTERS])
    assert written == expected


def test_the_book_has_tagged_exercises_and_solutions():
    """Guards the test below against passing vacuously."""
    cells = [c for nb in CHAPTERS for c in nbformat.read(nb, as_version=4).cells]
    assert len(sources(cells, "exercise")) >= 20
    assert len(sources(cells, "solution")) >= 20


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_and_no_output_remains_and_every_exercise_is_kept(edition, chapter):
    notebook = nbformat.read(edition / chapter.name, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs or execution counts remain"
    for book, student in (
        (nbformat.read(chapter, as_version=4), notebook),
        (jupytext.read(chapter.with_suffix(".py")), jupytext.read(edition / chapter.with_suffix(".py").name)),
    ):
        assert not [c for c in student.cells if "solution" in tags(c)]
        assert sources(student.cells, "exercise") == sources(book.cells, "exercise")
        # everything that is not a solution is kept, in order, with its tags
        kept = [c for c in book.cells if "solution" not in tags(c) and c.source.strip()]
        assert sources(student.cells) == sources(kept)
        assert [tags(c) for c in student.cells if c.source.strip()] == [tags(c) for c in kept]


def test_the_sources_keep_the_book_header(edition):
    text = (edition / "01_forward_process.py").read_text()
    book = (ROOT / "chapters" / "01_forward_process.py").read_text()
    assert text.split("# %%", 1)[0] == book.split("# %%", 1)[0]
    assert '# %% tags=["exercise"]' in text and '# %% tags=["solution"]' not in text


def test_a_student_chapter_runs_top_to_bottom_and_says_what_is_left(edition):
    """Chapter 1 (about 15 s): its three code exercises are reported as not attempted, and nothing fails."""
    nb = nbformat.read(edition / "01_forward_process.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(edition)}}).execute()
    printed = {}
    for cell in nb.cells:
        if "exercise" in tags(cell):
            printed[cell.source.split("(", 1)[0]] = "".join(o.get("text", "") for o in cell.outputs).strip()
    assert printed == {
        "def my_q_sample": "Exercise 1.1 not attempted yet: fill in my_q_sample, then run this cell again.",
        "def my_alpha_bars": "Exercise 1.2 not attempted yet: fill in my_alpha_bars, then run this cell again.",
        "def my_quadratic_betas": (
            "Exercise 1.5 not attempted yet: fill in my_quadratic_betas, then run this cell again."
        ),
    }


def test_a_folder_that_is_not_empty_needs_force(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = run_script(out)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: {out} exists and is not empty; pass --force to write the chapters into it"
    assert run_script(out, "--force").returncode == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "01_forward_process.ipynb").exists()


def test_a_file_or_an_unwritable_place_is_refused_in_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    refused = run_script(a_file)
    assert refused.returncode == 2 and refused.stderr.strip() == f"error: {a_file} exists and is not a folder"
    below_a_file = run_script(a_file / "student")
    assert below_a_file.returncode == 2 and below_a_file.stderr.startswith("error: cannot write to ")
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere: test_an_unwritable_folder_is_refused covers the message")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        refused = run_script(locked / "student")
    finally:
        locked.chmod(0o700)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: cannot write to {locked / 'student'}: {locked} is not a writable folder"
    assert len(refused.stderr.strip().splitlines()) == 1


def test_an_unwritable_folder_is_refused(tmp_path, monkeypatch, capsys):
    """The same check in-process, with os.access saying no (this works for root too)."""
    spec = importlib.util.spec_from_file_location("student_version", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script.os, "access", lambda path, mode: False)
    assert script.main([str(tmp_path / "student")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: cannot write to {tmp_path / 'student'}: {tmp_path} is not a writable folder\n"
    )
    assert not (tmp_path / "student").exists()
