"""Shipping a trained model: export the EMA weights, record them in the manifest, write the model card.

The file name carries the first 12 hex digits of the file's sha256, so shipping never overwrites the file
the manifest points to: the new file is written (atomically) beside the old one, then the manifest is
replaced in one atomic rename, and only then is the old file removed. At every moment the manifest names a
complete file with the recorded checksum; a stop at any point leaves either the old model or the new one
shipped, never a mismatch. ``$DDIM_BOOK_CHECKPOINTS`` redirects the folder (tests use it).

The entry holds the sha256 and size, the training config and schedule, the steps and images, the
training wall time (summed over resumed chunks, from train_log.csv), the machine and the command; the
training log and its loss curve are copied beside the model, and ``MODEL_CARD.md`` is regenerated.
``scripts/evaluate_shipped.py`` adds the quality figures afterwards.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path

import torch

from ddim_book import model_card
from ddim_book._io import atomic_write_text
from ddim_book.checkpoints import export_ema, load_checkpoint, load_model
from ddim_book.pretrained import MANIFEST, checkpoint_dir, sha256_of

__all__ = ["LIMITS", "ship", "write_manifest"]

DATA = {
    "train": "the 9,000 digits of `ddim_book.data.mnist_dataset('train')`: the MNIST test split (10,000 digits, "
    "LeCun, Cortes and Burges) less the 1,000 that `ddim_book.data.split_indices(10000, 1000, seed=0)` holds out",
    "held_out": "The other 1,000 (`mnist_dataset('held_out')`) are never trained on; every quality figure below "
    "is measured against them.",
}


LIMITS = (
    "It draws 28x28 grey MNIST-style digits and nothing else; it saw 9,000 digits, all from MNIST's test split.",
    "The quality figures use the book's own LeNet classifier (trained on the same 9,000 digits) as the feature "
    "network: FLD is not FID, and it measures closeness to this data set, not perceptual quality in general.",
    "The weights are stored in float16 and computed in float32; on a GPU, TF32 convolutions change samples "
    "slightly against the CPU's.",
    "Quality depends on the sampler: compare the S=10 and S=50 rows, and chapter 6's eta x S table.",
    "How the quality grows when the same recipe trains longer: BENCHMARKS.md, 'Training longer'.",
)


def training_time(log: Path) -> float:
    """Wall seconds of training: elapsed_s restarts at each resumed chunk, so sum the chunks' last values."""
    total, last = 0.0, 0.0
    with open(log) as f:
        for row in csv.DictReader(f):
            elapsed = float(row["elapsed_s"])
            if elapsed < last:
                total += last
            last = elapsed
    return total + last


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def write_manifest(root: Path, manifest: dict) -> None:
    """Replace manifest.json atomically and regenerate every model card from it."""
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for name, entry in manifest["models"].items():
        if "train_config" in entry:
            atomic_write_text(root / model_card.CARD_NAME, model_card.render(name, entry))


def ship(run: Path, name: str = "mnist", stem: str = "mnist_unet", device_note: str = "CPU", limits=()) -> dict:
    """Export ``run/last.pt`` as the shipped model ``name``; returns the new manifest entry."""
    root = checkpoint_dir()
    ckpt_path, log_path = run / "last.pt", run / "train_log.csv"
    for path in (ckpt_path, log_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: is {run} a training run folder?")
    ckpt = load_checkpoint(ckpt_path)
    manifest = json.loads((root / MANIFEST).read_text()) if (root / MANIFEST).exists() else {"models": {}}
    old = manifest["models"].get(name, {})

    staged = export_ema(ckpt_path, root / f".{stem}.staged.pt", dtype=torch.float16)
    digest = sha256_of(staged)
    final = root / f"{stem}-{digest[:12]}.pt"
    os.replace(staged, final)
    model, _ = load_model(final)  # the file loads before anything points to it
    log_name, plot_name = f"{stem}-{digest[:12]}_train_log.csv", f"{stem}-{digest[:12]}_loss.png"
    shutil.copyfile(log_path, root / log_name)
    config = ckpt["config"]
    model_card.plot_loss(log_path, root / plot_name, title=f"{config['name']}: L_simple during training")
    entry = {
        "file": final.name,
        "sha256": digest,
        "bytes": final.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "kind": "EMA weights (float16) of an epsilon-predicting U-Net",
        "training_steps": ckpt["step"],
        "images_seen": ckpt["step"] * config["batch_size"],
        "training_wall_seconds": round(training_time(log_path), 1),
        "trained_on": device_note,
        "machine": machine(),
        "train_config": config,
        "schedule": ckpt["schedule"],
        "data": DATA,
        "train_log": log_name,
        "loss_plot": plot_name,
        "known_limits": list(limits or LIMITS),
        "command": f"ddim-book train --config {config['name']} --max-minutes 30 (repeated until it reports "
        f"total_steps) && python scripts/ship_model.py {run}",
    }
    manifest["models"][name] = entry
    try:
        write_manifest(root, manifest)  # the switch: one atomic rename
    except BaseException:
        if final.name != old.get("file"):  # the old model stays shipped; nothing new is left behind
            for new in (final.name, log_name, plot_name):
                (root / new).unlink(missing_ok=True)
        raise
    for leftover in (old.get("file"), old.get("train_log"), old.get("loss_plot")):
        if leftover and leftover not in (final.name, log_name, plot_name):
            (root / leftover).unlink(missing_ok=True)
    return entry
