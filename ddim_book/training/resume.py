"""The training state as a checkpoint dict, and back: what makes "stop, then resume" exact (chapter 3).

Only tensors, numbers, strings, lists, dicts and None go in, so the checkpoint loads with
``torch.load(weights_only=True)``. RNG streams are saved per rank; resuming on the same number of
processes and the same device type continues every stream exactly.
"""

from __future__ import annotations

import warnings

import torch

from ddim_book.checkpoints import CHECKPOINT_FORMAT, FORMAT_VERSION, CheckpointError, load_weights
from ddim_book.training import distributed
from ddim_book.training.configs import RESUMABLE_CHANGES, config_differences, lr_changes
from ddim_book.training.rng import derive_seed, seeded_global_rng

__all__ = ["restore_optimizer", "restore_trainer", "trainer_state"]


def trainer_state(trainer) -> dict:
    """The checkpoint dict of a :class:`~ddim_book.training.Trainer` (a collective call under DDP)."""
    mine = {"noise": trainer.noise_generator.get_state(), "dropout": trainer.dropout_rng_state(),
            "device_type": trainer.device.type}  # fmt: skip
    return {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "step": trainer.step,
        "elapsed_s": trainer.elapsed_s,
        "world_size": trainer.dist.world_size,
        "config": trainer.config.to_dict(),
        "model_kind": trainer.model.kind,
        "model_config": trainer.model.config_dict(),
        "schedule": trainer.schedule.to_dict(),
        "model": trainer.model.state_dict(),
        "ema": trainer.ema.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "rng": {
            "batches": trainer.batches.state_dict(),
            "ranks": distributed.all_gather_objects(mine, trainer.dist),
        },
    }


def _differences(state: dict, trainer) -> list[str]:
    # the model is compared by its full config (defaults filled in), not by the dict the user wrote
    diffs = config_differences(state["config"], trainer.config, ignore=RESUMABLE_CHANGES | {"model"})
    stored, current = state.get("model_config", {}), trainer.model.config_dict()
    diffs += [
        f"model.{k} (checkpoint: {stored.get(k)!r}, config: {current.get(k)!r})"
        for k in sorted(set(stored) | set(current))
        if stored.get(k) != current.get(k)
    ]
    # with lr and warm-up equal, total_steps and lr_decay_steps may still move the cool-down into the past
    return diffs or lr_changes(state["config"], trainer.config, int(state["step"]))


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)`` that keeps this optimizer's kernel choice (fused/foreach).

    A checkpoint written on a GPU (fused AdamW) can then continue on a CPU and the other way round.
    """
    kernels = [{k: g[k] for k in ("fused", "foreach", "capturable") if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, keep in zip(optimizer.param_groups, kernels):
        group.update(keep)
        on_device = bool(keep.get("fused") or keep.get("capturable"))
        for p in group["params"]:
            entry = optimizer.state.get(p, {})
            if torch.is_tensor(entry.get("step")):
                entry["step"] = entry["step"].to(p.device if on_device else "cpu", torch.float32)


def restore_trainer(trainer, state: dict, source="checkpoint") -> None:
    """Load a checkpoint dict into ``trainer``; CheckpointError naming the fields if its config differs."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} is a {state.get('format')!r} file, not a training checkpoint to resume")
    diffs = _differences(state, trainer)
    if diffs:
        raise CheckpointError(
            f"{source} was written by a run with a different configuration: {'; '.join(diffs)}. Resume with "
            "the stored config (TrainConfig.from_dict(checkpoint['config'])) or use a new out_dir."
        )
    load_weights(trainer.model, state["model"], what="model weights")
    trainer.ema.load_state_dict(state["ema"])
    restore_optimizer(trainer.optimizer, state["optimizer"])
    trainer.step, trainer.elapsed_s = int(state["step"]), float(state["elapsed_s"])
    rng = state["rng"]
    trainer.batches.load_state_dict(rng["batches"])
    ranks, rank, device = rng["ranks"], trainer.dist.rank, trainer.device
    if len(ranks) == trainer.dist.world_size and ranks[rank]["device_type"] == device.type:
        trainer.noise_generator.set_state(ranks[rank]["noise"])
        trainer.set_dropout_rng_state(ranks[rank]["dropout"])
        return
    warnings.warn(
        f"{source} was written by {len(ranks)} process(es) on {ranks[0]['device_type']}; resuming with "
        f"{trainer.dist.world_size} on {device.type} re-seeds the noise and dropout streams (not bit-exact)",
        stacklevel=3,
    )
    seed = trainer.config.seed
    trainer.noise_generator.manual_seed(derive_seed(seed, "noise", rank, trainer.step))
    trainer.set_dropout_rng_state(seeded_global_rng(device, derive_seed(seed, "dropout", rank, trainer.step)))
