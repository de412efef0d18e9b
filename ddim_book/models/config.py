"""The U-Net's configuration: a JSON-friendly dataclass and the named presets (chapter 4)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["UNetConfig", "UNET_CONFIGS"]

UNET_CONFIGS: dict[str, dict[str, Any]] = {
    # The one registry of networks: the training presets of ddim_book.training.presets refer to these by name.
    # The book's MNIST model: trains on a 2-core CPU (written out, although these are the UNetConfig defaults,
    # so that a training config records them).
    "mnist-small": {
        "base_channels": 16,
        "channel_mults": [1, 2, 2],
        "num_res_blocks": 1,
        "attention_resolutions": [7],
        "dropout": 0.1,
        "num_groups": 4,
    },
    # Half the width and one level less: a step takes milliseconds on a CPU; for tests and smoke runs.
    "mnist-tiny": {
        "base_channels": 8,
        "channel_mults": [1, 2],
        "num_res_blocks": 1,
        "attention_resolutions": [14],
        "dropout": 0.1,
    },
    # The DDPM paper's CIFAR10 network (35.7M parameters in the paper).
    "cifar10-ddpm": {
        "in_channels": 3,
        "image_size": 32,
        "base_channels": 128,
        "channel_mults": (1, 2, 2, 2),
        "num_res_blocks": 2,
        "attention_resolutions": (16,),
        "num_groups": 32,
    },
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet`; the defaults are the ``mnist-small`` config.

    ``channel_mults[i]`` scales ``base_channels`` at resolution ``image_size / 2**i``; attention runs at
    the resolutions (in pixels) listed in ``attention_resolutions`` and always in the middle block.
    ``use_scale_shift`` conditions the residual blocks with ``norm(h) * (1 + scale) + shift`` (improved
    DDPM) instead of DDPM's plain additive shift. ``init`` is ``"zero"`` (the last layer of every residual
    branch and the output convolution start at 0, so each branch starts as the identity; improved DDPM) or
    ``"default"`` (PyTorch's own initialisation of every layer; BENCHMARKS.md compares the two).
    ``T`` is the number of diffusion steps: the model
    accepts t in 1..T. Invalid values raise ``ValueError`` naming the field.
    """

    in_channels: int = 1
    out_channels: int | None = None
    image_size: int = 28
    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (7,)
    dropout: float = 0.1
    num_groups: int = 4
    num_heads: int = 1
    T: int = 1000
    use_scale_shift: bool = False
    init: str = "zero"

    def __post_init__(self) -> None:
        for name in ("channel_mults", "attention_resolutions"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, tuple(value))
        self.validate()

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Side length of the feature maps at each level, e.g. (28, 14, 7)."""
        return tuple(self.image_size // 2**level for level in range(len(self.channel_mults)))

    @property
    def channels(self) -> tuple[int, ...]:
        """Channel count at each level, ``base_channels * channel_mults[level]``."""
        return tuple(self.base_channels * mult for mult in self.channel_mults)

    @property
    def output_channels(self) -> int:
        return self.in_channels if self.out_channels is None else self.out_channels

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        for name in ("in_channels", "image_size", "base_channels", "num_res_blocks", "num_groups", "num_heads", "T"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.out_channels is not None and (not _is_int(self.out_channels) or self.out_channels < 1):
            raise ValueError(f"out_channels must be None or a positive integer, got {self.out_channels!r}")
        if self.base_channels % 2:
            raise ValueError(f"base_channels must be even (it sizes the time embedding), got {self.base_channels}")
        mults = self.channel_mults
        if not isinstance(mults, tuple) or not mults or not all(_is_int(m) and m >= 1 for m in mults):
            raise ValueError(f"channel_mults must be a non-empty tuple of positive integers, got {mults!r}")
        factor = 2 ** (len(mults) - 1)
        if self.image_size % factor:  # every downsampling must halve the side exactly
            raise ValueError(f"image_size={self.image_size} must be divisible by 2**(len(channel_mults)-1) = {factor}")
        for level, channels in enumerate(self.channels):
            if channels % self.num_groups:
                raise ValueError(
                    f"num_groups={self.num_groups} must divide base_channels * channel_mults[{level}] = {channels}"
                )
        attn = self.attention_resolutions
        if not isinstance(attn, tuple) or not all(_is_int(r) and r in self.resolutions for r in attn):
            raise ValueError(f"attention_resolutions={attn!r} must be taken from the resolutions {self.resolutions}")
        attention_channels = [c for c, r in zip(self.channels, self.resolutions) if r in attn]
        for channels in attention_channels + [self.channels[-1]]:  # the middle block always attends
            if channels % self.num_heads:
                raise ValueError(f"num_heads={self.num_heads} must divide the attention channel count {channels}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")
        if self.init not in ("zero", "default"):
            raise ValueError(f"init must be 'zero' or 'default', got {self.init!r}")
        if not isinstance(self.use_scale_shift, bool):
            raise ValueError(f"use_scale_shift must be a bool, got {self.use_scale_shift!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists); ``from_dict`` turns it back into an equal config."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> UNetConfig:
        """A preset from ``UNET_CONFIGS`` ("mnist-small", "mnist-tiny", "cifar10-ddpm"), with overrides."""
        if name not in UNET_CONFIGS:
            raise ValueError(f"unknown config name {name!r}; choose one of {sorted(UNET_CONFIGS)}")
        return cls.from_dict({**UNET_CONFIGS[name], **overrides})
