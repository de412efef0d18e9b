"""The chapter-4 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import math
import re

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, ch04
from ddim_book.models import SinusoidalTimeEmbedding
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule

S = NoiseSchedule.linear(1000, 1e-4, 0.02)


def make_embedding(cos_first=False, exponent_over_dim=False, shift=0):
    """The sinusoidal embedding in float64; the flags inject the usual mistakes."""

    def embedding(t, dim):
        half = dim // 2
        k = torch.arange(half, dtype=torch.float64)
        w = 10_000.0 ** (-k / (dim if exponent_over_dim else half))
        angles = (t.double() - shift)[:, None] * w[None, :]
        parts = [angles.cos(), angles.sin()] if cos_first else [angles.sin(), angles.cos()]
        return torch.cat(parts, dim=1)

    return embedding


def test_time_embedding_reference_and_hand_written_pass():
    assert "all 4 cases passed" in ch04.check_time_embedding(lambda t, dim: SinusoidalTimeEmbedding(dim)(t))
    assert "passed" in ch04.check_time_embedding(make_embedding())


@pytest.mark.parametrize(
    ("mistake", "case"),
    [
        ({"cos_first": True}, "dim = 16"),
        ({"exponent_over_dim": True}, "dim = 16"),
        ({"shift": 1}, "dim = 16"),
    ],
)
def test_time_embedding_mistakes_fail_and_name_the_case(mistake, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}")) as err:
        ch04.check_time_embedding(make_embedding(**mistake))
    assert "Hint:" in str(err.value)


def make_ddpm_step(schedule, alpha_bar_outside=False, ignore_variance=False, noise_at_t1=False, sqrt_beta=True):
    """DDPM eq. (11) plus sigma_t z written from the schedule arrays; the flags inject mistakes."""

    def step(x_t, eps, t, z, variance):
        alpha = schedule.alpha_bars[t] if alpha_bar_outside else schedule.alphas[t]
        beta, ab = schedule.betas[t], schedule.alpha_bars[t]
        mean = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
        var = schedule.posterior_variances[t] if ignore_variance or variance == "beta_tilde" else beta
        sigma = var.sqrt() if sqrt_beta else var
        if t == 1 and not noise_at_t1:
            return mean.to(x_t.dtype)
        return (mean + sigma * z).to(x_t.dtype)

    return step


def test_ddpm_step_hand_written_passes():
    assert "all 9 cases passed" in ch04.check_ddpm_step(make_ddpm_step(S))


def test_ddpm_step_reference_in_a_loop_is_ddpm_sample():
    short = NoiseSchedule.linear(50, 1e-3, 0.2)
    oracle = GaussianOracle(short, mean=0.1, std=0.4, shape=(1, 3, 3))
    x_T = torch.randn((4, 1, 3, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for variance in ("beta_tilde", "beta"):
        want = samplers.ddpm_sample(
            oracle, short, x_T, variance=variance, generator=torch.Generator().manual_seed(1), progress=False
        )
        gen, x = torch.Generator().manual_seed(1), x_T
        for t in range(short.T, 0, -1):
            eps = oracle(x, t)
            z = torch.randn(x.shape, generator=gen, dtype=x.dtype) if t > 1 else torch.zeros_like(x)
            x = ch04.ddpm_step(short, x, eps, t, z, variance)
        assert torch.allclose(x, want, rtol=1e-10, atol=1e-10), variance
    assert "passed" in ch04.check_ddpm_step(make_ddpm_step(short), schedule=short)


@pytest.mark.parametrize(
    ("mistake", "case"),
    [
        ({"alpha_bar_outside": True}, "images, t = 1000, variance = 'beta_tilde'"),
        ({"sqrt_beta": False}, "images, t = 1000, variance = 'beta_tilde'"),
        ({"ignore_variance": True}, "images, t = 500, variance = 'beta'"),
        ({"noise_at_t1": True}, "images, t = 1, variance = 'beta'"),
    ],
)
def test_ddpm_step_mistakes_fail_and_name_the_case(mistake, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}")) as err:
        ch04.check_ddpm_step(make_ddpm_step(S, **mistake))
    assert "Hint:" in str(err.value)


def test_checks_report_a_non_function_and_a_crash():
    with pytest.raises(ExerciseError, match="expected a function"):
        ch04.check_ddpm_step(42)

    def crashes(t, dim):
        raise RuntimeError("not written yet")

    with pytest.raises(ExerciseError, match="raised RuntimeError: not written yet"):
        ch04.check_time_embedding(crashes)


def test_reference_step_at_t_1_is_the_x0_prediction():
    x_t = torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x0_hat = (x_t - math.sqrt(1 - S.alpha_bars[1].item()) * eps) / math.sqrt(S.alpha_bars[1].item())
    for variance in ("beta_tilde", "beta"):
        got = ch04.ddpm_step(S, x_t, eps, 1, torch.ones_like(x_t), variance)
        assert torch.allclose(got, x0_hat, rtol=1e-12, atol=1e-12)


def test_reference_step_rejects_bad_arguments():
    x = torch.zeros((1, 2))
    with pytest.raises(ValueError, match="variance"):
        ch04.ddpm_step(S, x, x, 10, x, "sigma")
    with pytest.raises(ValueError, match="t must be in 1..1000"):
        ch04.ddpm_step(S, x, x, 0, x, "beta")
