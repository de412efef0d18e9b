"""The trainer: L_simple on q(x_t | x_0), reproducibility, exact resume, interrupts, divergence, checkpoints, DDP."""

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ddim_book.checkpoints import CHECKPOINT_FORMAT, FORMAT_VERSION
from ddim_book.models import build_model
from ddim_book.training import (
    CHECKPOINT_NAME,
    CONFIG_NAMES,
    EMA,
    CheckpointError,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    export_ema,
    get_config,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from ddim_book.training.batches import EpochBatches
from ddim_book.training.configs import lr_at

TESTS = Path(__file__).resolve().parent


def tiny(**changes) -> TrainConfig:
    """mnist-tiny (a U-Net with dropout 0.1) cut to a dozen CPU steps."""
    base = {"total_steps": 12, "log_every": 3, "ckpt_every": 0, "sample_every": 0, "batch_size": 8, "device": "cpu"}
    return get_config("mnist-tiny", **{**base, **changes})


def toy(**changes) -> TrainConfig:
    base = {"total_steps": 30, "log_every": 10, "ckpt_every": 0, "batch_size": 64, "dataset_size": 1024}
    return get_config("toy-mlp", **{**base, "device": "cpu", **changes})


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def weights(trainer: Trainer) -> dict:
    return {f"model.{k}": v for k, v in trainer.model.state_dict().items()} | {
        f"ema.{k}": v for k, v in trainer.ema.model.state_dict().items()
    }


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two OpenMP threads per process can run 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_reference(one_thread, tmp_path_factory):
    """12 uninterrupted steps of mnist-tiny: the run that resumed runs must reproduce bit for bit."""
    trainer = Trainer(tiny(), tmp_path_factory.mktemp("reference"), progress=False)
    trainer.train()
    return weights(trainer), trainer.optimizer.state_dict()


# ----- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_named_configs_round_trip_json_and_build(name):
    config = get_config(name)
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_dict(config.to_dict()) == config
    model = build_model(config.model_kind, **config.model)
    assert model.kind == config.model_kind


def test_the_shipped_model_was_trained_by_its_named_config():
    """The shipped checkpoint was trained by the named config it records, field for field: the mnist preset, which is
    the mnist-small U-Net with PyTorch's default initialisation."""
    from ddim_book import pretrained
    from ddim_book.training.configs import config_differences

    shipped = pretrained.entry("mnist")["train_config"]
    config = get_config(shipped["name"])
    assert config.name == "mnist" and config_differences(shipped, config) == []
    unet = build_model("unet", **config.model).config
    assert (unet.base_channels, unet.channel_mults, unet.num_res_blocks) == (16, (1, 2, 2), 1)
    assert unet.attention_resolutions == (7,) and unet.dropout == 0.1 and unet.init == "default"
    assert {**get_config("mnist-small").model, "init": "default"} == config.model
    assert config.schedule == {"kind": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    assert config.total_steps * config.batch_size >= 1_100_000


def test_get_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="mnist-small.*toy-mlp"):
        get_config("mnist-huge")
    with pytest.raises(ValueError, match="learning_rate"):
        get_config("toy-mlp", learning_rate=1e-3)
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({**get_config("toy-mlp").to_dict(), "bogus": 1})
    assert get_config("toy-mlp", seed=7).seed == 7


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("batch_size", 0, ValueError),
        ("lr", 0.0, ValueError),
        ("lr", float("nan"), ValueError),
        ("ema_decay", 1.0, ValueError),
        ("grad_clip", -1.0, ValueError),
        ("total_steps", 0, ValueError),
        ("seed", -1, ValueError),
        ("dataset", "cifar10", ValueError),
        ("model_kind", "gan", ValueError),
        ("device", "tpu", ValueError),
        ("schedule", {"T": 10}, ValueError),
        ("batch_size", 2.5, TypeError),
        ("bf16", "yes", TypeError),
        ("model", {"layer": object()}, TypeError),
    ],
)
def test_bad_config_values_are_rejected_by_name(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


# ----- the objective ------------------------------------------------------------------------------
def test_step_minimises_L_simple_on_the_forward_marginal(tmp_path):
    """One step feeds the model x_t = q_sample(x0, t, eps) with t in 1..T and records ||eps - eps_theta||^2."""
    trainer = Trainer(toy(), tmp_path, progress=False)
    seen = {}

    def recording_model(x_t, t):
        seen["x_t"], seen["t"] = x_t.detach().clone(), t.clone()
        seen["eps"] = trainer.model(x_t, t)
        return seen["eps"]

    trainer.train_model = recording_model
    noise_state, batch_state = trainer.noise_generator.get_state(), trainer.batches.state_dict()
    trainer._train_step()
    trainer.noise_generator.set_state(noise_state)
    trainer.batches.load_state_dict(batch_state)
    x0 = trainer.batches.next()
    t = torch.randint(1, trainer.schedule.T + 1, (x0.shape[0],), generator=trainer.noise_generator)
    noise = torch.randn(x0.shape, generator=trainer.noise_generator)
    assert torch.equal(seen["t"], t) and int(t.min()) >= 1 and int(t.max()) <= trainer.schedule.T
    torch.testing.assert_close(seen["x_t"], trainer.schedule.q_sample(x0, t, noise))
    torch.testing.assert_close(trainer._loss_sum, F.mse_loss(seen["eps"].detach(), noise))


def test_loss_decreases_on_toy_mlp(tmp_path):
    trainer = Trainer(toy(total_steps=300, log_every=50), tmp_path, progress=False)
    result = trainer.train()
    rows = trainer.log.read()
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    assert result == {"step": 300, "loss": pytest.approx(rows[-1]["loss"], rel=1e-5), "stopped": "total_steps"}
    assert rows[-1]["loss"] < 0.7 * rows[0]["loss"]
    assert all(r["images_per_s"] > 0 for r in rows)
    assert all(a["elapsed_s"] < b["elapsed_s"] for a, b in zip(rows, rows[1:]))


def test_lr_warm_up_and_ema_warm_up(tmp_path):
    trainer = Trainer(toy(warmup_steps=10, lr=1e-3), tmp_path, progress=False)
    assert trainer.lr_at(0) == pytest.approx(1e-4)
    assert trainer.lr_at(9) == pytest.approx(1e-3) and trainer.lr_at(500) == pytest.approx(1e-3)
    layer = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    ema = EMA(layer, decay=0.999)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update(layer)  # d_0 = min(0.999, 1/10): the average moves 90% of the way
    assert ema.model.weight.item() == pytest.approx(0.9)
    assert ema.current_decay() == pytest.approx(2 / 11)


def test_lr_cools_down_linearly_to_zero_over_the_last_steps():
    config = toy(warmup_steps=4, lr=1e-3, total_steps=100, lr_decay_steps=20)
    lrs = [lr_at(config, step) for step in range(100)]
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[4:80] == pytest.approx([1e-3] * 76)
    # the update from step s has lr * (100 - s) / 20: half at s = 90, one twentieth at the last update
    assert lrs[90] == pytest.approx(5e-4) and lrs[99] == pytest.approx(5e-5)
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:]))
    assert lr_at(toy(lr=1e-3, total_steps=100), 99) == pytest.approx(1e-3)  # 0 turns the cool-down off
    with pytest.raises(ValueError, match="cannot exceed total_steps"):
        toy(total_steps=10, lr_decay_steps=11)


def test_a_cool_down_may_be_added_on_resume_only_where_no_update_changes(tmp_path):
    Trainer(toy(total_steps=6, warmup_steps=0), tmp_path, progress=False).train()
    # a checkpoint written before lr_decay_steps existed reads as one without a cool-down
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    del state["config"]["lr_decay_steps"]
    torch.save(state, tmp_path / "last.pt")
    longer = Trainer(toy(total_steps=10, lr_decay_steps=4, warmup_steps=0), tmp_path, progress=False)
    assert longer.step == 6 and longer.train()["step"] == 10
    assert [r["lr"] for r in longer.log.read()][-1] == pytest.approx(1e-3 / 4)
    with pytest.raises(CheckpointError, match=r"the lr schedule \(update 7 had lr"):
        Trainer(toy(total_steps=12, lr_decay_steps=4, warmup_steps=0), tmp_path, progress=False)


def test_epoch_batches_shard_each_global_batch_disjointly():
    data = torch.arange(40.0)[:, None]
    single = EpochBatches(data, 8, seed=3)
    shards = [EpochBatches(data, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(12):  # crosses two epoch boundaries
        assert torch.equal(torch.cat([s.next() for s in shards]), single.next())
    with pytest.raises(ValueError, match="divisible"):
        EpochBatches(data, 7, seed=0, rank=0, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        EpochBatches(data, 41, seed=0)


# ----- reproducibility and resumption -------------------------------------------------------------
def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer = Trainer(toy(seed=seed, total_steps=20), tmp_path / name, progress=False)
        trainer.train()
        runs[name] = weights(trainer)
    assert torch.equal(torch.rand(3), expected_draw)  # training neither used nor moved the global RNG
    assert_same_tensors(runs["a"], runs["b"])
    assert any(not torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_resume_in_two_halves_is_bit_identical(tmp_path, tiny_reference):
    first = Trainer(tiny(), tmp_path, progress=False)
    assert first.train(max_steps=6)["stopped"] == "max_steps"
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 6
    second = Trainer(tiny(), tmp_path, progress=False)  # a new process would do the same
    assert second.step == 6
    second.train()
    reference_weights, reference_optimizer = tiny_reference
    assert_same_tensors(weights(second), reference_weights)
    for p, state in second.optimizer.state_dict()["state"].items():
        assert_same_tensors(state, reference_optimizer["state"][p])
    assert [r["step"] for r in second.log.read()] == [3, 6, 9, 12]


@pytest.mark.parametrize("how", ["callback raises", "SIGINT"])
def test_ctrl_c_saves_the_step_and_resumes_exactly(tmp_path, tiny_reference, how):
    def interrupt_at_5(trainer):
        if trainer.step == 5:
            if how == "SIGINT":
                os.kill(os.getpid(), signal.SIGINT)  # the loop finishes this step, saves, re-raises
            else:
                raise KeyboardInterrupt

    handler_before = signal.getsignal(signal.SIGINT)
    trainer = Trainer(tiny(), tmp_path, progress=False, callbacks=[interrupt_at_5])
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 5
    resumed = Trainer(tiny(), tmp_path, progress=False)
    assert resumed.step == 5
    resumed.train()
    assert_same_tensors(weights(resumed), tiny_reference[0])


def test_max_minutes_stops_early_and_checkpoints(tmp_path):
    trainer = Trainer(toy(total_steps=10_000, log_every=5), tmp_path, progress=False)
    result = trainer.train(max_minutes=1e-4)
    assert result["stopped"] == "max_minutes" and 1 <= result["step"] < 10_000
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == result["step"]
    with pytest.raises(ValueError, match="max_minutes"):
        trainer.train(max_minutes=0)
    with pytest.raises(ValueError, match="max_steps"):
        trainer.train(max_steps=-1)


@pytest.mark.parametrize("log_every, ckpt_every", [(5, 5), (10, 4)])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, log_every, ckpt_every):
    trainer = Trainer(toy(log_every=log_every, ckpt_every=ckpt_every), tmp_path, progress=False)
    clean_batch = trainer.batches.next

    def poisoned_after_step_6():
        batch = clean_batch()
        return batch * float("nan") if trainer.step >= 6 else batch

    trainer.batches.next = poisoned_after_step_6
    with pytest.raises(TrainingDiverged, match="diverged.*last good checkpoint"):
        trainer.train()
    good_step = 5 if ckpt_every == 5 else 4
    before = sha256(tmp_path / CHECKPOINT_NAME)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["step"] == good_step
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert sha256(tmp_path / CHECKPOINT_NAME) == before
    assert {p.name for p in tmp_path.iterdir()} <= {CHECKPOINT_NAME, "train_log.csv"}  # no temp files


def test_huge_learning_rate_is_reported_as_divergence(tmp_path):
    trainer = Trainer(toy(lr=1e12, warmup_steps=0, grad_clip=0.0, log_every=5), tmp_path, progress=False)
    with pytest.raises(TrainingDiverged, match="lower lr"):
        trainer.train(max_steps=200)
    assert not (tmp_path / CHECKPOINT_NAME).exists()


# ----- checkpoint files ---------------------------------------------------------------------------
_unpickled = []


def _record_unpickling(tag):
    _unpickled.append(tag)
    return tag


class _Payload:
    def __reduce__(self):
        return (_record_unpickling, ("code ran",))


def test_checkpoints_with_pickled_objects_are_refused_unrun(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "payload": _Payload()}, path)
    for loader in (load_checkpoint, load_model):
        with pytest.raises(CheckpointError, match="pickled"):
            loader(path)
    assert _unpickled == []
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a ddim_book checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "torn.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_resume_with_a_different_config_names_the_fields(tmp_path):
    Trainer(toy(total_steps=5), tmp_path, progress=False).train()
    with pytest.raises(
        ValueError, match=r"lr \(checkpoint: 0.001, config: 0.0005\); model\.hidden \(checkpoint: 128, config: 64\)"
    ):
        Trainer(toy(total_steps=5, model={"dim": 2, "hidden": 64}, lr=5e-4), tmp_path, progress=False)
    longer = Trainer(toy(total_steps=8, log_every=4), tmp_path, progress=False)  # allowed to change
    assert longer.step == 5 and longer.train()["step"] == 8
    fresh = Trainer(toy(total_steps=5, seed=9), tmp_path, resume=False, progress=False)
    assert fresh.step == 0 and fresh.log.read() == []


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "x": torch.ones(3)}, path)
    before = sha256(path)
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"x": torch.zeros(1000)}, path)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"x": torch.zeros(1000)}, tmp_path / "new.pt")
    assert sha256(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))


def test_export_and_load_model_round_trip(tmp_path):
    trainer = Trainer(toy(total_steps=20), tmp_path / "run", progress=False)
    trainer.train()
    ckpt = tmp_path / "run" / CHECKPOINT_NAME
    shipped = export_ema(ckpt, tmp_path / "model.pt")
    assert shipped.stat().st_size < ckpt.stat().st_size / 4
    model, schedule = load_model(shipped)
    assert not model.training
    assert torch.equal(schedule.alpha_bars, trainer.schedule.alpha_bars)
    ema = trainer.ema.model.state_dict()
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, ema[k].half().float()), k
    x, t = torch.randn(16, 2), torch.randint(1, 1001, (16,))
    with torch.no_grad():
        torch.testing.assert_close(model(x, t), trainer.ema.model(x, t), atol=2e-2, rtol=1e-2)
    exact, _ = load_model(export_ema(ckpt, tmp_path / "model32.pt", dtype=torch.float32))
    assert_same_tensors(exact.state_dict(), ema)
    from_ckpt, _ = load_model(ckpt)  # a training checkpoint loads its EMA weights
    assert_same_tensors(from_ckpt.state_dict(), ema)
    with pytest.raises(ValueError, match="dtype"):
        export_ema(ckpt, tmp_path / "bad.pt", dtype=torch.int8)


def test_model_file_that_does_not_fit_its_config_names_the_entries(tmp_path):
    trainer = Trainer(toy(total_steps=2), tmp_path, progress=False)
    trainer.train()
    shipped = export_ema(tmp_path / CHECKPOINT_NAME, tmp_path / "model.pt")
    state = torch.load(shipped, weights_only=True)
    state["model_config"]["hidden"] = 32
    torch.save(state, tmp_path / "tampered.pt")
    with pytest.raises(ValueError, match=r"shape mismatch .*layers\.0\.weight"):
        load_model(tmp_path / "tampered.pt")
    state["model_config"]["hidden"], state["model_config"]["depth"] = 128, 4
    torch.save(state, tmp_path / "tampered.pt")
    with pytest.raises(ValueError, match=r"missing .*layers\.3"):
        load_model(tmp_path / "tampered.pt")


# ----- devices and outputs ------------------------------------------------------------------------
def test_bf16_autocast_channels_last_and_sample_grid_on_cpu(tmp_path):
    config = tiny(total_steps=2, log_every=1, apply_on_cpu=True, sample_every=2, sample_n=4, sample_steps=2,
                  bf16=True, channels_last=True)  # fmt: skip
    trainer = Trainer(config, tmp_path, progress=False)
    assert trainer.autocast and trainer.channels_last
    assert trainer.model.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    trainer.train()
    assert all(0 < r["loss"] < 10 for r in trainer.log.read())
    assert (tmp_path / "samples" / "step_0000002.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain = Trainer(tiny(total_steps=2), tmp_path / "plain", progress=False)
    assert not plain.autocast and not plain.channels_last  # off by default, and CUDA-only unless apply_on_cpu
    plain.train()
    assert not (tmp_path / "plain" / "samples").exists()  # sample_every=0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_keep_identical_replicas(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2"]
    command += ["--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(TESTS / "ddp_worker.py"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["ckpt_step_after_first_chunk"] == 3
    assert_same_tensors(ranks[0]["initial"], ranks[1]["initial"])
    assert_same_tensors(ranks[0]["final"], ranks[1]["final"])
    assert_same_tensors(ranks[0]["ema"], ranks[1]["ema"])
    assert any(not torch.equal(ranks[0]["initial"][k], ranks[0]["final"][k]) for k in ranks[0]["final"])
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [CHECKPOINT_NAME, "train_log.csv"]
    state = load_checkpoint(run / CHECKPOINT_NAME)
    assert state["step"] == 6 and state["world_size"] == 2 and len(state["rng"]["ranks"]) == 2
    assert_same_tensors(state["model"], ranks[0]["final"])
    config = get_config("toy-mlp", total_steps=8, batch_size=64, dataset_size=512, device="cpu")
    with pytest.warns(UserWarning, match="re-seeds the noise"):  # 2 processes -> 1: continues, not bit-exact
        single = Trainer(config, run, progress=False)
    assert single.step == 6 and single.train()["step"] == 8


@pytest.mark.slow
def test_torch_compile_trains(tmp_path):
    trainer = Trainer(toy(total_steps=20, compile=True), tmp_path, progress=False)
    trainer.train()
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
