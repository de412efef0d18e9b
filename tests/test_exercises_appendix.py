"""Appendix A's exercise check, and its package-based reference against the closed forms of the appendix."""

import math

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, appendix
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(1000)


def _plan(schedule, steps, spacing):
    taus = samplers.timesteps(schedule.T, steps, spacing)
    ab = schedule.alpha_bars.tolist()
    return [(ab[t], ab[p]) for t, p in zip(taus, [0, *taus[:-1]])], ab[taus[-1]]


def _slope(a, a_next, std):
    return (math.sqrt(a * a_next) * std**2 + math.sqrt((1 - a) * (1 - a_next))) / (a * std**2 + 1 - a)


def product_form(schedule, std, steps, spacing):
    plan, _ = _plan(schedule, steps, spacing)
    return math.prod(_slope(a, a_next, std) ** 2 for a, a_next in plan)


def angle_form(schedule, std, steps, spacing):
    # Var_S = (1 / v(a_{tau_S})) s^2 prod cos^2(dphi), tan(phi) = sqrt(1 - a) / (s sqrt(a))
    plan, a_start = _plan(schedule, steps, spacing)

    def phi(a):
        return math.atan2(math.sqrt(1 - a), std * math.sqrt(a))

    cos_sq = math.prod(math.cos(phi(a) - phi(a_next)) ** 2 for a, a_next in plan)
    return std**2 * cos_sq / (a_start * std**2 + 1 - a_start)


def test_correct_closed_forms_pass():
    assert "passed" in appendix.check_produced_variance(product_form)
    assert "passed" in appendix.check_produced_variance(angle_form)


def without_square(schedule, std, steps, spacing):
    plan, _ = _plan(schedule, steps, spacing)
    return math.prod(_slope(a, a_next, std) for a, a_next in plan)


def started_from_q(schedule, std, steps, spacing):
    # the variance of q(x_{tau_S}) as the start, where the sampler starts from N(0, 1)
    _, a_start = _plan(schedule, steps, spacing)
    return product_form(schedule, std, steps, spacing) * (a_start * std**2 + 1 - a_start)


def without_final_step(schedule, std, steps, spacing):
    plan, _ = _plan(schedule, steps, spacing)
    return math.prod(_slope(a, a_next, std) ** 2 for a, a_next in plan[1:])


def exact_flow(schedule, std, steps, spacing):
    # the probability-flow ODE's answer, s^2 / v(a_{tau_S}): right in the limit, not for finite S
    _, a_start = _plan(schedule, steps, spacing)
    return std**2 / (a_start * std**2 + 1 - a_start)


@pytest.mark.parametrize("wrong", [without_square, started_from_q, without_final_step, exact_flow])
def test_wrong_answers_fail_naming_the_case(wrong):
    with pytest.raises(ExerciseError, match=r"produced_variance, case '.+ T=\d+, std=.+, S=\d+, \w+'") as info:
        appendix.check_produced_variance(wrong)
    assert "Hint:" in str(info.value)


@pytest.mark.parametrize("std", [0.3, 1.0, 2.0])
@pytest.mark.parametrize("steps", [1, 7, 50, 200])
def test_bound_holds_from_the_true_start(std, steps):
    for spacing in samplers.SPACINGS:
        _, a_start = _plan(SCHEDULE, steps, spacing)
        v_start = a_start * std**2 + 1 - a_start
        var = appendix.produced_variance(SCHEDULE, std, steps, spacing)
        assert var * v_start <= std**2 * (1 + 1e-12)
        if std >= 1:  # the N(0, 1) start is then no wider than q(x_{tau_S})
            assert var <= std**2 * (1 + 1e-12)


def test_produced_map_intercept_is_the_mean_error():
    mu, std = 1.5, 0.5
    for steps, spacing in [(1, "trailing"), (10, "uniform"), (50, "quadratic")]:
        plan, a_start = _plan(SCHEDULE, steps, spacing)
        slope = math.prod(_slope(a, a_next, std) for a, a_next in plan)
        got_slope, intercept = appendix.produced_map(SCHEDULE, std, steps, spacing, mean=mu)
        assert got_slope == pytest.approx(slope, rel=1e-10)
        assert intercept == pytest.approx(mu - math.sqrt(a_start) * mu * slope, rel=1e-10, abs=1e-12)


def test_reference_matches_monte_carlo():
    oracle = GaussianOracle(SCHEDULE, mean=0.0, std=0.5, shape=(1,))
    x_T = torch.randn((4000, 1), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = samplers.ddim_sample(oracle, SCHEDULE, x_T, steps=10, spacing="trailing", progress=False)
    slope, _ = appendix.produced_map(SCHEDULE, 0.5, 10, "trailing")
    assert out.var().item() == pytest.approx(slope**2 * x_T.var().item(), rel=1e-10)


def test_produced_map_rejects_a_non_schedule():
    with pytest.raises(TypeError, match="schedule"):
        appendix.produced_map("linear", 0.5, 10)
