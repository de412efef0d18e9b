"""Exercise checks for chapter 5: DDIM's non-Markovian forward process.

Every quantity here is a function of alpha_bar only (the DDIM paper's alpha; DDIM arXiv:2010.02502 v4):

- :func:`check_ddim_sigma`: sigma_t(eta) of DDIM eq. (16), against :func:`ddim_book.samplers.ddim_sigma`.
- :func:`check_posterior_coefs`: the coefficients (kappa_t, zeta_t) of the q_sigma posterior, DDIM eq. (7),
  written as N(kappa_t x_t + zeta_t x_0, sigma_t^2 I), against :func:`posterior_coefs`.
- :func:`check_max_eta`: the largest eta for which the "direction pointing to x_t" coefficient of a
  (possibly skipping) step stays real, against :func:`max_eta`.

The cases are 1-D float64 tensors of alpha_bar values taken from the package's schedules, one entry per
step, so a reader's function must work elementwise on tensors.
"""

from __future__ import annotations

import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_ddim_sigma", "check_max_eta", "check_posterior_coefs", "max_eta", "posterior_coefs"]


def posterior_coefs(alpha_bar_t: torch.Tensor, alpha_bar_prev: torch.Tensor, sigma: torch.Tensor):
    """(kappa_t, zeta_t) with q_sigma(x_prev | x_t, x_0) = N(kappa_t x_t + zeta_t x_0, sigma_t^2 I).

    kappa_t = sqrt(1 - a_prev - sigma^2) / sqrt(1 - a_t) and zeta_t = sqrt(a_prev) - sqrt(a_t) kappa_t,
    the solution of the undetermined-coefficients system of chapter 5 (DDIM eq. (7) regrouped).

    Args: float64 tensors of one shape; a = alpha_bar with 0 < a_t <= a_prev <= 1 and sigma^2 <= 1 - a_prev.
    Returns: a pair of tensors of that shape.
    """
    for name, value in (("alpha_bar_t", alpha_bar_t), ("alpha_bar_prev", alpha_bar_prev), ("sigma", sigma)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(value).__name__}")
    rest = 1 - alpha_bar_prev - sigma**2
    if bool((rest < -1e-12).any()):
        raise ValueError("sigma^2 must not exceed 1 - alpha_bar_prev (the direction coefficient would be imaginary)")
    kappa = rest.clamp_min(0).sqrt() / (1 - alpha_bar_t).sqrt()
    return kappa, alpha_bar_prev.sqrt() - alpha_bar_t.sqrt() * kappa


def max_eta(alpha_bar_t: torch.Tensor, alpha_bar_prev: torch.Tensor) -> torch.Tensor:
    """The largest eta with sigma_t(eta)^2 <= 1 - a_prev (DDIM eq. (16)): sqrt((1 - a_t) a_prev / (a_prev - a_t)).

    Args: float64 tensors of one shape with 0 < a_t < a_prev < 1 (for a_prev = 1, every eta is allowed).
    Returns: a tensor of that shape; every entry is >= 1, so eta in [0, 1] is always safe.
    """
    if not isinstance(alpha_bar_t, torch.Tensor) or not isinstance(alpha_bar_prev, torch.Tensor):
        raise TypeError("alpha_bar_t and alpha_bar_prev must be tensors")
    if not bool(((alpha_bar_t < alpha_bar_prev) & (alpha_bar_prev < 1)).all()):
        raise ValueError("max_eta needs alpha_bar_t < alpha_bar_prev < 1 for every entry")
    return ((1 - alpha_bar_t) * alpha_bar_prev / (alpha_bar_prev - alpha_bar_t)).sqrt()


def _steps(schedule: NoiseSchedule, taus: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_bar at tau_i, alpha_bar at tau_{i-1}) for the sampling steps tau_i -> tau_{i-1}, tau_0 = 0."""
    ab = schedule.alpha_bars
    prevs = [0, *taus[:-1]]
    return ab[taus].clone(), ab[prevs].clone()


def _cases(include_last: bool = True):
    """Consecutive steps, skipping sub-sequences and a second schedule; the step to t = 0 is optional."""
    linear, cosine = NoiseSchedule.linear(1000), NoiseSchedule.cosine(100)
    plans = [
        ("linear T=1000, every step", linear, list(range(1, 1001))),
        ("linear T=1000, uniform S=50 (skip 20)", linear, samplers.timesteps(1000, 50, "uniform")),
        ("linear T=1000, trailing S=10 (skip 100)", linear, samplers.timesteps(1000, 10, "trailing")),
        ("cosine T=100, quadratic S=8", cosine, samplers.timesteps(100, 8, "quadratic")),
    ]
    for label, schedule, taus in plans:
        a_t, a_prev = _steps(schedule, taus)
        if not include_last:
            a_t, a_prev = a_t[1:], a_prev[1:]
        yield label, a_t, a_prev


def check_ddim_sigma(fn) -> str:
    """Grade ``fn(alpha_bar_t, alpha_bar_prev, eta) -> sigma`` (DDIM eq. (16); chapter 5) on tensors."""
    cases = [
        (f"{label}, eta={eta}", {"alpha_bar_t": a_t, "alpha_bar_prev": a_prev, "eta": eta})
        for label, a_t, a_prev in _cases()
        for eta in (0.0, 0.5, 1.0)
    ]
    return compare(
        "ddim_sigma",
        positional("ddim_sigma", fn, "alpha_bar_t", "alpha_bar_prev", "eta"),
        samplers.ddim_sigma,
        cases,
        rtol=1e-9,
        atol=1e-12,
        hint="sigma_t(eta) = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev): eta scales the "
        "standard deviation (so eta^2 scales the variance), and a_prev = 1 at the last step gives sigma = 0.",
        exercise="5.1",
    )


def check_posterior_coefs(fn) -> str:
    """Grade ``fn(alpha_bar_t, alpha_bar_prev, sigma) -> (kappa, zeta)`` (DDIM eq. (7); chapter 5)."""
    cases = []
    for label, a_t, a_prev in _cases():
        for eta in (0.0, 0.5, 1.0):
            sigma = samplers.ddim_sigma(a_t, a_prev, eta)
            cases.append((f"{label}, eta={eta}", {"alpha_bar_t": a_t, "alpha_bar_prev": a_prev, "sigma": sigma}))
    return compare(
        "posterior_coefs",
        positional("posterior_coefs", fn, "alpha_bar_t", "alpha_bar_prev", "sigma"),
        posterior_coefs,
        cases,
        rtol=1e-9,
        atol=1e-12,
        hint="match variances, not standard deviations: kappa^2 (1 - a_t) + sigma^2 = 1 - a_prev, then "
        "zeta = sqrt(a_prev) - sqrt(a_t) kappa from the means. Return the pair (kappa, zeta).",
        exercise="5.2",
    )


def check_max_eta(fn) -> str:
    """Grade ``fn(alpha_bar_t, alpha_bar_prev) -> eta_max`` (exercise 5.3; chapter 5)."""
    cases = [(label, {"alpha_bar_t": a_t, "alpha_bar_prev": a_prev}) for label, a_t, a_prev in _cases(False)]
    return compare(
        "max_eta",
        positional("max_eta", fn, "alpha_bar_t", "alpha_bar_prev"),
        max_eta,
        cases,
        rtol=1e-9,
        atol=1e-12,
        hint="set 1 - a_prev - sigma_t(eta)^2 = 0 and solve for eta > 0; the factor (1 - a_prev) cancels.",
        exercise="5.3",
    )
