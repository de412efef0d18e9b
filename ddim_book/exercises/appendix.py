"""Exercise checks for appendix A: how exact deterministic DDIM is with a perfect network.

For data x_0 ~ N(mu, s^2 I) the exact epsilon-predictor (:class:`ddim_book.oracles.GaussianOracle`)
makes every DDIM step (eta = 0, DDIM eq. (12)) an affine map x_prev = A_i x_t + b_i, so the whole sampler
is affine and the variance it produces from x_T ~ N(0, I) is the square of its slope.

- :func:`produced_variance`: that variance, measured by running :func:`ddim_book.samplers.ddim_sample`
  with the oracle on two starting points (exact up to float64 rounding: the map is affine).
- :func:`check_produced_variance`: grades a reader's closed form against it.
"""

from __future__ import annotations

import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_produced_variance", "produced_variance", "produced_map"]


def produced_map(schedule: NoiseSchedule, std: float, steps: int, spacing: str = "trailing", mean: float = 0.0):
    """(slope, intercept) of the affine map x_T -> x_0 that deterministic DDIM computes with the exact oracle.

    Runs ``samplers.ddim_sample`` (eta = 0) with ``GaussianOracle(schedule, mean, std, shape=(1,))`` from
    x_T = 0 and x_T = 1 in float64; the intercept is the output at 0 and the slope the difference.

    Args:
        schedule: the NoiseSchedule. std: the data standard deviation s > 0. mean: the data mean mu.
        steps: S, 1..T. spacing: "uniform", "quadratic" or "trailing" (see :func:`samplers.timesteps`).
    Returns:
        (slope, intercept) as Python floats.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    oracle = GaussianOracle(schedule, mean=float(mean), std=std, shape=(1,))
    x_T = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    out = samplers.ddim_sample(oracle, schedule, x_T, steps=steps, eta=0.0, spacing=spacing, progress=False)
    return (out[1, 0] - out[0, 0]).item(), out[0, 0].item()


def produced_variance(schedule: NoiseSchedule, std: float, steps: int, spacing: str = "trailing") -> float:
    """Var[x_0] that deterministic DDIM produces from x_T ~ N(0, 1) with the exact oracle of N(mu, std^2).

    It is slope^2 of :func:`produced_map` (the mean mu only shifts the output, so it is set to 0 here).
    Compare with the true variance std^2 (appendix A: it is never larger when the start has the
    variance of q(x_{tau_S}); with x_T ~ N(0, 1) it can exceed std^2 by the factor 1 / Var q(x_{tau_S})).
    """
    slope, _ = produced_map(schedule, std, steps, spacing)
    return slope**2


def check_produced_variance(fn) -> str:
    """Grade ``fn(schedule, std, steps, spacing) -> float``: the closed form of appendix A (float64)."""
    linear, cosine = NoiseSchedule.linear(1000), NoiseSchedule.cosine(200)
    plans = [
        (linear, 0.5, 1, "trailing"),
        (linear, 0.5, 10, "trailing"),
        (linear, 2.0, 100, "trailing"),
        (linear, 0.5, 5, "uniform"),
        (linear, 1.0, 50, "uniform"),
        (cosine, 0.3, 20, "quadratic"),
        (cosine, 1.5, 200, "trailing"),
    ]
    cases = [
        (
            f"{schedule.to_dict()['kind']} T={schedule.T}, std={std}, S={steps}, {spacing}",
            {"schedule": schedule, "std": std, "steps": steps, "spacing": spacing},
        )
        for schedule, std, steps, spacing in plans
    ]
    return compare(
        "produced_variance",
        positional("produced_variance", fn, "schedule", "std", "steps", "spacing"),
        produced_variance,
        cases,
        rtol=1e-8,
        atol=1e-14,
        hint="multiply A_i^2 over the steps tau_S -> ... -> tau_1 -> 0 (alpha_bar_0 = 1), with "
        "A_i = (sqrt(a a') s^2 + sqrt((1 - a)(1 - a'))) / (a s^2 + 1 - a), and start from variance 1 (x_T ~ N(0, 1)).",
        exercise="A.1",
    )
