"""Langevin dynamics, annealed Langevin dynamics and the denoising score-matching target; chapter 8.

Langevin dynamics samples a density p from its score alone, grad_x log p(x) (Song & Ermon 2019, sec. 2.2):

    x <- x + (delta / 2) * score(x) + sqrt(delta) * z,    z ~ N(0, I),

which converges to p as delta -> 0 and the number of steps -> infinity. Annealed Langevin dynamics
(Song & Ermon 2019, Algorithm 1) runs it on a ladder of ever less noisy versions of p, with a step size
proportional to each level's noise variance, so that samples can travel between modes while the noise
is large and settle into them when it is small. The ladder is either NCSN's noise scales sigma_1 > ... > sigma_L
or decreasing timesteps of a DDPM :class:`~ddim_book.schedules.NoiseSchedule`, whose level t has noise
variance 1 - alpha_bar_t.
"""

from __future__ import annotations

import math
import numbers

import torch
from tqdm import tqdm

from ddim_book._checks import check_int_range, check_timesteps
from ddim_book.schedules import NoiseSchedule

__all__ = ["annealed_langevin_sample", "dsm_target", "langevin_sample", "langevin_step", "score_from_eps"]


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number > 0, got {value!r}")
    value = float(value)
    if not (0.0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _check_start(x0, generator) -> None:
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point():
        kind = f"dtype {x0.dtype}" if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise TypeError(f"x0 must be a floating-point tensor (B, ...), got {kind}")
    if x0.ndim < 1 or x0.shape[0] < 1:
        raise ValueError(f"x0 must have a batch dimension first, got shape {tuple(x0.shape)}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if generator.device.type != x0.device.type:
            raise ValueError(f"generator is on {generator.device} but x0 is on {x0.device}")


def _score_at(score_fn, x: torch.Tensor, *args) -> torch.Tensor:
    """Call the score function and return its output in x's dtype, after checking its shape."""
    score = score_fn(x, *args)
    if not isinstance(score, torch.Tensor):
        raise TypeError(f"score_fn must return a tensor, got {type(score).__name__}")
    if score.shape != x.shape:
        raise ValueError(f"score_fn returned shape {tuple(score.shape)} for x of shape {tuple(x.shape)}")
    return score.to(dtype=x.dtype, device=x.device)


def langevin_step(x: torch.Tensor, score: torch.Tensor, step_size: float, noise: torch.Tensor) -> torch.Tensor:
    """One Langevin update x + (delta / 2) score + sqrt(delta) noise (Song & Ermon 2019, sec. 2.2; chapter 8).

    Args:
        x: the current points, float tensor (B, ...).
        score: grad_x log p at x, same shape.
        step_size: delta > 0, in units of x squared (it is a variance: the noise added has std sqrt(delta)).
        noise: standard normal tensor of x's shape.
    Returns: the new points, x's shape and dtype.
    """
    delta = _positive("step_size", step_size)
    for name, value in (("score", score), ("noise", noise)):
        if not isinstance(value, torch.Tensor) or value.shape != x.shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a tensor of x's shape {tuple(x.shape)}, got {got}")
    return x + 0.5 * delta * score.to(x) + math.sqrt(delta) * noise.to(x)


@torch.no_grad()
def langevin_sample(
    score_fn,
    x0: torch.Tensor,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Run ``n_steps`` of Langevin dynamics with a fixed step (Song & Ermon 2019, sec. 2.2; chapter 8).

    Args:
        score_fn: callable ``score_fn(x) -> grad_x log p(x)`` with x's shape (any dtype; cast to x's),
            e.g. ``lambda x: oracle.score(x, 0)`` for the data density of an oracle.
        x0: the starting points, float tensor (B, ...); its dtype and device are used throughout.
        step_size: delta > 0 (a variance, in units of x squared).
        n_steps: number of updates, >= 0.
        generator: a torch.Generator on x0's device; fixes the noise.
        return_trajectory: also return every state, a tensor (n_steps + 1, *x0.shape).
        progress: show a progress bar.
    Returns: the final points (x0's shape), or (final points, trajectory).
    """
    _check_start(x0, generator)
    delta = _positive("step_size", step_size)
    n_steps = check_int_range("n_steps", n_steps, 0, 10**9)
    x, states = x0, [x0]
    for _ in tqdm(range(n_steps), desc="Langevin", disable=not progress, leave=False):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = langevin_step(x, _score_at(score_fn, x), delta, noise)
        if return_trajectory:
            states.append(x)
    return (x, torch.stack(states)) if return_trajectory else x


def _ladder(sigmas, timesteps, schedule, x0: torch.Tensor):
    """[(argument for score_fn, noise variance of the level)] from either ladder description."""
    if (sigmas is None) == (timesteps is None):
        raise ValueError("give exactly one noise ladder: sigmas=[...] (NCSN) or timesteps=[...] with schedule=...")
    if sigmas is not None:
        if schedule is not None:
            raise ValueError("schedule= goes with timesteps=, not with sigmas=")
        sig = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sig.numel() < 1 or not bool(torch.isfinite(sig).all()) or not bool((sig > 0).all()):
            raise ValueError(f"sigmas must be a non-empty sequence of finite numbers > 0, got {sigmas!r}")
        if not bool((sig[1:] < sig[:-1]).all()):
            raise ValueError("sigmas must be strictly decreasing (from the noisiest level to the cleanest)")
        return [(float(s), float(s) ** 2) for s in sig]
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"timesteps= needs schedule= to be a NoiseSchedule, got {type(schedule).__name__}")
    ts = check_timesteps(torch.as_tensor(timesteps), schedule.T, "timesteps").flatten()
    if ts.numel() < 1 or not bool((ts[1:] < ts[:-1]).all()):
        raise ValueError(f"timesteps must be a non-empty, strictly decreasing sequence in 1..{schedule.T}")
    batch = x0.shape[0]
    return [
        (torch.full((batch,), int(t), dtype=torch.long, device=x0.device), 1.0 - float(schedule.alpha_bars[int(t)]))
        for t in ts
    ]


@torch.no_grad()
def annealed_langevin_sample(
    score_fn,
    x0: torch.Tensor,
    sigmas=None,
    steps_per_level: int = 100,
    eps: float = 2e-5,
    generator: torch.Generator | None = None,
    *,
    timesteps=None,
    schedule: NoiseSchedule | None = None,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Annealed Langevin dynamics, Song & Ermon 2019 Algorithm 1 (chapter 8).

    For each level i = 1..L, from the noisiest to the cleanest, take ``steps_per_level`` Langevin steps
    (sec. 2.2) with the score of that level and the step size alpha_i = eps * v_i / v_L, where v_i is the
    level's noise variance: sigma_i^2 for NCSN scales, 1 - alpha_bar_t for a DDPM timestep t.

    Args:
        score_fn: ``score_fn(x, level) -> grad_x log q_level(x)`` with x's shape. ``level`` is the float
            sigma_i with ``sigmas``, or an int64 tensor (B,) holding t with ``timesteps`` (the model
            convention, so ``oracle.score`` or :func:`score_from_eps` fit directly).
        x0: the starting points, float tensor (B, ...), e.g. uniform or standard normal noise.
        sigmas: NCSN noise scales, strictly decreasing, > 0. Give this or ``timesteps``.
        steps_per_level: Langevin steps at each level, >= 1 (NCSN uses 100).
        eps: the step size at the last (cleanest) level, > 0 (NCSN uses 2e-5 with sigma_L = 0.01).
        generator: a torch.Generator on x0's device; fixes the noise.
        timesteps: strictly decreasing DDPM timesteps in 1..T; requires ``schedule``.
        schedule: the :class:`NoiseSchedule` that gives alpha_bar_t for ``timesteps``.
        return_trajectory: also return the state at the start and after every level, (L + 1, *x0.shape).
        progress: show a progress bar.
    Returns: the final points (x0's shape), or (final points, trajectory).
    """
    _check_start(x0, generator)
    steps_per_level = check_int_range("steps_per_level", steps_per_level, 1, 10**9)
    eps = _positive("eps", eps)
    levels = _ladder(sigmas, timesteps, schedule, x0)
    last_variance = levels[-1][1]
    x, states = x0, [x0]
    bar = tqdm(total=len(levels) * steps_per_level, desc="annealed Langevin", disable=not progress, leave=False)
    for level, variance in levels:
        # alpha_i proportional to the level's variance keeps the update's signal-to-noise ratio the same at every level
        step = eps * variance / last_variance
        for _ in range(steps_per_level):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = langevin_step(x, _score_at(score_fn, x, level), step, noise)
            bar.update(1)
        if return_trajectory:
            states.append(x)
    bar.close()
    return (x, torch.stack(states)) if return_trajectory else x


def score_from_eps(model, schedule: NoiseSchedule):
    """Turn an epsilon-predictor into a score function: score(x, t) = -model(x, t) / sqrt(1 - alpha_bar_t).

    This is Tweedie's formula read backwards (chapter 3; chapter 8 uses it to run annealed Langevin
    dynamics with a DDPM model). ``t`` is an int64 tensor (B,) in 1..T; the result has x's shape.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        idx = check_timesteps(t, schedule.T)
        scale = schedule.sqrt_one_minus_alpha_bars[idx.cpu()].to(dtype=x.dtype, device=x.device)
        scale = scale.reshape(-1, *([1] * (x.ndim - 1))) if scale.ndim else scale
        return -model(x, t) / scale

    return score


def dsm_target(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """grad_{x_t} log q(x_t | x_0) = -(x_t - sqrt(a) x_0) / (1 - a), a = alpha_bar_t (Vincent 2011; chapter 8).

    The regression target of denoising score matching for the DDPM kernel q(x_t | x_0) of DDPM eq. (4).
    With x_t = sqrt(a) x_0 + sqrt(1 - a) eps it equals -eps / sqrt(1 - a).

    Args:
        x_t, x0: float tensors of one shape (B, ...).
        alpha_bar_t: a float in (0, 1), or a tensor of such values broadcastable to x_t (e.g. (B, 1)).
    Returns: the target, x_t's shape and dtype.
    """
    for name, value in (("x_t", x_t), ("x0", x0)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {type(value).__name__}")
    if x_t.shape != x0.shape:
        raise ValueError(f"x_t has shape {tuple(x_t.shape)} but x0 has shape {tuple(x0.shape)}")
    a = torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    if not bool(((a > 0) & (a < 1)).all()):
        raise ValueError(f"alpha_bar_t must lie strictly inside (0, 1), got {alpha_bar_t}")
    a = a.to(dtype=x_t.dtype, device=x_t.device)
    return -(x_t - a.sqrt() * x0) / (1 - a)
