"""The DDPM U-Net epsilon-predictor eps_theta(x_t, t) (Ho et al. 2020, appendix B; chapter 4).

Layout, for the default ``mnist-small`` config on 28x28 digits (channels x resolution):

    input conv                      1 -> 16  @ 28
    down.0: res                       16 @ 28,   downsample -> 16 @ 14
    down.1: res                       32 @ 14,   downsample -> 32 @ 7
    down.2: res + attention           32 @ 7
    mid:    res, attention, res       32 @ 7
    up.2:   2 x (res + attention)     32 @ 7,    upsample   -> 32 @ 14
    up.1:   2 x res                   32 @ 14,   upsample   -> 32 @ 28
    up.0:   2 x res                   16 @ 28
    output: GroupNorm, SiLU, conv   16 -> 1  @ 28

Every activation the down path produces is kept and concatenated (skip connection) onto the input of
one up-path residual block, so an up level has ``num_res_blocks + 1`` blocks. ``UNet.describe()``
prints this walk with the actual shapes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddim_book.models.config import UNET_CONFIGS, UNetConfig
from ddim_book.models.embeddings import SinusoidalTimeEmbedding, prepare_timesteps

__all__ = ["UNet", "UNetConfig", "UNET_CONFIGS"]


def _zero_init(module: nn.Module, config: UNetConfig) -> nn.Module:
    """Zero a layer that ends a residual branch, so the branch starts as the identity (improved DDPM),
    unless ``config.init == "default"``, which keeps PyTorch's initialisation."""
    if config.init == "zero":
        for p in module.parameters():
            nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Residual block conditioned on time: DDPM appendix B (Wide ResNet block with GroupNorm); chapter 4.

    ``h = conv1(SiLU(norm1(x)))``; then ``h + shift(emb)`` (or ``norm2(h) * (1 + scale) + shift``);
    then ``conv2(dropout(SiLU(norm2(h))))``; output ``skip(x) + h``. Shapes: x (B, in_ch, H, W),
    emb (B, emb_dim), already passed through SiLU; output (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, config: UNetConfig):
        super().__init__()
        self.use_scale_shift = config.use_scale_shift
        self.norm1 = nn.GroupNorm(config.num_groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_proj = nn.Linear(emb_dim, 2 * out_ch if self.use_scale_shift else out_ch)
        self.norm2 = nn.GroupNorm(config.num_groups, out_ch)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = _zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1), config)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        shift = self.time_proj(emb)[:, :, None, None]
        if self.use_scale_shift:
            scale, shift = shift.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + shift)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H*W pixels, with a residual connection; DDPM appendix B.

    Each pixel's C channels give a query, key and value (1x1 convs);
    ``softmax(q k^T / sqrt(C / heads)) v`` mixes information across the whole image. x: (B, C, H, W).
    """

    def __init__(self, channels: int, config: UNetConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.norm = nn.GroupNorm(config.num_groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero_init(nn.Conv2d(channels, channels, 1), config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.num_heads, C // self.num_heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(dim=1)  # each (B, heads, H*W, C/heads)
        h = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


def downsample(channels: int) -> nn.Module:
    """Halve the resolution with a stride-2 3x3 conv: (B, C, H, W) -> (B, C, H/2, W/2)."""
    return nn.Conv2d(channels, channels, 3, stride=2, padding=1)


def upsample(channels: int) -> nn.Module:
    """Double the resolution: nearest-neighbour repeat, then a 3x3 conv. (B, C, H, W) -> (B, C, 2H, 2W)."""
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1))


class DownLevel(nn.Module):
    """``num_res_blocks`` x (res [+ attention]) at one resolution, then optionally a downsample.

    Appends every output to ``skips`` for the up path."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, config: UNetConfig, attend: bool, down: bool):
        super().__init__()
        n = config.num_res_blocks
        self.res = nn.ModuleList([ResBlock(in_ch if i == 0 else out_ch, out_ch, emb_dim, config) for i in range(n)])
        self.attn = nn.ModuleList([AttentionBlock(out_ch, config) for _ in range(n)] if attend else [])
        self.downsample = downsample(out_ch) if down else None

    def forward(self, h: torch.Tensor, emb: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for i, block in enumerate(self.res):
            h = block(h, emb)
            if len(self.attn) > 0:
                h = self.attn[i](h)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h)
            skips.append(h)
        return h


class UpLevel(nn.Module):
    """``num_res_blocks + 1`` x (concat a skip, res [+ attention]) at one resolution, then optionally upsample."""

    def __init__(self, in_chs: list[int], out_ch: int, emb_dim: int, config: UNetConfig, attend: bool, up: bool):
        super().__init__()
        self.res = nn.ModuleList([ResBlock(c, out_ch, emb_dim, config) for c in in_chs])
        self.attn = nn.ModuleList([AttentionBlock(out_ch, config) for _ in in_chs] if attend else [])
        self.upsample = upsample(out_ch) if up else None

    def forward(self, h: torch.Tensor, emb: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for i, block in enumerate(self.res):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        if self.upsample is not None:
            h = self.upsample(h)
        return h


class MiddleBlock(nn.Module):
    """res, attention, res at the lowest resolution."""

    def __init__(self, channels: int, emb_dim: int, config: UNetConfig):
        super().__init__()
        self.res1 = ResBlock(channels, channels, emb_dim, config)
        self.attn = AttentionBlock(channels, config)
        self.res2 = ResBlock(channels, channels, emb_dim, config)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.res2(self.attn(self.res1(h, emb)), emb)


class UNet(nn.Module):
    """The epsilon-predictor eps_theta(x_t, t) of DDPM eq. (11)-(14), architecture of appendix B; chapter 4.

    ``forward(x, t)``: x float (B, C, H, W) with C = ``in_channels``, H = W = ``image_size``; t integer
    timesteps in 1..T, shape (B,), or one int / 0-d tensor for the whole batch. Returns the predicted
    noise, (B, out_channels, H, W), in the dtype of the computation (bf16 under bf16 autocast).

    ``self.check_inputs = False`` skips the range check of t (one device sync per call).
    """

    kind = "unet"

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        if config is None:
            config = UNetConfig()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        config.validate()
        self.config = dataclasses.replace(config)  # a private copy: later edits to the caller's object are ignored
        self.check_inputs = True
        base, emb_dim = config.base_channels, 4 * config.base_channels
        self.time_embed = SinusoidalTimeEmbedding(base)
        self.time_mlp = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_conv = nn.Conv2d(config.in_channels, base, 3, padding=1)

        levels = len(config.channel_mults)
        skip_chs, ch = [base], base
        self.down = nn.ModuleList()
        for level, (out_ch, res) in enumerate(zip(config.channels, config.resolutions)):
            last = level == levels - 1
            attend = res in config.attention_resolutions
            self.down.append(DownLevel(ch, out_ch, emb_dim, config, attend, down=not last))
            skip_chs += [out_ch] * (config.num_res_blocks + (0 if last else 1))
            ch = out_ch
        self.mid = MiddleBlock(ch, emb_dim, config)
        up_levels = []
        for level in reversed(range(levels)):
            out_ch, res = config.channels[level], config.resolutions[level]
            in_chs = []
            for _ in range(config.num_res_blocks + 1):
                in_chs.append(ch + skip_chs.pop())
                ch = out_ch
            attend = res in config.attention_resolutions
            up_levels.append(UpLevel(in_chs, out_ch, emb_dim, config, attend, up=level > 0))
        self.up = nn.ModuleList(reversed(up_levels))  # up[level] works at the resolution of down[level]
        self.out_norm = nn.GroupNorm(config.num_groups, ch)
        self.out_conv = _zero_init(nn.Conv2d(ch, config.output_channels, 3, padding=1), config)

    def _check_x(self, x: Any) -> None:
        c, s = self.config.in_channels, self.config.image_size
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            kind = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"x must be a floating-point tensor, got {kind}")
        if x.dim() != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"x must have shape (B, {c}, {s}, {s}) for this UNetConfig, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        self._check_x(x)
        t = prepare_timesteps(t, x.shape[0], self.config.T, x.device, self.check_inputs)
        # SiLU once here stands for the SiLU in front of every block's time projection (DDPM appendix B).
        emb = F.silu(self.time_mlp(self.time_embed(t).to(x.dtype)))
        h = self.input_conv(x)
        skips = [h]
        for level in self.down:
            h = level(h, emb, skips)
        h = self.mid(h, emb)
        for level in range(len(self.up) - 1, -1, -1):
            h = self.up[level](h, emb, skips)
        return self.out_conv(F.silu(self.out_norm(h)))

    @torch.no_grad()
    def describe(self, x_shape: tuple[int, ...] | None = None) -> list[tuple[str, tuple[int, ...]]]:
        """Run one input of ``x_shape`` (default ``(1, in_channels, image_size, image_size)``) and return
        ``(block name, output shape)`` for every block, in the order the forward pass runs them."""
        cfg = self.config
        x_shape = (1, cfg.in_channels, cfg.image_size, cfg.image_size) if x_shape is None else tuple(x_shape)
        named = [
            (name, m)
            for name, m in self.named_modules()
            if isinstance(m, (ResBlock, AttentionBlock)) or name.endswith(("downsample", "upsample"))
        ]
        named = [("time_mlp", self.time_mlp), ("input_conv", self.input_conv)] + named + [("out_conv", self.out_conv)]
        shapes: list[tuple[str, tuple[int, ...]]] = []
        hooks = [
            m.register_forward_hook(lambda _m, _i, out, name=name: shapes.append((name, tuple(out.shape))))
            for name, m in named
        ]
        was_training = self.training
        p = next(self.parameters())
        try:
            self.eval()
            self(torch.zeros(x_shape, device=p.device, dtype=p.dtype), 1)
        finally:
            self.train(was_training)
            for hook in hooks:
                hook.remove()
        return shapes

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def config_dict(self) -> dict[str, Any]:
        """JSON-friendly config: ``build_model("unet", **model.config_dict())`` rebuilds the architecture."""
        return self.config.to_dict()
