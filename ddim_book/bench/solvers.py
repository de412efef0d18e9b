"""``ddim-book bench solvers``: network evaluations each ODE solver needs to reach a given error (chapter 9).

The data are Gaussian, x_0 ~ N(m, s^2 I), so the exact end point of DDIM's ODE is known in closed form
(:meth:`~ddim_book.oracles.GaussianOracle.ode_map`) and the exact epsilon comes from the oracle: the error is the
solver's alone. For each rule (DDIM eta = 0, which is order 1; the 2M rule with eps linear in lambda, DPM-Solver-2M;
the 2M rule linear in sigma) the global error, the root-mean-square distance to the exact x_0 over ``n`` points in
``dim`` dimensions (float64, trailing spacing), is measured on a grid of S, and each target error is given the
smallest S on the grid from which the error stays at or below it. Every rule makes one evaluation per step.
"""

from __future__ import annotations

import json

import torch

from ddim_book._io import atomic_write_text
from ddim_book.bench.report import check_doc, update_doc
from ddim_book.oracles import GaussianOracle
from ddim_book.samplers import ddim_sample, dpm_solver_sample
from ddim_book.schedules import NoiseSchedule

__all__ = ["RULES", "SOLVER_START", "SOLVER_END", "errors_by_steps", "render_solvers", "run_solvers"]

SOLVER_START, SOLVER_END = "<!-- solver-results:start -->", "<!-- solver-results:end -->"
RULES = {
    "DDIM (order 1)": lambda m, sch, x, S: ddim_sample(m, sch, x, S, 0.0, "trailing", progress=False),
    "2M, line in lambda": lambda m, sch, x, S: dpm_solver_sample(m, sch, x, S, 2, "trailing", "lambda", progress=False),
    "2M, line in sigma": lambda m, sch, x, S: dpm_solver_sample(m, sch, x, S, 2, "trailing", "sigma", progress=False),
}


def step_grid(max_steps: int = 1000) -> list[int]:
    """S = 2, 3, ..., 10, then 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, ... up to ``max_steps``."""
    mantissas = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
    grid = {S for S in range(2, 11)} | {round(m * 10**e) for e in (1, 2, 3) for m in mantissas}
    return sorted(S for S in grid if S <= max_steps)


def errors_by_steps(steps, n: int = 256, dim: int = 64, mean: float = 0.5, std: float = 0.3, seed: int = 0) -> dict:
    """{rule: [RMS distance to the exact ODE end point for each S in ``steps``]} on Gaussian data (DDPM's linear
    schedule, T = 1000), all rules from the same seeded x_T (n, dim), float64."""
    schedule = NoiseSchedule.linear(T=1000)
    oracle = GaussianOracle(schedule, mean=mean, std=std, shape=(dim,))
    x_T = torch.randn((n, dim), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    exact = oracle.ode_map(x_T, schedule.T)
    return {
        name: [(rule(oracle, schedule, x_T, S) - exact).pow(2).mean().sqrt().item() for S in steps]
        for name, rule in RULES.items()
    }


def steps_to_reach(steps, errors, target: float) -> int | None:
    """The smallest S of ``steps`` from which every error is <= ``target`` (None if the last one is not)."""
    best = None
    for S, err in zip(reversed(steps), reversed(errors)):
        if err > target:
            break
        best = S
    return best


def run_solvers(targets=(1e-2, 1e-3, 1e-4), max_steps: int = 1000, n: int = 256, dim: int = 64, seed: int = 0) -> dict:
    """Measure the error grid and the evaluations needed for each target; returns a JSON-ready dict."""
    if not targets or any(not 0 < t < 1 for t in targets):
        raise ValueError(f"targets must be errors in (0, 1), got {list(targets)}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 10 <= max_steps <= 1000:
        raise ValueError(f"max_steps must be an integer in 10..1000, got {max_steps!r}")
    steps = step_grid(max_steps)
    errors = errors_by_steps(steps, n=n, dim=dim, seed=seed)
    needed = {name: {str(t): steps_to_reach(steps, errs, t) for t in targets} for name, errs in errors.items()}
    return {"steps": steps, "errors": errors, "needed": needed, "targets": list(targets),
            "setting": {"n": n, "dim": dim, "mean": 0.5, "std": 0.3, "seed": seed, "schedule": "linear, T = 1000",
                        "spacing": "trailing", "dtype": "float64"}}  # fmt: skip


def render_solvers(result: dict) -> str:
    """The evaluations-to-target table (and the ratio to DDIM) as Markdown."""
    targets, ddim = result["targets"], result["needed"]["DDIM (order 1)"]
    columns = {"rule": "rule"}
    rows = []
    for name, needed in result["needed"].items():
        row = {"rule": name}
        for t in targets:
            S, base = needed[str(t)], ddim[str(t)]
            ratio = f" ({S / base:.2f}x DDIM)" if S and base and name != "DDIM (order 1)" else ""
            row[str(t)] = f"{S}{ratio}" if S else f"> {result['steps'][-1]}"
            columns[str(t)] = f"error <= {t:g}"
        rows.append(row)
    s = result["setting"]
    title = (f"Network evaluations to reach an RMS error on Gaussian data ({s['n']} points, d = {s['dim']}, "
             f"{s['spacing']} spacing, exact epsilon)")  # fmt: skip
    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns)
    lines = [f"**{title}**", "", head] + ["| " + " | ".join(str(r[k]) for k in columns) + " |" for r in rows]
    grid = result["steps"]
    lines += ["", f"S on a grid of {len(grid)} values from {grid[0]} to {grid[-1]}; the smallest S from which the "
              "error stays at or below the target. One network evaluation per step for every rule."]  # fmt: skip
    return "\n".join(lines)


def main_cli(args) -> int:
    """``ddim-book bench solvers``: measure, print the table, optionally write JSON and update a Markdown block."""
    if args.doc:  # checked before the work, not after
        check_doc(args.doc, SOLVER_START, SOLVER_END)
    targets = [float(t) for t in args.targets.split(",")]
    result = run_solvers(targets, args.max_steps)
    text = render_solvers(result)
    print(text)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.doc:
        update_doc(args.doc, text, SOLVER_START, SOLVER_END)
        print(f"updated the solver block of {args.doc}")
    return 0
