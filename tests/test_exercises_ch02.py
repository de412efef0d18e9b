"""The chapter-2 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import pytest
import torch

from ddim_book import samplers
from ddim_book.exercises import ExerciseError, ch02
from ddim_book.schedules import NoiseSchedule

S = NoiseSchedule.linear(1000, 1e-4, 0.02)


def _per_sample(values: torch.Tensor, t, x: torch.Tensor) -> torch.Tensor:
    """values[t] in float64, shaped (B, 1, ..., 1) for a tensor t so that it broadcasts over x."""
    v = values[t]
    return v.reshape(-1, *([1] * (x.ndim - 1))) if isinstance(t, torch.Tensor) else v


def make_posterior(schedule, prev_shift=1, sqrt_alpha=True):
    """DDPM eq. (7) written out from alpha_bars; prev_shift and sqrt_alpha inject mistakes."""

    def posterior(x0, x_t, t):
        ab_t = _per_sample(schedule.alpha_bars, t, x_t)
        ab_prev = _per_sample(schedule.alpha_bars, t - prev_shift, x_t)
        alpha = ab_t / ab_prev if prev_shift == 1 else _per_sample(schedule.alphas, t, x_t)
        beta = 1 - alpha
        a = alpha.sqrt() if sqrt_alpha else alpha
        mean = ab_prev.sqrt() * beta / (1 - ab_t) * x0 + a * (1 - ab_prev) / (1 - ab_t) * x_t
        return mean.to(x_t.dtype), (1 - ab_prev) / (1 - ab_t) * beta

    return posterior


def test_q_posterior_reference_and_hand_written_pass():
    assert "all 6 cases passed" in ch02.check_q_posterior(S.q_posterior)
    assert "passed" in ch02.check_q_posterior(make_posterior(S))


def test_q_posterior_accepts_a_variance_of_shape_b_or_a_number():
    def flat_variance(x0, x_t, t):
        mean, var = S.q_posterior(x0, x_t, t)
        return mean, var.flatten() if var.ndim else float(var)

    assert "passed" in ch02.check_q_posterior(flat_variance)


def test_q_posterior_mistakes_fail_and_name_the_case():
    with pytest.raises(ExerciseError, match="case 'images, t = 2 ") as err:
        ch02.check_q_posterior(make_posterior(S, sqrt_alpha=False))
    assert "Hint:" in str(err.value)

    def prev_equals_t(x0, x_t, t):  # alpha_bar_t where alpha_bar_{t-1} belongs: fails already at t = 1
        mean, var = make_posterior(S)(x0, x_t, t)
        ab = _per_sample(S.alpha_bars, t, x_t)
        return mean, (1 - ab) / (1 - ab) * _per_sample(S.betas, t, x_t)

    with pytest.raises(ExerciseError, match="case 'images, t = 1 "):
        ch02.check_q_posterior(prev_equals_t)


def test_q_posterior_variance_that_cannot_broadcast_is_explained():
    def wrong_shape(x0, x_t, t):
        mean, _ = S.q_posterior(x0, x_t, t)
        return mean, torch.zeros(7)

    with pytest.raises(ExerciseError, match="does not broadcast to the mean's shape"):
        ch02.check_q_posterior(wrong_shape)
    with pytest.raises(ExerciseError, match=r"expected a pair \(mean, variance\)"):
        ch02.check_q_posterior(lambda x0, x_t, t: x0)


def ddim_eta_one_mean(x_t, eps, t):
    zero = torch.zeros_like(x_t)
    return samplers.ddim_step(x_t, eps, S.alpha_bars[t], S.alpha_bars[t - 1], eta=1.0, noise=zero)


def test_posterior_mean_eps_passes_for_the_formula_and_for_ddim_with_eta_one():
    def eps_form(x_t, eps, t):
        return (x_t - S.betas[t] / (1 - S.alpha_bars[t]).sqrt() * eps) / S.alphas[t].sqrt()

    assert "all 5 cases passed" in ch02.check_posterior_mean_eps(eps_form)
    assert "passed" in ch02.check_posterior_mean_eps(ddim_eta_one_mean)


@pytest.mark.parametrize(
    "wrong, case",
    [
        (lambda x_t, eps, t: (x_t - S.betas[t] / (1 - S.alpha_bars[t]) * eps) / S.alphas[t].sqrt(), "t = 1'"),
        (
            lambda x_t, eps, t: (x_t - S.betas[t] / (1 - S.alpha_bars[t]).sqrt() * eps) / S.alpha_bars[t].sqrt(),
            "t = 2'",
        ),
        (lambda x_t, eps, t: (x_t + S.betas[t] / (1 - S.alpha_bars[t]).sqrt() * eps) / S.alphas[t].sqrt(), "t = 1'"),
    ],
    ids=["no-sqrt-on-one-minus-alpha-bar", "alpha-bar-for-alpha", "sign"],
)
def test_posterior_mean_eps_mistakes_fail(wrong, case):
    with pytest.raises(ExerciseError, match=f"check_posterior_mean_eps, case '{case}"):
        ch02.check_posterior_mean_eps(wrong)


def skip_formula(x0, x_t, t_prev, t):
    """q(x_{t_prev} | x_t, x_0) by completing the square with the jump kernel, written out by hand."""
    a_k, a_t = S.alpha_bars[t_prev], S.alpha_bars[t]
    jump = a_t / a_k
    mean = a_k.sqrt() * (1 - jump) / (1 - a_t) * x0 + jump.sqrt() * (1 - a_k) / (1 - a_t) * x_t
    return mean, (1 - a_k) / (1 - a_t) * (1 - jump)


def test_skip_posterior_formula_passes_and_reduces_to_one_step():
    assert "all 6 cases passed" in ch02.check_skip_posterior(skip_formula)
    g = torch.Generator().manual_seed(0)
    x0, x_t = torch.randn(2, 3, dtype=torch.float64, generator=g), torch.randn(2, 3, dtype=torch.float64, generator=g)
    for t in (2, 500, 1000):
        one_step = S.q_posterior(x0, x_t, t)
        skip = ch02.skip_posterior(S, x0, x_t, t - 1, t)
        # two algebraically equal formulas: equal to float64 rounding, not bit for bit
        assert torch.allclose(skip[0], one_step[0], rtol=1e-10, atol=1e-12)
        assert torch.allclose(skip[1], one_step[1], rtol=1e-10, atol=1e-12)


def test_skip_posterior_mistake_fails():
    def one_step_kernel(x0, x_t, t_prev, t):  # uses beta_t even when the jump spans many steps
        mean, var = skip_formula(x0, x_t, t_prev, t)
        return mean, (1 - S.alpha_bars[t_prev]) / (1 - S.alpha_bars[t]) * S.betas[t]

    with pytest.raises(ExerciseError, match="case 't_prev = 10, t = 33'"):
        ch02.check_skip_posterior(one_step_kernel)


def test_skip_posterior_rejects_bad_steps():
    x = torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="0 <= t_prev < t <= 1000"):
        ch02.skip_posterior(S, x, x, 5, 5)
    with pytest.raises(TypeError, match="t_prev must be an int"):
        ch02.skip_posterior(S, x, x, 1.0, 5)
