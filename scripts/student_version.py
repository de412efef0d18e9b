"""Make the student edition of the book: every chapter without its solutions and without outputs.

    python scripts/student_version.py OUT            # OUT must not exist or be an empty folder
    python scripts/student_version.py OUT --force    # write into a non-empty OUT, replacing the chapter files there

Each chapter, chapters/NN_topic.py (the jupytext source) and chapters/NN_topic.ipynb (the executed notebook), is
written to OUT with every cell tagged ``solution`` removed; the notebooks also lose every output and execution
count. The ``exercise`` cells stay: each holds a stub (``return ...`` or ``raise NotImplementedError``) and its
grader, which prints "Exercise N.k not attempted yet: ..." until the stub is filled in, so the student edition
runs top to bottom (``pytest --nbval-lax OUT`` with the package installed). Appendix C, whose worked solutions are
all tagged ``solution``, keeps only its introduction.

Exit codes: 0 on success, 2 for a bad OUT (a file, not empty without --force, not writable), 1 if a chapter
cannot be read or written.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION, EXERCISE = "solution", "exercise"
# jupytext writes its own version into the header; the book's sources do not carry it
_VERSION_LINE = re.compile(r"^#\s+(format_version|jupytext_version): .*\n", re.MULTILINE)


class UsageError(Exception):
    """A bad command line: reported as one line, exit code 2."""


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def strip_solutions(nb) -> tuple[int, int]:
    """Remove the solution-tagged cells of ``nb`` in place and clear every output and execution count.

    Returns (solution cells removed, exercise cells kept).
    """
    kept = [cell for cell in nb.cells if SOLUTION not in tags(cell)]
    removed = len(nb.cells) - len(kept)
    for cell in kept:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.cells = kept
    nb.metadata.pop("widgets", None)
    return removed, sum(EXERCISE in tags(cell) for cell in kept)


def student_source(py: Path) -> tuple[str, int, int]:
    """The text of a chapter's jupytext source without its solution cells, and the two counts."""
    nb = jupytext.read(py)
    counts = strip_solutions(nb)
    text = _VERSION_LINE.sub("", jupytext.writes(nb, fmt="py:percent"))
    return text if text.endswith("\n") else text + "\n", *counts


def student_notebook(ipynb: Path):
    """A chapter's notebook without its solution cells, outputs and execution counts, and the two counts."""
    nb = nbformat.read(ipynb, as_version=4)
    counts = strip_solutions(nb)
    return nb, *counts


def check_out(out: Path, force: bool) -> None:
    """Refuse an OUT that is a file, a non-empty folder (without ``force``) or not writable; one-line errors."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} exists and is not empty; pass --force to write the chapters into it")
    existing = out if out.exists() else next(p for p in out.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {out}: {existing} is not a writable folder")


def chapter_files(chapters: Path) -> list[Path]:
    files = sorted(chapters.glob("[0-9][0-9]_*.py")) + sorted(chapters.glob("[0-9][0-9]_*.ipynb"))
    if not files:
        raise UsageError(f"no chapters NN_topic.py or NN_topic.ipynb in {chapters}")
    return files


def make_student_version(out: Path, chapters: Path = ROOT / "chapters", force: bool = False) -> dict:
    """Write the student edition of every chapter in ``chapters`` to ``out``.

    Returns {"files": number of files written, "solutions_removed": cells removed from the .ipynb notebooks,
    "exercises_kept": exercise cells kept in them}. Raises UsageError for a bad ``out`` and OSError if a file
    cannot be written.
    """
    check_out(out, force)
    files = chapter_files(chapters)
    out.mkdir(parents=True, exist_ok=True)
    removed = kept = 0
    for path in files:
        if path.suffix == ".py":
            text, _, _ = student_source(path)
            (out / path.name).write_text(text, encoding="utf-8")
        else:
            nb, r, k = student_notebook(path)
            removed, kept = removed + r, kept + k
            nbformat.write(nb, out / path.name)
    return {"files": len(files), "solutions_removed": removed, "exercises_kept": kept}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write the student edition to")
    parser.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    parser.add_argument(
        "--chapters", type=Path, default=ROOT / "chapters", help="the folder holding NN_topic.py/.ipynb"
    )
    args = parser.parse_args(argv)
    try:
        summary = make_student_version(args.out, args.chapters, args.force)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:  # an unreadable chapter, a full disk, a file that is not a notebook
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"wrote {summary['files']} files to {args.out}: {summary['solutions_removed']} solution cells removed, "
        f"{summary['exercises_kept']} exercise cells kept (counted in the notebooks)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
