"""DDIM against chapter 9's second-order rules on real digits, and against diffusers' DPM-Solver, cached for chapter 9.

    python scripts/solver_digits_table.py [--n 1000] [--steps 5 10 20] [--seed 0]

Two experiments with the shipped MNIST model, all deterministic, with trailing spacing:

- **Quality.** ``n`` digits from the same seeded x_T with each rule (DDIM eta = 0; the 2M rule with eps linear
  in lambda, which is DPM-Solver-2M; the 2M rule linear in sigma) and each number of network evaluations S,
  scored by ``evaluation.score_digits`` against the 1,000 held-out digits: FLD with its 95% bootstrap interval,
  the classifier's mean confidence and the class shares. Every rule starts from the same x_T and is resampled at
  the same positions, so each cell keeps its 200 resampled FLDs (``fld_boot``) for paired comparisons (chapter 9).
- **diffusers.** The same x_T (64 digits) through diffusers' ``DPMSolverMultistepScheduler`` with
  ``algorithm_type="dpmsolver"``, ``solver_order=2``, ``solver_type="heun"`` (the exact integral of a line in
  lambda: our ``expand_in="lambda"``) and ``timestep_spacing="trailing"``. diffusers makes the last step first
  order and ends it at its timestep 0 (our t = 1; it refuses ``final_sigmas_type="zero"`` for this algorithm);
  ours goes to alpha_bar_0 = 1 with a line in sigma (chapter 9, section 4). So the state before the last step is
  compared as well as the output: the first shows the rules agree, the second what the last step changes.

Writes ``data/results/solver_digits.json`` with the model's sha256, the command, n, the seed and the wall time.
Resumable: the file is rewritten after every cell and cells already there for the same model, n and seed are
kept. A corrupt file is reported with the command that rebuilds it. About 4 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from ddim_book import evaluation, pretrained, samplers
from ddim_book._io import atomic_write_text, read_json_record

ROOT = Path(__file__).resolve().parents[1]
RULES = {"ddim": ("ddim", None), "2m-lambda": ("dpm-solver-2", "lambda"), "2m-sigma": ("dpm-solver-2", "sigma")}


def read_cache(path: Path) -> dict:
    """The cached record, or {} if there is none; a clear error naming the rebuilding command if it is corrupt."""
    return read_json_record(path, "python scripts/solver_digits_table.py", "cells", dict)


@torch.inference_mode()
def diffusers_comparison(model, schedule, x_T: torch.Tensor, steps: int) -> dict:
    """Largest |difference| between our 2M rule (lambda) and diffusers' DPMSolverMultistepScheduler from one x_T:
    before the last step, and of the outputs. diffusers counts timesteps from 0 (its k is our t = k + 1)."""
    from diffusers import DPMSolverMultistepScheduler

    sch = DPMSolverMultistepScheduler(
        num_train_timesteps=schedule.T, trained_betas=schedule.betas[1:].tolist(), algorithm_type="dpmsolver",
        solver_order=2, solver_type="heun", prediction_type="epsilon", timestep_spacing="trailing",
        thresholding=False, lower_order_final=True, final_sigmas_type="sigma_min")  # fmt: skip
    sch.set_timesteps(steps)
    theirs = x_T.double()
    for i, k in enumerate(sch.timesteps):
        if i == steps - 1:
            theirs_before_last = theirs
        theirs = sch.step(model(theirs.float(), k + 1).double(), k, theirs, return_dict=False)[0]
    before_last = {}

    def keep(i, t, x):
        if i == steps - 2:
            before_last["x"], before_last["t"] = x, t

    ours = samplers.dpm_solver_sample(model, schedule, x_T, steps, 2, "trailing", "lambda", progress=False,
                                      callback=keep)  # fmt: skip
    our_ts = samplers.timesteps(schedule.T, steps, "trailing")
    return {
        "steps": steps,
        "timesteps_agree": [int(k) + 1 for k in sch.timesteps] == list(reversed(our_ts)),
        "max_abs_diff_before_last_step": (before_last["x"].double() - theirs_before_last).abs().max().item(),
        "max_abs_diff_output": (ours.double() - theirs).abs().max().item(),
        "max_abs_output": ours.abs().max().item(),
        "n": x_T.shape[0],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="digits per cell (default 1000)")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20], help="network evaluations S")
    parser.add_argument("--seed", type=int, default=0, help="seed of x_T (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "results" / "solver_digits.json")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    if any(not 2 <= S <= 1000 for S in args.steps):
        parser.error(
            f"every --steps value must be in 2..1000 (a second-order step needs a previous one), got {args.steps}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    model, schedule = pretrained.load("mnist")
    entry = pretrained.entry("mnist")
    old = read_cache(args.out)
    same_run = old.get("model", {}).get("sha256") == entry["sha256"] and (old.get("n"), old.get("seed")) == (
        args.n, args.seed)  # fmt: skip
    record = {
        "description": "DDIM vs chapter 9's second-order rules on the shipped MNIST model, and diffusers' DPM-Solver",
        "command": shlex.join(["python", "scripts/solver_digits_table.py", *(sys.argv[1:] if argv is None else argv)]),
        "model": {"name": "mnist", "sha256": entry["sha256"], "training_steps": entry.get("training_steps")},
        "reference": "the 1,000 held-out digits (mnist_dataset('held_out'))",
        "interval": "95% bootstrap over the samples (evaluation.score_digits)",
        "spacing": "trailing",
        "n": args.n,
        "seed": args.seed,
        "cells": old.get("cells", {}) if same_run else {},
        "diffusers": old.get("diffusers", []) if same_run else [],
        "diffusers_settings": (
            "DPMSolverMultistepScheduler(algorithm_type='dpmsolver', solver_order=2, solver_type='heun', "
            "timestep_spacing='trailing', lower_order_final=True, final_sigmas_type='sigma_min'); "
            "'zero' is refused for this algorithm, so diffusers' last step is first order and ends at its "
            "timestep 0 (our t = 1), ours at alpha_bar_0 = 1 with a line in sigma"
        ),
        "torch_threads": torch.get_num_threads(),
    }

    def save():
        atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")

    for S in sorted(args.steps):
        for rule, (sampler, expand_in) in RULES.items():
            key = f"{rule}|{S}"
            if "fld_boot" in record["cells"].get(key, {}):
                continue
            start = time.perf_counter()
            x = evaluation.generate(model, schedule, args.n, steps=S, sampler=sampler, spacing="trailing",
                                    seed=args.seed, expand_in=expand_in or "lambda")  # fmt: skip
            scores = evaluation.score_digits(x, seed=args.seed, keep_values=True)
            seconds = round(time.perf_counter() - start, 1)
            record["cells"][key] = scores | {"rule": rule, "steps": S, "seconds": seconds}
            save()
            interval = f"[{scores['fld_low']:.2f}, {scores['fld_high']:.2f}]"
            print(f"{rule:10s} S = {S:3d}: FLD {scores['fld']:.2f} {interval}, "
                  f"confidence {scores['confidence']:.3f}", flush=True)  # fmt: skip
    x_T = torch.randn((64, 1, 28, 28), generator=torch.Generator().manual_seed(args.seed))
    record["diffusers"] = [diffusers_comparison(model, schedule, x_T, S) for S in sorted(args.steps)]
    for row in record["diffusers"]:
        print(f"diffusers S = {row['steps']}: before the last step {row['max_abs_diff_before_last_step']:.2e}, "
              f"output {row['max_abs_diff_output']:.2e}", flush=True)  # fmt: skip
    save()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
