"""DDPM's and DDIM's chains as graphical models, and a sub-sequence tau on the timeline (chapters 2, 5 and 6)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ddim_book._checks import check_choice, check_int_range
from ddim_book.diagrams._draw import (
    DATA,
    FORWARD,
    NODE_RADIUS,
    REVERSE,
    _arrow,
    _blank,
    _ellipsis,
    _figure,
    _node,
    _rim,
)
from ddim_book.subsequences import SPACINGS, timesteps


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
