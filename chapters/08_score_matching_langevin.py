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
# - derive Hyvärinen's score-matching objective by integration by parts, say which boundary condition it needs,
#   and explain why its Jacobian trace costs $d$ backward passes;
# - replace the trace by random projections (sliced score matching) and compute the variance this adds;
# - explain, with the manifold hypothesis and the low-density regions where samplers start, why scores are learned
#   for noised data rather than for the data themselves;
# - prove that denoising score matching (Vincent 2011) has the same minimiser as explicit score matching;
# - read $L_\text{simple}$ as weighted denoising score matching and the DDPM sampler as an annealed,
#   Langevin-like predictor.
#
# Everything is checked against the exact oracles of `ddim_book.oracles`, whose scores are known in closed form,
# so no trained network is needed (sections 4 and 5 time and probe small untrained ones). Langevin sampling lives
# in `ddim_book.langevin`.

# %%
import functools
import math
from time import perf_counter

import matplotlib.pyplot as plt
import sympy as sp
import torch
from torch import nn

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
# exactly where the chains start (section 6 measures it, once sections 4 and 5 have said how a score is learned).
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
# $\delta_i = \delta_0 \cdot v_i / v_L$ (NCSN's $\alpha_i$, renamed so that neither $\alpha$ nor $\epsilon$ changes meaning),
# proportional to the level's noise variance $v_i = 1 - \bar\alpha_{t_i}$,
# which keeps the ratio of drift to noise in each step the same at every level.
#
# Which levels? Dividing $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ by $\sqrt{\bar\alpha_t}$ shows that
# $q_t$ is, up to that rescaling, the data plus Gaussian noise of standard deviation
# $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ — NCSN's noise scale. (The rescaling also turns NCSN's rule
# $\delta_i \propto \sigma_i^2$ into our $\delta_i \propto \bar\alpha_t \sigma_t^2 = 1 - \bar\alpha_t$.) Like NCSN we space the
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
# ## 4. Fitting a score: Hyvärinen's score matching
#
# Sections 2 and 3 ran Langevin dynamics with the exact score. For real data we have samples, not $p$, and want
# a model $s_\theta(x) \approx \nabla \log p(x)$. The natural objective compares the two fields where the data are,
#
# $$J_\text{SM}(\theta) = \tfrac12\, \mathbb{E}_{p}\,\|s_\theta(x) - \nabla \log p(x)\|^2,$$
#
# one half of the **explicit score-matching** loss $J_\text{ESM}$ that section 7 returns to. It cannot be computed:
# its target is the unknown score. Hyvärinen (2005, "Estimation of non-normalized statistical models by score
# matching", Theorem 1) removed the target by integration by parts. Expand the square:
# $\tfrac12\mathbb{E}\|s_\theta\|^2 - \mathbb{E}[s_\theta^\top \nabla\log p] + \tfrac12\mathbb{E}\|\nabla \log p\|^2$. The last term
# does not depend on $\theta$. In the middle one $p\,\nabla \log p = \nabla p$, so in one dimension
#
# $$\mathbb{E}_p[s_\theta\, (\log p)'] = \int s_\theta\, p'\,dx = \bigl[s_\theta\, p\bigr]_{-\infty}^{\infty} - \int s_\theta'\, p\,dx .$$
#
# The boundary term vanishes when $p(x)\,s_\theta(x) \to 0$ as $|x| \to \infty$ — Hyvärinen's regularity
# condition, which also asks that $p$ be differentiable and the expectations finite. In $d$ dimensions the same
# step is taken in each coordinate $x_i$ for the component $s_{\theta,i}$, and the $d$ derivatives
# $\partial s_{\theta,i} / \partial x_i$ add up to the trace of the model's Jacobian $\nabla_x s_\theta$ (a $d\times d$ matrix):
#
# $$J_\text{SM}(\theta) = \mathbb{E}_p\Bigl[\operatorname{tr} \nabla_x s_\theta(x) + \tfrac12 \|s_\theta(x)\|^2\Bigr]
#   + \tfrac12\,\mathbb{E}_p\|\nabla \log p(x)\|^2 .$$
#
# The bracket involves only the model, and its expectation is estimated by an average over the data: no target is
# needed. Sympy checks the identity for the linear model $s_\theta(x) = a x + b$ on two densities, computing each
# side as its own integral: the explicit objective (with $\nabla \log p$ taken from $p$) and Hyvärinen's form (with
# the model's own derivative $s_\theta' = a$). For a Gaussian $\mathcal{N}(m_1, s_1^2)$ the whole explicit objective,
# constant included, is integrated; for the two-component mixture of section 1, whose $(\log f)'$ is not a polynomial,
# the cross term is integrated as $\int s_\theta\, f'\,dx$ after checking $f\,(\log f)' = f'$. Every integral is
# sympy's $\int x^k \mathcal{N}(x; M, S^2)\,dx$, evaluated at each component's parameters. A third density shows
# why the boundary condition matters: for the exponential density $c\, e^{-c x}$ with rate $c > 0$ on $[0, \infty)$ the
# boundary term at $0$ survives, and the two sides differ by exactly $p(0)\, s_\theta(0)$.

# %%
# NBVAL_CHECK_OUTPUT
a_lin, b_lin = sp.symbols("a b", real=True)
model_1d = a_lin * x + b_lin  # the candidate score s_theta(x) = a x + b
hyvarinen_integrand = sp.diff(model_1d, x) + model_1d**2 / 2  # tr(grad s_theta) + |s_theta|^2 / 2 in 1-D
M, S = sp.Symbol("M", real=True), sp.Symbol("S", positive=True)


@functools.cache
def normal_moment(k):
    """int x^k N(x; M, S^2) dx over the real line, by sympy."""
    return sp.simplify(sp.integrate(x**k * normal_pdf(x, M, S), (x, -sp.oo, sp.oo)))


def normal_integral(poly, mean, std):
    """int poly(x) N(x; mean, std^2) dx for a polynomial poly in x."""
    terms = sp.Poly(sp.expand(poly), x).terms()
    return sp.expand(sum(c * normal_moment(k).subs({M: mean, S: std}) for (k,), c in terms))


# a Gaussian N(m_1, s_1^2): the explicit objective in full, the constant, and Hyvarinen's form
psi = sp.simplify(sp.diff(sp.log(normal_pdf(x, m1, s1)), x))
explicit = normal_integral((model_1d - psi) ** 2 / 2, m1, s1)
constant = normal_integral(psi**2 / 2, m1, s1)
hyvarinen = normal_integral(hyvarinen_integrand, m1, s1)
assert sp.simplify(explicit - (hyvarinen + constant)) == 0
best = sp.solve([sp.diff(hyvarinen, a_lin), sp.diff(hyvarinen, b_lin)], [a_lin, b_lin], dict=True)[0]
assert sp.simplify(best[a_lin] - sp.diff(psi, x)) == 0 and sp.simplify(best[b_lin] - psi.subs(x, 0)) == 0

# the mixture f = w_1 N(m_1, s_1^2) + (1 - w_1) N(m_2, s_2^2) of section 1
components = [(w1, m1, s1), (1 - w1, m2, s2)]
assert sp.cancel(f * sp.diff(sp.log(f), x) - sp.diff(f, x)) == 0  # f (log f)' = f'
explicit_mix, hyvarinen_mix = 0, 0
for weight, mk, sk in components:
    g = normal_pdf(x, mk, sk)
    cross_and_square = sp.cancel((model_1d**2 / 2 * g - model_1d * sp.diff(g, x)) / g)  # a polynomial in x
    explicit_mix += weight * normal_integral(cross_and_square, mk, sk)
    hyvarinen_mix += weight * normal_integral(hyvarinen_integrand, mk, sk)
assert sp.simplify(explicit_mix - hyvarinen_mix) == 0
best_mix = sp.solve([sp.diff(hyvarinen_mix, a_lin), sp.diff(hyvarinen_mix, b_lin)], [a_lin, b_lin], dict=True)[0]
mean_mix = sum(weight * normal_integral(x, mk, sk) for weight, mk, sk in components)
var_mix = sum(weight * normal_integral(x**2, mk, sk) for weight, mk, sk in components) - mean_mix**2

# the exponential density on [0, oo): the boundary term p(0) s_theta(0) does not vanish
rate = sp.Symbol("c", positive=True)
p_exp = rate * sp.exp(-rate * x)
psi_exp = sp.simplify(sp.diff(sp.log(p_exp), x))


def exp_integral(poly):
    return sp.expand(sp.integrate(sp.expand(poly * p_exp), (x, 0, sp.oo)))


boundary_gap = sp.simplify(exp_integral(model_1d**2 / 2 - model_1d * psi_exp) - exp_integral(hyvarinen_integrand))
assert sp.simplify(boundary_gap - (p_exp * model_1d).subs(x, 0)) == 0

print("Gaussian: explicit - Hyvarinen form =", sp.simplify(explicit - hyvarinen), "= E[psi^2] / 2, free of a and b")
print("          minimiser:", best, "= the true score", psi)
print("mixture:  explicit - constant = Hyvarinen form:", sp.simplify(explicit_mix - hyvarinen_mix) == 0)
moment_matched = (
    sp.simplify(best_mix[a_lin] + 1 / var_mix) == 0 and sp.simplify(best_mix[b_lin] - mean_mix / var_mix) == 0
)
assert moment_matched
print("          minimiser is a = -1 / Var_f[x], b = E_f[x] / Var_f[x]:", moment_matched)
print("exponential on [0, oo): explicit - constant - Hyvarinen form =", boundary_gap, "= p(0) s_theta(0)")

# %% [markdown]
# Within the linear family, score matching on the mixture returns the Gaussian with the mixture's mean and
# variance: the best straight line through a curved score. On a Gaussian it returns the true score.
#
# Now in $d = 5$ dimensions, by Monte Carlo. The data are $\mathcal{N}(m, \Sigma)$, whose score is
# $-\Sigma^{-1}(x - m)$, and the model is $s_\theta(x) = A x + b$ with $\theta = (A, b)$, 30 numbers.
# `jacobian_trace` computes $\operatorname{tr}\nabla_x s_\theta$ the way one would for any network, with one
# backward pass per output coordinate. The Hyvärinen objective is quadratic in $\theta$, so one Newton step
# (gradient and Hessian by autograd) lands exactly on the minimiser of the sample average. That minimiser is
# $A = -\hat\Sigma^{-1}$, $b = \hat\Sigma^{-1}\hat m$ with the sample moments (set the gradient of the
# quadratic to zero), so it should approach the true parameters at the Monte Carlo rate $1/\sqrt{n}$.


# %%
# NBVAL_CHECK_OUTPUT
def jacobian_trace(score_fn, x, create_graph=False):
    """(s(x), tr d s / d x) for a batch x (B, d): one backward pass per output coordinate, d in all."""
    x = x.detach().requires_grad_(True)
    s_x = score_fn(x)
    trace = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[1]):
        (row,) = torch.autograd.grad(s_x[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
        trace = trace + row[:, i]
    return s_x, trace


d_fit = 5
gen = torch.Generator().manual_seed(30)
root = (
    torch.eye(d_fit, dtype=torch.float64) + torch.randn(d_fit, d_fit, generator=gen, dtype=torch.float64) / d_fit**0.5
)
cov_fit, mean_fit = root @ root.T, torch.randn(d_fit, generator=gen, dtype=torch.float64)
A_true, b_true = -torch.linalg.inv(cov_fit), torch.linalg.solve(cov_fit, mean_fit)


def linear_score(theta):
    A, b = theta[: d_fit**2].reshape(d_fit, d_fit), theta[d_fit**2 :]
    return lambda y: y @ A.T + b


def fit_linear_score(objective):
    """Minimise a quadratic objective of theta = (A, b) with one Newton step from 0; returns (A, b)."""
    theta0 = torch.zeros(d_fit**2 + d_fit, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(objective, theta0)
    hess = torch.autograd.functional.hessian(objective, theta0)
    theta = theta0 - torch.linalg.solve(hess, grad)
    return theta[: d_fit**2].reshape(d_fit, d_fit), theta[d_fit**2 :]


def rel_err(estimate, truth):
    return ((estimate - truth).norm() / truth.norm()).item()


fit_data = {
    n: mean_fit + torch.randn(n, d_fit, generator=gen, dtype=torch.float64) @ root.T for n in (1_000, 10_000, 100_000)
}
print("      n   |A - A_true|/|A_true|   |b - b_true|/|b_true|   equals the sample-moment minimiser")
for n, xs in fit_data.items():

    def hyvarinen_objective(theta, xs=xs):
        s_x, trace = jacobian_trace(linear_score(theta), xs, create_graph=True)
        return (trace + 0.5 * (s_x**2).sum(1)).mean()

    A_fit, b_fit = fit_linear_score(hyvarinen_objective)
    prec_hat = torch.linalg.inv(torch.cov(xs.T, correction=0))
    same = torch.allclose(A_fit, -prec_hat, atol=1e-9) and torch.allclose(b_fit, prec_hat @ xs.mean(0), atol=1e-9)
    assert same
    print(f"{n:7d}   {rel_err(A_fit, A_true):21.4f}   {rel_err(b_fit, b_true):21.4f}   {same}")

# %% [markdown]
# The fitted parameters are exactly the sample-moment solution, and their error shrinks with $n$ at roughly the
# Monte Carlo rate $1/\sqrt{n}$ (each row is a single draw, so the rows scatter about it). Minimising Hyvärinen's
# objective, which never saw the true score, recovers it.
#
# **Why this is costly for a network.** Reverse-mode autograd returns one vector–Jacobian product
# $u^\top \nabla_x s_\theta$ per backward pass. The trace needs the $d$ diagonal entries, one from each row, hence
# $d$ backward passes per batch — and training needs them with `create_graph=True`, so that the trace can itself be
# differentiated with respect to $\theta$. For MNIST, $d = 784$. The next cell times the exact trace against a
# single backward pass (what section 5 will need instead) for a small multilayer perceptron
# $\mathbb{R}^d \to \mathbb{R}^d$ with two hidden layers, of width 32 and 256, on a batch of 16. The times depend on
# the machine and its load, so the cell's output is not compared when the book is tested; the ratio is what to read.


# %%
def time_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start_time = perf_counter()
        fn()
        best = min(best, perf_counter() - start_time)
    return 1e3 * best


print(f"{'':>5s}" + "".join(f"   width {w:3d}: exact    one pass   ratio" for w in (32, 256)))
for d_net in (2, 16, 128, 784):
    row = f"d={d_net:<3d}"
    for width in (32, 256):
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Linear(d_net, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, d_net)
        )
        batch = torch.randn(16, d_net)
        probe = torch.randn(16, d_net)

        def one_pass(net=net, batch=batch, probe=probe):
            y = batch.detach().requires_grad_(True)
            return torch.autograd.grad((net(y) * probe).sum(), y)

        exact_ms = time_ms(lambda net=net, batch=batch: jacobian_trace(net, batch), 1 if d_net > 200 else 3)
        pass_ms = time_ms(one_pass, 5)
        row += f"   {exact_ms:12.1f} ms {pass_ms:6.2f} ms {exact_ms / pass_ms:7.0f}"
    print(row)

# %% [markdown]
# The cost of the exact trace grows in proportion to $d$ while one backward pass stays cheap, so the ratio grows
# roughly like $d$ (at small $d$ fixed overheads blur it). At $d = 784$ every training step would make 784 backward
# passes where one does the rest of the work. This is why score matching stayed with small models and low dimensions until the trace was
# replaced by something cheaper: random projections (section 5) or noise (section 7).
#
# ## 5. Sliced score matching
#
# A trace can be estimated without computing a single diagonal entry. If $v$ is a random vector with $\mathbb{E}[v v^\top] = I$, then
# $\mathbb{E}_v[v^\top J v] = \operatorname{tr}(J\,\mathbb{E}[v v^\top]) = \operatorname{tr} J$ (Hutchinson 1989, "A stochastic
# estimator of the trace of the influence matrix for Laplacian smoothing splines"). And $v^\top J v$ costs **one**
# backward pass: the gradient of the scalar $v^\top s_\theta(x)$ with respect to $x$ is $J^\top v$
# (with $J = \nabla_x s_\theta$, $J_{ij} = \partial s_{\theta,i}/\partial x_j$), and $v^\top J^\top v = v^\top J v$.
#
# **Sliced score matching** (Song, Garg, Shi & Ermon 2019, arXiv:1905.07088) compares the projections
# $v^\top s_\theta$ and $v^\top \nabla \log p$ instead of the full vectors, and integrates by parts as in section 4:
#
# $$J_\text{SSM}(\theta) = \mathbb{E}_{v}\,\mathbb{E}_{p}\Bigl[v^\top \nabla_x s_\theta(x)\, v + \tfrac12 \bigl(v^\top s_\theta(x)\bigr)^2\Bigr] + \text{const}.$$
#
# Since $\mathbb{E}_v (v^\top s)^2 = s^\top \mathbb{E}[vv^\top] s = \|s\|^2$, the second term may be replaced by
# $\tfrac12\|s_\theta\|^2$; the paper calls this variant SSM-VR (variance reduction). SSM-VR is Hyvärinen's
# objective with the trace replaced by its one-pass estimate.
#
# How noisy is the estimate? Take $v$ with independent components, $\mathbb{E} v_i = \mathbb{E} v_i^3 = 0$,
# $\mathbb{E} v_i^2 = 1$ and $\mathbb{E} v_i^4 = \kappa$ ($\kappa = 3$ for Gaussian $v$, $\kappa = 1$ for random signs $\pm 1$,
# Rademacher). Sympy computes the mean and the variance of $v^\top J v$ for a general $3 \times 3$ matrix $J$ from these
# moments, and compares them with $\operatorname{tr}J$ and with
# $\operatorname{Var} = \operatorname{tr}(J^2) + \|J\|_F^2 + (\kappa - 3)\sum_i J_{ii}^2$.

# %%
# NBVAL_CHECK_OUTPUT
J_sym = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"J_{i + 1}{j + 1}", real=True))
v_sym = sp.Matrix(sp.symbols("v_1:4", real=True))
kappa = sp.Symbol("kappa", positive=True)


def projection_expectation(expr):
    """E[expr] for a polynomial in independent v_i with moments 1, 0, 1, 0, kappa (orders 0 to 4)."""
    moment = {0: 1, 1: 0, 2: 1, 3: 0, 4: kappa}
    poly = sp.Poly(sp.expand(expr), *v_sym)
    return sp.expand(sum(c * sp.Mul(*(moment[k] for k in powers)) for powers, c in poly.terms()))


quadratic_form = (v_sym.T * J_sym * v_sym)[0, 0]
hutchinson_mean = projection_expectation(quadratic_form)
hutchinson_var = sp.expand(projection_expectation(quadratic_form**2) - hutchinson_mean**2)
frobenius2 = sum(entry**2 for entry in J_sym)
claimed_var = (J_sym * J_sym).trace() + frobenius2 + (kappa - 3) * sum(J_sym[i, i] ** 2 for i in range(3))
assert sp.expand(hutchinson_mean - J_sym.trace()) == 0
assert sp.expand(hutchinson_var - claimed_var) == 0
print("E[v^T J v] = tr J:", sp.expand(hutchinson_mean - J_sym.trace()) == 0)
print("Var[v^T J v] = tr(J^2) + |J|_F^2 + (kappa - 3) sum_i J_ii^2:", sp.expand(hutchinson_var - claimed_var) == 0)
print(
    "Rademacher (kappa = 1), J = I:",
    hutchinson_var.subs(kappa, 1).subs({e: int(i % 4 == 0) for i, e in enumerate(J_sym)}),
)
print(
    "Gaussian   (kappa = 3), J = I:",
    hutchinson_var.subs(kappa, 3).subs({e: int(i % 4 == 0) for i, e in enumerate(J_sym)}),
)

# %% [markdown]
# Random signs are never worse than Gaussian directions: $\kappa = 1$ is the smallest fourth moment a variable with $\mathbb{E}v^2 = 1$ can have,
# and it removes the diagonal's contribution, which dominates for a score-like Jacobian (near $-I/\sigma^2$ for
# a Gaussian). Now numerically, on a score-like network $s_\theta(x) = -x + \text{MLP}(x)$ in $d = 16$ at one
# point: the exact trace (16 backward passes) against 20,000 single projections. The 20,000 projections go through
# the network as one batch, each row getting its own direction — one backward pass serves them all.


# %%
# NBVAL_CHECK_OUTPUT
def projected_jacobian(score_fn, x, v, create_graph=False):
    """(s(x), v^T (d s / d x) v) per row of x (B, d), with ONE backward pass: grad_x (v . s(x)) = J^T v."""
    x = x.detach().requires_grad_(True)
    s_x = score_fn(x)
    (jt_v,) = torch.autograd.grad((s_x * v).sum(), x, create_graph=create_graph)
    return s_x, (jt_v * v).sum(1)


torch.manual_seed(40)
d_net = 16
mlp = nn.Sequential(nn.Linear(d_net, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, d_net)).double()


def score_like(y):
    return -y + mlp(y)


gen = torch.Generator().manual_seed(41)
point = torch.randn(1, d_net, generator=gen, dtype=torch.float64)
_, exact_trace = jacobian_trace(score_like, point)
J_num = torch.autograd.functional.jacobian(lambda y: score_like(y[None])[0], point[0])
n_proj = 20_000
print(f"exact trace (16 backward passes): {exact_trace.item():.3f}")
print("projections   mean of v^T J v   +- standard error   variance   tr(J^2) + |J|_F^2 + (kappa - 3) sum J_ii^2")
for name, k in (("Gaussian", 3), ("Rademacher", 1)):
    v_num = torch.randn(n_proj, d_net, generator=gen, dtype=torch.float64)
    v_num = v_num.sign() if name == "Rademacher" else v_num
    _, estimates = projected_jacobian(score_like, point.expand(n_proj, d_net), v_num)
    predicted = (J_num @ J_num).trace() + (J_num**2).sum() + (k - 3) * (J_num.diagonal() ** 2).sum()
    std_err = estimates.std().item() / n_proj**0.5
    print(
        f"{name:12s}  {estimates.mean().item():15.3f}   +- {std_err:13.3f}   {estimates.var().item():8.3f}   {predicted.item():8.3f}"
    )

# %% [markdown]
# Both averages agree with the exact trace within their standard error, and the variances agree with the formula.
# One Gaussian projection has a standard deviation of $\sqrt{32} \approx 5.7$ here (about $\sqrt{2d}$, since
# $J \approx -I$); random signs bring it down to $0.2$, because for a nearly diagonal Jacobian almost all of the
# variance comes from the diagonal. The exact trace has no such noise, but it costs $d$ passes.
#
# Does the extra noise hurt the fit? Back to the Gaussian toy of section 4: the same Newton step now minimises the
# sample average of SSM and of SSM-VR, with one Rademacher direction per sample.

# %%
# NBVAL_CHECK_OUTPUT
print("      n   objective (passes per batch)        |A - A_true|/|A_true|   |b - b_true|/|b_true|")
gen = torch.Generator().manual_seed(42)
for n, xs in fit_data.items():
    signs = torch.randint(0, 2, xs.shape, generator=gen).double() * 2 - 1

    def exact(theta, xs=xs):
        s_x, trace = jacobian_trace(linear_score(theta), xs, create_graph=True)
        return (trace + 0.5 * (s_x**2).sum(1)).mean()

    def sliced(theta, xs=xs, signs=signs):
        s_x, quad = projected_jacobian(linear_score(theta), xs, signs, create_graph=True)
        return (quad + 0.5 * (s_x * signs).sum(1) ** 2).mean()

    def sliced_vr(theta, xs=xs, signs=signs):
        s_x, quad = projected_jacobian(linear_score(theta), xs, signs, create_graph=True)
        return (quad + 0.5 * (s_x**2).sum(1)).mean()

    for name, objective in (("Hyvarinen, exact trace (5)", exact), ("SSM (1)", sliced), ("SSM-VR (1)", sliced_vr)):
        A_fit, b_fit = fit_linear_score(objective)
        print(f"{n:7d}   {name:30s}   {rel_err(A_fit, A_true):21.4f}   {rel_err(b_fit, b_true):21.4f}")

# %% [markdown]
# All three converge to the true parameters as $n$ grows. The projections add Monte Carlo noise on top of the
# sampling of $x$: SSM, which projects both terms, has several times the error of the exact objective at the same
# $n$; SSM-VR, which projects only the trace term, stays within about a factor of two of it. In exchange each
# evaluation costs one backward pass instead of $d$.
#
# ## 6. Where the data are: the manifold hypothesis and low-density regions
#
# Sections 4 and 5 fit the score of the *data* density. Song & Ermon (2019, arXiv:1907.05600, sec. 3) explain why
# that is the wrong target for a sampler, next to the slow mixing of section 3.
#
# **The manifold hypothesis** (their sec. 3.1). Real data such as images lie near a set of much lower dimension than
# the $d$ pixels. On such a set the density is not a smooth positive function on $\mathbb{R}^d$: $\nabla \log p$ is not
# defined off it, and the integration by parts of section 4, which needs a differentiable $p$, has nothing to stand
# on. We make a ring of width $w$ with the book's oracle: 96 elongated Gaussian components along a circle of radius
# 1.5, each with standard deviation 0.1 along the circle and $w$ across it. At the point $(1.2, 0)$, 0.3 inside the
# circle, the data score grows like $0.3/w^2$ as the ring thins towards a curve; the score of the noised density
# $q_t$, whose components have covariance $\bar\alpha_t C_k + (1 - \bar\alpha_t) I$, stays bounded by about
# $0.3/(1 - \bar\alpha_t)$ however thin the data are, and $q_t$ is positive everywhere.


# %%
# NBVAL_CHECK_OUTPUT
def thin_ring(width, k=96, radius=1.5, along=0.1):
    angle = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    outward = torch.stack([angle.cos(), angle.sin()], dim=1)
    tangent = torch.stack([-angle.sin(), angle.cos()], dim=1)
    covs = along**2 * tangent[:, :, None] * tangent[:, None, :] + width**2 * outward[:, :, None] * outward[:, None, :]
    return GaussianMixtureOracle(schedule, torch.ones(k), radius * outward, covs)


inside_point = torch.tensor([[1.2, 0.0]], dtype=torch.float64)
print("ring width w   |score of data| at (1.2, 0)   0.3 / w^2   |score of q_t|: t = 20     t = 100")
for width in (0.1, 0.03, 0.01, 0.003):
    oracle = thin_ring(width)
    norms = [oracle.score(inside_point, t).norm().item() for t in (0, 20, 100)]
    print(f"{width:12.3f}   {norms[0]:27.4g}   {0.3 / width**2:9.4g}   {norms[1]:21.4g}   {norms[2]:8.4g}")
for t in (20, 100):
    print(f"bound 0.3 / (1 - alpha_bar_t) at t = {t}: {0.3 / (1 - schedule.alpha_bars[t].item()):.4g}")

# %% [markdown]
# **Low-density regions** (their sec. 3.2.1). The score-matching loss is an expectation under the data, so it weighs a
# model's errors by the data density: where $p$ is tiny the loss does not see them. That is where the sampler starts.
# On the book's ring of section 3, the disc $\|x\| < 0.75$ in the middle holds a quarter of the standard normal starting
# points ($1 - e^{-0.75^2/2} = 0.245$) and essentially none of the data: the nearest component mean is 0.75 away, five
# standard deviations. Take the exact score and flip its sign inside the disc. On 100,000 training samples its
# loss $J_\text{ESM} = \mathbb{E}\|\tilde s - \nabla\log p\|^2$ is zero — no sample falls in the disc — yet Langevin
# dynamics with it (as in section 2: step $2\cdot10^{-3}$, 300 steps) collects the chains that start in the disc at
# the origin, where they stay. We apply the same flip to the score of $q_t$ and measure it on samples of $q_t$.

# %%
# NBVAL_CHECK_OUTPUT
disc = 0.75
gen = torch.Generator().manual_seed(50)
print("   t   share of q_t in the disc   J_ESM of the flipped score (100,000 samples)")
for t in (0, 20, 100, 300):
    samples_t = ring.sample(100_000, t, gen)
    inside = samples_t.norm(dim=1) < disc
    flip_loss = (4 * (ring.score(samples_t, t) ** 2).sum(1) * inside).mean().item()  # |-s - s|^2 = 4 |s|^2
    print(f"{t:4d}   {inside.double().mean().item():24.2e}   {flip_loss:12.4f}")


def flipped_data_score(y):
    exact_score = ring.score(y, 0)
    return torch.where(y.norm(dim=1, keepdim=True) < disc, -exact_score, exact_score)


start = torch.randn(1000, 2, generator=gen, dtype=torch.float64)
trapped = langevin.langevin_sample(flipped_data_score, start, 2e-3, 300, gen, progress=False)
print(f"share of chains starting in the disc:        {(start.norm(dim=1) < disc).double().mean().item():.3f}")
print(f"share ending in the disc, flipped score:     {(trapped.norm(dim=1) < disc).double().mean().item():.3f}")
print(f"share ending in the disc, exact score (sec. 2): {(plain_ring.norm(dim=1) < disc).double().mean().item():.3f}")

# %% [markdown]
# At $t = 0$ and $t = 20$ not one training sample falls in the disc, and the flipped score is as good as the exact one
# by its loss; from $t = 100$ on the noised data reach the disc and the loss sees the flip. A quarter of the chains
# end in the disc with the flipped score, none with the exact one.
#
# The figure shows where the training samples of $q_t$ are (blue) and where the sampler starts (orange, the same
# standard normal points in every panel), with the disc dashed. Look at the left panel: the data give the loss no
# reason to get the score right anywhere near the orange points. At $t = 100$ a few samples reach the disc, and at
# $t = 300$ the noised data cover the starting points as densely as the starts themselves.

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 3.2))
gen = torch.Generator().manual_seed(51)
starts_shown = start[:600]
for ax, t in zip(axes, (0, 100, 300)):
    samples_t = ring.sample(1500, t, gen)
    ax.scatter(samples_t[:, 0], samples_t[:, 1], s=1, alpha=0.5, color="tab:blue", label="training samples of $q_t$")
    ax.scatter(starts_shown[:, 0], starts_shown[:, 1], s=1, alpha=0.5, color="tab:orange", label="sampler starts")
    ax.add_patch(plt.Circle((0, 0), disc, fill=False, ls="--", color="k", lw=0.8))
    share = (samples_t.norm(dim=1) < disc).double().mean().item()
    ax.set_title(f"t = {t}: {share:.0%} of $q_t$ in the disc")
    ax.set_aspect("equal")
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(-2.6, 2.6)
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=2, markerscale=6, frameon=False)
plt.tight_layout(rect=(0, 0.1, 1, 1))
plt.show()

# %% [markdown]
# Noise repairs all three problems at once. The noised density $q_t$ is smooth and positive on all of
# $\mathbb{R}^d$ for every $t \ge 1$, so its score is defined everywhere and section 4's integration by parts holds.
# At large $t$ its samples cover the region where the sampler starts, so a model trained on $q_t$ is accurate there.
# And the annealing of section 3 hands the chains down the ladder of noise levels: at each level they are where
# that level's training data were, until at small $t$ they sit on the data themselves. What remains is to fit the
# score of every $q_t$ cheaply — without a trace at all.

# %% [markdown]
# ## 7. Denoising score matching
#
# Section 6 asks for a model $s_\theta(x) \approx \nabla \log q_t(x)$ of the *noised* densities. Hyvärinen's objective
# could fit it, at the price of a Jacobian trace (or its sliced estimate) per sample; because $q_t$ is made by adding
# Gaussian noise, there is a cheaper way that needs no derivative of the model at all. Fitting by
# **explicit score matching**, $J_\text{ESM}(\theta) = \mathbb{E}_{q_t}\|s_\theta(x) - \nabla \log q_t(x)\|^2$
# (twice section 4's $J_\text{SM}$, with $p = q_t$), needs the unknown score. Vincent (2011) showed that the
# **denoising** objective
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
# the cross terms agree because of the **key identity** (its first step is section 4's $p\,\nabla\log p = \nabla p$;
# where Hyvärinen then integrates by parts, Vincent writes $\nabla q_t$ as an average of $\nabla q(x \mid x_0)$)
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
# ## 8. Back to DDPM and DDIM
#
# **$L_\text{simple}$ is weighted denoising score matching.** Write the network as a score model through
# Tweedie's formula (chapter 3), $\epsilon_\theta(x_t, t) = -\sqrt{1-\bar\alpha_t}\, s_\theta(x_t, t)$. The DSM target is
# $-\epsilon/\sqrt{1 - \bar\alpha_t}$, so
# $\|\epsilon - \epsilon_\theta\|^2 = (1 - \bar\alpha_t)\,\|s_\theta(x_t, t) - \nabla_{x_t} \log q(x_t\mid x_0)\|^2$:
# DDPM's eq. (14) is DSM summed over the noise levels with weight $w_t = 1 - \bar\alpha_t$, the variance of the
# noise at level $t$. NCSN (Song & Ermon 2019, sec. 4.2) chose the same weight, $w(\sigma) = \sigma^2$ (the paper's $\lambda(\sigma)$), for the same
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
# - Hyvärinen's score matching replaces the unknown target by integration by parts:
#   $\tfrac12\mathbb{E}\|s_\theta - \nabla\log p\|^2 = \mathbb{E}[\operatorname{tr}\nabla_x s_\theta + \tfrac12\|s_\theta\|^2] + \text{const}$,
#   provided $p\,s_\theta \to 0$ at the boundary (on $[0, \infty)$ the identity is off by $p(0)s_\theta(0)$). Minimising it
#   recovers a Gaussian's score; the trace costs $d$ backward passes, several hundred times one pass at $d = 784$.
# - Sliced score matching estimates the trace by $v^\top \nabla_x s_\theta\, v$ with $\mathbb{E}[vv^\top] = I$, one backward
#   pass per projection, unbiased with variance $\operatorname{tr}(J^2) + \|J\|_F^2 + (\kappa - 3)\sum_i J_{ii}^2$; random
#   signs ($\kappa = 1$) are the quietest choice.
# - Data near a low-dimensional set have no score off it, and the score-matching loss ignores regions without data, such
#   as the middle of the ring where a quarter of the sampler's starting points lie; noised densities $q_t$ have a score
#   everywhere and, at large $t$, training data where the sampler starts.
# - Denoising score matching has the explicit score-matching loss plus a constant, so its minimiser is the true score
#   of $q_t$, while its target $-\epsilon/\sqrt{1-\bar\alpha_t}$ is known; the constant is the loss floor.
# - $L_\text{simple}$ is DSM with weight $1-\bar\alpha_t$; $\epsilon = -\sqrt{1-\bar\alpha_t}\,\nabla\log q_t$;
#   DDPM sampling is an annealed Langevin-like predictor; DDIM with $\eta = 0$ follows the probability-flow ODE (chapter 7).
#
# ## Exercises
#
# **8.1 (code).** Write one Langevin step, `my_langevin_step(x, score, step_size, noise)`, returning
# $x + \tfrac{\delta}{2}\,\text{score} + \sqrt{\delta}\,\text{noise}$. Fill in the exercise cell and run it:
# `ch08.check_langevin_step` compares your function with `ddim_book.langevin.langevin_step`. The solution cell after it
# holds a worked answer.

# %%
from ddim_book.exercises import ch08


# %% tags=["exercise"]
def my_langevin_step(x, score, step_size, noise):
    return ...


result = ch08.check_langevin_step(my_langevin_step)


# %% tags=["solution"]
def my_langevin_step(x, score, step_size, noise):
    return x + 0.5 * step_size * score + step_size**0.5 * noise


result = ch08.check_langevin_step(my_langevin_step)

# %% [markdown]
# **8.2 (code).** Write the denoising score-matching target for DDPM's kernel,
# `my_dsm_target(x_t, x0, alpha_bar_t)` $= \nabla_{x_t}\log q(x_t \mid x_0)$, for a float or a per-sample
# tensor `alpha_bar_t`. `ch08.check_dsm_target` compares it with `ddim_book.langevin.dsm_target`.


# %% tags=["exercise"]
def my_dsm_target(x_t, x0, alpha_bar_t):
    return ...


result = ch08.check_dsm_target(my_dsm_target)


# %% tags=["solution"]
def my_dsm_target(x_t, x0, alpha_bar_t):
    a = torch.as_tensor(alpha_bar_t, dtype=x_t.dtype, device=x_t.device)
    if a.ndim == 1:  # one alpha_bar per sample: broadcast over the data dimensions
        a = a.reshape(-1, *([1] * (x_t.ndim - 1)))
    return -(x_t - a.sqrt() * x0) / (1 - a)  # q(x_t | x0) = N(sqrt(a) x0, (1 - a) I)


result = ch08.check_dsm_target(my_dsm_target)

# %% [markdown]
# **8.3 (pen and paper).** Song & Ermon choose the step $\delta_i \propto \sigma_i^2$ (their $\alpha_i$). Suppose the level-$i$ density
# is roughly Gaussian with variance $\sigma_i^2$, so that $\|\nabla \log q_i\| \approx \sqrt{d}/\sigma_i$ at typical
# points. Show that the ratio between the drift $\tfrac{\delta_i}{2}\nabla \log q_i$ and the noise
# $\sqrt{\delta_i}\, z$ of one step is then the same at every level, and compute it in terms of $\delta_0$ and
# $\sigma_L$. What goes wrong at the noisiest level if the step is instead held fixed at $\delta_0$? Worked solution:
# appendix C.
#
# **8.4 (pen and paper).** Repeat the sympy derivation of section 7 for the candidate $s_\theta(x) = c_1 x$ by hand,
# and find the $c_1$ that minimises $J_\text{DSM}$. Check that it equals the slope $-1/(a^2 s^2 + u)$ of the true
# score of $q_t$ — the minimiser of the denoising loss is the score of the *noisy* marginal, not of the data. Worked
# solution: appendix C.
#
# **8.5 (code, then pen and paper).** Take data with mean $m$ and variance $s^2$ on the real line (any
# distribution with these two moments and tails light enough for section 4's boundary condition) and the linear score
# model $s_\theta(x) = a x + b$. Write Hyvärinen's objective without its constant, $J(a, b) = \mathbb{E}\bigl[s_\theta'(x) +
# \tfrac12 s_\theta(x)^2\bigr]$, in closed form as `my_hyvarinen_linear(a, b, mean, var)` (floats or tensors that
# broadcast); `ch08.check_hyvarinen_linear` checks it. Then set its two partial derivatives to zero by hand and show
# that the minimiser is $a = -1/s^2$, $b = m/s^2$: the score of $\mathcal{N}(m, s^2)$, whatever the data's
# distribution. Worked solution of the second part: appendix C.


# %% tags=["exercise"]
def my_hyvarinen_linear(a, b, mean, var):
    return ...


result = ch08.check_hyvarinen_linear(my_hyvarinen_linear)


# %% tags=["solution"]
def my_hyvarinen_linear(a, b, mean, var):
    # s'(x) = a; E[s(x)^2] = a^2 E[x^2] + 2 a b E[x] + b^2 with E[x^2] = var + mean^2
    return a + 0.5 * (a**2 * (var + mean**2) + 2 * a * b * mean + b**2)


result = ch08.check_hyvarinen_linear(my_hyvarinen_linear)

# %% [markdown]
# **8.6 (code).** Write the sliced score-matching loss of section 5 for one projection per sample,
# `my_sliced_loss(score_fn, x, v)` $= \frac1B \sum_b \bigl[v_b^\top \nabla_x s(x_b)\, v_b + \tfrac12 (v_b^\top s(x_b))^2\bigr]$,
# for a batch `x` of shape $(B, d)$, directions `v` of the same shape, and a `score_fn` that maps $(B, d)$ to $(B, d)$
# row by row. Use one backward pass for the whole batch: the gradient of $\sum_b v_b^\top s(x_b)$ with respect to `x`
# has rows $\nabla_x s(x_b)^\top v_b$. Return a 0-d tensor. `ch08.check_sliced_score_matching_loss` compares your
# function with a reference that builds every sample's full Jacobian instead ($d$ passes per sample).


# %% tags=["exercise"]
def my_sliced_loss(score_fn, x, v):
    return ...


result = ch08.check_sliced_score_matching_loss(my_sliced_loss)


# %% tags=["solution"]
def my_sliced_loss(score_fn, x, v):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    projected = (v * s).sum(dim=1)  # v_b^T s(x_b), one number per sample
    (rows,) = torch.autograd.grad(projected.sum(), x, create_graph=True)  # rows: J_b^T v_b, one backward pass
    return ((rows * v).sum(dim=1) + 0.5 * projected**2).mean()


result = ch08.check_sliced_score_matching_loss(my_sliced_loss)
