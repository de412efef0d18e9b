"""DDIM/DDPM samplers against closed forms: sub-sequences, the step, the variance law, DDPM as eta = 1."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddim_book import samplers
from ddim_book.oracles import GaussianOracle
from ddim_book.schedules import NoiseSchedule


# ----- timesteps --------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(T=st.integers(1, 2000), data=st.data(), spacing=st.sampled_from(samplers.SPACINGS))
def test_timesteps_invariants(T, data, spacing):
    S = data.draw(st.integers(1, T))
    taus = samplers.timesteps(T, S, spacing)
    assert len(taus) == S
    assert all(isinstance(t, int) for t in taus)
    assert all(a < b for a, b in zip(taus, taus[1:]))
    assert 1 <= taus[0] and taus[-1] <= T
    if spacing == "uniform":
        assert taus[0] == 1
    if spacing == "trailing":
        assert taus[-1] == T
    if S == T:
        assert taus == list(range(1, T + 1))


def test_timesteps_documented_examples():
    uniform = samplers.timesteps(1000, 50, "uniform")
    assert uniform[:3] == [1, 21, 41] and uniform[-1] == 981
    assert samplers.timesteps(1000, 10, "quadratic") == [1, 10, 40, 89, 159, 247, 356, 484, 633, 801]
    trailing = samplers.timesteps(1000, 50, "trailing")
    assert trailing[:2] == [20, 40] and trailing[-1] == 1000
    # the DDIM code's quadratic rule, 0-based: int(c^2) on c in linspace(0, sqrt(0.8 T), S)
    c = torch.linspace(0, math.sqrt(800), 10, dtype=torch.float64)
    assert samplers.timesteps(1000, 10, "quadratic") == [1 + int(v) for v in (c**2).tolist()]


@pytest.mark.parametrize("S", [0, 1001, -3])
def test_timesteps_bad_S(S):
    with pytest.raises(ValueError, match=r"S .*1\.\.1000"):
        samplers.timesteps(1000, S)


def test_timesteps_bad_spacing():
    with pytest.raises(ValueError, match="uniform"):
        samplers.timesteps(1000, 10, "linear")


# ----- one DDIM step --------------------------------------------------------------------------
def _coefficients(a_t, a_prev, eta):
    """Read the linear map (x0, eps, z) -> x_prev off ddim_step by feeding it basis inputs."""
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)

    def step(x0, eps, z):
        x_t = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps  # x_t built from the true noise
        return samplers.ddim_step(x_t, eps, a_t, a_prev, eta=eta, noise=z).item()

    return step(one, zero, zero), step(zero, one, zero), step(zero, zero, one)


@settings(max_examples=200, deadline=None)
@given(
    T=st.integers(2, 1000),
    data=st.data(),
    eta=st.one_of(st.floats(0.0, 1.0), st.just("sigma_hat")),
    cosine=st.booleans(),
)
def test_variance_law_exact(T, data, eta, cosine):
    """DDIM eq. (7)/(12): from x_t ~ q(x_t | x0) with the true eps, x_prev ~ N(sqrt(a_prev) x0, (1 - a_prev) I)
    for every eta and every skip tau_{i-1} < tau_i. Exact (float64 rounding), by reading the linear map."""
    s = NoiseSchedule.cosine(T) if cosine else NoiseSchedule.linear(T, 1e-4, min(0.02 * 1000 / T, 0.5))
    t = data.draw(st.integers(1, T))
    prev = data.draw(st.integers(0, t - 1))
    a_t, a_prev = s.alpha_bars[t].item(), s.alpha_bars[prev].item()
    c_x0, c_eps, c_z = _coefficients(a_t, a_prev, eta)
    assert c_x0 == pytest.approx(math.sqrt(a_prev), rel=1e-9, abs=1e-12)
    if eta == "sigma_hat":
        # the larger variance: the DDPM posterior mean, noise sqrt(1 - a_t / a_prev); variance >= 1 - a_prev
        assert c_z == pytest.approx(math.sqrt(1 - a_t / a_prev), rel=1e-9, abs=1e-12)
        assert c_eps**2 + c_z**2 >= (1 - a_prev) * (1 - 1e-9) - 1e-15
    else:
        assert c_eps**2 + c_z**2 == pytest.approx(1 - a_prev, rel=1e-9, abs=1e-13)
        assert c_z == pytest.approx(samplers.ddim_sigma(a_t, a_prev, eta), rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_variance_law_monte_carlo(eta):
    """The same law by simulation: x_t ~ q(x_t | x0), one step with the true eps and fresh noise."""
    s = NoiseSchedule.linear()
    t, prev, n = 600, 300, 400_000
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((n,), 0.8, dtype=torch.float64)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    x_t = s.q_sample(x0, t, eps)
    x_prev = samplers.ddim_step(x_t, eps, s.alpha_bars[t], s.alpha_bars[prev], eta=eta, generator=g)
    a_prev = s.alpha_bars[prev].item()
    assert x_prev.mean().item() == pytest.approx(math.sqrt(a_prev) * 0.8, abs=5 * math.sqrt((1 - a_prev) / n))
    assert x_prev.var().item() == pytest.approx(1 - a_prev, abs=5 * (1 - a_prev) * math.sqrt(2 / n))


def test_ddim_step_to_alpha_bar_one_returns_x0_prediction():
    x_t, eps = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    a_t = 0.3
    out = samplers.ddim_step(x_t, eps, a_t, 1.0, eta=1.0, noise=torch.randn(4, 3, dtype=torch.float64))
    torch.testing.assert_close(out, (x_t - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t))


def test_ddim_step_eta_one_is_ddpm_posterior():
    """With eta = 1, a DDIM step is a draw from q(x_{t-1} | x_t, x0_hat): DDPM's posterior (DDIM sec. 4.1)."""
    s = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(2)
    x_t = torch.randn(8, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(8, 5, generator=g, dtype=torch.float64)
    z = torch.randn(8, 5, generator=g, dtype=torch.float64)
    for t in (2, 10, 500, 1000):
        x_prev, x0_hat = samplers.ddim_step(
            x_t, eps, s.alpha_bars[t], s.alpha_bars[t - 1], eta=1.0, noise=z, return_x0=True
        )
        mean, var = s.q_posterior(x0_hat, x_t, t)
        torch.testing.assert_close(x_prev, mean + var.sqrt() * z, rtol=1e-12, atol=1e-12)
        # and DDPM Algorithm 2's form of the same mean, eq. (11)
        beta, alpha, ab = s.betas[t].item(), s.alphas[t].item(), s.alpha_bars[t].item()
        ddpm_mean = (x_t - beta / math.sqrt(1 - ab) * eps) / math.sqrt(alpha)
        torch.testing.assert_close(mean, ddpm_mean, rtol=1e-10, atol=1e-12)


def test_ddim_step_clipping_recomputes_eps():
    x_t, eps = torch.full((1, 2), 3.0), torch.full((1, 2), -1.0)
    x_prev, x0 = samplers.ddim_step(x_t, eps, 0.5, 0.8, clip_x0=True, return_x0=True)
    assert x0.max().item() == 1.0
    # deterministic step on the line through x_t and the clipped x0: x_prev = sqrt(.8) x0 + sqrt(.2) eps'
    eps_c = (x_t - math.sqrt(0.5) * x0) / math.sqrt(0.5)
    torch.testing.assert_close(x_prev, math.sqrt(0.8) * x0 + math.sqrt(0.2) * eps_c)


def test_ddim_step_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="eta"):
        samplers.ddim_step(x, x, 0.5, 0.9, eta=-0.1)
    with pytest.raises(TypeError, match="eta"):
        samplers.ddim_step(x, x, 0.5, 0.9, eta="big")
    with pytest.raises(ValueError, match="eps has shape"):
        samplers.ddim_step(x, torch.zeros(2, 4), 0.5, 0.9)
    with pytest.raises(ValueError, match="alpha_bar_prev"):
        samplers.ddim_step(x, x, 0.5, 0.4)
    with pytest.raises(ValueError, match="alpha_bar_t"):
        samplers.ddim_step(x, x, 1.5, 0.4)
    with pytest.raises(ValueError, match=r"eta <= 1\.00"):  # eta_max = sqrt(0.9 * 0.99 / 0.89)
        samplers.ddim_step(x, x, 0.1, 0.99, eta=3.0)


# ----- whole samplers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    s = NoiseSchedule.linear(T=100, beta_start=1e-3, beta_end=0.2)
    oracle = GaussianOracle(s, mean=torch.tensor([1.0, -0.5, 0.25]), std=0.3)
    return s, oracle


def test_ddim_eta_one_full_sequence_equals_ddpm_sample(small):
    s, oracle = small
    x_T = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    ddim = samplers.ddim_sample(oracle, s, x_T, steps=s.T, eta=1.0, generator=g1, progress=False)
    ddpm = samplers.ddpm_sample(oracle, s, x_T, variance="beta_tilde", generator=g2, progress=False)
    torch.testing.assert_close(ddim, ddpm, rtol=1e-9, atol=1e-9)


def test_sigma_hat_full_sequence_equals_ddpm_with_beta(small):
    s, oracle = small
    x_T = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    a = samplers.ddim_sample(oracle, s, x_T, steps=s.T, eta="sigma_hat", generator=g1, progress=False)
    b = samplers.ddpm_sample(oracle, s, x_T, variance="beta", generator=g2, progress=False)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_same_generator_same_samples_and_eta0_is_deterministic(small):
    s, oracle = small
    x_T = torch.randn(8, 3, dtype=torch.float64)
    run = lambda eta, seed: samplers.ddim_sample(  # noqa: E731
        oracle, s, x_T, steps=20, eta=eta, generator=torch.Generator().manual_seed(seed), progress=False
    )
    assert torch.equal(run(0.5, 7), run(0.5, 7))
    assert not torch.equal(run(0.5, 7), run(0.5, 8))
    assert torch.equal(run(0.0, 7), run(0.0, 8))  # eta = 0 draws no noise at all
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    assert torch.equal(
        samplers.ddpm_sample(oracle, s, x_T, generator=g(), progress=False),
        samplers.ddpm_sample(oracle, s, x_T, generator=g(), progress=False),
    )


def test_trajectory_records_every_step(small):
    s, oracle = small
    x_T = torch.randn(4, 3, dtype=torch.float64)
    tr = samplers.ddim_sample(oracle, s, x_T, steps=10, return_trajectory=True, progress=False)
    assert len(tr.xs) == 11 and len(tr.x0_preds) == 10 and tr.timesteps[0] == samplers.timesteps(100, 10)[-1]
    assert tr.xs[0] is x_T and torch.equal(tr.xs[-1], tr.sample) and torch.equal(tr.sample, tr.x0_preds[-1])
    tr = samplers.ddpm_sample(oracle, s, x_T, return_trajectory=True, progress=False)
    assert len(tr.xs) == s.T + 1 and tr.timesteps[0] == s.T and tr.timesteps[-1] == 1


def test_invert_then_generate_error_shrinks_with_steps():
    """With the exact Gaussian oracle, x0 -> x_T -> x0 reconstructs better as S grows (DDIM sec. 5.4)."""
    s = NoiseSchedule.linear()
    oracle = GaussianOracle(s, mean=torch.zeros(4), std=0.5)
    x0 = oracle.sample(32, 0, generator=torch.Generator().manual_seed(10))
    errors = []
    for S in (5, 20, 100, 1000):
        x_T = samplers.ddim_invert(oracle, s, x0, steps=S, progress=False)
        back = samplers.ddim_sample(oracle, s, x_T, steps=S, progress=False)
        errors.append((back - x0).pow(2).mean().sqrt().item())
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.01 * errors[0]
    assert errors[2] / errors[3] > 5  # first order in the step size: 10x the steps, ~10x less error


def test_ddim_converges_to_the_exact_ode_map():
    """For Gaussian data the probability-flow ODE is linear: x_T = m_T + sqrt(v_T / v_0) (x_0 - m_0).
    Encoding and generating with DDIM approach that map at first order in the step size (chapter 7)."""
    s = NoiseSchedule.linear()
    oracle = GaussianOracle(s, mean=torch.tensor([1.0, -0.5, 0.25]), std=0.3)
    x0 = oracle.sample(64, 0, generator=torch.Generator().manual_seed(11))
    (m0, v0), (mT, vT) = oracle.marginal(0), oracle.marginal(s.T)
    exact_T = mT + (vT / v0).sqrt() * (x0 - m0)
    enc, gen = [], []
    for S in (10, 100, 1000):
        enc.append((samplers.ddim_invert(oracle, s, x0, steps=S, progress=False) - exact_T).abs().max().item())
        back = samplers.ddim_sample(oracle, s, exact_T, steps=S, progress=False)
        gen.append((back - x0).abs().max().item())
    for errors in (enc, gen):
        assert errors[0] / errors[1] > 5 and errors[1] / errors[2] > 5, errors
    assert enc[-1] < 0.02 and gen[-1] < 0.01


def test_sampler_input_errors(small):
    s, oracle = small
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"S .*1\.\.100"):
        samplers.ddim_sample(oracle, s, x, steps=101, progress=False)
    with pytest.raises(ValueError, match="eta"):
        samplers.ddim_sample(oracle, s, x, steps=10, eta=-1, progress=False)
    with pytest.raises(ValueError, match="spacing"):
        samplers.ddim_sample(oracle, s, x, steps=10, spacing="log", progress=False)
    with pytest.raises(ValueError, match="variance"):
        samplers.ddpm_sample(oracle, s, x, variance="large", progress=False)
    with pytest.raises(TypeError, match="NoiseSchedule"):
        samplers.ddim_sample(oracle, "linear", x, progress=False)
    with pytest.raises(ValueError, match=r"model output has shape \(4, 2\)"):
        samplers.ddim_sample(lambda x, t: x[:, :2], s, x, steps=5, progress=False)
    with pytest.raises(ValueError, match="model output is on meta"):
        samplers.ddim_sample(lambda x, t: torch.empty(x.shape, device="meta"), s, x, steps=5, progress=False)
    with pytest.raises(TypeError, match="must return a tensor"):
        samplers.ddpm_sample(lambda x, t: None, s, x, progress=False)
    with pytest.raises(ValueError, match="clip_x0"):
        samplers.ddim_sample(oracle, s, x, steps=5, clip_x0=(1, -1), progress=False)


def test_model_receives_one_based_int64_timesteps(small):
    s, oracle = small
    seen = []

    def spy(x, t):
        seen.append(t.clone())
        return oracle(x, t)

    x = torch.randn(2, 3, dtype=torch.float64)
    samplers.ddim_sample(spy, s, x, steps=4, progress=False)
    assert [int(t[0]) for t in seen] == list(reversed(samplers.timesteps(100, 4)))
    assert all(t.dtype == torch.int64 and t.shape == (2,) for t in seen)
    seen.clear()
    samplers.ddim_invert(spy, s, x, steps=4, progress=False)
    assert [int(t[0]) for t in seen] == samplers.timesteps(100, 4)


def test_slerp():
    g = torch.Generator().manual_seed(12)
    z0, z1 = torch.randn(1, 8, 8, generator=g), torch.randn(1, 8, 8, generator=g)
    z0, z1 = z0 / z0.norm(), z1 / z1.norm()
    torch.testing.assert_close(samplers.slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(samplers.slerp(z0, z1, 1.0), z1)
    path = samplers.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 1, 8, 8)
    # constant angular speed: consecutive points are equally far apart in angle
    u = path.flatten(1).double()
    u = u / u.norm(dim=1, keepdim=True)
    angles = torch.arccos((u[1:] * u[:-1]).sum(1).clamp(-1, 1))
    torch.testing.assert_close(angles, angles.mean().expand(6), rtol=1e-4, atol=1e-5)
    # for orthogonal unit vectors the midpoint keeps unit norm, unlike linear interpolation
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert samplers.slerp(e0, e1, 0.5).norm().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="xi must be"):
        samplers.slerp(z0, z1, 1.5)
    with pytest.raises(ValueError, match="shape"):
        samplers.slerp(z0, z1[0], 0.5)


@pytest.fixture(scope="module")
def loaded_tiny(tmp_path_factory):
    """A tiny U-Net saved and loaded like a shipped model (so it carries its training schedule)."""
    from ddim_book.training import Trainer, export_ema, get_config, load_model

    out = tmp_path_factory.mktemp("tiny")
    Trainer(get_config("mnist-tiny", total_steps=1), out, progress=False).train()
    return load_model(export_ema(out / "last.pt", out / "tiny.pt"))


@pytest.mark.parametrize("sample", ["ddim", "ddpm", "invert"])
def test_samplers_refuse_what_they_used_to_accept_silently(loaded_tiny, sample):
    model, schedule = loaded_tiny
    run = {
        "ddim": lambda s, x, **kw: samplers.ddim_sample(model, s, x, steps=2, progress=False, **kw),
        "ddpm": lambda s, x, **kw: samplers.ddpm_sample(model, s, x, progress=False, **kw),
        "invert": lambda s, x, **kw: samplers.ddim_invert(model, s, x, steps=2, progress=False),
    }[sample]
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="NaN or infinite"):
        run(schedule, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="float16 on cpu but the model's weights are torch.float32"):
        run(schedule, x.half())
    with pytest.raises(ValueError, match="float64"):
        run(schedule, x.double())
    with pytest.raises(ValueError, match="trained with the schedule"):
        run(NoiseSchedule.linear(500), x)
    with pytest.raises(ValueError, match="trained with the schedule"):
        run(NoiseSchedule.cosine(1000), x)
    if sample != "invert":
        with pytest.raises(TypeError, match="generator must be a torch.Generator"):
            run(schedule, x, generator=123)
    assert run(schedule, x).shape == x.shape  # the matching inputs still work


def test_quadratic_spacing_matches_the_ddim_code():
    """The DDIM code's quadratic grid, (np.linspace(0, sqrt(0.8 T), S) ** 2).astype(int) + 1, wherever it is
    strictly increasing (where it repeats values, ours pushes the repeats up by one instead)."""
    import numpy as np

    checked = 0
    for T in (50, 500, 999, 1000, 4000):
        for S in range(2, T + 1):
            reference = (np.linspace(0, np.sqrt(0.8 * T), S) ** 2).astype(int) + 1
            if (np.diff(reference) > 0).all():
                assert samplers.timesteps(T, S, "quadratic") == reference.tolist(), (T, S)
                checked += 1
    assert checked > 100
    assert samplers.timesteps(1000, 100, "quadratic")[-1] == 801


def test_trailing_spacing_rounds_half_up():
    """tau_i = round(i T / S) with halves rounded up, against exact rational arithmetic."""
    from fractions import Fraction

    for T, S in [(1000, 16), (1000, 3), (1000, 7), (999, 10), (10, 4), (1000, 1000)]:
        expected = [int(Fraction(i * T, S) + Fraction(1, 2)) for i in range(1, S + 1)]
        assert samplers.timesteps(T, S, "trailing") == expected


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_step_is_eq_11_with_sigma_z(variance):
    """samplers.ddpm_step (posterior mean of eq. (7) at x0_hat, plus sigma_t z) against DDPM eq. (11) written out."""
    from ddim_book.samplers import ddpm_step

    s = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(5)
    x_t, eps, z = (torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64) for _ in range(3))
    for t in (1000, 500, 2, 1):
        beta, alpha, ab = s.betas[t], s.alphas[t], s.alpha_bars[t]
        sigma2 = beta if variance == "beta" else beta * (1 - s.alpha_bars[t - 1]) / (1 - ab)
        want = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt() + (sigma2.sqrt() * z if t > 1 else 0)
        torch.testing.assert_close(ddpm_step(s, x_t, eps, t, z, variance), want)
    with pytest.raises(ValueError, match="noise"):
        ddpm_step(s, x_t, eps, 5)
    assert torch.equal(ddpm_step(s, x_t, eps, 1), ddpm_step(s, x_t, eps, 1, z))  # no noise at t = 1
