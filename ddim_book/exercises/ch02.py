"""Checks for the exercises of chapter 2 (the reverse posterior q(x_{t-1} | x_t, x_0)).

    from ddim_book.exercises import ch02
    ch02.check_q_posterior(my_posterior)            # (x0, x_t, t) -> (mu_tilde, beta_tilde), DDPM eqs. (6)-(7)
    ch02.check_posterior_mean_eps(my_mean_eps)      # (x_t, eps, t) -> mu_tilde in the eps form, DDPM eq. (10)
    ch02.check_skip_posterior(my_skip)              # (x0, x_t, t_prev, t) -> q(x_{t_prev} | x_t, x_0)

The references come from :class:`ddim_book.schedules.NoiseSchedule`; every check grades against
DDPM's linear schedule (T = 1000) unless given another ``schedule``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_posterior_mean_eps", "check_q_posterior", "check_skip_posterior", "skip_posterior"]


def _mean_and_full_variance(result) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, var) with var broadcast to the mean's shape, so a scalar, (B,) or (B, 1, ...) variance all grade."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"expected a pair (mean, variance), got {type(result).__name__}")
    mean, var = result
    if not isinstance(mean, torch.Tensor):
        raise TypeError(f"the mean must be a tensor, got {type(mean).__name__}")
    var = torch.as_tensor(var, dtype=torch.float64)
    if var.ndim == 1 and mean.ndim > 1 and var.shape[0] == mean.shape[0]:
        var = var.reshape(-1, *([1] * (mean.ndim - 1)))  # one variance per sample
    try:
        var = var.broadcast_to(mean.shape)
    except RuntimeError:
        raise ValueError(
            f"the variance has shape {tuple(var.shape)}, which does not broadcast to the mean's "
            f"shape {tuple(mean.shape)}"
        ) from None
    return mean, var


def _posterior_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(201)
    T = schedule.T
    x0 = torch.rand((3, 1, 4, 5), generator=g, dtype=torch.float64) * 2 - 1
    x_t = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    points0 = torch.randn((4, 2), generator=g).float()
    points_t = torch.randn((4, 2), generator=g).float()
    mixed = torch.tensor([1, min(2, T), T], dtype=torch.long)
    spread = torch.tensor([T, max(1, T // 2), 1, min(2, T)], dtype=torch.long)
    cases = [("images, t = 1 (an int; beta_tilde_1 = 0)", {"x0": x0, "x_t": x_t, "t": 1})]
    for t in sorted({min(2, T), max(1, T // 2), T} - {1}):
        cases.append((f"images, t = {t} (an int)", {"x0": x0, "x_t": x_t, "t": t}))
    cases.append((f"images, t = tensor({mixed.tolist()})", {"x0": x0, "x_t": x_t, "t": mixed}))
    cases.append(
        (f"2-D points in float32, t = tensor({spread.tolist()})", {"x0": points0, "x_t": points_t, "t": spread})
    )
    return cases


def check_q_posterior(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x0, x_t, t) -> (mean, variance)`` of q(x_{t-1} | x_t, x_0) (DDPM eqs. (6)-(7); chapter 2).

    x0, x_t: tensors (B, ...); t an int or an int64 tensor (B,) in 1..T. The variance may be a number,
    a tensor (B,) or anything that broadcasts to the mean's shape. Returns the "passed" message.
    """
    schedule = schedule_or_default(schedule)
    graded = positional("check_q_posterior", fn, "x0", "x_t", "t")
    return compare(
        "check_q_posterior",
        lambda **kw: _mean_and_full_variance(graded(**kw)),
        lambda **kw: _mean_and_full_variance(schedule.q_posterior(**kw)),
        _posterior_cases(schedule),
        rtol=1e-5,
        atol=1e-7,
        hint=(
            "mu_tilde = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t "
            "and beta_tilde = (1 - abar_{t-1}) / (1 - abar_t) beta_t, with abar_0 = 1, so at t = 1 the "
            "mean is x0 and the variance 0. Index the arrays by t and by t - 1."
        ),
        exercise="2.1",
    )


def _eps_reference(schedule: NoiseSchedule):
    """DDPM eq. (7) evaluated at the x0 that eps implies, x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""

    def reference(x_t, eps, t):
        ab = schedule.alpha_bars[t].item()
        x0_hat = (x_t - (1 - ab) ** 0.5 * eps) / ab**0.5
        return schedule.q_posterior(x0_hat, x_t, t)[0]

    return reference


def check_posterior_mean_eps(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x_t, eps, t) -> mu_tilde`` written with the noise (DDPM eq. (10), the mean of eq. (11); chapter 2):

        mu_tilde = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t).

    x_t, eps: float64 tensors (B, ...); t an int in 1..T. Returns the "passed" message.
    """
    schedule = schedule_or_default(schedule)
    g = torch.Generator().manual_seed(202)
    x_t = torch.randn((2, 1, 3, 3), generator=g, dtype=torch.float64)
    eps = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
    T = schedule.T
    steps = sorted({1, min(2, T), max(1, T // 20), max(1, T // 2), T})
    cases = [(f"t = {t}", {"x_t": x_t, "eps": eps, "t": t}) for t in steps]
    return compare(
        "check_posterior_mean_eps",
        positional("check_posterior_mean_eps", fn, "x_t", "eps", "t"),
        _eps_reference(schedule),
        cases,
        rtol=1e-6,
        atol=1e-8,
        hint=(
            "divide by sqrt(alphas[t]) (one step), but scale eps by betas[t] / sqrt(1 - alpha_bars[t]) "
            "(the whole way from x_0)."
        ),
        exercise="2.2",
    )


def skip_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t_prev: int, t: int):
    """Mean and variance of q(x_{t_prev} | x_t, x_0) for 0 <= t_prev < t <= T (exercise 2.3; chapter 2).

    A schedule whose only steps are alpha_bar_{t_prev} and alpha_bar_t jumps from t_prev to t in one step,
    with "alpha" = alpha_bar_t / alpha_bar_{t_prev}; its one-step posterior (DDPM eqs. (6)-(7)) is the
    skip posterior. For t_prev = 0 the jump starts at the data and the answer is (x0, 0).
    Returns (mean with x_t's shape, variance as a 0-d tensor).
    """
    for name, value in (("t_prev", t_prev), ("t", t)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int with 0 <= t_prev < t <= {schedule.T}, got {value!r}")
    if not 0 <= t_prev < t <= schedule.T:
        raise ValueError(f"t_prev and t must satisfy 0 <= t_prev < t <= {schedule.T}, got t_prev={t_prev}, t={t}")
    ab = schedule.alpha_bars
    if t_prev == 0:
        return NoiseSchedule.from_alpha_bars([ab[t].item()]).q_posterior(x0, x_t, 1)
    return NoiseSchedule.from_alpha_bars([ab[t_prev].item(), ab[t].item()]).q_posterior(x0, x_t, 2)


def check_skip_posterior(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x0, x_t, t_prev, t) -> (mean, variance)`` of q(x_{t_prev} | x_t, x_0) (exercise 2.3; chapter 2).

    x0, x_t: float64 tensors (B, ...); t_prev, t ints with 0 <= t_prev < t <= T. Returns the "passed" message.
    """
    schedule = schedule_or_default(schedule)
    g = torch.Generator().manual_seed(203)
    x0 = torch.rand((2, 1, 3, 3), generator=g, dtype=torch.float64) * 2 - 1
    x_t = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    T = schedule.T
    pairs = [(0, 1), (1, 2), (max(1, T // 100), max(2, T // 30)), (0, max(1, T // 2)), (max(1, T // 2), T), (1, T)]
    cases = [
        (f"t_prev = {k}, t = {t}", {"x0": x0, "x_t": x_t, "t_prev": k, "t": t})
        for k, t in dict.fromkeys(pairs)
        if k < t <= T
    ]
    graded = positional("check_skip_posterior", fn, "x0", "x_t", "t_prev", "t")
    return compare(
        "check_skip_posterior",
        lambda **kw: _mean_and_full_variance(graded(**kw)),
        lambda **kw: _mean_and_full_variance(skip_posterior(schedule, **kw)),
        cases,
        rtol=1e-6,
        atol=1e-8,
        hint=(
            "repeat the completing-the-square of section 2 with q(x_t | x_k) = N(sqrt(abar_t / abar_k) x_k, "
            "(1 - abar_t / abar_k) I) (k = t_prev) in place of the one-step kernel and q(x_k | x_0) as the prior."
        ),
        exercise="2.3",
    )
