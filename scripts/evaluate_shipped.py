"""Score the shipped MNIST model and record the figures in its manifest entry and model card.

    python scripts/evaluate_shipped.py                                  # DDIM S=50 and S=10, n = 1000, seed 0
    python scripts/evaluate_shipped.py --previous old_model.pt          # ... and an older model file, same x_T

Protocol (:mod:`ddim_book.evaluation`): n digits from x_T drawn with ``--seed``, DDIM eq. (12) with eta = 0,
clipped to [-1, 1] for scoring only; Fréchet LeNet Distance against the 1,000 held-out digits with a 95%
bootstrap interval, beside the FLD of n real training digits against the same reference; the shipped
classifier's mean confidence and the share of samples it assigns to each digit. Resumable: settings already
recorded for the same model sha256, n and seed are skipped. Each setting keeps its 200 resampled FLDs, and with
``--previous`` the manifest records the change of the FLD from the older model with its paired 95% interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ddim_book import pretrained
from ddim_book.checkpoints import load_checkpoint, load_model
from ddim_book.evaluation import generate, score_digits
from ddim_book.metrics import paired_fld_change
from ddim_book.pretrained import MANIFEST, checkpoint_dir, sha256_of
from ddim_book.shipping import write_manifest

SETTINGS = {"DDIM S=50, eta=0": 50, "DDIM S=10, eta=0": 10}
TARGETS = "Targets: FLD <= 1.5 x real digits' FLD; confidence >= 0.95 at S=50 (>= 0.92 at S=10); every class 6%-14%"


def score_model(model, schedule, n: int, seed: int, done: dict, save) -> dict:
    model.check_inputs = False
    for name, steps in SETTINGS.items():
        if name in done:
            continue
        start = time.perf_counter()
        x = generate(model, schedule, n, steps=steps, seed=seed, progress=True)
        scores = score_digits(x, seed=seed, keep_values=True)  # the resampled FLDs pair this model with another
        done[name] = scores | {"sampling_seconds": round(time.perf_counter() - start, 1)}
        save()
        print(f"{name}: FLD {scores['fld']:.2f} [{scores['fld_low']:.2f}, {scores['fld_high']:.2f}] (real digits "
              f"{scores['real_fld']:.2f}), confidence {scores['confidence']:.3f}", flush=True)  # fmt: skip
    return done


def paired_changes(new: dict, old: dict) -> dict:
    """FLD(new) - FLD(old) per setting with the paired 95% interval: both models drew image i from the same x_T and
    were resampled at the same positions (same seed and n), so the difference is measured, not two intervals."""
    out = {}
    for name in sorted(set(new) & set(old)):
        a, b = new[name], old[name]
        if "fld_boot" in a and "fld_boot" in b:
            d = paired_fld_change(a, b)
            out[name] = {key: d[key] for key in ("diff", "low", "high", "level")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="digits per setting (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of x_T and of the bootstrap (default 0)")
    parser.add_argument("--previous", type=Path, help="an older model file to score with the same x_T")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    root = checkpoint_dir()
    manifest = json.loads((root / MANIFEST).read_text())
    entry = manifest["models"]["mnist"]
    protocol = (f"n = {args.n} digits from x_T seed {args.seed}; DDIM eq. (12), eta = 0, uniform spacing; samples "
                "clipped to [-1, 1] for scoring only; FLD against the 1,000 held-out digits with a 95% bootstrap "
                "interval (normal, 200 resamples); real digits' FLD: n training digits against the same reference; "
                f"confidence: the shipped classifier's mean top probability. Command: `python "
                f"scripts/evaluate_shipped.py{' --previous FILE' if args.previous else ''}`. {TARGETS}.")  # fmt: skip
    quality = entry.get("quality", {})
    if quality.get("model_sha256") != entry["sha256"] or quality.get("n") != args.n or quality.get("seed") != args.seed:
        quality = {"model_sha256": entry["sha256"], "n": args.n, "seed": args.seed, "settings": {}}
    quality["protocol"] = protocol
    entry["quality"] = quality

    def save():
        write_manifest(root, manifest)

    model, schedule = pretrained.load("mnist")
    score_model(model, schedule, args.n, args.seed, quality["settings"], save)
    if args.previous:
        sha = sha256_of(args.previous)
        old = quality.get("previous_model", {})
        if old.get("sha256") != sha:
            stored = load_checkpoint(args.previous)
            step, batch = stored["step"], stored["train_config"]["batch_size"]
            old = {"sha256": sha, "training_steps": step, "images_seen": step * batch, "settings": {}}
            quality["previous_model"] = old
        model, schedule = load_model(args.previous)
        score_model(model, schedule, args.n, args.seed, old["settings"], save)
        old["change"] = paired_changes(quality["settings"], old["settings"])
        for name, d in old["change"].items():
            print(f"{name}: FLD change from the earlier model {d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]")
    save()
    print(f"recorded in {root / MANIFEST} and the model card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
