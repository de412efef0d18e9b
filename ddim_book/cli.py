"""The ``ddim-book`` command line (also ``python -m ddim_book``): sample, train, evaluate.

ddim-book sample                                   # 64 digits from the shipped model -> samples.png
ddim-book sample --sampler ddpm --n 16 --out ddpm.png
ddim-book train --config mnist-small --max-minutes 30   # resumable: run again to continue
ddim-book evaluate --steps 50                      # Fréchet LeNet Distance and classifier scores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _device(spec: str):
    from ddim_book.training.distributed import resolve_device

    return resolve_device(spec)


def _load(args):
    from ddim_book import pretrained
    from ddim_book.training import load_model

    device = _device(args.device)
    if args.checkpoint:
        if not Path(args.checkpoint).exists():
            raise SystemExit(f"error: --checkpoint {args.checkpoint} does not exist")
        return (*load_model(args.checkpoint, device=device), device)
    return (*pretrained.load("mnist", device=device), device)


def _generate(model, schedule, device, args, n: int):
    """n images from the chosen sampler, in batches, reproducible from --seed."""
    import torch

    from ddim_book import samplers

    shape = model.config.in_channels, model.config.image_size, model.config.image_size
    gen = torch.Generator(device=device).manual_seed(args.seed)
    out = []
    for start in range(0, n, args.batch_size):
        b = min(args.batch_size, n - start)
        x_T = torch.randn((b, *shape), generator=gen, device=device)
        if args.sampler == "ddpm":
            x = samplers.ddpm_sample(model, schedule, x_T, generator=gen, clip_x0=args.clip_x0, progress=not args.quiet)
        else:
            x = samplers.ddim_sample(
                model, schedule, x_T, steps=args.steps, eta=args.eta, spacing=args.spacing,
                generator=gen, clip_x0=args.clip_x0, progress=not args.quiet,
            )  # fmt: skip
        out.append(x.float().cpu())
    return torch.cat(out)


def cmd_sample(args) -> int:
    from ddim_book.plotting import save_grid

    model, schedule, device = _load(args)
    start = time.perf_counter()
    x = _generate(model, schedule, device, args, args.n)
    path = save_grid(x, args.out)
    what = "DDPM (T steps)" if args.sampler == "ddpm" else f"DDIM S={args.steps} eta={args.eta} {args.spacing}"
    print(f"wrote {args.n} samples ({what}) to {path} in {time.perf_counter() - start:.1f} s on {device}")
    return 0


def cmd_train(args) -> int:
    from ddim_book.training import Trainer, get_config

    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set expects key=value, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    try:
        config = get_config(args.config, **overrides)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    out = Path(args.out or Path("runs") / config.name)
    trainer = Trainer(config, out, resume=not args.fresh, progress=not args.quiet)
    summary = trainer.train(max_minutes=args.max_minutes)
    print(json.dumps(summary, indent=2, default=str))
    if args.export:
        from ddim_book.training import export_ema

        print(f"exported the EMA model to {export_ema(out / 'last.pt', args.export)}")
    return 0


def cmd_evaluate(args) -> int:
    from ddim_book.metrics import evaluate_samples

    model, schedule, device = _load(args)
    start = time.perf_counter()
    x = _generate(model, schedule, device, args, args.n)
    seconds = time.perf_counter() - start
    result = evaluate_samples(x, anchors=args.anchors)
    result.update(sampler=args.sampler, steps=args.steps if args.sampler == "ddim" else schedule.T,
                  eta=args.eta, n=args.n, seed=args.seed, sampling_seconds=round(seconds, 1))  # fmt: skip
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def _sampling_args(p: argparse.ArgumentParser, n: int) -> None:
    p.add_argument("--checkpoint", help="a model file (default: the shipped MNIST model)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps S (1..T; default 50)")
    p.add_argument("--eta", default="0", help="DDIM eta >= 0, or sigma_hat (default 0)")
    p.add_argument("--spacing", choices=["uniform", "quadratic", "trailing"], default="uniform")
    p.add_argument("--n", type=int, default=n, help=f"number of images (default {n})")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip-x0", action="store_true", help="clip the predicted x0 to [-1, 1] at every step")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ddim-book", description="DDPM/DDIM from the book: sample, train, evaluate.")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample", help="draw a grid of samples to a PNG")
    _sampling_args(p, 64)
    p.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser("train", help="train a denoiser from a named config (resumes from OUT/last.pt)")
    p.add_argument("--config", required=True, help="mnist-small, mnist-tiny or toy-mlp")
    p.add_argument("--out", help="run folder (default runs/CONFIG)")
    p.add_argument("--steps", type=int, help="total training steps (overrides the config)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--export", help="write the EMA model file here when done")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="sample, then score with the Fréchet LeNet Distance and the classifier")
    _sampling_args(p, 1000)
    p.add_argument("--anchors", action="store_true", help="also report real-vs-real and noise-vs-real FLD")
    p.add_argument("--json", help="write the result to this JSON file")
    p.set_defaults(func=cmd_evaluate)
    from ddim_book.bench import add_bench_parser

    add_bench_parser(sub)
    return top


def _check(args) -> None:
    if hasattr(args, "eta"):
        if args.eta != "sigma_hat":
            try:
                args.eta = float(args.eta)
            except ValueError:
                raise SystemExit(f"error: --eta must be a number >= 0 or sigma_hat, got {args.eta!r}") from None
            if not args.eta >= 0:
                raise SystemExit(f"error: --eta must be >= 0, got {args.eta}")
        for name in ("n", "batch_size", "steps"):
            if getattr(args, name) < 1:
                raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    _check(args)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
