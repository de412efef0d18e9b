"""Where the shipped files are: the MNIST test split, the model checkpoints and the cached results.

In a clone of the repository (and an editable install) they are the repository's ``data/`` folder; a wheel
(``pip install .``, or from a git URL, as Colab and course labs install) carries the same files inside the
package as ``ddim_book/_data``, found with :mod:`importlib.resources`. Two variables override the folders:
``$DDIM_BOOK_DATA`` (the folder that holds ``mnist/``) and ``$DDIM_BOOK_CHECKPOINTS``. Nothing here imports torch.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["checkpoint_dir", "mnist_dir", "results_dir", "shipped_data_dir"]

_REPOSITORY_DATA = Path(__file__).resolve().parents[1] / "data"


def shipped_data_dir() -> Path:
    """The folder of the shipped files: the repository's ``data/``, else the copy installed with the package."""
    if (_REPOSITORY_DATA / "mnist").is_dir():
        return _REPOSITORY_DATA
    return Path(str(resources.files("ddim_book") / "_data"))


def mnist_dir() -> Path:
    """``$DDIM_BOOK_DATA/mnist`` if that variable is set, else the shipped ``mnist/``."""
    data_dir = os.environ.get("DDIM_BOOK_DATA")
    return (Path(data_dir).expanduser() if data_dir else shipped_data_dir()) / "mnist"


def checkpoint_dir() -> Path:
    """``$DDIM_BOOK_CHECKPOINTS`` if set, else the shipped ``checkpoints/`` (models, manifest, model card)."""
    folder = os.environ.get("DDIM_BOOK_CHECKPOINTS")
    return Path(folder).expanduser() if folder else shipped_data_dir() / "checkpoints"


def results_dir() -> Path:
    """The shipped ``results/``: the cached tables and samples the chapters read."""
    return shipped_data_dir() / "results"
