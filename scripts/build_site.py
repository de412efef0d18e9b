"""Build the book as a static website from the executed notebooks, without re-executing them.

    python scripts/build_site.py              # writes _site/; open _site/index.html
    python scripts/build_site.py --out DIR    # writes DIR/ instead

Sphinx with myst-nb (configuration in site/) reads chapters/*.ipynb with their stored outputs, and site/*.md (the
front page and the references). MathJax is copied into the site from an installed package, so every page works
offline. Needs the `site` extra: pip install -e '.[site]'.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"  # conf.py, index.md, references.md
NEEDED = {"sphinx": "sphinx", "myst_nb": "myst-nb", "furo": "furo"}


def missing_builder() -> list[str]:
    """The distributions of the `site` extra that are not installed (empty when the site can be built)."""
    missing = [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]
    try:
        metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        missing.append("sphinx-mathjax-offline")
    return missing


def stage_sources(src: Path, chapters: Path = ROOT / "chapters") -> None:
    """Copy site/*.md into ``src`` and chapters/NN_topic.ipynb into ``src``/chapters, the tree Sphinx reads."""
    notebooks = sorted(chapters.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks NN_topic.ipynb in {chapters}")
    (src / "chapters").mkdir(parents=True)
    for md in SITE.glob("*.md"):
        shutil.copy2(md, src / md.name)
    for nb in notebooks:
        shutil.copy2(nb, src / "chapters" / nb.name)


def build(out: Path) -> int:
    """Build the HTML site into ``out`` (replacing an earlier build there); return the number of pages."""
    from sphinx.cmd.build import build_main

    if out.exists() and any(out.iterdir()) and not (out / ".buildinfo").exists():
        raise FileExistsError(f"{out} exists and is not a site built by this script; choose another --out")
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="ddim-book-site-") as tmp:  # myst-nb also writes beside the output
        src, doctrees, html = Path(tmp) / "src", Path(tmp) / "doctrees", Path(tmp) / "html"
        stage_sources(src)
        if build_main(["-b", "html", "-q", "-c", str(SITE), "-d", str(doctrees), str(src), str(html)]) != 0:
            raise RuntimeError("sphinx-build failed (its messages are above)")
        shutil.move(html, out)
    if (out / "_sources").is_dir() and not any((out / "_sources").iterdir()):
        (out / "_sources").rmdir()  # left empty: html_copy_source is off
    return len(list(out.rglob("*.html")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site)")
    args = parser.parse_args(argv)
    missing = missing_builder()
    if missing:
        print(
            f"error: the site builder is not installed ({', '.join(missing)}): pip install -e '.[site]'",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    try:
        pages = build(args.out.resolve())
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {pages} pages in {time.perf_counter() - start:.1f} s: open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
