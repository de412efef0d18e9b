"""diffusers' ``UNet2DModel`` behind the book's denoiser interface: the baseline that ``ddim-book bench`` measures
our :class:`~ddim_book.models.UNet` against (model kind ``"unet2d"``; needs ``pip install -e '.[bench]'``).

Wrapped, it is called as ``model(x_t, t)`` with t in 1..T like every model of the book, so the Trainer, the
checkpoints and the samplers use it unchanged. diffusers counts timesteps from 0 (its ``alphas_cumprod[k]`` is our
``alpha_bars[k + 1]``, chapter 1's index convention), so our t reaches the network as t - 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ddim_book.models.embeddings import prepare_timesteps

__all__ = ["DiffusersUNet", "matched_unet2d", "unet2d_arguments"]

INSTALL_HINT = "the 'unet2d' model needs diffusers: pip install -e '.[bench]'"


def _unet2d_class():
    try:
        from diffusers import UNet2DModel
    except Exception as err:  # not installed, or broken by a missing dependency
        raise ImportError(f"{INSTALL_HINT} ({type(err).__name__}: {err})") from None
    return UNet2DModel


class DiffusersUNet(nn.Module):
    """``UNet2DModel(**unet2d_kwargs)`` as an epsilon-predictor eps_theta(x_t, t), t in 1..T (DDPM eq. (14)).

    Args:
        T: number of diffusion steps (the range check of t).
        **unet2d_kwargs: plain keyword arguments of ``diffusers.UNet2DModel`` (see :func:`unet2d_arguments`).

    ``forward(x, t)``: x float (B, C, H, W), t int or integer tensor (B,) in 1..T; returns eps of x's shape.
    ``self.check_inputs = False`` skips the range check of t (one device sync per call), as for ``UNet``.
    """

    kind = "unet2d"

    def __init__(self, T: int = 1000, **unet2d_kwargs: Any):
        super().__init__()
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be a positive integer, got {T!r}")
        self.T, self.unet2d_kwargs = T, dict(unet2d_kwargs)
        try:
            self.net = _unet2d_class()(**unet2d_kwargs)
        except TypeError as err:
            raise ValueError(f"invalid UNet2DModel arguments {sorted(unet2d_kwargs)}: {err}") from None
        self.check_inputs = True

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
            raise ValueError(f"x must be a float tensor of shape (B, C, H, W), got {getattr(x, 'shape', type(x))}")
        t = prepare_timesteps(t, x.shape[0], self.T, x.device, self.check_inputs)
        return self.net(x, t - 1, return_dict=False)[0]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def config_dict(self) -> dict[str, Any]:
        """``build_model("unet2d", **model.config_dict())`` rebuilds the architecture."""
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in self.unet2d_kwargs.items()}
        return {"T": self.T, **plain}


def unet2d_arguments(config, base: int, layers: int) -> dict:
    """``UNet2DModel`` keyword arguments mirroring a :class:`~ddim_book.models.UNetConfig` at width ``base`` and
    depth ``layers``: the same levels, attention at the same resolutions (one head of all channels when
    num_heads = 1), groups and dropout. Lists, not tuples, so that the result is plain data for a TrainConfig."""
    channels = [base * m for m in config.channel_mults]
    attend = [r in config.attention_resolutions for r in config.resolutions]
    heads_of = [c for c, a in zip(channels, attend) if a] + [channels[-1]]
    return dict(
        sample_size=config.image_size, in_channels=config.in_channels, out_channels=config.output_channels,
        block_out_channels=channels, layers_per_block=layers, norm_num_groups=config.num_groups,
        down_block_types=["AttnDownBlock2D" if a else "DownBlock2D" for a in attend],
        up_block_types=["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attend)],
        attention_head_dim=min(heads_of) // config.num_heads, dropout=config.dropout,
    )  # fmt: skip


def matched_unet2d(config) -> tuple[dict, dict]:
    """The ``UNet2DModel`` closest in parameter count to ``UNet(config)``: widths base +- 2 groups, 1 or 2 layers per
    block are tried. Returns (its :func:`unet2d_arguments`, a dict describing the search)."""
    from ddim_book.models.unet import UNet

    ours, cls, tried, arguments = UNet(config).num_parameters(), _unet2d_class(), [], []
    for base in sorted({config.base_channels + k * config.num_groups for k in range(-2, 3)}):
        if base <= 0:
            continue
        for layers in (1, 2):
            kwargs = unet2d_arguments(config, base, layers)
            n = sum(p.numel() for p in cls(**kwargs).parameters())
            tried.append({"block_out_channels": kwargs["block_out_channels"], "layers_per_block": layers,
                          "parameters": n, "relative_difference": n / ours - 1})  # fmt: skip
            arguments.append(kwargs)
    i = min(range(len(tried)), key=lambda j: abs(tried[j]["relative_difference"]))
    info = {"ours_parameters": ours, "theirs_parameters": tried[i]["parameters"], "settings": tried[i],
            "tried": tried, "within_10_percent": abs(tried[i]["relative_difference"]) <= 0.10}  # fmt: skip
    return arguments[i], info
