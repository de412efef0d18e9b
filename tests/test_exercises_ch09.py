"""The chapter-9 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import math

import pytest

from ddim_book.exercises import ExerciseError, ch09


def first_order(x, eps, a_s, a_t, via_exp=False):
    al_s, al_t, si_s, si_t = math.sqrt(a_s), math.sqrt(a_t), math.sqrt(1 - a_s), math.sqrt(1 - a_t)
    if via_exp:  # exp(h) is infinite at the last step: inf * 0
        h = math.log(al_t / si_t) - math.log(al_s / si_s) if si_t > 0 else math.inf
        return (al_t / al_s) * x - si_t * (math.exp(h) - 1) * eps
    return (al_t / al_s) * x - (al_t * si_s / al_s - si_t) * eps


def weights(sigma_s, sigma_t, sigma_p, expand_in, lambda_at_the_end=False, flip=False):
    c1 = sigma_t - sigma_s
    if expand_in == "sigma" or (sigma_t == 0 and not lambda_at_the_end):
        c2 = 0.5 * (sigma_t - sigma_s) ** 2 / (sigma_s - sigma_p)
    else:
        lam_s, lam_p = -math.log(sigma_s), -math.log(sigma_p)
        if sigma_t == 0:  # the lambda model integrated to infinity
            c2 = -sigma_s / (lam_s - lam_p)
        else:
            c2 = -(sigma_s - sigma_t * (1 - math.log(sigma_t) - lam_s)) / (lam_s - lam_p)
    return c1, -c2 if flip else c2


def test_hand_written_answers_pass():
    assert "all 4 cases passed" in ch09.check_first_order_step(first_order)
    assert "all 8 cases passed" in ch09.check_second_order_weights(weights)


def test_exp_h_at_the_last_step_is_caught():
    with pytest.raises(ExerciseError, match="last step"):
        ch09.check_first_order_step(lambda x, e, a, b: first_order(x, e, a, b, via_exp=True))


@pytest.mark.parametrize("mistake, where", [("lambda_at_the_end", "last step"), ("flip", "t = ")])
def test_wrong_weights_are_caught(mistake, where):
    with pytest.raises(ExerciseError, match=where):
        ch09.check_second_order_weights(lambda *args: weights(*args, **{mistake: True}))
