"""The chapter-1 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import pytest
import torch

from ddim_book.exercises import ExerciseError, ch01
from ddim_book.schedules import NoiseSchedule

LINEAR = NoiseSchedule.linear(1000, 1e-4, 0.02)


def _coef(table: torch.Tensor, t, x: torch.Tensor) -> torch.Tensor:
    """table[t] as x's dtype, shaped (B, 1, ..., 1) for a tensor t so that it broadcasts over x."""
    value = table[t].to(x.dtype)
    return value.reshape(-1, *([1] * (x.ndim - 1))) if isinstance(t, torch.Tensor) else value


def make_q_sample(schedule, index_shift=0, sqrt=True, table="alpha_bars"):
    """A reader's q_sample; the keyword arguments inject the classic mistakes."""

    def q_sample(x0, t, noise):
        a = _coef(getattr(schedule, table), t - index_shift if index_shift else t, x0)
        if sqrt:
            return a.sqrt() * x0 + (1 - a).sqrt() * noise
        return a * x0 + (1 - a) * noise

    return q_sample


def test_reference_and_a_hand_written_q_sample_pass():
    assert "all 5 cases passed" in ch01.check_q_sample(LINEAR.q_sample)
    assert "passed" in ch01.check_q_sample(make_q_sample(LINEAR))


def test_q_sample_is_graded_against_the_given_schedule():
    cosine = NoiseSchedule.cosine(50)
    assert "passed" in ch01.check_q_sample(make_q_sample(cosine), schedule=cosine)
    with pytest.raises(ExerciseError, match="check_q_sample, case"):
        ch01.check_q_sample(make_q_sample(LINEAR), schedule=cosine)


@pytest.mark.parametrize(
    "mistake, case",
    [
        ({"index_shift": 1}, "t = 1"),  # alpha_bars[t - 1]
        ({"sqrt": False}, "t = 1"),  # variances used as standard deviations
        ({"table": "alphas"}, "t = 500"),  # one step's alpha instead of the product
    ],
)
def test_plausible_mistakes_fail_and_name_the_case(mistake, case):
    with pytest.raises(ExerciseError, match=f"case 'images, {case} ") as err:
        ch01.check_q_sample(make_q_sample(LINEAR, **mistake))
    assert "Hint:" in str(err.value)


def test_q_sample_that_ignores_per_sample_t_fails_on_the_tensor_case():
    def no_broadcast(x0, t, noise):
        a = LINEAR.alpha_bars[t].to(x0.dtype)  # shape (B,) lines up with the last axis, not the batch
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    with pytest.raises(ExerciseError, match=r"case 'images, t = tensor\(\[1, 333, 1000\]\)"):
        ch01.check_q_sample(no_broadcast)


def test_a_function_that_raises_is_reported_not_crashed():
    def broken(x0, t, noise):
        raise RuntimeError("not yet")

    with pytest.raises(ExerciseError, match="your function raised RuntimeError: not yet"):
        ch01.check_q_sample(broken)


def test_bad_arguments_are_named():
    with pytest.raises(ExerciseError, match="expected a function"):
        ch01.check_q_sample(42)
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        ch01.check_q_sample(LINEAR.q_sample, schedule="linear")


def alpha_bars_cumprod(betas):
    return torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, dim=0)])


def test_alpha_bars_pass():
    assert "all 4 cases passed" in ch01.check_alpha_bars(alpha_bars_cumprod)
    assert "passed" in ch01.check_alpha_bars(lambda betas: NoiseSchedule(betas).alpha_bars)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda b: torch.cumprod(1 - b, dim=0), r"shape \(10,\) where \(11,\) was expected"),  # no alpha_bar_0 = 1
        (lambda b: torch.cat([torch.ones(1, dtype=b.dtype), 1 - torch.cumsum(b, 0)]), "case 'DDPM linear"),
        (lambda b: torch.cat([torch.ones(1, dtype=b.dtype), 1 - b]), "case 'DDPM linear"),  # alphas, not products
        (lambda b: torch.cat([torch.ones(1, dtype=b.dtype), torch.cumprod(b, 0)]), "case 'DDPM linear"),
    ],
)
def test_alpha_bars_mistakes_fail(wrong, message):
    with pytest.raises(ExerciseError, match=message) as err:
        ch01.check_alpha_bars(wrong)
    assert "cumulative product" in str(err.value)


def quadratic_betas(T, beta_start, beta_end):
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2


def test_quadratic_betas_pass():
    assert "all 4 cases passed" in ch01.check_quadratic_betas(quadratic_betas)
    assert "passed" in ch01.check_quadratic_betas(lambda T, b0, b1: quadratic_betas(T, b0, b1).float())
    assert "passed" in ch01.check_quadratic_betas(lambda *args: NoiseSchedule.quadratic(*args).betas[1:])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda T, b0, b1: torch.linspace(b0, b1, T, dtype=torch.float64), "case 'DDPM's endpoints"),  # linear
        (lambda T, b0, b1: torch.linspace(b0, b1, T, dtype=torch.float64) ** 2, "case 'DDPM's endpoints"),
        (lambda T, b0, b1: torch.linspace(b0**0.5, b1**0.5, T, dtype=torch.float64), "case 'DDPM's endpoints"),
        (lambda T, b0, b1: quadratic_betas(T + 1, b0, b1)[1:], "case 'DDPM's endpoints"),  # shifted grid
        (lambda T, b0, b1: torch.cat([torch.zeros(1, dtype=torch.float64), quadratic_betas(T, b0, b1)]), "shape"),
    ],
)
def test_quadratic_betas_mistakes_fail(wrong, message):
    with pytest.raises(ExerciseError, match=message) as err:
        ch01.check_quadratic_betas(wrong)
    assert "evenly spaced" in str(err.value)
