"""Conceptual diagrams drawn in code: the chains of DDPM and DDIM, one DDIM step, and a sub-sequence tau.

- :func:`ddpm_chain`: DDPM's forward and reverse Markov chains as a graphical model (the idea of DDPM fig. 2;
  chapter 2).
- :func:`ddim_forward_process`: DDIM's non-Markovian forward process, built from the top down with
  q_sigma(x_{t-1} | x_t, x_0) and x_0 feeding every step (the idea of DDIM fig. 1, eqs. (6)-(7); chapter 5).
- :func:`ddim_step_parts` and :func:`ddim_step_diagram`: the three terms of one DDIM update, DDIM eq. (12),
  computed with the package on a 2-D exact oracle (:func:`two_gaussians`) and drawn as arrows that add up to
  x_prev (chapter 6).
- :func:`subsequence_timeline`: the sub-sequences tau of DDIM sec. 4.2 on the timeline 1..T (chapter 6).

Every function returns a matplotlib Figure of at least 110 dpi whose text is at least 8 pt. Notation as in
ARCHITECTURE.md: DDPM's names (``alpha_bars``), 1-based t. Papers: DDPM = Ho, Jain & Abbeel (2020),
arXiv:2006.11239; DDIM = Song, Meng & Ermon (2021), arXiv:2010.02502 (v4 numbering).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from ddim_book._checks import check_choice, check_finite_nonneg, check_int_range
from ddim_book.oracles import GaussianMixtureOracle
from ddim_book.samplers import ddim_sigma, ddim_step
from ddim_book.schedules import NoiseSchedule
from ddim_book.subsequences import SPACINGS, timesteps

__all__ = [
    "DDIMStepParts",
    "ddim_forward_process",
    "ddim_step_diagram",
    "ddim_step_parts",
    "ddpm_chain",
    "subsequence_timeline",
    "two_gaussians",
]

DPI = 110  # the book's minimum resolution
FORWARD, REVERSE, DATA = "C0", "C3", "C2"  # forward process, reverse / generative process, x_0
NODE_RADIUS = 0.34


def _figure(figsize, ncols: int = 1):
    dpi = max(DPI, plt.rcParams["figure.dpi"])
    fig, axes = plt.subplots(1, ncols, figsize=figsize, dpi=dpi, squeeze=False)
    return fig, list(axes[0])


def _blank(ax, xlim, ylim) -> None:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _node(ax, xy, label: str, color: str = "black", filled: bool = False) -> None:
    """A random variable: a circle with its name inside (a filled circle is an observed one)."""
    face = "0.88" if filled else "white"
    ax.add_patch(Circle(xy, NODE_RADIUS, facecolor=face, edgecolor=color, lw=1.4, zorder=3))
    ax.text(*xy, label, ha="center", va="center", fontsize=11, zorder=4, gid="node")


def _ellipsis(ax, xy) -> None:
    ax.text(*xy, r"$\cdots$", ha="center", va="center", fontsize=12, gid="ellipsis")


def _arrow(ax, start, end, color: str, rad: float = 0.0, ls: str = "-", gid: str | None = None):
    """An arrow from ``start`` to ``end`` (data coordinates), bent by ``rad`` (matplotlib's arc3)."""
    arrow = FancyArrowPatch(
        start,
        end,
        arrowstyle="-|>",
        mutation_scale=11,
        color=color,
        lw=1.3,
        ls=ls,
        connectionstyle=f"arc3,rad={rad}",
        zorder=2,
        gid=gid,
    )
    ax.add_patch(arrow)
    return arrow


def _rim(center, toward, radius: float):
    """The point on the circle of ``radius`` around ``center`` in the direction of ``toward``."""
    dx, dy = toward[0] - center[0], toward[1] - center[1]
    norm = math.hypot(dx, dy)
    return center[0] + radius * dx / norm, center[1] + radius * dy / norm


def ddpm_chain() -> Figure:
    """DDPM's two Markov chains as one graphical model (the idea of DDPM fig. 2; chapter 2).

    Nodes x_0, x_1, ..., x_{t-1}, x_t, ..., x_T from left to right. Above the nodes, the forward process
    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (DDPM eq. (2)) runs left to right; below them the
    learned reverse process p_theta(x_{t-1} | x_t) (DDPM eq. (1)) runs right to left. One pair of arrows is
    labelled; the others are the same kernels at other t.

    Returns:
        the Figure (7.2 x 2.5 in); its arrows carry gid "forward" or "reverse", its node labels gid "node".
    """
    slots = [r"$x_0$", r"$x_1$", None, r"$x_{t-1}$", r"$x_t$", None, r"$x_T$"]
    step = 1.45
    xs = [i * step for i in range(len(slots))]
    fig, (ax,) = _figure((7.2, 2.5))
    _blank(ax, (-0.75, xs[-1] + 0.75), (-1.45, 1.25))
    for x, label in zip(xs, slots):
        if label is None:
            _ellipsis(ax, (x, 0.0))
        else:
            _node(ax, (x, 0.0), label, filled=label == r"$x_0$")
    radius = [0.18 if label is None else NODE_RADIUS for label in slots]
    for i in range(len(slots) - 1):
        left, right = (xs[i], 0.0), (xs[i + 1], 0.0)
        # start and end on the rims, 50 degrees above (forward) or below (reverse) the axis of the chain
        up_l = (left[0] + radius[i] * 0.64, radius[i] * 0.77)
        up_r = (right[0] - radius[i + 1] * 0.64, radius[i + 1] * 0.77)
        _arrow(ax, up_l, up_r, FORWARD, rad=-0.45, gid="forward")
        _arrow(ax, (up_r[0], -up_r[1]), (up_l[0], -up_l[1]), REVERSE, rad=-0.45, ls="--", gid="reverse")
    mid = (xs[3] + xs[4]) / 2
    ax.text(mid, 0.78, r"$q(x_t \mid x_{t-1})$", ha="center", va="bottom", fontsize=10, color=FORWARD)
    ax.text(mid, -0.78, r"$p_\theta(x_{t-1} \mid x_t)$", ha="center", va="top", fontsize=10, color=REVERSE)
    ax.text(xs[0], -0.62, "data", ha="center", va="top", fontsize=9)
    ax.text(xs[-1], -0.62, r"$\approx\mathcal{N}(0, I)$", ha="center", va="top", fontsize=9)
    handles = [
        Line2D([], [], color=FORWARD, lw=1.3, label="forward process $q$: fixed, adds noise"),
        Line2D([], [], color=REVERSE, lw=1.3, ls="--", label=r"reverse process $p_\theta$: learned, removes it"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def ddim_forward_process() -> Figure:
    """DDIM's non-Markovian forward process q_sigma (the idea of DDIM fig. 1; DDIM eqs. (6)-(7); chapter 5).

    The chain x_1, ..., x_{t-1}, x_t, ..., x_T is built from the top down: x_T from x_0 alone, then each
    x_{t-1} from q_sigma(x_{t-1} | x_t, x_0). The clean image x_0 (shaded, at the bottom) has an arrow into
    every node, which is what makes the process non-Markovian: given x_{t-1}, x_t still depends on x_0.

    Returns:
        the Figure (7.2 x 3.2 in); chain arrows carry gid "chain", the arrows out of x_0 gid "from_x0" (dotted,
        "from_x0_elided", where they go to an ellipsis).
    """
    slots = [r"$x_1$", None, r"$x_{t-1}$", r"$x_t$", None, r"$x_T$"]
    step = 1.45
    xs = [i * step for i in range(len(slots))]
    top, x0_xy = 1.0, ((xs[0] + xs[-1]) / 2, -1.15)
    fig, (ax,) = _figure((7.2, 3.2))
    _blank(ax, (-0.75, xs[-1] + 0.75), (-2.05, 1.95))
    radius = [0.18 if label is None else NODE_RADIUS for label in slots]
    for x, label in zip(xs, slots):
        if label is None:
            _ellipsis(ax, (x, top))
        else:
            _node(ax, (x, top), label)
    _node(ax, x0_xy, r"$x_0$", color=DATA, filled=True)
    for i in range(len(slots) - 1, 0, -1):  # x_t -> x_{t-1}, from the right (t = T) to the left
        start, end = (xs[i] - radius[i], top), (xs[i - 1] + radius[i - 1], top)
        _arrow(ax, start, end, FORWARD, gid="chain")
    for x, label, r in zip(xs, slots, radius):
        node = (x, top)
        ls, gid = ("-", "from_x0") if label is not None else (":", "from_x0_elided")
        _arrow(ax, _rim(x0_xy, node, NODE_RADIUS), _rim(node, x0_xy, r + 0.05), DATA, ls=ls, gid=gid)
    ax.text(
        (xs[2] + xs[3]) / 2,
        top + 0.42,
        r"$q_\sigma(x_{t-1} \mid x_t, x_0)$",
        ha="center",
        va="bottom",
        fontsize=10,
        color=FORWARD,
    )
    ax.text(xs[-1] + 0.1, top + 0.42, r"$q_\sigma(x_T \mid x_0)$", ha="center", va="bottom", fontsize=10, color=DATA)
    ax.text(x0_xy[0] + 0.5, x0_xy[1], "the clean image feeds every step", ha="left", va="center", fontsize=9)
    handles = [
        Line2D([], [], color=FORWARD, lw=1.3, label=r"built from the top down: $x_t \to x_{t-1}$ (DDIM eq. (7))"),
        Line2D([], [], color=DATA, lw=1.3, label="conditioning on $x_0$: not a Markov chain"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


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


def subsequence_timeline(T: int = 1000, S: int = 10, spacings: Sequence[str] = ("uniform", "quadratic")) -> Figure:
    """The sub-sequences tau of DDIM sec. 4.2 on the timeline 0..T, one row per spacing (chapter 6).

    Every step of the full chain is a light tick; the S steps tau_1 < ... < tau_S of
    ``subsequences.timesteps(T, S, spacing)`` are dots, and the arcs above them are the S jumps the sampler
    makes, tau_S -> tau_{S-1} -> ... -> tau_1 -> 0.

    Returns:
        the Figure; row k's dots are the Line2D with gid ``"tau_" + spacings[k]`` (its x data is tau).
    """
    T = check_int_range("T", T, 2, 10**5)
    S = check_int_range("S", S, 1, min(T, 60))
    spacings = list(spacings)
    if not 1 <= len(spacings) <= len(SPACINGS):
        raise ValueError(f"spacings must hold 1 to {len(SPACINGS)} names, got {len(spacings)}")
    for name in spacings:
        check_choice("spacing", name, SPACINGS)
    fig, (ax,) = _figure((7.2, 0.9 + 0.85 * len(spacings)))
    rows = list(range(len(spacings)))[::-1]
    for row, name in zip(rows, spacings):
        taus = timesteps(T, S, name)
        ax.vlines(range(1, T + 1), row - 0.1, row + 0.1, color="0.75", lw=0.5, zorder=1)
        stops = [0, *taus]
        for high, low in zip(stops[:0:-1], stops[-2::-1]):  # tau_S -> tau_{S-1}, ..., tau_1 -> 0
            rad = 0.6 if high - low > 0.02 * T else 1.0
            ax.add_patch(
                FancyArrowPatch(
                    (high, row + 0.12),
                    (low, row + 0.12),
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color="C0",
                    lw=0.9,
                    connectionstyle=f"arc3,rad={rad * 0.25}",
                    shrinkA=0,
                    shrinkB=0,
                    zorder=2,
                )
            )
        ax.plot(taus, [row] * S, "o", color="C0", ms=4.5, zorder=3, gid=f"tau_{name}")
        ax.plot([0], [row], "s", color=DATA, ms=4.5, zorder=3)
    handles = [
        Line2D([], [], color="0.75", lw=0.8, label=f"the T = {T} steps of the chain"),
        Line2D([], [], color="C0", marker="o", ls="none", ms=4.5, label=rf"$\tau_i$: the S = {S} steps visited"),
        Line2D([], [], color="C0", lw=0.9, label="one DDIM step (right to left)"),
        Line2D([], [], color=DATA, marker="s", ls="none", ms=4.5, label="t = 0: the sample"),
    ]
    ax.set(xlim=(-0.02 * T, 1.02 * T), ylim=(-0.45, len(spacings) - 0.2), xlabel="timestep t")
    ax.set_yticks(rows, spacings)
    ax.set_ylabel("spacing")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
