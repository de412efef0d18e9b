"""What the package promises on an NVIDIA GPU: training with the default settings (float32), with
``torch.compile`` and with bf16, resuming, sampling as the CPU does once TF32 is off, and reproducible noise
from a CUDA generator. Skipped without a CUDA device; run them on a GPU machine with ``pytest tests/test_cuda.py``."""

import pytest
import torch

from ddim_book import pretrained, samplers
from ddim_book.training import Trainer, get_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def _tiny(**changes):
    quiet = {"log_every": 2, "ckpt_every": 0, "sample_every": 0, "device": "cuda"}
    return get_config("mnist-tiny", total_steps=4, **quiet, **changes)


@pytest.mark.parametrize("changes", [{}, {"compile": True}, {"bf16": True, "channels_last": True}])
def test_a_few_training_steps_on_cuda(tmp_path, changes):
    trainer = Trainer(_tiny(**changes), tmp_path, progress=False)
    assert trainer.device.type == "cuda" and next(trainer.model.parameters()).is_cuda
    trainer.train()
    losses = [row["loss"] for row in trainer.log.read()]
    assert trainer.step == 4 and losses and all(0 < loss < 10 for loss in losses)


def test_resume_on_cuda_continues_the_run(tmp_path):
    whole = Trainer(_tiny(), tmp_path / "whole", progress=False)
    whole.train()
    halves = Trainer(_tiny(), tmp_path / "halves", progress=False)
    halves.train(max_steps=2)
    again = Trainer(_tiny(), tmp_path / "halves", progress=False)
    assert again.step == 2
    again.train()
    for a, b in zip(whole.model.parameters(), again.model.parameters()):
        # same data, timesteps and noise; cuDNN's backward passes need not be bit-identical run to run
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_sampling_on_cuda_matches_the_cpu_with_tf32_off():
    model, schedule = pretrained.load("mnist")
    x_T = torch.randn((16, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    on_cpu = samplers.ddim_sample(model, schedule, x_T, steps=20, progress=False)
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        on_gpu = samplers.ddim_sample(model.cuda(), schedule, x_T.cuda(), steps=20, progress=False).cpu()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
    assert (on_gpu - on_cpu).abs().max().item() < 1e-3


def test_a_cuda_generator_reproduces_the_noise():
    model, schedule = pretrained.load("mnist", device="cuda")
    x_T = torch.randn((4, 1, 28, 28), generator=torch.Generator().manual_seed(1)).cuda()
    runs = [
        samplers.ddim_sample(
            model,
            schedule,
            x_T,
            steps=10,
            eta=1.0,
            progress=False,
            generator=torch.Generator(device="cuda").manual_seed(7),
        )  # fmt: skip
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
