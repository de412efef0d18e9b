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
# # Chapter 3 — The training objective
#
# Chapters 1 and 2 built the forward process $q$ and its posterior $q(x_{t-1} \mid x_t, x_0)$. The reverse model
# $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ still has to be fitted. This chapter
# derives the loss DDPM trains with, starting from the likelihood and ending at the one-line objective
# $L_\text{simple}$, then trains a small network with it and compares the result with the exact answer.
#
# In this chapter you will be able to
#
# - write the variational bound (DDPM eq. (3)) as a sum of KL divergences $L_T + \sum_t L_{t-1} + L_0$ (eq. (5));
# - read the bound as a VAE's evidence lower bound with the forward process as a fixed encoder, and place diffusion among
#   GANs, VAEs, normalising flows and autoregressive models;
# - derive the KL divergence between Gaussians, and see why $L_{t-1}$ is a squared distance between means (eq. (8));
# - turn the mean into a noise prediction and obtain the weighted loss of eq. (12), and explain what dropping its
#   weight (eq. (14), $L_\text{simple}$) changes;
# - train the book's MLP denoiser on 2-D data in about 20 seconds and measure how close it gets to the irreducible loss;
# - connect the noise prediction to the score: $\mathbb{E}[\epsilon \mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla \log q_t(x_t)$.

# %%
import math
import tempfile
import time

import matplotlib.pyplot as plt
import sympy as sp
import torch

from ddim_book import samplers
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule
from ddim_book.training import Trainer, get_config

book_style()
# the 2-D computations are tiny: one thread is as fast, and the seeded numbers then do not depend on the core count
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)
ring = GaussianMixtureOracle.ring_2d(schedule)

# %% [markdown]
# ## 1. The variational bound as a sum of KL terms
#
# The reverse model defines $p_\theta(x_{0:T}) = p(x_T) \prod_{t=1}^T p_\theta(x_{t-1} \mid x_t)$ with
# $p(x_T) = \mathcal{N}(0, I)$. Its likelihood $p_\theta(x_0) = \int p_\theta(x_{0:T})\,dx_{1:T}$ is intractable, but
# Jensen's inequality with the forward process as the proposal gives an upper bound on the negative log-likelihood
# (DDPM eq. (3)):
#
# $$\mathbb{E}[-\log p_\theta(x_0)] \le \mathbb{E}_q\Big[-\log p(x_T) - \sum_{t \ge 1} \log
#   \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_t \mid x_{t-1})}\Big] =: L.$$
#
# It could be estimated by sampling whole forward trajectories, but DDPM rewrites it so that almost every term becomes
# a KL divergence between Gaussians, computable in closed form instead of by Monte Carlo. Two facts do it. Because the
# forward process is Markov, $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0)$, and Bayes' rule turns that around:
#
# $$q(x_t \mid x_{t-1}, x_0) = \frac{q(x_{t-1} \mid x_t, x_0)\, q(x_t \mid x_0)}{q(x_{t-1} \mid x_0)} \qquad (t \ge 2).$$
#
# In the sum over $t = 2..T$ the ratios $q(x_t\mid x_0)/q(x_{t-1}\mid x_0)$ telescope to $q(x_T\mid x_0)/q(x_1\mid x_0)$,
# and collecting terms gives DDPM eq. (5):
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\text{KL}(q(x_T\mid x_0)\,\|\,p(x_T))}_{L_T}
#   + \sum_{t>1} \underbrace{D_\text{KL}(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t))}_{L_{t-1}}
#   \underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big].$$
#
# $L_T$ has no parameters (it measures how close $x_T$ is to pure noise); each $L_{t-1}$ compares the model's
# reverse step with the *tractable* posterior of chapter 2, Gaussian against Gaussian, so it has a closed form.
#
# The Bayes step is an identity between Gaussian densities. Sympy checks it in one dimension with the posterior
# mean and variance of DDPM eqs. (6)-(7), writing $\bar\alpha_{t-1}$ and $\beta_t$ as free symbols.

# %%
# NBVAL_CHECK_OUTPUT
x0, x_prev, x_t = sp.symbols("x_0 x_{t-1} x_t", real=True)
abar_prev, beta = sp.symbols("alphabar_{t-1} beta_t", positive=True)
alpha = 1 - beta
abar = abar_prev * alpha


def log_normal(x, mean, var):
    return -((x - mean) ** 2) / (2 * var) - sp.log(2 * sp.pi * var) / 2


posterior_mean = sp.sqrt(abar_prev) * beta / (1 - abar) * x0 + sp.sqrt(alpha) * (1 - abar_prev) / (1 - abar) * x_t
posterior_var = (1 - abar_prev) / (1 - abar) * beta
lhs = log_normal(x_t, sp.sqrt(alpha) * x_prev, beta) + log_normal(x_prev, sp.sqrt(abar_prev) * x0, 1 - abar_prev)
rhs = log_normal(x_prev, posterior_mean, posterior_var) + log_normal(x_t, sp.sqrt(abar) * x0, 1 - abar)
bayes_gap = sp.simplify(sp.expand(sp.expand_log(lhs - rhs, force=True)))
assert bayes_gap == 0
print("log q(x_t|x_{t-1}) + log q(x_{t-1}|x_0) - log q(x_{t-1}|x_t,x_0) - log q(x_t|x_0) =", bayes_gap)

# %% [markdown]
# The telescoping itself is bookkeeping that sympy can do in general, with the densities left as unknown functions:
# `forward(t)` is $\log q(x_t \mid x_{t-1})$, `marginal(t)` is $\log q(x_t \mid x_0)$, `posterior(t)` is
# $\log q(x_{t-1} \mid x_t, x_0)$, `reverse(t)` is $\log p_\theta(x_{t-1} \mid x_t)$ and `prior` is $\log p(x_T)$. We build the
# integrand of eq. (3), replace each forward term with $t \ge 2$ by Bayes' rule (the identity just checked), and
# compare with the integrand of eq. (5), written down separately, for every $T$ from 2 to 12:

# %%
# NBVAL_CHECK_OUTPUT
xs = sp.symbols("x_0:13", real=True)
q_step, q_marg, q_post, p_rev, p_prior = (sp.Function(n) for n in ("q_step", "q_marg", "q_post", "p_rev", "p_prior"))


def forward(t):  # log q(x_t | x_{t-1}); at t = 1 it is the marginal log q(x_1 | x_0) itself
    return q_marg(xs[1], xs[0]) if t == 1 else q_step(xs[t], xs[t - 1])


def bayes(t):  # log q(x_t | x_{t-1}, x_0) = log q(x_{t-1} | x_t, x_0) + log q(x_t | x_0) - log q(x_{t-1} | x_0)
    return q_post(xs[t - 1], xs[t], xs[0]) + q_marg(xs[t], xs[0]) - q_marg(xs[t - 1], xs[0])


for T_ in range(2, 13):
    eq3 = -p_prior(xs[T_]) - sum(p_rev(xs[t - 1], xs[t]) - forward(t) for t in range(1, T_ + 1))
    eq3 = eq3.subs({q_step(xs[t], xs[t - 1]): bayes(t) for t in range(2, T_ + 1)})
    L_T = q_marg(xs[T_], xs[0]) - p_prior(xs[T_])  # inside E_q, log q(x_T | x_0) - log p(x_T) is L_T's integrand
    L_middle = sum(q_post(xs[t - 1], xs[t], xs[0]) - p_rev(xs[t - 1], xs[t]) for t in range(2, T_ + 1))
    L_0 = -p_rev(xs[0], xs[1])
    assert sp.expand(eq3 - (L_T + L_middle + L_0)) == 0
print("eq. (3) with Bayes' rule = L_T + sum_{t>1} L_{t-1} + L_0 term by term, for T = 2, ..., 12")

# %% [markdown]
# ### The bound is a VAE's evidence lower bound
#
# A variational autoencoder (VAE; Kingma & Welling 2013, arXiv:1312.6114; Rezende, Mohamed & Wierstra 2014,
# arXiv:1401.4082) models data $x$ through a latent $z$: a prior $p(z)$, a decoder $p_\theta(x \mid z)$, and an encoder
# $q_\phi(z \mid x)$ that stands in for the intractable posterior $p_\theta(z \mid x)$. For *any* encoder the log-evidence
# splits exactly as
#
# $$\log p_\theta(x) = \underbrace{\mathbb{E}_{q_\phi}[\log p_\theta(x \mid z)]}_{\text{reconstruction}}
#   - \underbrace{D_\text{KL}(q_\phi(z \mid x)\,\|\,p(z))}_{\text{prior matching}}
#   + \underbrace{D_\text{KL}(q_\phi(z \mid x)\,\|\,p_\theta(z \mid x))}_{\ge 0}.$$
#
# The first two terms are the evidence lower bound (ELBO), and the bound is tight exactly when the encoder is the true
# posterior. A diffusion model is the VAE whose latent is the whole path, $z = x_{1:T}$ ($T$ latents, each of the data's size):
#
# - the **encoder is the forward process** $q(x_{1:T} \mid x_0)$ (chapter 1): fixed, with no parameters $\phi$ at all;
# - the **reverse chain is the decoder and the prior**: $p_\theta(x_0 \mid x_1)$ decodes, and
#   $p_\theta(x_{1:T}) = p(x_T) \prod_{t \ge 2} p_\theta(x_{t-1} \mid x_t)$ is a learned prior over the latents, fixed only in its top layer $p(x_T) = \mathcal{N}(0, I)$;
# - the terms of eq. (5) are the VAE's: $L_0 = -\log p_\theta(x_0 \mid x_1)$ is the **reconstruction** term, and
#   $L_T + \sum_{t>1} L_{t-1} = \mathbb{E}_q\big[\log q(x_{1:T} \mid x_0) - \log p_\theta(x_{1:T})\big] = D_\text{KL}\big(q(x_{1:T} \mid x_0)\,\|\,p_\theta(x_{1:T})\big)$ is the
#   **prior-matching** KL, written out layer by layer (Bayes' rule above turns $\log q(x_{1:T} \mid x_0)$ into
#   $\log q(x_T \mid x_0) + \sum_{t \ge 2} \log q(x_{t-1} \mid x_t, x_0)$);
# - the gap between $L$ and $-\log p_\theta(x_0)$ is $D_\text{KL}\big(q(x_{1:T} \mid x_0)\,\|\,p_\theta(x_{1:T} \mid x_0)\big)$: how far the fixed
#   encoder is from the reverse model's own posterior over the path.
#
# Two differences from a VAE matter. With the encoder fixed there is no balance to strike between encoder and
# decoder, and the encoder cannot learn to ignore the data (the "posterior collapse" of VAEs): all the learning is in the
# reverse chain. And because the latents keep the data's dimension and each forward step adds little noise, every
# reverse conditional is nearly Gaussian (chapter 2), which is what makes each term a KL between Gaussians.
#
# Sympy checks the VAE identity on a linear-Gaussian toy model, $z \sim \mathcal{N}(0, 1)$, $x \mid z \sim \mathcal{N}(wz + b, s^2)$, with an
# arbitrary Gaussian encoder $q(z \mid x) = \mathcal{N}(mx + c, v)$. The three pieces are computed separately: the evidence from
# the marginal $x \sim \mathcal{N}(b, w^2 + s^2)$ (a sum of independent Gaussians), the ELBO and both KLs as expectations under the
# encoder, and the true posterior by completing the square in $z$ of $\log p(x \mid z) + \log p(z)$, without the evidence.

# %%
# NBVAL_CHECK_OUTPUT
z_lat, eps_z = sp.symbols("z epsilon_z", real=True)
w, b_dec, m_enc, c_enc = sp.symbols("w b m c", real=True)
s_dec, v_enc = sp.symbols("s v", positive=True)


def expect_gaussian(expr, mean, var):
    """E[expr] for z ~ N(mean, var), expr a log-density ratio (a quadratic in z): write z = mean + sqrt(var) eps_z."""
    poly = sp.Poly(sp.expand(sp.expand_log(expr.subs(z_lat, mean + sp.sqrt(var) * eps_z), force=True)), eps_z)
    assert poly.degree() <= 2
    moments = {0: 1, 1: 0, 2: 1}  # E[eps_z^k] for eps_z ~ N(0, 1)
    return sum(coef * moments[k] for (k,), coef in poly.terms())


q_mean, q_var = m_enc * x0 + c_enc, v_enc  # the encoder q(z | x), x written x_0 here
log_q = log_normal(z_lat, q_mean, q_var)
log_prior_z = log_normal(z_lat, 0, 1)
log_decoder = log_normal(x0, w * z_lat + b_dec, s_dec**2)
elbo = expect_gaussian(log_decoder, q_mean, q_var) - expect_gaussian(log_q - log_prior_z, q_mean, q_var)
log_evidence = log_normal(x0, b_dec, w**2 + s_dec**2)  # x = w z + b + s e, a sum of independent Gaussians
joint = sp.Poly(sp.expand(log_decoder + log_prior_z), z_lat)  # log p(x, z) as a quadratic in z
precision = -2 * joint.coeff_monomial(z_lat**2)
post_mean, post_var = joint.coeff_monomial(z_lat) / precision, 1 / precision
kl_to_posterior = expect_gaussian(log_q - log_normal(z_lat, post_mean, post_var), q_mean, q_var)
assert sp.simplify(log_evidence - elbo - kl_to_posterior) == 0  # log p(x) = ELBO + KL(q || posterior)
best = {
    m_enc: sp.diff(post_mean, x0),
    c_enc: post_mean.subs(x0, 0),
    v_enc: post_var,
}  # the encoder that is the posterior
assert sp.simplify(kl_to_posterior.subs(best)) == 0 and sp.simplify((log_evidence - elbo).subs(best)) == 0
print("posterior p(z | x) = N(", sp.simplify(post_mean), ",", sp.simplify(post_var), ")")
print("log p(x) - ELBO - KL(q || posterior) =", sp.simplify(log_evidence - elbo - kl_to_posterior))
print("gap at the best encoder:", sp.simplify((log_evidence - elbo).subs(best)))

# %% [markdown]
# ### Where diffusion sits among generative models
#
# | family | what training optimises | likelihood | cost of one sample |
# | --- | --- | --- | --- |
# | GAN (Goodfellow et al. 2014, arXiv:1406.2661) | a two-player game: a discriminator learns to tell data from samples, the generator to fool it; at the optimal discriminator the original game minimises the Jensen–Shannon divergence | none: the generator defines no density | one generator pass |
# | VAE (Kingma & Welling 2013) | the ELBO, over encoder and decoder together | a lower bound (the exact value only by importance sampling) | one decoder pass |
# | normalising flow (Rezende & Mohamed 2015, arXiv:1505.05770; Dinh et al. 2017, arXiv:1605.08803) | the exact log-likelihood, $\log p(x) = \log p(z) + \log\lvert\det \partial z / \partial x\rvert$, through a network built to be invertible with a cheap Jacobian determinant | exact | one pass of the inverse |
# | autoregressive (van den Oord et al. 2016, arXiv:1601.06759) | the exact log-likelihood $\sum_i \log p(x_i \mid x_{<i})$ | exact | one pass per coordinate (784 for MNIST) |
# | diffusion (DDPM) | the ELBO with a fixed encoder (above), or its reweighting $L_\text{simple}$ (section 5) | a bound | $T$ network passes (1000 in DDPM; chapter 6 cuts this to tens) |
#
# Diffusion buys a stable objective, a plain regression at every $t$ with no adversary and no invertibility constraint on the
# network, and pays for it at sampling time with $T$ sequential network evaluations, the cost that DDIM (chapters 5 and 6) attacks.

# %% [markdown]
# ## 2. The KL divergence between two Gaussians
#
# For $q = \mathcal{N}(m_1, s_1^2)$ and $p = \mathcal{N}(m_2, s_2^2)$ on the real line,
# $D_\text{KL}(q\|p) = \mathbb{E}_q[\log q(x) - \log p(x)]$. The log-ratio is a quadratic polynomial in $x$, so writing
# $x = m_1 + s_1 z$ with $z \sim \mathcal{N}(0, 1)$ reduces the expectation to the moments $\mathbb{E} z^k$, which sympy
# integrates. The result should be the familiar closed form
#
# $$D_\text{KL} = \log\frac{s_2}{s_1} + \frac{s_1^2 + (m_1 - m_2)^2}{2 s_2^2} - \frac12 .$$

# %%
# NBVAL_CHECK_OUTPUT
x, z = sp.symbols("x z", real=True)
m1, m2 = sp.symbols("m_1 m_2", real=True)
s1, s2 = sp.symbols("s_1 s_2", positive=True)
std_normal = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
moments = [sp.integrate(z**k * std_normal, (z, -sp.oo, sp.oo)) for k in range(3)]
log_ratio = sp.expand(log_normal(x, m1, s1**2) - log_normal(x, m2, s2**2)).subs(x, m1 + s1 * z)
poly = sp.Poly(sp.expand(log_ratio), z)
kl_1d = sum(coef * moments[k] for (k,), coef in poly.terms())
kl_closed = sp.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - sp.Rational(1, 2)
assert sp.simplify(kl_1d - kl_closed) == 0
assert sp.simplify(kl_closed.subs({m2: m1, s2: s1})) == 0  # KL(q || q) = 0
print("moments E[z^0], E[z^1], E[z^2] by integration:", moments)
print("KL(N(m1, s1^2) || N(m2, s2^2)) =", kl_closed)

# %% [markdown]
# In $d$ dimensions with isotropic covariances, $q = \mathcal{N}(\mathbf{m}_1, s_1^2 I)$ and $p = \mathcal{N}(\mathbf{m}_2, s_2^2 I)$,
# both densities factorise over coordinates, the log-ratio is a sum, and so is the KL:
#
# $$D_\text{KL} = d \log\frac{s_2}{s_1} + \frac{d\, s_1^2 + \|\mathbf{m}_1 - \mathbf{m}_2\|^2}{2 s_2^2} - \frac d2 .$$
#
# For $L_{t-1}$, $q$ is the posterior, $\mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$, and DDPM fixes the model's variance to
# $\sigma_t^2 I$ (with $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$). Then everything except the mean term is a constant:
#
# $$L_{t-1} = \mathbb{E}_q\Big[\frac{1}{2\sigma_t^2}\,\|\tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\|^2\Big] + C
#   \qquad \text{(DDPM eq. (8))}.$$
#
# Sympy builds the $d = 3$ case coordinate by coordinate, compares it with the vector formula, and extracts $C$.

# %%
# NBVAL_CHECK_OUTPUT
d = 3
mean_q = sp.symbols("mu_1:4", real=True)
mean_p = sp.symbols("nu_1:4", real=True)
per_coordinate = sum(kl_closed.subs({m1: a, m2: b}) for a, b in zip(mean_q, mean_p))
sq_dist = sum((a - b) ** 2 for a, b in zip(mean_q, mean_p))
kl_iso = d * sp.log(s2 / s1) + (d * s1**2 + sq_dist) / (2 * s2**2) - sp.Rational(d, 2)
assert sp.simplify(per_coordinate - kl_iso) == 0
beta_tilde, sigma = sp.symbols("betatilde_t sigma_t", positive=True)
C = sp.simplify((kl_iso - sq_dist / (2 * s2**2)).subs({s1: sp.sqrt(beta_tilde), s2: sigma}))
assert all(sp.diff(C, v) == 0 for v in (*mean_q, *mean_p))  # C does not depend on either mean
assert C.subs(sigma, sp.sqrt(beta_tilde)) == 0  # and vanishes when sigma_t^2 = betatilde_t
print("KL in d = 3 equals the isotropic formula:", sp.simplify(per_coordinate - kl_iso) == 0)
print("C =", C)

# %% [markdown]
# A Monte Carlo check of the one-dimensional formula: draw from $q$, average $\log q - \log p$. We turn the sympy
# expression into a torch function with `lambdify`, so the numbers below come from the derived formula itself.

# %%
# NBVAL_CHECK_OUTPUT
v1, v2 = sp.symbols("v_1 v_2", positive=True)
kl_in_variances = kl_closed.subs({s1: sp.sqrt(v1), s2: sp.sqrt(v2)})
gaussian_kl = sp.lambdify((m1, v1, m2, v2), kl_in_variances, modules=[{"log": torch.log, "sqrt": torch.sqrt}, "math"])

gen = torch.Generator().manual_seed(0)
print("   m1    s1    m2    s2   closed form   Monte Carlo (200k)   std. error")
for a, sa, b, sb in [(0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.5, 0.3, 0.0, 1.0), (0.0, 2.0, 1.0, 0.5)]:
    q, p = torch.distributions.Normal(a, sa), torch.distributions.Normal(b, sb)
    draws = a + sa * torch.randn(200_000, generator=gen, dtype=torch.float64)
    ratio = q.log_prob(draws) - p.log_prob(draws)
    exact = gaussian_kl(torch.tensor(a), torch.tensor(sa**2), torch.tensor(b), torch.tensor(sb**2)).item()
    stderr = ratio.std().item() / 200_000**0.5
    print(f"{a:5.1f} {sa:5.1f} {b:5.1f} {sb:5.1f}   {exact:11.4f}   {ratio.mean().item():18.4f}   {stderr:10.4f}")

# %% [markdown]
# ## 3. The bound, numerically
#
# We can now evaluate $L$ for a case where the best reverse model is known: one-dimensional Gaussian data
# $x_0 \sim \mathcal{N}(m, s^2)$ with $m = 0.5$, $s = 0.3$ (`GaussianOracle`), and a reverse model whose mean is the
# posterior mean at the oracle's estimate of $x_0$, $\mu_\theta(x_t, t) = \tilde\mu_t(\hat x_0(x_t), x_t)$ with
# $\hat x_0 = \mathbb{E}[x_0 \mid x_t]$ (section 4 shows this is DDPM eq. (11) with the exact $\epsilon$), and $\sigma_t^2 = \beta_t$.
#
# For this model every term of eq. (5) has a closed form. The means of $q(x_{t-1}\mid x_t,x_0)$ and $p_\theta$ differ by
# $c_t (x_0 - \hat x_0)$, where $c_t = \sqrt{\bar\alpha_{t-1}}\beta_t/(1-\bar\alpha_t)$ is the $x_0$-coefficient of
# $\tilde\mu_t$, and $\mathbb{E}(x_0 - \hat x_0)^2$ is the posterior variance, which for jointly Gaussian $x_0, x_t$ is
# $P_t = s^2 - \bar\alpha_t s^4 / (\bar\alpha_t s^2 + 1 - \bar\alpha_t)$. Since the KL depends on the means only through
# $(m_1 - m_2)^2$, its expectation is the KL formula evaluated at the expected squared difference:
# $L_{t-1} = D_\text{KL}$ with $v_1 = \tilde\beta_t$, $v_2 = \beta_t$ and $(m_1-m_2)^2 = c_t^2 P_t$. Likewise
# $L_T$ uses $\mathbb{E}[\bar\alpha_T x_0^2] = \bar\alpha_T(m^2 + s^2)$, and
# $L_0 = \tfrac12\log(2\pi\beta_1) + P_1/(2\beta_1)$. We evaluate these with `gaussian_kl`, the lambdified formula.
#
# Three checks, for $T = 10, 100, 1000$ (for $T < 1000$ we keep DDPM's $\bar\alpha_t$ at every $(1000/T)$-th step,
# `NoiseSchedule.from_alpha_bars`: the same forward process cut into fewer steps):
#
# 1. **Per trajectory**, the integrand of eq. (3) equals the integrand of eq. (5) before the KL expectations are
#    taken — the rewriting is exact algebra, so they agree to rounding on every sampled path $x_{0:T}$.
# 2. **In expectation**, the Monte Carlo average of eq. (3) over 10,000 forward trajectories matches the closed form
#    of eq. (5), which has no sampling error at all.
# 3. **The bound holds**: $L$ is at least the true negative log-likelihood $\mathbb{E}[-\log q(x_0)]$, the entropy
#    $\tfrac12 \log(2\pi e s^2)$, and the gap shrinks as the same forward process is cut into more steps.


# %%
def reverse_mean(oracle, sched, x_t, t):
    """mu_theta = mu_tilde(x0_hat, x_t): the posterior mean at the oracle's estimate of x_0."""
    a = sched.alpha_bars[t].item()
    x0_hat = (x_t - (1 - a) ** 0.5 * oracle(x_t, t)) / a**0.5
    return sched.q_posterior(x0_hat, x_t, t)[0]


def normal_logpdf(x, mean, var):
    return torch.distributions.Normal(mean, var**0.5).log_prob(x)


def bound_per_trajectory(oracle, sched, n, gen):
    """Sample n paths x_{0:T} from q; return the integrands of eq. (3) and of eq. (5), each of shape (n,)."""
    T, betas, alphas = sched.T, sched.betas, sched.alphas
    xs = [oracle.sample(n, 0, gen)]
    for t in range(1, T + 1):
        step_noise = torch.randn(xs[-1].shape, generator=gen, dtype=torch.float64)
        xs.append(alphas[t].sqrt() * xs[-1] + betas[t].sqrt() * step_noise)
    log_prior = normal_logpdf(xs[T], torch.zeros(()), torch.tensor(1.0))
    eq3 = -log_prior
    eq5 = normal_logpdf(xs[T], sched.alpha_bars[T].sqrt() * xs[0], 1 - sched.alpha_bars[T]) - log_prior
    for t in range(1, T + 1):
        log_p = normal_logpdf(xs[t - 1], reverse_mean(oracle, sched, xs[t], t), betas[t])
        eq3 = eq3 - (log_p - normal_logpdf(xs[t], alphas[t].sqrt() * xs[t - 1], betas[t]))
        if t >= 2:
            mean_q, var_q = sched.q_posterior(xs[0], xs[t], t)
            eq5 = eq5 + normal_logpdf(xs[t - 1], mean_q, var_q) - log_p
        else:
            eq5 = eq5 - log_p  # L_0
    return eq3.sum(1), eq5.sum(1)


def bound_closed_form(sched, m, s):
    """(L_T, sum of L_{t-1}, L_0) for x_0 ~ N(m, s^2) and the exact-mean reverse model with sigma_t^2 = beta_t."""
    ab = sched.alpha_bars
    post_var = s**2 - ab * s**4 / (ab * s**2 + 1 - ab)  # Var(x_0 | x_t), index t
    a_T = ab[sched.T]
    L_T = gaussian_kl((a_T * (m**2 + s**2)).sqrt(), 1 - a_T, torch.zeros(()), torch.ones(()))
    ts = torch.arange(2, sched.T + 1)
    gap = (sched.posterior_x0_coefs[ts] ** 2 * post_var[ts]).sqrt()  # sqrt of E[(mu_tilde - mu_theta)^2]
    middle = gaussian_kl(gap, sched.posterior_variances[ts], torch.zeros(()), sched.betas[ts]).sum()
    L_0 = 0.5 * torch.log(2 * math.pi * sched.betas[1]) + post_var[1] / (2 * sched.betas[1])
    return L_T.item(), middle.item(), L_0.item()


data_mean, data_std = 0.5, 0.3
entropy = 0.5 * math.log(2 * math.pi * math.e * data_std**2)
rows = []
for T in (10, 100, 1000):
    sched = NoiseSchedule.from_alpha_bars(schedule.alpha_bars[1000 // T :: 1000 // T])
    oracle = GaussianOracle(sched, mean=[data_mean], std=data_std)
    eq3, eq5 = bound_per_trajectory(oracle, sched, 10_000, torch.Generator().manual_seed(T))
    rows.append((T, *bound_closed_form(sched, data_mean, data_std), eq3, eq5))

# %%
# NBVAL_CHECK_OUTPUT
print(
    "    T      L_T   sum L_{t-1}      L_0   L (closed form)   eq. (3), Monte Carlo   E[-log q(x_0)]   paths: eq.(3) = eq.(5)"
)
for T, L_T, middle, L_0, eq3, eq5 in rows:
    total = L_T + middle + L_0
    mc = f"{eq3.mean().item():.3f} +- {eq3.std().item() / len(eq3) ** 0.5:.3f}"
    same = (eq3 - eq5).abs().max().item() < 1e-8
    assert total >= entropy
    print(f"{T:5d}  {L_T:.5f}  {middle:12.3f}  {L_0:7.3f}  {total:16.4f}   {mc:>20s}   {entropy:14.4f}   {same}")

# %% [markdown]
# Every path satisfies the rewriting, the Monte Carlo averages of eq. (3) agree with the closed form within about one
# error bar, and the bound lies above the entropy, approaching it as $T$ grows. Two features of the table recur later: $L_T$ is
# negligible (DDPM's schedule ends close to pure noise), and at $T = 1000$ the bound is a large sum of small KL terms
# plus a large *negative* $L_0$ — a continuous density can exceed 1, and $p_\theta(x_0\mid x_1)$ has a standard
# deviation of only $\sqrt{\beta_1} = 0.01$. (For images DDPM replaces $L_0$ by a discrete decoder over the 256 pixel
# values, sec. 3.3, so that the bound is a proper code length.)
#
# ## 4. From means to noise: the $\epsilon$-parameterisation
#
# By DDPM eq. (4), $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, so $x_0$ can be replaced by
# $(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$ in the posterior mean. That gives (eq. (10))
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\epsilon\Big),$$
#
# which suggests giving the model the same form with a network $\epsilon_\theta$ in place of the unknown $\epsilon$
# (eq. (11)): $\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\epsilon_\theta(x_t, t)\big)$.
# The difference of the two means is then proportional to the difference of the noises, and $L_{t-1}$ becomes (eq. (12))
#
# $$L_{t-1} - C = \mathbb{E}_{x_0, \epsilon}\Big[\frac{\beta_t^2}{2\sigma_t^2 \alpha_t (1 - \bar\alpha_t)}\,
#    \big\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\|^2\Big].$$
#
# Sympy does the substitution, per coordinate (the identity then holds for the squared norm by summing).

# %%
# NBVAL_CHECK_OUTPUT
eps, eps_theta = sp.symbols("epsilon epsilon_theta", real=True)
x0_from_eps = (x_t - sp.sqrt(1 - abar) * eps) / sp.sqrt(abar)
mu_tilde = posterior_mean.subs(x0, x0_from_eps)
assert sp.simplify(mu_tilde - (x_t - beta / sp.sqrt(1 - abar) * eps) / sp.sqrt(alpha)) == 0  # eq. (10)
mu_theta = (x_t - beta / sp.sqrt(1 - abar) * eps_theta) / sp.sqrt(alpha)  # eq. (11)
sq_mean_gap = (mu_tilde - mu_theta) ** 2
weight_times_sq = beta**2 / (alpha * (1 - abar)) * (eps - eps_theta) ** 2
assert sp.simplify(sq_mean_gap - weight_times_sq) == 0
alpha_t, abar_t = sp.symbols("alpha_t alphabar_t", positive=True)  # names for printing only
print("(mu_tilde - mu_theta)^2 =", beta**2 / (alpha_t * (1 - abar_t)) * (eps - eps_theta) ** 2)
print("weight of (eps - eps_theta)^2 in L_{t-1}:", beta**2 / (2 * sigma**2 * alpha_t * (1 - abar_t)))

# %% [markdown]
# The same identity with real numbers: for 2-D points of the ring data, a random "network output" $\epsilon_\theta$ and
# several $t$, we compute $\tilde\mu_t$ with the package's `q_posterior` (chapter 2) and compare
# $\|\tilde\mu_t - \mu_\theta\|^2$ with $\frac{\beta_t^2}{\alpha_t(1-\bar\alpha_t)}\|\epsilon - \epsilon_\theta\|^2$ sample by sample.
#
# A remark on a circulating typo: the network's input in eq. (12) is $x_t$ itself, so $x_0$ enters with the coefficient
# $\sqrt{\bar\alpha_t}$. Versions of this formula with $\bar\alpha_t x_0$ (no square root) describe a different input,
# whose variance $\bar\alpha_t^2 + 1 - \bar\alpha_t$ (for unit-variance data) is not 1 — the network would be trained
# on inputs the sampler never produces.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(3)
points = ring.sample(1000, 0, gen)
noise = torch.randn(points.shape, generator=gen, dtype=torch.float64)
fake_eps_theta = torch.randn(points.shape, generator=gen, dtype=torch.float64)
for t in (1, 2, 10, 250, 1000):
    b, a_t, ab_t = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
    x_noisy = schedule.q_sample(points, t, noise)
    mean_tilde, _ = schedule.q_posterior(points, x_noisy, t)
    mean_theta = (x_noisy - b / (1 - ab_t).sqrt() * fake_eps_theta) / a_t.sqrt()
    lhs_num = ((mean_tilde - mean_theta) ** 2).sum(1)
    rhs_num = b**2 / (a_t * (1 - ab_t)) * ((noise - fake_eps_theta) ** 2).sum(1)
    rel = ((lhs_num - rhs_num).abs() / rhs_num).max().item()
    print(f"t = {t:4d}: max relative difference < 1e-9: {rel < 1e-9}")
print(
    "variance of alphabar*x0 + sqrt(1-alphabar)*eps at alphabar = 0.5, unit-variance x0:",
    sp.Rational(1, 2) ** 2 + sp.Rational(1, 2),
)

# %% [markdown]
# ## 5. The weight, and why $L_\text{simple}$ drops it
#
# With the two variance choices of DDPM sec. 3.2 the weight $w_t = \beta_t^2 / (2\sigma_t^2 \alpha_t (1-\bar\alpha_t))$ becomes
#
# - $\sigma_t^2 = \beta_t$: $w_t = \beta_t / (2\alpha_t(1 - \bar\alpha_t))$, which is $1/(2\alpha_1) \approx 0.5$ at $t = 1$;
# - $\sigma_t^2 = \tilde\beta_t$: $w_t = \beta_t / (2\alpha_t(1 - \bar\alpha_{t-1}))$, infinite at $t = 1$ where $\tilde\beta_1 = 0$.
#
# Their ratio is $\tilde\beta_t/\beta_t = (1-\bar\alpha_{t-1})/(1-\bar\alpha_t)$, close to 1 except at small $t$. Both weights
# fall steeply for DDPM's linear schedule: from about 0.5 at $t = 1$ (for $\sigma_t^2 = \beta_t$) to a minimum of about
# 0.005 near $t = 350$, ending at 0.01 at $t = T$.
# DDPM trains instead with the unweighted **$L_\text{simple}$** (eq. (14)),
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t \sim U\{1..T\},\, x_0,\, \epsilon}\,\big\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\|^2,$$
#
# i.e. $w_t \equiv 1$. Relative to the bound this **down-weights the small-$t$ terms** — removing a tiny amount of
# noise, which is easy — by a factor of up to about 100 compared with the large-$t$ ones, so the network spends its capacity on
# the hard denoising tasks at large $t$, where $x_0$ must be guessed from heavy noise (DDPM sec. 3.4). The $t = 1$ term
# of $L_\text{simple}$ also stands in for $L_0$. DDPM reports better samples with $L_\text{simple}$ than with the true
# bound (table 2); the price is a worse log-likelihood, which improved DDPM (Nichol & Dhariwal 2021) wins back with a
# hybrid loss and learned variances.

# %%
# NBVAL_CHECK_OUTPUT
ts = torch.arange(1, schedule.T + 1)
b, a_t, ab_t = schedule.betas[ts], schedule.alphas[ts], schedule.alpha_bars[ts]
weight_beta = b**2 / (2 * b * a_t * (1 - ab_t))
weight_tilde = b**2 / (2 * schedule.posterior_variances[ts] * a_t * (1 - ab_t))  # inf at t = 1, where beta_tilde_1 = 0
print("    t        w_t (sigma^2 = beta)        w_t (sigma^2 = beta_tilde)   ratio")
for t in (1, 2, 10, 100, 500, 1000):
    wb, wt = weight_beta[t - 1].item(), weight_tilde[t - 1].item()
    print(f"{t:5d}   {wb:24.5f}   {wt:31.5f}   {wb / wt:5.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].semilogy(ts[1:], weight_tilde[1:], label=r"$\sigma_t^2 = \tilde\beta_t$")
axes[0].semilogy(ts, weight_beta, "--", label=r"$\sigma_t^2 = \beta_t$")
axes[0].axhline(1.0, color="0.5", lw=0.8, label=r"$L_\mathrm{simple}$ ($w_t = 1$)")
axes[0].set_xlabel("t")
axes[0].set_title(r"weight $w_t$ of $\|\epsilon - \epsilon_\theta\|^2$ in the bound")
axes[0].legend()
axes[1].semilogx(ts[1:], (weight_beta / weight_tilde)[1:])
axes[1].set_xlabel("t (log scale)")
axes[1].set_title(r"ratio $\tilde\beta_t / \beta_t$ of the two weights")
plt.tight_layout()
plt.show()

# %% [markdown]
# **A weight that circulates without its square.** Reviews of the DDIM paper state its objective $J_\sigma$ (chapter 5) with
# the weight $(1-\alpha_t)/(2\sigma_t^2\alpha_t)$ in DDIM's notation, $(1-\bar\alpha_t)/(2\sigma_t^2\bar\alpha_t)$ in ours, for every $t$,
# and set it beside DDPM's $w_t$ as if the two differed by a constant factor. Redo the step they shortcut. Both Gaussians in
# $L_{t-1}$ have the variance $\sigma_t^2$, and their means differ only through $x_0$ against the network's estimate
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$, which enters the mean multiplied by its coefficient $c_t$
# ($c_t = \sqrt{\bar\alpha_{t-1}}\beta_t/(1-\bar\alpha_t)$ for DDPM's posterior, section 3; chapter 5 gives it for every $\sigma$). With $x_0 - \hat x_0 = \sqrt{1-\bar\alpha_t}\,(\epsilon_\theta - \epsilon)/\sqrt{\bar\alpha_t}$,
#
# $$L_{t-1} = \frac{c_t^2\,\|x_0 - \hat x_0\|^2}{2\sigma_t^2} = c_t^2\,\frac{1-\bar\alpha_t}{2\sigma_t^2\bar\alpha_t}\,\|\epsilon - \epsilon_\theta\|^2 .$$
#
# The circulated weight leaves out $c_t^2$: it weighs the error of $\hat x_0$, not the error of the reverse step's mean. It is
# right only for the last term $t = 1$, where $p_\theta(x_0 \mid x_1)$ is centred on $\hat x_0$ itself. At $\sigma_t^2 = \tilde\beta_t$ (DDIM's
# $\eta = 1$, which is DDPM) the two weights should agree with eq. (12); sympy takes the KL of section 2 at the two means, compares
# it with $w_t\|\epsilon - \epsilon_\theta\|^2$ from section 4, and confirms that the missing factor is $c_t^2$.

# %%
# NBVAL_CHECK_OUTPUT
c_t = sp.diff(posterior_mean, x0)  # the coefficient of x_0 in the posterior mean (DDPM eq. (7))
x0_hat = (x_t - sp.sqrt(1 - abar) * eps_theta) / sp.sqrt(abar)  # DDPM eq. (15)
kl_means = kl_closed.subs(
    {m1: mu_tilde, m2: posterior_mean.subs(x0, x0_hat), s1: sigma, s2: sigma}
)  # mu_tilde: x_0 via eps
w_eq12 = beta**2 / (2 * sigma**2 * alpha * (1 - abar))  # the weight of section 4
circulated = (1 - abar) / (2 * sigma**2 * abar)
assert sp.simplify(kl_means - w_eq12 * (eps - eps_theta) ** 2) == 0
assert sp.simplify(w_eq12 - c_t**2 * circulated) == 0
print("c_t =", sp.simplify(c_t))
print("w_t / circulated weight =", sp.factor(sp.simplify(w_eq12 / circulated)), "= c_t^2")

# the size of the discrepancy on DDPM's schedule, sigma_t^2 = beta_tilde_t
print(f"{'t':>5} {'w_t (eq. 12)':>18} {'circulated':>12} {'circulated / w_t':>22} {'1 / c_t^2':>11}")
for t in (2, 10, 100, 500, 1000):
    var_t, ab_t_val = schedule.posterior_variances[t].item(), schedule.alpha_bars[t].item()
    w_t = weight_tilde[t - 1].item()
    wrong = (1 - ab_t_val) / (2 * var_t * ab_t_val)
    inv_c_sq = 1 / schedule.posterior_x0_coefs[t].item() ** 2
    assert abs(wrong / w_t / inv_c_sq - 1) < 1e-9
    print(f"{t:5d} {w_t:18.5f} {wrong:12.4g} {wrong / w_t:22.4g} {inv_c_sq:11.4g}")

# %% [markdown]
# The ratio is not a constant: the circulated weight overstates the bound's term by a factor of about 3 at $t = 2$ and of
# tens of millions at $t = T$, where $\hat x_0$ is poor but hardly moves the reverse step's mean. As a value of the bound it is
# therefore wrong. The conclusion drawn from it survives: any positive weights have the same minimiser at each $t$
# (chapter 5, section 5.8, with its caveat about parameters shared across $t$), so $L_\text{simple}$ still trains the network
# that $J_\sigma$ asks for.

# %% [markdown]
# ## 6. Training the MLP denoiser on 2-D data
#
# DDPM Algorithm 1 is $L_\text{simple}$ by stochastic gradient descent: draw $x_0$, $t \sim U\{1..T\}$ and
# $\epsilon \sim \mathcal{N}(0, I)$; step on $\|\epsilon - \epsilon_\theta(x_t, t)\|^2$. The package's
# `ddim_book.training.Trainer` runs it (with AdamW, warm-up, gradient clipping and an EMA of the weights); the named
# config `toy-mlp` is a three-layer MLP (`ddim_book.models.MLPDenoiser`). We train it on the ring mixture for 2000 steps
# with a fixed seed — about 20 seconds on one CPU core.
#
# The exact oracle gives something a training curve alone cannot: the **minimum** of $L_\text{simple}$. For any $x_t$
# the best prediction is $\mathbb{E}[\epsilon \mid x_t]$, and what remains, $\mathbb{E}\|\epsilon - \mathbb{E}[\epsilon\mid x_t]\|^2$,
# is irreducible. We estimate it twice on a fixed evaluation set — directly, and as
# $1 - \mathbb{E}\|\mathbb{E}[\epsilon\mid x_t]\|^2/d$ (since $\mathbb{E}[\epsilon^\top \mathbb{E}[\epsilon\mid x_t]] = \mathbb{E}\|\mathbb{E}[\epsilon\mid x_t]\|^2$) —
# both as a mean over coordinates, the convention of the trainer's logged loss.

# %%
# the preset with a larger batch and step size: the L_simple gradient is noisy (random t and eps), and this
# resolves the eight modes in the same 2000 steps
config = get_config(
    "toy-mlp", dataset="mixture", batch_size=512, lr=3e-3, ema_decay=0.99, ckpt_every=0, device="cpu", seed=0
)
print(config.model_kind, config.model, f"batch {config.batch_size}, lr {config.lr}, {config.total_steps} steps")
run_dir = tempfile.TemporaryDirectory()
trainer = Trainer(config, run_dir.name, resume=False, progress=False)
start = time.perf_counter()
result = trainer.train()
print(f"trained {result['step']} steps in {time.perf_counter() - start:.0f} s; last logged loss {result['loss']:.4f}")
model = trainer.ema.model.eval()

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(4)
n_eval = 50_000
eval_x0 = ring.sample(n_eval, 0, gen)
eval_t = torch.randint(1, schedule.T + 1, (n_eval,), generator=gen)
eval_eps = torch.randn(eval_x0.shape, generator=gen, dtype=torch.float64)
eval_xt = schedule.q_sample(eval_x0, eval_t, eval_eps)
oracle_eps = ring(eval_xt, eval_t)
oracle_per_sample = ((eval_eps - oracle_eps) ** 2).mean(1)
floor_direct = oracle_per_sample.mean().item()
floor_variance = 1 - (oracle_eps**2).mean().item()
print(
    f"irreducible L_simple (oracle), direct:           {floor_direct:.4f} +- {oracle_per_sample.std().item() / n_eval**0.5:.4f}"
)
print(f"irreducible L_simple, 1 - E|E[eps|x_t]|^2 / d:   {floor_variance:.4f}")

# %%
with torch.no_grad():
    net_eps = model(eval_xt.float(), eval_t).double()
net_per_sample = ((eval_eps - net_eps) ** 2).mean(1)
print(f"L_simple of the trained network on the same set: {net_per_sample.mean().item():.4f}")
print(f"L_simple of the exact oracle:                    {floor_direct:.4f}")
print(f"excess loss of the network E|eps_oracle - eps_net|^2 / d: {((oracle_eps - net_eps) ** 2).mean().item():.4f}")

# %% [markdown]
# The network's loss exceeds the oracle's by exactly its mean squared distance to the oracle (up to Monte Carlo
# noise): the irreducible part is the same for every model. Where in $t$ does the excess sit? Below, the training
# curve against the floor, and the loss per range of $t$ for both.

# %%
log = trainer.log.read()
edges = torch.tensor([1, 4, 10, 25, 60, 150, 400, 1001])
which = torch.bucketize(eval_t, edges[1:-1], right=True)
centres = (edges[1:] * edges[:-1]).double().sqrt()
net_by_t = torch.stack([net_per_sample[which == i].mean() for i in range(len(centres))])
oracle_by_t = torch.stack([oracle_per_sample[which == i].mean() for i in range(len(centres))])
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot([r["step"] for r in log], [r["loss"] for r in log], label="training loss (mean per 50 steps)")
axes[0].axhline(floor_direct, color="k", ls="--", lw=0.8, label="oracle (irreducible)")
axes[0].set_xlabel("step")
axes[0].set_ylim(floor_direct - 0.05, floor_direct + 0.4)
axes[0].legend()
axes[1].semilogx(centres, oracle_by_t, "s--", label="oracle")
axes[1].semilogx(centres, net_by_t, "o-", label="network")
axes[1].semilogx(centres, net_by_t - oracle_by_t, "^-", label="network - oracle")
axes[1].set_xlabel("t (log scale)")
axes[1].set_title(r"$L_\mathrm{simple}$ per range of t")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The per-$t$ loss falls with $t$. At small $t$ the noise is small compared with the width of each mixture component
# (0.15), so $x_t$ carries almost no information about *which* noise was added and even the oracle's loss is close to 1 —
# yet these are the easy denoising problems of section 5, because $x_t$ is already almost $x_0$: a large $\epsilon$-error
# times $\sqrt{1-\bar\alpha_t} \approx 0$ is a tiny error in $\hat x_0$. At large $t$, $\epsilon \approx x_t/\sqrt{1-\bar\alpha_t}$
# is easy to predict while $x_0$ is hard to guess. The network's excess (green) is small at every $t$.
#
# The fields themselves: the arrows are the two predictions (oracle black, network red; arrows longer than 1 are
# drawn with length 1), the grey level is the distance between them.

# %%
fine = torch.linspace(-2.4, 2.4, 97, dtype=torch.float64)
fx, fy = torch.meshgrid(fine, fine, indexing="xy")
fine_points = torch.stack([fx.flatten(), fy.flatten()], dim=1)
coarse_idx = torch.arange(0, 97, 8)
cx, cy = fx[coarse_idx][:, coarse_idx].flatten(), fy[coarse_idx][:, coarse_idx].flatten()


def capped(v):
    """Arrows longer than 1 are drawn with length 1: the field is huge far from the data."""
    return v / v.norm(dim=1, keepdim=True).clamp_min(1.0)


fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
for ax, t in zip(axes, (30, 150, 500)):
    t_batch = torch.full((fine_points.shape[0],), t, dtype=torch.long)
    with torch.no_grad():
        field_net = model(fine_points.float(), t_batch).double()
    field_oracle = ring(fine_points, t_batch)
    error = (field_net - field_oracle).norm(dim=1).reshape(fx.shape)
    image = ax.imshow(error, extent=(-2.4, 2.4, -2.4, 2.4), origin="lower", cmap="Greys", vmin=0, vmax=1)
    on_coarse = (coarse_idx[:, None] * 97 + coarse_idx[None, :]).flatten()
    for field, colour in ((field_oracle, "k"), (field_net, "tab:red")):
        arrows = capped(field[on_coarse])
        ax.quiver(cx, cy, arrows[:, 0], arrows[:, 1], color=colour, scale=14, width=0.006, alpha=0.8)
    ax.set_title(rf"t = {t}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(image, ax=list(axes), shrink=0.8, label=r"$|\epsilon_\mathrm{net} - \epsilon_\mathrm{oracle}|$")
plt.show()

# %% [markdown]
# At $t = 30$ the error sits on the lines between neighbouring modes and outside the ring. There the exact
# $\epsilon$ jumps (a point on the line between two components could have come from either), and the training data
# hardly ever lands there — the network has had no reason to learn that part of the field. Chapter 8 meets the same
# low-density problem from the side of score-based sampling. At larger $t$ the field is smooth and the network matches it.
#
# Finally, samples. The same starting noise goes through `samplers.ddim_sample` (50 deterministic steps, chapter 6) once
# with the oracle and once with the network. The oracle's samples show what the sampler alone achieves; the
# difference to the network's is the network's error.

# %%
gen = torch.Generator().manual_seed(5)
x_T = torch.randn(2000, 2, generator=gen, dtype=torch.float64)
samples_oracle = samplers.ddim_sample(ring, schedule, x_T, steps=50, progress=False)
samples_net = samplers.ddim_sample(model, schedule, x_T.float(), steps=50, progress=False).double()


def mode_shares(samples):
    nearest = torch.cdist(samples, ring.means).argmin(dim=1)
    return torch.bincount(nearest, minlength=8).double() / samples.shape[0]


def spread(samples):
    """Mean distance of a sample to its nearest ring component (the data gives 0.15 * sqrt(pi / 2) = 0.188)."""
    return torch.cdist(samples, ring.means).min(dim=1).values.mean().item()


# %%
# NBVAL_CHECK_OUTPUT
print("oracle + DDIM (50 steps): mode shares", " ".join(f"{w:.3f}" for w in mode_shares(samples_oracle).tolist()))
print(
    f"  mean distance to the nearest mode: {spread(samples_oracle):.3f}   (data: {spread(ring.sample(20000, 0, gen)):.3f})"
)

# %%
print("network + DDIM (50 steps): mode shares", " ".join(f"{w:.3f}" for w in mode_shares(samples_net).tolist()))
print(f"  mean distance to the nearest mode: {spread(samples_net):.3f}")
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
data_points = ring.sample(2000, 0, gen)
for ax, (name, pts) in zip(
    axes, [("data", data_points), ("oracle + DDIM", samples_oracle), ("network + DDIM", samples_net)]
):
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
    ax.set_title(name)
    ax.set_aspect("equal")
    ax.set_xlim(-2.3, 2.3)
    ax.set_ylim(-2.3, 2.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# The network puts the right share of samples into each mode, and its modes are only slightly wider than the oracle's.
# Note that even the exact $\epsilon$ does not reproduce the data perfectly: with 50 deterministic DDIM steps the
# components come out a little too narrow (mean distance 0.172 against the data's 0.188). That is the sampler's own
# discretisation error, which chapters 6 and 7 study; the oracle lets us tell it apart from the network's error.
#
# ## 7. Noise prediction is score estimation
#
# What is the network learning? The minimiser of $L_\text{simple}$ at each $t$ is the conditional mean
# $\mathbb{E}[\epsilon \mid x_t]$, and that is a rescaled **score** of the noisy marginal $q_t$ (Tweedie's formula):
#
# $$\mathbb{E}[\epsilon \mid x_t] = -\sqrt{1-\bar\alpha_t}\;\nabla_{x_t} \log q_t(x_t), \qquad
#   \mathbb{E}[x_0 \mid x_t] = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\mathbb{E}[\epsilon \mid x_t]}{\sqrt{\bar\alpha_t}}.$$
#
# The proof for any data distribution is one line. $q_t(x) = \int q_0(x_0)\, \mathcal{N}(x; \sqrt{\bar\alpha_t} x_0, (1-\bar\alpha_t) I)\,dx_0$,
# and the gradient of the Gaussian kernel is the kernel times $-\epsilon/\sqrt{1-\bar\alpha_t}$ with
# $\epsilon = (x - \sqrt{\bar\alpha_t}x_0)/\sqrt{1-\bar\alpha_t}$; dividing $\nabla q_t$ by $q_t$ turns the integral into the
# posterior average of $-\epsilon/\sqrt{1-\bar\alpha_t}$. The second formula is the first taken through the linear
# relation between $x_0$, $x_t$ and $\epsilon$. Sympy checks the kernel step in general, and both formulas in full for
# Gaussian data $\mathcal{N}(m, s^2)$, where $\mathbb{E}[\epsilon\mid x_t]$ is a linear regression on $x_t$.

# %%
# NBVAL_CHECK_OUTPUT
a = sp.Symbol("alphabar_t", positive=True)
m, s = sp.Symbol("m", real=True), sp.Symbol("s", positive=True)
kernel = sp.exp(-((x - sp.sqrt(a) * x0) ** 2) / (2 * (1 - a)))
eps_of_x = (x - sp.sqrt(a) * x0) / sp.sqrt(1 - a)
assert sp.simplify(sp.diff(kernel, x) - (-eps_of_x / sp.sqrt(1 - a)) * kernel) == 0
# Gaussian data: x_t ~ N(sqrt(a) m, a s^2 + 1 - a), Cov(eps, x_t) = sqrt(1 - a)
var_xt = a * s**2 + 1 - a
cond_eps = sp.sqrt(1 - a) / var_xt * (x - sp.sqrt(a) * m)
score_xt = sp.diff(log_normal(x, sp.sqrt(a) * m, var_xt), x)
assert sp.simplify(cond_eps - (-sp.sqrt(1 - a) * score_xt)) == 0
cond_x0 = m + sp.sqrt(a) * s**2 / var_xt * (x - sp.sqrt(a) * m)  # Cov(x_0, x_t) = sqrt(a) s^2
assert sp.simplify(cond_x0 - (x - sp.sqrt(1 - a) * cond_eps) / sp.sqrt(a)) == 0
print("grad of the kernel = kernel * (-eps / sqrt(1 - alphabar)):", True)
print("E[eps | x_t] =", sp.simplify(cond_eps), "= -sqrt(1 - alphabar) * score")
print("E[x_0 | x_t] =", sp.simplify(cond_x0))

# %% [markdown]
# On the ring, the oracle's $\epsilon$ is built from its score, so comparing `ring(x, t)` with `ring.score(x, t)` would
# only test the code against itself. An independent check is Monte Carlo: the posterior over $x_0$ given one $x_t$ is
# proportional to $q_0(x_0)\,q(x_t\mid x_0)$, so with many draws $x_0^{(i)} \sim q_0$ and weights
# $w_i \propto \mathcal{N}(x_t; \sqrt{\bar\alpha_t}x_0^{(i)}, (1-\bar\alpha_t)I)$ (self-normalised importance sampling),
# $\sum_i w_i x_0^{(i)} \approx \mathbb{E}[x_0\mid x_t]$. We compare that with Tweedie's formula evaluated with the oracle,
# for points $x_t$ drawn from $q_t$. The last column is the effective sample size $1/\sum_i w_i^2$.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(6)
prior_draws = ring.sample(400_000, 0, gen)
print("   t   x_t                E[x_0|x_t] Monte Carlo   Tweedie with the oracle    eff. samples")
for t in (30, 150, 500):
    ab_t = schedule.alpha_bars[t].item()
    for point in ring.sample(2, t, gen):
        log_w = -((point - ab_t**0.5 * prior_draws) ** 2).sum(1) / (2 * (1 - ab_t))
        w = torch.softmax(log_w, dim=0)
        monte_carlo = (w[:, None] * prior_draws).sum(0)
        tweedie = (point - (1 - ab_t) ** 0.5 * ring(point[None], t)[0]) / ab_t**0.5
        mc, tw = monte_carlo.tolist(), tweedie.tolist()
        print(
            f"{t:4d}  ({point[0]:6.3f}, {point[1]:6.3f})   ({mc[0]:6.3f}, {mc[1]:6.3f})         "
            f"({tw[0]:6.3f}, {tw[1]:6.3f})          {1 / (w**2).sum().item():9.0f}"
        )

# %% [markdown]
# The two columns agree to the third decimal. So a trained $\epsilon_\theta$ is a score model,
# $s_\theta(x_t, t) = -\epsilon_\theta(x_t, t)/\sqrt{1-\bar\alpha_t}$, and $L_\text{simple}$ is a denoising score-matching
# loss — the view that chapter 8 develops, with Langevin dynamics as the sampler that needs only a score.
#
# ## Summary
#
# - The negative log-likelihood is bounded by $L = L_T + \sum_{t>1} L_{t-1} + L_0$ (DDPM eq. (5)); the rewriting of
#   eq. (3) into KL terms is exact per trajectory and only lowers the variance.
# - It is a VAE's ELBO with latent $x_{1:T}$: the forward process is a fixed encoder, the reverse chain the learned prior and
#   decoder; $L_0$ is the reconstruction term and $L_T + \sum_{t>1} L_{t-1}$ the prior-matching KL.
# - $D_\text{KL}(\mathcal{N}(m_1, s_1^2)\|\mathcal{N}(m_2, s_2^2)) = \log\frac{s_2}{s_1} + \frac{s_1^2 + (m_1-m_2)^2}{2s_2^2} - \frac12$,
#   summed over coordinates for isotropic Gaussians; with the model's variance fixed, $L_{t-1}$ is
#   $\|\tilde\mu_t - \mu_\theta\|^2/(2\sigma_t^2)$ plus a constant (eq. (8)).
# - Writing $\mu_\theta$ through $\epsilon_\theta$ (eq. (11)) gives $\|\tilde\mu_t - \mu_\theta\|^2 = \frac{\beta_t^2}{\alpha_t(1-\bar\alpha_t)}\|\epsilon-\epsilon_\theta\|^2$,
#   so the bound weighs each $t$ by $w_t = \beta_t^2/(2\sigma_t^2\alpha_t(1-\bar\alpha_t))$ (eq. (12)), falling from ~0.5 at $t = 1$ to ~0.005–0.01.
# - $L_\text{simple}$ (eq. (14)) sets $w_t = 1$, shifting weight from the easy small-$t$ terms to the hard large-$t$ ones.
#   The weight $(1-\bar\alpha_t)/(2\sigma_t^2\bar\alpha_t)$ seen in reviews of DDIM lacks the factor $c_t^2$ and is correct only at $t = 1$.
# - An MLP trained for 2000 steps gets within a few thousandths of the oracle's irreducible loss (about 0.22); its excess
#   loss is its mean squared distance to the oracle, concentrated in the low-density regions between the modes at small $t$.
# - $\mathbb{E}[\epsilon\mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla\log q_t(x_t)$ (Tweedie), and
#   $\mathbb{E}[x_0\mid x_t] = (x_t - \sqrt{1-\bar\alpha_t}\,\mathbb{E}[\epsilon\mid x_t])/\sqrt{\bar\alpha_t}$.
#
# ## Exercises
#
# **3.1 (code).** Write `my_gaussian_kl(mean1, var1, mean2, var2)`, the KL divergence
# $D_\text{KL}(\mathcal{N}(m_1, v_1)\,\|\,\mathcal{N}(m_2, v_2))$ elementwise for tensors (note: variances, not standard deviations).
# Fill in the exercise cell and run it: `ch03.check_gaussian_kl` grades your function. The solution cell after it holds a
# worked answer.

# %% tags=["exercise"]
from ddim_book.exercises import ch03


def my_gaussian_kl(mean1, var1, mean2, var2):
    return ...


result = ch03.check_gaussian_kl(my_gaussian_kl)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_gaussian_kl(mean1, var1, mean2, var2):
    mean1, var1, mean2, var2 = (torch.as_tensor(v, dtype=torch.float64) for v in (mean1, var1, mean2, var2))
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


result = ch03.check_gaussian_kl(my_gaussian_kl)

# %% [markdown]
# **3.2 (code).** Write `my_loss_weight(schedule, t, variance)`, the weight $w_t$ of eq. (12) for
# `variance="beta"` ($\sigma_t^2 = \beta_t$) or `"beta_tilde"` ($\sigma_t^2 = \tilde\beta_t$, for $t \ge 2$), as a float.


# %% tags=["exercise"]
def my_loss_weight(schedule, t, variance):
    return ...


result = ch03.check_loss_weight(my_loss_weight)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_loss_weight(schedule, t, variance):
    beta, alpha, ab = (float(table[t]) for table in (schedule.betas, schedule.alphas, schedule.alpha_bars))
    sigma2 = beta if variance == "beta" else (1 - float(schedule.alpha_bars[t - 1])) / (1 - ab) * beta
    return beta**2 / (2 * sigma2 * alpha * (1 - ab))


result = ch03.check_loss_weight(my_loss_weight)

# %% [markdown]
# **3.3 (code).** Write `my_mu_from_eps(schedule, x_t, t, eps)`, the model mean $\mu_\theta$ of eq. (11) for a noise
# prediction `eps` (t an int or a tensor of shape (B,)). The check compares it with the posterior mean
# `schedule.q_posterior(x0_hat, x_t, t)` at the $x_0$ that `eps` implies — a different route to the same number.


# %% tags=["exercise"]
def my_mu_from_eps(schedule, x_t, t, eps):
    return ...


result = ch03.check_mu_from_eps(my_mu_from_eps)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_mu_from_eps(schedule, x_t, t, eps):
    t = torch.as_tensor(t)
    shape = (-1, *([1] * (x_t.ndim - 1))) if t.ndim else ()  # one t per sample: (B, 1, ..., 1)
    beta, ab = (table[t].reshape(shape).to(x_t.dtype) for table in (schedule.betas, schedule.alpha_bars))
    return (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()


result = ch03.check_mu_from_eps(my_mu_from_eps)

# %% [markdown]
# **3.4 (pen and paper).** Show that $L_T = \tfrac12\big(d(1-\bar\alpha_T) + \bar\alpha_T\|x_0\|^2 - d - d\log(1-\bar\alpha_T)\big)$,
# and estimate it for an MNIST digit ($d = 784$, $\|x_0\|^2 \le 784$) under DDPM's schedule ($\bar\alpha_T \approx 4\cdot 10^{-5}$).
# Is it safe to leave out of training? Worked solution: appendix C.
