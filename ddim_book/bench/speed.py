"""``ddim-book bench``: the samplers and the trainer measured against their limits, and against diffusers.

Sections (``--sections`` picks some): ``overhead`` (time of ``ddim_sample`` with S steps / (S x one forward
pass of the same model at the same batch); 1.00 is the limit), ``sampling`` (images/s of DDIM S = 10, 50 and
of DDPM; off CUDA the DDPM figure is k steps of its loop, scaled by T/k), ``training`` (images/s and peak
memory of the Trainer's own step), ``optimisations`` and ``diffusers`` (both in
:mod:`ddim_book.bench.versus_diffusers`); the report is written by :mod:`ddim_book.bench.report`.

Timings are medians over interleaved repeats (A B A B ...), so slow drift of the machine hits both sides of a
ratio alike. Each call is timed on two clocks, wall time and the process's CPU time: the CPU clock is the
steadier one on a machine shared with other jobs; ``--clock`` picks the one the targets are judged on.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import tempfile
from pathlib import Path

import torch

from ddim_book.bench import report
from ddim_book.bench import versus_diffusers as side
from ddim_book.bench.args import CLOCKS, SECTIONS
from ddim_book.bench.report import section, target
from ddim_book.bench.timing import FixedEps, build_unet, forwards, interleaved, start_noise, variants
from ddim_book.samplers import ddim_sample, ddpm_sample
from ddim_book.schedules import NoiseSchedule

__all__ = ["BenchSettings", "run_bench", "run_bench_cli"]


@dataclasses.dataclass
class BenchSettings:
    """What to measure. Batches count images; ``steps`` is the S of the overhead ratio and of the long DDIM row;
    ``forwards_per_round`` forward passes are timed as one block per round; ``ddpm_steps`` is the k of the DDPM
    estimate (None: all T on CUDA, 10 elsewhere); ``train_batch`` None keeps the config's batch size."""

    config: str = "mnist-small"
    batch: int = 64
    steps: int = 50
    short_steps: int = 10
    repeats: int = 3
    forwards_per_round: int = 10
    ddpm_steps: int | None = None
    train_batch: int | None = None
    train_steps: int = 5
    warmup_steps: int = 2
    opt_batch: int = 1
    device: str = "auto"
    threads: int | None = None
    clock: str = "wall"
    sections: tuple[str, ...] = SECTIONS

    @classmethod
    def quick(cls, **changes) -> BenchSettings:
        """Batch 8, few steps and repeats: every section in seconds (a smoke run, not a measurement)."""
        fast = dict(batch=8, steps=5, short_steps=2, repeats=2, forwards_per_round=3, ddpm_steps=3, train_batch=8)
        return cls(**{**fast, "train_steps": 2, "warmup_steps": 1, **changes})

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, low = getattr(self, f.name), 0 if f.name == "warmup_steps" else 1
            if "int" in str(f.type) and not (value is None and "None" in str(f.type)):
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ValueError(f"{f.name} must be an integer >= {low}, got {value!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        self.sections = tuple(self.sections)
        if not self.sections or any(s not in SECTIONS for s in self.sections):
            raise ValueError(f"sections must be a non-empty subset of {SECTIONS}, got {self.sections!r}")


# ----- sections -----------------------------------------------------------------------------------------
def bench_sampling(model, schedule, s: BenchSettings, device) -> dict:
    """Sections ``overhead`` and ``sampling`` for every variant the device offers, from one x_T."""
    x_T = start_noise(model, s.batch, device)
    t_mid = torch.full((s.batch,), schedule.T // 2, dtype=torch.long, device=device)
    k = min(s.ddpm_steps or (schedule.T if device.type == "cuda" else 10), schedule.T)
    ddpm_schedule = schedule if k == schedule.T else NoiseSchedule(schedule.betas[1 : k + 1])  # the loop, k steps
    note = "" if k == schedule.T else f"estimate: {k} steps of the DDPM loop timed, x {schedule.T}/{k}"
    overhead, rows, checks = [], [], []
    for name, net in variants(model, device):
        ddim_sample(net, schedule, x_T, steps=2, progress=False)  # warm-up: allocator, cuDNN, compilation
        free = FixedEps(net, x_T, schedule.T)
        fns = {
            "sample": lambda net=net: ddim_sample(net, schedule, x_T, steps=s.steps, progress=False),
            "forward": lambda net=net: forwards(net, x_T, t_mid, s.forwards_per_round),  # a block, as in a sampler
            "short": lambda net=net: ddim_sample(net, schedule, x_T, steps=s.short_steps, progress=False),
            "ddpm": lambda net=net: ddpm_sample(net, ddpm_schedule, x_T, progress=False),
            "alone": lambda free=free: ddim_sample(free, schedule, x_T, steps=s.steps, progress=False),
        }
        if "sampling" not in s.sections:
            fns = {key: fns[key] for key in ("sample", "forward", "alone")}
        r = interleaved(fns, s.repeats, device, {"alone": 5})
        r["forward"] = {c: r["forward"][c] / s.forwards_per_round for c in CLOCKS}
        row = {"variant": name, "batch": s.batch, "steps": s.steps, "sample_s": r["sample"]["wall"]}
        row |= {"forward_ms": 1e3 * r["forward"]["wall"], "alone_ms": 1e3 * r["alone"]["wall"] / s.steps}
        row |= {f"overhead_{c}": r["sample"][c] / (s.steps * r["forward"][c]) for c in CLOCKS}
        overhead.append(row | {f"implied_{c}": 1 + r["alone"][c] / (s.steps * r["forward"][c]) for c in CLOCKS})
        for key, how in (("overhead", "measured"), ("implied", "1 + sampler alone / forward")):
            value = overhead[-1][f"{key}_{s.clock}"]
            checks.append(target(f"sampler overhead <= 1.03 ({name}; {how}; {s.clock})", value, value <= 1.03))
        labels = {"short": f"DDIM S={s.short_steps}", "sample": f"DDIM S={s.steps}", "ddpm": f"DDPM T={schedule.T}"}
        for key in (key for key in labels if key in r):
            scale = schedule.T / k if key == "ddpm" else 1.0
            row = {"variant": name, "sampler": labels[key], "batch": s.batch, "seconds": r[key]["wall"] * scale}
            row |= {"images_per_s": s.batch / row["seconds"], "images_per_cpu_s": s.batch / (r[key]["cpu"] * scale)}
            rows.append(row | {"note": note if key == "ddpm" else ""})
    columns = {"variant": "variant", "batch": "batch", "steps": "S", "sample_s": "ddim_sample (s)"}
    columns |= {"forward_ms": "one forward (ms)", "overhead_wall": "overhead (wall)", "overhead_cpu": "overhead (CPU)"}
    columns |= {"alone_ms": "sampler alone (ms/step)", "implied_wall": "implied (wall)", "implied_cpu": "implied (CPU)"}
    title = "Sampler overhead: ddim_sample / (S x one forward pass); the limit is 1.00"
    out = {"overhead": section(title, columns, overhead, checks)}
    columns = {"variant": "variant", "sampler": "sampler", "batch": "batch", "images_per_s": "images/s"}
    out["sampling"] = section("Sampling throughput", columns | {"images_per_cpu_s": "images per CPU-second"}, rows)
    out["sampling"]["columns"]["note"] = "note"
    return {key: value for key, value in out.items() if key in s.sections}


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def bench_training(s: BenchSettings, device: torch.device) -> dict:
    """Images/s of ``Trainer._train_step`` (batch, forward, L_simple, backward, clipping, AdamW, EMA), warm-up
    steps excluded, and the peak memory: CUDA's allocator peak, or the process's RSS high-water mark."""
    from ddim_book.training import Trainer, get_config

    variants = [{}] if device.type != "cuda" else [{}, {"bf16": True, "channels_last": True}, {"compile": True}]
    quiet = {"total_steps": 10**9, "log_every": 10**9, "ckpt_every": 0, "sample_every": 0}
    batch = {"batch_size": s.train_batch} if s.train_batch else {}
    rows = []
    for changes in variants:
        config = get_config(s.config, device=str(device), **quiet, **batch, **changes)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, tmp, resume=False, progress=False)
            trainer.train_model.train()
            before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else _peak_memory_mib(device)
            for _ in range(s.warmup_steps):
                trainer._train_step()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            step = interleaved({"step": trainer._train_step}, s.train_steps, device)["step"]
        name = ("bf16" if trainer.autocast else "fp32") + (" + channels_last" if trainer.channels_last else "")
        n = config.batch_size
        row = {"variant": name + (" + compile" if config.compile else ""), "config": s.config, "batch": n}
        row |= {"steps_timed": s.train_steps, "step_s": step["wall"], "images_per_s": n / step["wall"]}
        row |= {"images_per_cpu_s": n / step["cpu"], "memory_before_mib": before}
        rows.append(row | {"peak_memory_mib": _peak_memory_mib(device)})
    columns = {"variant": "variant", "config": "config", "batch": "batch", "steps_timed": "steps timed"}
    columns |= {"step_s": "step (s)", "images_per_s": "images/s", "images_per_cpu_s": "images per CPU-second"}
    memory = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "the process's RSS high-water mark"
    title = "Training throughput: Trainer._train_step, warm-up steps excluded"
    columns |= {"memory_before_mib": "before the first step (MiB)", "peak_memory_mib": "peak (MiB)"}
    return section(title, columns, rows, notes=[f"Memory: {memory}."])


# ----- running -----------------------------------------------------------------------------------------
def run_bench(settings: BenchSettings, out_dir="runs/bench", command: str = "", merge: bool = False) -> dict:
    """Measure ``settings.sections``; write ``bench.json`` and ``bench.md`` into ``out_dir``; return the results.

    With ``merge``, sections that an earlier run left in ``out_dir/bench.json`` stay in the report (each section
    records the run that measured it). The global torch RNG is left as it was found."""
    from ddim_book.training.distributed import resolve_device

    if not isinstance(settings, BenchSettings):
        raise TypeError(f"settings must be a BenchSettings, got {type(settings).__name__}")
    device = resolve_device(settings.device)
    if device.type == "cuda" and settings.clock == "cpu":
        raise ValueError("clock='cpu' does not time CUDA work; use clock='wall' on a GPU")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    path, rng = Path(out_dir) / "bench.json", torch.random.get_rng_state()
    results = json.loads(path.read_text()) if merge and path.exists() else {}
    run, measured = report.run_info(device, settings, command), {}
    torch.manual_seed(0)
    try:
        model, schedule = build_unet(settings.config, device)
        run["model"] = {"config": settings.config, "parameters": model.num_parameters(), **model.config_dict()}
        if {"overhead", "sampling"} & set(settings.sections):
            measured.update(bench_sampling(model, schedule, settings, device))
        if "training" in settings.sections:
            measured["training"] = bench_training(settings, device)
        if "optimisations" in settings.sections:
            measured["optimisations"] = side.bench_optimisations(model, schedule, settings, device)
        if "diffusers" in settings.sections:
            measured["diffusers"] = side.bench_diffusers(model, schedule, settings, device)
    finally:
        torch.random.set_rng_state(rng)
    run["load_average_end"] = report.load_average()
    for part in measured.values():
        part["run"] = run
    results.update(measured, machine=run["machine"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    (path.parent / "bench.md").write_text(report.render_markdown(results) + "\n")
    return results


def run_bench_cli(args) -> int:
    """``ddim-book bench``: measure, print the Markdown report, say where the files went."""

    options = {"batch": args.batch, "steps": args.steps, "repeats": args.repeats, "train_batch": args.train_batch}
    sections = tuple(s.strip() for s in args.sections.split(",")) if args.sections else SECTIONS
    common = dict(config=args.config, device=args.device, threads=args.threads, clock=args.clock, sections=sections)
    changes = {**common, **{k: v for k, v in options.items() if v is not None}}
    fields = [f.name for f in dataclasses.fields(BenchSettings) if "int" in str(f.type)]
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in fields or not value.isdigit():
            raise ValueError(f"--set expects KEY=N with KEY one of {fields} and N a whole number, got {item!r}")
        changes[key] = int(value)
    settings = BenchSettings.quick(**changes) if args.quick else BenchSettings(**changes)
    command = getattr(args, "command_line", None) or "ddim-book " + " ".join(sys.argv[1:])
    results = run_bench(settings, args.out_dir, command=command, merge=args.sections is not None)
    text = report.render_markdown(results)
    print(text)
    if args.doc:
        report.update_doc(args.doc, text)
        print(f"updated the results block of {args.doc}")
    print(f"wrote {Path(args.out_dir) / 'bench.json'} and {Path(args.out_dir) / 'bench.md'}")
    return 0
