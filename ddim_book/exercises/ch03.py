"""Checks for the exercises of chapter 3 (the training objective), with their reference implementations.

    from ddim_book.exercises import ch03
    ch03.check_gaussian_kl(my_gaussian_kl)     # my_gaussian_kl(mean1, var1, mean2, var2) -> KL, elementwise
    ch03.check_loss_weight(my_loss_weight)     # my_loss_weight(schedule, t, variance) -> w_t of DDPM eq. (12)
    ch03.check_mu_from_eps(my_mu_from_eps)     # my_mu_from_eps(schedule, x_t, t, eps) -> mu_theta of DDPM eq. (11)

Each check calls the reader's function on a fixed set of cases and raises :class:`ExerciseError` naming the
first case that disagrees with the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book._checks import check_choice, check_timesteps
from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_gaussian_kl", "check_loss_weight", "check_mu_from_eps", "gaussian_kl", "loss_weight", "mu_from_eps"]

VARIANCES = ("beta", "beta_tilde")


def gaussian_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise (chapter 3, derived in sympy; DDPM eq. (5)'s terms).

    = 0.5 * (log(var2 / var1) + (var1 + (mean1 - mean2)^2) / var2 - 1), in nats. Arguments are tensors or
    floats that broadcast together; variances must be > 0. Sum over coordinates for isotropic Gaussians.
    """
    mean1, var1, mean2, var2 = (torch.as_tensor(v, dtype=torch.float64) for v in (mean1, var1, mean2, var2))
    if not bool((var1 > 0).all()) or not bool((var2 > 0).all()):
        raise ValueError("var1 and var2 must be > 0 (they are variances, not log-variances)")
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def loss_weight(schedule: NoiseSchedule, t: int, variance: str = "beta") -> float:
    """w_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)), the weight of DDPM eq. (12); chapter 3.

    ``variance`` picks sigma_t^2 = beta_t ("beta", any t in 1..T) or beta_tilde_t ("beta_tilde", t in 2..T:
    beta_tilde_1 = 0 makes the weight infinite). Returns a float.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    check_choice("variance", variance, VARIANCES)
    t = int(check_timesteps(t, schedule.T))
    if variance == "beta_tilde" and t < 2:
        raise ValueError("with variance='beta_tilde' t must be >= 2 (beta_tilde_1 = 0 makes the weight infinite)")
    beta, alpha, alpha_bar = (float(v[t]) for v in (schedule.betas, schedule.alphas, schedule.alpha_bars))
    sigma2 = beta if variance == "beta" else float(schedule.posterior_variances[t])
    return beta**2 / (2 * sigma2 * alpha * (1 - alpha_bar))


def _coef(values: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
    """values[t] in like's dtype, shaped (B, 1, ..., 1) for a tensor t so that it broadcasts over like."""
    idx = check_timesteps(t, values.numel() - 1)
    out = values[idx].to(like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1))) if out.ndim else out


def mu_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t), DDPM eq. (11); chapter 3.

    x_t, eps: float tensors (B, ...); t: an int or an int tensor (B,) in 1..T. Returns x_t's shape and dtype.
    """
    beta, alpha, alpha_bar = (_coef(v, t, x_t) for v in (schedule.betas, schedule.alphas, schedule.alpha_bars))
    return (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()


# ----- checks ------------------------------------------------------------------------------------
def _kl_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(301)
    m1, m2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    v1 = torch.rand(6, generator=g, dtype=torch.float64) * 2 + 0.05
    v2 = torch.rand(6, generator=g, dtype=torch.float64) * 2 + 0.05
    one = torch.tensor(1.0, dtype=torch.float64)
    return [
        ("identical Gaussians N(0, 1) and N(0, 1)", {"mean1": 0 * one, "var1": one, "mean2": 0 * one, "var2": one}),
        ("unit variances, means 0 and 2", {"mean1": 0 * one, "var1": one, "mean2": 2 * one, "var2": one}),
        ("means 0, variances 0.25 and 4", {"mean1": 0 * one, "var1": 0.25 * one, "mean2": 0 * one, "var2": 4 * one}),
        ("six random pairs (tensors of shape (6,))", {"mean1": m1, "var1": v1, "mean2": m2, "var2": v2}),
        ("a (6,) mean against a scalar N(0, 1)", {"mean1": m1, "var1": v1, "mean2": 0 * one, "var2": one}),
    ]


def check_gaussian_kl(fn: Callable) -> str:
    """Grade ``fn(mean1, var1, mean2, var2)`` = KL(N(mean1, var1) || N(mean2, var2)) elementwise (chapter 3)."""
    return compare(
        "check_gaussian_kl",
        positional("check_gaussian_kl", fn, "mean1", "var1", "mean2", "var2"),
        gaussian_kl,
        _kl_cases(),
        hint=(
            "KL = 0.5 * (log(var2 / var1) + (var1 + (mean1 - mean2)**2) / var2 - 1). The arguments are "
            "VARIANCES; the first Gaussian is the one the expectation is taken under (KL is not symmetric)."
        ),
        exercise="3.1",
    )


def check_loss_weight(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(schedule, t, variance)`` = w_t of DDPM eq. (12) (chapter 3).

    Graded on ``schedule`` (default: DDPM's linear one, T = 1000) and on a short cosine schedule.
    """
    schedule = schedule_or_default(schedule)
    cosine = NoiseSchedule.cosine(50)
    cases = []
    given = f"{schedule.to_dict().get('kind', 'given')} T={schedule.T}"
    for sched, name in ((schedule, given), (cosine, "cosine T=50")):
        T = sched.T
        for t in sorted({1, min(2, T), max(1, T // 2), T}):
            cases.append((f"{name}, t = {t}, variance='beta'", {"schedule": sched, "t": t, "variance": "beta"}))
        for t in sorted({2, max(2, T // 2), T}) if T >= 2 else []:
            cases.append(
                (f"{name}, t = {t}, variance='beta_tilde'", {"schedule": sched, "t": t, "variance": "beta_tilde"})
            )
    return compare(
        "check_loss_weight",
        positional("check_loss_weight", fn, "schedule", "t", "variance"),
        loss_weight,
        cases,
        rtol=1e-6,
        atol=0.0,
        hint=(
            "w_t = beta_t**2 / (2 * sigma_t**2 * alpha_t * (1 - alpha_bar_t)) with sigma_t**2 = betas[t] or "
            "posterior_variances[t]; index the schedule's arrays by t itself (alpha_bars[0] = 1)."
        ),
        exercise="3.2",
    )


def _mu_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(303)
    T = schedule.T
    images = torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64)
    eps_images = torch.randn(images.shape, generator=g, dtype=torch.float64)
    points = torch.randn((4, 2), generator=g, dtype=torch.float64)
    eps_points = torch.randn(points.shape, generator=g, dtype=torch.float64)
    per_sample = torch.tensor([1, max(1, T // 4), max(1, T // 2), T], dtype=torch.long)
    return [
        ("images, t = 1", {"schedule": schedule, "x_t": images, "t": 1, "eps": eps_images}),
        (
            f"images, t = {max(1, T // 2)}",
            {"schedule": schedule, "x_t": images, "t": max(1, T // 2), "eps": eps_images},
        ),
        (f"images, t = {T}", {"schedule": schedule, "x_t": images, "t": T, "eps": eps_images}),
        (
            f"2-D points, t = tensor({per_sample.tolist()})",
            {"schedule": schedule, "x_t": points, "t": per_sample, "eps": eps_points},
        ),
    ]


def _mu_via_posterior(schedule: NoiseSchedule, x_t, t, eps):
    """The posterior mean mu_tilde(x0_hat, x_t) at x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a) (DDPM eqs. (7), (15))."""
    a = _coef(schedule.alpha_bars, t, x_t)
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return schedule.q_posterior(x0_hat, x_t, t)[0]


def check_mu_from_eps(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(schedule, x_t, t, eps)`` = mu_theta of DDPM eq. (11) (chapter 3), against the posterior mean
    ``schedule.q_posterior(x0_hat, x_t, t)`` at the x_0 implied by eps."""
    schedule = schedule_or_default(schedule)
    return compare(
        "check_mu_from_eps",
        positional("check_mu_from_eps", fn, "schedule", "x_t", "t", "eps"),
        _mu_via_posterior,
        _mu_cases(schedule),
        rtol=1e-6,
        atol=1e-8,
        hint=(
            "mu_theta = (x_t - betas[t] / sqrt(1 - alpha_bars[t]) * eps) / sqrt(alphas[t]): one step's alpha_t "
            "outside, the cumulative alpha_bar_t inside; reshape per-sample coefficients to (B, 1, ...)."
        ),
        exercise="3.3",
    )
