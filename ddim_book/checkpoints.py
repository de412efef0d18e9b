"""Model files and checkpoints: atomic writes, weights-only loads, the shipped inference-only format (chapter 3).

This is the model I/O layer: it sits below the trainer (``ddim_book.training`` re-exports it), so that loading and
sampling a shipped model never imports the training code.

Two file kinds, both plain dicts of tensors, numbers, strings, lists and dicts, so that
``torch.load(..., weights_only=True)`` reads them without ever executing pickled code:

- a training checkpoint (``format == CHECKPOINT_FORMAT``): model, EMA, optimizer, step, RNG states,
  config and schedule; written by :class:`~ddim_book.training.Trainer` to ``out_dir/last.pt``;
- a model file (``format == MODEL_FORMAT``): EMA weights (float16 by default), model config, schedule
  and step; written by :func:`export_ema` and read by :func:`load_model`. This is the shipped format.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ddim_book._io import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "CheckpointError",
    "export_ema",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "ddim_book.train_checkpoint"
MODEL_FORMAT = "ddim_book.model"
FORMAT_VERSION = 1
_EXPORT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, holds pickled objects, or does not fit the model/config."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: readers see the old file or the complete new one, never a torn one.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the temporary file
    is renamed over ``path`` (``os.replace`` is atomic within one file system). If writing fails, the
    temporary file is removed and any existing ``path`` is left untouched.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a training checkpoint or model file with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        map_location: where tensors go, as for ``torch.load`` (default "cpu").
    Returns: the stored dict (with a ``"format"`` of CHECKPOINT_FORMAT or MODEL_FORMAT).
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is not a readable torch file, holds pickled objects (refused, never
            run), or is not one of this package's formats.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is refused unread
        raise CheckpointError(
            f"{path} is not a torch checkpoint (not a zip archive: truncated or corrupt, or another kind of file)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds pickled Python objects, not only tensors and plain data; it was refused unread "
            "(weights_only=True), because unpickling can run arbitrary code"
        ) from None
    except Exception as err:  # torch raises many kinds for a damaged archive
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): {first}") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt not in (CHECKPOINT_FORMAT, MODEL_FORMAT):
        raise CheckpointError(
            f"{path} is not a ddim_book checkpoint: expected a dict with format {CHECKPOINT_FORMAT!r} "
            f"or {MODEL_FORMAT!r}, got {fmt!r}"
        )
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {state.get('version')!r}; this code reads {FORMAT_VERSION}")
    return state


def load_weights(module: nn.Module, weights: dict, what: str = "weights") -> None:
    """``module.load_state_dict(weights)``, strict, with a ValueError that names every mismatching entry.

    Floating tensors are cast to the parameter's dtype (a float16 model file loads into float32).
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [
        f"{k}: stored {tuple(weights[k].shape)}, model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(weights))
        if tuple(weights[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {_few(shapes)}")
        raise CheckpointError(f"the stored {what} do not fit the model: " + "; ".join(parts))
    cast = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in weights.items()}
    module.load_state_dict(cast, strict=True)


def _few(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _build(kind: str, model_config: dict) -> nn.Module:
    from ddim_book.models import build_model

    try:
        return build_model(kind, **model_config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build a {kind!r} model from the stored config {model_config}: {err}") from None


def export_ema(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the inference-only model file (the shipped format) from a training checkpoint.

    It holds the EMA weights cast to ``dtype`` (float16 halves the size; floating tensors only), the
    model kind and config, the schedule, the training config and the step. Written atomically.
    Raises ValueError for an unsupported dtype or weights that overflow it.
    """
    if dtype not in _EXPORT_DTYPES:
        raise ValueError(f"dtype must be one of {[str(d) for d in _EXPORT_DTYPES]}, got {dtype}")
    ckpt = load_checkpoint(ckpt_path)
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{ckpt_path} is a {ckpt['format']!r} file, not a training checkpoint")
    weights = {}
    for name, value in ckpt["ema"]["weights"].items():
        if value.is_floating_point():
            value = value.to(dtype)
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"EMA weight {name!r} is not finite in {dtype}; export with dtype=torch.float32")
        weights[name] = value.detach().cpu().contiguous().clone()
    model_file = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "model_kind": ckpt["model_kind"],
        "model_config": ckpt["model_config"],
        "schedule": ckpt["schedule"],
        "step": ckpt["step"],
        "train_config": ckpt["config"],
        "dtype": str(dtype).removeprefix("torch."),
        "weights": weights,
    }
    return save_checkpoint(model_file, out_path)


def load_model(path: str | os.PathLike, device="cpu"):
    """Load a model file (or the EMA weights of a training checkpoint) for inference.

    Returns ``(model, schedule)``: the denoiser in eval mode with float32 weights on ``device``, and its
    :class:`~ddim_book.schedules.NoiseSchedule`. The model keeps that schedule as ``model.trained_schedule``
    (a ``NoiseSchedule.to_dict()`` dict), and the samplers refuse to run it with a different one.
    Raises CheckpointError (a ValueError) when the stored weights do not fit the stored model config,
    naming the mismatching entries.
    """
    from ddim_book.schedules import NoiseSchedule

    state = load_checkpoint(path)
    weights = state["weights"] if state["format"] == MODEL_FORMAT else state["ema"]["weights"]
    model = _build(state["model_kind"], state["model_config"])
    load_weights(model, weights, what=f"weights in {path}")
    model.trained_schedule = dict(state["schedule"])
    return model.to(device).eval(), NoiseSchedule.from_dict(state["schedule"])
