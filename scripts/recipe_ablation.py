"""The equal-budget comparison behind the ``mnist`` training recipe (BENCHMARKS.md, "Choosing the recipe").

    python scripts/recipe_ablation.py                        # every variant, seeds 0 and 1
    python scripts/recipe_ablation.py --doc BENCHMARKS.md    # ... and replace the recipe block of that file

Each variant changes one thing of the ``mnist`` config and is trained on the same number of images
(``--images``, default 64,000) from the same seeds; the EMA model then draws ``--n`` digits with DDIM
(eta = 0, S = ``--sample-steps``) from one seeded x_T shared by every variant, scored by
:func:`ddim_book.evaluation.score_digits` against the 1,000 held-out digits. The EMA decay is not among
the variants: at this budget the EMA's warm-up, d_n = min(decay, (1 + n) / (10 + n)), is below 0.995 for
every step, so decays 0.995, 0.999 and 0.9995 give identical weights; ``scripts/ema_comparison.py``
compares them on the full run instead. Checkpoints live in ``runs/ablation/``; finished cells are kept in
``data/results/recipe_ablation.json``, so a stopped run continues where it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "results" / "recipe_ablation.json"
START, END = "<!-- recipe-results:start -->", "<!-- recipe-results:end -->"
# One change each from the mnist config (PyTorch's default init, lr 1e-3, batch 64, EMA 0.999, width 16).
VARIANTS = {
    "mnist": {},
    "zero init": {"model": {"init": "zero"}},
    "lr 3e-4": {"lr": 3e-4},
    "batch 128": {"batch_size": 128},
    "width 24": {"model": {"base_channels": 24, "num_groups": 8}},
}


def variant_config(name: str, seed: int, images: int):
    from ddim_book.training import get_config

    base = get_config("mnist")
    change = dict(VARIANTS[name])
    model = {**base.model, **change.pop("model", {})}
    batch = change.get("batch_size", base.batch_size)
    return base.replace(name=f"ablation-{name}", model=model, seed=seed, total_steps=images // batch,
                        sample_every=0, ckpt_every=250, **change)  # fmt: skip


def run(images: int, seeds, n: int, sample_steps: int, sample_seed: int) -> dict:
    from ddim_book.evaluation import generate, score_digits
    from ddim_book.training import Trainer

    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    settings = {"images": images, "n": n, "sample_steps": sample_steps, "sample_seed": sample_seed}
    if result.get("settings") != settings:
        result = {"settings": settings, "cells": {}}
    cells = result["cells"]
    for key in [k for k in cells if k.startswith("EMA ")]:  # from the version that kept EMAs here
        del cells[key]
    order = [(v, s) for pair in ((v0, v1) for v0, v1 in [("mnist", "zero init"), ("lr 3e-4", "batch 128")])
             for s in seeds for v in pair] + [("width 24", s) for s in seeds]  # fmt: skip
    for variant, seed in order:
        key = f"{variant}|seed{seed}"
        if key in cells:
            continue
        config = variant_config(variant, seed, images)
        run_dir = ROOT / "runs" / "ablation" / key.replace("|", "-").replace(" ", "_")
        trainer = Trainer(config, run_dir, progress=False)
        trainer.train()
        model = trainer.ema.model.eval()
        model.check_inputs = False
        x = generate(model, trainer.schedule, n, steps=sample_steps, seed=sample_seed)
        scores = score_digits(x, reps=100)
        scores.update(variant=variant, seed=seed, ema_decay=config.ema_decay, steps=trainer.step,
                      images=trainer.step * config.batch_size, train_wall_s=trainer.elapsed_s,
                      parameters=sum(p.numel() for p in model.parameters()),
                      final_loss=trainer.last_loss)  # fmt: skip
        cells[key] = scores
        print(f"{key}: FLD {scores['fld']:.1f} [{scores['fld_low']:.1f}, {scores['fld_high']:.1f}], "
              f"confidence {scores['confidence']:.3f}", flush=True)  # fmt: skip
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


def render(result: dict) -> str:
    s, cells = result["settings"], result["cells"]
    names = list(VARIANTS)
    lines = [f"Each variant changes one thing of the `mnist` config; {s['images']:,} training images each; "
             f"DDIM S = {s['sample_steps']}, eta = 0, n = {s['n']} digits from x_T seed {s['sample_seed']}, "
             "scored against the 1,000 held-out digits. FLD with its 95% bootstrap interval; lower is better.", "",
             "| variant | seed | parameters | FLD [95% interval] | FLD / real | confidence | min-max class share | "
             "final loss | training wall time (s) |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        for key in sorted(k for k in cells if k.split("|")[0] == name):
            c = cells[key]
            lines.append(f"| {name} | {c['seed']} | {c['parameters']:,} | {c['fld']:.1f} [{c['fld_low']:.1f}, "
                         f"{c['fld_high']:.1f}] | {c['fld_ratio']:.2f} | {c['confidence']:.3f} | "
                         f"{min(c['class_shares']):.3f}-{max(c['class_shares']):.3f} | {c['final_loss']:.4f} | "
                         f"{c['train_wall_s']:.0f} |")  # fmt: skip
    reals = sorted({round(c["real_fld"], 2) for c in cells.values()})
    lines += ["", f"Real training digits against the same reference at the same n: FLD {', '.join(map(str, reals))}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64_000, help="training images per run (default 64,000)")
    p.add_argument("--seeds", default="0,1", help="comma-separated training seeds (default 0,1)")
    p.add_argument("--n", type=int, default=1000, help="digits per evaluation (default 1000)")
    p.add_argument("--sample-steps", type=int, default=20, help="DDIM S of the evaluation (default 20)")
    p.add_argument("--doc", help="replace the recipe block of this Markdown file (e.g. BENCHMARKS.md)")
    p.add_argument("--render-only", action="store_true", help="only render the finished cells")
    args = p.parse_args(argv)
    if args.render_only:
        result = json.loads(OUT.read_text())
    else:
        seeds = [int(k) for k in args.seeds.split(",")]
        result = run(args.images, seeds, args.n, args.sample_steps, sample_seed=12345)
    text = render(result)
    print(text)
    if args.doc:
        from ddim_book.bench.report import update_doc

        update_doc(args.doc, text, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
