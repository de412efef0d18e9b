"""Sinusoidal time embeddings and the timestep checks shared by every denoiser.

The denoisers are called as ``model(x_t, t)`` with ``t`` an integer tensor of shape (B,) holding
timesteps in 1..T (the DDPM paper's 1-based convention; chapter 1). A network cannot use an integer
directly, so ``t`` is first mapped to the Transformer position encoding (Vaswani et al. 2017, section
3.5), which DDPM uses for its time conditioning (Ho et al. 2020, appendix B; chapter 4).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = ["SinusoidalTimeEmbedding", "prepare_timesteps", "is_compiling"]


def is_compiling() -> bool:
    """True while ``torch.compile`` is tracing (the value checks are skipped then)."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return bool(compiler.is_compiling())
    return bool(torch._dynamo.is_compiling())  # torch < 2.3


class SinusoidalTimeEmbedding(nn.Module):
    """Map integer timesteps t to ``[sin(t * w_k), cos(t * w_k)]``, k = 0..dim/2 - 1.

    The frequencies are ``w_k = max_period ** (-k / (dim/2))``: a geometric ladder from 1 rad per step
    down to 1/max_period rad per step, so nearby timesteps get nearby vectors and every t in 1..T gets
    a distinct one (Vaswani et al. 2017, sec. 3.5; DDPM appendix B; chapter 4).

    Args:
        dim: even embedding size, >= 2.
        max_period: the slowest wavelength, in timesteps.

    Input: t, integer tensor of shape (B,). Output: float32 tensor of shape (B, dim), values in [-1, 1].
    The frequencies are a cached float32 buffer, rebuilt in float32 whenever the module is moved or
    cast (even to half precision), and not saved in the state dict (it is derived).
    """

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
        if not max_period > 1:
            raise ValueError(f"max_period must be > 1, got {max_period!r}")
        self.dim, self.max_period = dim, float(max_period)
        self.register_buffer("frequencies", self._frequencies(torch.device("cpu")), persistent=False)

    def _frequencies(self, device: torch.device) -> torch.Tensor:
        half = self.dim // 2
        exponents = torch.arange(half, dtype=torch.float64, device="cpu") / half
        return torch.exp(-math.log(self.max_period) * exponents).to(device=device, dtype=torch.float32)

    def _apply(self, fn, *args, **kwargs):
        # Rebuild the frequencies after every move/cast: model.to(torch.bfloat16) would round them (an
        # angle error of radians at t = 1000) and to_empty() would leave them uninitialised.
        super()._apply(fn, *args, **kwargs)
        self.frequencies = self._frequencies(self.frequencies.device)
        return self

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # t in float32 even when the model runs in bf16: bf16 cannot tell t = 999 from t = 1000.
        angles = t.to(torch.float32)[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def prepare_timesteps(
    t: torch.Tensor | int, batch_size: int, T: int, device: torch.device, check_values: bool = True
) -> torch.Tensor:
    """Validate ``t`` and return it as an integer tensor of shape (batch_size,) on ``device``.

    Accepts a Python integer or a 0-d integer tensor (the same timestep for the whole batch, as in a
    sampler loop) or an integer tensor of shape (batch_size,). Values must lie in 1..T.

    The range check of a tensor costs one device synchronisation, so it runs only when
    ``check_values`` is True and ``torch.compile`` is not tracing.

    Raises:
        TypeError: t is not an integer (floating, boolean or complex tensors, floats, other objects).
        ValueError: t has the wrong shape, or values outside 1..T.
    """
    if isinstance(t, numbers.Integral) and not isinstance(t, bool):
        if check_values and not 1 <= int(t) <= T:
            raise ValueError(f"t must be in 1..T = 1..{T}, got {int(t)}")
        return torch.full((batch_size,), int(t), dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be an integer tensor of shape (B,) or a Python int, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(
            f"t must hold integer timesteps (e.g. torch.long), got dtype {t.dtype}; "
            "round and cast with t.long() if the values are whole numbers"
        )
    if t.dim() == 0:
        t = t.expand(batch_size)
    elif tuple(t.shape) != (batch_size,):
        raise ValueError(f"t must have shape ({batch_size},) to match the batch of x, or be 0-d; got {tuple(t.shape)}")
    t = t.to(device)
    if check_values and not is_compiling():
        if ((t < 1) | (t > T)).any():
            raise ValueError(f"t must be in 1..T = 1..{T}, got values from {int(t.min())} to {int(t.max())}")
    return t
