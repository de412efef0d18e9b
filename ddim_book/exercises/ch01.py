"""Checks for the exercises of chapter 1 (the forward process).

    from ddim_book.exercises import ch01
    ch01.check_q_sample(my_q_sample)        # my_q_sample(x0, t, noise) -> x_t, DDPM eq. (4)
    ch01.check_alpha_bars(my_alpha_bars)    # my_alpha_bars(betas) -> alpha_bars, length T + 1
    ch01.check_quadratic_betas(my_betas)    # my_betas(T, beta_start, beta_end) -> beta_1..beta_T, quadratic

Each check calls the reader's function on a fixed set of cases and compares it with
:class:`ddim_book.schedules.NoiseSchedule`; it raises :class:`ExerciseError` naming the first case
that disagrees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_alpha_bars", "check_q_sample", "check_quadratic_betas"]


def _q_sample_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    """Images (B, 1, H, W) in float64 with int and per-sample t, and 2-D points in float32."""
    g = torch.Generator().manual_seed(101)
    T = schedule.T
    images = torch.rand((3, 1, 5, 4), generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(images.shape, generator=g, dtype=torch.float64)
    points = torch.randn((4, 2), generator=g).float()
    point_noise = torch.randn((4, 2), generator=g).float()
    mixed = torch.tensor([1, max(1, T // 3), T], dtype=torch.long)
    spread = torch.tensor([T, 1, max(1, T // 2), max(1, T - 1)], dtype=torch.long)
    return [
        ("images, t = 1 (an int)", {"x0": images, "t": 1, "noise": noise}),
        (f"images, t = {max(1, T // 2)} (an int)", {"x0": images, "t": max(1, T // 2), "noise": noise}),
        (f"images, t = T = {T} (an int)", {"x0": images, "t": T, "noise": noise}),
        (f"images, t = tensor({mixed.tolist()}) (one t per image)", {"x0": images, "t": mixed, "noise": noise}),
        (f"2-D points in float32, t = tensor({spread.tolist()})", {"x0": points, "t": spread, "noise": point_noise}),
    ]


def check_q_sample(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x0, t, noise) -> x_t``, the reparameterised forward marginal (DDPM eq. (4); chapter 1).

    x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, with alpha_bar from ``schedule``
    (default: DDPM's linear schedule, T = 1000), for x0 and noise of shape (B, ...) and t an int or
    an int64 tensor (B,) with values in 1..T. Returns the "passed" message; raises ExerciseError.
    """
    schedule = schedule_or_default(schedule)
    return compare(
        "check_q_sample",
        positional("check_q_sample", fn, "x0", "t", "noise"),
        lambda x0, t, noise: schedule.q_sample(x0, t, noise=noise),
        _q_sample_cases(schedule),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "x_t = sqrt(alpha_bars[t]) * x0 + sqrt(1 - alpha_bars[t]) * noise, indexed by t itself "
            "(alpha_bars[0] = 1); for a tensor t of shape (B,), reshape the coefficients to (B, 1, ..., 1) "
            "so that they broadcast over every dimension after the batch."
        ),
        exercise="1.1",
    )


def _alpha_bar_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(102)
    return [
        ("DDPM linear schedule, T = 10", {"betas": NoiseSchedule.linear(10, 1e-4, 0.02).betas[1:].clone()}),
        ("cosine schedule, T = 20", {"betas": NoiseSchedule.cosine(20).betas[1:].clone()}),
        ("7 random betas in (0, 0.3)", {"betas": torch.rand(7, generator=g, dtype=torch.float64) * 0.3 + 1e-3}),
        ("a single step, T = 1", {"betas": torch.tensor([0.25], dtype=torch.float64)}),
    ]


def check_alpha_bars(fn: Callable) -> str:
    """Grade ``fn(betas) -> alpha_bars`` (DDPM eq. (4), alpha_bar_t = prod_{s<=t} (1 - beta_s); chapter 1).

    ``betas`` is a float64 tensor (T,) holding beta_1..beta_T; the answer is a tensor (T + 1,) indexed
    by t with alpha_bars[0] = 1, as ``NoiseSchedule.alpha_bars``. Returns the "passed" message.
    """
    return compare(
        "check_alpha_bars",
        positional("check_alpha_bars", fn, "betas"),
        lambda betas: NoiseSchedule(betas).alpha_bars,
        _alpha_bar_cases(),
        rtol=1e-10,
        atol=1e-12,
        hint=(
            "alpha_bars[t] = (1 - beta_1) * ... * (1 - beta_t) is a cumulative product (torch.cumprod), "
            "and the book's arrays have length T + 1 with alpha_bars[0] = 1 (nothing has been multiplied yet)."
        ),
        exercise="1.2",
    )


def _quadratic_cases() -> list[tuple[str, dict]]:
    return [
        ("DDPM's endpoints, T = 1000", {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02}),
        ("T = 10 from 1e-3 to 0.2", {"T": 10, "beta_start": 1e-3, "beta_end": 0.2}),
        ("T = 2 from 0.01 to 0.04", {"T": 2, "beta_start": 0.01, "beta_end": 0.04}),
        ("T = 1000 from 8.5e-4 to 0.012", {"T": 1000, "beta_start": 8.5e-4, "beta_end": 0.012}),
    ]


def check_quadratic_betas(fn: Callable) -> str:
    """Grade ``fn(T, beta_start, beta_end) -> betas``, the quadratic schedule (chapter 1, section 4).

    The answer is a tensor (T,) holding beta_1..beta_T with sqrt(beta_t) evenly spaced from
    sqrt(beta_start) to sqrt(beta_end), as :meth:`NoiseSchedule.quadratic` (``.betas[1:]``); float32
    answers pass too (relative tolerance 1e-6). Returns the "passed" message; raises ExerciseError.
    """
    return compare(
        "check_quadratic_betas",
        positional("check_quadratic_betas", fn, "T", "beta_start", "beta_end"),
        lambda T, beta_start, beta_end: NoiseSchedule.quadratic(T, beta_start, beta_end).betas[1:],
        _quadratic_cases(),
        rtol=1e-6,
        atol=1e-12,
        hint=(
            "the square roots are evenly spaced, not the betas: take T evenly spaced points from "
            "sqrt(beta_start) to sqrt(beta_end) (both ends included, torch.linspace) and square them; "
            "the result has T entries, beta_1..beta_T, with no leading 0."
        ),
        exercise="1.5",
    )
