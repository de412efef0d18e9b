"""The chapter 5 exercise checks: right answers pass, plausible wrong ones fail with a message naming the case."""

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, ch05
from ddim_book.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(1000)


# ----- written afresh here, so the checks are not only tested against themselves ------------------------
def sigma_from_beta_tilde(alpha_bar_t, alpha_bar_prev, eta):
    # sigma_t(eta)^2 = eta^2 * beta_tilde with beta_t replaced by 1 - a_t / a_prev (a skipping step)
    beta = 1 - alpha_bar_t / alpha_bar_prev
    return eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta)


def coefs_by_hand(alpha_bar_t, alpha_bar_prev, sigma):
    kappa = torch.sqrt((1 - alpha_bar_prev - sigma**2).clamp_min(0) / (1 - alpha_bar_t))
    return kappa, torch.sqrt(alpha_bar_prev) - torch.sqrt(alpha_bar_t) * kappa


def max_eta_by_hand(alpha_bar_t, alpha_bar_prev):
    return torch.sqrt((1 - alpha_bar_t) / (1 - alpha_bar_t / alpha_bar_prev))


def test_correct_answers_pass():
    assert "passed" in ch05.check_ddim_sigma(samplers.ddim_sigma)
    assert "passed" in ch05.check_ddim_sigma(sigma_from_beta_tilde)
    assert "passed" in ch05.check_posterior_coefs(ch05.posterior_coefs)
    assert "passed" in ch05.check_posterior_coefs(coefs_by_hand)
    assert "passed" in ch05.check_max_eta(ch05.max_eta)
    assert "passed" in ch05.check_max_eta(max_eta_by_hand)


@pytest.mark.parametrize(
    "wrong, case",
    [
        # eta on the variance instead of the standard deviation: sigma^2 = eta * beta_tilde
        (
            lambda alpha_bar_t, alpha_bar_prev, eta: sigma_from_beta_tilde(alpha_bar_t, alpha_bar_prev, eta**0.5),
            "eta=0.5",
        ),
        # a square root forgotten on the second factor
        (
            lambda alpha_bar_t, alpha_bar_prev, eta: (
                eta * ((1 - alpha_bar_prev) / (1 - alpha_bar_t)).sqrt() * (1 - alpha_bar_t / alpha_bar_prev)
            ),
            "eta=0.5",
        ),
        # the two noise levels swapped in the first factor
        (
            lambda alpha_bar_t, alpha_bar_prev, eta: (
                eta * ((1 - alpha_bar_t) / (1 - alpha_bar_prev)).sqrt() * (1 - alpha_bar_t / alpha_bar_prev).sqrt()
            ),
            "every step, eta=0.0': the result contains NaN",  # 0 / 0 at the last step, where a_prev = 1
        ),
    ],
)
def test_wrong_sigma_fails_naming_the_case(wrong, case):
    with pytest.raises(ExerciseError, match=case) as info:
        ch05.check_ddim_sigma(wrong)
    assert "ddim_sigma, case 'linear T=1000" in str(info.value)
    assert "Hint:" in str(info.value)


def slipped_coefs(alpha_bar_t, alpha_bar_prev, sigma):
    # seed 002's system: a variance matched to a standard deviation, so (1 - a_prev) gets squared
    kappa = torch.sqrt(((1 - alpha_bar_prev) ** 2 - sigma**2) / (1 - alpha_bar_t))
    return kappa, torch.sqrt(alpha_bar_prev) - torch.sqrt(alpha_bar_t) * kappa


def swapped_coefs(alpha_bar_t, alpha_bar_prev, sigma):
    kappa, lam = coefs_by_hand(alpha_bar_t, alpha_bar_prev, sigma)
    return lam, kappa


def no_root_in_denominator(alpha_bar_t, alpha_bar_prev, sigma):
    kappa = torch.sqrt(1 - alpha_bar_prev - sigma**2) / (1 - alpha_bar_t)
    return kappa, torch.sqrt(alpha_bar_prev) - torch.sqrt(alpha_bar_t) * kappa


@pytest.mark.parametrize("wrong", [slipped_coefs, swapped_coefs, no_root_in_denominator])
def test_wrong_coefs_fail_naming_the_case(wrong):
    with pytest.raises(ExerciseError, match=r"posterior_coefs, case '.+, eta=") as info:
        ch05.check_posterior_coefs(wrong)
    assert "Hint:" in str(info.value)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda alpha_bar_t, alpha_bar_prev: (1 - alpha_bar_t) * alpha_bar_prev / (alpha_bar_prev - alpha_bar_t),
        lambda alpha_bar_t, alpha_bar_prev: torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t / alpha_bar_prev)),
    ],
)
def test_wrong_max_eta_fails(wrong):
    with pytest.raises(ExerciseError, match="max_eta, case 'linear T=1000"):
        ch05.check_max_eta(wrong)


def test_a_function_that_raises_is_reported():
    def broken(alpha_bar_t, alpha_bar_prev, eta):
        raise RuntimeError("not yet")

    with pytest.raises(ExerciseError, match="raised RuntimeError: not yet"):
        ch05.check_ddim_sigma(broken)


# ----- the references against the package --------------------------------------------------------------
@pytest.mark.parametrize("t, prev", [(2, 1), (500, 499), (600, 400), (1000, 1)])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_posterior_coefs_reproduce_ddim_step(t, prev, eta):
    gen = torch.Generator().manual_seed(t + prev)
    x0 = torch.randn(64, generator=gen, dtype=torch.float64)
    x_t = torch.randn(64, generator=gen, dtype=torch.float64)
    a_t, a_prev = SCHEDULE.alpha_bars[t], SCHEDULE.alpha_bars[prev]
    eps = (x_t - a_t.sqrt() * x0) / (1 - a_t).sqrt()  # the noise that x_t carries
    mean = samplers.ddim_step(x_t, eps, a_t, a_prev, eta=eta, noise=torch.zeros_like(x_t))
    kappa, lam = ch05.posterior_coefs(a_t, a_prev, samplers.ddim_sigma(a_t, a_prev, eta))
    torch.testing.assert_close(kappa * x_t + lam * x0, mean, rtol=1e-12, atol=1e-12)


def test_posterior_coefs_at_eta_one_are_ddpms():
    ab = SCHEDULE.alpha_bars
    sigma = samplers.ddim_sigma(ab[2:], ab[1:-1], 1.0)
    kappa, lam = ch05.posterior_coefs(ab[2:], ab[1:-1], sigma)
    torch.testing.assert_close(kappa, SCHEDULE.posterior_xt_coefs[2:], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(lam, SCHEDULE.posterior_x0_coefs[2:], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(sigma**2, SCHEDULE.posterior_variances[2:], rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("t, prev", [(10, 9), (600, 400), (1000, 500)])
def test_max_eta_is_where_ddim_step_starts_refusing(t, prev):
    a_t, a_prev = SCHEDULE.alpha_bars[t], SCHEDULE.alpha_bars[prev]
    edge = ch05.max_eta(a_t, a_prev).item()
    assert edge >= 1.0
    one = torch.ones(3, dtype=torch.float64)
    samplers.ddim_step(one, one, a_t, a_prev, eta=edge * (1 - 1e-9), noise=one)
    with pytest.raises(ValueError, match="eta"):
        samplers.ddim_step(one, one, a_t, a_prev, eta=edge * 1.01, noise=one)


def test_references_reject_bad_input():
    ab = SCHEDULE.alpha_bars
    with pytest.raises(TypeError, match="alpha_bar_t"):
        ch05.posterior_coefs(0.5, ab[3], ab[3])
    with pytest.raises(ValueError, match="sigma"):
        ch05.posterior_coefs(ab[500], ab[499], torch.tensor(1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="alpha_bar_prev < 1"):
        ch05.max_eta(ab[1:3], ab[0:2])
    with pytest.raises(TypeError):
        ch05.max_eta(0.5, 0.6)
