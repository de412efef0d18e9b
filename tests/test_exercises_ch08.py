"""The chapter-8 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import pytest

from ddim_book import langevin
from ddim_book.exercises import ExerciseError, ch08


def test_references_and_hand_written_answers_pass():
    assert "all 3 cases passed" in ch08.check_langevin_step(langevin.langevin_step)
    assert "all 5 cases passed" in ch08.check_dsm_target(langevin.dsm_target)

    def my_step(points, grad, delta, z):  # any parameter names: arguments are passed by position
        return points + delta / 2 * grad + delta**0.5 * z

    def my_target(noisy, clean, a):
        return (a**0.5 * clean - noisy) / (1 - a)

    assert "passed" in ch08.check_langevin_step(my_step)
    assert "passed" in ch08.check_dsm_target(my_target)


@pytest.mark.parametrize(
    "step, case",
    [
        (lambda x, s, d, z: x + d * s + d**0.5 * z, "step_size = 0.01"),  # drift without the 1/2
        (lambda x, s, d, z: x + d / 2 * s + d * z, "step_size = 0.01"),  # noise scaled by delta, not sqrt(delta)
        (lambda x, s, d, z: x + d / 2 * s, "step_size = 0.01"),  # noise forgotten
    ],
)
def test_langevin_step_mistakes_fail_and_name_the_case(step, case):
    with pytest.raises(ExerciseError, match=f"check_langevin_step, case '2-D points, {case}'") as err:
        ch08.check_langevin_step(step)
    assert "Hint:" in str(err.value)


@pytest.mark.parametrize(
    "target, case",
    [
        (lambda x_t, x0, a: -(x_t - a**0.5 * x0) / (1 - a) ** 0.5, "alpha_bar_t = 0.9999"),  # std, not variance
        (lambda x_t, x0, a: -(x_t - a * x0) / (1 - a), "alpha_bar_t = 0.9999"),  # sqrt(a) forgotten
        (lambda x_t, x0, a: (x_t - a**0.5 * x0) / (1 - a), "alpha_bar_t = 0.9999"),  # sign
    ],
)
def test_dsm_target_mistakes_fail_and_name_the_case(target, case):
    with pytest.raises(ExerciseError, match=f"check_dsm_target, case '2-D points, {case}'") as err:
        ch08.check_dsm_target(target)
    assert "Hint:" in str(err.value)


def test_a_target_that_only_handles_float_alpha_bar_fails_on_the_tensor_case():
    def float_only(x_t, x0, a):
        a = float(a)  # a (4, 1) tensor cannot be turned into one float
        return -(x_t - a**0.5 * x0) / (1 - a)

    with pytest.raises(ExerciseError, match="per sample.*raised"):
        ch08.check_dsm_target(float_only)
