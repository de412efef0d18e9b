"""A small MLP epsilon-predictor for low-dimensional (e.g. 2-D toy) data; chapters 2-3.

Same interface as the U-Net: ``model(x_t, t)`` with x_t of shape (B, dim) and integer t in 1..T,
returning the predicted noise eps_theta(x_t, t) of DDPM eq. (14), shape (B, dim).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddim_book.models.embeddings import SinusoidalTimeEmbedding, prepare_timesteps

__all__ = ["MLPDenoiser"]


class MLPDenoiser(nn.Module):
    """eps_theta(x, t) as an MLP with the time embedding added to every hidden layer.

    ``emb = MLP(sinusoid(t))`` (DDPM appendix B; chapter 4); then, for each of the ``depth`` hidden
    layers, ``h = SiLU(W_l h + U_l emb)`` starting from ``h = x``; finally a linear map back to ``dim``.
    Adding the time to every layer (not only the input) keeps the output strongly t-dependent, which
    matters because the noise to predict changes with t.

    Args:
        dim: data dimension (>= 1).
        hidden: width of the hidden layers (>= 1).
        depth: number of hidden layers (>= 1).
        T: number of diffusion steps; t must be in 1..T.
        time_embed_dim: size of the sinusoidal embedding (even, >= 2).

    ``self.check_inputs = False`` skips the range check of t (one device sync per call).
    """

    kind = "mlp"

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, T: int = 1000, time_embed_dim: int = 32):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("T", T)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(time_embed_dim, bool) or not isinstance(time_embed_dim, int):
            raise ValueError(f"time_embed_dim must be an even integer >= 2, got {time_embed_dim!r}")
        if time_embed_dim < 2 or time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be an even integer >= 2, got {time_embed_dim!r}")
        self.dim, self.hidden, self.depth, self.T, self.time_embed_dim = dim, hidden, depth, T, time_embed_dim
        self.check_inputs = True
        self.time_embed = SinusoidalTimeEmbedding(time_embed_dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.layers = nn.ModuleList([nn.Linear(dim if i == 0 else hidden, hidden) for i in range(depth)])
        self.time_projs = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(depth)])
        self.output = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """x: float (B, dim); t: integer (B,) or one int / 0-d tensor. Returns eps_theta, (B, dim)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            kind = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"x must be a floating-point tensor, got {kind}")
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        t = prepare_timesteps(t, x.shape[0], self.T, x.device, self.check_inputs)
        emb = F.silu(self.time_mlp(self.time_embed(t).to(x.dtype)))
        h = x
        for layer, time_proj in zip(self.layers, self.time_projs):
            h = F.silu(layer(h) + time_proj(emb))
        return self.output(h)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments: ``build_model("mlp", **model.config_dict())`` rebuilds the architecture."""
        return {
            "dim": self.dim,
            "hidden": self.hidden,
            "depth": self.depth,
            "T": self.T,
            "time_embed_dim": self.time_embed_dim,
        }
