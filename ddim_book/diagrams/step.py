"""One DDIM step in 2-D: its three terms computed with the package on an exact oracle, and drawn (chapter 6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ddim_book._checks import check_finite_nonneg, check_int_range
from ddim_book.diagrams._draw import _figure
from ddim_book.oracles import GaussianMixtureOracle
from ddim_book.samplers import ddim_sigma, ddim_step
from ddim_book.schedules import NoiseSchedule


@dataclass
class DDIMStepParts:
    """The terms of one DDIM update x_t -> x_prev (DDIM eq. (12)), each a float64 tensor of shape (2,).

    ``x0_term + direction + noise == x_prev``; ``x0_hat`` is the predicted clean point (DDIM eq. (9)), ``eps``
    the oracle's epsilon at (x_t, t), ``sigma`` the noise level sigma_t(eta) of DDIM eq. (16) and ``z`` the
    standard normal draw, so that ``noise == sigma * z``.
    """

    t: int
    prev: int
    eta: float
    sigma: float
    x_t: torch.Tensor
    eps: torch.Tensor
    z: torch.Tensor
    x0_hat: torch.Tensor
    x0_term: torch.Tensor
    direction: torch.Tensor
    noise: torch.Tensor
    x_prev: torch.Tensor


def two_gaussians(schedule: NoiseSchedule) -> GaussianMixtureOracle:
    """The 2-D data of :func:`ddim_step_diagram`: two equal Gaussians, means (1.5, 0.3) and (-0.6, 1.4), std 0.2.

    Asymmetric on purpose: on the book's ring (``GaussianMixtureOracle.ring_2d``) the exact x0_hat and eps
    point almost radially, along x_t, and the three arrows of a step would overlap on one line.
    """
    return GaussianMixtureOracle(schedule, [0.5, 0.5], [[1.5, 0.3], [-0.6, 1.4]], [0.2, 0.2])


def _default_oracle(oracle, schedule):
    schedule = NoiseSchedule.linear() if schedule is None else schedule
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule or None, got {type(schedule).__name__}")
    oracle = two_gaussians(schedule) if oracle is None else oracle
    if not callable(oracle):
        raise TypeError(f"oracle must be callable as oracle(x_t, t) -> eps, got {type(oracle).__name__}")
    return oracle, schedule


def _point(name: str, value) -> torch.Tensor:
    out = torch.as_tensor(value, dtype=torch.float64)
    if out.shape != (2,) or not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} must be 2 finite numbers (a point of the plane), got {value!r}")
    return out


def ddim_step_parts(
    x_t=(1.0, -0.5),
    t: int = 400,
    prev: int = 150,
    eta: float = 0.0,
    z=(0.3, -0.95),
    oracle=None,
    schedule: NoiseSchedule | None = None,
) -> DDIMStepParts:
    """The three terms of one DDIM step in the plane, from the package (DDIM eq. (12); chapter 6).

        x_prev = sqrt(a_prev) x0_hat  +  sqrt(1 - a_prev - sigma^2) eps  +  sigma z,   a = alpha_bar

    eps is the exact epsilon of a 2-D ``oracle`` at (x_t, t); x0_hat comes from ``samplers.ddim_step``
    (DDIM eq. (9)) and sigma from ``samplers.ddim_sigma`` (DDIM eq. (16)).

    Args:
        x_t: the current point, 2 numbers.
        t, prev: the step t -> prev, 0 <= prev < t <= T (prev = 0 is the last step, to alpha_bar_0 = 1).
        eta: >= 0, the noise level of eq. (16) (0 = deterministic DDIM, 1 = DDPM's posterior variance).
        z: the standard normal draw of the noise term, 2 numbers.
        oracle: a 2-D epsilon-predictor ``oracle(x (B, 2), t) -> eps (B, 2)``; default the exact one of
            :func:`two_gaussians` on ``schedule``.
        schedule: the NoiseSchedule (default DDPM's linear schedule, T = 1000).
    Returns:
        a :class:`DDIMStepParts`.
    """
    oracle, schedule = _default_oracle(oracle, schedule)
    t = check_int_range("t", t, 1, schedule.T)
    prev = check_int_range("prev (the target step)", prev, 0, t - 1)
    eta = check_finite_nonneg("eta", eta)
    x_t, z = _point("x_t", x_t), _point("z", z)
    eps = oracle(x_t[None], t)[0].to(torch.float64)
    a_t, a_prev = schedule.alpha_bars[t].item(), schedule.alpha_bars[prev].item()
    _, x0_hat = ddim_step(x_t[None], eps[None], a_t, a_prev, eta=eta, noise=z[None], return_x0=True)
    sigma = float(ddim_sigma(a_t, a_prev, eta))
    x0_term = math.sqrt(a_prev) * x0_hat[0]
    direction = math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
    noise = sigma * z
    return DDIMStepParts(
        t=t,
        prev=prev,
        eta=eta,
        sigma=sigma,
        x_t=x_t,
        eps=eps,
        z=z,
        x0_hat=x0_hat[0],
        x0_term=x0_term,
        direction=direction,
        noise=noise,
        x_prev=x0_term + direction + noise,
    )


def _vector(ax, start, end, color: str, gid: str) -> None:
    ax.annotate(
        "",
        xy=tuple(float(v) for v in end),
        xytext=tuple(float(v) for v in start),
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.8, "mutation_scale": 12, "shrinkA": 0, "shrinkB": 0},
        gid=gid,
        zorder=3,
    )


def ddim_step_diagram(
    etas: Sequence[float] = (0.0, 1.0),
    x_t=(1.0, -0.5),
    t: int = 400,
    prev: int = 150,
    z=(0.3, -0.95),
    oracle=None,
    schedule: NoiseSchedule | None = None,
) -> Figure:
    """One DDIM step in 2-D as three arrows laid tip to tail (DDIM eq. (12); chapter 6), one panel per eta.

    From the origin: the "predicted x_0" term sqrt(a_prev) x0_hat, then the "direction pointing to x_t"
    sqrt(1 - a_prev - sigma^2) eps, then the noise sigma z; the last tip is x_prev. The same x_t, eps and z
    are used in every panel, so only sigma_t(eta) changes: the noise arrow appears and the direction shrinks.
    Dashed grey: x_t itself split the same way, sqrt(a_t) x0_hat + sqrt(1 - a_t) eps, so the direction term is
    seen to be parallel to the noise in x_t. Grey crosses: the data's modes (an oracle with ``means``).

    Args: as :func:`ddim_step_parts`, with ``etas`` a sequence of 1 to 4 values of eta.
    Returns:
        the Figure; ``fig.ddim_parts`` is the list of :class:`DDIMStepParts`, one per panel, and each arrow is
        an Annotation with gid "x0_term", "direction" or "noise" (``xytext`` its tail, ``xy`` its tip).
    """
    etas = list(etas)
    if not 1 <= len(etas) <= 4:
        raise ValueError(f"etas must hold 1 to 4 values, got {len(etas)}")
    oracle, schedule = _default_oracle(oracle, schedule)
    parts = [ddim_step_parts(x_t, t, prev, eta, z, oracle, schedule) for eta in etas]
    fig, axes = _figure((max(3.4 * len(etas), 7.2), 4.0), ncols=len(etas))
    colors = {"x0_term": "C0", "direction": "C1", "noise": "C3"}
    means = getattr(oracle, "means", None)
    points = [p for part in parts for p in (part.x_t, part.x0_hat, part.x_prev, part.x0_term, torch.zeros(2))]
    if means is not None:
        points += list(means)
    stack = torch.stack(points)
    low, high = stack.min(0).values - 0.35, stack.max(0).values + 0.35
    for ax, part in zip(axes, parts):
        if means is not None:
            ax.plot(means[:, 0], means[:, 1], "x", color="0.6", ms=6, mew=1.2, label="data modes")
        ax.plot(*torch.stack([torch.zeros(2), part.x0_hat]).T, ":", color="0.5", lw=1)
        ax.plot(0, 0, "+", color="black", ms=8)
        a_t = schedule.alpha_bars[part.t].item()
        signal = math.sqrt(a_t) * part.x0_hat  # x_t = sqrt(a_t) x0_hat + sqrt(1 - a_t) eps, DDIM eq. (9) rearranged
        ax.plot(*torch.stack([torch.zeros(2), signal, part.x_t]).T, "--", color="0.6", lw=1, zorder=1)
        tip1 = part.x0_term
        tip2 = tip1 + part.direction
        _vector(ax, torch.zeros(2), tip1, colors["x0_term"], "x0_term")
        _vector(ax, tip1, tip2, colors["direction"], "direction")
        if part.sigma > 0:
            _vector(ax, tip2, part.x_prev, colors["noise"], "noise")
        ax.plot(*part.x_t, "o", color="black", ms=6, label="$x_t$")
        ax.plot(*part.x0_hat, "o", mfc="white", mec=colors["x0_term"], mew=1.5, ms=7, label=r"$\hat x_0$")
        ax.plot(*part.x_prev, "*", color="black", ms=11, label=r"$x_\mathrm{prev}$")
        ax.set_title(rf"$\eta = {part.eta:g}$: $\sigma_t = {part.sigma:.3f}$", fontsize=9)
        ax.set_xlim(low[0].item(), high[0].item())
        ax.set_ylim(low[1].item(), high[1].item())
        ax.set_aspect("equal")
        ax.set_xlabel("coordinate 1")
    axes[0].set_ylabel("coordinate 2")
    handles, _ = axes[0].get_legend_handles_labels()
    handles += [
        Line2D(
            [],
            [],
            color="0.6",
            ls="--",
            lw=1,
            label=r"$x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$",
        ),
        Line2D([], [], color=colors["x0_term"], lw=1.8, label=r"$\sqrt{\bar\alpha_\mathrm{prev}}\,\hat x_0$"),
        Line2D(
            [], [], color=colors["direction"], lw=1.8, label=r"$\sqrt{1-\bar\alpha_\mathrm{prev}-\sigma_t^2}\,\epsilon$"
        ),
        Line2D([], [], color=colors["noise"], lw=1.8, label=r"$\sigma_t z$"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(rf"one DDIM step $t = {t} \to {prev}$, exact $\epsilon$ of the 2-D oracle", fontsize=9)
    fig.tight_layout(rect=(0, 0.9 / fig.get_figheight(), 1, 1))
    fig.ddim_parts = parts
    return fig
