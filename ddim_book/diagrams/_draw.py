"""Drawing helpers shared by the diagrams: figures of at least 110 dpi, nodes, arrows (no mathematics here)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch

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
