"""The EMA decay of the ``mnist`` recipe, compared on one and the same training run (BENCHMARKS.md).

    python scripts/ema_comparison.py train runs/mnist --max-minutes 60   # continue the run, keeping more EMAs
    python scripts/ema_comparison.py score runs/mnist --doc BENCHMARKS.md  # score every EMA, 2 seeds, n = 1000

The EMA never feeds back into training, so several EMAs of one run can be kept side by side at no cost to
the run: ``train`` continues ``ddim-book train --config mnist`` exactly (same checkpoints, same updates) and
also keeps EMAs with decays 0.995 and 0.9995 beside the config's 0.999, started from the run's own EMA at
the step it was called (same number of updates, so the same warm-up). They are saved to
``RUN/extra_emas.pt`` at every checkpoint; if that file is missing or from another step, they start again
from the run's EMA. ``score`` draws ``--n`` digits from each EMA with DDIM (S = 20, eta = 0, as the recipe
comparison does) for x_T seeds 0 and 1 and writes ``data/results/ema_comparison.json`` (and, with ``--doc``, the
EMA block of that Markdown file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ddim_book.checkpoints import load_checkpoint, load_weights
from ddim_book.training import EMA, Trainer, get_config, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DECAYS = (0.995, 0.9995)
OUT = ROOT / "data" / "results" / "ema_comparison.json"


def _extra_path(run: Path) -> Path:
    return run / "extra_emas.pt"


def _load_extras(run: Path):
    path = _extra_path(run)
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def train(run: Path, max_minutes: float, config: str = "mnist", **overrides) -> None:
    # everything the run will import later (the sample grids) is imported now: an edit to the source tree
    # during a run of hours must not be able to break it halfway
    import ddim_book.plotting  # noqa: F401
    import ddim_book.samplers  # noqa: F401
    import ddim_book.training.reporting  # noqa: F401

    trainer = Trainer(get_config(config, **overrides), run, progress=False)
    emas = {}
    stored = _load_extras(run)
    for decay in DECAYS:
        ema = EMA(trainer.ema.model, decay)  # a copy of the run's EMA, with its update count
        ema.num_updates = trainer.ema.num_updates
        if stored is not None and stored["step"] == trainer.step:
            load_weights(ema.model, stored["emas"][str(decay)]["weights"], what=f"EMA {decay}")
            ema.num_updates = stored["emas"][str(decay)]["num_updates"]
        emas[decay] = ema
    started = stored["started_at_step"] if stored is not None and stored["step"] == trainer.step else trainer.step
    print(f"run at step {trainer.step}; extra EMAs {DECAYS} kept since step {started}", flush=True)

    def save_extras(step: int) -> None:
        state = {str(d): e.state_dict() for d, e in emas.items()}
        save_checkpoint({"step": step, "started_at_step": started, "emas": state}, _extra_path(run))

    def keep(t: Trainer) -> None:
        for ema in emas.values():
            ema.update(t.model)
        if t.config.ckpt_every and t.step % t.config.ckpt_every == 0:
            save_extras(t.step)  # the trainer's own checkpoint of this step follows

    trainer.callbacks.append(keep)
    try:
        print(trainer.train(max_minutes=max_minutes), flush=True)
    finally:  # also after Ctrl-C, which saves the run first
        if load_checkpoint(run / "last.pt")["step"] == trainer.step:
            save_extras(trainer.step)


def score(run: Path, n: int, steps: int = 20) -> dict:
    from ddim_book.evaluation import generate, score_digits
    from ddim_book.models import build_model

    state = load_checkpoint(run / "last.pt")
    extra = _load_extras(run)
    if extra is None or extra["step"] != state["step"]:
        raise SystemExit(f"error: {_extra_path(run)} is missing or not at the run's step {state['step']}")
    trainer_ema = {str(state["config"]["ema_decay"]): state["ema"]}
    from ddim_book.schedules import NoiseSchedule

    schedule = NoiseSchedule.from_dict(state["schedule"])
    result = {"run_step": state["step"], "started_at_step": extra["started_at_step"], "n": n, "steps": steps,
              "cells": {}}  # fmt: skip
    for decay, ema_state in {**trainer_ema, **extra["emas"]}.items():
        model = build_model(state["model_kind"], **state["model_config"])
        load_weights(model, ema_state["weights"], what=f"EMA {decay}")
        model.eval().check_inputs = False
        for seed in (0, 1):
            scores = score_digits(generate(model, schedule, n, steps=steps, seed=seed), seed=seed)
            result["cells"][f"{decay}|seed{seed}"] = scores | {"ema_decay": float(decay), "seed": seed}
            print(f"EMA {decay}, x_T seed {seed}: FLD {scores['fld']:.2f} [{scores['fld_low']:.2f}, "
                  f"{scores['fld_high']:.2f}], confidence {scores['confidence']:.3f}", flush=True)  # fmt: skip
            OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


def render(result: dict) -> str:
    lines = [f"EMA decays of one training run of the `mnist` config, kept side by side from step "
             f"{result['started_at_step']:,} to step {result['run_step']:,}; DDIM S = {result['steps']}, eta = 0, "
             f"n = {result['n']} digits per x_T seed, against the 1,000 held-out digits.", "",
             "| EMA decay | x_T seed | FLD [95% interval] | FLD / real | confidence | min-max class share |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for c in sorted(result["cells"].values(), key=lambda c: (c["ema_decay"], c["seed"])):
        shares, interval = c["class_shares"], f"[{c['fld_low']:.2f}, {c['fld_high']:.2f}]"
        lines.append(f"| {c['ema_decay']:g} | {c['seed']} | {c['fld']:.2f} {interval} | {c['fld_ratio']:.2f} "
                     f"| {c['confidence']:.3f} | {min(shares):.3f}-{max(shares):.3f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("train", "score"))
    p.add_argument("run", type=Path, help="the mnist run folder")
    p.add_argument("--max-minutes", type=float, default=None, help="train: stop after this many minutes")
    p.add_argument("--n", type=int, default=1000, help="score: digits per EMA and seed (default 1000)")
    p.add_argument("--doc", help="score: replace the EMA block of this Markdown file")
    args = p.parse_args(argv)
    if args.action == "train":
        train(args.run, args.max_minutes)
        return 0
    text = render(score(args.run, args.n))
    print(text)
    if args.doc:
        from ddim_book.bench.report import update_doc

        update_doc(args.doc, text, "<!-- ema-results:start -->", "<!-- ema-results:end -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
