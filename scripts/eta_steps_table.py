"""The eta x S table of chapter 6: DDIM sample quality for each noise level eta and number of steps S.

    python scripts/eta_steps_table.py --setting mixture                  # 2-D mixture, exact oracle (minutes)
    python scripts/eta_steps_table.py --setting mnist --estimate         # time the U-Net: cost per cell, no table
    python scripts/eta_steps_table.py --setting mnist                    # the shipped U-Net (hours on 2 CPU cores)

Settings (DDIM eq. (12) along the sub-sequence of DDIM sec. 4.2, ``samplers.ddim_sample``, no clipping):

- ``mixture``: the exact eps of ``GaussianMixtureOracle.ring_2d`` (float64), so only the sampler's own error is
  left. Metric: sliced Wasserstein distance of the n samples to n exact samples, after folding both onto one
  wedge of the ring (see :func:`fold_ring`), plus the plain sliced distance and the within-mode spread; baseline:
  the same numbers for 8 fresh exact sets of n points, what a perfect sampler scores at this n.
- ``mnist``: the shipped EMA U-Net (float32). Final samples are clamped to [-1, 1]. Metrics: the Fréchet LeNet
  Distance (FLD, not FID) against the 1,000 held-out digits with a 95% bootstrap interval
  (:func:`ddim_book.metrics.fld_bootstrap`, whose 200 resampled values each cell keeps as ``fld_boot`` for the
  paired comparisons of :func:`ddim_book.metrics.paired_difference`), and the classifier's confidence and
  coverage; anchors at the same
  n and reference: n real "train" digits, and n clipped Gaussian-noise images. n = 1000 per cell, except the
  S = 1000 cells, which use the first ``--n-long`` (default 500) of the same x_T: they cost 10x the S = 100 ones.

Seeds: x_T from ``seed``, the sampler's noise from ``seed + 1`` (the same draws for every cell), exact or real
reference sets from ``seed + 2`` and ``seed + 3``. Every cell starts from the same x_T.

Resumable: the JSON (default ``data/results/eta_steps_<setting>.json``) is rewritten after every cell; a cell
already there with the same model (sha256), recipe, n, seed and spacing is skipped. Cells run cheapest first.
Several processes may fill one file at once (say ``--etas 0 0.2`` and ``--etas 0.5 1 sigma_hat`` on two cores):
each write re-reads the file under a lock and keeps the other processes' cells.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ddim_book import pretrained, samplers
from ddim_book._io import atomic_write_text, read_json_record
from ddim_book.metrics import fold_ring
from ddim_book.schedules import NoiseSchedule

ROOT = Path(__file__).resolve().parents[1]
STEPS = (10, 20, 50, 100, 1000)
ETAS = ("0", "0.2", "0.5", "1", "sigma_hat")
DEFAULT_N = {"mixture": 4000, "mnist": 1000}
MIXTURE_ID = "oracle GaussianMixtureOracle.ring_2d(k=8, radius=1.5, std=0.15), linear schedule T=1000"


def parse_eta(text: str):
    """``samplers.parse_eta`` for argparse: 'sigma_hat' or a finite number >= 0 (DDIM eq. (16) with that eta)."""
    try:
        return samplers.parse_eta(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def eta_label(eta) -> str:
    """The key of an eta in the JSON: 'sigma_hat', or the number written as '%g' ('0', '0.2', '1')."""
    return eta if eta == "sigma_hat" else f"{float(eta):g}"


def write_json(path: Path, data: dict) -> None:
    """Write atomically: an interrupted run never leaves a torn file."""
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path``.lock while the block runs (POSIX; elsewhere one process per file)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_and_write(path: Path, results: dict, cells: dict) -> None:
    """Write ``results`` with ``cells`` plus the current model's cells another process wrote meanwhile."""
    with locked(path):
        on_disk = read_results(path)
        for c in on_disk.get("cells", []):
            if c["model"] == results["model"] and (c["eta"], c["steps"]) not in cells:
                cells[(c["eta"], c["steps"])] = c
        for n_key, anchor in on_disk.get("baselines", {}).items():
            results["baselines"].setdefault(n_key, anchor)
        earlier = on_disk.get("computed_by", []) if on_disk.get("model") == results["model"] else []
        results["computed_by"] = list(dict.fromkeys(earlier + [results["command"]]))
        results["cells"] = sorted(cells.values(), key=lambda c: (c["steps"], ETAS.index(c["eta"])))
        write_json(path, results)


def read_results(path: Path) -> dict:
    """The JSON at ``path`` ({} if absent); a corrupt file stops the run with the command that rebuilds it."""
    return read_json_record(path, "python scripts/eta_steps_table.py", "cells", list)


class Mixture:
    """The 2-D ring mixture with its exact oracle: samples (n, 2) float64; metrics on the folded points."""

    baseline_draws = 8

    def __init__(self, n: int, seed: int):
        from ddim_book.metrics import sliced_wasserstein
        from ddim_book.oracles import GaussianMixtureOracle

        self.schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)
        self.model = GaussianMixtureOracle.ring_2d(self.schedule)
        self.x_T = torch.randn((n, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        # a reference of the same size n keeps the sliced distance cheap (the quantile levels coincide)
        exact = self.model.sample(n, 0, torch.Generator().manual_seed(seed + 2))
        self.exact, self.reference, self._sw = exact, fold_ring(exact), sliced_wasserstein
        self.identity, self.seed = MIXTURE_ID, seed
        self.recipe = "folded sliced W2 (256 projections) to n exact samples; x_T seed, noise seed + 1, exact seed + 2"
        # a perfect sampler: fresh exact sets of n points, scored like the samplers' output
        gen = torch.Generator().manual_seed(seed + 3)
        draws = [self.evaluate(self.model.sample(n, 0, gen)) for _ in range(self.baseline_draws)]
        self.baseline = {"n": n, "draws": self.baseline_draws}
        for key in draws[0]:
            values = torch.tensor([d[key] for d in draws], dtype=torch.float64)
            self.baseline[key] = {"mean": float(values.mean()), "sd": float(values.std()), "max": float(values.max())}

    def sample(self, steps: int, eta, spacing: str, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + 1)
        return samplers.ddim_sample(
            self.model, self.schedule, self.x_T[:n], steps, eta, spacing, generator=gen, progress=False
        )

    def evaluate(self, samples: torch.Tensor) -> dict:
        """Folded sliced W2 to the exact reference, plain sliced W2, and the within-mode spread (exact: 0.15)."""
        folded = fold_ring(samples)
        spread = ((folded - torch.tensor([1.5, 0.0], dtype=torch.float64)) ** 2).mean().sqrt()
        return {
            "sliced_w2_folded": self._sw(folded, self.reference),
            "sliced_w2": self._sw(samples, self.exact),
            "mode_spread": float(spread),
        }


class Mnist:
    """The shipped U-Net; samples (n, 1, 28, 28) float32 clamped to [-1, 1], generated in batches."""

    def __init__(self, n: int, seed: int, batch: int):
        from ddim_book.data import mnist_dataset
        from ddim_book.metrics import classifier_scores, evaluate_samples, frechet_lenet_distance, load_classifier
        from ddim_book.metrics.classifier import default_classifier_path, sha256_of

        self.model, self.schedule = pretrained.load("mnist")
        self.identity = pretrained.entry("mnist")["sha256"]
        self.classifier = load_classifier()
        self._evaluate = evaluate_samples
        self.x_T = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))
        self.seed, self.batch = seed, batch
        self.recipe = ("FLD to the 1000 held-out digits with a 95% normal bootstrap interval (200 resamples at "
                       "positions drawn from the seed, kept for paired differences), samples clamped to [-1, 1]; x_T "
                       "seed, noise seed + 1")  # fmt: skip
        self._train = mnist_dataset("train")[0]
        self._scores, self._fld, self._sha = classifier_scores, frechet_lenet_distance, sha256_of
        self._classifier_path = default_classifier_path()
        self.baseline = self.baseline_at(n)

    def baseline_at(self, n: int) -> dict:
        """The anchors at n: n real training digits and n clipped noise images against the held-out digits."""
        seed, train = self.seed, self._train
        real = train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed + 2))[:n]]
        noise = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed + 3)).clamp(-1, 1)
        frechet_lenet_distance, classifier_scores = self._fld, self._scores
        return {
            "n": n,
            "reference": "held_out",
            "real_vs_real": frechet_lenet_distance(real, "held_out", self.classifier),
            "noise_vs_real": frechet_lenet_distance(noise, "held_out", self.classifier),
            "real_confidence": classifier_scores(real, self.classifier)["confidence"],
            "real": f"{n} digits of mnist_dataset('train') (permutation seed {seed + 2})",
            "classifier_sha256": self._sha(self._classifier_path),
        }

    def sample(self, steps: int, eta, spacing: str, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + 1)
        parts = [
            samplers.ddim_sample(self.model, self.schedule, x, steps, eta, spacing, generator=gen, progress=False)
            for x in self.x_T[:n].split(self.batch)
        ]
        return torch.cat(parts).clamp(-1, 1)

    def evaluate(self, samples: torch.Tensor) -> dict:
        from ddim_book.metrics import fld_bootstrap

        out = self._evaluate(samples, self.classifier, reference="held_out")
        keep = {k: out[k] for k in ("fld", "confidence", "coverage", "class_entropy", "class_histogram")}
        interval = fld_bootstrap(samples, "held_out", self.classifier, reps=200, seed=self.seed, keep_values=True)
        # the resampled FLDs: cells of one S share x_T and bootstrap positions, so chapter 6 can pair them
        boot = [round(v, 4) for v in interval["values"]]
        return keep | {
            "fld_low": interval["low"],
            "fld_high": interval["high"],
            "fld_sd": interval["sd"],
            "fld_boot": boot,
        }


def estimate(args) -> None:
    """Time the U-Net's forward pass at the generation batch size; print the projected seconds per cell."""
    model, _ = pretrained.load("mnist")
    batch = min(args.batch, args.n)
    x = torch.randn((batch, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    t = torch.full((batch,), 500, dtype=torch.long)
    with torch.inference_mode():
        model(x, t)  # warm-up
        start = time.perf_counter()
        for _ in range(args.estimate_reps):
            model(x, t)
    per_call = (time.perf_counter() - start) / args.estimate_reps
    calls_per_step = math.ceil(args.n / batch)
    print(f"U-Net forward: {per_call:.3f} s per call of {batch} digits ({per_call / batch * 1e3:.2f} ms per digit)")
    print(f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}, n = {args.n}")
    total = 0.0
    for steps in sorted(args.steps):
        cell = steps * calls_per_step * per_call
        total += cell * len(args.etas)
        print(f"  S = {steps:>4}: {cell / 60:8.1f} min per cell, {cell * len(args.etas) / 60:8.1f} min per row")
    print(f"  table of {len(args.steps) * len(args.etas)} cells: {total / 3600:.2f} h (sampling only)")


def run(args, argv) -> int:
    out = args.out or ROOT / "data" / "results" / f"eta_steps_{args.setting}.json"
    results = read_results(out)
    setting = Mixture(args.n, args.seed) if args.setting == "mixture" else Mnist(args.n, args.seed, args.batch)
    results.update(
        {
            "setting": args.setting,
            "model": setting.identity,
            "script": "scripts/eta_steps_table.py",
            "command": "python scripts/eta_steps_table.py " + " ".join(argv),
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            },
        }
    )
    results.setdefault("baselines", {})[str(args.n)] = setting.baseline
    long_n = args.n if args.setting == "mixture" else min(args.n_long, args.n)
    if long_n != args.n and 1000 in args.steps:
        results["baselines"][str(long_n)] = setting.baseline_at(long_n)
    cells = {(c["eta"], c["steps"]): c for c in results.get("cells", [])}
    # cells of another model version are stale: a rerun for the current model replaces the whole table
    cells = {k: c for k, c in cells.items() if c["model"] == setting.identity}
    for steps in sorted(args.steps):
        n = long_n if steps == 1000 else args.n
        wanted = {"model": setting.identity, "recipe": setting.recipe, "n": n, "seed": args.seed}
        wanted["spacing"] = args.spacing
        for eta in args.etas:
            key = (eta_label(eta), steps)
            old = cells.get(key)
            if old and not args.recompute and all(old.get(k) == v for k, v in wanted.items()):
                print(f"eta={key[0]:>9} S={steps:>4}: done already", flush=True)
                continue
            start = time.perf_counter()
            samples = setting.sample(steps, eta, args.spacing, n)
            metrics = setting.evaluate(samples)
            wall = time.perf_counter() - start
            cells[key] = {"eta": key[0], "steps": steps, **wanted, **metrics, "wall_s": round(wall, 2)}
            cells[key]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            merge_and_write(out, results, cells)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            print(f"eta={key[0]:>9} S={steps:>4}: {shown}  ({wall:.1f} s)", flush=True)
    merge_and_write(out, results, cells)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=("mixture", "mnist"), default="mnist")
    parser.add_argument("--n", type=int, default=None, help="samples per cell (default: 4000 mixture, 1000 mnist)")
    parser.add_argument("--n-long", type=int, default=500, help="mnist: samples per S = 1000 cell (default 500)")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="numbers of steps S")
    parser.add_argument("--etas", type=parse_eta, nargs="+", default=[parse_eta(e) for e in ETAS])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", choices=samplers.SPACINGS, default="uniform")
    parser.add_argument("--batch", type=int, default=64, help="MNIST digits per U-Net call (64 is fastest on 2 cores)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 for mixture)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default data/results/eta_steps_*.json)")
    parser.add_argument("--recompute", action="store_true", help="recompute cells that are already done")
    parser.add_argument("--estimate", action="store_true", help="mnist: time the U-Net and print the cost per cell")
    parser.add_argument("--estimate-reps", type=int, default=3)
    args = parser.parse_args(argv)
    args.n = DEFAULT_N[args.setting] if args.n is None else args.n
    if args.n < 2:
        parser.error(f"--n must be at least 2 (a covariance needs two samples), got {args.n}")
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    if any(not 1 <= s <= 1000 for s in args.steps):
        parser.error(f"--steps must lie in 1..1000 (T = 1000), got {args.steps}")
    bad = [eta_label(e) for e in args.etas if eta_label(e) not in ETAS]
    if bad:
        parser.error(f"--etas must be among {', '.join(ETAS)} (the chapter's table), got {', '.join(bad)}")
    # one thread makes the float64 oracle runs bit-reproducible; the U-Net may use every core
    threads = args.threads or (1 if args.setting == "mixture" else None)
    if threads:
        torch.set_num_threads(threads)
    if args.estimate:
        if args.setting != "mnist":
            parser.error("--estimate times the U-Net: use it with --setting mnist")
        estimate(args)
        return 0
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
