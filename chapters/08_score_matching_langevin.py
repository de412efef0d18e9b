# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 8 — Score matching and Langevin dynamics
#
# DDPM was introduced as a latent-variable model, but Ho et al. (2020) point out that with the
# $\epsilon$-parameterisation it is also a *score-based* model: the network estimates the gradient of
# the log-density of the noisy data, and the sampler resembles Langevin dynamics run over a ladder of
# noise levels (Song & Ermon 2019, "NCSN"). This chapter builds that second point of view from the ground up.
#
# In this chapter you will be able to
#
# - say what the score $\nabla_x \log p(x)$ is and why it can be used without the normalising constant;
# - sample with Langevin dynamics, and compute the bias a finite step size leaves;
# - explain why plain Langevin dynamics gets the weights of separated modes wrong, and how annealing over
#   the DDPM noise levels repairs them;
# - prove that denoising score matching (Vincent 2011) has the same minimiser as explicit score matching;
# - read $L_\text{simple}$ as weighted denoising score matching and the DDPM sampler as an annealed,
#   Langevin-like predictor.
#
# Everything is checked against the exact oracles of `ddim_book.oracles`, whose scores are known in closed form,
# so no network is needed. Langevin sampling lives in `ddim_book.langevin`.

# %%

import matplotlib.pyplot as plt
import sympy as sp
import torch

from ddim_book import langevin, samplers
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
# the 2-D computations are tiny: one thread is as fast, and the seeded numbers then do not depend on the core count
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)
ring = GaussianMixtureOracle.ring_2d(schedule)

# %% [markdown]
# ## 1. The score
#
# The **score** of a density $p$ on $\mathbb{R}^d$ is the vector field $s(x) = \nabla_x \log p(x)$. It points
# towards higher density, and it does not see the normalising constant: if $p = f / Z$, then
# $\nabla \log p = \nabla \log f - \nabla \log Z = \nabla \log f$, since $Z$ does not depend on $x$. That is what
# makes scores attractive for models whose $Z$ is intractable.
#
# For a mixture $p = \sum_k w_k \mathcal{N}(m_k, s_k^2)$ the score is the responsibility-weighted average of the
# component scores, $\nabla \log p(x) = \sum_k r_k(x)\,\bigl(-(x - m_k)/s_k^2\bigr)$ with
# $r_k(x) = w_k \mathcal{N}(x; m_k, s_k^2) / p(x)$. This is the formula behind `GaussianMixtureOracle.score`.
# We let sympy confirm both facts for a two-component mixture in one dimension.

# %%
# NBVAL_CHECK_OUTPUT
x = sp.Symbol("x", real=True)
Z = sp.Symbol("Z", positive=True)
w1, s1, s2 = sp.symbols("w_1 s_1 s_2", positive=True)
m1, m2 = sp.symbols("m_1 m_2", real=True)


def normal_pdf(x, m, s):
    return sp.exp(-((x - m) ** 2) / (2 * s**2)) / sp.sqrt(2 * sp.pi * s**2)


f = w1 * normal_pdf(x, m1, s1) + (1 - w1) * normal_pdf(x, m2, s2)
score = sp.diff(sp.log(f), x)
responsibilities = [w1 * normal_pdf(x, m1, s1) / f, (1 - w1) * normal_pdf(x, m2, s2) / f]
weighted = sum(r * (-(x - m) / s**2) for r, m, s in zip(responsibilities, (m1, m2), (s1, s2)))
assert sp.simplify(score - weighted) == 0
assert sp.simplify(sp.diff(sp.log(f / Z), x) - score) == 0  # the normaliser drops out
print("d/dx log p = sum_k r_k(x) * (-(x - m_k) / s_k^2):", sp.simplify(score - weighted) == 0)
print("d/dx log(p / Z) - d/dx log p =", sp.simplify(sp.diff(sp.log(f / Z), x) - score))

# %% [markdown]
# Numerically, the oracle's closed-form score should be the gradient of its own log-density. We compare it with
# the gradient that autograd takes of `log_prob`, at random points and at several noise levels $t$
# (the oracle's $q_t$; $t = 0$ is the data).

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(0)
points = 2.5 * torch.randn(500, 2, generator=gen, dtype=torch.float64)
for t in (0, 10, 100, 500):
    pts = points.clone().requires_grad_(True)
    (autograd_score,) = torch.autograd.grad(ring.log_prob(pts, t).sum(), pts)
    err = (ring.score(points, t) - autograd_score).abs().max().item()
    print(f"t = {t:3d}: max |oracle.score - grad log_prob| < 1e-9: {err < 1e-9}")

# %% [markdown]
# ## 2. Langevin dynamics
#
# Langevin dynamics turns a score into samples (Song & Ermon 2019, sec. 2.2). From any starting point, repeat
#
# $$x \leftarrow x + \frac{\delta}{2} \nabla_x \log p(x) + \sqrt{\delta}\, z, \qquad z \sim \mathcal{N}(0, I).$$
#
# The drift climbs the density, the noise keeps the chain from collapsing onto the modes. As $\delta \to 0$ this is
# the Euler–Maruyama discretisation of the stochastic differential equation
# $dx = \tfrac12 \nabla \log p(x)\,dt + dW$, whose stationary distribution is exactly $p$: in the Fokker–Planck
# equation $\partial_t \rho = -\nabla\cdot(\tfrac12 \rho \nabla \log p) + \tfrac12 \Delta \rho$ the right-hand side
# vanishes at $\rho = p$, because $p\,\nabla \log p = \nabla p$. Sympy checks this for the mixture above.
#
# A finite step leaves a bias. For a Gaussian target $\mathcal{N}(m, s^2)$ the update is linear,
# $x' = (1 - \tfrac{\delta}{2s^2})(x - m) + m + \sqrt{\delta} z$, and its stationary variance $v$ solves
# $v = (1 - \tfrac{\delta}{2 s^2})^2 v + \delta$.

# %%
# NBVAL_CHECK_OUTPUT
fokker_planck = -sp.diff(f * score / 2, x) + sp.diff(f, x, 2) / 2
assert sp.simplify(fokker_planck) == 0
delta, s, v = sp.symbols("delta s v", positive=True)
v_stationary = sp.solve(sp.Eq(v, (1 - delta / (2 * s**2)) ** 2 * v + delta), v)[0]
closed_form = s**2 / (1 - delta / (4 * s**2))
assert sp.simplify(v_stationary - closed_form) == 0
assert sp.limit(v_stationary, delta, 0) == s**2
print("Fokker-Planck right-hand side at rho = p:", sp.simplify(fokker_planck))
print("stationary variance of discrete Langevin:", sp.simplify(v_stationary), "=", closed_form)
print("series in delta:", sp.series(closed_form, delta, 0, 3))

# %% [markdown]
# So the stationary variance is too large by the factor $1/(1 - \delta / (4 s^2))$: small steps relative to the
# target's variance are needed. We run `langevin.langevin_sample` on $\mathcal{N}(1, 0.5^2)$ with 20,000 chains
# and three step sizes and compare the empirical variance with the formula.

# %%
# NBVAL_CHECK_OUTPUT
gauss = GaussianOracle(None, mean=[1.0], std=0.5)
print(" delta   empirical mean   empirical var   s^2/(1 - delta/(4 s^2))   s^2")
for step in (0.01, 0.1, 0.4):
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(20000, 1, generator=gen, dtype=torch.float64)
    chains = langevin.langevin_sample(lambda y: gauss.score(y, 0), start, step, 400, gen, progress=False)
    predicted = 0.25 / (1 - step / (4 * 0.25))
    print(f"{step:6.2f}   {chains.mean().item():14.3f}   {chains.var().item():13.3f}   {predicted:23.3f}   0.250")

# %% [markdown]
# On the book's 2-D ring of eight Gaussians (`GaussianMixtureOracle.ring_2d`, each component with standard
# deviation 0.15) we start a few chains from standard normal noise and follow them with the exact data score
# `ring.score(x, 0)`. The arrows show the score field (normalised in length), the grey lines the density contours.

# %%
gen = torch.Generator().manual_seed(2)
start = torch.randn(2000, 2, generator=gen, dtype=torch.float64)
plain_ring, paths = langevin.langevin_sample(
    lambda y: ring.score(y, 0), start, 2e-3, 300, gen, return_trajectory=True, progress=False
)

grid = torch.linspace(-2.6, 2.6, 121, dtype=torch.float64)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
flat = torch.stack([gx.flatten(), gy.flatten()], dim=1)
log_density = ring.log_prob(flat, 0).reshape(gx.shape)
coarse = torch.linspace(-2.4, 2.4, 17, dtype=torch.float64)
cx, cy = torch.meshgrid(coarse, coarse, indexing="xy")
field = ring.score(torch.stack([cx.flatten(), cy.flatten()], dim=1), 0)
field = field / field.norm(dim=1, keepdim=True)

fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.5))
for ax in axes:
    ax.contour(gx, gy, log_density.exp(), levels=6, colors="0.7", linewidths=0.6)
    ax.set_aspect("equal")
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(-2.6, 2.6)
axes[0].quiver(cx.flatten(), cy.flatten(), field[:, 0], field[:, 1], color="0.4", scale=30, width=0.004)
for i in range(8):
    axes[0].plot(paths[:, i, 0], paths[:, i, 1], lw=0.8)
    axes[0].plot(paths[0, i, 0], paths[0, i, 1], "k.", ms=4)
axes[0].set_title("score field and 8 Langevin chains")
axes[1].scatter(plain_ring[:, 0], plain_ring[:, 1], s=1, alpha=0.5)
axes[1].set_title("2000 chains after 300 steps (delta = 2e-3)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Why plain Langevin dynamics is not enough
#
# The chains above look right, but look at where they came from: each chain slid into the mode nearest to its
# starting point and stayed there. Between two components of the ring the density falls to about $10^{-3}$ of its
# peak, and Langevin dynamics with a small step crosses such a valley only after an astronomically long time.
# The share of samples in each mode is therefore set by the *starting* distribution, not by the mixture weights.
# Song & Ermon (2019, sec. 3.2) name this slow mixing, next to a second problem of learned scores:
# in low-density regions, where there is no training data, the estimated score is unreliable, and that is
# exactly where the chains start.
#
# To make the failure visible we give the ring unequal weights: the even-numbered components weigh 5, the odd
# ones 1, so the heavy half of the ring holds $20/24 = 0.833$ of the mass. The starting noise is rotationally
# symmetric, so plain Langevin cannot know that.
#
# **Annealed Langevin dynamics** (Song & Ermon 2019, Algorithm 1) runs the chains on a ladder of noisy versions of
# the data, from very noisy to clean. For DDPM's forward process the ladder is $q_t$ for decreasing $t$: at large
# $t$ the modes are merged into one broad bump, so the chains can move freely and distribute themselves by the
# weights; the weights of a mixture do not change with $t$ (each component is noised separately), so as the
# bumps separate the chains are already in the right proportions. At level $i$ the step is
# $\alpha_i = \epsilon \cdot v_i / v_L$, proportional to the level's noise variance $v_i = 1 - \bar\alpha_{t_i}$,
# which keeps the ratio of drift to noise in each step the same at every level.
#
# Which levels? Dividing $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ by $\sqrt{\bar\alpha_t}$ shows that
# $q_t$ is, up to that rescaling, the data plus Gaussian noise of standard deviation
# $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ — NCSN's noise scale. (The rescaling also turns NCSN's rule
# $\alpha_i \propto \sigma_i^2$ into our $\alpha_i \propto \bar\alpha_t \sigma_t^2 = 1 - \bar\alpha_t$.) Like NCSN we space the
# scales geometrically: we ask for 40 values of $\sigma$ from $\sigma_T \approx 158$ down to $\sigma_1 = 0.01$ and
# take, for each, the DDPM timestep whose $\sigma_t$ is closest (two small ones map to the same $t$).
#
# We compare four samplers that all use the exact score (or the equivalent exact $\epsilon$):
# plain Langevin at $t = 0$ (500 steps), annealed Langevin over that ladder (25 steps per level,
# 975 score evaluations in all), DDPM ancestral sampling (1000 steps), and DDIM (50 steps).

# %%
weights = torch.tensor([5.0, 1.0] * 4)
lopsided = GaussianMixtureOracle(schedule, weights, ring.means, torch.full((8,), 0.15))
alpha_bars_t = schedule.alpha_bars[1:]  # t = 1..T
ncsn_sigma = ((1 - alpha_bars_t) / alpha_bars_t).sqrt()
wanted = torch.logspace(ncsn_sigma[-1].log10().item(), -2, 40, dtype=torch.float64)
closest = (ncsn_sigma[None, :].log() - wanted[:, None].log()).abs().argmin(dim=1) + 1
ladder = torch.unique(closest).flip(0)  # strictly decreasing timesteps
print(f"{len(ladder)} levels: t =", ladder.tolist())


def mode_shares(samples):
    nearest = torch.cdist(samples.double(), lopsided.means).argmin(dim=1)
    return torch.bincount(nearest, minlength=8).double() / samples.shape[0]


gen = torch.Generator().manual_seed(3)
start = torch.randn(1000, 2, generator=gen, dtype=torch.float64)
results = {
    "plain Langevin": langevin.langevin_sample(lambda y: lopsided.score(y, 0), start, 2e-3, 500, gen, progress=False),
    "annealed Langevin": langevin.annealed_langevin_sample(
        lopsided.score,
        start,
        steps_per_level=25,
        eps=1e-4,
        generator=gen,
        timesteps=ladder,
        schedule=schedule,
        progress=False,
    ),
    "DDPM (1000 steps)": samplers.ddpm_sample(
        lopsided, schedule, start, variance="beta", generator=gen, progress=False
    ),
    "DDIM (50 steps)": samplers.ddim_sample(lopsided, schedule, start, steps=50, progress=False),
}

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'':20s}" + "".join(f"  k={k}" for k in range(8)) + "   heavy half")
target = lopsided.weights
print(f"{'target weights':20s}" + "".join(f" {w:.3f}" for w in target.tolist()) + f"   {target[::2].sum():.3f}")
for name, samples in results.items():
    shares = mode_shares(samples)
    print(f"{name:20s}" + "".join(f" {w:.3f}" for w in shares.tolist()) + f"   {shares[::2].sum():.3f}")

# %% [markdown]
# Plain Langevin splits the samples roughly evenly (a little more than half end up in the heavy modes, because
# near the centre the heavy modes dominate the score). The annealed samplers recover the weights, to within the
# Monte Carlo error of 1000 samples (about $\pm 0.012$ on the heavy share). What is left for annealed Langevin is a
# small bias of the finite ladder: the chains stop crossing between modes at a level where neighbouring
# components still overlap a little, and there the share of the *region* around a heavy mode is a bit smaller
# than its weight. More levels, or more steps per level, shrink it.

# %%
log_lopsided = lopsided.log_prob(flat, 0).reshape(gx.shape)
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
for ax, name in zip(axes, ["plain Langevin", "annealed Langevin", "DDPM (1000 steps)"]):
    ax.contour(gx, gy, log_lopsided.exp(), levels=6, colors="0.7", linewidths=0.6)
    pts = results[name]
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
    ax.set_title(f"{name}: heavy {mode_shares(pts)[::2].sum():.2f}")
    ax.set_aspect("equal")
    ax.set_xlim(-2.3, 2.3)
    ax.set_ylim(-2.3, 2.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Denoising score matching
#
# To use Langevin dynamics on real data we need a model $s_\theta(x) \approx \nabla \log q_t(x)$. Fitting it by
# **explicit score matching**, $J_\text{ESM}(\theta) = \mathbb{E}_{q_t}\|s_\theta(x) - \nabla \log q_t(x)\|^2$,
# needs the unknown score. Vincent (2011) showed that the **denoising** objective
#
# $$J_\text{DSM}(\theta) = \mathbb{E}_{x_0 \sim q_0,\ x_t \sim q(x_t\mid x_0)}
#     \|s_\theta(x_t) - \nabla_{x_t} \log q(x_t \mid x_0)\|^2$$
#
# differs from it only by a constant: $J_\text{DSM} = J_\text{ESM} + C$ with $C$ independent of $\theta$, so both have
# the same minimiser, and the target of $J_\text{DSM}$ is known. For DDPM's kernel
# $q(x_t\mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t} x_0, (1-\bar\alpha_t) I)$ it is
# $\nabla_{x_t} \log q(x_t \mid x_0) = -(x_t - \sqrt{\bar\alpha_t} x_0)/(1 - \bar\alpha_t) = -\epsilon / \sqrt{1-\bar\alpha_t}$.
#
# The proof: expand both squares. The $\|s_\theta\|^2$ terms agree; the terms free of $\theta$ go into $C$;
# the cross terms agree because of the **key identity**
#
# $$\mathbb{E}_{q_t}\bigl[s_\theta(x)^\top \nabla \log q_t(x)\bigr]
#   = \int s_\theta^\top \nabla q_t \,dx
#   = \int\!\!\int q_0(x_0)\, s_\theta^\top \nabla_x q(x \mid x_0) \,dx_0\,dx
#   = \mathbb{E}_{x_0, x_t}\bigl[s_\theta(x_t)^\top \nabla_{x_t} \log q(x_t \mid x_0)\bigr],$$
#
# using $q_t(x) = \int q_0(x_0)\, q(x \mid x_0)\,dx_0$ and $\nabla q = q \nabla \log q$ twice. Hence
# $C = \mathbb{E}\|\nabla \log q(x_t\mid x_0)\|^2 - \mathbb{E}\|\nabla \log q_t\|^2$.
#
# Sympy proves it in one dimension for Gaussian data $x_0 \sim \mathcal{N}(m, s^2)$ and a whole family of
# candidate scores, the quadratics $s_\theta(x) = c_0 + c_1 x + c_2 x^2$. With $x_0 = m + s z_1$ and
# $x_t = a x_0 + \sqrt{u}\, z_2$ ($a = \sqrt{\bar\alpha_t}$, $u = 1 - \bar\alpha_t$, $z_1, z_2$ independent standard
# normals), every expectation is a polynomial in Gaussian moments $\mathbb{E} z^k = (k-1)!!$ for even $k$, 0 for odd $k$.

# %%
# NBVAL_CHECK_OUTPUT
z1, z2 = sp.symbols("z_1 z_2", real=True)
a, u = sp.symbols("a u", positive=True)
m = sp.Symbol("m", real=True)
c0, c1, c2 = sp.symbols("c_0 c_1 c_2", real=True)


def gaussian_expectation(expr):
    """E[expr] for a polynomial in independent standard normals z_1, z_2."""

    def moment(k):
        return sp.factorial2(k - 1) if k % 2 == 0 else 0

    poly = sp.Poly(sp.expand(expr), z1, z2)
    return sp.expand(sum(coef * moment(i) * moment(j) for (i, j), coef in poly.terms()))


x0_ = m + s * z1
xt_ = a * x0_ + sp.sqrt(u) * z2
marginal_var = a**2 * s**2 + u
true_score = -(xt_ - a * m) / marginal_var  # q_t = N(a m, a^2 s^2 + u)
dsm_target = -(xt_ - a * x0_) / u  # = -z_2 / sqrt(u)
candidate = c0 + c1 * xt_ + c2 * xt_**2
J_esm = gaussian_expectation((candidate - true_score) ** 2)
J_dsm = gaussian_expectation((candidate - dsm_target) ** 2)
C = sp.simplify(J_dsm - J_esm)
assert all(sp.diff(C, c) == 0 for c in (c0, c1, c2))  # the gap does not depend on the candidate
assert sp.simplify(C - (1 / u - 1 / marginal_var)) == 0
cross_marginal = gaussian_expectation(candidate * true_score)
cross_conditional = gaussian_expectation(candidate * dsm_target)
assert sp.simplify(cross_marginal - cross_conditional) == 0  # the key identity
print("J_DSM - J_ESM =", C, "  (= 1/u - 1/(a^2 s^2 + u), free of c_0, c_1, c_2)")
print(
    "key identity E[s * grad log q_t] = E[s * grad log q(x_t|x_0)]:",
    sp.simplify(cross_marginal - cross_conditional) == 0,
)

# %% [markdown]
# Now the same statement on the 2-D ring, by Monte Carlo with 200,000 pairs $(x_0, x_t)$. The DSM target comes from
# `langevin.dsm_target`, the exact score from the oracle. For several candidate score functions we estimate
# $J_\text{DSM}$ and $J_\text{ESM}$ on the same samples; the difference should be the same constant $C$ for all of them,
# equal to $d/(1-\bar\alpha_t) - \mathbb{E}\|\nabla \log q_t\|^2$ ($d = 2$), and the exact score should have the smallest
# DSM loss — which is then $C$ itself, the irreducible part of the denoising objective.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'t':>4s}  {'candidate score':28s} {'J_DSM':>8s} {'J_ESM':>8s} {'J_DSM - J_ESM':>14s}   Monte Carlo error")
for t in (50, 300):
    gen = torch.Generator().manual_seed(10 + t)
    x0_samples = ring.sample(200_000, 0, gen)
    noise = torch.randn(x0_samples.shape, generator=gen, dtype=torch.float64)
    x_t = schedule.q_sample(x0_samples, t, noise)
    a_t = schedule.alpha_bars[t].item()
    target = langevin.dsm_target(x_t, x0_samples, a_t)
    exact = ring.score(x_t, t)
    candidates = {
        "exact score": exact,
        "0.8 x exact": 0.8 * exact,
        "exact + (0.3, 0)": exact + torch.tensor([0.3, 0.0], dtype=torch.float64),
        "score of q at 2t": ring.score(x_t, 2 * t),
        "zero": torch.zeros_like(exact),
    }
    theory = 2 / (1 - a_t) - (exact**2).sum(1).mean().item()
    for name, cand in candidates.items():
        per_sample = ((cand - target) ** 2).sum(1)
        j_dsm, j_esm = per_sample.mean().item(), ((cand - exact) ** 2).sum(1).mean().item()
        std_err = per_sample.std().item() / len(per_sample) ** 0.5
        print(f"{t:4d}  {name:28s} {j_dsm:8.3f} {j_esm:8.3f} {j_dsm - j_esm:14.3f}   +- {std_err:.3f}")
    print(f"{t:4d}  {'C = d/(1-abar) - E|score|^2':28s} {'':8s} {'':8s} {theory:14.3f}")

# %% [markdown]
# The difference $J_\text{DSM} - J_\text{ESM}$ is the same for every candidate, and agrees with the predicted $C$
# within the Monte Carlo error of $J_\text{DSM}$ (large at small $t$, where the target $-\epsilon/\sqrt{1-\bar\alpha_t}$
# is large). The exact score has the smallest DSM loss, and every other candidate pays exactly its
# $J_\text{ESM}$ on top. Note how
# large $C$ is next to the differences between candidates: the DSM loss of even a perfect model stays far from zero,
# which is why a training curve of $L_\text{simple}$ flattens at a floor rather than at 0 (chapter 3 computes that floor).
#
# ## 5. Back to DDPM and DDIM
#
# **$L_\text{simple}$ is weighted denoising score matching.** Write the network as a score model through
# Tweedie's formula (chapter 3), $\epsilon_\theta(x_t, t) = -\sqrt{1-\bar\alpha_t}\, s_\theta(x_t, t)$. The DSM target is
# $-\epsilon/\sqrt{1 - \bar\alpha_t}$, so
# $\|\epsilon - \epsilon_\theta\|^2 = (1 - \bar\alpha_t)\,\|s_\theta(x_t, t) - \nabla_{x_t} \log q(x_t\mid x_0)\|^2$:
# DDPM's eq. (14) is DSM summed over the noise levels with weight $\lambda_t = 1 - \bar\alpha_t$, the variance of the
# noise at level $t$. NCSN (Song & Ermon 2019, sec. 4.2) chose the same weight, $\lambda(\sigma) = \sigma^2$, for the same
# reason: it makes every level's term of order one.
#
# **The DDPM sampler is an annealed, Langevin-like predictor.** Substituting the score into DDPM eq. (11) gives
# $x_{t-1} = (x_t + \beta_t\, s_\theta(x_t, t)) / \sqrt{\alpha_t} + \sigma_t z$. Expanded to first order in $\beta_t$,
# that is $x_t + \beta_t\, s_\theta + \tfrac{\beta_t}{2} x_t + \sigma_t z$: a step up the score of the current level,
# a slight expansion that undoes the forward process's shrinking by $\sqrt{\alpha_t}$, and fresh noise — one step
# per level, moving down the ladder, where annealed Langevin takes many steps per level to equilibrate.
# The drift is twice that of a Langevin step with the same noise variance ($\delta = \beta_t$ would give
# $\tfrac{\beta_t}{2} s$), because DDPM has to transport the samples from $q_t$ to $q_{t-1}$ within the step, not just keep them in $q_t$.
#
# **DDIM is the probability-flow ODE.** With $\eta = 0$ the noise term disappears and DDIM eq. (12) becomes an
# Euler step of the ODE of DDIM eq. (13)/(14) (chapter 7), which moves samples deterministically while keeping
# every marginal $q_t$ (chapter 7, section 2, proves it from the continuity equation) — the table above shows it
# placing the mass correctly with only 50 score evaluations.
#
# Sympy confirms both rewritings.

# %%
# NBVAL_CHECK_OUTPUT
abar, beta = sp.symbols("alphabar_t beta_t", positive=True)
eps, s_theta, xt = sp.symbols("epsilon s_theta x_t", real=True)
eps_theta = -sp.sqrt(1 - abar) * s_theta
dsm_residual = s_theta - (-eps / sp.sqrt(1 - abar))
assert sp.simplify((eps - eps_theta) ** 2 - (1 - abar) * dsm_residual**2) == 0
ddpm_mean = (xt - beta / sp.sqrt(1 - abar) * eps_theta) / sp.sqrt(1 - beta)  # DDPM eq. (11), alpha_t = 1 - beta_t
assert sp.simplify(ddpm_mean - (xt + beta * s_theta) / sp.sqrt(1 - beta)) == 0
first_order = sp.series(ddpm_mean, beta, 0, 2).removeO()
assert sp.simplify(first_order - (xt + beta * (s_theta + xt / 2))) == 0
print("||eps - eps_theta||^2 = (1 - alphabar_t) * ||s_theta - grad log q(x_t|x_0)||^2:", True)
print("DDPM mean with eps_theta = -sqrt(1-alphabar) s_theta:", sp.simplify(ddpm_mean))
print("to first order in beta_t:", sp.collect(sp.expand(first_order), beta))

# %% [markdown]
# And numerically: on one batch, $L_\text{simple}$ of the exact $\epsilon$-oracle equals $1 - \bar\alpha_t$ times
# the DSM loss of the exact score, sample by sample; and `langevin.score_from_eps` turns the $\epsilon$-oracle back
# into the score.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(20)
x0_samples = ring.sample(5000, 0, gen)
for t in (10, 100, 700):
    noise = torch.randn(x0_samples.shape, generator=gen, dtype=torch.float64)
    x_t = schedule.q_sample(x0_samples, t, noise)
    a_t = schedule.alpha_bars[t].item()
    l_simple = ((noise - ring(x_t, t)) ** 2).sum(1)
    dsm = ((ring.score(x_t, t) - langevin.dsm_target(x_t, x0_samples, a_t)) ** 2).sum(1)
    t_batch = torch.full((5000,), t, dtype=torch.long)
    back = langevin.score_from_eps(ring, schedule)(x_t, t_batch)
    same = torch.allclose(l_simple, (1 - a_t) * dsm, rtol=1e-10)
    print(
        f"t = {t:3d}: L_simple = {l_simple.mean().item():.4f}, (1 - abar) * J_DSM = {(1 - a_t) * dsm.mean().item():.4f}, "
        f"per-sample equal: {same}, score_from_eps = score: {torch.allclose(back, ring.score(x_t, t), rtol=1e-10)}"
    )

# %% [markdown]
# ## Summary
#
# - The score $\nabla \log p$ ignores the normalising constant; for a Gaussian mixture it is the
#   responsibility-weighted average of the component scores.
# - Langevin dynamics $x \leftarrow x + \tfrac{\delta}{2}\nabla\log p + \sqrt\delta z$ samples $p$ as $\delta \to 0$;
#   a finite step inflates a Gaussian's variance by $1/(1 - \delta/(4s^2))$.
# - With separated modes, plain Langevin keeps the proportions of its starting distribution (0.59 instead of 0.83
#   on the lopsided ring); annealing over the noise levels $q_t$, whose mixture weights never change, fixes that.
# - Denoising score matching has the explicit score-matching loss plus a constant, so its minimiser is the true score
#   of $q_t$, while its target $-\epsilon/\sqrt{1-\bar\alpha_t}$ is known; the constant is the loss floor.
# - $L_\text{simple}$ is DSM with weight $1-\bar\alpha_t$; $\epsilon = -\sqrt{1-\bar\alpha_t}\,\nabla\log q_t$;
#   DDPM sampling is an annealed Langevin-like predictor; DDIM with $\eta = 0$ follows the probability-flow ODE (chapter 7).
#
# ## Exercises
#
# **8.1 (checked).** Write one Langevin step, `my_langevin_step(x, score, step_size, noise)`, returning
# $x + \tfrac{\delta}{2}\,\text{score} + \sqrt{\delta}\,\text{noise}$. The check compares it with
# `ddim_book.langevin.langevin_step`.

# %%
from ddim_book.exercises import ch08

# def my_langevin_step(x, score, step_size, noise):
#     return ...
#
# ch08.check_langevin_step(my_langevin_step)
ch08.check_langevin_step(langevin.langevin_step)

# %% [markdown]
# **8.2 (checked).** Write the denoising score-matching target for DDPM's kernel,
# `my_dsm_target(x_t, x0, alpha_bar_t)` $= \nabla_{x_t}\log q(x_t \mid x_0)$, for a float or a per-sample
# tensor `alpha_bar_t`. The check compares it with `ddim_book.langevin.dsm_target`.

# %%
# def my_dsm_target(x_t, x0, alpha_bar_t):
#     return ...
#
# ch08.check_dsm_target(my_dsm_target)
ch08.check_dsm_target(langevin.dsm_target)

# %% [markdown]
# **8.3 (pen and paper).** Song & Ermon choose the step $\alpha_i \propto \sigma_i^2$. Suppose the level-$i$ density
# is roughly Gaussian with variance $\sigma_i^2$, so that $\|\nabla \log q_i\| \approx \sqrt{d}/\sigma_i$ at typical
# points. Show that the ratio between the drift $\tfrac{\alpha_i}{2}\nabla \log q_i$ and the noise
# $\sqrt{\alpha_i}\, z$ of one step is then the same at every level, and compute it in terms of $\epsilon$ and
# $\sigma_L$. What goes wrong at the noisiest level if the step is instead held fixed at $\epsilon$?
#
# **8.4 (pen and paper).** Repeat the sympy derivation of section 4 for the candidate $s_\theta(x) = c_1 x$ by hand,
# and find the $c_1$ that minimises $J_\text{DSM}$. Check that it equals the slope $-1/(a^2 s^2 + u)$ of the true
# score of $q_t$ — the minimiser of the denoising loss is the score of the *noisy* marginal, not of the data.
