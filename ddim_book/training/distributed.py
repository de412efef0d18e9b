"""Device choice and multi-process training with torch.distributed (``torchrun``).

Under ``torchrun --nproc_per_node=N``, each process reads RANK, WORLD_SIZE and LOCAL_RANK from the
environment, joins one process group (NCCL on CUDA, gloo on the CPU), trains on a disjoint shard of
every global batch, and DistributedDataParallel averages the gradients. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "all_reduce_sum",
    "barrier",
    "resolve_device",
    "setup",
    "shutdown",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: rank in 0..world_size-1, and its rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """ "auto" -> CUDA (device ``local_rank``), else MPS, else CPU; other specs are checked and returned.

    Raises ValueError naming the device when the requested one is not available.
    """
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(f"device cuda:{index} does not exist ({torch.cuda.device_count()} CUDA devices)")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {spec!r} was requested but MPS is not available; use 'cpu' or 'auto'")
    return device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup(device_spec: str) -> tuple[DistInfo, torch.device]:
    """Join the process group if launched by ``torchrun`` (WORLD_SIZE > 1), and pick this process's device.

    A process group that the caller already initialised is used as it is.
    Returns (DistInfo, device).
    """
    if dist.is_available() and dist.is_initialized():
        info = DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))
        return info, resolve_device(device_spec, info.local_rank)
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world_size} must satisfy 0 <= RANK < WORLD_SIZE")
    device = resolve_device(device_spec, local_rank)
    if world_size == 1:
        return DistInfo(), device
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        try:  # naming the device lets NCCL set up its communicator eagerly (torch >= 2.3)
            dist.init_process_group("nccl", rank=rank, world_size=world_size, device_id=device)
        except TypeError:
            dist.init_process_group("nccl", rank=rank, world_size=world_size)
    else:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank), device


def shutdown() -> None:
    """Leave the process group (call once at the end of a ``torchrun`` script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait until every process gets here (a no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place (a no-op in a single process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered
