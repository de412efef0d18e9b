"""Latent-space helpers for DDIM's deterministic encoding; chapter 7."""

from __future__ import annotations

import torch


def slerp(z0: torch.Tensor, z1: torch.Tensor, xi) -> torch.Tensor:
    """Spherical linear interpolation between latents (DDIM sec. 5.3 and appendix D.5; chapter 7):

        slerp(z0, z1, xi) = sin((1 - xi) theta) / sin(theta) z0 + sin(xi theta) / sin(theta) z1,
        theta = arccos(<z0, z1> / (|z0| |z1|)).

    Args:
        z0, z1: tensors of one shape (any, e.g. (C, H, W)); treated as single vectors.
        xi: the weight of z1 (chapter 7's xi; not a schedule's alpha), a float in [0, 1], or a 1-D
            tensor/sequence of K such values.
    Returns:
        a tensor of z0's shape for a float xi, else (K, *z0.shape). Falls back to linear interpolation
        when z0 and z1 are (nearly) parallel.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 has shape {tuple(z0.shape)} but z1 has shape {tuple(z1.shape)}")
    scalar = isinstance(xi, (int, float))
    a = torch.as_tensor([xi] if scalar else xi, dtype=torch.float64)
    if a.ndim != 1 or not bool(((a >= 0) & (a <= 1)).all()):
        raise ValueError(f"xi must be a number or 1-D sequence of numbers in [0, 1], got {xi!r}")
    u, v = z0.double().flatten(), z1.double().flatten()
    cos = torch.dot(u, v) / (u.norm() * v.norm()).clamp_min(1e-300)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    a = a.to(u.device)[:, None]
    if float(torch.sin(theta)) < 1e-6:
        out = (1 - a) * u + a * v
    else:
        out = (torch.sin((1 - a) * theta) * u + torch.sin(a * theta) * v) / torch.sin(theta)
    out = out.reshape(-1, *z0.shape).to(z0.dtype)
    return out[0] if scalar else out
