"""What a training run writes besides checkpoints: ``train_log.csv`` and sample-grid PNGs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from ddim_book.plotting import image_grid

__all__ = ["LOG_COLUMNS", "TrainLog", "save_sample_figure", "write_preview"]

LOG_COLUMNS = ("step", "loss", "lr", "images_per_s", "elapsed_s", "grad_norm")


class TrainLog:
    """Append-only CSV of the logging intervals: step, mean loss over the interval, learning rate,
    images per second (all processes together), cumulative training seconds, mean gradient norm
    before clipping (NaN when clipping is off).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Drop rows past ``step`` (written after the checkpoint a run resumes from)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        if len(kept) != len(rows):
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)

    def append(self, **row) -> None:
        """Write one row (keys: ``LOG_COLUMNS``); the header is written with the first row."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(LOG_COLUMNS)
            writer.writerow([_fmt(row[c]) for c in LOG_COLUMNS])

    def read(self) -> list[dict]:
        """All rows as dicts of floats (step as int)."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return [{k: int(v) if k == "step" else float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _fmt(value) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def save_sample_figure(samples: torch.Tensor, path: str | os.PathLike, data: torch.Tensor | None = None, title=""):
    """Save samples as a PNG: images (N, C, H, W) in [-1, 1] as a grid, points (N, 2) as a scatter plot
    over a grey scatter of ``data`` (N', 2) when given."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, works without a display

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.subplots()
    if samples.ndim == 4:
        ax.imshow(image_grid(samples), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_axis_off()
    elif samples.ndim == 2 and samples.shape[1] == 2:
        if data is not None:
            ref = data[:2000].detach().float().cpu().numpy()
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data")
        pts = samples.detach().float().cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:blue", label="samples")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize="small", markerscale=4)
    else:
        raise ValueError(f"samples must be images (N, C, H, W) or points (N, 2), got shape {tuple(samples.shape)}")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)


@torch.no_grad()
def write_preview(model, schedule, data: torch.Tensor, n: int, steps: int, seed: int, path, title: str = "") -> Path:
    """Sample ``n`` examples with deterministic DDIM (eta = 0, ``steps`` steps; DDIM eq. (12), chapter 6)
    from noise fixed by ``seed`` (the same noise at every step of training, so grids are comparable),
    and save them with :func:`save_sample_figure`. ``data`` (N, ...) gives the shape and the device."""
    from ddim_book.samplers import ddim_sample

    generator = torch.Generator().manual_seed(seed)
    x_T = torch.randn((n, *data.shape[1:]), generator=generator).to(data.device)
    steps = min(steps, schedule.T)
    x0 = ddim_sample(model, schedule, x_T, steps=steps, eta=0.0, progress=False)
    reference = data if data.ndim == 2 else None
    save_sample_figure(x0, path, data=reference, title=f"{title}, EMA, DDIM S={steps}".lstrip(", "))
    return Path(path)
