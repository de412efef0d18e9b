"""Regenerate every cached result the chapters read for the shipped MNIST model, in one resumable command.

    python scripts/regenerate_results.py --dry-run                     # list the jobs and which are current
    python scripts/regenerate_results.py --jobs 2                      # run them, two at a time, one thread each
    python scripts/regenerate_results.py --jobs 2 --previous OLD.pt    # ... and score an older model for the card

After ``scripts/ship_model.py`` switches the shipped model, every cache in ``data/results/`` that was computed
with another model file is stale (chapters 4, 6, 7 and 9 mark it so). This runs the scripts that rebuild them:
the model card's quality figures (``evaluate_shipped.py``), chapter 4's DDPM samples, chapter 6's eta x S table
(split into one job per row and S = 1000 cell, all writing one file under a lock), chapter 7's reconstruction
table, chapter 9's solver table and the README's picture. Every one of those scripts skips what is already
recorded for the current model's sha256, so an interrupted run (Ctrl-C, a closed laptop) resumes where it stopped
when started again, and a second run after a complete one does nothing but check. On a 2-core CPU the whole set
takes about 100 core-minutes, most of it the five S = 1000 cells; the longest jobs start first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ETAS = ("0", "0.2", "0.5", "1", "sigma_hat")
PY = sys.executable


def jobs(previous: Path | None = None) -> list[tuple[str, float, list[str]]]:
    """(name, rough cost in core-minutes on a 2-core laptop CPU, command), longest first."""
    eta_table = [PY, "scripts/eta_steps_table.py", "--setting", "mnist", "--threads", "1", "--etas"]
    listed = [(f"eta x S, eta = {eta}, S = 1000 (n = 500)", 12.0, [*eta_table, eta, "--steps", "1000"]) for eta in ETAS]
    listed += [
        ("reconstruction table (chapter 7)", 9.0, [PY, "scripts/reconstruction_table.py", "--threads", "1"]),
        *[
            (f"eta x S, eta = {eta}, S = 10..100", 5.0, [*eta_table, eta, "--steps", "10", "20", "50", "100"])
            for eta in ETAS
        ],
        ("solver table (chapter 9)", 3.0, [PY, "scripts/solver_digits_table.py", "--threads", "1"]),
        (
            "model card quality",
            2.0 + (2.0 if previous else 0.0),
            [PY, "scripts/evaluate_shipped.py", *(["--previous", str(previous)] if previous else [])],
        ),
        ("DDPM samples (chapter 4)", 1.0, [PY, "scripts/ddpm_samples.py", "--threads", "1"]),
        ("README picture", 0.2, [PY, "-m", "ddim_book", "sample", "--out", "data/results/samples.png", "--force"]),
    ]
    return sorted(listed, key=lambda job: -job[1])


def current_sha() -> str:
    """sha256 of the shipped mnist model, from the manifest."""
    manifest = json.loads((ROOT / "data" / "checkpoints" / "manifest.json").read_text())
    return manifest["models"]["mnist"]["sha256"]


def stale_caches(sha: str) -> list[str]:
    """The result files whose recorded model is not ``sha`` (a quick look, for --dry-run)."""
    stale = []
    for name in ("eta_steps_mnist", "reconstruction", "solver_digits", "ddpm_samples"):
        path = ROOT / "data" / "results" / f"{name}.json"
        try:
            model = json.loads(path.read_text())["model"]
        except (OSError, ValueError, KeyError):
            stale.append(f"{path.name} (missing or unreadable)")
            continue
        if (model["sha256"] if isinstance(model, dict) else model) != sha:
            stale.append(path.name)
    return stale


def run_job(name: str, command: list[str], env: dict) -> tuple[str, int, float]:
    start = time.monotonic()
    log = ROOT / "runs" / "regenerate" / (name.replace(" ", "_").replace(",", "").replace("=", "") + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    status = "done" if code == 0 else f"FAILED (exit {code}; see {log.relative_to(ROOT)})"
    print(f"{time.strftime('%H:%M:%S')}  {name}: {status} in {elapsed / 60:.1f} min", flush=True)
    return name, code, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="jobs at once, one torch thread each (default 1)")
    parser.add_argument("--previous", type=Path, help="an older model file for the card's old-vs-new figures")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and the stale caches; run nothing")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.previous is not None and not args.previous.is_file():
        parser.error(f"--previous {args.previous}: no such file")
    todo = jobs(args.previous)
    stale = stale_caches(current_sha())
    print(f"shipped model {current_sha()[:16]}...; caches from another model: {', '.join(stale) or 'none'}")
    if args.dry_run:
        for name, cost, command in todo:
            print(f"  ~{cost:4.1f} core-min  {name}: {' '.join(command[1:])}")
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda job: run_job(job[0], job[2], env), todo))
    except KeyboardInterrupt:
        print("interrupted: every finished cell is saved; run the same command again to resume", file=sys.stderr)
        return 130
    failed = [name for name, code, _ in results if code != 0]
    if failed:
        print(f"error: {len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    left = ", ".join(stale_caches(current_sha())) or "none"
    print(f"all {len(results)} jobs done; caches from another model now: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
