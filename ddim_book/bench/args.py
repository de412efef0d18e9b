"""The options of ``ddim-book bench`` and its two studies (kept free of torch, so that ``ddim-book --help`` starts
fast): ``ddim-book bench`` times the samplers and the trainer (:mod:`~ddim_book.bench.speed`),
``ddim-book bench quality`` compares sample quality at an equal training budget (:mod:`~ddim_book.bench.quality`),
``ddim-book bench solvers`` counts the evaluations each ODE solver needs (:mod:`~ddim_book.bench.solvers`)."""

from __future__ import annotations

import argparse

SECTIONS = ("overhead", "sampling", "training", "optimisations", "diffusers")
CLOCKS = ("wall", "cpu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of the timing benchmark (``ddim-book bench``) to ``p``."""
    p.add_argument("--config", default="mnist-small", help="the training config whose U-Net is measured")
    p.add_argument("--quick", action="store_true", help="batch 8, few steps and repeats (a smoke run)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    p.add_argument("--batch", type=int, help="sampling batch (default 64; 8 with --quick)")
    p.add_argument("--steps", type=int, help="DDIM S of the overhead ratio (default 50)")
    p.add_argument("--repeats", type=int, help="interleaved rounds (default 3)")
    p.add_argument("--train-batch", type=int, help="training batch (default: the config's)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--clock", choices=CLOCKS, default="wall", help="the clock targets are judged on (default wall)")
    p.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)}, merged into the last report")
    p.add_argument("--set", action="append", metavar="KEY=N", help="any other BenchSettings field (repeatable)")
    p.add_argument("--out-dir", default="runs/bench", help="where bench.json and bench.md go (default runs/bench)")
    p.add_argument("--doc", help="also replace the results block of this Markdown file (e.g. BENCHMARKS.md)")


def add_quality_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ddim-book bench quality`` to ``p``."""
    p.add_argument("--config", default="mnist-small", help="the U-Net training config (default mnist-small)")
    p.add_argument("--budgets", default="1000,2000", help="comma-separated training steps to evaluate at")
    p.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    p.add_argument("--n", type=int, default=500, help="digits per evaluation, 2..500 (default 500)")
    p.add_argument("--sample-steps", type=int, default=50, help="DDIM S of the evaluation (default 50)")
    p.add_argument("--device", default="cpu", help="training device: cpu, cuda, auto, ... (default cpu)")
    p.add_argument("--out-dir", default="runs/bench/quality", help="checkpoints, grids and quality.json")
    p.add_argument("--doc", help="replace the quality block of this Markdown file (e.g. BENCHMARKS.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_solver_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ddim-book bench solvers`` to ``p``."""
    p.add_argument("--targets", default="1e-2,1e-3,1e-4", help="comma-separated RMS errors (default 1e-2,1e-3,1e-4)")
    p.add_argument("--max-steps", type=int, default=1000, help="largest S of the grid, 10..1000 (default 1000)")
    p.add_argument("--json", help="also write the measurements to this JSON file")
    p.add_argument("--doc", help="replace the solver block of this Markdown file (e.g. BENCHMARKS.md)")


def add_bench_parser(subparsers, speed, quality, solvers) -> argparse.ArgumentParser:
    """The ``bench`` sub-command with its ``quality`` and ``solvers`` studies; ``speed``, ``quality`` and
    ``solvers`` are the functions (args -> exit code) each one runs."""
    p = subparsers.add_parser("bench", help="time the samplers and the trainer; also: bench quality, bench solvers")
    add_arguments(p)
    p.set_defaults(func=speed)
    studies = p.add_subparsers(dest="study", metavar="{quality,solvers}", help="a study instead of the timings")
    q = studies.add_parser("quality", help="sample quality of our U-Net vs UNet2DModel at an equal training budget")
    add_quality_arguments(q)
    q.set_defaults(func=quality)
    s = studies.add_parser("solvers", help="network evaluations each ODE solver needs to reach an error (chapter 9)")
    add_solver_arguments(s)
    s.set_defaults(func=solvers)
    return p
