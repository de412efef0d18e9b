"""Every exercise check treats the stub of an exercise cell as "not attempted yet", and nothing else.

A stub raises NotImplementedError or returns ``...`` (or None): the check prints one line naming the exercise
and the function and returns it, so that a notebook with unsolved exercises runs top to bottom. A placeholder
that shows up only after some cases passed, and any wrong answer, still raise ExerciseError.
"""

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import (
    ExerciseError,
    NotAttempted,
    appendix,
    appendix_b,
    ch01,
    ch02,
    ch03,
    ch04,
    ch05,
    ch06,
    ch07,
    ch08,
    ch09,
    positional,
)

CHECKS = [
    (ch01.check_q_sample, "1.1"),
    (ch01.check_alpha_bars, "1.2"),
    (ch01.check_quadratic_betas, "1.5"),
    (ch02.check_q_posterior, "2.1"),
    (ch02.check_posterior_mean_eps, "2.2"),
    (ch02.check_skip_posterior, "2.3"),
    (ch03.check_gaussian_kl, "3.1"),
    (ch03.check_loss_weight, "3.2"),
    (ch03.check_mu_from_eps, "3.3"),
    (ch04.check_time_embedding, "4.1"),
    (ch04.check_ddpm_step, "4.2"),
    (ch05.check_ddim_sigma, "5.1"),
    (ch05.check_posterior_coefs, "5.2"),
    (ch05.check_max_eta, "5.3"),
    (ch06.check_ddim_step, "6.1"),
    (ch06.check_uniform_timesteps, "6.2"),
    (ch06.check_trailing_timesteps, "6.2"),
    (ch07.check_invert_step, "7.1"),
    (ch07.check_slerp, "7.2"),
    (ch08.check_langevin_step, "8.1"),
    (ch08.check_dsm_target, "8.2"),
    (ch08.check_hyvarinen_linear, "8.5"),
    (ch08.check_sliced_score_matching_loss, "8.6"),
    (ch09.check_first_order_step, "9.1"),
    (ch09.check_second_order_weights, "9.2"),
    (appendix.check_produced_variance, "A.1"),
    (appendix_b.check_scheduler_setup, "B.1"),
]
IDS = [f"{check.__module__.rsplit('.', 1)[-1]}.{check.__name__}" for check, _ in CHECKS]


def my_raising_stub(*args):
    raise NotImplementedError


def my_ellipsis_stub(*args):
    return ...


def my_pair_stub(*args):
    first = ...
    second = ...
    return first, second


def my_forgotten_return(*args):
    pass


@pytest.mark.parametrize("check, number", CHECKS, ids=IDS)
@pytest.mark.parametrize("stub", [my_raising_stub, my_ellipsis_stub, my_pair_stub])
def test_a_stub_prints_one_not_attempted_line_and_does_not_raise(check, number, stub, capsys):
    message = check(stub)
    expected = f"Exercise {number} not attempted yet: fill in {stub.__name__}, then run this cell again."
    assert message == expected
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("check, number", CHECKS, ids=IDS)
def test_a_stub_returning_none_is_told_to_return_its_result(check, number, capsys):
    message = check(my_forgotten_return)
    assert message.startswith(f"Exercise {number} not attempted yet: my_forgotten_return returned None;")
    assert "return the result" in message
    assert capsys.readouterr().out.count("\n") == 1


def test_a_lambda_stub_is_called_your_function(capsys):
    assert "fill in your function," in ch06.check_ddim_step(lambda *args: ...)


def test_a_placeholder_after_passing_cases_is_an_error():
    """A branch that was never filled in (here: eta > 0) is a wrong answer, not an unattempted exercise."""

    def half_done(x_t, eps, a_t, a_prev, eta, noise):
        if eta > 0:
            raise NotImplementedError
        return samplers.ddim_step(x_t, eps, a_t, a_prev, eta=0.0)

    with pytest.raises(ExerciseError, match=r"case 'images, t = 500 -> 499, eta = 1'.*raised NotImplementedError"):
        ch06.check_ddim_step(half_done)

    def no_return_at_the_end(T, S):
        if S != 3:
            return [1 + i * (T // S) for i in range(S)]

    with pytest.raises(ExerciseError, match=r"case 'T = 1000, S = 3'.*returned None"):
        ch06.check_uniform_timesteps(no_return_at_the_end)


def test_wrong_answers_still_raise():
    with pytest.raises(ExerciseError, match="Hint:"):
        ch01.check_alpha_bars(lambda betas: torch.cumprod(1 - betas, 0))  # no leading alpha_bar_0 = 1
    with pytest.raises(ExerciseError, match="your function raised TypeError"):
        ch05.check_ddim_sigma(lambda a_t, a_prev, eta: a_t + "x")


def test_positional_passes_arguments_in_order_or_by_keyword():
    by_position = positional("demo", lambda first, second: first - second, "a", "b")
    assert by_position(b=1, a=5) == 4
    by_keyword = positional("demo", lambda a, b: a - b)
    assert by_keyword(b=1, a=5) == 4
    with pytest.raises(NotAttempted) as stub:
        positional("demo", my_raising_stub, "a")(a=1)
    assert stub.value.function == "my_raising_stub" and stub.value.returned == ""
    with pytest.raises(ExerciseError, match="demo: expected a function, got 3"):
        positional("demo", 3, "a")
