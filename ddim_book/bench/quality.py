"""Sample quality for an equal training budget: our U-Net against diffusers' ``UNet2DModel`` of matched size.

    ddim-book bench quality                      # mnist-small, budgets 1000 and 2000 steps, seeds 0 and 1
    ddim-book bench quality --doc BENCHMARKS.md  # ... and replace the quality block of that file

Both models are trained by the same :class:`~ddim_book.training.Trainer` from the same config (data order,
timesteps, noise, AdamW, warm-up, clipping and EMA all equal; only ``model_kind`` and ``model`` differ; the
``UNet2DModel`` is wrapped as model kind ``"unet2d"``). At every budget the EMA model draws n digits with DDIM
(eq. (12), eta = 0) from the same seeded x_T, scored by :func:`~ddim_book.metrics.evaluate_samples` (Fréchet
LeNet Distance against held-out digits; chapter 6). Training checkpoints in ``out_dir`` and each finished
evaluation is kept in the JSON, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ddim_book.bench.report import check_doc, update_doc
from ddim_book.samplers import ddim_sample

__all__ = ["QUALITY_START", "QUALITY_END", "quality_configs", "render_quality", "run_quality"]

QUALITY_START, QUALITY_END = "<!-- quality-results:start -->", "<!-- quality-results:end -->"
MODELS = {"ours": "ours (UNet)", "unet2d": "diffusers (UNet2DModel)"}


def quality_configs(config: str = "mnist-small", seed: int = 0, total_steps: int = 2000, **overrides) -> dict:
    """{"ours": the named TrainConfig, "unet2d": the same with the parameter-matched UNet2DModel} at ``seed``, with
    ``total_steps`` and no sample grids; also {"search": how the UNet2DModel was matched}."""
    from ddim_book.models import UNetConfig
    from ddim_book.models.unet2d import matched_unet2d
    from ddim_book.training import get_config

    ours = get_config(config, seed=seed, total_steps=total_steps, sample_every=0, **overrides)
    if ours.model_kind != "unet":
        raise ValueError(f"config {config!r} trains a {ours.model_kind!r} model; the comparison needs a U-Net config")
    arguments, search = matched_unet2d(UNetConfig.from_dict(ours.model))
    theirs = ours.replace(name=f"{ours.name}-unet2d", model_kind="unet2d", model=arguments)
    return {"ours": ours, "unet2d": theirs, "search": search}


def _generate(model, schedule, n: int, steps: int, seed: int, shape, device, batch: int = 250) -> torch.Tensor:
    gen, out = torch.Generator().manual_seed(seed), []  # x_T drawn on the CPU: the same digits on every device
    for start in range(0, n, batch):
        x_T = torch.randn((min(batch, n - start), *shape), generator=gen).to(device)
        out.append(ddim_sample(model, schedule, x_T, steps=steps, progress=False).cpu())
    return torch.cat(out).clamp(-1, 1)


def _evaluate(trainer, n: int, sample_steps: int, seed: int, classifier, reference, grid_path) -> dict:
    from ddim_book.metrics import evaluate_samples
    from ddim_book.plotting import save_grid

    model = trainer.ema.model.eval()
    model.check_inputs = False
    start = time.perf_counter()
    x = _generate(model, trainer.schedule, n, sample_steps, seed, tuple(trainer.data.shape[1:]), trainer.device)
    seconds = time.perf_counter() - start
    save_grid(x[:64], grid_path, nrow=8)
    scores = evaluate_samples(x, classifier, reference=reference)
    return scores | {"sampling_seconds": round(seconds, 1), "grid": str(grid_path)}


def run_quality(out_dir="runs/bench/quality", config: str = "mnist-small", budgets=(1000, 2000), seeds=(0, 1),
                n: int = 500, sample_steps: int = 50, device: str = "cpu", progress: bool = True) -> dict:  # fmt: skip
    """Train both models of :func:`quality_configs` for each seed, evaluating at each budget (steps, ascending).

    Returns (and writes to ``out_dir/quality.json``) {"settings", "search", "anchors", "runs": {"<model>-seed<k>":
    {"<budget>": scores, ...}}, "train_seconds": {run: seconds}}. The reference is ``held_out[500:]``; the
    anchors are :func:`~ddim_book.metrics.fld_anchors` at the same n (real digits, and clipped noise)."""
    from ddim_book.data import mnist_dataset
    from ddim_book.metrics import fld_anchors, load_classifier
    from ddim_book.training import Trainer

    budgets = sorted(int(b) for b in budgets)
    if not budgets or budgets[0] < 1 or not seeds or not 2 <= n <= 500:
        raise ValueError(f"need budgets >= 1, at least one seed and 2 <= n <= 500; got {budgets}, {seeds}, n={n}")
    out_dir, settings = Path(out_dir), {"config": config, "budgets": budgets, "seeds": list(seeds), "n": n}
    settings |= {"sample_steps": sample_steps, "device": device, "reference": "held_out[500:1000]"}
    path = out_dir / "quality.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    if result.get("settings", {}) | {"budgets": budgets, "seeds": list(seeds)} != settings:
        result = {"runs": {}, "train_seconds": {}}  # other settings: a fresh table (the checkpoints still resume)
    result |= {"settings": settings}
    first = quality_configs(config, seeds[0], budgets[-1], device=device)  # the UNet2DModel search runs once
    configs_of = {seed: {kind: first[kind].replace(seed=seed) for kind in MODELS} for seed in seeds}
    result["search"] = first["search"]
    classifier, reference = load_classifier(), mnist_dataset("held_out")[0][500:]
    result["anchors"] = result.get("anchors") or fld_anchors(classifier, n=n)
    path.parent.mkdir(parents=True, exist_ok=True)
    for seed, configs in configs_of.items():
        for kind in MODELS:
            run, done = f"{kind}-seed{seed}", result["runs"].setdefault(f"{kind}-seed{seed}", {})
            if all(str(b) in done for b in budgets):
                continue
            trainer = Trainer(configs[kind], out_dir / run, progress=progress)
            for budget in budgets:
                if str(budget) in done:
                    continue
                if trainer.step > budget:
                    raise RuntimeError(f"{out_dir / run} is past step {budget} without its evaluation; delete it")
                trainer.train(max_steps=budget - trainer.step)
                result["train_seconds"][run] = trainer.elapsed_s  # kept in the checkpoint across resumes
                grid = out_dir / f"{run}-step{budget}.png"
                done[str(budget)] = _evaluate(trainer, n, sample_steps, 10**6 + seed, classifier, reference, grid)
                path.write_text(json.dumps(result, indent=2) + "\n")
                if progress:
                    print(f"{run} at {budget} steps: FLD {done[str(budget)]['fld']:.1f}", flush=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def render_quality(result: dict) -> str:
    """The Markdown table of :func:`run_quality`'s result: FLD and confidence per model, budget and seed."""
    s, runs = result["settings"], result["runs"]
    lines = [f"Config {s['config']}; DDIM S = {s['sample_steps']}, eta = 0; n = {s['n']} digits per cell against "
             f"{s['reference']}; seeds {s['seeds']}. Lower FLD is better.", "",
             "| training steps | model | FLD per seed | mean FLD | confidence (mean) | classes covered (mean) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for budget in s["budgets"]:
        for kind, label in MODELS.items():
            cells = [runs.get(f"{kind}-seed{k}", {}).get(str(budget)) for k in s["seeds"]]
            cells = [c for c in cells if c]
            if not cells:
                continue
            fld = [c["fld"] for c in cells]
            mean = {key: sum(c[key] for c in cells) / len(cells) for key in ("fld", "confidence", "coverage")}
            per_seed = ", ".join(f"{v:.1f}" for v in fld)
            row = f"| {budget} | {label} | {per_seed} | {mean['fld']:.1f} | {mean['confidence']:.3f} |"
            lines.append(row + f" {mean['coverage']:.1f} |")
    a, search = result["anchors"], result.get("search", {})
    lines += ["", f"Anchors at the same n: real held-out digits {a['real_vs_real']:.1f}, clipped Gaussian noise "
              f"{a['noise_vs_real']:.0f}. Parameters: ours {search.get('ours_parameters', 0):,}, UNet2DModel "
              f"{search.get('theirs_parameters', 0):,}."]  # fmt: skip
    seconds = result.get("train_seconds", {})
    for kind, label in MODELS.items():
        spent = [v for run, v in seconds.items() if run.startswith(kind + "-")]
        if spent:
            lines.append(f"Training time of {label}: {sum(spent) / len(spent) / 60:.1f} min per seed (wall, "
                         f"{s['budgets'][-1]} steps, on {s['device']}).")  # fmt: skip
    return "\n".join(lines)


def main_cli(args) -> int:
    """``ddim-book bench quality``: train both U-Nets to each budget, score them, print (and file) the table."""
    if args.doc:  # before hours of training, not after
        check_doc(args.doc, QUALITY_START, QUALITY_END)
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(k) for k in args.seeds.split(",")]
    result = run_quality(args.out_dir, args.config, budgets, seeds, args.n, args.sample_steps, args.device,
                         progress=not args.no_progress)  # fmt: skip
    text = render_quality(result)
    print(text)
    if args.doc:
        update_doc(args.doc, text, QUALITY_START, QUALITY_END)
        print(f"updated the quality block of {args.doc}")
    return 0
