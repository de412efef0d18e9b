"""The small MNIST classifier behind the book's sample-quality numbers (chapter 6, the eta x S table).

A LeNet-style network (LeCun et al. 1998: conv-pool-conv-pool-fc) trained on the book's 9,000 "train"
digits. Its penultimate layer, :meth:`LeNet.features`, is the feature space of the Fréchet LeNet Distance
(:mod:`ddim_book.metrics.frechet`); its softmax gives the confidence and class-coverage scores.

The shipped weights live in ``data/checkpoints/mnist_classifier.pt`` (float16, a plain dict of tensors and
numbers, read with ``torch.load(..., weights_only=True)``); ``mnist_classifier.json`` beside it records the
file's sha256, the training command and the accuracy. ``scripts/train_classifier.py`` regenerates both.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ddim_book._checks import check_finite_nonneg, check_int_range
from ddim_book._io import atomic_write, atomic_write_text
from ddim_book.pretrained import sha256_of

__all__ = [
    "CLASSIFIER_FORMAT",
    "ClassifierFileError",
    "LeNet",
    "accuracy",
    "check_images",
    "default_classifier_path",
    "load_classifier",
    "random_shift",
    "save_classifier",
    "sha256_of",
    "train_classifier",
]

CLASSIFIER_FORMAT = "ddim_book.mnist_classifier"
_FORMAT_VERSION = 1


class ClassifierFileError(RuntimeError):
    """The classifier's weight file or its JSON record is missing, unreadable, or fails its sha256 check."""


def default_classifier_path() -> Path:
    """``mnist_classifier.pt`` in the shipped checkpoints folder (its record is the ``.json`` beside it)."""
    from ddim_book.paths import checkpoint_dir

    return checkpoint_dir() / "mnist_classifier.pt"


def check_images(name: str, images, tol: float = 1e-5) -> torch.Tensor:
    """Validate a batch of MNIST-shaped images: a float tensor (N, 1, 28, 28), finite, values in [-1, 1].

    ``tol`` absorbs float rounding at the ends of the range; anything further out (an un-clipped sampler
    output, or 0..255 pixels) is an error, because the classifier was trained on [-1, 1] digits only.
    Returns the images as float32 on their own device.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"{name} must be a floating-point torch tensor of shape (N, 1, 28, 28), got {got}")
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28) or images.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, 1, 28, 28) with N >= 1, got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} holds NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -1.0 - tol or high > 1.0 + tol:
        raise ValueError(
            f"{name} must hold pixel values in [-1, 1], got values in [{low:.4g}, {high:.4g}]; "
            "map 0..255 pixels with ddim_book.data.to_model_range, or clip sampler output with .clamp(-1, 1)"
        )
    return images.float()


class LeNet(nn.Module):
    """conv(5x5)-BN-ReLU-maxpool-conv(5x5)-BN-ReLU-maxpool-fc-ReLU-fc for (N, 1, 28, 28) digits in [-1, 1].

    Batch norm (in eval mode a fixed per-channel affine map) makes the small network train in a few epochs.

    Shapes: 28x28 -> conv(pad 2) 28x28 x c1 -> pool 14x14 -> conv 10x10 x c2 -> pool 5x5 -> fc ``feature_dim``
    (the features) -> fc 10 (the logits).
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), feature_dim: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2 = (check_int_range("channels", c, 1, 1024) for c in channels)
        self.config = {"channels": [c1, c2], "feature_dim": check_int_range("feature_dim", feature_dim, 1, 4096)}
        self.config["dropout"] = float(dropout)
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, padding=2)
        self.norm1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.norm2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * 5 * 5, feature_dim)
        self.fc2 = nn.Linear(feature_dim, 10)
        self.dropout = nn.Dropout(dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations: x (N, 1, 28, 28) -> (N, feature_dim), after the ReLU of fc1."""
        h = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu(self.norm2(self.conv2(h))), 2)
        return F.relu(self.fc1(self.dropout(h.flatten(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for x (N, 1, 28, 28)."""
        return self.fc2(self.dropout(self.features(x)))


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of x (N, 1, H, W) by an independent integer offset in -max_shift..max_shift per axis.

    Pixels shifted in are background (-1). The offsets come from ``generator`` (CPU), so a seed fixes them.
    """
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, :, None]  # (N, H, 1)
    cols = (torch.arange(w, device=x.device) + dx)[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` (N, 1, 28, 28) in [-1, 1] whose arg-max class equals ``labels`` (N,) int64."""
    images = check_images("images", images)
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be a tensor of shape ({images.shape[0]},) to match images")
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    hits = 0
    for start in range(0, images.shape[0], batch_size):
        logits = classifier(images[start : start + batch_size].to(device))
        hits += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    classifier.train(was_training)
    return hits / images.shape[0]


def train_classifier(
    epochs: int = 15,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    max_shift: int = 2,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    max_steps: int | None = None,
    log: Callable[[dict], None] | None = None,
    **model_kwargs,
) -> tuple[LeNet, list[dict]]:
    """Train a :class:`LeNet` with AdamW and a cosine learning-rate decay; deterministic on the CPU.

    The global RNG is seeded inside ``torch.random.fork_rng`` (initial weights, dropout) and a separate seeded
    ``torch.Generator`` draws the epoch permutations of the data indices and the shifts, so the same ``seed``
    gives the same weights on the same machine and thread count, and the caller's RNG state is untouched.

    Args:
        epochs: passes over the data. seed: fixes everything random.
        max_shift: augmentation, random translations of up to this many pixels (0 switches it off).
        images, labels: training data, float32 (N, 1, 28, 28) in [-1, 1] and int64 (N,) in 0..9; default the
            book's 9,000 "train" digits (``ddim_book.data.mnist_dataset("train")``), never the held-out ones.
        max_steps: stop after this many optimiser steps (for smoke tests); None trains all epochs.
        log: called with each epoch's summary ``{"epoch", "loss", "train_accuracy_augmented", "lr"}``.
        model_kwargs: passed to :class:`LeNet` (``channels``, ``feature_dim``, ``dropout``).

    Returns:
        The trained model (eval mode, CPU, float32) and the list of epoch summaries.
    """
    epochs = check_int_range("epochs", epochs, 1, 10_000)
    seed = check_int_range("seed", seed, 0, 2**63 - 1)
    batch_size = check_int_range("batch_size", batch_size, 1, 1 << 20)
    max_shift = check_int_range("max_shift", max_shift, 0, 8)
    if check_finite_nonneg("lr", lr) == 0:
        raise ValueError("lr must be > 0")
    check_finite_nonneg("weight_decay", weight_decay)
    if max_steps is not None:
        max_steps = check_int_range("max_steps", max_steps, 1, 10**9)
    if images is None or labels is None:
        if images is not None or labels is not None:
            raise ValueError("pass both images and labels, or neither (the default is the 'train' part)")
        from ddim_book.data import mnist_dataset

        images, labels = mnist_dataset("train")
    images = check_images("images", images).cpu()
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],) or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor of shape ({images.shape[0]},)")
    labels = labels.long().cpu()
    if int(labels.min()) < 0 or int(labels.max()) > 9:
        raise ValueError("labels must be digits 0..9")

    n = images.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    history: list[dict] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LeNet(**model_kwargs)
        data_rng = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / total)))
        model.train()
        step = 0
        for epoch in range(epochs):
            order = torch.randperm(n, generator=data_rng)
            loss_sum, hits, seen = 0.0, 0, 0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                x = random_shift(images[idx], max_shift, data_rng)
                logits = model(x)
                loss = F.cross_entropy(logits, labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                loss_sum += float(loss.detach()) * idx.numel()
                hits += int((logits.argmax(1) == labels[idx]).sum())
                seen += idx.numel()
                if step >= total:
                    break
            summary = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy_augmented": hits / seen}
            summary["lr"] = opt.param_groups[0]["lr"]
            history.append(summary)
            if log is not None:
                log(summary)
            if step >= total:
                break
    return model.eval(), history


def _half(v: torch.Tensor) -> torch.Tensor:
    """Float tensors stored as float16 (halves the file; the features move by ~1e-3); integers kept."""
    v = v.detach().cpu()
    return v.to(torch.float16) if v.is_floating_point() else v.clone()


def save_classifier(model: LeNet, path: str | os.PathLike, record: dict | None = None) -> dict:
    """Write the weights (float16) to ``path`` and the JSON record (``path`` with ``.json``), both atomically.

    The record gets the file name, sha256, size and architecture added to ``record``; it is returned.
    """
    if not isinstance(model, LeNet):
        raise TypeError(f"model must be a LeNet, got {type(model).__name__}")
    path = Path(path)
    state = {
        "format": CLASSIFIER_FORMAT,
        "version": _FORMAT_VERSION,
        "config": dict(model.config),
        "state_dict": {k: _half(v) for k, v in model.state_dict().items()},
    }
    atomic_write(path, lambda f: torch.save(state, f))
    full = {"file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size}
    full["architecture"] = {"name": "LeNet", **model.config, "storage_dtype": "float16"}
    full.update(record or {})
    text = json.dumps(full, indent=2) + "\n"
    atomic_write_text(path.with_suffix(".json"), text)
    return full


def load_classifier(path: str | os.PathLike | None = None, device="cpu", verify: bool = True) -> LeNet:
    """Load a saved classifier (eval mode, float32) from ``path`` (default :func:`default_classifier_path`).

    The file is read with ``torch.load(..., weights_only=True)``, so no pickled code runs. With ``verify``,
    its sha256 must equal the one in the JSON record beside it (``path`` with suffix ``.json``).

    Raises:
        ClassifierFileError: the file or its record is missing, the sha256 differs, or the file is not a
            classifier saved by :func:`save_classifier`.
    """
    path = Path(path) if path is not None else default_classifier_path()
    remedy = "regenerate it with `python scripts/train_classifier.py` (or restore it from the repository)"
    if not path.is_file():
        raise ClassifierFileError(f"classifier weights {path} are missing; {remedy}")
    if verify:
        record_path = path.with_suffix(".json")
        try:
            expected = json.loads(record_path.read_text())["sha256"]
        except FileNotFoundError:
            raise ClassifierFileError(f"the record {record_path} of {path.name} is missing; {remedy}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ClassifierFileError(f"the record {record_path} has no readable 'sha256' ({err}); {remedy}") from None
        actual = sha256_of(path)
        if actual != expected:
            raise ClassifierFileError(
                f"classifier weights {path} fail their checksum: sha256 {actual}, but {record_path.name} "
                f"records {expected}; the file is corrupt or was replaced; {remedy}"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CLASSIFIER_FORMAT:
            raise ValueError(f"format is not {CLASSIFIER_FORMAT!r}")
        cfg = state["config"]
        model = LeNet(tuple(cfg["channels"]), cfg["feature_dim"], cfg["dropout"])
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()})
    except Exception as err:  # any unreadable or foreign file gets the same clear message
        raise ClassifierFileError(f"{path} is not a saved MNIST classifier ({type(err).__name__}: {err})") from err
    return model.to(device).eval()
