"""Export a training run's EMA weights as the shipped model and record it in data/checkpoints/manifest.json.

    ddim-book train --config mnist-small                 # as many resumed runs as it takes
    python scripts/ship_model.py runs/mnist-small        # -> data/checkpoints/mnist_unet.pt + manifest entry

The manifest entry holds the file's sha256 and size, the training config and schedule, the steps, the
training wall time (summed over resumed runs, from train_log.csv), the machine and the command. The
training loss log is copied beside the model. The metric classifier's own record
(mnist_classifier.json, written by scripts/train_classifier.py) is merged into the manifest too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import torch

from ddim_book.pretrained import CHECKPOINT_DIR, MANIFEST, sha256_of
from ddim_book.training import export_ema, load_checkpoint


def _training_time(log: Path) -> float:
    """Wall seconds of training: elapsed_s restarts at each resumed run, so sum the runs' last values."""
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the training run folder (holds last.pt and train_log.csv)")
    parser.add_argument("--name", default="mnist", help="manifest name (default mnist)")
    parser.add_argument("--file", default="mnist_unet.pt", help="file name in data/checkpoints")
    parser.add_argument("--device-note", default="CPU", help="what the run trained on, for the record")
    args = parser.parse_args(argv)

    ckpt = load_checkpoint(args.run / "last.pt")
    out = export_ema(args.run / "last.pt", CHECKPOINT_DIR / args.file, dtype=torch.float16)
    log_name = Path(args.file).stem + "_train_log.csv"
    shutil.copyfile(args.run / "train_log.csv", CHECKPOINT_DIR / log_name)
    config = ckpt["config"]
    entry = {
        "file": args.file,
        "sha256": sha256_of(out),
        "bytes": out.stat().st_size,
        "kind": "EMA weights (float16) of an epsilon-predicting U-Net",
        "training_steps": ckpt["step"],
        "images_seen": ckpt["step"] * config["batch_size"],
        "training_wall_seconds": round(_training_time(args.run / "train_log.csv"), 1),
        "trained_on": args.device_note,
        "machine": machine(),
        "train_config": config,
        "schedule": ckpt["schedule"],
        "train_log": log_name,
        "command": f"ddim-book train --config {config['name']} && python scripts/ship_model.py {args.run}",
    }
    path = CHECKPOINT_DIR / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    manifest["models"][args.name] = entry
    classifier = CHECKPOINT_DIR / "mnist_classifier.json"
    if classifier.exists():
        manifest["models"]["mnist-classifier"] = json.loads(classifier.read_text())
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out} ({entry['bytes'] / 1e6:.2f} MB, step {entry['training_steps']}) and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
