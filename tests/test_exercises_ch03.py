"""The chapter-3 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import math

import pytest
import torch

from ddim_book.exercises import ExerciseError, ch03
from ddim_book.schedules import NoiseSchedule

LINEAR = NoiseSchedule.linear(1000, 1e-4, 0.02)


# ----- the references themselves ---------------------------------------------------------------
def test_gaussian_kl_reference_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    draws = 0.5 + 0.3 * torch.randn(400_000, generator=g, dtype=torch.float64)
    q, p = torch.distributions.Normal(0.5, 0.3), torch.distributions.Normal(-0.2, 1.5)
    estimate = (q.log_prob(draws) - p.log_prob(draws)).mean().item()
    assert abs(ch03.gaussian_kl(0.5, 0.09, -0.2, 2.25).item() - estimate) < 5e-3
    assert ch03.gaussian_kl(1.0, 2.0, 1.0, 2.0).item() == 0.0


def test_loss_weight_reference_values():
    # sigma^2 = beta: lambda_1 = 1 / (2 alpha_1); at large t both choices nearly agree
    assert math.isclose(ch03.loss_weight(LINEAR, 1, "beta"), 1 / (2 * (1 - 1e-4)), rel_tol=1e-12)
    ratio = ch03.loss_weight(LINEAR, 1000, "beta") / ch03.loss_weight(LINEAR, 1000, "beta_tilde")
    assert math.isclose(ratio, float(LINEAR.posterior_variances[1000] / LINEAR.betas[1000]), rel_tol=1e-12)


def test_mu_from_eps_matches_the_posterior_mean():
    """Eq. (11) with the true noise is the posterior mean of eq. (7) (DDPM eq. (10))."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 50, 500, 1000])
    x_t = LINEAR.q_sample(x0, t, noise)
    torch.testing.assert_close(ch03.mu_from_eps(LINEAR, x_t, t, noise), LINEAR.q_posterior(x0, x_t, t)[0])


def test_reference_errors_name_the_argument():
    with pytest.raises(ValueError, match="t must be >= 2"):
        ch03.loss_weight(LINEAR, 1, "beta_tilde")
    with pytest.raises(ValueError, match="unknown variance"):
        ch03.loss_weight(LINEAR, 5, "learned")
    with pytest.raises(ValueError, match="t must be in 1..1000"):
        ch03.loss_weight(LINEAR, 0, "beta")
    with pytest.raises(TypeError, match="schedule"):
        ch03.loss_weight(None, 5, "beta")
    with pytest.raises(ValueError, match="var1 and var2 must be > 0"):
        ch03.gaussian_kl(0.0, -1.0, 0.0, 1.0)


# ----- the checks accept correct answers --------------------------------------------------------
def test_references_and_hand_written_answers_pass():
    assert "all 5 cases passed" in ch03.check_gaussian_kl(ch03.gaussian_kl)
    assert "passed" in ch03.check_loss_weight(ch03.loss_weight)
    assert "all 4 cases passed" in ch03.check_mu_from_eps(ch03.mu_from_eps)

    def my_kl(m_q, v_q, m_p, v_p):  # written with standard deviations, any parameter names
        s_q, s_p = torch.as_tensor(v_q).sqrt(), torch.as_tensor(v_p).sqrt()
        return torch.log(s_p / s_q) + (s_q**2 + (m_q - m_p) ** 2) / (2 * s_p**2) - 0.5

    def my_weight(sched, t, variance):
        sigma2 = sched.betas[t] if variance == "beta" else sched.posterior_variances[t]
        return float(sched.betas[t] ** 2 / (2 * sigma2 * sched.alphas[t] * (1 - sched.alpha_bars[t])))

    def my_mu(sched, x_t, t, eps):
        shape = (-1,) + (1,) * (x_t.ndim - 1)
        b, a, ab = (
            v[t].reshape(shape) if torch.is_tensor(t) else v[t] for v in (sched.betas, sched.alphas, sched.alpha_bars)
        )
        return (x_t - b / (1 - ab).sqrt() * eps) / a.sqrt()

    assert "passed" in ch03.check_gaussian_kl(my_kl)
    assert "passed" in ch03.check_loss_weight(my_weight)
    assert "passed" in ch03.check_mu_from_eps(my_mu)


def test_loss_weight_is_graded_on_the_given_schedule():
    cosine = NoiseSchedule.cosine(200)
    assert "passed" in ch03.check_loss_weight(ch03.loss_weight, schedule=cosine)
    assert "case 'cosine T=200" in _failure(
        ch03.check_loss_weight, lambda s, t, v: ch03.loss_weight(LINEAR, t, v), cosine
    )


def _failure(check, fn, *args) -> str:
    with pytest.raises(ExerciseError) as err:
        check(fn, *args)
    assert "Hint:" in str(err.value) or "raised" in str(err.value)
    return str(err.value)


# ----- and reject the usual mistakes -------------------------------------------------------------
@pytest.mark.parametrize(
    "kl, case",
    [
        (lambda m1, v1, m2, v2: torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1, "unit variances, means 0 and 2"),
        (lambda m1, v1, m2, v2: ch03.gaussian_kl(m2, v2, m1, v1), "means 0, variances 0.25 and 4"),  # KL(p || q)
        (
            lambda m1, v1, m2, v2: torch.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5,
            "means 0, variances 0.25 and 4",
        ),  # log of the variance ratio where the std ratio belongs
    ],
)
def test_kl_mistakes_fail_and_name_the_case(kl, case):
    assert f"check_gaussian_kl, case '{case}'" in _failure(ch03.check_gaussian_kl, kl)


def _weight(sigma2="beta", alpha="alphas", shift=0):
    def weight(sched, t, variance):
        s = t - shift
        var = sched.betas[s] if (variance == "beta") == (sigma2 == "beta") else sched.posterior_variances[s]
        return float(sched.betas[s] ** 2 / (2 * var * getattr(sched, alpha)[s] * (1 - sched.alpha_bars[s])))

    return weight


@pytest.mark.parametrize(
    "weight, case",
    [
        (_weight(sigma2="swapped"), "linear T=1000, t = 1, variance='beta'"),  # the two variances swapped
        (_weight(alpha="alpha_bars"), "linear T=1000, t = 2, variance='beta'"),  # alpha_bar_t for alpha_t
        (_weight(shift=1), "linear T=1000, t = 1, variance='beta'"),  # indexed by t - 1: 0/0 at t = 1
    ],
)
def test_loss_weight_mistakes_fail_and_name_the_case(weight, case):
    assert f"check_loss_weight, case '{case}'" in _failure(ch03.check_loss_weight, weight)


def _mu(outer="alphas", inner_sqrt=True, broadcast=True):
    def mu(sched, x_t, t, eps):
        shape = (-1,) + (1,) * (x_t.ndim - 1) if broadcast else (-1,)
        b, a, ab = (
            v[t].reshape(shape) if torch.is_tensor(t) else v[t]
            for v in (sched.betas, getattr(sched, outer), sched.alpha_bars)
        )
        noise_scale = (1 - ab).sqrt() if inner_sqrt else 1 - ab
        return (x_t - b / noise_scale * eps) / a.sqrt()

    return mu


@pytest.mark.parametrize(
    "mu, case",
    [
        (_mu(outer="alpha_bars"), "images, t = 500"),  # 1 / sqrt(alpha_bar_t) outside
        (_mu(inner_sqrt=False), "images, t = 1"),  # beta / (1 - alpha_bar) without the square root
    ],
)
def test_mu_mistakes_fail_and_name_the_case(mu, case):
    assert f"check_mu_from_eps, case '{case}'" in _failure(ch03.check_mu_from_eps, mu)


def test_mu_without_per_sample_broadcasting_fails_on_the_tensor_case():
    message = _failure(ch03.check_mu_from_eps, _mu(broadcast=False))
    assert "case '2-D points, t = tensor(" in message
