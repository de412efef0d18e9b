"""Checks for the exercises of chapter 7 (DDIM as an ODE: encoding and interpolation).

    from ddim_book.exercises import ch07
    ch07.check_invert_step(my_invert_step)   # (x, eps, alpha_bar_cur, alpha_bar_next) -> x_next, DDIM sec. 5.4
    ch07.check_slerp(my_slerp)               # (z0, z1, xi) -> the spherical interpolant, DDIM sec. 5.3

The inversion step is graded by running it inside a full encoding loop with an exact Gaussian oracle as
the model and comparing every visited point with :func:`ddim_book.samplers.ddim_invert`; slerp is
compared with :func:`ddim_book.samplers.slerp`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional, schedule_or_default
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_invert_step", "check_slerp", "encode_with"]


def encode_with(step: Callable, model, schedule: NoiseSchedule, x0: torch.Tensor, steps: int, spacing: str = "uniform"):
    """Run the DDIM encoding loop x_0 -> x_{tau_S} with a given one-step function (DDIM sec. 5.4; chapter 7).

    Step i moves from alpha_bar at tau_{i-1} (1 at the start, t = 0) to alpha_bar at tau_i, with
    ``eps = model(x, tau_i)`` evaluated at the current point and the target time, as ``ddim_invert`` does:
    ``x = step(x, eps, alpha_bar_cur, alpha_bar_next)`` (the alphas as Python floats). Returns a tuple of
    S + 1 tensors, x_0 first: x0's shape, in the dtype the step returns.
    """
    ab = schedule.alpha_bars.tolist()
    x, a_cur, visited = x0, 1.0, [x0]
    for t in samplers.timesteps(schedule.T, steps, spacing):
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long))
        x = step(x, eps, a_cur, ab[t])
        a_cur = ab[t]
        visited.append(x)
    return tuple(visited)


def _invert_cases(schedule: NoiseSchedule) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(701)
    image_oracle = GaussianOracle(schedule, mean=0.2, std=0.5, shape=(1, 4, 4))
    point_oracle = GaussianOracle(schedule, mean=torch.tensor([1.0, -0.5]), std=0.3)
    images = image_oracle.sample(3, generator=g)
    points = point_oracle.sample(6, generator=g).float()
    T = schedule.T
    image = {"model": image_oracle, "x0": images}
    return [
        ("images, S = 1 (one step, from t = 0 to t = 1)", {**image, "steps": 1, "spacing": "uniform"}),
        (f"images, S = {min(5, T)}, uniform spacing", {**image, "steps": min(5, T), "spacing": "uniform"}),
        (f"images, S = {min(10, T)}, quadratic spacing", {**image, "steps": min(10, T), "spacing": "quadratic"}),
        (
            f"2-D points in float32, S = {min(20, T)}, trailing spacing (ends at t = T)",
            {"model": point_oracle, "x0": points, "steps": min(20, T), "spacing": "trailing"},
        ),
    ]


def check_invert_step(fn: Callable, schedule: NoiseSchedule | None = None) -> str:
    """Grade ``fn(x, eps, alpha_bar_cur, alpha_bar_next) -> x_next``, one DDIM encoding step (chapter 7).

    The step is DDIM eq. (12) with eta = 0 run towards more noise: x0_hat = (x - sqrt(1 - a_cur) eps) / sqrt(a_cur),
    x_next = sqrt(a_next) x0_hat + sqrt(1 - a_next) eps. It is run inside :func:`encode_with` with an exact Gaussian
    oracle, and every point of the encoding is compared with ``ddim_invert``'s trajectory ("item i" = after step i).
    """
    schedule = schedule_or_default(schedule)
    graded = positional("check_invert_step", fn, "x", "eps", "alpha_bar_cur", "alpha_bar_next")

    def step(x, eps, alpha_bar_cur, alpha_bar_next):
        return graded(x=x, eps=eps, alpha_bar_cur=alpha_bar_cur, alpha_bar_next=alpha_bar_next)

    def reference(model, x0, steps, spacing):
        traj = samplers.ddim_invert(model, schedule, x0, steps, spacing, return_trajectory=True, progress=False)
        return tuple(traj.xs)

    return compare(
        "check_invert_step",
        lambda model, x0, steps, spacing: encode_with(step, model, schedule, x0, steps, spacing),
        reference,
        _invert_cases(schedule),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "first recover x0_hat = (x - sqrt(1 - alpha_bar_cur) * eps) / sqrt(alpha_bar_cur) with the CURRENT "
            "alpha_bar (1 at the first step), then re-noise it to the next level: "
            "sqrt(alpha_bar_next) * x0_hat + sqrt(1 - alpha_bar_next) * eps"
        ),
        exercise="7.1",
    )


def _slerp_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(702)
    z0 = torch.randn((1, 6, 6), generator=g, dtype=torch.float64)
    z1 = torch.randn((1, 6, 6), generator=g, dtype=torch.float64)
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    cases = [(f"Gaussian latents (1, 6, 6), xi = {a}", {"z0": z0, "z1": z1, "xi": a}) for a in (0.0, 0.3, 1.0)]
    cases += [
        ("orthogonal unit vectors in float32, xi = 0.5", {"z0": e0, "z1": e1, "xi": 0.5}),
        ("orthogonal vectors of norms 1 and 3, xi = 0.25", {"z0": e0, "z1": 3 * e1, "xi": 0.25}),
        ("vectors 135 degrees apart, xi = 0.6", {"z0": e0, "z1": torch.tensor([-1.0, 1.0]), "xi": 0.6}),
    ]
    return cases


def check_slerp(fn: Callable) -> str:
    """Grade ``fn(z0, z1, xi) -> z``, spherical linear interpolation (DDIM sec. 5.3; chapter 7).

    z0, z1: tensors of one shape, treated as flat vectors; xi: a float in [0, 1]. The result has z0's shape:
    sin((1 - xi) theta) / sin(theta) z0 + sin(xi theta) / sin(theta) z1 with theta the angle between them.
    """
    graded = positional("check_slerp", fn, "z0", "z1", "xi")
    return compare(
        "check_slerp",
        graded,
        samplers.slerp,
        _slerp_cases(),
        rtol=1e-5,
        atol=1e-6,
        hint=(
            "theta = arccos(<z0, z1> / (|z0| |z1|)) over all entries (flatten first); weight z0 by "
            "sin((1 - xi) theta) / sin(theta) and z1 by sin(xi theta) / sin(theta); keep the norms of z0 and z1 "
            "(do not normalise the vectors you combine); xi = 0 must give z0 back"
        ),
        exercise="7.2",
    )
