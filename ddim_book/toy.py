"""2-D toy data for the fast chapters: two moons, a swiss roll and the oracle's Gaussian mixture.

Small 2-D data sets train in seconds on a CPU and can be drawn as scatter plots, so the chapters use them to
show the forward process, the samplers and the effect of eta before moving to MNIST.
"""

from __future__ import annotations

import functools
import math

import torch

from ddim_book._checks import check_choice, check_int_range

__all__ = ["TOY_NAMES", "toy_2d"]

TOY_NAMES: tuple[str, ...] = ("moons", "swiss_roll", "mixture")

# Noise standard deviations in the curves' own units, before standardising.
_MOONS_NOISE = 0.1
_SWISS_ROLL_NOISE = 0.4
_SWISS_ROLL_TURNS = (1.5 * math.pi, 4.5 * math.pi)  # angle range: one and a half turns


def _moons_curve(branch: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Noiseless two moons: branch 0 is the upper half circle, branch 1 the lower one, shifted to interlock."""
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1.0 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    return torch.where(branch[:, None] == 0, upper, lower)


def _swiss_roll_curve(angle: torch.Tensor) -> torch.Tensor:
    """Noiseless swiss roll: the spiral r = angle."""
    return torch.stack([angle * torch.cos(angle), angle * torch.sin(angle)], dim=1)


@functools.cache
def _standardisation(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-axis mean and standard deviation of a toy distribution (float64, shape (2,) each).

    The curve's moments under its uniform angle are integrated by the midpoint rule on a fine grid
    (error far below float32 resolution), then the isotropic noise variance is added. Using the
    distribution's moments rather than each sample's keeps every draw from the same distribution.
    """
    grid = (torch.arange(1 << 16, dtype=torch.float64) + 0.5) / (1 << 16)
    if name == "moons":
        angle = math.pi * grid
        points = torch.cat([_moons_curve(torch.zeros_like(angle), angle), _moons_curve(torch.ones_like(angle), angle)])
        noise = _MOONS_NOISE
    else:
        low, high = _SWISS_ROLL_TURNS
        points = _swiss_roll_curve(low + (high - low) * grid)
        noise = _SWISS_ROLL_NOISE
    mean = points.mean(dim=0)
    std = (points.var(dim=0, correction=0) + noise**2).sqrt()
    return mean, std


def toy_2d(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` points of a 2-D toy distribution; float32 tensor (n, 2).

    Args:
        name: ``"moons"`` (two interlocking half circles), ``"swiss_roll"`` (a noisy spiral) or
            ``"mixture"`` (the 2-D Gaussian mixture of :class:`ddim_book.oracles.GaussianMixtureOracle`,
            ``ring_2d()``; its exact epsilon is known, so samplers can be checked against it).
        n: number of points, >= 0.
        generator: a CPU ``torch.Generator``; the same seed gives the same points.

    "moons" and "swiss_roll" are standardised with their exact moments to mean 0 and variance 1 per axis.
    "mixture" is returned as the oracle defines it (roughly unit variance), unscaled, so that samples
    and the oracle's closed-form marginals describe the same distribution.
    """
    check_choice("name", name, TOY_NAMES)
    n = check_int_range("n", n, 0, 2**31 - 1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator, got one on {generator.device}")

    if name == "mixture":
        from ddim_book.oracles import GaussianMixtureOracle

        if n == 0:  # the oracle samples at least one point
            return torch.empty(0, 2)
        points = GaussianMixtureOracle.ring_2d().sample(n, t=0, generator=generator)
        return torch.as_tensor(points).to(torch.float32).reshape(n, 2)

    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    if name == "moons":
        branch = torch.randint(0, 2, (n,), generator=generator)
        angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        points = _moons_curve(branch, angle) + _MOONS_NOISE * noise
    else:
        low, high = _SWISS_ROLL_TURNS
        angle = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
        points = _swiss_roll_curve(angle) + _SWISS_ROLL_NOISE * noise
    mean, std = _standardisation(name)
    return ((points - mean) / std).to(torch.float32)
