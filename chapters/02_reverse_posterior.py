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
# # Chapter 2 — The reverse posterior
#
# To generate data we must run the forward process backwards, from noise to image. The true reverse step
# $q(x_{t-1} \mid x_t)$ depends on the unknown data distribution, and that is what a network will have to learn.
# But if we are also told the clean image $x_0$, the reverse step becomes a Gaussian we can write down exactly.
# This **forward-process posterior** $q(x_{t-1} \mid x_t, x_0)$ is the target every DDPM reverse step is trained
# to match (chapter 3), and its mean, rewritten with the noise $\epsilon$, is the formula the DDPM sampler
# runs (chapter 4).
#
# In this chapter you will be able to
#
# - derive $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$ (DDPM eqs. (6)-(7)) by Bayes' rule and
#   completing the square, with sympy doing the algebra;
# - explain why $\tilde\beta_1 = 0$;
# - rewrite $\tilde\mu_t$ in terms of $x_t$ and $\epsilon$, the form behind DDPM eqs. (10)-(11);
# - confirm `schedule.q_posterior` against Bayes' rule by quadrature on a grid, and by Monte Carlo on MNIST digits;
# - compare DDPM's two variance choices $\beta_t$ and $\tilde\beta_t$ and say when each is the right one.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

from ddim_book import samplers
from ddim_book.data import mnist_dataset
from ddim_book.diagrams import ddpm_chain
from ddim_book.exercises import ch02
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
# the tensors here are small: one thread is as fast, and the seeded numbers do not depend on the core count
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule
cosine = NoiseSchedule.cosine(T=1000)
images, labels = mnist_dataset("all")  # pixels in [-1, 1]

# %% [markdown]
# DDPM (Ho, Jain & Abbeel 2020, arXiv:2006.11239, fig. 2) draws the model as two Markov chains on the same variables,
# and so do we. The forward chain $q$ (solid, above the nodes) is fixed: each arrow is the kernel
# $q(x_t \mid x_{t-1})$ of chapter 1. The reverse chain $p_\theta$ (dashed, below) runs the other way and is what a
# network has to learn. Look at the labelled pair $x_{t-1}, x_t$: this chapter computes the Gaussian that the dashed
# arrow between them should match once the shaded node $x_0$ on the far left is known.

# %%
fig = ddpm_chain()
plt.show()

# %% [markdown]
# ## 1. Bayes' rule with the Markov property
#
# Condition on $x_0$ throughout and apply Bayes' rule to the pair $(x_{t-1}, x_t)$:
#
# $$q(x_{t-1} \mid x_t, x_0) = \frac{q(x_t \mid x_{t-1}, x_0)\, q(x_{t-1} \mid x_0)}{q(x_t \mid x_0)}
#   = \frac{q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)}{q(x_t \mid x_0)}.$$
#
# The second equality is the Markov property: once $x_{t-1}$ is known, $x_0$ tells us nothing more about $x_t$.
# Every factor is known from chapter 1: the **likelihood** $q(x_t \mid x_{t-1}) = \mathcal{N}(\sqrt{\alpha_t}\, x_{t-1}, \beta_t I)$
# (DDPM eq. (2)), the **prior** $q(x_{t-1} \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_{t-1}}\, x_0, (1 - \bar\alpha_{t-1}) I)$
# and the **evidence** $q(x_t \mid x_0)$ (both DDPM eq. (4)). The evidence does not depend on $x_{t-1}$, so as a function
# of $x_{t-1}$ the posterior is proportional to likelihood times prior.
#
# Without $x_0$ this would fail: $q(x_{t-1} \mid x_t) = \int q(x_{t-1} \mid x_t, x_0)\, q(x_0 \mid x_t)\, dx_0$ mixes over every
# image that could have produced $x_t$, and $q(x_0 \mid x_t)$ involves the data distribution. With $x_0$ given, all
# covariances are multiples of $I$ and every pixel can be treated on its own: the derivation is one-dimensional.

# %% [markdown]
# ## 2. Completing the square
#
# A Gaussian density in $y$ with mean $\mu$ and variance $\sigma^2$ has $-2 \log p(y) = y^2 / \sigma^2 - 2 y \mu / \sigma^2 + \text{const}$.
# So if we expand $-2 \log(\text{likelihood} \times \text{prior})$ as a polynomial in $y = x_{t-1}$, the coefficient of $y^2$
# is the **precision** $1/\tilde\beta_t$ and minus half the coefficient of $y$ is $\tilde\mu_t / \tilde\beta_t$. We let sympy do the
# expansion, first with $\alpha_t$ and $\beta_t$ as unrelated symbols, since completing the square does not need $\alpha_t + \beta_t = 1$.

# %%
# NBVAL_CHECK_OUTPUT
a, b, ab_prev, ab_t = sp.symbols("alpha_t beta_t alphabar_{t-1} alphabar_t", positive=True)
y, x_t, x0, eps = sp.symbols("x_{t-1} x_t x_0 epsilon", real=True)

minus_two_log = (x_t - sp.sqrt(a) * y) ** 2 / b + (y - sp.sqrt(ab_prev) * x0) ** 2 / (1 - ab_prev)
quadratic = sp.Poly(sp.expand(minus_two_log), y)
assert quadratic.degree() == 2
precision = quadratic.coeff_monomial(y**2)
precision_times_mean = sp.collect(sp.expand(-quadratic.coeff_monomial(y) / 2), [x0, x_t])
mu_tilde = precision_times_mean / precision
beta_tilde = 1 / precision

# what is left after removing the square does not depend on y: the posterior is exactly Gaussian
assert sp.simplify(sp.diff(minus_two_log - (y - mu_tilde) ** 2 / beta_tilde, y)) == 0
print("1 / beta_tilde            =", precision)
print("mu_tilde / beta_tilde     =", precision_times_mean)

# %% [markdown]
# Both lines have a clean reading. **Precisions add**: the likelihood, seen as a function of $x_{t-1}$, has precision
# $\alpha_t / \beta_t$, the prior has precision $1/(1 - \bar\alpha_{t-1})$. And the **mean is a precision-weighted average** of
# the two guesses for $x_{t-1}$: $x_t / \sqrt{\alpha_t}$ (undo the shrinking) from the likelihood and $\sqrt{\bar\alpha_{t-1}}\, x_0$
# from the prior.
#
# Now impose DDPM's relations $\beta_t = 1 - \alpha_t$ and $\bar\alpha_t = \alpha_t \bar\alpha_{t-1}$ and compare with DDPM eq. (7):
#
# $$\tilde\mu_t(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\, \beta_t}{1 - \bar\alpha_t}\, x_0 + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t,
#   \qquad \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t.$$

# %%
# NBVAL_CHECK_OUTPUT
ddpm = {b: 1 - a}
to_ab_t = {ab_t: a * ab_prev}
mu_eq7 = sp.sqrt(ab_prev) * b / (1 - ab_t) * x0 + sp.sqrt(a) * (1 - ab_prev) / (1 - ab_t) * x_t
beta_tilde_eq7 = (1 - ab_prev) / (1 - ab_t) * b
assert sp.simplify((beta_tilde - beta_tilde_eq7.subs(to_ab_t)).subs(ddpm)) == 0
assert sp.simplify((mu_tilde - mu_eq7.subs(to_ab_t)).subs(ddpm)) == 0

coef_x0 = sp.factor(sp.simplify(mu_tilde.diff(x0).subs(ddpm))).subs(a * ab_prev, ab_t)
coef_xt = sp.factor(sp.simplify(mu_tilde.diff(x_t).subs(ddpm))).subs(a * ab_prev, ab_t)
print("beta_tilde        =", sp.factor(sp.simplify(beta_tilde.subs(ddpm))).subs(a * ab_prev, ab_t))
print("coefficient of x0 =", coef_x0)
print("coefficient of xt =", coef_xt)

# %% [markdown]
# (sympy writes $(\alpha_t - 1)/(\bar\alpha_t - 1)$ for $\beta_t / (1 - \bar\alpha_t)$.) These are the arrays
# `schedule.posterior_variances`, `schedule.posterior_x0_coefs` and `schedule.posterior_xt_coefs`, and `schedule.q_posterior(x0, x_t, t)`
# returns $(\tilde\mu_t, \tilde\beta_t)$.
#
# **A form to avoid.** One can rewrite the $x_0$ coefficient as $\sqrt{\bar\alpha_{t-1}} - \sqrt{\bar\alpha_t}\, c_t$, where
# $c_t = \sqrt{\alpha_t}(1 - \bar\alpha_{t-1})/(1 - \bar\alpha_t)$ is the $x_t$ coefficient: that says the posterior mean at the
# noiseless point $x_t = \sqrt{\bar\alpha_t}\, x_0$ is $\sqrt{\bar\alpha_{t-1}}\, x_0$, as it must be. Since
# $\sqrt{\bar\alpha_t}\sqrt{\alpha_t} = \alpha_t \sqrt{\bar\alpha_{t-1}}$, this reads $\sqrt{\bar\alpha_{t-1}} - \alpha_t\sqrt{\bar\alpha_{t-1}}(1 - \bar\alpha_{t-1})/(1 - \bar\alpha_t)$.
# A version that circulates in reviews of the DDIM paper drops the second $\sqrt{\bar\alpha_{t-1}}$ and writes
# $\sqrt{\bar\alpha_{t-1}} - \alpha_t (1 - \bar\alpha_{t-1})/(1 - \bar\alpha_t)$; sympy and the schedule show that it is not the same.

# %%
# NBVAL_CHECK_OUTPUT
c_t = sp.sqrt(a) * (1 - ab_prev) / (1 - a * ab_prev)
correct = mu_tilde.diff(x0).subs(ddpm)  # the x_0 coefficient, from the completed square of section 2
circulated = sp.sqrt(ab_prev) - a * (1 - ab_prev) / (1 - a * ab_prev)
assert sp.simplify(correct - (sp.sqrt(ab_prev) - sp.sqrt(a * ab_prev) * c_t)) == 0  # the rewriting holds
noiseless = mu_tilde.subs(ddpm).subs(x_t, sp.sqrt(a * ab_prev) * x0)  # the mean at x_t = sqrt(abar_t) x_0
assert sp.simplify(noiseless - sp.sqrt(ab_prev) * x0) == 0  # ... is sqrt(abar_{t-1}) x_0, as the rewriting says
gap = sp.factor(sp.simplify(circulated - correct))
assert gap != 0
print("circulated - correct =", gap)
for t in (2, 100, 500):
    values = {a: schedule.alphas[t].item(), ab_prev: schedule.alpha_bars[t - 1].item()}
    print(
        f"t = {t:3d}: posterior_x0_coefs[t] = {schedule.posterior_x0_coefs[t].item():.6f}, "
        f"correct form = {float(correct.subs(values)):.6f}, circulated form = {float(circulated.subs(values)):.6f}"
    )

# %% [markdown]
# The two differ by $\alpha_t (1 - \bar\alpha_{t-1})(1 - \sqrt{\bar\alpha_{t-1}}) / (1 - \bar\alpha_t)$: tiny for small $t$, where
# $\bar\alpha_{t-1} \approx 1$, which is why the slip is easy to miss, and large later on; by $t = 100$ the circulated
# coefficient already has the wrong sign.
#
# ## 3. The last step, $t = 1$: $\tilde\beta_1 = 0$
#
# At $t = 1$ the prior is $q(x_0 \mid x_0)$, a point mass: $\bar\alpha_0 = 1$ makes its variance $1 - \bar\alpha_0 = 0$ and its
# precision infinite. The formulas of section 2 extend by continuity: as $\bar\alpha_{t-1} \to 1$, $\tilde\beta_t \to 0$ and
# $\tilde\mu_t \to x_0$. That is common sense (given $x_0$, the posterior of $x_0$ is $x_0$), and it has a practical
# consequence: a DDPM sampler with variance $\tilde\beta_t$ adds no noise at its last step (chapter 4).

# %%
# NBVAL_CHECK_OUTPUT
last_var = sp.limit(beta_tilde_eq7.subs(to_ab_t).subs(ddpm), ab_prev, 1)
last_mean = sp.limit(sp.simplify(mu_eq7.subs(to_ab_t).subs(ddpm)), ab_prev, 1)
assert last_var == 0 and sp.simplify(last_mean - x0) == 0
print("limit alphabar_{t-1} -> 1:  beta_tilde ->", last_var, ",  mu_tilde ->", sp.simplify(last_mean))

x0_img, x1_img = (
    images[:2].double(),
    schedule.q_sample(images[:2].double(), 1, generator=torch.Generator().manual_seed(3)),
)
mean_1, var_1 = schedule.q_posterior(x0_img, x1_img, 1)
assert var_1.item() == 0.0 and torch.allclose(mean_1, x0_img, atol=1e-12)
print(f"schedule.posterior_variances[1] = {schedule.posterior_variances[1].item()}")
print(
    f"schedule.posterior_x0_coefs[1] = {schedule.posterior_x0_coefs[1].item():.12f}, schedule.posterior_xt_coefs[1] = {schedule.posterior_xt_coefs[1].item()}"
)

# %% [markdown]
# ## 4. The mean in terms of the noise
#
# A network will not see $x_0$; it sees $x_t$ and predicts the noise $\epsilon$ that produced it. Since
# $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$, we can trade $x_0$ for $\epsilon$,
# $x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\, \epsilon) / \sqrt{\bar\alpha_t}$, and the posterior mean becomes
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \epsilon\Big).$$
#
# This is the expression inside DDPM eq. (10), and replacing $\epsilon$ by a prediction $\epsilon_\theta(x_t, t)$ gives the
# parameterisation of the reverse mean, DDPM eq. (11). Note the two different alphas: one step's $\alpha_t$ outside,
# the whole way's $\bar\alpha_t$ under the square root.
#
# The same mean can also be written "DDIM style" (DDIM eq. (7) with its $\alpha$ read as our $\bar\alpha$; chapter 5):
# $\tilde\mu_t = \sqrt{\bar\alpha_{t-1}}\, x_0 + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\, \epsilon$ with $\sigma_t^2 = \tilde\beta_t$.
# sympy checks both.

# %%
# NBVAL_CHECK_OUTPUT
x0_from_eps = (x_t - sp.sqrt(1 - ab_t) * eps) / sp.sqrt(ab_t)
mu_eps = (mu_eq7.subs(x0, x0_from_eps)).subs(to_ab_t).subs(ddpm)
eq10 = ((x_t - b / sp.sqrt(1 - ab_t) * eps) / sp.sqrt(a)).subs(to_ab_t).subs(ddpm)
assert sp.simplify(mu_eps - eq10) == 0

# DDIM form: the radicand 1 - abar_{t-1} - beta_tilde is a perfect square over (1 - abar_t), so its root is
# sqrt(alpha_t) (1 - abar_{t-1}) / sqrt(1 - abar_t) (all factors are positive for 0 < alpha_t, abar_{t-1} < 1)
radicand = (1 - ab_prev - beta_tilde_eq7).subs(to_ab_t).subs(ddpm)
assert sp.simplify(radicand - a * (1 - ab_prev) ** 2 / (1 - a * ab_prev)) == 0
ddim_form = sp.sqrt(ab_prev) * x0_from_eps + sp.sqrt(a) * (1 - ab_prev) / sp.sqrt(1 - ab_t) * eps
assert sp.simplify((ddim_form - mu_eq7.subs(x0, x0_from_eps)).subs(to_ab_t).subs(ddpm)) == 0
print("coefficient of x_t    :", sp.simplify(mu_eps.diff(x_t)))
print("coefficient of epsilon:", sp.simplify(mu_eps.diff(eps)))

# %% [markdown]
# The package's DDIM step (chapter 6) with $\eta = 1$ and its noise switched off should therefore return exactly
# `schedule.q_posterior` evaluated at the $x_0$ implied by $\epsilon$. It does:

# %%
gen = torch.Generator().manual_seed(4)
x_t_img = torch.randn((3, 1, 28, 28), generator=gen, dtype=torch.float64)
eps_img = torch.randn(x_t_img.shape, generator=gen, dtype=torch.float64)
for t in (1, 2, 10, 500, 1000):
    x0_hat = (x_t_img - (1 - schedule.alpha_bars[t]).sqrt() * eps_img) / schedule.alpha_bars[t].sqrt()
    posterior_mean = schedule.q_posterior(x0_hat, x_t_img, t)[0]
    ddim_mean = samplers.ddim_step(
        x_t_img, eps_img, schedule.alpha_bars[t], schedule.alpha_bars[t - 1], eta=1.0, noise=torch.zeros_like(x_t_img)
    )
    assert torch.allclose(ddim_mean, posterior_mean, rtol=1e-9, atol=1e-9), t
print("DDIM step with eta = 1 and no noise == mu_tilde(x0_hat, x_t) at t = 1, 2, 10, 500, 1000")

# %% [markdown]
# ## 5. Checking against Bayes' rule numerically
#
# ### 5a. Quadrature on a grid
#
# For one pixel the posterior is a density on the line, and Bayes' rule can be applied literally: evaluate
# likelihood $\times$ prior on a fine grid of $x_{t-1}$ values, normalise by the trapezoidal rule, and compute the mean
# and variance. Nothing here uses $\tilde\mu_t$ or $\tilde\beta_t$. As a bonus the normaliser is the evidence, which must
# equal the chapter-1 marginal $q(x_t \mid x_0)$, and the normalised curve must be the Gaussian
# $\mathcal{N}(\tilde\mu_t, \tilde\beta_t)$ point by point. We take a grey pixel $x_0 = 0.6$ and $x_t$ made with the noise value $0.8$.


# %%
# NBVAL_CHECK_OUTPUT
def normal_pdf(z, mean, var):
    return np.exp(-((z - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)


grid = np.linspace(-6.0, 6.0, 600_001)  # spacing 2e-5, far below the smallest posterior std used (7.7e-3)
pixel, noise_value = 0.6, 0.8
print(
    f"{'t':>5} {'mean (grid)':>13} {'mean (q_posterior)':>19} {'var (grid)':>12} {'var (q_posterior)':>18} "
    f"{'evidence ratio':>15} {'shape error':>12}"
)
for t in (2, 10, 100, 500, 1000):
    ab, ab_before, alpha_t, beta_t = (
        v.item() for v in (schedule.alpha_bars[t], schedule.alpha_bars[t - 1], schedule.alphas[t], schedule.betas[t])
    )
    x_t_val = math.sqrt(ab) * pixel + math.sqrt(1 - ab) * noise_value
    unnormalised = normal_pdf(x_t_val, math.sqrt(alpha_t) * grid, beta_t) * normal_pdf(
        grid, math.sqrt(ab_before) * pixel, 1 - ab_before
    )
    evidence = np.trapezoid(unnormalised, grid)
    density = unnormalised / evidence
    grid_mean = np.trapezoid(grid * density, grid)
    grid_var = np.trapezoid((grid - grid_mean) ** 2 * density, grid)

    mean_pkg, var_pkg = schedule.q_posterior(
        torch.tensor([pixel], dtype=torch.float64), torch.tensor([x_t_val], dtype=torch.float64), t
    )
    mean_pkg, var_pkg = mean_pkg.item(), var_pkg.item()
    evidence_ratio = evidence / normal_pdf(x_t_val, math.sqrt(ab) * pixel, 1 - ab)
    shape_error = np.abs(density - normal_pdf(grid, mean_pkg, var_pkg)).max() / density.max()
    assert abs(grid_mean - mean_pkg) < 1e-9 and abs(grid_var / var_pkg - 1) < 1e-8
    assert abs(evidence_ratio - 1) < 1e-9 and shape_error < 1e-8
    print(
        f"{t:5d} {grid_mean:13.8f} {mean_pkg:19.8f} {grid_var:12.6e} {var_pkg:18.6e} {evidence_ratio:15.10f} {'< 1e-8':>12}"
    )

# %% [markdown]
# Mean and variance agree to all printed digits, the evidence is the chapter-1 marginal, and the posterior is
# Gaussian to within the grid's rounding.
#
# ### 5b. Monte Carlo on MNIST digits
#
# Now a check by simulation, on real images and with the package's forward process. We take 256 MNIST digits, draw
# $x_{t-1} \sim q(x_{t-1} \mid x_0)$ with `schedule.q_sample`, then take **one forward step**
# $x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon$, which gives samples of the joint $q(x_{t-1}, x_t \mid x_0)$ for
# 200,704 pixels. Because everything is jointly Gaussian, $\mathbb{E}[x_{t-1} \mid x_t, x_0]$ is exactly linear in $(x_0, x_t)$,
# so instead of conditioning on a narrow bin of $x_t$ we can regress $x_{t-1}$ on $x_0$ and $x_t$ by least squares: the two
# fitted coefficients estimate `posterior_x0_coefs[t]` and `posterior_xt_coefs[t]`, and the residual variance estimates
# $\tilde\beta_t$. The last column is the largest of the three $z$-scores (estimate minus formula over its standard error).

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(5)
x0_mc = images[:256].double()
print(
    f"{'t':>5} {'x0 coef MC':>11} {'formula':>9} {'xt coef MC':>11} {'formula':>9} {'resid var MC':>13} "
    f"{'beta_tilde':>11} {'max|z|':>7}"
)
for t in (2, 10, 100, 500, 1000):
    x_before = schedule.q_sample(x0_mc, t - 1, generator=gen)
    x_after = schedule.alphas[t].sqrt() * x_before + schedule.betas[t].sqrt() * torch.randn(
        x_before.shape, generator=gen, dtype=torch.float64
    )
    design = torch.stack([x0_mc.flatten(), x_after.flatten()], dim=1)  # (n, 2)
    target = x_before.flatten()
    coefs = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
    n = target.numel()
    resid_var = (target - design @ coefs).pow(2).sum() / (n - 2)
    coef_se = (resid_var * torch.linalg.inv(design.T @ design).diagonal()).sqrt()
    expected = torch.stack([schedule.posterior_x0_coefs[t], schedule.posterior_xt_coefs[t]])
    z = torch.cat(
        [
            (coefs - expected) / coef_se,
            ((resid_var / schedule.posterior_variances[t] - 1) / math.sqrt(2 / (n - 2)))[None],
        ]
    )
    assert z.abs().max() < 4.5, f"t = {t}: Monte Carlo disagrees with q_posterior"
    print(
        f"{t:5d} {coefs[0].item():11.4f} {expected[0].item():9.4f} {coefs[1].item():11.4f} {expected[1].item():9.4f} "
        f"{resid_var.item():13.4e} {schedule.posterior_variances[t].item():11.4e} {z.abs().max().item():7.2f}"
    )

# %% [markdown]
# ## 6. Two variances: $\beta_t$ and $\tilde\beta_t$
#
# DDPM's reverse steps are Gaussians $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ with a fixed
# variance, and Ho et al. (sec. 3.2) report that two choices work about equally well: $\sigma_t^2 = \beta_t$ and
# $\sigma_t^2 = \tilde\beta_t$. For data whose every coordinate has variance at most 1 (DDPM's own qualifier, sec. 3.2),
# they are the two extreme cases of the same calculation. The true reverse variance
# $\mathrm{Var}[x_{t-1} \mid x_t]$ depends on the data; for Gaussian data it follows from the Gaussian conditioning rule
# $\mathrm{Var}[Y \mid X] = \mathrm{Var}\, Y - \mathrm{Cov}(X, Y)^2 / \mathrm{Var}\, X$.
#
# - If $x_0$ is a **single point** (no uncertainty left about it), $\mathrm{Var}\, x_{t-1} = 1 - \bar\alpha_{t-1}$ and we get $\tilde\beta_t$ back.
# - If $x_0 \sim \mathcal{N}(0, I)$, every $x_t$ is $\mathcal{N}(0, I)$ as well, and we get exactly $\beta_t$.


# %%
# NBVAL_CHECK_OUTPUT
def reverse_variance(var_prev):
    """Var[x_{t-1} | x_t] when x_{t-1} has variance var_prev and x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps."""
    cov, var_xt = sp.sqrt(a) * var_prev, a * var_prev + b
    return sp.simplify((var_prev - cov**2 / var_xt).subs(ddpm))


point_mass = reverse_variance(1 - ab_prev)
standard_normal = reverse_variance(sp.Integer(1))
assert sp.simplify(point_mass - beta_tilde_eq7.subs(to_ab_t).subs(ddpm)) == 0
assert sp.simplify(standard_normal - (1 - a)) == 0
print("x0 a single point:  Var[x_{t-1} | x_t] =", sp.factor(point_mass).subs(a * ab_prev, ab_t))
print("x0 ~ N(0, 1):       Var[x_{t-1} | x_t] =", standard_normal)

# %% [markdown]
# Real data sit in between, and the figure shows how far apart the two ends are. Their ratio
# $\tilde\beta_t / \beta_t = (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)$ is 0 at $t = 1$, about $1/2$ at $t = 2$, and then
# creeps towards 1, which it reaches to within 1% only after 150 to 200 steps. On a log scale in $t$, the two
# variances differ by a large factor only over the first handful of steps, at the end of sampling where the image is
# almost clean. That is why the two choices give similar samples (DDPM sec. 3.2) while they matter for the
# log-likelihood, which is sensitive to those last steps (improved DDPM, Nichol & Dhariwal 2021, learns an
# interpolation between them).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
t_axis = torch.arange(1, schedule.T + 1)
for name, sched, color in (("linear", schedule, "C0"), ("cosine", cosine, "C1")):
    ax1.loglog(t_axis, sched.betas[1:], "-", color=color, label=rf"$\beta_t$ ({name})")
    ax1.loglog(t_axis[1:], sched.posterior_variances[2:], "--", color=color, label=rf"$\tilde\beta_t$ ({name})")
    ax2.semilogx(t_axis, sched.posterior_variances[1:] / sched.betas[1:], "-", color=color, label=name)
ax1.set(xlabel="t (log scale)", ylabel="variance", title=r"$\beta_t$ (solid) and $\tilde\beta_t$ (dashed)")
ax1.legend(fontsize=8)
ax2.axhline(1, color="gray", lw=0.8, ls=":")
ax2.set(
    xlabel="t (log scale)",
    ylabel=r"$\tilde\beta_t / \beta_t$",
    title=r"ratio $(1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)$",
)
ax2.legend()
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
for name, sched in (("linear", schedule), ("cosine", cosine)):
    ratio = sched.posterior_variances[1:] / sched.betas[1:]
    t_half, t_99 = (int(torch.nonzero(ratio > level)[0]) + 1 for level in (0.5, 0.99))
    print(
        f"{name}: beta_tilde / beta = {ratio[0].item():.1f} at t = 1, passes 0.5 at t = {t_half} and 0.99 at t = {t_99}"
    )

# %% [markdown]
# ## Summary
#
# - By Bayes' rule and the Markov property, $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$, a product of
#   two Gaussians in $x_{t-1}$: precisions add and the mean is the precision-weighted average of $x_t/\sqrt{\alpha_t}$ and
#   $\sqrt{\bar\alpha_{t-1}}\, x_0$.
# - Completing the square gives DDPM eq. (7): $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t} x_0 + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t$
#   and $\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t$; at $t = 1$, $\tilde\beta_1 = 0$ and $\tilde\mu_1 = x_0$.
# - In terms of the noise, $\tilde\mu_t = (x_t - \beta_t \epsilon / \sqrt{1 - \bar\alpha_t}) / \sqrt{\alpha_t}$ (DDPM eqs. (10)-(11)); it equals
#   a DDIM step with $\eta = 1$ and no noise.
# - `schedule.q_posterior` agrees with Bayes' rule applied by quadrature (to 8 digits or better) and with a least-squares Monte Carlo
#   estimate on 200,704 MNIST pixels (all $|z| < 4.5$).
# - $\tilde\beta_t$ is the reverse variance when $x_0$ is known, $\beta_t$ when $x_0 \sim \mathcal{N}(0, I)$; they differ by a large
#   factor only in the first few steps and by more than 1% only in the first 200.
#
# ## Exercises
#
# **2.1 (code).** Write `my_posterior(x0, x_t, t)` returning the pair $(\tilde\mu_t, \tilde\beta_t)$ for DDPM's linear
# schedule (the chapter's `schedule`), for tensors of shape (B, ...) and `t` an int or an int64 tensor (B,). The variance may be a number, a tensor (B,)
# or anything that broadcasts to the mean. Fill in the exercise cell and run it: `ch02.check_q_posterior` grades your function.
# The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_posterior(x0, x_t, t):
    mean = ...  # DDPM eq. (7): a weighted sum of x0 and x_t
    var = ...  # beta_tilde_t
    return mean, var


result = ch02.check_q_posterior(my_posterior)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_posterior(x0, x_t, t):
    t = torch.as_tensor(t)
    shape = (-1, *([1] * (x_t.ndim - 1))) if t.ndim else ()  # one t per sample: (B, 1, ..., 1)
    ab_t, ab_prev, beta_t = (
        table[index].reshape(shape)
        for table, index in ((schedule.alpha_bars, t), (schedule.alpha_bars, t - 1), (schedule.betas, t))
    )
    mean = (ab_prev.sqrt() * beta_t * x0 + (1 - beta_t).sqrt() * (1 - ab_prev) * x_t) / (1 - ab_t)
    return mean.to(x_t.dtype), (1 - ab_prev) / (1 - ab_t) * beta_t


result = ch02.check_q_posterior(my_posterior)

# %% [markdown]
# **2.2 (code).** Write `my_mean_eps(x_t, eps, t)` returning $\tilde\mu_t$ from $x_t$ and $\epsilon$ with the formula of
# section 4, for an int `t`. The grader's reference is `schedule.q_posterior` at the $x_0$ implied by $\epsilon$. (Section 4 showed
# that the package's DDIM step with $\eta = 1$ and no noise computes the same thing.)


# %% tags=["exercise"]
def my_mean_eps(x_t, eps, t):
    return ...


result = ch02.check_posterior_mean_eps(my_mean_eps)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_mean_eps(x_t, eps, t):
    beta_t, ab_t = schedule.betas[t], schedule.alpha_bars[t]
    return (x_t - beta_t / (1 - ab_t).sqrt() * eps) / (1 - beta_t).sqrt()


result = ch02.check_posterior_mean_eps(my_mean_eps)

# %% [markdown]
# **2.3 (pen and paper, then code).** DDIM samples on a sub-sequence of timesteps, so it needs the posterior of an
# *earlier* step $t' < t - 1$. (a) Show that $q(x_t \mid x_{t'}) = \mathcal{N}\big(\sqrt{\bar\alpha_t / \bar\alpha_{t'}}\, x_{t'}, (1 - \bar\alpha_t / \bar\alpha_{t'}) I\big)$.
# (b) Repeat section 2 with this kernel in place of the one-step kernel to find the mean and variance of $q(x_{t'} \mid x_t, x_0)$.
# (c) Check that $t' = t - 1$ gives back $\tilde\mu_t$ and $\tilde\beta_t$, and that $t' = 0$ gives $(x_0, 0)$. Then code it as
# `my_skip(x0, x_t, t_prev, t)` for ints `t_prev` < `t`. The reference `ch02.skip_posterior` uses a trick worth finding
# yourself: a schedule whose only two steps are $\bar\alpha_{t'}$ and $\bar\alpha_t$. Worked solution of (a)-(c): appendix C.


# %% tags=["exercise"]
def my_skip(x0, x_t, t_prev, t):
    mean = ...
    var = ...
    return mean, var


result = ch02.check_skip_posterior(my_skip)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_skip(x0, x_t, t_prev, t):
    a, a_prev = schedule.alpha_bars[t], schedule.alpha_bars[t_prev]
    ratio = a / a_prev  # the "alpha" of one jump from t_prev to t
    mean = (a_prev.sqrt() * (1 - ratio) * x0 + ratio.sqrt() * (1 - a_prev) * x_t) / (1 - a)
    return mean, (1 - a_prev) / (1 - a) * (1 - ratio)


result = ch02.check_skip_posterior(my_skip)

# %% [markdown]
# **2.4 (pen and paper).** Let the data be Gaussian with per-pixel variance $v$, $x_0 \sim \mathcal{N}(0, v)$.
# (a) Find $\mathrm{Var}[x_{t-1} \mid x_t]$ in closed form. (b) Show that it increases with $v$, equals $\tilde\beta_t$ at $v = 0$
# and $\beta_t$ at $v = 1$. (c) What happens for $v > 1$, and as $v \to \infty$? (d) Explain why the answer is already close to
# $\beta_t$ once $v$ is much larger than $1 - \bar\alpha_{t-1}$. The cell below estimates the answer by Monte Carlo (the residual
# variance of regressing $x_{t-1}$ on $x_t$) at $t = 10$ for a few $v$, so you can test your formula. Worked solution: appendix C.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(6)
t = 10
print(f"t = {t}: beta_tilde = {schedule.posterior_variances[t].item():.4e}, beta = {schedule.betas[t].item():.4e}")
for v_data in (0.0, 1e-3, 1e-2, 1.0):
    x0_g = math.sqrt(v_data) * torch.randn(400_000, generator=gen, dtype=torch.float64)
    x_before = schedule.q_sample(x0_g, t - 1, generator=gen)
    x_after = schedule.alphas[t].sqrt() * x_before + schedule.betas[t].sqrt() * torch.randn(
        x0_g.shape, generator=gen, dtype=torch.float64
    )
    slope = (x_before * x_after).mean() / (x_after * x_after).mean()  # everything has mean zero
    print(f"v = {v_data:5.3f}: Monte Carlo Var[x_(t-1) | x_t] = {(x_before - slope * x_after).var().item():.4e}")
