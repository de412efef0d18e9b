"""The named training presets (chapter 4 trains "mnist-small"; the shipped model is "mnist").

``get_config("mnist")`` is the recipe of the shipped MNIST model; the others are for tests, smoke runs and the
2-D chapters. Each refers to its network by name in ``ddim_book.models.UNET_CONFIGS``.
"""

from __future__ import annotations

from ddim_book.models import UNET_CONFIGS
from ddim_book.training.configs import TrainConfig

__all__ = ["CONFIG_NAMES", "get_config"]


def _mnist_small() -> TrainConfig:
    # The book's shipped MNIST model: 0.28M parameters, sized so that a 2-core CPU trains it to
    # recognisable digits in about an hour (about 1 s per step); a GPU does it in a minute or two.
    return TrainConfig(
        name="mnist-small",
        model_kind="unet",
        model=dict(UNET_CONFIGS["mnist-small"]),
        dataset="mnist",
        batch_size=64,
        lr=1e-3,
        warmup_steps=200,
        grad_clip=1.0,
        ema_decay=0.995,
        total_steps=4000,
        log_every=50,
        ckpt_every=250,
        sample_every=500,
    )


def _mnist() -> TrainConfig:
    # The recipe of the shipped MNIST model, chosen by the equal-budget comparison in BENCHMARKS.md: the
    # mnist-small network with PyTorch's default initialisation and a slower EMA that averages over the last
    # ~1,000 steps, trained on 2.94M images (327 passes over the 9,000 training digits) at a constant lr that
    # falls linearly to 0 over the last 10,000 steps ("Training longer" in BENCHMARKS.md measures each stage).
    return _mnist_small().replace(
        name="mnist",
        model={**_mnist_small().model, "init": "default"},
        ema_decay=0.999,
        total_steps=46000,
        lr_decay_steps=10000,
        ckpt_every=500,
        sample_every=2000,
    )


def _mnist_tiny() -> TrainConfig:
    # Small enough that a step takes milliseconds on a CPU; for tests and smoke runs, not for quality.
    return TrainConfig(
        name="mnist-tiny",
        model_kind="unet",
        model=dict(UNET_CONFIGS["mnist-tiny"]),
        dataset="mnist",
        batch_size=16,
        lr=1e-3,
        warmup_steps=20,
        ema_decay=0.99,
        total_steps=300,
        log_every=25,
        ckpt_every=100,
        sample_every=0,
        sample_steps=5,
        sample_n=16,
    )


def _toy_mlp() -> TrainConfig:
    return TrainConfig(
        name="toy-mlp",
        model_kind="mlp",
        model={"dim": 2},
        dataset="moons",
        dataset_size=8192,
        batch_size=256,
        lr=1e-3,
        warmup_steps=50,
        ema_decay=0.995,
        total_steps=2000,
        log_every=50,
        ckpt_every=500,
        sample_every=0,
        sample_steps=20,
        sample_n=512,
    )


_PRESETS = {"mnist": _mnist, "mnist-small": _mnist_small, "mnist-tiny": _mnist_tiny, "toy-mlp": _toy_mlp}
CONFIG_NAMES = tuple(_PRESETS)


def get_config(name: str, **overrides) -> TrainConfig:
    """A named preset (``CONFIG_NAMES``) with some fields replaced, e.g. ``get_config("toy-mlp", seed=3)``.

    Raises ValueError for an unknown name (listing the names) or an unknown field.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown config name {name!r}; choose one of {list(CONFIG_NAMES)}")
    return _PRESETS[name]().replace(**overrides)
