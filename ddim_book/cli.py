"""The ``ddim-book`` command line (also ``python -m ddim_book``): sample, train, evaluate, bench.

ddim-book sample                                   # 64 digits from the shipped model -> samples.png
ddim-book sample --sampler ddpm --n 16 --out ddpm.png
ddim-book train --config mnist --max-minutes 30    # resumable: run again to continue
ddim-book evaluate --steps 50                      # Fréchet LeNet Distance and classifier scores

Every failure ends in one line on stderr, ``error: ...``, and an exit code: 2 for a bad argument
(argparse's convention), 1 for a failure while running, 130 for Ctrl-C; ``--debug`` shows the traceback
instead. Outputs and checkpoints are checked before any sampling or training starts, an existing output
is only replaced with ``--force``, and outputs are written atomically (a failed write keeps the old file).
This module imports torch only inside the commands, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# The names of ddim_book.training.presets' names and of ddim_book.subsequences.SPACINGS, written out because
# importing either would import torch before ``--help`` (tests/test_cli.py keeps them equal).
CONFIGS = ("mnist", "mnist-small", "mnist-tiny", "toy-mlp")
SPACINGS = ("uniform", "quadratic", "trailing")


class UsageError(Exception):
    """A bad argument found after parsing (exit code 2)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ddim-book")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _check_writable_dir(folder: Path, what: str) -> None:
    """Create a file in ``folder`` and remove it again: the only test of writability that every OS answers truly."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"{what}: cannot write in {folder} ({err.strerror or err})") from None


def _check_output(path: str, suffix: str, force: bool, option: str) -> Path:
    """An output file path that can be written, checked before the work that produces it."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name ending in {suffix}")
    if out.suffix.lower() != suffix:
        raise UsageError(f"{option} {path}: the file name must end in {suffix}")
    if not out.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {out.parent} does not exist")
    _check_writable_dir(out.parent, f"{option} {path}")
    if out.exists() and not force:
        raise UsageError(f"{option} {path} exists; pass --force to replace it")
    return out


def _check_checkpoint(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"--checkpoint {path} does not exist")
    if not p.is_file():
        raise UsageError(f"--checkpoint {path} is not a file")


def _load(args):
    from ddim_book import pretrained
    from ddim_book.checkpoints import load_model
    from ddim_book.training.distributed import resolve_device

    device = resolve_device(args.device)
    if args.checkpoint:
        model, schedule = load_model(args.checkpoint, device=device)
    else:
        model, schedule = pretrained.load("mnist", device=device)
    if args.sampler == "ddim" and args.steps > schedule.T:
        raise UsageError(f"--steps {args.steps}: DDIM takes S in 1..{schedule.T} for this model's schedule")
    return model, schedule, device


def _generate(model, schedule, args, n: int):
    from ddim_book.evaluation import generate

    return generate(
        model, schedule, n, steps=args.steps, eta=args.eta, sampler=args.sampler, spacing=args.spacing,
        seed=args.seed, batch_size=args.batch_size, clip_x0=args.clip_x0 or None, progress=not args.quiet,
    )  # fmt: skip


def cmd_sample(args) -> int:
    from ddim_book._io import atomic_write
    from ddim_book.plotting import grid_png_bytes

    out = _check_output(args.out, ".png", args.force, "--out")
    model, schedule, device = _load(args)
    start = time.perf_counter()
    x = _generate(model, schedule, args, args.n)
    atomic_write(out, lambda f: f.write(grid_png_bytes(x)))
    what = "DDPM (T steps)" if args.sampler == "ddpm" else f"DDIM S={args.steps} eta={args.eta} {args.spacing}"
    print(f"wrote {args.n} samples ({what}) to {out} in {time.perf_counter() - start:.1f} s on {device}")
    return 0


def _overrides(args) -> dict:
    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    return overrides


def cmd_train(args) -> int:
    from ddim_book.training import CHECKPOINT_NAME, Trainer, get_config, load_checkpoint

    try:
        config = get_config(args.config, **_overrides(args))
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    out = Path(args.out or Path("runs") / config.name)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    existing = out / CHECKPOINT_NAME
    if existing.exists() and not args.fresh:
        step = int(load_checkpoint(existing)["step"])
        if step > config.total_steps:
            raise UsageError(
                f"the run in {out} is at step {step}, past the {config.total_steps} total steps asked for; "
                "ask for more steps, or use --fresh to start over"
            )
        if step == config.total_steps:
            print(f"the run in {out} is already at its {step} total steps; nothing to train")
            return _export(args, out)
        print(f"resuming from step {step} of {config.total_steps}: {existing}")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"--out {out}: cannot create the run folder ({err.strerror or err})") from None
        _check_writable_dir(out, f"--out {out}")
        print(f"training {config.name} for {config.total_steps} steps; checkpoints go to {existing}")
    if args.export:
        _check_output(args.export, ".pt", True, "--export")
    trainer = Trainer(config, out, resume=not args.fresh, progress=not args.quiet)
    summary = trainer.train(max_minutes=args.max_minutes)
    print(json.dumps(summary, indent=2, default=str))
    print(f"checkpoint at step {trainer.step} of {config.total_steps}: {existing}")
    return _export(args, out)


def _export(args, out: Path) -> int:
    if args.export:
        from ddim_book.training import export_ema

        print(f"exported the EMA model to {export_ema(out / 'last.pt', args.export)}")
    return 0


def cmd_evaluate(args) -> int:
    from ddim_book._io import atomic_write_text
    from ddim_book.evaluation import score_digits

    out = _check_output(args.json, ".json", args.force, "--json") if args.json else None
    model, schedule, _ = _load(args)
    start = time.perf_counter()
    x = _generate(model, schedule, args, args.n)
    seconds = time.perf_counter() - start
    result = score_digits(x, seed=args.seed)
    if args.anchors:
        import torch

        from ddim_book.metrics import frechet_lenet_distance

        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(args.seed)).clamp(-1, 1)
        result["noise_fld"] = frechet_lenet_distance(noise, "held_out")
    result.update(sampler=args.sampler, steps=args.steps if args.sampler == "ddim" else schedule.T,
                  eta=args.eta, seed=args.seed, sampling_seconds=round(seconds, 1))  # fmt: skip
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if out:
        atomic_write_text(out, text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _sampling_args(p: argparse.ArgumentParser, n: int) -> None:
    p.add_argument("--checkpoint", help="a model file (default: the shipped MNIST model)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim", help="DDIM eq. (12) or DDPM Algorithm 2")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps S (1..T; default 50); DDPM runs all T")
    p.add_argument("--eta", default="0", help="DDIM eta >= 0, or sigma_hat (default 0)")
    p.add_argument("--spacing", choices=SPACINGS, default="uniform",
                   help="how the S timesteps are spread over 1..T (default uniform; chapter 6)")  # fmt: skip
    p.add_argument("--n", type=int, default=n, help=f"number of images (default {n})")
    p.add_argument("--batch-size", type=int, default=250, help="images per sampler call (default 250)")
    p.add_argument("--seed", type=int, default=0, help="seed of x_T and of the sampler's noise (default 0)")
    p.add_argument("--clip-x0", action="store_true", help="clip the predicted x0 to [-1, 1] at every step")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_bench(args) -> int:
    from ddim_book.bench.speed import run_bench_cli

    try:
        return run_bench_cli(args)
    except ValueError as err:  # the benchmarks check their settings before measuring
        raise UsageError(str(err)) from None


def _run_bench_quality(args) -> int:
    from ddim_book.bench.quality import main_cli

    try:
        return main_cli(args)
    except ValueError as err:  # the benchmarks check their settings before measuring
        raise UsageError(str(err)) from None


def _run_bench_solvers(args) -> int:
    from ddim_book.bench.solvers import main_cli

    try:
        return main_cli(args)
    except ValueError as err:  # the benchmarks check their settings before measuring
        raise UsageError(str(err)) from None


def parser() -> argparse.ArgumentParser:
    from ddim_book.bench.args import add_bench_parser

    top = argparse.ArgumentParser(prog="ddim-book", description="DDPM/DDIM from the book: sample, train, evaluate.")
    top.add_argument("--version", action="version", version=f"ddim-book {_version()}")
    top.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample", help="draw a grid of samples to a PNG")
    _sampling_args(p, 64)
    p.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser("train", help="train a denoiser from a named config (resumes from OUT/last.pt)")
    p.add_argument("--config", required=True, choices=CONFIGS, help="the training preset")
    p.add_argument("--out", help="run folder (default runs/CONFIG)")
    p.add_argument("--steps", type=int, help="total training steps (overrides the config)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--export", help="write the EMA model file (.pt) here when done")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="sample, then score with the Fréchet LeNet Distance and the classifier")
    _sampling_args(p, 1000)
    p.add_argument("--anchors", action="store_true", help="also report the FLD of clipped noise (the ceiling)")
    p.add_argument("--json", help="also write the result to this JSON file")
    p.set_defaults(func=cmd_evaluate)
    add_bench_parser(sub, _run_bench, _run_bench_quality, _run_bench_solvers)
    return top


def _check(args, p: argparse.ArgumentParser) -> None:
    """Argument checks that argparse cannot express; ``p.error`` exits with code 2."""
    if hasattr(args, "eta"):
        from ddim_book.samplers import parse_eta

        try:
            args.eta = parse_eta(args.eta)
        except ValueError as err:
            p.error(f"--{err}")
        for name in ("n", "batch_size", "steps"):
            if getattr(args, name) < 1:
                p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.checkpoint:
            try:
                _check_checkpoint(args.checkpoint)
            except UsageError as err:
                p.error(str(err))
    if getattr(args, "device", None) is not None and not _DEVICE.fullmatch(args.device):
        p.error(f"--device must be auto, cpu, cuda, cuda:N or mps, got {args.device!r}")
    if args.command == "train":
        if args.steps is not None and args.steps < 1:
            p.error(f"--steps must be >= 1, got {args.steps}")
        if args.max_minutes is not None and not 0 < args.max_minutes < float("inf"):
            p.error(f"--max-minutes must be a positive number, got {args.max_minutes}")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    _check(args, p)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"{p.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (a training run saved its checkpoint first)", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug or os.environ.get("DDIM_BOOK_DEBUG"):
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 1
