"""Checks for the exercises of chapter 4 (DDPM in practice: the U-Net's time embedding and Algorithm 2).

    from ddim_book.exercises import ch04
    ch04.check_time_embedding(my_embedding)   # (t, dim) -> (B, dim) sinusoidal embedding, DDPM appendix B
    ch04.check_ddpm_step(my_ddpm_step)        # (x_t, eps, t, z, variance) -> x_{t-1}, DDPM Algorithm 2

The references are :class:`ddim_book.models.SinusoidalTimeEmbedding` and the schedule's posterior
(:meth:`ddim_book.schedules.NoiseSchedule.q_posterior`); the step is graded against DDPM's linear schedule
(T = 1000) unless given another ``schedule``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.models import SinusoidalTimeEmbedding
from ddim_book.samplers import VARIANCES
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_ddpm_step", "check_time_embedding", "ddpm_step"]


def _embedding_cases() -> list[tuple[str, dict]]:
    every_37th = torch.arange(1, 1001, 37)
    return [
        ("dim = 16, t = tensor([1, 2, 500, 1000])", {"t": torch.tensor([1, 2, 500, 1000]), "dim": 16}),
        ("dim = 2 (one frequency, w_0 = 1), t = tensor([1, 3])", {"t": torch.tensor([1, 3]), "dim": 2}),
        ("dim = 8, t = tensor([7])", {"t": torch.tensor([7]), "dim": 8}),
        (f"dim = 32, t = 1, 38, ..., 963 ({every_37th.numel()} values)", {"t": every_37th, "dim": 32}),
    ]


def check_time_embedding(fn: Callable) -> str:
    """Grade ``fn(t, dim) -> emb``, the sinusoidal time embedding of the U-Net (DDPM appendix B; chapter 4).

    t: int64 tensor (B,) of timesteps in 1..1000; dim: an even int. ``emb`` must be (B, dim):
    ``[sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})]`` with h = dim / 2 and
    w_k = 10000^(-k / h). Compared with an absolute tolerance of 1e-3 (the reference works in float32).
    """
    graded = positional("check_time_embedding", fn, "t", "dim")

    def reference(t, dim):
        return SinusoidalTimeEmbedding(dim)(t)

    return compare(
        "check_time_embedding",
        lambda **kw: torch.as_tensor(graded(**kw)),
        reference,
        _embedding_cases(),
        rtol=0.0,
        atol=1e-3,
        hint=(
            "h = dim // 2 frequencies w_k = 10000 ** (-k / h) for k = 0..h-1 (so w_0 = 1); the angles are t * w_k "
            "with t itself (1-based, no shift); return torch.cat([sin(angles), cos(angles)], dim=1): all sines first"
        ),
        exercise="4.1",
    )


def ddpm_step(schedule: NoiseSchedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, z: torch.Tensor, variance: str):
    """The reference the exercise is graded against: :func:`ddim_book.samplers.ddpm_step` (DDPM Algorithm 2)."""
    return samplers.ddpm_step(schedule, x_t, eps, t, z, variance)


def _step_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(401)
    T = schedule.T
    x_t = torch.randn((2, 1, 4, 4), generator=g, dtype=torch.float64)
    eps = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
    z = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
    points = [torch.randn((5, 2), generator=g).float() for _ in range(3)]
    cases = []
    for variance in VARIANCES:
        for t in sorted({T, max(1, T // 2), min(2, T), 1}, reverse=True):
            note = " (the last step: z = 0)" if t == 1 else ""
            kwargs = {"x_t": x_t, "eps": eps, "t": t, "z": z, "variance": variance}
            cases.append((f"images, t = {t}, variance = {variance!r}{note}", kwargs))
    points_case = {"x_t": points[0], "eps": points[1], "t": max(1, T // 10), "z": points[2], "variance": "beta"}
    cases.append((f"2-D points in float32, t = {max(1, T // 10)}, variance = 'beta'", points_case))
    return cases


def check_ddpm_step(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x_t, eps, t, z, variance) -> x_{t-1}``, one step of DDPM Algorithm 2 (eq. (11); chapter 4).

    x_t, eps, z: tensors of one shape; t: an int in 1..T; variance: "beta_tilde" or "beta" (sigma_t^2).
    The step is x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z, except at t = 1
    where Algorithm 2 takes z = 0. Returns the "passed" message.
    """
    schedule = schedule_or_default(schedule)
    graded = positional("check_ddpm_step", fn, "x_t", "eps", "t", "z", "variance")
    return compare(
        "check_ddpm_step",
        graded,
        lambda **kw: ddpm_step(schedule, **kw),
        _step_cases(schedule),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "mean = (x_t - betas[t] / sqrt(1 - alpha_bars[t]) * eps) / sqrt(alphas[t]) (one step's alpha outside, "
            "the cumulative alpha_bar under the root); sigma_t = sqrt(posterior_variances[t]) for 'beta_tilde', "
            "sqrt(betas[t]) for 'beta'; no noise at t = 1"
        ),
        exercise="4.2",
    )
