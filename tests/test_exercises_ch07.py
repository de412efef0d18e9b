"""The chapter-7 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import math
import re

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, ch07
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule

S = NoiseSchedule.linear(1000, 1e-4, 0.02)


def make_invert_step(x0_with_next=False, sqrt_next=True, sqrt_direction=True):
    """One encoding step written out; the flags inject the usual mistakes."""

    def step(x, eps, alpha_bar_cur, alpha_bar_next):
        a = alpha_bar_next if x0_with_next else alpha_bar_cur
        x0_hat = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        scale = math.sqrt(alpha_bar_next) if sqrt_next else alpha_bar_next
        direction = math.sqrt(1 - alpha_bar_next) if sqrt_direction else 1 - alpha_bar_next
        return scale * x0_hat + direction * eps

    return step


def test_invert_step_hand_written_passes():
    assert "all 4 cases passed" in ch07.check_invert_step(make_invert_step())


def test_encode_with_the_correct_step_is_ddim_invert():
    oracle = GaussianOracle(S, mean=0.0, std=0.7, shape=(1, 5, 5))
    x0 = oracle.sample(2, generator=torch.Generator().manual_seed(0))
    visited = ch07.encode_with(make_invert_step(), oracle, S, x0, steps=25)
    want = samplers.ddim_invert(oracle, S, x0, steps=25, progress=False)
    assert len(visited) == 26 and torch.allclose(visited[-1], want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "mistake", [{"x0_with_next": True}, {"sqrt_next": False}, {"sqrt_direction": False}], ids=lambda m: next(iter(m))
)
def test_invert_step_mistakes_fail_at_the_first_step(mistake):
    with pytest.raises(ExerciseError, match=r"case 'images, S = 1 \(one step.*item 1:") as err:
        ch07.check_invert_step(make_invert_step(**mistake))
    assert "Hint:" in str(err.value)


def hand_slerp(z0, z1, xi, swap=False, normalise=False):
    u, v = z0.flatten().double(), z1.flatten().double()
    theta = torch.arccos(torch.dot(u, v) / (u.norm() * v.norm()))
    if normalise:
        u, v = u / u.norm(), v / v.norm()
    w0, w1 = torch.sin((1 - xi) * theta), torch.sin(xi * theta)
    if swap:
        w0, w1 = w1, w0
    return ((w0 * u + w1 * v) / torch.sin(theta)).reshape(z0.shape).to(z0.dtype)


def test_slerp_reference_and_hand_written_pass():
    assert "all 6 cases passed" in ch07.check_slerp(samplers.slerp)
    assert "passed" in ch07.check_slerp(hand_slerp)


@pytest.mark.parametrize(
    ("wrong", "case"),
    [
        (lambda z0, z1, xi: (1 - xi) * z0 + xi * z1, "Gaussian latents (1, 6, 6), xi = 0.3"),
        (lambda z0, z1, xi: hand_slerp(z0, z1, xi, swap=True), "Gaussian latents (1, 6, 6), xi = 0.0"),
        (lambda z0, z1, xi: hand_slerp(z0, z1, xi, normalise=True), "Gaussian latents (1, 6, 6), xi = 0.0"),
    ],
    ids=["lerp", "swapped weights", "normalised vectors"],
)
def test_slerp_mistakes_fail_and_name_the_case(wrong, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}'")) as err:
        ch07.check_slerp(wrong)
    assert "Hint:" in str(err.value)
