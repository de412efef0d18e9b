"""Checks and loop helpers shared by the samplers (:mod:`ddim_book.samplers`, :mod:`ddim_book.dpm_solver`)."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ddim_book.schedules import NoiseSchedule


def check_start(name: str, x: torch.Tensor, generator, model=None) -> None:
    """The starting tensor: floating point, batched, finite, and matching the model's weights and the generator."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        kind = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {kind}")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have a batch dimension first, got shape {tuple(x.shape)}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
            f"got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device} but {name} is on {x.device}")
    param = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if param is not None and (param.device != x.device or param.dtype != x.dtype):
        raise ValueError(
            f"{name} is {x.dtype} on {x.device} but the model's weights are {param.dtype} on {param.device}; "
            f"pass {name}.to(device={str(param.device)!r}, dtype={param.dtype})"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values")


def check_schedule(schedule, model=None) -> None:
    """The schedule is a NoiseSchedule, and the one the model was trained with when the model records it."""
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    trained = getattr(model, "trained_schedule", None)
    if trained is None:
        return
    expected = NoiseSchedule.from_dict(trained)
    same = expected.T == schedule.T and torch.allclose(expected.alpha_bars, schedule.alpha_bars, rtol=1e-6, atol=0)
    if not same:
        raise ValueError(
            f"the model was trained with the schedule {trained} (T={expected.T}), but it is sampled with a "
            f"different one (T={schedule.T}); use the schedule that load_model / pretrained.load returned"
        )


@contextmanager
def trusted_timesteps(model, T: int):
    """Switch off a model's own per-call t range check inside a sampler loop.

    The samplers build every t themselves from 1..T, so the check would only repeat work, and on a GPU
    it costs a device-to-host synchronisation per step. The model's setting is restored afterwards.
    """
    config_T = getattr(getattr(model, "config", None), "T", None)
    if config_T is not None and T > config_T:
        raise ValueError(f"the schedule has T={T} steps but the model was built for t in 1..{config_T}")
    had = getattr(model, "check_inputs", None)
    if had is not None:
        model.check_inputs = False
    try:
        yield
    finally:
        if had is not None:
            model.check_inputs = had


def t_batches(ts: list[int], x: torch.Tensor) -> list[torch.Tensor]:
    # made once before the loop: no allocation or host-device copy per step
    return [torch.full((x.shape[0],), t, dtype=torch.long, device=x.device) for t in ts]
