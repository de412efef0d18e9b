"""One step of DDPM's sampler, Algorithm 2, written as the posterior step it is (chapter 4).

``samplers.ddpm_sample`` runs the whole chain with precomputed float coefficients; this module holds the single step
in its textbook form, the reference the chapter-4 exercise is graded against and a building block for readers who
write their own loops.
"""

from __future__ import annotations

import torch

from ddim_book._checks import check_choice, check_int_range
from ddim_book.schedules import NoiseSchedule

__all__ = ["VARIANCES", "ddpm_step"]

VARIANCES = ("beta_tilde", "beta")


def ddpm_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    noise: torch.Tensor | None = None,
    variance: str = "beta_tilde",
) -> torch.Tensor:
    """x_{t-1} from x_t: the posterior mean mu_tilde(x0_hat, x_t) of DDPM eq. (7) plus sigma_t z (DDPM Algorithm 2).

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (DDPM eq. (15)); with it the mean of eq. (7) equals eq. (11),
    (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) (chapter 4). sigma_t^2 is beta_tilde_t (``"beta_tilde"``)
    or beta_t (``"beta"``), DDPM sec. 3.2. At t = 1 the noise is left out, as in Algorithm 2.

    Args:
        x_t, eps: float tensors of one shape (B, ...); eps is the model's prediction at (x_t, t).
        t: an int in 1..T.
        noise: the standard normal z, x_t's shape (ignored at t = 1; required otherwise).
        variance: "beta_tilde" or "beta".
    Returns:
        x_{t-1}, computed in float64 and returned in x_t's dtype and shape.
    """
    check_choice("variance", variance, VARIANCES)
    t = check_int_range("t", t, 1, schedule.T)
    if t > 1 and (noise is None or noise.shape != x_t.shape):
        raise ValueError(f"noise must be a tensor of x_t's shape {tuple(x_t.shape)} for t > 1")
    ab = schedule.alpha_bars[t]
    x0_hat = (x_t.double() - (1 - ab).sqrt() * eps.double()) / ab.sqrt()
    mean = schedule.q_posterior(x0_hat, x_t.double(), t)[0]
    if t == 1:  # Algorithm 2: z = 0 at the last step
        return mean.to(x_t.dtype)
    var = schedule.posterior_variances[t] if variance == "beta_tilde" else schedule.betas[t]
    return (mean + var.sqrt() * noise.double()).to(x_t.dtype)
