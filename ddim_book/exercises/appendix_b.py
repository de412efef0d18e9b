"""Exercise check for appendix B: a diffusers ``DDIMScheduler`` set up to reproduce ``ddim_sample``.

    from ddim_book.exercises import appendix_b
    appendix_b.check_scheduler_setup(my_setup)   # my_setup(steps, eta, clip_x0, seed) -> (scheduler, step_kwargs)

The reader's scheduler is run with diffusers' loop, ``x = scheduler.step(model(x, k + 1), k, x, **step_kwargs)``
over ``scheduler.timesteps`` (the model is called at the book's 1-based t = k + 1), and compared with
:func:`ddim_book.samplers.ddim_sample` (DDIM eq. (12), chapter 6) on the exact noise predictor of the 2-D ring
mixture (:meth:`ddim_book.oracles.GaussianMixtureOracle.ring_2d`). diffusers itself is not imported here: the
scheduler comes from the reader.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book import samplers
from ddim_book.exercises._core import compare, positional
from ddim_book.oracles import GaussianMixtureOracle
from ddim_book.schedules import NoiseSchedule

__all__ = ["check_scheduler_setup", "run_scheduler"]


def run_scheduler(model, scheduler, x_T: torch.Tensor, steps: int, step_kwargs: dict) -> torch.Tensor:
    """diffusers' sampling loop: ``scheduler.set_timesteps(steps)``, then one ``scheduler.step`` per timestep k.

    ``model(x, t)`` is a book model (1-based t, an int64 tensor (B,)); it is called with t = k + 1. x_T: (B, ...).
    ``step_kwargs`` go to every ``step`` call (eta, generator, use_clipped_model_output). Returns x_0, x_T's shape.
    """
    if not isinstance(step_kwargs, dict):
        raise TypeError(f"step_kwargs must be a dict of keyword arguments for step, got {type(step_kwargs).__name__}")
    scheduler.set_timesteps(steps)
    x = x_T
    for k in scheduler.timesteps:
        t = torch.full((x.shape[0],), int(k) + 1, dtype=torch.long)
        x = scheduler.step(model(x, t), k, x, return_dict=False, **step_kwargs)[0]
    return x


def check_scheduler_setup(fn: Callable) -> str:
    """Grade ``fn(steps, eta, clip_x0, seed) -> (scheduler, step_kwargs)`` (appendix B, exercise B.1).

    The pair must make :func:`run_scheduler` reproduce ``ddim_sample(oracle, schedule, x_T, steps, eta=eta,
    clip_x0=clip_x0, generator=torch.Generator().manual_seed(seed))`` to 1e-5 (diffusers keeps its schedule in
    float32), for DDPM's linear schedule (T = 1000; the default betas of ``DDIMScheduler``). ``steps`` divides 1000;
    ``clip_x0`` is True or False. Returns the "passed" message; raises ExerciseError.
    """
    schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)
    oracle = GaussianMixtureOracle.ring_2d(schedule)
    x_T = torch.randn((64, 2), generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    graded = positional("check_scheduler_setup", fn, "steps", "eta", "clip_x0", "seed")

    def ours(steps, eta, clip_x0, seed):
        setup = graded(steps=steps, eta=eta, clip_x0=clip_x0, seed=seed)
        if not isinstance(setup, (tuple, list)) or len(setup) != 2:
            raise TypeError(f"expected a pair (scheduler, step_kwargs), got {type(setup).__name__}")
        return run_scheduler(oracle, setup[0], x_T, steps, setup[1])

    def reference(steps, eta, clip_x0, seed):
        generator = torch.Generator().manual_seed(seed)
        return samplers.ddim_sample(
            oracle, schedule, x_T, steps, eta=eta, clip_x0=clip_x0, generator=generator, progress=False
        )

    plans = [(25, 0.5, True, 3), (10, 0.0, False, 0), (50, 1.0, False, 1), (20, 0.0, True, 2)]
    cases = [
        (
            f"S = {S}, eta = {eta}, clip_x0 = {clip}, seed {seed}",
            {"steps": S, "eta": eta, "clip_x0": clip, "seed": seed},
        )
        for S, eta, clip, seed in plans
    ]
    return compare(
        "check_scheduler_setup",
        ours,
        reference,
        cases,
        rtol=0.0,
        atol=1e-5,
        hint=(
            "the book's uniform sub-sequence is timestep_spacing='leading' with steps_offset=0; the last step goes to "
            "alpha_bar_0 = 1 (set_alpha_to_one=True); clip_sample must equal clip_x0, and clipping also needs "
            "use_clipped_model_output=True in step; pass eta and a generator seeded with `seed` to step"
        ),
        exercise="B.1",
    )
