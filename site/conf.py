"""Sphinx configuration of the book's website; `python scripts/build_site.py` builds it into _site/.

The chapters are read as executed notebooks (myst-nb, never re-executed). MathJax 3 comes from the PyPI package
`sphinx-mathjax-offline` and is copied into the site's _static/, and the furo theme uses system fonts, so a page
loads nothing from the network.
"""

from importlib import metadata
from pathlib import Path

project = "ddim-book"
html_title = "ddim-book: DDPM and DDIM, derived and run"
author = "the ddim-book authors"
copyright = "ddim-book authors, MIT licence"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints"]

nb_execution_mode = "off"  # the notebooks in chapters/ are stored with their outputs
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_copy_source = False
html_show_sourcelink = False


def _mathjax_static_dir() -> str:
    """The folder of the installed sphinx-mathjax-offline package that holds mathjax/ (MathJax 3.2.2)."""
    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        raise RuntimeError("MathJax for offline use is missing: pip install -e '.[site]'") from None
    static = Path(dist.locate_file("sphinx-mathjax-offline/static"))
    if not (static / "mathjax" / "tex-chtml.js").is_file():
        raise RuntimeError(f"no mathjax/tex-chtml.js under {static}; reinstall sphinx-mathjax-offline")
    return str(static)


html_static_path = [_mathjax_static_dir()]  # copied into _static/, so _static/mathjax/tex-chtml.js
mathjax_path = "mathjax/tex-chtml.js"  # relative: served from the site's own _static/
