"""Epsilon-predicting denoisers eps_theta(x_t, t): the DDPM U-Net for images and a small MLP for 2-D data.

Every model is called as ``model(x_t, t)`` with integer timesteps t in 1..T and returns a tensor of
the shape of x_t (DDPM eq. (14); chapter 4). Kind ``"unet2d"`` wraps diffusers' ``UNet2DModel`` (the benchmark's
baseline; :mod:`ddim_book.models.unet2d`) and needs the optional ``[bench]`` extra.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ddim_book.models.embeddings import SinusoidalTimeEmbedding
from ddim_book.models.mlp import MLPDenoiser
from ddim_book.models.unet import UNET_CONFIGS, UNet, UNetConfig

__all__ = ["UNet", "UNetConfig", "UNET_CONFIGS", "MLPDenoiser", "SinusoidalTimeEmbedding", "build_model", "MODEL_KINDS"]

MODEL_KINDS = ("unet", "mlp", "unet2d")


def build_model(kind: str, **config: Any) -> nn.Module:
    """Build a denoiser from its kind and plain (JSON-friendly) keyword arguments.

    ``build_model("unet", **UNetConfig fields)`` or ``build_model("mlp", dim=2, hidden=128, ...)``.
    ``build_model(model.kind, **model.config_dict())`` rebuilds the architecture of ``model``.
    Raises ``ValueError`` for an unknown kind or unknown/invalid arguments.
    """
    if kind == "unet":
        return UNet(UNetConfig.from_dict(config))
    if kind == "mlp":
        known = ("dim", "hidden", "depth", "T", "time_embed_dim")
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"unknown MLPDenoiser arguments {unknown}; known arguments: {list(known)}")
        return MLPDenoiser(**config)
    if kind == "unet2d":
        from ddim_book.models.unet2d import DiffusersUNet  # imports diffusers only when asked for

        return DiffusersUNet(**config)
    raise ValueError(f"kind must be one of {list(MODEL_KINDS)}, got {kind!r}")
