"""Random-number streams of a training run: derived seeds, explicit generators, global-RNG save/restore.

Every random choice of the trainer comes from a stream named by (seed, purpose, rank), so one seed fixes
the whole run and resuming restores each stream exactly. Dropout draws from torch's global generator
(it takes no generator argument); the trainer keeps its own copy of that state and swaps it in only
while it trains, so training neither disturbs nor depends on the caller's use of the global RNG.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["capture_global_rng", "derive_seed", "make_generator", "restore_global_rng", "seeded_global_rng"]


def derive_seed(seed: int, purpose: str, *parts: int) -> int:
    """A 63-bit seed for the stream ``purpose`` (e.g. "noise") of run ``seed``; ``parts`` add e.g. the rank.

    Hashing keeps distinct streams unrelated (seed 0's noise stream is not seed 1's data stream).
    """
    text = ":".join([str(int(seed)), purpose, *(str(int(p)) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (a CPU one if the device has none)."""
    try:
        generator = torch.Generator(device=device)
    except RuntimeError:
        generator = torch.Generator()
    return generator.manual_seed(seed)


def capture_global_rng(device: torch.device) -> dict:
    """The global RNG states that ops on ``device`` use.

    Returns {"cpu": ByteTensor, "device": ByteTensor or None, "device_type": str}.
    """
    state = {"cpu": torch.get_rng_state(), "device": None, "device_type": device.type}
    if device.type == "cuda":
        state["device"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["device"] = torch.mps.get_rng_state()
    return state


def restore_global_rng(device: torch.device, state: dict) -> None:
    """Inverse of :func:`capture_global_rng`; a device state saved on another device type is ignored."""
    torch.set_rng_state(state["cpu"])
    if state.get("device") is None or state.get("device_type") != device.type:
        return
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["device"], device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state["device"])


def seeded_global_rng(device: torch.device, seed: int) -> dict:
    """The global RNG state that ``torch.manual_seed(seed)`` would give, without changing the current one."""
    previous = capture_global_rng(device)
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)
    state = capture_global_rng(device)
    restore_global_rng(device, previous)
    return state
