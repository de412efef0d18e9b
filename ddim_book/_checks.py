"""Input validation shared by the package: clear messages that name the argument and its allowed range."""

from __future__ import annotations

import numbers

import numpy as np
import torch


def check_int_range(name: str, value, low: int, high: int) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def check_timesteps(t, T: int, name: str = "t") -> torch.Tensor:
    """Validate timesteps ``t`` (an int, or an integer tensor of any shape) against 1..T.

    Returns an int64 CPU-or-same-device tensor. Raises TypeError for floating ``t`` and ValueError
    for values outside 1..T, naming the first offending value.
    """
    if isinstance(t, bool):
        raise TypeError(f"{name} must be an integer or an integer tensor with values in 1..{T}, got {t!r}")
    if isinstance(t, numbers.Integral):
        check_int_range(name, t, 1, T)
        return torch.tensor(int(t), dtype=torch.long)
    if not isinstance(t, torch.Tensor):
        try:
            t = torch.as_tensor(t)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be an integer or an integer tensor, got {type(t).__name__}") from err
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers (timesteps 1..{T}), got dtype {t.dtype}")
    t = t.long()
    bad = (t < 1) | (t > T)
    if bool(bad.any()):
        raise ValueError(f"{name} must have values in 1..{T}, got {int(t[bad].flatten()[0])}")
    return t


def check_finite_nonneg(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {value!r}")
    value = float(value)
    if not (value >= 0.0 and value < float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Raise ValueError listing ``choices`` if ``value`` is not one of them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {listed}")
    return value


def check_model_output(eps, x: torch.Tensor, t: int) -> None:
    """The model must return a tensor of x's shape on x's device (the epsilon prediction)."""
    if not isinstance(eps, torch.Tensor):
        raise TypeError(f"model(x_t, t) must return a tensor, got {type(eps).__name__} at t={t}")
    if eps.shape != x.shape:
        raise ValueError(
            f"model output has shape {tuple(eps.shape)} but x_t has shape {tuple(x.shape)} (at t={t}); "
            "the model must predict epsilon with the shape of its input"
        )
    if eps.device != x.device:
        raise ValueError(f"model output is on {eps.device} but x_t is on {x.device} (at t={t})")


def as_float64(name: str, value, ndim: int | None = None) -> torch.Tensor:
    """``value`` (tensor, array or nested list) as a finite float64 CPU tensor with ``ndim`` dims (any if None)."""
    if isinstance(value, torch.Tensor):
        out = value.detach().cpu()
    else:
        try:
            out = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real array, got {type(value).__name__}") from err
    if out.is_complex() or out.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {out.dtype}")
    out = out.to(torch.float64)
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(out.shape)}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} holds NaN or infinite values")
    return out
