"""The options of ``ddim-book bench`` (kept free of torch, so that ``ddim-book --help`` starts fast)."""

from __future__ import annotations

import argparse

SECTIONS = ("overhead", "sampling", "training", "optimisations", "diffusers")
CLOCKS = ("wall", "cpu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the bench options to ``p`` (``ddim-book bench`` and ``python -m ddim_book.bench`` share them)."""
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
