"""Exponential moving average of model weights, the weights that samplers use (DDPM appendix B; chapter 3)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps theta_ema <- d theta_ema + (1 - d) theta after every optimizer step.

    The decay warms up as d_n = min(decay, (1 + n) / (10 + n)) after n updates, so the average is not
    dominated by the random initial weights early in training. Buffers (e.g. normalisation statistics)
    are copied, not averaged.

    Args:
        model: the (unwrapped) model being trained; a frozen copy in eval mode is kept in ``self.model``.
        decay: the long-run decay, in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs = self._pair_up(model)

    def _pair_up(self, model: nn.Module):
        ours, theirs = dict(self.model.named_parameters()), dict(model.named_parameters())
        if ours.keys() != theirs.keys():
            raise ValueError("EMA.update got a model whose parameters differ from the one it was built from")
        names = list(ours)
        return model, [ours[n] for n in names], [theirs[n] for n in names]

    def current_decay(self) -> float:
        """d_n = min(decay, (1 + n) / (10 + n)) for the next update, n = updates so far."""
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current weights (call after each optimizer step)."""
        if model is not self._pairs[0]:
            self._pairs = self._pair_up(model)
        _, ema_params, params = self._pairs
        weight = 1.0 - self.current_decay()
        # theta_ema + (1 - d)(theta - theta_ema) = d theta_ema + (1 - d) theta
        torch._foreach_lerp_(ema_params, params, weight)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
        self.num_updates += 1

    def state_dict(self) -> dict:
        """{"weights": state dict of the averaged model, "num_updates": int, "decay": float}."""
        return {"weights": self.model.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (the weights must match the model's parameter names and shapes)."""
        from ddim_book.checkpoints import load_weights

        load_weights(self.model, state["weights"], what="EMA weights")
        self.num_updates = int(state["num_updates"])
