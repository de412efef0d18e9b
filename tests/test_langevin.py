"""Langevin and annealed Langevin sampling against closed forms; the DSM target; input validation."""

import math

import pytest
import torch

from ddim_book import langevin
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(1000, 1e-4, 0.02)


@pytest.fixture(autouse=True)
def one_thread():
    """The chains here are tiny tensors: extra threads only add contention (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _zero_score(x, *level):
    return torch.zeros_like(x)


# ----- one step -------------------------------------------------------------------------------
def test_step_is_half_drift_plus_root_noise():
    g = torch.Generator().manual_seed(0)
    x, score, noise = (torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(3))
    got = langevin.langevin_step(x, score, 0.09, noise)
    torch.testing.assert_close(got, x + 0.045 * score + 0.3 * noise)


@pytest.mark.parametrize("bad", [0.0, -0.1, math.inf, math.nan])
def test_step_size_must_be_positive_and_finite(bad):
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="step_size"):
        langevin.langevin_step(x, x, bad, x)


@pytest.mark.parametrize("bad", ["0.1", True, None])
def test_step_size_must_be_a_number(bad):
    x = torch.zeros(2, 2)
    with pytest.raises(TypeError, match="step_size"):
        langevin.langevin_step(x, x, bad, x)


def test_step_rejects_mismatched_shapes():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="score must be a tensor of x's shape"):
        langevin.langevin_step(x, torch.zeros(2, 3), 0.1, x)
    with pytest.raises(ValueError, match="noise must be a tensor of x's shape"):
        langevin.langevin_step(x, x, 0.1, torch.zeros(2))


# ----- plain Langevin -------------------------------------------------------------------------
def test_stationary_variance_matches_the_discrete_formula():
    """For N(m, s^2) the discrete chain's stationary variance is s^2 / (1 - delta / (4 s^2)) (chapter 8)."""
    target = GaussianOracle(None, mean=[1.0], std=0.5)
    delta = 0.3
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    x = langevin.langevin_sample(lambda y: target.score(y, 0), x0, delta, 100, g, progress=False)
    predicted = 0.25 / (1 - delta / 1.0)
    assert abs(x.mean().item() - 1.0) < 0.02
    assert abs(x.var().item() - predicted) < 0.02
    assert abs(predicted - 0.25) > 0.05  # the test can tell the biased variance from the exact one


def test_langevin_sample_is_seeded_and_returns_the_trajectory():
    target = GaussianOracle(None, mean=[0.0, 0.0], std=1.0)
    x0 = torch.zeros(5, 2)
    run = [
        langevin.langevin_sample(
            lambda y: target.score(y, 0), x0, 0.1, 7, torch.Generator().manual_seed(3), True, progress=False
        )
        for _ in range(2)
    ]
    (x, traj), (x_again, _) = run
    assert torch.equal(x, x_again)
    assert traj.shape == (8, 5, 2) and torch.equal(traj[0], x0) and torch.equal(traj[-1], x)
    assert x.dtype == torch.float32  # the oracle's float64 score is cast to x's dtype


def test_zero_steps_return_the_start():
    x0 = torch.randn(3, 2)
    assert torch.equal(langevin.langevin_sample(_zero_score, x0, 0.1, 0, progress=False), x0)


def test_progress_bar_can_be_shown():
    x = langevin.langevin_sample(_zero_score, torch.zeros(2, 1), 0.1, 3, progress=True)
    assert x.shape == (2, 1)


def test_bad_score_functions_and_starts_are_named():
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        langevin.langevin_sample(lambda y: y[:, :1], x0, 0.1, 1, progress=False)
    with pytest.raises(TypeError, match="score_fn must return a tensor"):
        langevin.langevin_sample(lambda y: 0.0, x0, 0.1, 1, progress=False)
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor"):
        langevin.langevin_sample(_zero_score, torch.zeros(4, 2, dtype=torch.long), 0.1, 1, progress=False)
    with pytest.raises(ValueError, match="n_steps"):
        langevin.langevin_sample(_zero_score, x0, 0.1, -1, progress=False)
    with pytest.raises(TypeError, match="n_steps"):
        langevin.langevin_sample(_zero_score, x0, 0.1, 2.5, progress=False)


# ----- annealed Langevin ----------------------------------------------------------------------
def test_step_sizes_follow_algorithm_1():
    """A zero score leaves x0 + sum over levels i and steps of sqrt(alpha_i) z, alpha_i = eps sigma_i^2 / sigma_L^2."""
    sigmas, k, eps = [2.0, 0.5, 0.1], 3, 1e-3
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    seen = []

    def score(x, sigma):
        seen.append(sigma)
        return torch.zeros_like(x)

    got = langevin.annealed_langevin_sample(score, x0, sigmas, k, eps, torch.Generator().manual_seed(5), progress=False)
    g = torch.Generator().manual_seed(5)
    want = x0.clone()
    for sigma in sigmas:
        for _ in range(k):
            want = want + math.sqrt(eps * sigma**2 / sigmas[-1] ** 2) * torch.randn(
                4, 2, generator=g, dtype=torch.float64
            )
    torch.testing.assert_close(got, want)
    assert seen == [s for s in sigmas for _ in range(k)]


def test_timestep_ladder_passes_t_tensors_and_uses_one_minus_alpha_bar():
    ts, k, eps = [600, 50, 1], 2, 1e-4
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    seen = []

    def score(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    got, traj = langevin.annealed_langevin_sample(
        score, x0, None, k, eps, torch.Generator().manual_seed(6), timesteps=ts, schedule=SCHEDULE,
        return_trajectory=True, progress=False,
    )  # fmt: skip
    assert all(t.dtype == torch.long and t.shape == (3,) for t in seen)
    assert [int(t[0]) for t in seen] == [t for t in ts for _ in range(k)]
    g = torch.Generator().manual_seed(6)
    want, v_last = x0.clone(), 1 - SCHEDULE.alpha_bars[1].item()
    for t in ts:
        for _ in range(k):
            step = eps * (1 - SCHEDULE.alpha_bars[t].item()) / v_last
            want = want + math.sqrt(step) * torch.randn(3, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(got, want)
    assert traj.shape == (4, 3, 2) and torch.equal(traj[-1], got)


def _two_bumps(schedule=None):
    """1-D mixture 0.8 N(-3, 0.3^2) + 0.2 N(3, 0.3^2): well separated, unequal weights."""
    return GaussianMixtureOracle(schedule, [0.8, 0.2], [[-3.0], [3.0]], [0.3, 0.3])


def _heavy_share(x):
    return (x[:, 0] < 0).double().mean().item()


def _smoothed_score(x, sigma):
    """Score of the two bumps convolved with N(0, sigma^2): each component's variance grows by sigma^2."""
    var = 0.09 + sigma**2
    logits = torch.log(torch.tensor([0.8, 0.2], dtype=x.dtype)) - (
        x - torch.tensor([-3.0, 3.0], dtype=x.dtype)
    ) ** 2 / (2 * var)
    resp = torch.softmax(logits, dim=1)
    return (resp * -(x - torch.tensor([-3.0, 3.0], dtype=x.dtype)) / var).sum(1, keepdim=True)


def test_annealing_recovers_mode_weights_that_plain_langevin_misses():
    """Song & Ermon (2019), sec. 3.2.2: a symmetric start stays split 50/50 without annealing."""
    bumps = _two_bumps()
    x = torch.linspace(-5, 5, 11, dtype=torch.float64)[:, None]
    torch.testing.assert_close(_smoothed_score(x, 1e-8), bumps.score(x, 0))
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(1000, 1, generator=g, dtype=torch.float64) * 3
    plain = langevin.langevin_sample(lambda y: bumps.score(y, 0), x0, 5e-3, 300, g, progress=False)
    sigmas = torch.logspace(math.log10(4.0), math.log10(0.05), 15).tolist()
    annealed = langevin.annealed_langevin_sample(_smoothed_score, x0, sigmas, 40, 5e-4, g, progress=False)
    assert abs(_heavy_share(plain) - 0.5) < 0.07
    assert abs(_heavy_share(annealed) - 0.8) < 0.05


def test_annealing_over_ddpm_timesteps_with_an_eps_model():
    bumps = _two_bumps(SCHEDULE)
    score = langevin.score_from_eps(bumps, SCHEDULE)  # the oracle acts as an eps-predicting model
    g = torch.Generator().manual_seed(8)
    x0 = torch.randn(1000, 1, generator=g, dtype=torch.float64)
    # levels geometric in the noise-to-signal ratio sqrt((1 - alpha_bar_t) / alpha_bar_t), from t = T to t = 1
    ts = [1000, 948, 894, 835, 773, 705, 630, 547, 455, 354, 254, 167, 104, 62, 36, 20, 11, 5, 2, 1]
    x = langevin.annealed_langevin_sample(score, x0, None, 30, 2e-5, g, timesteps=ts, schedule=SCHEDULE, progress=False)
    plain = langevin.langevin_sample(lambda y: bumps.score(y, 0), x0, 5e-3, 300, g, progress=False)
    # the finite ladder leaves a small deficit (the chains stop crossing while the bumps still overlap)
    assert 0.72 < _heavy_share(x) < 0.84
    assert _heavy_share(plain) < 0.6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({}, ValueError, "exactly one noise ladder"),
        ({"sigmas": [1.0], "timesteps": [5]}, ValueError, "exactly one noise ladder"),
        ({"sigmas": [0.1, 0.5]}, ValueError, "strictly decreasing"),
        ({"sigmas": [1.0, 0.0]}, ValueError, "> 0"),
        ({"sigmas": []}, ValueError, "non-empty"),
        ({"sigmas": [1.0], "schedule": SCHEDULE}, ValueError, "schedule= goes with timesteps="),
        ({"timesteps": [10, 5]}, TypeError, "needs schedule="),
        ({"timesteps": [10, 20], "schedule": SCHEDULE}, ValueError, "strictly decreasing"),
        ({"timesteps": [1001, 5], "schedule": SCHEDULE}, ValueError, "timesteps must have values in 1..1000"),
        ({"timesteps": [10.0, 5.0], "schedule": SCHEDULE}, TypeError, "timesteps must hold integers"),
        ({"sigmas": [1.0], "eps": 0.0}, ValueError, "eps"),
        ({"sigmas": [1.0], "steps_per_level": 0}, ValueError, "steps_per_level"),
    ],
)
def test_annealed_input_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        langevin.annealed_langevin_sample(_zero_score, torch.zeros(2, 2), progress=False, **kwargs)


def test_generator_must_match_the_start():
    with pytest.raises(TypeError, match="generator"):
        langevin.langevin_sample(_zero_score, torch.zeros(2, 2), 0.1, 1, generator=3, progress=False)


# ----- score_from_eps and the DSM target ------------------------------------------------------
def test_score_from_eps_inverts_tweedie():
    ring = GaussianMixtureOracle.ring_2d(SCHEDULE)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    t = torch.tensor([1, 5, 50, 200, 700, 1000])
    torch.testing.assert_close(langevin.score_from_eps(ring, SCHEDULE)(x, t), ring.score(x, t))
    with pytest.raises(TypeError, match="schedule"):
        langevin.score_from_eps(ring, None)
    with pytest.raises(TypeError, match="model"):
        langevin.score_from_eps(3, SCHEDULE)


def test_dsm_target_is_minus_eps_over_noise_std():
    g = torch.Generator().manual_seed(10)
    x0 = torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 10, 400, 1000])
    x_t = SCHEDULE.q_sample(x0, t, noise)
    a = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(langevin.dsm_target(x_t, x0, a), -noise / (1 - a).sqrt())
    scalar = langevin.dsm_target(x_t[:1], x0[:1], float(a[0]))
    torch.testing.assert_close(scalar, -noise[:1] / (1 - a[0]).sqrt())


def test_dsm_target_errors():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="alpha_bar_t must lie strictly inside"):
        langevin.dsm_target(x, x, 1.0)
    with pytest.raises(ValueError, match="x0 has shape"):
        langevin.dsm_target(x, torch.zeros(2, 3), 0.5)
    with pytest.raises(TypeError, match="x_t must be a floating-point tensor"):
        langevin.dsm_target([0.0], x, 0.5)
