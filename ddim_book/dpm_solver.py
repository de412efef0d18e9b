"""Exponential-integrator samplers for DDIM's ODE: DPM-Solver (Lu et al. 2022, arXiv:2206.00927); chapter 9.

Write x_bar = x / sqrt(alpha_bar) and sigma = sqrt((1 - alpha_bar) / alpha_bar) = exp(-lambda), where lambda is
half the log signal-to-noise ratio. This sigma is chapter 7's ODE time (DDIM eq. (14)), not the noise standard
deviation sigma_t of DDIM eq. (12). The ODE that DDIM's eta = 0 sampler discretises (DDIM eq. (14); chapter 7)
is d x_bar / d sigma = eps(x_t, t), and its exact solution from a noisier time s to a cleaner time t is

    x_bar_t = x_bar_s + int_{sigma_s}^{sigma_t} eps d sigma = x_bar_s - int_{lam_s}^{lam_t} e^(-lam) eps d lam

(DPM-Solver eq. (3.4) in the book's notation: the linear part of the ODE in x is integrated exactly). A rule is
a polynomial model of eps over the step, integrated exactly; chapter 9 derives the weights in sympy:

- order 1 (eps constant): x_bar_t = x_bar_s + (sigma_t - sigma_s) eps_s. This is DDIM eq. (12) with eta = 0.
- order 2, multistep (the "2M" form): eps linear through this step's and the previous step's evaluation,
  one network evaluation per step. ``expand_in="lambda"`` is DPM-Solver's choice (Taylor in lambda):
      x_bar_t = x_bar_s - (sigma_s - sigma_t) eps_s - (sigma_s - sigma_t (1 + h)) (eps_s - eps_p) / (lam_s - lam_p),
  h = lambda_t - lambda_s; ``expand_in="sigma"`` makes eps linear in sigma instead (Adams-Bashforth in sigma):
      x_bar_t = x_bar_s + (sigma_t - sigma_s) eps_s + (sigma_t - sigma_s)^2 / 2 * (eps_s - eps_p) / (sigma_s - sigma_p).
  The first step has no previous evaluation and is first order. The last step goes to t = 0, where the network
  is not defined and lambda is infinite; a model linear in lambda over [lambda_s, inf) leaves an error of order
  sigma_s^2, which caps the whole run at first order (chapter 9), so the last step is linear in sigma for both.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from ddim_book._checks import check_choice, check_model_output
from ddim_book._sampling import check_schedule, check_start, t_batches, trusted_timesteps
from ddim_book.schedules import NoiseSchedule
from ddim_book.subsequences import timesteps

__all__ = ["EXPANSIONS", "dpm_solver_coefficients", "dpm_solver_sample"]

EXPANSIONS = ("lambda", "sigma")


def dpm_solver_coefficients(sigma_s: float, sigma_t: float, sigma_p: float | None, expand_in: str = "lambda"):
    """(c1, c2) with x_bar_t = x_bar_s + c1 * eps_s + c2 * (eps_s - eps_p); c2 = 0 for a first-order step.

    ``sigma_p`` is sigma at the previous evaluation (None: first order); ``sigma_t = 0`` is the last step to the data.
    """
    c1 = sigma_t - sigma_s
    if sigma_p is None:
        return c1, 0.0
    if expand_in == "sigma" or sigma_t == 0.0:
        return c1, 0.5 * (sigma_t - sigma_s) ** 2 / (sigma_s - sigma_p)
    lam_s, lam_t, lam_p = -math.log(sigma_s), -math.log(sigma_t), -math.log(sigma_p)
    return c1, -(sigma_s - sigma_t * (1.0 + lam_t - lam_s)) / (lam_s - lam_p)


@torch.inference_mode()
def dpm_solver_sample(
    model,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    steps: int = 20,
    order: int = 2,
    spacing: str = "uniform",
    expand_in: str = "lambda",
    progress: bool = True,
    callback=None,
):
    """Generate by solving DDIM's ODE with the multistep exponential integrator of the given order (chapter 9).

    Conventions as in :func:`~ddim_book.samplers.ddim_sample`: 1-based timesteps tau_1 < ... < tau_S from
    :func:`~ddim_book.samplers.timesteps`, the last step to alpha_bar_0 = 1, deterministic.

    Args:
        model: ``model(x_t, t) -> eps`` with t int64 (B,) in 1..T.
        schedule: the :class:`NoiseSchedule` the model was trained with.
        x_T: the starting noise (B, ...); its dtype and device are used throughout.
        steps: S, the number of steps and of network evaluations (one per step, for every order).
        order: 1 (exactly DDIM with eta = 0) or 2 (the multistep rule of the module docstring).
        spacing: "uniform", "quadratic" or "trailing".
        expand_in: "lambda" (DPM-Solver-2M) or "sigma"; how order 2 models eps between evaluations.
        progress: show a progress bar.
        callback: called as ``callback(i, t, x)`` after step i = 0..S-1 with the new x at timestep t
            (t = 0 after the last step), e.g. to compare the state before the last step with another solver.
    Returns:
        x_0 with x_T's shape.
    """
    check_schedule(schedule, model)
    check_start("x_T", x_T, None, model)
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    check_choice("expand_in", expand_in, EXPANSIONS)
    taus = timesteps(schedule.T, steps, spacing)
    ab = schedule.alpha_bars.tolist()
    times = [*reversed(taus), 0]  # tau_S, ..., tau_1, then 0
    sigma = [math.sqrt((1.0 - ab[t]) / ab[t]) for t in times]
    coefs = []
    for i in range(len(taus)):
        sigma_p = sigma[i - 1] if order == 2 and i > 0 else None
        coefs.append(dpm_solver_coefficients(sigma[i], sigma[i + 1], sigma_p, expand_in))
    t_batch = t_batches(times[:-1], x_T)
    x, eps_prev = x_T, None
    with trusted_timesteps(model, schedule.T):
        for i in tqdm(range(len(taus)), desc=f"DPM-Solver-{order} S={steps}", disable=not progress, leave=False):
            eps = model(x, t_batch[i])
            check_model_output(eps, x, times[i])
            c1, c2 = coefs[i]
            x_bar = x / ab[times[i]] ** 0.5 + c1 * eps
            if c2:
                x_bar = x_bar + c2 * (eps - eps_prev)
            x = ab[times[i + 1]] ** 0.5 * x_bar
            eps_prev = eps
            if callback is not None:
                callback(i, times[i + 1], x)
    return x
