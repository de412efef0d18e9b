"""Checks for the exercises of chapter 8 (score matching and Langevin dynamics).

    from ddim_book.exercises import ch08
    ch08.check_langevin_step(my_langevin_step)   # my_langevin_step(x, score, step_size, noise) -> new x
    ch08.check_dsm_target(my_dsm_target)         # my_dsm_target(x_t, x0, alpha_bar_t) -> grad log q(x_t | x_0)

Both are graded against :mod:`ddim_book.langevin`; a failing case raises :class:`ExerciseError`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book import langevin
from ddim_book.exercises._core import compare
from ddim_book.exercises.ch01 import positional

__all__ = ["check_dsm_target", "check_langevin_step"]


def _langevin_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(801)
    points = torch.randn((5, 2), generator=g, dtype=torch.float64)
    images = torch.randn((2, 1, 4, 3), generator=g, dtype=torch.float64)
    cases = []
    for label, x, step in (("2-D points", points, 0.01), ("2-D points", points, 0.5), ("images", images, 0.2)):
        score = torch.randn(x.shape, generator=g, dtype=torch.float64)
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        cases.append((f"{label}, step_size = {step}", {"x": x, "score": score, "step_size": step, "noise": noise}))
    return cases


def check_langevin_step(fn: Callable) -> str:
    """Grade ``fn(x, score, step_size, noise)`` = x + (delta / 2) score + sqrt(delta) noise.

    The Langevin update of Song & Ermon (2019), sec. 2.2; chapter 8. Arguments are passed by position;
    x, score and noise are float64 tensors of one shape (B, ...), step_size a float delta > 0.
    """
    return compare(
        "check_langevin_step",
        positional("check_langevin_step", fn, "x", "score", "step_size", "noise"),
        lambda x, score, step_size, noise: langevin.langevin_step(x, score, step_size, noise),
        _langevin_cases(),
        hint=(
            "the drift is HALF the step size times the score, and the noise is scaled by the SQUARE ROOT "
            "of the step size (delta is a variance)."
        ),
    )


def _dsm_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(802)
    x0 = torch.randn((4, 2), generator=g, dtype=torch.float64)
    noise = torch.randn((4, 2), generator=g, dtype=torch.float64)
    per_sample = torch.tensor([[0.99], [0.7], [0.3], [0.02]], dtype=torch.float64)
    images = torch.rand((2, 1, 3, 3), generator=g, dtype=torch.float64) * 2 - 1
    image_noise = torch.randn(images.shape, generator=g, dtype=torch.float64)
    cases = []
    for a in (0.9999, 0.5, 0.01):
        x_t = a**0.5 * x0 + (1 - a) ** 0.5 * noise
        cases.append((f"2-D points, alpha_bar_t = {a}", {"x_t": x_t, "x0": x0, "alpha_bar_t": a}))
    x_t = per_sample.sqrt() * x0 + (1 - per_sample).sqrt() * noise
    per_sample_case = {"x_t": x_t, "x0": x0, "alpha_bar_t": per_sample}
    cases.append(("2-D points, alpha_bar_t per sample (shape (4, 1))", per_sample_case))
    x_t = 0.8**0.5 * images + 0.2**0.5 * image_noise
    cases.append(("images, alpha_bar_t = 0.8", {"x_t": x_t, "x0": images, "alpha_bar_t": 0.8}))
    return cases


def check_dsm_target(fn: Callable) -> str:
    """Grade ``fn(x_t, x0, alpha_bar_t)`` = grad_{x_t} log q(x_t | x_0) = -(x_t - sqrt(a) x0) / (1 - a).

    The denoising score-matching target (Vincent 2011) for DDPM's kernel, DDPM eq. (4); chapter 8.
    ``alpha_bar_t`` is a float or a tensor broadcastable to x_t (e.g. (B, 1)).
    """
    return compare(
        "check_dsm_target",
        positional("check_dsm_target", fn, "x_t", "x0", "alpha_bar_t"),
        lambda x_t, x0, alpha_bar_t: langevin.dsm_target(x_t, x0, alpha_bar_t),
        _dsm_cases(),
        hint=(
            "q(x_t | x_0) = N(sqrt(a) x0, (1 - a) I): its log-density gradient is minus the residual "
            "x_t - sqrt(a) x0 divided by the VARIANCE 1 - a (not the standard deviation)."
        ),
    )
