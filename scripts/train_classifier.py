"""Train the MNIST classifier used by the sample-quality metrics and ship it (chapter 6).

Writes ``data/checkpoints/mnist_classifier.pt`` (float16 weights, written atomically) and its record
``mnist_classifier.json`` (sha256, size, architecture, epochs, seed, accuracies, wall time, machine and the
exact command). Trains on the 9,000 "train" digits only; the 1,000 "held_out" digits measure the accuracy.
About a minute of CPU time (wall time grows when the machine is shared).

    python scripts/train_classifier.py [--epochs 15] [--seed 0] [--out data/checkpoints/mnist_classifier.pt]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from ddim_book.data import mnist_dataset
from ddim_book.metrics.classifier import accuracy, default_classifier_path, save_classifier, train_classifier


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--max-shift", type=int, default=2, help="augmentation: random shifts of up to this many pixels"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=default_classifier_path())
    parser.add_argument("--min-accuracy", type=float, default=0.985, help="fail (exit 1) below this held-out accuracy")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    train_x, train_y = mnist_dataset("train")
    held_x, held_y = mnist_dataset("held_out")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start, cpu_start = time.perf_counter(), time.process_time()
    model, history = train_classifier(
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        max_shift=args.max_shift,
        images=train_x,
        labels=train_y,
        log=lambda s: print(
            f"epoch {s['epoch']:3d}  loss {s['loss']:.4f}  train acc (augmented) {s['train_accuracy_augmented']:.4f}",
            flush=True,
        ),
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    held_acc, train_acc = accuracy(model, held_x, held_y), accuracy(model, train_x, train_y)
    print(f"held-out accuracy {held_acc:.4f}  train accuracy {train_acc:.4f}  wall {wall:.1f} s")

    record = {
        "description": "LeNet-style MNIST classifier; features() is the feature space of the Frechet LeNet Distance",
        "data": "ddim_book.data.mnist_dataset('train'): 9,000 of the 10,000 MNIST test-split digits",
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": "AdamW, weight_decay 1e-4, cosine decay to 0",
        "augmentation": f"random shifts of up to {args.max_shift} pixels",
        "held_out_accuracy": held_acc,
        "held_out_size": int(held_x.shape[0]),
        "train_accuracy": train_acc,
        "train_size": int(train_x.shape[0]),
        "wall_time_s": round(wall, 2),
        "cpu_time_s": round(cpu, 2),
        "load_average_at_start": load_before,
        "machine": {
            "processor": platform.processor() or _cpu_model(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "command": "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "log": history,
    }
    if held_acc < args.min_accuracy:
        print(f"held-out accuracy {held_acc:.4f} is below --min-accuracy {args.min_accuracy}; nothing written")
        return 1
    saved = save_classifier(model, args.out, record)
    print(f"wrote {args.out} ({saved['size_bytes']} bytes, sha256 {saved['sha256'][:12]}...) and its .json record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
