"""The training loop of DDPM Algorithm 1 with L_simple (DDPM eq. (14)); chapter 3 derives the loss.

One step: draw x_0 from the data, t ~ Uniform{1..T} and eps ~ N(0, I); form
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (DDPM eq. (4)); take an AdamW step on
||eps - eps_theta(x_t, t)||^2; update the EMA of the weights. Around that: learning-rate warm-up,
gradient clipping, bf16 autocast, DDP, logging without per-step host syncs, atomic checkpoints
and exact resumption.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ddim_book._io import remove_stale_temps
from ddim_book.checkpoints import load_checkpoint, save_checkpoint
from ddim_book.training import distributed
from ddim_book.training.batches import EpochBatches, load_training_data
from ddim_book.training.configs import TrainConfig, lr_at
from ddim_book.training.ema import EMA
from ddim_book.training.interrupts import GracefulInterrupt
from ddim_book.training.reporting import TrainLog, write_preview
from ddim_book.training.resume import restore_trainer, trainer_state
from ddim_book.training.rng import (
    capture_global_rng,
    derive_seed,
    make_generator,
    restore_global_rng,
    seeded_global_rng,
)

__all__ = ["CHECKPOINT_NAME", "Trainer", "TrainingDiverged", "load_training_data"]

CHECKPOINT_NAME = "last.pt"


class TrainingDiverged(RuntimeError):
    """The loss (or gradient norm, or a weight) became NaN or infinite; no checkpoint was written."""


class Trainer:
    """Trains ``build_model(config.model_kind, **config.model)`` on ``config.dataset``; writes to ``out_dir``.

    Files: ``last.pt`` (the checkpoint, rewritten atomically), ``train_log.csv``, ``samples/step_*.png``.
    If ``out_dir/last.pt`` exists and ``resume`` is True, training continues from it exactly (bit-identical
    on the CPU); a checkpoint made with a different config raises CheckpointError (a ValueError) naming
    the fields. ``callbacks`` are called as ``callback(trainer)`` after every step (``trainer.step`` steps done).

    Attributes: ``model`` (the raw module being trained), ``ema`` (:class:`EMA`; ``ema.model`` is what
    samplers use), ``schedule``, ``optimizer``, ``step``, ``device``, ``dist`` (:class:`DistInfo`).
    """

    def __init__(self, config: TrainConfig, out_dir, resume: bool = True, progress: bool = True, callbacks=()):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig (see get_config), got {type(config).__name__}")
        from ddim_book.models import build_model
        from ddim_book.schedules import NoiseSchedule

        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.callbacks = list(callbacks)
        self.dist, self.device = distributed.setup(config.device)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.schedule = NoiseSchedule.from_dict(config.schedule)
        self.data = load_training_data(config).to(self.device)
        rank, world_size = self.dist.rank, self.dist.world_size
        data_seed = derive_seed(config.seed, "data")
        self.batches = EpochBatches(self.data, config.batch_size, data_seed, rank, world_size)

        model_args = {"T": self.schedule.T, **config.model}
        if model_args["T"] != self.schedule.T:
            raise ValueError(f"model T={model_args['T']} differs from the schedule's T={self.schedule.T}")
        init_rng = capture_global_rng(torch.device("cpu"))
        torch.random.default_generator.manual_seed(derive_seed(config.seed, "init"))
        try:
            model = build_model(config.model_kind, **model_args)  # initialised on the CPU from the seed
        finally:
            restore_global_rng(torch.device("cpu"), init_rng)
        fast_paths = self.device.type == "cuda" or config.apply_on_cpu
        self.autocast = config.bf16 and fast_paths
        self.channels_last = config.channels_last and fast_paths and self.data.ndim == 4
        self.model = model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = EMA(self.model, config.ema_decay)
        self.model.check_inputs = False  # t is drawn in 1..T below; the check would sync every step
        self.optimizer = self._make_optimizer()
        self.schedule.validate = False  # t is drawn in 1..T below; checking it on a GPU would sync every step

        self.noise_generator = make_generator(self.device, derive_seed(config.seed, "noise", rank))
        self._dropout_rng = seeded_global_rng(self.device, derive_seed(config.seed, "dropout", rank))
        self._rng_active = False
        self.step, self.elapsed_s, self.last_loss = 0, 0.0, None
        self._saved_step, self._busy = None, None
        self.log = TrainLog(self.out_dir / "train_log.csv")
        self._reset_interval()
        path = self.out_dir / CHECKPOINT_NAME
        if self.dist.is_main:
            remove_stale_temps(path)  # what a save killed outright (SIGKILL, power loss) left behind
        if resume and path.exists():
            self.load_state_dict(load_checkpoint(path), source=path)
            self._saved_step = self.step
        if self.dist.is_main:
            self.log.truncate_after(self.step)
        self.train_model = self._wrap(self.model)

    # ----- set-up helpers ---------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        kwargs = {"lr": self.config.lr, "weight_decay": self.config.weight_decay}
        if self.device.type == "cuda":
            try:
                return torch.optim.AdamW(self.model.parameters(), fused=True, **kwargs)
            except (RuntimeError, TypeError):  # older torch or unsupported dtype: the foreach kernels
                pass
        return torch.optim.AdamW(self.model.parameters(), **kwargs)

    def _wrap(self, model):
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        return torch.compile(model) if self.config.compile else model

    def _reset_interval(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._norm_sum = torch.zeros((), device=self.device)
        self._interval_steps, self._interval_start = 0, time.monotonic()

    def lr_at(self, step: int) -> float:
        """Learning rate of the update from ``step`` to ``step + 1`` (:func:`configs.lr_at`)."""
        return lr_at(self.config, step)

    # ----- one step of DDPM Algorithm 1 -----------------------------------------------------------
    def dropout_rng_state(self):
        """The state of the dropout RNG stream: the live global RNG while ``train`` runs, else the parked copy."""
        return capture_global_rng(self.device) if self._rng_active else self._dropout_rng

    def set_dropout_rng_state(self, state) -> None:
        """Park ``state`` as the dropout stream that the next ``train`` call continues from."""
        self._dropout_rng = state

    def _train_step(self) -> None:
        cfg = self.config
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x0 = self.batches.next()
        gen = self.noise_generator
        t = torch.randint(1, self.schedule.T + 1, (x0.shape[0],), generator=gen, device=gen.device)
        noise = torch.randn(x0.shape, generator=gen, device=gen.device).to(self.device)
        t = t.to(self.device)
        x_t = self.schedule.q_sample(x0, t, noise)  # DDPM eq. (4)
        if self.channels_last:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            eps_pred = self.train_model(x_t, t)
        # L_simple (DDPM eq. (14)), averaged over the batch and the data dimensions, in float32
        loss = F.mse_loss(eps_pred.float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            self._norm_sum += torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).detach()
        self.optimizer.step()
        self.ema.update(self.model)
        self._loss_sum += loss.detach()
        self._interval_steps += 1

    # ----- the loop -------------------------------------------------------------------------------
    def train(self, max_steps: int | None = None, max_minutes: float | None = None) -> dict:
        """Train until ``config.total_steps``, or for at most ``max_steps`` more steps / ``max_minutes``.

        Writes a checkpoint at the end (and every ``ckpt_every`` steps), so a long job can run in
        time-boxed chunks: call again, or build a new Trainer on the same ``out_dir``, to continue.
        Ctrl-C (SIGINT) stops after the current step, saves, and raises KeyboardInterrupt; under DDP the
        stop is agreed at the next logging step. Raises TrainingDiverged on a NaN/inf loss (detected at
        the next logging or checkpoint step), leaving the last good checkpoint untouched.
        Returns {"step": steps done, "loss": last logged mean loss, "stopped": why the call ended}.
        """
        cfg = self.config
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
            raise ValueError(f"max_steps must be None or an integer >= 0, got {max_steps!r}")
        if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and max_minutes > 0):
            raise ValueError(f"max_minutes must be None or a number > 0, got {max_minutes!r}")
        target = cfg.total_steps if max_steps is None else min(cfg.total_steps, self.step + max_steps)
        deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        stopped = "total_steps" if target == cfg.total_steps else "max_steps"
        show = self.progress and self.dist.is_main
        bar = tqdm(total=cfg.total_steps, initial=self.step, desc=cfg.name, disable=not show, dynamic_ncols=True)
        caller_rng = capture_global_rng(self.device)
        restore_global_rng(self.device, self._dropout_rng)
        self._rng_active = True
        self.train_model.train()
        self._reset_interval()
        interrupt = GracefulInterrupt()
        try:
            with interrupt:
                while self.step < target:
                    self._busy = "step"
                    self._train_step()
                    self.step += 1
                    self._busy = None
                    bar.update(1)
                    for callback in self.callbacks:
                        callback(self)
                    timed_out = deadline is not None and time.monotonic() >= deadline
                    if self.step % cfg.log_every == 0:
                        stop_int, stop_time = self._end_interval(bar, interrupt.requested, timed_out)
                    elif not self.dist.enabled:
                        stop_int, stop_time = interrupt.requested, timed_out
                    else:
                        stop_int = stop_time = False  # ranks agree on stopping at logging steps only
                    if stop_int:
                        raise KeyboardInterrupt
                    if stop_time and self.step < target:
                        stopped = "max_minutes"
                        break
                    if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                        self.save()
                    if cfg.sample_every and self.step % cfg.sample_every == 0:
                        self.write_samples()
                if self._interval_steps:
                    self._end_interval(bar)
                if self._saved_step != self.step:
                    self.save()
        except KeyboardInterrupt:
            self._save_on_interrupt(bar)
            raise
        finally:
            self._dropout_rng = capture_global_rng(self.device)
            restore_global_rng(self.device, caller_rng)
            self._rng_active, self._busy = False, None
            bar.close()
        return {"step": self.step, "loss": self.last_loss, "stopped": stopped}

    def _end_interval(self, bar, interrupt: bool = False, timed_out: bool = False) -> tuple[bool, bool]:
        """Close a logging interval: the one host sync of the interval (and the DDP agreement on stopping)."""
        flags = torch.tensor([float(interrupt), float(timed_out)], device=self.device)
        stats = distributed.all_reduce_sum(torch.cat([torch.stack([self._loss_sum, self._norm_sum]), flags]), self.dist)
        loss_sum, norm_sum, n_interrupt, n_timed_out = stats.tolist()
        count = self._interval_steps * self.dist.world_size
        loss = loss_sum / count
        grad_norm = norm_sum / count if self.config.grad_clip > 0 else math.nan
        first = self.step - self._interval_steps + 1
        if not math.isfinite(loss) or (self.config.grad_clip > 0 and not math.isfinite(grad_norm)):
            raise self._diverged(f"the mean loss over steps {first}..{self.step} is {loss} (grad norm {grad_norm})")
        now = time.monotonic()
        seconds = max(now - self._interval_start, 1e-9)
        self.elapsed_s += seconds
        images_per_s = self._interval_steps * self.config.batch_size / seconds
        lr = self.optimizer.param_groups[0]["lr"]
        if self.dist.is_main:
            self.log.append(
                step=self.step,
                loss=loss,
                lr=lr,
                images_per_s=images_per_s,
                elapsed_s=self.elapsed_s,
                grad_norm=grad_norm,
            )
            bar.set_postfix(loss=f"{loss:.4f}", img_per_s=f"{images_per_s:.0f}")
        self.last_loss = loss
        self._reset_interval()
        return n_interrupt > 0, n_timed_out > 0

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = f"step {self._saved_step}" if self._saved_step is not None else "none written yet"
        return TrainingDiverged(
            f"training diverged: {what}. The last good checkpoint ({self.out_dir / CHECKPOINT_NAME}, {kept}) "
            f"was left untouched. Try a lower lr (now {self.config.lr}), more warmup_steps, or grad_clip > 0."
        )

    def _check_finite(self) -> None:
        """Raise TrainingDiverged unless every loss since the last logging step and every weight is finite."""
        stats = distributed.all_reduce_sum(torch.stack([self._loss_sum, self._norm_sum]), self.dist)
        weights_ok = torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()
        if not bool(torch.isfinite(stats).all()):
            raise self._diverged(f"a loss or gradient norm in the steps up to {self.step} is not finite")
        if not bool(weights_ok):
            raise self._diverged(f"the weights after step {self.step} are not finite")

    def _save_on_interrupt(self, bar) -> None:
        if self._busy is not None:
            warnings.warn(f"interrupted during a {self._busy}; the last checkpoint is kept", stacklevel=3)
            return
        try:
            if self._interval_steps:
                self._end_interval(bar)
            self.save()
        except TrainingDiverged as err:
            warnings.warn(f"interrupted, and not saving: {err}", stacklevel=3)

    # ----- outputs --------------------------------------------------------------------------------
    def save(self) -> Path:
        """Write ``out_dir/last.pt`` (rank 0 only; every rank must call this under DDP)."""
        self._check_finite()
        state = self.state_dict()
        path = self.out_dir / CHECKPOINT_NAME
        if self.dist.is_main:
            self._busy = "save"
            save_checkpoint(state, path)
            self._busy = None
        self._saved_step = self.step
        return path

    def write_samples(self) -> Path | None:
        """Write ``samples/step_*.png`` from the EMA model (rank 0 only); returns its path."""
        if not self.dist.is_main:
            return None
        cfg, path = self.config, self.out_dir / "samples" / f"step_{self.step:07d}.png"
        seed = derive_seed(cfg.seed, "preview")
        args = (self.ema.model, self.schedule, self.data, cfg.sample_n, cfg.sample_steps, seed)
        return write_preview(*args, path, title=f"{cfg.name}, step {self.step}")

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: weights, EMA, optimizer, step, RNG states, config, schedule."""
        return trainer_state(self)

    def load_state_dict(self, state: dict, source="checkpoint") -> None:
        """Restore :meth:`state_dict` output; CheckpointError naming the fields if its config differs."""
        restore_trainer(self, state, source)
