"""Timing helpers shared by the benchmarks: two clocks, interleaved repeats, the models that are timed.

Timings are medians over interleaved repeats (A B A B ...), so slow drift of the machine hits both sides of a
ratio alike. Each call is timed on two clocks, wall time and the process's CPU time: the CPU clock is the
steadier one on a machine shared with other jobs.
"""

from __future__ import annotations

import statistics
import time

import torch

from ddim_book.models.embeddings import prepare_timesteps
from ddim_book.schedules import NoiseSchedule

__all__ = ["FixedEps", "build_unet", "forwards", "interleaved", "start_noise", "time_call", "variants"]


# ----- timing and tables -----------------------------------------------------------------------------
def time_call(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call ``fn()``, device work included."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(fns: dict, rounds: int, device: torch.device, per_round: dict | None = None) -> dict:
    """Call the callables of ``fns`` in turn for ``rounds`` rounds (``per_round[name]`` calls of ``name`` each
    round); returns ``{name: {"wall": median s, "cpu": median s, "n": calls}}``. Warm-up is the caller's job."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += [time_call(fn, device) for _ in range((per_round or {}).get(name, 1))]
    return {
        name: {"wall": statistics.median(w for w, _ in ts), "cpu": statistics.median(c for _, c in ts), "n": len(ts)}
        for name, ts in times.items()
    }


# ----- what is timed -------------------------------------------------------------------------------
def build_unet(config_name: str, device: torch.device):
    """The U-Net of a training config with random (not zero) residual-branch ends, so that eps is not 0.

    Returns (model in eval mode with ``check_inputs = False``, its NoiseSchedule)."""
    from ddim_book.models import UNet, UNetConfig
    from ddim_book.training import get_config

    config = get_config(config_name)
    if config.model_kind != "unet":
        raise ValueError(f"config must name a U-Net training config (e.g. mnist-small), got {config_name!r}")
    schedule = NoiseSchedule.from_dict(config.schedule)
    model = UNet(UNetConfig.from_dict({**config.model, "T": schedule.T}))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    model.check_inputs = False
    return model.to(device).eval(), schedule


def variants(model, device: torch.device):
    """(name, model callable): fp32 everywhere; on CUDA also bf16 autocast, + channels_last, + torch.compile."""
    yield "fp32", model
    if device.type != "cuda":
        return
    import copy

    def autocast(net, channels_last=False):
        def run(x, t):
            x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return net(x, t)

        return run

    yield "bf16 autocast", autocast(model)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    yield "bf16 + channels_last", autocast(model_cl, True)
    yield "bf16 + channels_last + compile", autocast(torch.compile(model_cl), True)


class FixedEps:
    """A model that costs next to nothing: the U-Net's own handling of t (range check included when
    ``check_inputs``), then a fixed epsilon (``net(x, T // 2)``, computed once). A sampler driving it spends
    only its own time per step."""

    def __init__(self, net, x: torch.Tensor, T: int):
        self.T, self.check_inputs = T, False
        with torch.inference_mode():
            self.eps = net(x, torch.full((x.shape[0],), T // 2, dtype=torch.long, device=x.device))

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        prepare_timesteps(t, x.shape[0], self.T, x.device, self.check_inputs)
        return self.eps


def start_noise(model, batch: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """x_T ~ N(0, I), float32 (batch, C, H, W) for ``model``: the same numbers for a seed on every device."""
    c, s = model.config.in_channels, model.config.image_size
    return torch.randn((batch, c, s, s), generator=torch.Generator().manual_seed(seed)).to(device)


@torch.inference_mode()
def forwards(model, x: torch.Tensor, t: torch.Tensor, n: int = 1) -> None:
    """``n`` forward passes ``model(x, t)`` and nothing else: the limit a sampler is measured against."""
    for _ in range(n):
        model(x, t)
