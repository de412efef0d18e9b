"""Checks for the exercises of chapter 9 (beyond DDIM: the exponential integrator).

    from ddim_book.exercises import ch09
    ch09.check_first_order_step(my_step)      # (x_s, eps, alpha_bar_s, alpha_bar_t) -> x_t, the eps-constant rule
    ch09.check_second_order_weights(my_w)     # (sigma_s, sigma_t, sigma_p, expand_in) -> (c1, c2), the 2M weights

The first-order step is compared with :func:`ddim_book.samplers.ddim_step` at eta = 0 (the chapter proves they
are the same map); the weights with :func:`ddim_book.dpm_solver.dpm_solver_coefficients`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ddim_book import samplers
from ddim_book.dpm_solver import dpm_solver_coefficients
from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_first_order_step", "check_second_order_weights"]


def _step_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(901)
    ab, T = schedule.alpha_bars.tolist(), schedule.T
    x = torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64)
    eps = torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64)
    points, point_eps = torch.randn((5, 2), generator=g).float(), torch.randn((5, 2), generator=g).float()
    mid = max(1, T // 2)
    return [
        (f"images, one step t = {T} -> {T - 1}", {"x": x, "eps": eps, "a_s": ab[T], "a_t": ab[T - 1]}),
        (f"images, a long step t = {T} -> {mid}", {"x": x, "eps": eps, "a_s": ab[T], "a_t": ab[mid]}),
        ("images, the last step t = 1 -> 0 (alpha_bar_0 = 1)", {"x": x, "eps": eps, "a_s": ab[1], "a_t": 1.0}),
        (f"2-D points in float32, t = {mid} -> 0", {"x": points, "eps": point_eps, "a_s": ab[mid], "a_t": 1.0}),
    ]


def check_first_order_step(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x_s, eps, alpha_bar_s, alpha_bar_t) -> x_t``: the exponential integrator with eps held constant.

    x_t = (alpha_t / alpha_s) x_s - sigma_t (exp(h) - 1) eps, with alpha = sqrt(alpha_bar), sigma =
    sqrt(1 - alpha_bar) and h = lambda_t - lambda_s, lambda = log(alpha / sigma). At the last step (alpha_bar_t = 1,
    sigma_t = 0, h infinite) the product sigma_t (exp(h) - 1) has the finite limit sigma_s / alpha_s: write it so
    that the limit comes out.
    """
    schedule = schedule_or_default(schedule)
    graded = positional("check_first_order_step", fn, "x", "eps", "a_s", "a_t")

    def reference(x, eps, a_s, a_t):
        return samplers.ddim_step(x, eps, a_s, a_t, eta=0.0)

    return compare(
        "check_first_order_step",
        graded,
        reference,
        _step_cases(schedule),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "sigma_t (exp(h) - 1) = sigma_t (alpha_t sigma_s / (sigma_t alpha_s) - 1) = alpha_t sigma_s / alpha_s "
            "- sigma_t: use this form, which stays finite at sigma_t = 0, instead of computing exp(h)"
        ),
        exercise="9.1",
    )


def _weight_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    ab = schedule.alpha_bars.tolist()

    def sigma(t: int) -> float:
        return math.sqrt((1 - ab[t]) / ab[t]) if t else 0.0

    T = schedule.T
    picks = [(T - 20, T - 40, T), (T // 2, T // 2 - 100, T // 2 + 100), (60, 30, 90), (30, 0, 60)]
    cases = []
    for s, t, p in picks:
        for expand_in in ("lambda", "sigma"):
            where = "the last step, to t = 0" if t == 0 else f"t = {s} -> {t} after {p}"
            args = {"sigma_s": sigma(s), "sigma_t": sigma(t), "sigma_p": sigma(p), "expand_in": expand_in}
            cases.append((f"{where}, eps linear in {expand_in}", args))
    return cases


def check_second_order_weights(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(sigma_s, sigma_t, sigma_p, expand_in) -> (c1, c2)``: the weights of the 2M step (chapter 9).

    x_bar_t = x_bar_s + c1 eps_s + c2 (eps_s - eps_p), where eps is modelled as linear in ``expand_in``
    ("lambda", lambda = -log sigma, or "sigma") through (sigma_p, eps_p) and (sigma_s, eps_s), and integrated
    exactly over sigma from sigma_s to sigma_t. At the last step (sigma_t = 0) both rules use the model linear in sigma.
    """
    schedule = schedule_or_default(schedule)
    graded = positional("check_second_order_weights", fn, "sigma_s", "sigma_t", "sigma_p", "expand_in")
    return compare(
        "check_second_order_weights",
        lambda **kw: tuple(float(v) for v in graded(**kw)),
        lambda **kw: tuple(float(v) for v in dpm_solver_coefficients(**kw)),
        _weight_cases(schedule),
        rtol=1e-7,
        atol=1e-10,
        hint=(
            "c1 = sigma_t - sigma_s in both rules; in lambda, integrate exp(-lambda) (lambda - lambda_s) from "
            "lambda_s to lambda_t (it is sigma_s - sigma_t (1 + h)) and divide by lambda_s - lambda_p, with the sign "
            "of a step towards smaller sigma; in sigma, integrate (sigma - sigma_s) from sigma_s to sigma_t and divide "
            "by sigma_s - sigma_p"
        ),
        exercise="9.2",
    )
