"""Export a training run's EMA weights as a shipped model, with its manifest entry and model card.

    ddim-book train --config mnist --max-minutes 30     # as many resumed chunks as it takes
    python scripts/ship_model.py runs/mnist             # -> data/checkpoints/mnist_unet-<sha>.pt, manifest, card

How the switch stays atomic: see :mod:`ddim_book.shipping`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddim_book.shipping import ship


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the training run folder (holds last.pt and train_log.csv)")
    parser.add_argument("--name", default="mnist", help="manifest name (default mnist)")
    parser.add_argument("--stem", default="mnist_unet", help="file name stem in data/checkpoints")
    parser.add_argument("--device-note", default="CPU", help="what the run trained on, for the record")
    args = parser.parse_args(argv)
    try:
        entry = ship(args.run, args.name, args.stem, args.device_note)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"shipped {entry['file']} ({entry['bytes'] / 1e6:.2f} MB, step {entry['training_steps']}) as {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
