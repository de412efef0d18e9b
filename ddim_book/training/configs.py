"""Training configurations: the :class:`TrainConfig` dataclass, its lr schedule and resume rules (chapter 3).

The named presets are in :mod:`ddim_book.training.presets`.

A config is plain data (str, int, float, bool, lists and dicts of them), so it round-trips through
JSON unchanged and can be stored in a checkpoint that is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
from dataclasses import dataclass, field

from ddim_book.models import MODEL_KINDS  # one list of the kinds build_model knows

__all__ = [
    "DATASETS",
    "MODEL_KINDS",
    "RESUMABLE_CHANGES",
    "TrainConfig",
    "config_differences",
    "lr_at",
    "lr_changes",
]

DATASETS = ("mnist", "moons", "swiss_roll", "mixture")
_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _linear_schedule() -> dict:
    return {"kind": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}


def _plain(value, where: str):
    """``value`` as JSON-normal data (tuples become lists); TypeError naming ``where`` otherwise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} must have string keys, got {sorted(map(repr, value))}")
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(
        f"{where} must hold plain data (str, int, float, bool, None, lists, dicts), got {type(value).__name__}"
    )


@dataclass
class TrainConfig:
    """Everything that defines a training run of an epsilon-predicting denoiser (DDPM Algorithm 1; chapter 3).

    Fields:
        name: a label for logs and checkpoints.
        model_kind, model: passed to ``ddim_book.models.build_model(model_kind, **model)``.
        schedule: a ``NoiseSchedule.to_dict()`` description (default: DDPM's linear, T = 1000).
        dataset: one of ``DATASETS``; ``dataset_size`` points are drawn once for the 2-D sets
            (ignored for MNIST, which uses the 9,000-digit training part).
        batch_size: images per optimizer step, summed over all processes under DDP.
        lr, weight_decay: AdamW; lr rises linearly over ``warmup_steps``, stays constant, and falls
            linearly to 0 over the last ``lr_decay_steps`` of ``total_steps`` (0: no decay); see :func:`lr_at`.
        grad_clip: max global L2 norm of the gradient; 0 turns clipping off.
        ema_decay: EMA decay; the effective decay is min(ema_decay, (1 + n) / (10 + n)) after n updates.
        total_steps: optimizer steps of the whole run (resumable in chunks).
        log_every, ckpt_every, sample_every: intervals in steps; 0 turns checkpoints or sample grids off
            (a checkpoint is still written at the end of every ``train`` call).
        sample_steps, sample_n: DDIM steps and number of samples in each sample grid.
        seed: fixes initialisation, data order, timesteps, noise and dropout.
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
        bf16, channels_last: bf16 autocast and channels-last memory layout, on CUDA only unless
            ``apply_on_cpu`` (which exists to test those code paths; they rarely help on a CPU). Off by
            default: on an H200 the mnist-small U-Net at batch 64 trained at about 2,200 images/s in float32
            and about 1,700 with both on; they pay only for networks and batches large enough to be limited
            by arithmetic (measure with ``ddim-book bench --device cuda``).
        compile: wrap the model in ``torch.compile``.
    """

    name: str = "custom"
    model_kind: str = "unet"
    model: dict = field(default_factory=dict)
    schedule: dict = field(default_factory=_linear_schedule)
    dataset: str = "mnist"
    dataset_size: int = 8192
    batch_size: int = 128
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200
    lr_decay_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    total_steps: int = 8000
    log_every: int = 50
    ckpt_every: int = 500
    sample_every: int = 1000
    sample_steps: int = 20
    sample_n: int = 64
    seed: int = 0
    device: str = "auto"
    bf16: bool = False
    channels_last: bool = False
    apply_on_cpu: bool = False
    compile: bool = False

    def __post_init__(self):
        self.model = _plain(self.model, "model")
        self.schedule = _plain(self.schedule, "schedule")
        for name in ("name", "model_kind", "dataset", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"model_kind must be one of {MODEL_KINDS}, got {self.model_kind!r}")
        if not isinstance(self.model, dict):
            raise TypeError(f"model must be a dict of model settings, got {type(self.model).__name__}")
        if not isinstance(self.schedule, dict) or "kind" not in self.schedule:
            raise ValueError(f"schedule must be a NoiseSchedule.to_dict() dict with a 'kind', got {self.schedule!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if not _DEVICE_PATTERN.fullmatch(self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")
        ints = {
            "dataset_size": 1, "batch_size": 1, "warmup_steps": 0, "lr_decay_steps": 0, "total_steps": 1,
            "log_every": 1, "ckpt_every": 0, "sample_every": 0, "sample_steps": 1, "sample_n": 1, "seed": 0,
        }  # fmt: skip
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
            if not low <= value <= 2**63 - 1:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")
            setattr(self, name, int(value))
        if self.lr_decay_steps > self.total_steps:
            raise ValueError(f"lr_decay_steps ({self.lr_decay_steps}) cannot exceed total_steps ({self.total_steps})")
        for name, low, high, open_low in (
            ("lr", 0.0, math.inf, True),
            ("weight_decay", 0.0, math.inf, False),
            ("grad_clip", 0.0, math.inf, False),
            ("ema_decay", 0.0, 1.0, False),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            value = float(value)
            ok = (value > low if open_low else value >= low) and value < high
            if not ok:
                bounds = f"{'(' if open_low else '['}{low}, {high})"
                raise ValueError(f"{name} must be a finite number in {bounds}, got {value}")
            setattr(self, name, value)
        for name in ("bf16", "channels_last", "apply_on_cpu", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")

    # ----- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict of every field (JSON-friendly; nested dicts are copies)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from :meth:`to_dict` output; missing fields take defaults, unknown ones raise ValueError."""
        if not isinstance(data, dict):
            raise TypeError(f"a TrainConfig is built from a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - set(field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields are {field_names()}")
        return cls(**data)

    def to_json(self) -> str:
        """The config as an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (validated like a new config)."""
        _check_fields(changes)
        return dataclasses.replace(self, **changes)


def lr_at(config: TrainConfig, step: int) -> float:
    """Learning rate of the update from ``step`` to ``step + 1`` (0-based).

    lr * min(1, (step + 1) / warmup_steps, (total_steps - step) / lr_decay_steps): a linear warm-up, a
    constant stretch, and a linear cool-down that reaches 0 at the last update when ``lr_decay_steps > 0``
    (BENCHMARKS.md, "Training longer", follows the shipped run through its cool-down).
    """
    factor = 1.0
    if config.warmup_steps:
        factor = min(factor, (step + 1) / config.warmup_steps)
    if config.lr_decay_steps:
        factor = min(factor, max(0.0, (config.total_steps - step) / config.lr_decay_steps))
    return config.lr * factor


def field_names() -> list[str]:
    """The names of the :class:`TrainConfig` fields, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _check_fields(changes: dict) -> None:
    unknown = sorted(set(changes) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields are {field_names()}")


# Fields that may differ between a checkpoint and the config that resumes it: they change how the
# run is watched or executed, not which updates it makes (so resuming stays exact on the CPU).
# total_steps and lr_decay_steps may change only while the lr of every update already made stays the same
# (checked by lr_changes).
RESUMABLE_CHANGES = frozenset(
    {"name", "total_steps", "lr_decay_steps", "log_every", "ckpt_every", "sample_every", "sample_steps", "sample_n"}
    | {"device", "bf16", "channels_last", "apply_on_cpu", "compile"}
)


def config_differences(stored: dict, config: TrainConfig, ignore=RESUMABLE_CHANGES) -> list[str]:
    """Human-readable list of the fields (``model.base_channels`` for nested ones) where a stored
    config dict and ``config`` disagree, leaving out ``ignore``."""
    current, diffs = config.to_dict(), []
    defaults = TrainConfig().to_dict()
    for key, value in current.items():
        if key in ignore:
            continue
        # a field missing from an older checkpoint was written before it existed, i.e. at its default
        old = stored.get(key, defaults.get(key))
        if isinstance(old, dict) and isinstance(value, dict):
            for sub in sorted(set(old) | set(value)):
                if old.get(sub) != value.get(sub):
                    diffs.append(f"{key}.{sub} (checkpoint: {old.get(sub)!r}, config: {value.get(sub)!r})")
        elif old != value:
            diffs.append(f"{key} (checkpoint: {old!r}, config: {value!r})")
    return diffs


def lr_changes(stored: dict, config: TrainConfig, steps_done: int) -> list[str]:
    """The lr-schedule difference (as a one-item list) if resuming a run that stored config dict ``stored``
    after ``steps_done`` updates with ``config`` would have given any of those updates another lr."""
    try:
        old = TrainConfig.from_dict({**stored, "model": {}})
    except (TypeError, ValueError):
        return []  # the field-by-field comparison reports what is wrong with the stored config
    for step in range(steps_done):
        if not math.isclose(lr_at(old, step), lr_at(config, step), rel_tol=1e-12, abs_tol=0.0):
            return [
                f"the lr schedule (update {step} had lr {lr_at(old, step):.6g} with total_steps={old.total_steps}, "
                f"lr_decay_steps={old.lr_decay_steps}; it would have {lr_at(config, step):.6g})"
            ]
    return []
