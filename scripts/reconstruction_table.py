"""DDIM encoding and consistency of the shipped MNIST model, cached for chapter 7.

    python scripts/reconstruction_table.py [--n 100] [--steps 10 20 50 100 200 500 1000] [--seed 0]

Two experiments, both with the deterministic sampler (eta = 0) and the uniform sub-sequence:

- **Reconstruction** (DDIM sec. 5.4): the first ``n`` held-out digits x_0 (``mnist_dataset("held_out")``,
  never seen in training) are encoded with ``samplers.ddim_invert`` and decoded with ``samplers.ddim_sample``
  using the same S; the error is the per-dimension mean squared error in the model's [-1, 1] pixel range
  (decoded images clipped to it), averaged over the digits, with its standard error, a 95% interval
  (mean +- 1.96 standard errors), the median and the maximum. DDIM's Table 2 (CIFAR10) uses the same S.
- **Consistency** (DDIM sec. 5.2): ``n`` latents x_T ~ N(0, I) (seeded) are decoded with every S; the mean
  absolute pixel difference is reported between the decodings of one latent with two different S, and
  between the decodings of two different latents with the same S.

Writes ``data/results/reconstruction.json`` with the model's sha256 from the manifest, the command, the
seed, n, the wall time of each part and the machine. About 2 * sum(S) forward passes on n digits for the
reconstruction and sum(S) for the consistency part: about 15 minutes for the defaults on a 2-core CPU.
Resumable: the file is rewritten after every S, and rows already there for the same model, n and seed are
kept. A corrupt file is reported with the command that rebuilds it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from ddim_book import pretrained, samplers
from ddim_book._io import atomic_write_text, read_json_record
from ddim_book.data import mnist_dataset

ROOT = Path(__file__).resolve().parents[1]


def reconstruction_errors(model, schedule, x0: torch.Tensor, steps: int) -> dict:
    """Encode x0 -> x_T -> decode with S = ``steps`` (eta = 0); summary of the per-digit MSE (DDIM sec. 5.4; chapter 7).

    The decoded images are clipped to the pixel range [-1, 1] before the error is taken.
    x0: float (n, 1, 28, 28). Also reports the spread of the encoded latent: its per-pixel standard deviation
    and |x_T| / sqrt(d), both near 1 when the encoding looks like a draw from N(0, I).
    """
    start = time.perf_counter()
    x_T = samplers.ddim_invert(model, schedule, x0, steps=steps, progress=False)
    x_rec = samplers.ddim_sample(model, schedule, x_T, steps=steps, progress=False).clamp(-1, 1)
    mse = (x_rec - x0).double().pow(2).flatten(1).mean(1)
    d = x0[0].numel()
    n = mse.numel()
    return {
        "steps": steps,
        "mse_mean": mse.mean().item(),
        "mse_sem": (mse.std().item() / math.sqrt(n)) if n > 1 else float("nan"),
        "mse_low": max(0.0, mse.mean().item() - 1.96 * mse.std().item() / math.sqrt(n)) if n > 1 else float("nan"),
        "mse_high": mse.mean().item() + 1.96 * mse.std().item() / math.sqrt(n) if n > 1 else float("nan"),
        "mse_median": mse.median().item(),
        "mse_max": mse.max().item(),
        "latent_std": x_T.double().std().item(),
        "latent_norm_over_sqrt_d": (x_T.double().flatten(1).norm(dim=1) / math.sqrt(d)).mean().item(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def consistency(model, schedule, x_T: torch.Tensor, steps: list[int]) -> dict:
    """Decode each latent of x_T (n, 1, 28, 28) with every S in ``steps`` (DDIM sec. 5.2; chapter 7); mean |difference|
    per pixel of the decoded images, clipped to [-1, 1].

    ``same_latent[i][j]``: between S = steps[i] and S = steps[j] for the same x_T, averaged over the latents.
    ``different_latents[i]``: between two different latents decoded with S = steps[i], averaged over all pairs.
    """
    start = time.perf_counter()
    decoded = [samplers.ddim_sample(model, schedule, x_T, steps=S, progress=False).clamp(-1, 1).double() for S in steps]
    same = [[(a - b).abs().mean().item() for b in decoded] for a in decoded]
    pairs = list(itertools.combinations(range(x_T.shape[0]), 2))
    i, j = (torch.tensor(p) for p in zip(*pairs))
    different = [(x[i] - x[j]).abs().mean().item() for x in decoded]
    return {
        "steps": list(steps),
        "same_latent": same,
        "different_latents": different,
        "seconds": round(time.perf_counter() - start, 1),
    }


def read_cache(path: Path) -> dict:
    """The cached record, or {} if there is none; a clear error naming the rebuilding command if it is corrupt."""
    return read_json_record(path, "python scripts/reconstruction_table.py", "reconstruction", list)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="held-out digits, and latents for consistency (default 100)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 200, 500, 1000], help="values of S")
    parser.add_argument("--consistency-steps", type=int, nargs="+", default=[10, 20, 50, 100], help="S for sec. 4")
    parser.add_argument("--seed", type=int, default=0, help="seed of the consistency latents")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "results" / "reconstruction.json")
    args = parser.parse_args(argv)
    if not 2 <= args.n <= 1000:
        parser.error(f"--n must be in 2..1000 (the held-out digits), got {args.n}")
    if any(not 1 <= S <= 1000 for S in args.steps + args.consistency_steps):
        parser.error(f"every --steps value must be in 1..1000, got {args.steps + args.consistency_steps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, schedule = pretrained.load("mnist")
    entry = pretrained.entry("mnist")
    old = read_cache(args.out)
    same_run = old.get("model", {}).get("sha256") == entry["sha256"] and old.get("n") == args.n
    same_run = same_run and old.get("seed") == args.seed
    done = {row["steps"]: row for row in old.get("reconstruction", [])} if same_run else {}
    record = {
        "description": "DDIM (eta = 0) reconstruction error and consistency of the shipped MNIST model, chapter 7",
        "command": shlex.join(["python", "scripts/reconstruction_table.py", *(sys.argv[1:] if argv is None else argv)]),
        "model": {"name": "mnist", "sha256": entry["sha256"], "training_steps": entry.get("training_steps")},
        "data": f"the first {args.n} digits of mnist_dataset('held_out'), pixels in [-1, 1]",
        "mse": "per-dimension mean squared error in [-1, 1] units (divide by 4 for a [0, 1] pixel scale)",
        "interval": "95%: mean +- 1.96 standard errors over the digits",
        "spacing": "uniform",
        "n": args.n,
        "seed": args.seed,
        "reconstruction": [],
        "consistency": old.get("consistency") if same_run else None,
        "machine": {
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },  # fmt: skip
    }

    def save():
        record["reconstruction"] = [done[S] for S in sorted(done)]
        record["wall_time_s"] = round(sum(r["seconds"] for r in done.values()) + (record["consistency"] or {}).get(
            "seconds", 0.0), 1)  # fmt: skip
        atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")

    x0 = mnist_dataset("held_out")[0][: args.n]
    for S in sorted(args.steps):
        if S in done:
            continue
        done[S] = reconstruction_errors(model, schedule, x0, S)
        save()
        print(f"S = {S:4d}: MSE {done[S]['mse_mean']:.5f} ({done[S]['seconds']} s)", flush=True)
    if record["consistency"] is None or record["consistency"]["steps"] != list(args.consistency_steps):
        x_T = torch.randn((args.n, 1, 28, 28), generator=torch.Generator().manual_seed(args.seed))
        record["consistency"] = consistency(model, schedule, x_T, args.consistency_steps)
    save()
    print(f"wrote {args.out} ({record['wall_time_s']} s of work in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
