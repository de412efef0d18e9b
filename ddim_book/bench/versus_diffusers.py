"""The comparisons of ``ddim-book bench``.

- ``ddim_sample`` against other implementations of the same DDIM update: a naive loop, the no_grad variant,
  and diffusers' ``DDIMScheduler`` driving our U-Net (DDIM eq. (12); chapter 6);
- our U-Net against a diffusers ``UNet2DModel`` of matched parameter count (forward and training step);

diffusers is optional (``pip install -e '.[bench]'``); without it the diffusers part prints a skip line.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ddim_book.bench.args import CLOCKS
from ddim_book.bench.report import diffusers_version, section, target
from ddim_book.bench.timing import FixedEps, forwards, interleaved, start_noise
from ddim_book.samplers import ddim_sample, ddim_step, timesteps
from ddim_book.schedules import NoiseSchedule

SKIP_LINE = "diffusers side by side skipped: pip install -e '.[bench]'"


# ----- ddim_sample against a naive loop and the no_grad variant ----------------------------------------------
@torch.inference_mode()
def naive_ddim_sample(model, schedule, x_T: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """Deterministic DDIM (DDIM eq. (12), eta = 0; chapter 6) written the straightforward way, the baseline of
    the optimisations table: every step builds its t tensor, indexes ``alpha_bars`` as tensors and lets
    :func:`ddim_step` re-derive and validate the coefficients. x_T float (B, ...); returns x_0 of that shape."""
    taus = timesteps(schedule.T, steps)
    x = x_T
    for i in reversed(range(len(taus))):
        t = torch.full((x.shape[0],), taus[i], dtype=torch.long, device=x.device)
        prev = schedule.alpha_bars[taus[i - 1]] if i > 0 else schedule.alpha_bars[0]
        x = ddim_step(x, model(x, t), schedule.alpha_bars[taus[i]], prev)
    return x


_VARIANTS = {
    "shipped": "ddim_sample as shipped (inference_mode, float coefficients, check_inputs off)",
    "checks": "model.check_inputs = True (the model checks the range of t in every call)",
    "no_grad": "torch.no_grad instead of torch.inference_mode",
    "naive": "naive loop: t tensor, tensor coefficients and ddim_step checks in every step",
    "limit": "the limit: S model calls and nothing else",
}


def _run_variant(kind: str, net, schedule, x_T: torch.Tensor, t: torch.Tensor, n: int) -> None:
    net.check_inputs = kind == "checks"
    try:
        if kind == "no_grad":
            with torch.no_grad():  # the undecorated function (functools.wraps keeps it), without inference_mode
                ddim_sample.__wrapped__(net, schedule, x_T, steps=n, progress=False)
        elif kind == "naive":
            naive_ddim_sample(net, schedule, x_T, n)
        elif kind == "limit":
            forwards(net, x_T, t, n)
        else:
            ddim_sample(net, schedule, x_T, steps=n, progress=False)
    finally:
        net.check_inputs = False


def bench_optimisations(model, schedule, s, device) -> dict:
    """Section ``optimisations``: the shipped ddim_sample against versions with one optimisation undone. Each is
    timed driving :class:`~ddim_book.bench.timing.FixedEps` (the sampler's own work per step, precise even on a busy
    machine) and driving the U-Net at batch ``s.opt_batch`` (the whole step)."""
    x_T, n = start_noise(model, s.opt_batch, device), s.steps
    t_mid = torch.full((s.opt_batch,), schedule.T // 2, dtype=torch.long, device=device)
    nets = {"free": FixedEps(model, x_T, schedule.T), "unet": model}
    fns = {
        (kind, which): (lambda kind=kind, net=net: _run_variant(kind, net, schedule, x_T, t_mid, n))
        for kind in _VARIANTS
        for which, net in nets.items()
    }
    for fn in fns.values():
        fn()
    r = interleaved(fns, max(s.repeats, 3), device, {key: 10 for key in fns if key[0] == "free"})
    rows = []
    for kind, label in _VARIANTS.items():
        free, unet = r[(kind, "free")], r[(kind, "unet")]
        row = {"variant": label} | {f"alone_us_{c}": 1e6 * free[c] / n for c in CLOCKS}
        row |= {f"unet_ms_{c}": 1e3 * unet[c] / n for c in CLOCKS}
        rows.append(row | {f"vs_shipped_{c}": unet[c] / r[("shipped", "unet")][c] for c in CLOCKS})
    shipped = ddim_sample(model, schedule, x_T, n, progress=False)
    diff, scale = (naive_ddim_sample(model, schedule, x_T, n) - shipped).abs(), shipped.abs().max()
    columns = {"variant": "variant", "alone_us_wall": "sampler alone, us/step (wall)", "alone_us_cpu": "(CPU)"}
    columns |= {"unet_ms_wall": f"with the U-Net at batch {s.opt_batch}, ms/step (wall)", "unet_ms_cpu": "(CPU)"}
    columns |= {"vs_shipped_wall": "x shipped (wall)", "vs_shipped_cpu": "x shipped (CPU)"}
    title = f"What each optimisation buys: DDIM S={n}"
    notes = ["'Sampler alone' drives a model that returns a fixed eps after the U-Net's own handling of t."]
    notes.append(f"The naive loop and ddim_sample compute the same samples: max abs difference {diff.max():.2g} "
                 f"where max |x_0| = {scale:.3g}.")  # fmt: skip
    out = section(title, columns, rows, notes=notes)
    return out | {"batch": s.opt_batch, "steps": n, "naive_vs_shipped_max_abs_diff": diff.max().item()}


# ----- diffusers ----------------------------------------------------------------------------------------
def ddim_scheduler(schedule, steps: int, steps_offset: int):
    """diffusers' DDIMScheduler set to our schedule, eta = 0 later, no clipping, alpha_bar_0 = 1, S = ``steps``."""
    from diffusers import DDIMScheduler

    d = schedule.to_dict()
    betas = {"beta_start": d["beta_start"], "beta_end": d["beta_end"]} if d["kind"] == "linear" else {
        "trained_betas": schedule.betas[1:].tolist()}  # fmt: skip
    sch = DDIMScheduler(num_train_timesteps=schedule.T, **betas, clip_sample=False, set_alpha_to_one=True,
                        steps_offset=steps_offset, prediction_type="epsilon", timestep_spacing="leading")  # fmt: skip
    sch.set_timesteps(steps)
    return sch


@torch.inference_mode()
def scheduler_sample(model, scheduler, x_T: torch.Tensor) -> torch.Tensor:
    """DDIM with diffusers' scheduler driving our model. diffusers counts timesteps from 0: its
    ``alphas_cumprod[k]`` is our ``alpha_bars[k + 1]``, so its timestep k is our t = k + 1."""
    x = x_T
    for k in scheduler.timesteps:
        x = scheduler.step(model(x, k + 1), k, x, eta=0.0, return_dict=False)[0]
    return x


def _train_step(net, config, schedule, x0: torch.Tensor):
    """One AdamW step on L_simple (DDPM eq. (14)) with the config's lr and clipping: the same for both U-Nets."""
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule.validate = False  # t is drawn in 1..T below; checking it on a GPU would sync every step

    def step():
        t = torch.randint(1, schedule.T + 1, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = schedule.q_sample(x0, t, noise)  # DDPM eq. (4)
        with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=x0.device.type == "cuda"):
            loss = F.mse_loss(net(x_t, t).float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        opt.step()

    return step


def _unet_rows(model, theirs, schedule, s, device) -> list[dict]:
    """Forward time and training images/s of both U-Nets, measured alternately, each trained by the same step."""
    import copy

    from ddim_book.training import get_config

    x = start_noise(model, s.batch, device)
    t = torch.randint(1, schedule.T + 1, (s.batch,), generator=torch.Generator().manual_seed(1)).to(device)
    calls = {"ours": model, "theirs": theirs}
    with torch.inference_mode():
        if theirs(x, t).shape != x.shape:
            raise RuntimeError(f"UNet2DModel does not map {tuple(x.shape)} to itself at this image size")
    fwd = {name: (lambda call=call: forwards(call, x, t)) for name, call in calls.items()}
    for f in fwd.values():
        f()
    fwd = interleaved(fwd, s.repeats, device, {"ours": 3, "theirs": 3})
    config, ours_net = get_config(s.config), copy.deepcopy(model).train()
    x0 = torch.rand((s.train_batch or config.batch_size, *x.shape[1:]), device=device) * 2 - 1
    steps = {
        "ours": _train_step(ours_net, config, schedule, x0),
        "theirs": _train_step(theirs.train(), config, schedule, x0),
    }
    for step in steps.values():
        step()
    step, n = interleaved(steps, s.repeats, device), x0.shape[0]
    forward = {"what": f"forward, batch {s.batch} (ms)"} | {k: 1e3 * fwd[k]["wall"] for k in calls}
    train = {"what": f"training images/s, batch {n}"} | {k: n / step[k]["wall"] for k in calls}
    forward |= {f"ratio_{c}": fwd["ours"][c] / fwd["theirs"][c] for c in CLOCKS}
    return [forward, train | {f"ratio_{c}": step["theirs"][c] / step["ours"][c] for c in CLOCKS}]


def _scheduler_rows(model, schedule, s, device) -> tuple[list[dict], float, float]:
    """ddim_sample and DDIMScheduler timed alternately from one x_T, driving the U-Net and driving FixedEps (the
    samplers' own work); the outputs' max abs differences. Also returns how far ddim_sample lies from
    DDIMScheduler when it runs on the scheduler's own float32 ``alphas_cumprod``, and max |x_0| of ddim_sample."""
    x_T, last = start_noise(model, s.batch, device, seed=2), {}
    exact, shifted = ddim_scheduler(schedule, s.steps, 0), ddim_scheduler(schedule, s.steps, 1)
    free = FixedEps(model, x_T, schedule.T)
    fns = {
        "ddim_sample": lambda: last.update(ours=ddim_sample(model, schedule, x_T, steps=s.steps, progress=False)),
        "DDIMScheduler": lambda: last.update(theirs=scheduler_sample(model, exact, x_T)),
        "ddim_alone": lambda: ddim_sample(free, schedule, x_T, steps=s.steps, progress=False),
        "scheduler_alone": lambda: scheduler_sample(free, exact, x_T),
    }
    r = interleaved(fns, s.repeats, device, {"ddim_alone": 5, "scheduler_alone": 5})  # the model is warm
    taus = list(reversed(timesteps(schedule.T, s.steps)))
    rows = [{"sampler": "ddim_sample", "seconds": r["ddim_sample"]["wall"], "model_t": f"{taus[:3]}..."}]
    rows[0] |= {f"vs_scheduler_{c}": r["ddim_sample"][c] / r["DDIMScheduler"][c] for c in CLOCKS}
    rows[0] |= {f"alone_vs_scheduler_{c}": r["ddim_alone"][c] / r["scheduler_alone"][c] for c in CLOCKS}
    for offset, sch in ((0, exact), (1, shifted)):
        model_t = [int(k) + 1 for k in sch.timesteps]
        theirs = last["theirs"] if offset == 0 else scheduler_sample(model, sch, x_T)
        row = {"sampler": f"DDIMScheduler, steps_offset={offset}", "model_t": f"{model_t[:3]}..."}
        row |= {"timesteps_match_ours": model_t == taus, "max_abs_diff": (theirs - last["ours"]).abs().max().item()}
        rows.append(row | ({"seconds": r["DDIMScheduler"]["wall"]} if offset == 0 else {}))
    for row, key in zip(rows, ("ddim_alone", "scheduler_alone")):
        row |= {"alone_us": 1e6 * r[key]["wall"] / s.steps}
    twin = NoiseSchedule.from_alpha_bars(exact.alphas_cumprod.double())
    twin_diff = (ddim_sample(model, twin, x_T, steps=s.steps, progress=False) - last["theirs"]).abs().max().item()
    return rows, twin_diff, last["ours"].abs().max().item()


def bench_diffusers(model, schedule, s, device) -> dict:
    """Section ``diffusers``: UNet2DModel vs our U-Net, and DDIMScheduler vs ddim_sample, both on our U-Net."""
    version = diffusers_version()
    if version is None:
        print(SKIP_LINE)
        return section(SKIP_LINE, {}, []) | {"skipped": SKIP_LINE}
    from ddim_book.models.unet2d import DiffusersUNet, matched_unet2d

    arguments, search = matched_unet2d(model.config)
    theirs = DiffusersUNet(T=schedule.T, **arguments)
    theirs.check_inputs = False  # as ours: t is drawn in 1..T
    ours_n, theirs_n = search["ours_parameters"], search["theirs_parameters"]
    unet = [
        {"what": "parameters", "ours": ours_n, "theirs": theirs_n} | {f"ratio_{c}": ours_n / theirs_n for c in CLOCKS}
    ]
    unet += _unet_rows(model, theirs.to(device).eval(), schedule, s, device)
    samplers, twin_diff, scale = _scheduler_rows(model, schedule, s, device)
    c, time_ratio, train_ratio = s.clock, samplers[0][f"vs_scheduler_{s.clock}"], unet[-1][f"ratio_{s.clock}"]
    alone = samplers[0][f"alone_vs_scheduler_{c}"]
    checks = [
        target(f"ddim_sample as fast as DDIMScheduler (time ratio <= 1, {c})", time_ratio, time_ratio <= 1),
        target(f"... the samplers' own work alone (time ratio <= 1, {c})", alone, alone <= 1),
        target(f"our U-Net trains >= UNet2DModel's images/s (ratio >= 1, {c})", train_ratio, train_ratio >= 1),
    ]
    best = search["settings"]
    note = (
        f"UNet2DModel(block_out_channels={best['block_out_channels']}, layers_per_block={best['layers_per_block']})"
        f" is the closest in parameters of {len(search['tried'])} settings tried; it runs at our image size, unpadded."
    )
    columns = {"what": "", "ours": "ours (UNet)", "theirs": "diffusers (UNet2DModel)"}
    columns |= {"ratio_wall": "ours / theirs (wall)", "ratio_cpu": "ours / theirs (CPU)"}
    out = section(f"Side by side with diffusers {version}: the U-Nets", columns, unet, checks, [note])
    columns = {"sampler": "sampler driving our U-Net", "seconds": f"S={s.steps}, batch {s.batch} (s)"}
    columns |= {"vs_scheduler_wall": "time / DDIMScheduler (wall)", "vs_scheduler_cpu": "(CPU)"}
    columns |= {"model_t": "model timesteps", "timesteps_match_ours": "same t as ours"}
    columns |= {"max_abs_diff": "max abs diff vs ddim_sample", "alone_us": "sampler alone (us/step, wall)"}
    columns |= {"alone_vs_scheduler_wall": "alone / DDIMScheduler (wall)", "alone_vs_scheduler_cpu": "(CPU)"}
    title = f"Side by side with diffusers {version}: DDIM eq. (12), eta = 0, on our U-Net"
    twin = (f"Max |x_0| of ddim_sample: {scale:.3g}. Run on DDIMScheduler's own float32 alphas_cumprod, "
            f"ddim_sample lies within {twin_diff:.2g} of DDIMScheduler (steps_offset=0).")  # fmt: skip
    more = section(title, columns, samplers, notes=[twin])
    extra = {"float32_twin_max_abs_diff": twin_diff, "ours_max_abs": scale}
    return out | {"version": version, "unet_search": search, "more": [more], **extra}
