"""The models that ship with the book, in ``data/checkpoints/``, listed in ``manifest.json``.

Each manifest entry records the file, its sha256 and size, the training config and schedule, the number
of training steps, the wall time and the machine, and the command that made it. Loading checks the
sha256 first and reads the weights with ``torch.load(weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ddim_book import paths

MANIFEST = "manifest.json"


class PretrainedError(RuntimeError):
    """A shipped model is missing, unknown or does not match its recorded checksum."""


def checkpoint_dir() -> Path:
    """The shipped checkpoints (:func:`ddim_book.paths.checkpoint_dir`), or ``$DDIM_BOOK_CHECKPOINTS`` when set."""
    return paths.checkpoint_dir()


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root=None) -> dict:
    """The parsed manifest: ``{"models": {name: entry}}``."""
    path = Path(root or checkpoint_dir()) / MANIFEST
    if not path.exists():
        raise PretrainedError(f"no model manifest at {path}: the shipped checkpoints are missing from this checkout")
    return json.loads(path.read_text())


def entry(name: str, root=None) -> dict:
    """The manifest entry of a shipped model; PretrainedError listing the names if unknown."""
    models = manifest(root)["models"]
    if name not in models:
        raise PretrainedError(f"unknown pretrained model {name!r}; shipped: {sorted(models)}")
    return models[name]


def path_of(name: str, root=None, verify: bool = True) -> Path:
    """The file of a shipped model, its sha256 checked against the manifest."""
    root = Path(root or checkpoint_dir())
    e = entry(name, root)
    path = root / e["file"]
    if not path.exists():
        raise PretrainedError(f"{path} is missing; restore it with `git checkout -- {e['file']}` in data/checkpoints")
    if verify:
        digest = sha256_of(path)
        if digest != e["sha256"]:
            raise PretrainedError(
                f"{path} has sha256 {digest[:16]}..., the manifest records {e['sha256'][:16]}...: "
                "the file is corrupt or was replaced; restore it from the repository or retrain it "
                f"with: {e.get('command', 'see the manifest')}"
            )
    return path


def load(name: str = "mnist", device="cpu", root=None):
    """Load a shipped denoiser: ``(model in eval mode on device, NoiseSchedule)``.

    ``pretrained.load("mnist")`` is the EMA U-Net described by ``data/checkpoints/MODEL_CARD.md``.
    """
    from ddim_book.checkpoints import load_model

    return load_model(path_of(name, root), device=device)
