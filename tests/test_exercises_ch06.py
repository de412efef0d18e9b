"""The chapter-6 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import re

import numpy as np
import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, ch06


def make_step(sigma_sq_in_direction=True, eta_on_variance=False, sqrt_prev=True):
    """A reader's DDIM step (DDIM eq. (12)); the keyword arguments inject the classic mistakes."""

    def step(x_t, eps, a_t, a_prev, eta, noise):
        beta_tilde = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        sigma = (eta * beta_tilde) ** 0.5 if eta_on_variance else eta * beta_tilde**0.5
        x0_hat = (x_t - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        direction = (1 - a_prev - sigma**2) ** 0.5 if sigma_sq_in_direction else (1 - a_prev) ** 0.5
        signal = a_prev**0.5 if sqrt_prev else a_prev
        return signal * x0_hat + direction * eps + sigma * noise

    return step


def test_reference_and_a_hand_written_step_pass():
    assert "all 7 cases passed" in ch06.check_ddim_step(samplers.ddim_step)
    assert "passed" in ch06.check_ddim_step(make_step())


@pytest.mark.parametrize(
    "mistake, case",
    [
        ({"sigma_sq_in_direction": False}, "images, t = 500 -> 499, eta = 1"),  # sigma^2 left in the direction
        ({"eta_on_variance": True}, "images, t = 600 -> 400 (skip), eta = 0.5"),  # sigma^2 = eta * beta_tilde
        ({"sqrt_prev": False}, "images, t = 500 -> 499, eta = 0"),  # a_prev instead of its square root
    ],
)
def test_plausible_step_mistakes_fail_and_name_the_case(mistake, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}'")) as err:
        ch06.check_ddim_step(make_step(**mistake))
    assert "Hint:" in str(err.value)


def test_a_step_that_ignores_the_given_noise_fails():
    def fresh_noise(x_t, eps, a_t, a_prev, eta, noise):
        return samplers.ddim_step(x_t, eps, a_t, a_prev, eta=eta, generator=torch.Generator().manual_seed(1))

    with pytest.raises(ExerciseError, match="eta = 1"):
        ch06.check_ddim_step(fresh_noise)


def uniform(T, S):
    return [1 + i * (T // S) for i in range(S)]


def trailing(T, S):
    return [(2 * i * T + S) // (2 * S) for i in range(1, S + 1)]


def test_timesteps_pass_and_accept_arrays_and_tensors():
    assert "all 8 cases passed" in ch06.check_uniform_timesteps(uniform)
    assert "passed" in ch06.check_uniform_timesteps(lambda T, S: samplers.timesteps(T, S, "uniform"))
    assert "passed" in ch06.check_uniform_timesteps(lambda T, S: np.arange(S) * (T // S) + 1)
    assert "passed" in ch06.check_trailing_timesteps(trailing)
    assert "passed" in ch06.check_trailing_timesteps(lambda T, S: torch.tensor(trailing(T, S)))


@pytest.mark.parametrize(
    "wrong, case",
    [
        (lambda T, S: [i * (T // S) for i in range(S)], "T = 1000, S = 10"),  # 0-based: starts at t = 0
        (lambda T, S: np.linspace(1, T, S).astype(int), "T = 1000, S = 10"),  # evenly spaced to T, not the stride
        (lambda T, S: list(range(1, T + 1, T // S)), "T = 1000, S = 3"),  # a value too many when S does not divide T
    ],
)
def test_uniform_mistakes_fail(wrong, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}'")) as err:
        ch06.check_uniform_timesteps(wrong)
    assert "stride" in str(err.value)


@pytest.mark.parametrize(
    "wrong, case",
    [
        (lambda T, S: [i * T // S for i in range(S)], "T = 1000, S = 10"),  # i = 0..S-1: starts at 0, misses T
        (lambda T, S: [i * T // S for i in range(1, S + 1)], "T = 1000, S = 3"),  # floor instead of rounding
        (lambda T, S: [round(i * T / S) for i in range(1, S + 1)], "T = 100, S = 8"),  # Python rounds 12.5 to 12
    ],
)
def test_trailing_mistakes_fail(wrong, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}'")) as err:
        ch06.check_trailing_timesteps(wrong)
    assert "round" in str(err.value)


def test_non_integer_output_and_non_functions_are_reported():
    with pytest.raises(ExerciseError, match="must return a sequence of integers"):
        ch06.check_uniform_timesteps(lambda T, S: [1.0 + i * (T // S) for i in range(S)])
    with pytest.raises(ExerciseError, match="expected a function"):
        ch06.check_trailing_timesteps("trailing")
    with pytest.raises(ExerciseError, match="expected a function"):
        ch06.check_ddim_step(None)
