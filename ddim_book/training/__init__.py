"""Training of the epsilon-predicting denoisers (DDPM Algorithm 1, L_simple of eq. (14); chapter 3).

    from ddim_book.training import Trainer, get_config, export_ema, load_model
    trainer = Trainer(get_config("mnist-small"), "runs/mnist-small")
    trainer.train(max_minutes=30)                  # resumable: run again to continue
    export_ema("runs/mnist-small/last.pt", "mnist.pt")
    model, schedule = load_model("mnist.pt")

Multi-GPU: ``torchrun --nproc_per_node=N script.py`` with the same code (DistributedDataParallel).
"""

from ddim_book.checkpoints import (
    CheckpointError,
    export_ema,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from ddim_book.training.batches import load_training_data
from ddim_book.training.configs import DATASETS, TrainConfig
from ddim_book.training.ema import EMA
from ddim_book.training.presets import CONFIG_NAMES, get_config
from ddim_book.training.trainer import CHECKPOINT_NAME, Trainer, TrainingDiverged

__all__ = [
    "CHECKPOINT_NAME",
    "CONFIG_NAMES",
    "DATASETS",
    "EMA",
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "export_ema",
    "get_config",
    "load_checkpoint",
    "load_model",
    "load_training_data",
    "save_checkpoint",
]
