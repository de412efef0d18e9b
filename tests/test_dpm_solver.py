"""The exponential-integrator sampler (chapter 9): order 1 is DDIM, the weights integrate their eps models
exactly, and on the exact oracles the global error falls at the rate each rule promises."""

import math

import pytest
import torch
from scipy.integrate import quad

from ddim_book import samplers
from ddim_book.dpm_solver import dpm_solver_coefficients
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(1000)
AB = SCHEDULE.alpha_bars


def sigma(t: int) -> float:
    return math.sqrt((1 - AB[t].item()) / AB[t].item())


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "trailing"])
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_order_one_is_ddim_with_eta_zero(spacing, steps):
    oracle = GaussianMixtureOracle.ring_2d(SCHEDULE)
    x_T = torch.randn((500, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, steps, order=1, spacing=spacing, progress=False)
    ddim = samplers.ddim_sample(oracle, SCHEDULE, x_T, steps, 0.0, spacing, progress=False)
    torch.testing.assert_close(ours, ddim, rtol=0, atol=1e-12)


@pytest.mark.parametrize("expand_in", ["lambda", "sigma"])
@pytest.mark.parametrize("s, t, p", [(981, 961, 1000), (500, 300, 700), (41, 21, 61), (21, 0, 41)])
def test_second_order_weights_integrate_a_linear_eps_exactly(expand_in, s, t, p):
    """eps linear in the expansion variable, through (var_p, eps_p) and (var_s, eps_s): the step must equal
    x_bar_s + integral of eps over sigma from sigma_s to sigma_t, computed here by quadrature."""
    sigma_s, sigma_t, sigma_p = sigma(s), (sigma(t) if t else 0.0), sigma(p)
    eps_s, eps_p = 0.8, -0.3
    if expand_in == "sigma" or t == 0:  # the last step is linear in sigma for both rules

        def eps(r):
            return eps_s + (r - sigma_s) * (eps_s - eps_p) / (sigma_s - sigma_p)
    else:

        def eps(r):
            lam, lam_s, lam_p = -math.log(r), -math.log(sigma_s), -math.log(sigma_p)
            return eps_s + (lam - lam_s) * (eps_s - eps_p) / (lam_s - lam_p)

    exact = -quad(eps, sigma_t, sigma_s, epsabs=1e-13, epsrel=1e-12)[0]
    c1, c2 = dpm_solver_coefficients(sigma_s, sigma_t, sigma_p, expand_in)
    assert c1 * eps_s + c2 * (eps_s - eps_p) == pytest.approx(exact, rel=1e-9, abs=1e-12)


def _slope(steps, errors):
    x, y = torch.log(torch.tensor(steps, dtype=torch.float64)), torch.log(torch.tensor(errors))
    return float(-((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


def test_global_error_slopes_on_gaussian_data():
    """Against the exact ODE map of N(mu, s^2) data (chapter 9): DDIM is first order, the sigma rule second order.
    Measured (256 x 64 points, seed 0): slopes 0.96 and 1.95; the ranges leave room for other seeds."""
    mu, sd, steps = 0.5, 0.3, [25, 50, 100]
    oracle = GaussianOracle(SCHEDULE, mean=mu, std=sd, shape=(64,))
    x_T = torch.randn((256, 64), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma_T = sigma(1000)
    exact = mu + (x_T / math.sqrt(AB[1000].item()) - mu) * sd / math.sqrt(sd**2 + sigma_T**2)

    def error(x):
        return (x - exact).pow(2).mean().sqrt().item()

    ddim = [error(samplers.ddim_sample(oracle, SCHEDULE, x_T, S, 0.0, "trailing", progress=False)) for S in steps]
    second = [error(samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, S, 2, "trailing", "sigma", progress=False))
              for S in steps]  # fmt: skip
    assert 0.85 < _slope(steps, ddim) < 1.1
    assert 1.8 < _slope(steps, second) < 2.2
    assert all(b < a for a, b in zip(ddim, second))


def test_both_second_order_rules_beat_ddim_on_the_mixture():
    oracle = GaussianMixtureOracle.ring_2d(SCHEDULE)
    x_T = torch.randn((2000, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, 1000, 2, "trailing", "sigma", progress=False)
    for S in (50, 100):
        ddim = (samplers.ddim_sample(oracle, SCHEDULE, x_T, S, 0.0, "trailing", progress=False) - reference).norm()
        for expand_in in ("lambda", "sigma"):
            ours = samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, S, 2, "trailing", expand_in, progress=False)
            assert (ours - reference).norm() < 0.6 * ddim, (S, expand_in)


def test_bad_input_is_refused():
    oracle = GaussianOracle(SCHEDULE, mean=0.0, std=1.0, shape=(2,))
    x_T = torch.randn((4, 2), dtype=torch.float64)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, 10, order=3, progress=False)
    with pytest.raises(ValueError, match="expand_in"):
        samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, 10, expand_in="t", progress=False)
    with pytest.raises(ValueError, match="NaN"):
        samplers.dpm_solver_sample(oracle, SCHEDULE, x_T * float("nan"), 10, progress=False)
    with pytest.raises(ValueError):
        samplers.dpm_solver_sample(oracle, SCHEDULE, x_T, 1001, progress=False)
