"""DDPM and DDIM samplers, DDIM inversion and latent interpolation; derived in chapters 4, 6 and 7.

Conventions (ARCHITECTURE.md): timesteps are 1-based; ``alpha_bars[0] = 1``, so the last DDIM step, which goes
to alpha_bar_0 = 1, returns the predicted x_0. The model is called as ``model(x_t, t)`` with ``t`` an int64
tensor of shape (B,) and returns its epsilon prediction with x_t's shape.

Papers: DDPM = Ho, Jain & Abbeel (2020); DDIM = Song, Meng & Ermon (2021), arXiv:2010.02502 (v4 numbering).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from ddim_book._checks import check_choice, check_finite_nonneg, check_model_output
from ddim_book._sampling import check_schedule, check_start, t_batches, trusted_timesteps
from ddim_book.ddpm import VARIANCES, ddpm_step
from ddim_book.dpm_solver import dpm_solver_sample
from ddim_book.latents import slerp
from ddim_book.schedules import NoiseSchedule
from ddim_book.subsequences import SPACINGS, timesteps

__all__ = [
    "SPACINGS",
    "VARIANCES",
    "Trajectory",
    "ddim_sample",
    "ddim_sigma",
    "ddim_step",
    "ddim_invert",
    "ddpm_sample",
    "ddpm_step",
    "dpm_solver_sample",
    "parse_eta",
    "sigma_hat",
    "slerp",
    "timesteps",
]


def ddim_sigma(alpha_bar_t, alpha_bar_prev, eta: float = 1.0):
    """sigma_t(eta) = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev) (DDIM eq. (16); chapter 5).

    ``a`` is alpha_bar (the DDIM paper's alpha). eta = 1 gives the DDPM posterior std sqrt(beta_tilde);
    eta = 0 the deterministic DDIM. Works on floats and on tensors.
    """
    return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)) ** 0.5


def sigma_hat(alpha_bar_t, alpha_bar_prev):
    """The larger variance sigma_hat = sqrt(1 - a_t / a_prev) of DDIM sec. 5.1 (DDPM's sigma^2 = beta)."""
    return (1 - alpha_bar_t / alpha_bar_prev) ** 0.5


def _sqrt_pos(v):
    """sqrt(max(v, 0)) for floats and tensors (rounding can leave -1e-17 where 0 is meant)."""
    return v.clamp_min(0).sqrt() if isinstance(v, torch.Tensor) else max(v, 0.0) ** 0.5


def _step_coefs(alpha_bar_t, alpha_bar_prev, eta, t: int | None = None):
    """(direction coefficient, noise std) of one DDIM step, eq. (12); floats or float64 tensors."""
    if eta == "sigma_hat":
        # the DDPM posterior mean (eta = 1 direction) with the larger noise, DDIM sec. 5.1
        s1 = ddim_sigma(alpha_bar_t, alpha_bar_prev, 1.0)
        return _sqrt_pos(1 - alpha_bar_prev - s1 * s1), sigma_hat(alpha_bar_t, alpha_bar_prev)
    sigma = ddim_sigma(alpha_bar_t, alpha_bar_prev, eta)
    rest = 1 - alpha_bar_prev - sigma * sigma
    too_far = rest < -1e-12 if isinstance(rest, float) else bool((rest < -1e-12).any())
    if too_far:
        where = f" at t={t}" if t is not None else ""
        # sigma^2 <= 1 - a_prev  <=>  eta <= sqrt((1 - a_t) a_prev / (a_prev - a_t)), which is >= 1
        eta_max = torch.as_tensor((1 - alpha_bar_t) * alpha_bar_prev / (alpha_bar_prev - alpha_bar_t)).sqrt().min()
        raise ValueError(
            f"eta={eta} makes sigma^2 exceed 1 - alpha_bar_prev{where}; the direction term of DDIM eq. (12) "
            f"needs eta <= {float(eta_max):.4g} for this step"
        )
    return _sqrt_pos(rest), sigma


def _check_eta(eta):
    if eta == "sigma_hat":
        return eta
    return check_finite_nonneg("eta (a number >= 0, or 'sigma_hat')", eta)


def parse_eta(value):
    """eta as the samplers take it, from a number or from text (a command line, a JSON key): ``"sigma_hat"``
    (DDIM sec. 5.1) or a finite number >= 0 (DDIM eq. (16)). ValueError with one clear line otherwise."""
    if isinstance(value, str):
        if value.strip() == "sigma_hat":
            return "sigma_hat"
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"eta must be a number >= 0 or sigma_hat, got {value!r}") from None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"eta must be a finite number >= 0 or sigma_hat, got {value!r}")
    return _check_eta(value)


def _predict_x0(x_t, eps, alpha_bar_t, clip_x0):
    """x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) (DDIM eq. (9)); optional clipping.

    When x0_hat is clipped, eps is recomputed from it, so that eps and the clipped x0_hat again satisfy
    x_t = sqrt(a_t) x0_hat + sqrt(1 - a_t) eps instead of mixing two inconsistent predictions.
    """
    x0 = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t**0.5
    if clip_x0 is None:
        return x0, eps
    x0 = x0.clamp(*clip_x0)
    return x0, (x_t - alpha_bar_t**0.5 * x0) / (1 - alpha_bar_t) ** 0.5


def _parse_clip(clip_x0):
    if clip_x0 is None or clip_x0 is False:
        return None
    if clip_x0 is True:
        return (-1.0, 1.0)
    try:
        lo, hi = (float(v) for v in clip_x0)
    except (TypeError, ValueError) as err:
        raise TypeError(f"clip_x0 must be None, True (= (-1, 1)) or a pair (low, high), got {clip_x0!r}") from err
    if not lo < hi:
        raise ValueError(f"clip_x0 must have low < high, got {clip_x0!r}")
    return (lo, hi)


def _noise_like(x: torch.Tensor, generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    alpha_bar_t,
    alpha_bar_prev,
    eta=0.0,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    clip_x0=None,
    return_x0: bool = False,
):
    """One DDIM update x_t -> x_prev (DDIM eq. (12); chapter 6):

        x_prev = sqrt(a_prev) * x0_hat                          "predicted x0"
               + sqrt(1 - a_prev - sigma^2) * eps               "direction pointing to x_t"
               + sigma * noise                                  "random noise"

    with x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) and sigma = sigma_t(eta) of eq. (16);
    ``eta="sigma_hat"`` uses the DDPM posterior mean with sigma_hat = sqrt(1 - a_t / a_prev) (sec. 5.1).

    Args:
        x_t, eps: float tensors of one shape (B, ...): the current sample and the predicted noise.
        alpha_bar_t, alpha_bar_prev: alpha_bar at the current and the target step (floats, 0-d tensors,
            or tensors broadcastable to x_t); alpha_bar_prev = 1 returns x0_hat.
        eta: a number >= 0 (0 = deterministic DDIM, 1 = DDPM's posterior variance) or "sigma_hat".
        noise: standard normal tensor of x_t's shape; drawn with ``generator`` when needed and None.
        clip_x0: None, True (clip x0_hat to [-1, 1]) or a pair (low, high).
    Returns:
        x_prev (x_t's shape), or (x_prev, x0_hat) when ``return_x0``.
    """
    eta = _check_eta(eta)
    if eps.shape != x_t.shape:
        raise ValueError(f"eps has shape {tuple(eps.shape)} but x_t has shape {tuple(x_t.shape)}")
    if eps.device != x_t.device:
        raise ValueError(f"eps is on {eps.device} but x_t is on {x_t.device}")
    a_t = torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    a_prev = torch.as_tensor(alpha_bar_prev, dtype=torch.float64)
    if not bool(((a_t > 0) & (a_t < 1)).all()):
        raise ValueError(f"alpha_bar_t must lie strictly inside (0, 1), got {alpha_bar_t}")
    if not bool(((a_prev > 0) & (a_prev <= 1) & (a_prev >= a_t)).all()):
        raise ValueError(f"alpha_bar_prev must lie in [alpha_bar_t, 1], got {alpha_bar_prev}")
    dir_coef, sigma = _step_coefs(a_t, a_prev, eta)
    cast = {"dtype": x_t.dtype, "device": x_t.device}
    a_t, a_prev, dir_coef, sigma = (v.to(**cast) for v in (a_t, a_prev, dir_coef, sigma))
    x0_hat, eps = _predict_x0(x_t, eps, a_t, _parse_clip(clip_x0))
    x_prev = a_prev.sqrt() * x0_hat + dir_coef * eps
    if bool((sigma > 0).any()):
        if noise is None:
            noise = _noise_like(x_t, generator)
        elif noise.shape != x_t.shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)} but x_t has shape {tuple(x_t.shape)}")
        x_prev = x_prev + sigma * noise
    return (x_prev, x0_hat) if return_x0 else x_prev


@dataclass
class Trajectory:
    """What a sampler visited. ``xs[0]`` is the start, ``xs[-1]`` the result; ``x0_preds[i]`` is the
    x0 prediction made at ``timesteps[i]`` (the model's input time of step i)."""

    sample: torch.Tensor
    xs: list[torch.Tensor] = field(default_factory=list)
    x0_preds: list[torch.Tensor] = field(default_factory=list)
    timesteps: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, wanted: bool, x: torch.Tensor, timesteps) -> Trajectory | None:
        """A trajectory that begins at ``x`` if ``wanted``, else None (the samplers then record nothing)."""
        return cls(sample=x, xs=[x], timesteps=list(timesteps)) if wanted else None

    def record(self, x: torch.Tensor, x0_pred: torch.Tensor) -> None:
        """Keep one step's result and the x0 prediction it was made from."""
        self.xs.append(x)
        self.x0_preds.append(x0_pred)


def _finish(traj: Trajectory | None, x: torch.Tensor):
    """What a sampler returns: ``x``, or the trajectory ending at it."""
    if traj is None:
        return x
    traj.sample = x
    return traj


@torch.inference_mode()
def ddim_sample(
    model,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    steps: int = 50,
    eta=0.0,
    spacing: str = "uniform",
    generator: torch.Generator | None = None,
    clip_x0=None,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Generate with DDIM: eq. (12) along the sub-sequence tau of :func:`timesteps` (DDIM sec. 4.2; chapter 6).

    Steps run tau_S -> tau_{S-1} -> ... -> tau_1 -> 0; the last one goes to alpha_bar_0 = 1 and returns
    the predicted x_0 with no noise (as DDPM Algorithm 2 sets z = 0 at t = 1).

    Args:
        model: callable ``model(x_t, t) -> eps`` (t int64 (B,) in 1..T), e.g. a trained U-Net or an oracle.
        schedule: the :class:`NoiseSchedule` the model was trained with.
        x_T: the starting noise, float tensor (B, ...); its dtype and device are used throughout.
        steps: S, the number of model evaluations, 1..T.
        eta: >= 0 (0 = deterministic DDIM, 1 = DDPM-like), or "sigma_hat" (DDIM sec. 5.1).
        spacing: "uniform", "quadratic" or "trailing" (see :func:`timesteps`).
        generator: a torch.Generator on x_T's device; fixes the noise for eta > 0.
        clip_x0: None (the paper's sampler), True for [-1, 1], or (low, high).
        return_trajectory: also return every x and every x0 prediction (a :class:`Trajectory`).
        progress: show a progress bar.
    Returns:
        x_0 with x_T's shape, or a :class:`Trajectory` whose ``sample`` is x_0.
    """
    check_schedule(schedule, model)
    check_start("x_T", x_T, generator, model)
    eta = _check_eta(eta)
    clip = _parse_clip(clip_x0)
    taus = timesteps(schedule.T, steps, spacing)
    ab = schedule.alpha_bars.tolist()
    prevs = [0, *taus[:-1]]
    # coefficients once per call, as Python floats: nothing to move to the device inside the loop
    coefs = [_step_coefs(ab[t], ab[p], eta, t) for t, p in zip(taus, prevs)]
    t_batch = t_batches(taus, x_T)
    x = x_T
    traj = Trajectory.start(return_trajectory, x_T, reversed(taus))
    with trusted_timesteps(model, schedule.T):
        for i in tqdm(range(len(taus) - 1, -1, -1), desc=f"DDIM S={steps}", disable=not progress, leave=False):
            t, a_t, a_prev = taus[i], ab[taus[i]], ab[prevs[i]]
            eps = model(x, t_batch[i])
            check_model_output(eps, x, t)
            x0_hat, eps = _predict_x0(x, eps, a_t, clip)
            dir_coef, sigma = coefs[i]
            x = a_prev**0.5 * x0_hat + dir_coef * eps
            if sigma > 0 and i > 0:
                x = x + sigma * _noise_like(x, generator)
            if traj is not None:
                traj.record(x, x0_hat)
    return _finish(traj, x)


@torch.inference_mode()
def ddpm_sample(
    model,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    variance: str = "beta_tilde",
    generator: torch.Generator | None = None,
    clip_x0=None,
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Generate with DDPM Algorithm 2 over all T steps (DDPM eq. (11); chapter 4):

        x_{t-1} = 1/sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) + sigma_t z,  z = 0 at t = 1,

    with sigma_t^2 = beta_tilde_t (``variance="beta_tilde"``) or beta_t (``"beta"``), DDPM sec. 3.2.
    With ``clip_x0`` the mean is taken as the posterior mean mu_tilde(clip(x0_hat), x_t) instead.
    Arguments and return value as in :func:`ddim_sample`.
    """
    check_schedule(schedule, model)
    check_start("x_T", x_T, generator, model)
    check_choice("variance", variance, VARIANCES)
    clip = _parse_clip(clip_x0)
    T = schedule.T
    ab, alphas, betas = (v.tolist() for v in (schedule.alpha_bars, schedule.alphas, schedule.betas))
    var = schedule.posterior_variances.tolist() if variance == "beta_tilde" else betas
    c0, ct = schedule.posterior_x0_coefs.tolist(), schedule.posterior_xt_coefs.tolist()
    ts = list(range(T, 0, -1))
    t_batch = t_batches(ts, x_T)
    x = x_T
    traj = Trajectory.start(return_trajectory, x_T, ts)
    with trusted_timesteps(model, schedule.T):
        for i, t in enumerate(tqdm(ts, desc="DDPM", disable=not progress, leave=False)):
            eps = model(x, t_batch[i])
            check_model_output(eps, x, t)
            x0_hat, eps = _predict_x0(x, eps, ab[t], clip)
            if clip is None:
                mean = (x - betas[t] / (1 - ab[t]) ** 0.5 * eps) / alphas[t] ** 0.5
            else:
                mean = c0[t] * x0_hat + ct[t] * x
            x = mean + var[t] ** 0.5 * _noise_like(x, generator) if t > 1 else mean
            if traj is not None:
                traj.record(x, x0_hat)
    return _finish(traj, x)


@torch.inference_mode()
def ddim_invert(
    model,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    steps: int = 50,
    spacing: str = "uniform",
    return_trajectory: bool = False,
    progress: bool = True,
):
    """Encode x_0 -> x_T by running the deterministic DDIM update (eta = 0) forward in time (DDIM sec. 5.4; chapter 7).

    Step i goes from alpha_bar at tau_{i-1} (alpha_bar_0 = 1 at the start) to alpha_bar at tau_i:

        x_{tau_i} = sqrt(a_{tau_i}) * x0_hat + sqrt(1 - a_{tau_i}) * eps,  eps = model(x_{tau_{i-1}}, tau_i).

    Inverting a generation step exactly would need eps at the unknown x_{tau_i}; the model is
    evaluated at the current point with the target time tau_i (defined even at the first step, where
    t = 0 is outside the model's domain). The error this makes vanishes as the steps shrink.
    Returns x_T with x0's shape, or a :class:`Trajectory` (``xs`` from x_0 to x_T).
    """
    check_schedule(schedule, model)
    check_start("x0", x0, None, model)
    taus = timesteps(schedule.T, steps, spacing)
    ab = schedule.alpha_bars.tolist()
    t_batch = t_batches(taus, x0)
    x, a_cur = x0, 1.0
    traj = Trajectory.start(return_trajectory, x0, taus)
    with trusted_timesteps(model, schedule.T):
        for i in tqdm(range(len(taus)), desc=f"DDIM inversion S={steps}", disable=not progress, leave=False):
            t = taus[i]
            eps = model(x, t_batch[i])
            check_model_output(eps, x, t)
            x0_hat = (x - (1 - a_cur) ** 0.5 * eps) / a_cur**0.5
            x = ab[t] ** 0.5 * x0_hat + (1 - ab[t]) ** 0.5 * eps
            a_cur = ab[t]
            if traj is not None:
                traj.record(x, x0_hat)
    return _finish(traj, x)
