"""NoiseSchedule: indexing convention, closed forms, the forward marginal and the DDPM posterior."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddim_book.schedules import NoiseSchedule


def test_linear_schedule_matches_ddpm_values():
    s = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)
    assert s.T == 1000
    for name in ("betas", "alphas", "alpha_bars", "posterior_variances"):
        v = getattr(s, name)
        assert v.dtype == torch.float64 and v.shape == (1001,)
    assert s.betas[0] == 0 and s.alphas[0] == 1 and s.alpha_bars[0] == 1
    assert s.betas[1].item() == pytest.approx(1e-4, rel=1e-12)
    assert s.betas[1000].item() == pytest.approx(0.02, rel=1e-12)
    # alpha_bar_t is the running product of (1 - beta_s), computed here independently in numpy
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), np.cumprod(1 - betas), rtol=1e-12)
    assert s.alpha_bars[1000].item() == pytest.approx(4.035e-5, rel=1e-3)  # DDPM: x_T is nearly pure noise


def test_cosine_schedule_follows_improved_ddpm():
    s = NoiseSchedule.cosine(T=1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 250, 500, 900):
        assert s.alpha_bars[t].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert s.betas.max().item() == pytest.approx(0.999)  # the clipping at t = T
    assert bool((s.alpha_bars[1:] < s.alpha_bars[:-1]).all())


def test_quadratic_schedule_matches_an_independent_float64_reference():
    """sqrt(beta_t) evenly spaced from sqrt(beta_1) to sqrt(beta_T), as in the DDPM/DDIM code's "quad" option."""
    s = NoiseSchedule.quadratic(T=1000, beta_start=1e-4, beta_end=0.02)
    assert s.T == 1000 and s.betas.dtype == torch.float64 and s.betas.shape == (1001,)
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1
    reference = np.linspace(np.sqrt(1e-4), np.sqrt(0.02), 1000, dtype=np.float64) ** 2
    np.testing.assert_allclose(s.betas[1:].numpy(), reference, rtol=1e-13)
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), np.cumprod(1 - reference), rtol=1e-12)
    assert s.betas[1].item() == pytest.approx(1e-4, rel=1e-12)
    assert s.betas[1000].item() == pytest.approx(0.02, rel=1e-12)
    # sum of (a + k h)^2 over k = 0..T-1, in closed form
    a, h, T = 0.01, (math.sqrt(0.02) - 0.01) / 999, 1000
    closed_sum = T * a**2 + 2 * a * h * T * (T - 1) / 2 + h**2 * (T - 1) * T * (2 * T - 1) / 6
    assert s.betas.sum().item() == pytest.approx(closed_sum, rel=1e-12)
    # small case by hand: sqrt(betas) = 0.01, 0.055, 0.1
    small = NoiseSchedule.quadratic(T=3, beta_start=1e-4, beta_end=0.01)
    np.testing.assert_allclose(small.betas[1:].numpy(), [1e-4, 0.055**2, 1e-2], rtol=1e-12)


def test_quadratic_lies_between_linear_in_beta_and_keeps_more_signal():
    """For the same endpoints, (convex combination)^2 <= convex combination: each beta_t is at most the linear one."""
    quad, lin = NoiseSchedule.quadratic(), NoiseSchedule.linear()
    assert bool((quad.betas[2:-1] < lin.betas[2:-1]).all())
    assert bool((quad.alpha_bars[2:] > lin.alpha_bars[2:]).all())
    assert quad.alpha_bars[1000].item() == pytest.approx(7.334e-4, rel=1e-3)


def test_quadratic_dict_round_trip_and_single_step():
    s = NoiseSchedule.quadratic(T=20, beta_start=1e-3, beta_end=0.3)
    d = s.to_dict()
    assert d == {"kind": "quadratic", "T": 20, "beta_start": 1e-3, "beta_end": 0.3}
    again = NoiseSchedule.from_dict(json.loads(json.dumps(d)))
    assert torch.equal(again.betas, s.betas)
    assert "quadratic" in repr(s)
    assert NoiseSchedule.quadratic(T=1, beta_start=1e-4, beta_end=0.02).betas.tolist() == [0.0, 0.02]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"beta_start": 0.0}, ValueError, r"beta_start must lie strictly inside \(0, 1\), got 0\.0"),
        ({"beta_end": 1.0}, ValueError, r"beta_end must lie strictly inside \(0, 1\)"),
        ({"beta_start": -1e-4}, ValueError, "beta_start"),
        ({"beta_end": float("nan")}, ValueError, "beta_end"),
        ({"beta_start": "1e-4"}, TypeError, "beta_start must be a real number"),
        ({"beta_end": True}, TypeError, "beta_end must be a real number"),
        ({"T": 0}, ValueError, r"T must be in 1\.\."),
        ({"T": 10.0}, TypeError, "T must be an integer"),
    ],
)
def test_quadratic_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        NoiseSchedule.quadratic(**{"T": 10, "beta_start": 1e-4, "beta_end": 0.02, **kwargs})


def test_unknown_kind_names_the_kinds():
    with pytest.raises(ValueError, match="'quadratic'"):
        NoiseSchedule.from_dict({"kind": "sigmoid", "T": 10})


def test_from_alpha_bars_round_trip_and_dict():
    s = NoiseSchedule.linear(T=50, beta_start=1e-3, beta_end=0.2)
    r = NoiseSchedule.from_alpha_bars(s.alpha_bars)
    torch.testing.assert_close(r.betas, s.betas, rtol=1e-10, atol=1e-14)
    for built in (
        NoiseSchedule.linear(T=7),
        NoiseSchedule.quadratic(T=7),
        NoiseSchedule.cosine(T=7),
        NoiseSchedule([0.1, 0.2, 0.3]),
    ):
        again = NoiseSchedule.from_dict(built.to_dict())
        assert torch.equal(again.alpha_bars, built.alpha_bars)


@pytest.mark.parametrize(
    "betas, match",
    [([0.1, 0.0, 0.2], r"\(0, 1\)"), ([0.1, 1.0], r"\(0, 1\)"), ([0.1, -0.2], r"\(0, 1\)"), ([[0.1]], "1-D")],
)
def test_bad_betas_are_refused(betas, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(betas)


def test_non_monotone_alpha_bars_are_refused():
    with pytest.raises(ValueError, match="strictly decreasing"):
        NoiseSchedule.from_alpha_bars([0.9, 0.5, 0.6])
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        NoiseSchedule.from_alpha_bars([0.9, 0.0])


def test_timestep_range_is_checked():
    s = NoiseSchedule.linear(T=10)
    x = torch.zeros(3, 2)
    for bad in (0, 11, torch.tensor([1, 0, 2]), torch.tensor([1, 2, 11])):
        with pytest.raises(ValueError, match=r"1\.\.10"):
            s.q_sample(x, bad, torch.zeros_like(x))
    with pytest.raises(TypeError, match="integer"):
        s.q_sample(x, torch.tensor([1.0, 2.0, 3.0]), torch.zeros_like(x))
    with pytest.raises(ValueError, match="batch size"):
        s.q_sample(x, torch.tensor([1, 2]), torch.zeros_like(x))
    with pytest.raises(ValueError, match="noise has shape"):
        s.q_sample(x, 1, torch.zeros(3, 3))


def test_q_sample_statistics_match_closed_form():
    """Monte Carlo mean and variance of x_t ~ q(x_t | x_0) against sqrt(ab) x0 and 1 - ab (DDPM eq. (4))."""
    s = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.tensor([0.7, -1.3], dtype=torch.float64).expand(n, 2)
    for t in (1, 100, 500, 1000):
        xt = s.q_sample(x0, t, generator=g)
        ab = s.alpha_bars[t].item()
        se_mean = math.sqrt((1 - ab) / n)
        assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0[0], atol=5 * se_mean)
        se_var = (1 - ab) * math.sqrt(2 / n)
        assert torch.allclose(xt.var(0), torch.full((2,), 1 - ab, dtype=torch.float64), atol=5 * se_var)


def test_q_sample_broadcasts_per_sample_timesteps_and_keeps_dtype():
    s = NoiseSchedule.linear()
    x0 = torch.randn(4, 1, 3, 3)
    noise = torch.randn(4, 1, 3, 3)
    t = torch.tensor([1, 10, 100, 1000])
    xt = s.q_sample(x0, t, noise)
    assert xt.dtype == torch.float32 and xt.shape == x0.shape
    for i in range(4):
        ab = s.alpha_bars[t[i]].item()
        expect = math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * noise[i]
        torch.testing.assert_close(xt[i], expect, rtol=1e-6, atol=1e-6)


def _bayes_posterior_1d(s, x0, xt, t):
    """Mean and variance of p(x_{t-1} | x_t, x_0) by quadrature of q(x_t | x_{t-1}) q(x_{t-1} | x_0)."""
    ab_prev, alpha = s.alpha_bars[t - 1].item(), s.alphas[t].item()
    grid = np.linspace(-8, 8, 400_001)
    log_prior = -0.5 * (grid - math.sqrt(ab_prev) * x0) ** 2 / max(1 - ab_prev, 1e-300)
    log_lik = -0.5 * (xt - math.sqrt(alpha) * grid) ** 2 / (1 - alpha)
    logw = log_prior + log_lik
    w = np.exp(logw - logw.max())
    w /= np.trapezoid(w, grid)
    mean = np.trapezoid(w * grid, grid)
    return mean, np.trapezoid(w * (grid - mean) ** 2, grid)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(2, 1000), x0=st.floats(-1.5, 1.5), xt=st.floats(-2.5, 2.5))
def test_q_posterior_matches_bayes_rule(t, x0, xt):
    s = NoiseSchedule.linear()
    mean, var = s.q_posterior(torch.tensor([x0], dtype=torch.float64), torch.tensor([xt], dtype=torch.float64), t)
    q_mean, q_var = _bayes_posterior_1d(s, x0, xt, t)
    assert mean.item() == pytest.approx(q_mean, abs=1e-6)
    assert var.item() == pytest.approx(q_var, rel=1e-4)


def test_q_posterior_at_t1_is_the_data_point():
    s = NoiseSchedule.linear()
    x0, xt = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    mean, var = s.q_posterior(x0, xt, 1)
    torch.testing.assert_close(mean, x0)
    assert var.item() == 0


def test_snr_is_alpha_bar_over_one_minus():
    s = NoiseSchedule.cosine(T=100)
    snr = s.snr()
    assert math.isinf(snr[0].item())
    t = torch.tensor([1, 50, 100])
    torch.testing.assert_close(s.snr(t), s.alpha_bars[t] / (1 - s.alpha_bars[t]))
    assert bool((snr[1:-1] > snr[2:]).all())  # strictly decreasing in t
