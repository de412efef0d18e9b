"""Score the shipped MNIST model: FLD and classifier confidence for DDIM S=10, S=50 and DDPM (S=T=1000).

    python scripts/evaluate_shipped.py            # -> data/results/shipped_model_metrics.json

Every sampler draws n digits from the same seeded x_T. The Fréchet LeNet Distance is measured against
the second half of the held-out digits (held_out[500:]); the anchors beside it use the same reference and
the same n: real digits (held_out[:500]) and clipped Gaussian noise. Resumable: a setting already in the
JSON for the same model sha256 and n is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ddim_book import pretrained, samplers
from ddim_book.data import mnist_dataset
from ddim_book.metrics import evaluate_samples, fld_anchors, load_classifier

OUT = Path(__file__).resolve().parents[1] / "data" / "results" / "shipped_model_metrics.json"
SETTINGS = {"ddim-S10": ("ddim", 10), "ddim-S50": ("ddim", 50), "ddpm-S1000": ("ddpm", 1000)}


def generate(model, schedule, sampler: str, steps: int, n: int, seed: int, batch: int = 250) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        x_T = torch.randn((min(batch, n - start), 1, 28, 28), generator=gen)
        if sampler == "ddpm":
            out.append(samplers.ddpm_sample(model, schedule, x_T, generator=gen, progress=False))
        else:
            out.append(samplers.ddim_sample(model, schedule, x_T, steps=steps, generator=gen, progress=False))
    return torch.cat(out).clamp(-1, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="digits per setting (<= 500, the anchor size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=sorted(SETTINGS), help="settings to run (default all)")
    args = parser.parse_args(argv)

    sha = pretrained.entry("mnist")["sha256"]
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    if result.get("model_sha256") != sha or result.get("n") != args.n:
        result = {"model_sha256": sha, "n": args.n, "seed": args.seed, "settings": {}}
    result["command"] = "python scripts/evaluate_shipped.py " + " ".join(argv or sys.argv[1:])
    model, schedule = pretrained.load("mnist")
    model.check_inputs = False
    classifier = load_classifier()
    reference = mnist_dataset("held_out")[0][500:]
    result["anchors"] = fld_anchors(classifier, n=args.n, seed=args.seed)
    for name in args.only or SETTINGS:
        if name in result["settings"]:
            continue
        sampler, steps = SETTINGS[name]
        start = time.perf_counter()
        x = generate(model, schedule, sampler, steps, args.n, args.seed)
        seconds = time.perf_counter() - start
        scores = evaluate_samples(x, classifier, reference=reference)
        scores.update(sampler=sampler, steps=steps, eta=0.0, sampling_seconds=round(seconds, 1))
        result["settings"][name] = scores
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: FLD {scores['fld']:.2f}, confidence {scores['confidence']:.3f}, "
              f"coverage {scores['coverage']}/10, {seconds:.0f} s")  # fmt: skip
    a = result["anchors"]
    print(f"anchors (n={args.n}): real vs real {a['real_vs_real']:.2f}, noise vs real {a['noise_vs_real']:.2f}")
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
