"""The exact oracles: their densities, scores and epsilon-predictors, and samplers run against them."""

import math

import pytest
import torch

from ddim_book import samplers
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear()


def _mixture(schedule=SCHEDULE):
    # unequal weights, one anisotropic component: a wrong weight or covariance update would show
    covs = torch.tensor([[[0.04, 0.0], [0.0, 0.04]], [[0.09, 0.05], [0.05, 0.09]], [[0.01, 0.0], [0.0, 0.16]]])
    return GaussianMixtureOracle(schedule, [0.5, 0.3, 0.2], [[-1.5, 0.0], [1.0, 1.0], [1.2, -1.5]], covs)


@pytest.mark.parametrize("t", [0, 1, 300, 1000])
def test_mixture_density_is_normalised(t):
    m = _mixture()
    axis = torch.linspace(-6, 6, 601, dtype=torch.float64)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    p = m.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1), t).exp()
    cell = (axis[1] - axis[0]).item() ** 2
    assert p.sum().item() * cell == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("oracle", [_mixture(), GaussianOracle(SCHEDULE, mean=torch.tensor([0.5, -1.0]), std=0.4)])
@pytest.mark.parametrize("t", [1, 50, 700])
def test_score_is_gradient_of_log_density_and_eps_is_scaled_score(oracle, t):
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(t)).requires_grad_(True)
    (grad,) = torch.autograd.grad(oracle.log_prob(x, t).sum(), x)
    torch.testing.assert_close(oracle.score(x.detach(), t), grad)
    ab = SCHEDULE.alpha_bars[t].item()
    eps = oracle(x.detach(), torch.full((16,), t))
    torch.testing.assert_close(eps, -math.sqrt(1 - ab) * grad)  # Tweedie, chapter 3


@pytest.mark.parametrize("t", [20, 400])
def test_marginal_sampler_agrees_with_the_forward_process(t):
    """oracle.sample(n, t) and q_sample applied to data samples draw from the same q_t."""
    m, g, n = _mixture(), torch.Generator().manual_seed(0), 200_000
    direct = m.sample(n, t, generator=g)
    forward = SCHEDULE.q_sample(m.sample(n, 0, generator=g), t, generator=g)
    torch.testing.assert_close(direct.mean(0), forward.mean(0), atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(direct.T), torch.cov(forward.T), atol=0.015, rtol=0)


def test_eps_oracle_is_the_conditional_expectation():
    """E[eps | x_t] is the L2 projection: its residual is orthogonal to functions of x_t (chapter 3)."""
    m, g, n, t = _mixture(), torch.Generator().manual_seed(1), 400_000, 150
    x0 = m.sample(n, 0, generator=g)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x_t = SCHEDULE.q_sample(x0, t, eps)
    eps_hat = m(x_t, torch.full((n,), t))
    resid = eps - eps_hat
    for feature in (torch.ones(n, 1), x_t, x_t.pow(2), torch.tanh(x_t)):
        inner = (resid[:, :, None] * feature[:, None, :]).mean(0)
        se = (resid[:, :, None] * feature[:, None, :]).std(0) / math.sqrt(n)
        assert bool((inner.abs() < 5 * se).all()), (inner, se)
    mse = resid.pow(2).mean().item()
    assert mse < (eps - 1.05 * eps_hat).pow(2).mean().item()
    assert mse < (eps - 0.95 * eps_hat).pow(2).mean().item()


def _mixture_statistics(x, m):
    """Component fractions (assigned by nearest mean under each component's metric), means, covariances."""
    logp, _ = m._components(x, 0)
    k = logp.argmax(1)
    fr = torch.stack([(k == j).double().mean() for j in range(3)])
    means = torch.stack([x[k == j].mean(0) for j in range(3)])
    covs = torch.stack([torch.cov(x[k == j].T) for j in range(3)])
    return fr, means, covs


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampling_with_S_equal_T_reproduces_the_mixture(sampler):
    """With the exact oracle and S = T, DDIM (eta = 0) and DDPM draw from the data mixture."""
    m, n = _mixture(), 4000
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn(n, 2, dtype=torch.float64, generator=g)
    if sampler == "ddim":
        x0 = samplers.ddim_sample(m, SCHEDULE, x_T, steps=SCHEDULE.T, progress=False)
    else:
        x0 = samplers.ddpm_sample(m, SCHEDULE, x_T, generator=g, progress=False)
    fr, means, covs = _mixture_statistics(x0, m)
    se = (m.weights * (1 - m.weights) / n).sqrt()
    assert bool(((fr - m.weights).abs() < 5 * se).all()), fr
    torch.testing.assert_close(means, m.means, atol=0.03, rtol=0)
    torch.testing.assert_close(covs, m.covs, atol=0.02, rtol=0)


def test_mixture_check_has_power_against_a_sign_error():
    """The statistic above rejects a sampler whose epsilon has the wrong sign."""
    m, n = _mixture(), 2000
    x_T = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x0 = samplers.ddim_sample(lambda x, t: -m(x, t), SCHEDULE, x_T, steps=100, progress=False)
    fr, means, covs = _mixture_statistics(x0, m)
    assert (covs - m.covs).abs().max() > 0.1 or (means - m.means).abs().max() > 0.1


def test_oracle_errors():
    m = _mixture()
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        m(torch.zeros(4, 3), 5)
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        m(torch.zeros(4, 2), 0)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixtureOracle(None, [1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="weight"):
        GaussianMixtureOracle(None, [1.0, -1.0], [[0.0, 0.0], [1.0, 1.0]], [0.1, 0.1])
    with pytest.raises(ValueError, match="schedule"):
        GaussianMixtureOracle.ring_2d()(torch.zeros(2, 2), 3)
    assert GaussianMixtureOracle.ring_2d().sample(5).shape == (5, 2)  # the data needs no schedule
    with pytest.raises(ValueError, match="std"):
        GaussianOracle(SCHEDULE, mean=torch.zeros(2), std=0.0)
    with pytest.raises(ValueError, match="shape"):
        GaussianOracle(SCHEDULE, mean=torch.zeros(2))(torch.zeros(3, 4), 5)


def test_gaussian_oracle_on_image_shaped_data():
    o = GaussianOracle(SCHEDULE, mean=0.0, std=0.5, shape=(1, 4, 4))
    x = o.sample(3, 10)
    assert x.shape == (3, 1, 4, 4)
    assert o(x.float(), torch.tensor([10, 10, 10])).dtype == torch.float32
    (m, v) = o.marginal(10)
    ab = SCHEDULE.alpha_bars[10]
    torch.testing.assert_close(v, ab * 0.25 + 1 - ab)


@pytest.mark.parametrize("t", [1, 300, 1000])
def test_gaussian_oracle_marginal_matches_the_forward_process(t):
    """GaussianOracle's q_t (mean sqrt(a) m, variance a s^2 + 1 - a) against q_sample of its own data: a
    wrong mean or a wrong variance in ``marginal`` (hence in ``sample``, ``score`` and ``eps``) fails here."""
    oracle, g, n = GaussianOracle(SCHEDULE, mean=torch.tensor([0.7, -1.3]), std=0.4), torch.Generator(), 400_000
    g.manual_seed(1)
    forward = SCHEDULE.q_sample(oracle.sample(n, 0, generator=g), t, generator=g)
    mean, var = oracle.marginal(t)
    se_mean = (var / n).sqrt()
    assert ((forward.mean(0) - mean).abs() < 5 * se_mean).all()
    se_var = var * math.sqrt(2 / n)
    assert ((forward.var(0) - var).abs() < 5 * se_var).all()
    direct = oracle.sample(n, t, generator=g)
    assert ((direct.mean(0) - forward.mean(0)).abs() < 7 * se_mean).all()


def test_gaussian_ode_map_is_the_limit_of_ddim_and_carries_q_t_to_the_data():
    """``GaussianOracle.ode_map``: DDIM (eta = 0) converges to it at first order as S grows, and it maps q_T
    (mean sqrt(a) m, variance a s^2 + 1 - a) onto the data N(m, s^2) exactly; at t = 0 it is the identity."""
    from ddim_book.samplers import ddim_sample

    oracle = GaussianOracle(SCHEDULE, mean=torch.tensor([0.5, -0.2, 1.0]), std=0.3)
    x_T = torch.randn((64, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = oracle.ode_map(x_T, SCHEDULE.T)
    errors = [
        (ddim_sample(oracle, SCHEDULE, x_T, S, 0.0, "trailing", progress=False) - exact).abs().max().item()
        for S in (100, 200, 400)
    ]
    assert errors[0] < 0.05 and 1.7 < errors[0] / errors[1] < 2.3 and 1.7 < errors[1] / errors[2] < 2.3
    mean, var = oracle.marginal(SCHEDULE.T)
    z = torch.tensor([[-1.0, 0.0, 1.0]], dtype=torch.float64).T * torch.ones(1, 3, dtype=torch.float64)
    mapped = oracle.ode_map(mean + var.sqrt() * z, SCHEDULE.T)  # the map is affine: mean +- 1 sd of q_T
    torch.testing.assert_close(mapped[1], oracle.mean)
    torch.testing.assert_close((mapped[2] - mapped[0]) / 2, torch.full((3,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(oracle.ode_map(x_T, 0), x_T)
