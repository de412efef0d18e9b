"""Cache DDPM Algorithm 2 samples of the shipped MNIST model for chapter 4 (T = 1000 model calls per chain).

    python scripts/ddpm_samples.py [--n 8] [--seed 0] [--threads 1]

Runs ``samplers.ddpm_sample`` twice from the same x_T, with sigma_t^2 = beta_tilde_t and with
sigma_t^2 = beta_t (DDPM sec. 3.2), and keeps the trajectory of the first run at a few timesteps: the
noisy x_t and the model's x_0 prediction (DDPM fig. 6, "progressive generation"). Writes

- ``data/results/ddpm_samples.npz``: uint8 images (0..255 = [-1, 1], values outside clipped):
  ``samples`` (2, n, 28, 28) in the order of ``variances``; ``x_t`` and ``x0_pred`` (n, K, 28, 28) at
  ``strip_t`` (K timesteps) of the beta_tilde run;
- ``data/results/ddpm_samples.json``: the model's sha256 from the manifest, the command, the seed, n,
  the timesteps, the wall time and the machine.

About 2,000 forward passes on n digits: a minute or two for n = 8 on a quiet 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ddim_book import pretrained, samplers
from ddim_book.data import to_uint8

ROOT = Path(__file__).resolve().parents[1]
VARIANCES = ("beta_tilde", "beta")
STRIP_T = (1000, 800, 600, 400, 250, 150, 50, 1)


def run(model, schedule, n: int, seed: int, strip_t=STRIP_T) -> dict[str, np.ndarray]:
    """The arrays of the cache: DDPM samples for both variances from one x_T, and the beta_tilde strip.

    x_T ~ N(0, I) of shape (n, 1, 28, 28) from ``seed``; the chain's noise from ``seed + 1`` (the same
    stream for both variances). Returns uint8 arrays as described in the module docstring.
    """
    x_T = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))
    samples, strip = [], None
    for variance in VARIANCES:
        gen = torch.Generator().manual_seed(seed + 1)
        traj = samplers.ddpm_sample(
            model, schedule, x_T, variance=variance, generator=gen, return_trajectory=True, progress=False
        )
        samples.append(to_uint8(traj.sample))
        if strip is None:
            # x0_preds[i] is predicted at traj.timesteps[i] = T - i from the input xs[i], i.e. x_t at that t
            index = [traj.timesteps.index(t) for t in strip_t]
            strip = {
                "x_t": torch.stack([to_uint8(traj.xs[i]) for i in index], dim=1),
                "x0_pred": torch.stack([to_uint8(traj.x0_preds[i]) for i in index], dim=1),
            }
        del traj
    return {
        "samples": torch.stack(samples).numpy(),
        "x_t": strip["x_t"].numpy(),
        "x0_pred": strip["x0_pred"].numpy(),
        "strip_t": np.array(strip_t, dtype=np.int64),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="digits per variance (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "results" / "ddpm_samples.npz")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 256:
        parser.error(f"--n must be in 1..256, got {args.n}")
    torch.set_num_threads(args.threads)
    model, schedule = pretrained.load("mnist")
    start = time.perf_counter()
    arrays = run(model, schedule, args.n, args.seed)
    wall = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    entry = pretrained.entry("mnist")
    record = {
        "description": "DDPM Algorithm 2 samples (T = 1000) of the shipped MNIST model, chapter 4",
        "command": shlex.join(["python", "scripts/ddpm_samples.py", *(sys.argv[1:] if argv is None else argv)]),
        "file": args.out.name,
        "model": {"name": "mnist", "sha256": entry["sha256"], "training_steps": entry.get("training_steps")},
        "variances": list(VARIANCES),
        "strip_t": list(STRIP_T),
        "n": args.n,
        "seed": args.seed,
        "T": schedule.T,
        "wall_time_s": round(wall, 1),
        "machine": {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version()},
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json').name} in {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
