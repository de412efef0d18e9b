"""Exercise checks for chapter 6: the DDIM sampler.

    from ddim_book.exercises import ch06
    ch06.check_ddim_step(my_step)          # my_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise) -> x_prev
    ch06.check_uniform_timesteps(my_tau)   # my_tau(T, S) -> [tau_1, ..., tau_S], the "uniform" sub-sequence
    ch06.check_trailing_timesteps(my_tau)  # my_tau(T, S) -> [tau_1, ..., tau_S], the "trailing" sub-sequence

Each check calls the reader's function on fixed cases and compares with :func:`ddim_book.samplers.ddim_step`
(DDIM eq. (12)) or :func:`ddim_book.samplers.timesteps` (DDIM sec. 4.2); it raises :class:`ExerciseError`
naming the first case that disagrees. Arguments are passed by position, so any parameter names work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_ddim_step", "check_trailing_timesteps", "check_uniform_timesteps"]


def _step_cases() -> list[tuple[str, dict]]:
    """Images in float64 and 2-D points in float32; consecutive, skipping and final steps; eta in {0, 0.5, 1}."""
    ab = NoiseSchedule.linear(1000, 1e-4, 0.02).alpha_bars.tolist()
    g = torch.Generator().manual_seed(601)
    images = torch.randn((3, 1, 4, 5), generator=g, dtype=torch.float64)
    eps_img = torch.randn(images.shape, generator=g, dtype=torch.float64)
    z_img = torch.randn(images.shape, generator=g, dtype=torch.float64)
    points = torch.randn((6, 2), generator=g).float()
    eps_pts = torch.randn((6, 2), generator=g).float()
    z_pts = torch.randn((6, 2), generator=g).float()
    plans = [
        ("images, t = 500 -> 499, eta = 0", images, eps_img, z_img, 500, 499, 0.0),
        ("images, t = 981 -> 961 (skip), eta = 0", images, eps_img, z_img, 981, 961, 0.0),
        ("images, t = 500 -> 499, eta = 1", images, eps_img, z_img, 500, 499, 1.0),
        ("images, t = 600 -> 400 (skip), eta = 0.5", images, eps_img, z_img, 600, 400, 0.5),
        ("images, t = 101 -> 1 (skip), eta = 1", images, eps_img, z_img, 101, 1, 1.0),
        ("images, t = 20 -> 0 (the last step), eta = 0", images, eps_img, z_img, 20, 0, 0.0),
        ("2-D points in float32, t = 1000 -> 900, eta = 0.5", points, eps_pts, z_pts, 1000, 900, 0.5),
    ]
    return [
        (label, {"x_t": x, "eps": e, "alpha_bar_t": ab[t], "alpha_bar_prev": ab[p], "eta": eta, "noise": z})
        for label, x, e, z, t, p, eta in plans
    ]


def check_ddim_step(fn: Callable) -> str:
    """Grade ``fn(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise) -> x_prev`` (DDIM eq. (12); chapter 6).

    x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma noise, with
    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) and sigma = sigma_t(eta) of DDIM eq. (16). The alpha_bars
    are Python floats (a_prev = 1 at the last step); x_t, eps, noise are tensors of one shape; eta is a number.
    Returns the "passed" message; raises ExerciseError.
    """
    return compare(
        "check_ddim_step",
        positional("check_ddim_step", fn, "x_t", "eps", "alpha_bar_t", "alpha_bar_prev", "eta", "noise"),
        lambda x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise: samplers.ddim_step(
            x_t, eps, alpha_bar_t, alpha_bar_prev, eta=eta, noise=noise
        ),
        _step_cases(),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "three terms: sqrt(a_prev) * x0_hat ('predicted x0'), sqrt(1 - a_prev - sigma^2) * eps ('direction "
            "pointing to x_t': the sigma^2 comes out of this square root) and sigma * noise, with "
            "sigma = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev) (eta scales the standard deviation)."
        ),
        exercise="6.1",
    )


def _as_int_list(name: str, fn: Callable) -> Callable:
    """Accept a list, tuple, range, numpy array or 1-D tensor of integers from the reader; compare as a list."""

    def call(**kwargs):
        out = fn(**kwargs)
        if isinstance(out, torch.Tensor):
            out = out.tolist()
        elif isinstance(out, np.ndarray):
            out = out.tolist()
        if isinstance(out, range):
            out = list(out)
        if not isinstance(out, (list, tuple)) or not all(isinstance(v, (int, np.integer)) for v in out):
            raise TypeError(f"{name} must return a sequence of integers, got {out!r:.80}")
        return [int(v) for v in out]

    return call


def _tau_cases() -> list[tuple[str, dict]]:
    """T = 1000 with S dividing it or not, S = 1 and S = T, and two small T."""
    sizes = [(1000, 10), (1000, 50), (1000, 3), (1000, 7), (1000, 1), (1000, 1000), (100, 8), (10, 4)]
    return [(f"T = {T}, S = {S}", {"T": T, "S": S}) for T, S in sizes]


def _check_tau(spacing: str, fn: Callable, hint: str) -> str:
    name = f"check_{spacing}_timesteps"
    return compare(
        name,
        _as_int_list(name, positional(name, fn, "T", "S")),
        lambda T, S: samplers.timesteps(T, S, spacing),
        _tau_cases(),
        rtol=0.0,
        atol=0.0,
        hint=hint,
        exercise="6.2",
    )


def check_uniform_timesteps(fn: Callable) -> str:
    """Grade ``fn(T, S) -> [tau_1, ..., tau_S]``, the "uniform" sub-sequence (DDIM sec. 4.2; chapter 6).

    tau_i = 1 + (i - 1) * (T // S) for i = 1..S: 1-based timesteps that start at t = 1 with the integer stride
    of the DDIM code. Returns the "passed" message; raises ExerciseError.
    """
    return _check_tau(
        "uniform",
        fn,
        "start at t = 1 (timesteps are 1-based), step by the integer stride T // S, and return exactly S values: "
        "T = 1000, S = 50 gives 1, 21, ..., 981.",
    )


def check_trailing_timesteps(fn: Callable) -> str:
    """Grade ``fn(T, S) -> [tau_1, ..., tau_S]``, the "trailing" sub-sequence (Lin et al. 2023; chapter 6).

    tau_i = round(i * T / S) for i = 1..S, rounding halves up, so that tau_S = T: the first step is evaluated
    where x_T lives. Returns the "passed" message; raises ExerciseError.
    """
    return _check_tau(
        "trailing",
        fn,
        "tau_i = round(i * T / S) for i = 1..S (not i = 0..S-1), rounding to the nearest integer with halves "
        "going up; the last value is T itself. Integer arithmetic, (2 i T + S) // (2 S), avoids float error.",
    )
