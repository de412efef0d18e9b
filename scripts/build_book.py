"""Rebuild the executed notebooks from their jupytext sources: chapters/NN_topic.py -> NN_topic.ipynb.

    python scripts/build_book.py                 # every chapter
    python scripts/build_book.py chapters/01_forward_process.py

Each chapter is converted with jupytext, executed top to bottom in a fresh kernel (nbclient), and
written with its outputs; the wall time of each is printed. Set DDIM_BOOK_RECOMPUTE=1 to make the
chapters recompute their cached results instead of reading data/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def stable_ids(nb) -> None:
    """Give every cell an id derived from its type and source, so that rebuilding a notebook does not rewrite the
    ids of unchanged cells (jupytext draws new random ones each time, a diff that would hide the real changes)."""
    seen: dict[str, int] = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def build(py: Path, timeout: int = 900) -> float:
    nb = jupytext.read(py)
    stable_ids(nb)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(py.parent)}}
    ).execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # timestamps change on every run and would hide the real changes in a diff
        cell.metadata.pop("execution", None)
    nbformat.write(nb, py.with_suffix(".ipynb"))
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="chapter .py files (default: all)")
    args = parser.parse_args(argv)
    chapters = args.chapters or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
    total = 0.0
    for py in chapters:
        seconds = build(py.resolve())
        total += seconds
        print(f"{py.name:40s} {seconds:7.1f} s")
    print(f"{'total':40s} {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
