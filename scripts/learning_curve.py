"""Sample quality of the ``mnist`` recipe as training goes on: the EMA of saved trainer checkpoints, scored alike.

    cp runs/mnist/last.pt runs/mnist_s18000.pt        # keep a copy of the run's state at each point of interest
    python scripts/learning_curve.py runs/mnist_s18000.pt runs/mnist_s24904.pt ... [--doc BENCHMARKS.md]

Each checkpoint's EMA model draws n = 1000 digits with DDIM (eta = 0) at S = 50 and S = 10 from x_T seed 0, the
setting of the model card, scored by ``evaluation.score_digits`` against the 1,000 held-out digits (FLD with its 95%
bootstrap interval, the classifier's confidence, the class shares). Writes ``data/results/learning_curve_mnist.json``
(one row per training step, kept across calls: rows of steps already there are not recomputed) and, with ``--doc``,
the learning-curve block of that Markdown file. A corrupt file is reported with the command that rebuilds it.

Every checkpoint draws the same x_T, so the rows are paired: each keeps its 200 resampled FLDs (``fld_boot``) and
the table gives the change of the FLD since the first row with the paired 95% interval
(:func:`ddim_book.metrics.paired_difference`), much narrower than the two rows' own intervals. Rows cached without
their resampled FLDs are recomputed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ddim_book._io import atomic_write_text, read_json_record
from ddim_book.bench.report import check_doc, update_doc
from ddim_book.checkpoints import load_checkpoint, load_weights
from ddim_book.evaluation import generate, score_digits
from ddim_book.metrics import paired_fld_change
from ddim_book.models import build_model
from ddim_book.schedules import NoiseSchedule
from ddim_book.training.configs import TrainConfig, lr_at

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "results" / "learning_curve_mnist.json"
START, END = "<!-- learning-curve:start -->", "<!-- learning-curve:end -->"
STEPS = (50, 10)


def read_cache(path: Path) -> dict:
    """The cached record, or an empty one; a clear error naming the rebuilding command if it is corrupt."""
    return read_json_record(path, "python scripts/learning_curve.py CKPT...", "rows", list, empty={"rows": []})


def score_checkpoint(state: dict, n: int = 1000, seed: int = 0) -> dict:
    """The EMA model of a loaded trainer checkpoint scored at S = 50 and 10 (DDIM, eta = 0, x_T seed ``seed``)."""
    model = build_model(state["model_kind"], **state["model_config"])
    load_weights(model, state["ema"]["weights"], what=f"the EMA of the checkpoint at step {state['step']}")
    model.eval().check_inputs = False
    schedule = NoiseSchedule.from_dict(state["schedule"])
    row = {"step": state["step"], "images_seen": state["step"] * state["config"]["batch_size"], "n": n, "seed": seed}
    row["config"] = state["config"]["name"]
    row["lr"] = lr_at(TrainConfig.from_dict(state["config"]), state["step"] - 1)  # of the last update before it
    for S in STEPS:
        start = time.perf_counter()
        scores = score_digits(generate(model, schedule, n, steps=S, seed=seed), seed=seed, keep_values=True)
        keys = ("fld", "fld_low", "fld_high", "real_fld", "fld_ratio", "confidence", "fld_boot")
        row[f"S{S}"] = {key: scores[key] for key in keys}
        shares = scores["class_shares"]
        row[f"S{S}"] |= {"class_share_min": min(shares), "class_share_max": max(shares)}
        row[f"S{S}"]["seconds"] = round(time.perf_counter() - start, 1)
    return row


def render(record: dict) -> str:
    """The learning-curve table as Markdown."""
    rows = sorted(record["rows"], key=lambda r: r["step"])
    first = rows[0]
    lines = [
        f"The `mnist` recipe's EMA model at several points of one run; DDIM eta = 0, n = {first['n']} digits from "
        f"x_T seed {first['seed']}, against the 1,000 held-out digits "
        f"(real digits: FLD {first['S50']['real_fld']:.2f}).",
        "",
        f"The change columns give FLD minus the FLD at step {first['step']:,} with the paired 95% interval; `*` marks "
        "an interval that excludes 0.",
        "",
        "| training step | images seen | lr | FLD, S = 50 [95% interval] | change since the first row, S = 50 | "
        "FLD / real | confidence, S = 50 | FLD, S = 10 [95% interval] | change, S = 10 | confidence, S = 10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["S50"], r["S10"]
        fld_a = f"{a['fld']:.2f} [{a['fld_low']:.2f}, {a['fld_high']:.2f}]"
        fld_b = f"{b['fld']:.2f} [{b['fld_low']:.2f}, {b['fld_high']:.2f}]"
        lr = f"{r['lr']:.2g}" if "lr" in r else "-"
        lines.append(
            f"| {r['step']:,} | {r['images_seen']:,} | {lr} | {fld_a} | {change(r, first, 'S50')} | "
            f"{a['fld_ratio']:.2f} | {a['confidence']:.3f} | {fld_b} | {change(r, first, 'S10')} | "
            f"{b['confidence']:.3f} |"
        )
    return "\n".join(lines)


def change(row: dict, first: dict, key: str) -> str:
    """FLD(row) - FLD(first) with its paired 95% interval, as a table entry ('-' for the first row itself)."""
    if row is first or "fld_boot" not in row[key] or "fld_boot" not in first[key]:
        return "-"
    a, b = row[key], first[key]
    d = paired_fld_change(a, b)
    star = "*" if d["excludes_zero"] else ""
    return f"{d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]{star}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="trainer checkpoints (last.pt copies) of one run")
    parser.add_argument("--doc", type=Path, help="replace the learning-curve block of this Markdown file")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.checkpoints if not p.is_file()]
    if missing:
        parser.error(f"no such checkpoint: {', '.join(missing)}")
    if args.doc:
        try:
            check_doc(args.doc, START, END)
        except ValueError as err:
            parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    record = read_cache(args.out)
    record |= {"description": "sample quality of the mnist recipe's EMA model against training steps, one run",
               "command": "python scripts/learning_curve.py " + " ".join(str(p) for p in args.checkpoints)}  # fmt: skip
    # a row without its resampled FLDs cannot be paired: it is scored again when its checkpoint is given
    done = {r["step"] for r in record["rows"] if "fld_boot" in r["S50"]}
    for path in args.checkpoints:
        state = load_checkpoint(path)
        step = state["step"]
        if step in done:
            continue
        row = score_checkpoint(state)
        others = [r for r in record["rows"] if r["step"] != step]
        record["rows"] = sorted([*others, row], key=lambda r: r["step"])
        done.add(step)
        atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
        print(f"step {step:,}: FLD {row['S50']['fld']:.2f} (S = 50), {row['S10']['fld']:.2f} (S = 10)", flush=True)
    text = render(record)
    print(text)
    if args.doc:
        update_doc(args.doc, text, START, END)
        print(f"updated the learning-curve block of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
