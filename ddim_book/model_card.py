"""The model card of a shipped model: Markdown generated from its manifest entry, and its loss curve.

    python scripts/ship_model.py runs/mnist        # writes the model, its manifest entry and the card
    python scripts/evaluate_shipped.py             # adds the quality figures to the entry; rewrites the card

Every number on the card is read from ``data/checkpoints/manifest.json`` (and the loss curve from the
training log named there), so the card cannot disagree with the manifest; a test checks that the card
on disk is exactly what :func:`render` makes of the manifest.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["CARD_NAME", "plot_loss", "render"]

CARD_NAME = "MODEL_CARD.md"


def _cooldown(cfg: dict) -> str:
    """The lr cool-down of a training config, as a phrase of the card ('' when the lr stays constant)."""
    steps = cfg.get("lr_decay_steps", 0)
    return f"falling linearly to 0 over the last {steps:,} steps, " if steps else ""


def _quality_rows(quality: dict) -> list[str]:
    rows = [
        "| setting | n | FLD [95% interval] | real digits' FLD | FLD / real | confidence | class shares (min-max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, q in sorted(quality.items()):  # the manifest stores keys sorted; the card follows the same order
        shares = q["class_shares"]
        rows.append(
            f"| {name} | {q['n']} | {q['fld']:.2f} [{q['fld_low']:.2f}, {q['fld_high']:.2f}] | {q['real_fld']:.2f} "
            f"| {q['fld_ratio']:.2f} | {q['confidence']:.3f} | {min(shares):.3f}-{max(shares):.3f} |"
        )
    return rows


# The book's targets for a shipped MNIST model: (setting, what, test on the scores).
TARGETS = (
    ("DDIM S=50, eta=0", "FLD <= 1.5 x real digits' FLD", lambda q: q["fld_ratio"] <= 1.5),
    ("DDIM S=50, eta=0", "confidence >= 0.95", lambda q: q["confidence"] >= 0.95),
    ("DDIM S=10, eta=0", "confidence >= 0.92", lambda q: q["confidence"] >= 0.92),
    ("DDIM S=50, eta=0", "every class 6%-14% of the samples", lambda q: 0.06 <= min(q["class_shares"])
     and max(q["class_shares"]) <= 0.14),
)  # fmt: skip


def target_verdicts(settings: dict) -> list[tuple[str, str, bool | None]]:
    """(setting, target, holds) for each of :data:`TARGETS`; holds is None where the setting was not scored."""
    return [(s, what, test(settings[s]) if s in settings else None) for s, what, test in TARGETS]


def render(name: str, entry: dict) -> str:
    """The Markdown card of manifest entry ``entry`` (shipped under ``name``)."""
    cfg, machine = entry["train_config"], entry["machine"]
    minutes = entry["training_wall_seconds"] / 60
    lines = [
        f"# Model card: `{name}`",
        "",
        "Generated from `manifest.json` by `ddim_book.model_card`; do not edit by hand.",
        "",
        f"- **File**: `{entry['file']}`, {entry['bytes'] / 1e6:.2f} MB, sha256 `{entry['sha256']}`.",
        f"- **What it is**: {entry['kind']}; {entry.get('parameters', 0):,} parameters; "
        f"model config `{entry['train_config']['model']}`.",
        f"- **Schedule**: {entry['schedule']['kind']} betas {entry['schedule'].get('beta_start')} to "
        f"{entry['schedule'].get('beta_end')}, T = {entry['schedule']['T']}; the model predicts epsilon "
        "(DDPM eq. (14)).",
        f"- **Data**: {entry.get('data', {}).get('train', 'see the training config')}. "
        f"{entry.get('data', {}).get('held_out', '')}",
        f"- **Training**: config `{cfg['name']}`; {entry['training_steps']:,} steps of batch {cfg['batch_size']} = "
        f"{entry['images_seen']:,} images; AdamW lr {cfg['lr']:g} after {cfg['warmup_steps']} warm-up steps, "
        + _cooldown(cfg)
        + f"gradient clipping at {cfg['grad_clip']:g}, EMA decay {cfg['ema_decay']:g}, dropout "
        f"{cfg['model'].get('dropout')}, seed {cfg['seed']}.",
        f"- **Wall time**: {minutes:.1f} min on {entry['trained_on']} ({machine['cpu']}, {machine['cores']} cores, "
        f"torch {machine['torch']}).",
        f"- **Reproduce**: `{entry['command']}`.",
        "",
    ]
    if entry.get("loss_plot"):
        lines += [f"![training loss]({entry['loss_plot']})", ""]
    quality = entry.get("quality")
    if quality:
        q = quality
        lines += [
            "## Sample quality",
            "",
            f"{q['protocol']}",
            "",
            *_quality_rows(q["settings"]),
            "",
            "| target | setting | holds |",
            "|---|---|---|",
            *[f"| {what} | {s} | {'not scored' if ok is None else ('yes' if ok else '**no**')} |"
              for s, what, ok in target_verdicts(q["settings"])],
            "",
        ]  # fmt: skip
        previous = q.get("previous_model")
        if previous:
            lines += [
                f"An earlier shipped model ({previous['images_seen']:,} training images, sha256 "
                f"`{previous['sha256'][:16]}...`), scored the same way with the same x_T:",
                "",
                *_quality_rows(previous["settings"]),
                "",
            ]
            if previous.get("change"):
                lines += [
                    "The change of the FLD from that model to this one, with the 95% interval of the paired bootstrap "
                    "(image i of both sets grew from the same x_T, and both were resampled at the same positions):",
                    "",
                    "| setting | FLD change [paired 95% interval] | larger than its noise |",
                    "|---|---|---|",
                    *[f"| {name} | {d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | "
                      f"{'yes' if d['high'] < 0 or d['low'] > 0 else 'no'} |"
                      for name, d in sorted(previous["change"].items())],
                    "",
                ]  # fmt: skip
    lines += ["## Known limits", ""] + [f"- {item}" for item in entry.get("known_limits", [])]
    return "\n".join(lines) + "\n"


def plot_loss(log_csv: str | Path, out_png: str | Path, title: str = "") -> Path:
    """Plot L_simple (log scale) against images seen from a training log (``step,loss,...`` CSV)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [], []
    with open(log_csv) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            losses.append(float(row["loss"]))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(steps, losses, lw=1)
    ax.set(yscale="log", xlabel="training step", ylabel="L_simple (mean over 50 steps)", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
