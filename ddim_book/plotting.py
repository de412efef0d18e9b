"""Figures the chapters and the command line share: image grids and a compact book style."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def book_style() -> None:
    """Figures readable on a laptop and a projector: 110 dpi, no text below 8 pt, moderate canvases."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "figure.figsize": (6.0, 3.2),
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
        }
    )


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images into one array.

    Args:
        x: (N, C, H, W) or (N, H, W) tensor with values in [-1, 1] (the model range); C = 1 or 3.
        nrow: images per row (default: about sqrt(N)).
        pad: pixels of background between tiles.
    Returns:
        float array in [0, 1] of shape (rows*(H+pad)-pad, nrow*(W+pad)-pad) or with a trailing 3 for RGB.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[0] < 1:
        raise ValueError(f"x must be a tensor (N, C, H, W) or (N, H, W) with N >= 1, got {getattr(x, 'shape', x)}")
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {x.shape[1]}")
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.zeros((c, rows * (h + pad) - pad, nrow * (w + pad) - pad), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def grid_png_bytes(x: torch.Tensor, nrow: int | None = None, scale: int = 2) -> bytes:
    """An image grid encoded as PNG (nearest-neighbour upscaled by ``scale``)."""
    import io

    import matplotlib.image

    grid = image_grid(x, nrow)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buffer.getvalue()


def save_grid(x: torch.Tensor, path, nrow: int | None = None, scale: int = 2) -> Path:
    """Write an image grid as a PNG (nearest-neighbour upscaled by ``scale``), atomically; returns the path."""
    from ddim_book._io import atomic_write

    data = grid_png_bytes(x, nrow, scale)
    return atomic_write(path, lambda f: f.write(data))


def show_grid(x: torch.Tensor, ax=None, title: str | None = None, nrow: int | None = None):
    """Draw an image grid on a matplotlib axis (a new figure if None); returns the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(image_grid(x, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
