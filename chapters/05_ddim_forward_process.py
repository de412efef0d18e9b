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
# # Chapter 5 — DDIM's non-Markovian forward process
#
# DDPM trains a network on the marginals $q(x_t \mid x_0)$ alone, yet samples with a Markov chain that was
# built from the one-step kernels $q(x_t \mid x_{t-1})$. DDIM (Song, Meng & Ermon 2021) asks what else is
# compatible with the same marginals. The answer is a whole family of forward processes, indexed by a vector
# of standard deviations $\sigma$, that share every marginal with DDPM but differ in how the $x_t$ are
# correlated with one another. This chapter builds that family and proves its defining property.
#
# In this chapter you will be able to
#
# - translate between the DDIM paper's notation and the DDPM names this book uses;
# - write down the family $q_\sigma(x_{1:T} \mid x_0)$ and say why it is not a Markov chain;
# - prove the **variance law** (every member has the marginal $\mathcal N(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)$)
#   three ways, and spot the slip in a widely copied version of the third proof;
# - explain why the same $L_\text{simple}$ trains every member (DDIM Theorem 1);
# - recover DDPM's posterior at $\eta = 1$, and confirm all of it numerically on MNIST digits.

# %%
import math

import matplotlib.pyplot as plt
import sympy as sp
import torch
from sympy.stats import E, Normal, variance
from torch.distributions import Normal as TorchNormal
from torch.distributions import kl_divergence

from ddim_book import samplers
from ddim_book.data import mnist_dataset
from ddim_book.diagrams import ddim_forward_process
from ddim_book.exercises import ch05
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
torch.set_num_threads(1)  # the tensors here are small: one thread is faster than two competing ones
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule
T, ab = schedule.T, schedule.alpha_bars  # ab[t] is alpha_bar_t, ab[0] = 1
digits, _ = mnist_dataset("train")  # float32 (9000, 1, 28, 28) in [-1, 1]
digits = digits.double()
print(schedule)

# %% [markdown]
# ## 5.1 The notation bridge
#
# The DDIM paper writes $\alpha_t$ for the quantity DDPM (and this book) calls $\bar\alpha_t$. Every formula
# quoted from DDIM below has been translated:
#
# | DDIM paper | this book (DDPM names) | code |
# |---|---|---|
# | $\alpha_t$ | $\bar\alpha_t = \prod_{s \le t} \alpha_s$ | `schedule.alpha_bars[t]` |
# | $\alpha_t / \alpha_{t-1}$ | $\alpha_t = 1 - \beta_t$ | `schedule.alphas[t]` |
# | $\alpha_0 := 1$ | $\bar\alpha_0 = 1$ | `schedule.alpha_bars[0]` |
# | $\epsilon_\theta^{(t)}(x_t)$ | $\epsilon_\theta(x_t, t)$ | `model(x_t, t)` |
# | $\sigma_t$ | $\sigma_t$ (a free standard deviation) | `samplers.ddim_sigma(...)` |
#
# So when DDIM writes $\sqrt{1-\alpha_{t-1}-\sigma_t^2}$ we write $\sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}$. Timesteps
# are 1-based, $t = 1, \dots, T$.
#
# ## 5.2 A family of forward processes
#
# For any $\sigma = (\sigma_1, \dots, \sigma_T)$ with $\sigma_t \ge 0$, DDIM eq. (6) defines a joint distribution
# *from the top down*:
#
# $$q_\sigma(x_{1:T} \mid x_0) = q_\sigma(x_T \mid x_0) \prod_{t=2}^{T} q_\sigma(x_{t-1} \mid x_t, x_0),
# \qquad q_\sigma(x_T \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_T}\,x_0,\ (1-\bar\alpha_T) I\big),$$
#
# with the reverse kernels of DDIM eq. (7):
#
# $$q_\sigma(x_{t-1} \mid x_t, x_0) = \mathcal N\Big(\sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\;
# \frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{\sqrt{1-\bar\alpha_t}},\ \sigma_t^2 I\Big).$$
#
# Read the mean as "go to the right noise level $\sqrt{\bar\alpha_{t-1}}\,x_0$, and keep a fraction of the noise
# that $x_t$ carries, $(x_t - \sqrt{\bar\alpha_t}x_0)/\sqrt{1-\bar\alpha_t}$"; $\sigma_t$ decides how much fresh
# noise replaces the old. We need $\sigma_t^2 \le 1 - \bar\alpha_{t-1}$ for the square root to be real.
#
# The forward direction follows from Bayes' rule (DDIM eq. (8)):
# $q_\sigma(x_t \mid x_{t-1}, x_0) = q_\sigma(x_{t-1} \mid x_t, x_0)\, q_\sigma(x_t \mid x_0) / q_\sigma(x_{t-1} \mid x_0)$.
# It is Gaussian, but in general it depends on $x_0$ as well as on $x_{t-1}$: the process is **not Markovian**.
# DDPM's Markov chain is the one exception in the family (section 5.9 proves that it is the member $\eta = 1$, and
# that no other member is Markovian);
# $\sigma = 0$ is the other extreme, in which $x_{1:T}$ is a deterministic function of $(x_T, x_0)$.
#
# The diagram draws this joint (after DDIM fig. 1; Song, Meng & Ermon 2021, arXiv:2010.02502). Look at the arrows out
# of $x_0$: every node has one, so knowing $x_{t-1}$ does not cut $x_t$ off from $x_0$. In chapter 2's picture of DDPM,
# $x_0$ touches only $x_1$, and each $x_t$ depends on the past through $x_{t-1}$ alone.

# %%
fig = ddim_forward_process()

# %% [markdown]
# The paper parametrises $\sigma$ by one number $\eta \ge 0$ (DDIM eq. (16)):
#
# $$\sigma_t(\eta) = \eta \sqrt{\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}} \sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}} .$$
#
# $\eta$ multiplies the *standard deviation*, so the variance carries $\eta^2$. Some reviews write
# $\sigma_t^2 = \eta\,\tilde\beta_t$ instead; that is a different family which agrees with eq. (16) only at
# $\eta \in \{0, 1\}$. The package follows the paper:

# %%
# NBVAL_CHECK_OUTPUT
t, eta = 500, 0.5
sigma_pkg = samplers.ddim_sigma(ab[t], ab[t - 1], eta).item()
beta_tilde = schedule.posterior_variances[t].item()
print(f"sigma_500(0.5)^2         = {sigma_pkg**2:.6e}")
print(f"eta^2 * beta_tilde_500   = {eta**2 * beta_tilde:.6e}")
print(f"eta   * beta_tilde_500   = {eta * beta_tilde:.6e}   (the other family)")
assert abs(sigma_pkg**2 - eta**2 * beta_tilde) < 1e-15

# %% [markdown]
# ## 5.3 The variance law, proof 1: induction
#
# **Claim.** For every admissible $\sigma$ and every $t$, $q_\sigma(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)$:
# exactly DDPM's marginal (DDPM eq. (4)).
#
# The covariances are multiples of $I$, so the coordinates are independent and it is enough to prove the claim
# for one coordinate. We go down from $t = T$, where the claim holds by definition. Assume it holds at $t$. Then
#
# $$q_\sigma(x_{t-1} \mid x_0) = \int q_\sigma(x_{t-1} \mid x_t, x_0)\, q_\sigma(x_t \mid x_0)\, dx_t .$$
#
# The exponent of the integrand is a quadratic $-A x_t^2 + B x_t + C$ in $x_t$, and
# $\int e^{-A u^2 + B u}\,du = \sqrt{\pi/A}\, e^{B^2/(4A)}$. We let sympy check that integral, collect $A$, $B$, $C$,
# integrate, and compare the result with $\mathcal N(\sqrt{\bar\alpha_{t-1}}\,x_0, 1-\bar\alpha_{t-1})$: first the
# exponent, then the normalising constant. (We take $\sigma_t > 0$ so that the kernel has a density; $\sigma_t = 0$
# is covered by proofs 2 and 3.)

# %%
a_t, a_prev, sigma = sp.symbols("abar_t abar_{t-1} sigma_t", positive=True)
x0, xt, xprev = sp.symbols("x_0 x_t x_{t-1}", real=True)


def ddim_posterior_mean(x_t, x_0, abar_t, abar_prev, sig):
    """The mean of DDIM eq. (7), as a sympy expression."""
    noise_in_x_t = (x_t - sp.sqrt(abar_t) * x_0) / sp.sqrt(1 - abar_t)
    return sp.sqrt(abar_prev) * x_0 + sp.sqrt(1 - abar_prev - sig**2) * noise_in_x_t


u, A, B = sp.Symbol("u", real=True), sp.Symbol("A", positive=True), sp.Symbol("B", real=True)
gauss_integral = sp.integrate(sp.exp(-A * u**2 + B * u), (u, -sp.oo, sp.oo))
assert sp.simplify(gauss_integral - sp.sqrt(sp.pi / A) * sp.exp(B**2 / (4 * A))) == 0

mean_post = ddim_posterior_mean(xt, x0, a_t, a_prev, sigma)
exponent = sp.expand(-((xprev - mean_post) ** 2) / (2 * sigma**2) - (xt - sp.sqrt(a_t) * x0) ** 2 / (2 * (1 - a_t)))
quad = sp.Poly(exponent, xt)
A_t, B_t, C_t = -quad.coeff_monomial(xt**2), quad.coeff_monomial(xt), quad.coeff_monomial(1)
exponent_after = sp.simplify(B_t**2 / (4 * A_t) + C_t)  # exponent of q(x_{t-1} | x_0)
norm_sq_after = sp.simplify((sp.pi / A_t) / ((2 * sp.pi * sigma**2) * (2 * sp.pi * (1 - a_t))))  # its constant, squared

target_exponent = -((xprev - sp.sqrt(a_prev) * x0) ** 2) / (2 * (1 - a_prev))
assert sp.simplify(exponent_after - target_exponent) == 0
assert sp.simplify(norm_sq_after - 1 / (2 * sp.pi * (1 - a_prev))) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("A (precision in x_t) =", sp.factor(sp.simplify(A_t)))
print("exponent of q_sigma(x_{t-1} | x_0) =", sp.factor(exponent_after))
print("normalising constant squared       =", norm_sq_after)

# %% [markdown]
# The exponent is $-(x_{t-1} - \sqrt{\bar\alpha_{t-1}}\,x_0)^2 / (2(1-\bar\alpha_{t-1}))$ and the constant is
# $1/\sqrt{2\pi(1-\bar\alpha_{t-1})}$: the marginal at $t-1$ is the DDPM marginal, whatever $\sigma_t$ is. By
# induction the claim holds for all $t$ from $T$ down to 1. Note that $\sigma_t$ has cancelled; it survives only
# in the correlation between $x_t$ and $x_{t-1}$.
#
# ## 5.4 Proof 2: the laws of total expectation and total variance
#
# We do not need densities at all. Conditioning on $x_0$ throughout,
#
# $$\mathbb E[x_{t-1}] = \mathbb E\big[\mathbb E[x_{t-1} \mid x_t]\big], \qquad
# \operatorname{Var}[x_{t-1}] = \mathbb E\big[\operatorname{Var}[x_{t-1} \mid x_t]\big] + \operatorname{Var}\big[\mathbb E[x_{t-1} \mid x_t]\big].$$
#
# **Why these laws hold.** Take any two random variables $X, Y$ with $\mathbb E[X^2] < \infty$, and write
# $m(Y) = \mathbb E[X \mid Y]$ and $v(Y) = \operatorname{Var}[X \mid Y] = \mathbb E[X^2 \mid Y] - m(Y)^2$.
#
# 1. *Total expectation.* $\mathbb E[m(Y)] = \mathbb E[X]$. For discrete variables,
#    $\sum_y p(y) \sum_x x\, p(x \mid y) = \sum_{x, y} x\, p(x, y) = \mathbb E[X]$, because $p(y)\, p(x \mid y) = p(x, y)$;
#    with densities the sums become integrals.
# 2. Apply step 1 to $X^2$ in place of $X$: $\mathbb E[X^2] = \mathbb E\big[\mathbb E[X^2 \mid Y]\big] = \mathbb E\big[v(Y) + m(Y)^2\big]$.
# 3. *Total variance.* Subtract $(\mathbb E[X])^2 = (\mathbb E[m(Y)])^2$, which is step 1 squared:
#
# $$\operatorname{Var}[X] = \mathbb E[X^2] - (\mathbb E[X])^2 = \mathbb E[v(Y)] + \Big(\mathbb E[m(Y)^2] - \big(\mathbb E[m(Y)]\big)^2\Big)
# = \mathbb E\big[\operatorname{Var}[X \mid Y]\big] + \operatorname{Var}\big[\mathbb E[X \mid Y]\big]. \qquad \blacksquare$$
#
# The total spread of $X$ is the spread left around the conditional mean, on average, plus the spread of the
# conditional mean itself. Conditioning everything on a third variable (here $x_0$) changes nothing in the argument,
# and neither step needs Gaussians. As a check of the general statement, sympy computes both sides for an arbitrary
# discrete joint distribution. $Y$ takes three values with probabilities $q_1, q_2, q_3 = 1 - q_1 - q_2$, and given
# $Y = y_j$, $X$ takes the values $a_1, a_2, a_3$ with probabilities $c_{1j}, c_{2j}, c_{3j} = 1 - c_{1j} - c_{2j}$; the joint
# table is $p(a_i, y_j) = q_j c_{ij}$ (every joint table of two three-valued variables can be written so). The left
# side is computed from the joint table alone, through the marginal $p(a_i) = \sum_j p(a_i, y_j)$; the right side from
# the three conditional distributions and the law of $Y$. With eleven free symbols, one check covers every such table.

# %%
# NBVAL_CHECK_OUTPUT
values = sp.symbols("a_1:4", real=True)  # the three values of X
q1, q2 = sp.symbols("q_1 q_2", positive=True)
p_y = [q1, q2, 1 - q1 - q2]  # the law of Y
cond = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"c_{i + 1}{j + 1}", positive=True))  # cond[i, j] = p(a_i | y_j)
for j in range(3):
    cond[2, j] = 1 - cond[0, j] - cond[1, j]
joint = sp.Matrix(3, 3, lambda i, j: p_y[j] * cond[i, j])  # p(a_i, y_j)
assert sp.expand(sum(joint)) == 1

# left side: Var X from the joint table alone, through the marginal of X
p_x = [sum(joint[i, j] for j in range(3)) for i in range(3)]
mean_x = sum(p * a for p, a in zip(p_x, values))
var_x = sum(p * (a - mean_x) ** 2 for p, a in zip(p_x, values))

# right side: from the conditional distributions of X given each value of Y, and the law of Y
cond_mean = [sum(cond[i, j] * values[i] for i in range(3)) for j in range(3)]  # E[X | Y = y_j]
cond_var = [sum(cond[i, j] * (values[i] - cond_mean[j]) ** 2 for i in range(3)) for j in range(3)]  # Var[X | y_j]
mean_of_cond_mean = sum(p * m for p, m in zip(p_y, cond_mean))
expected_cond_var = sum(p * v for p, v in zip(p_y, cond_var))
var_of_cond_mean = sum(p * (m - mean_of_cond_mean) ** 2 for p, m in zip(p_y, cond_mean))

gap_mean = sp.expand(mean_of_cond_mean - mean_x)
gap_var = sp.expand(var_x - (expected_cond_var + var_of_cond_mean))
assert gap_mean == 0  # total expectation
assert gap_var == 0  # total variance
assert sp.expand(var_of_cond_mean) != 0 and sp.expand(expected_cond_var) != 0  # neither term is trivially zero
print("free symbols:", len(var_x.free_symbols))
print("E[E[X | Y]] - E[X]                    =", gap_mean)
print("Var X - E[Var(X | Y)] - Var(E[X | Y]) =", gap_var)

# %% [markdown]
# Both laws hold identically in all eleven symbols. Back to the chain: the inner conditional mean is the affine
# function of $x_t$ in eq. (7), and the inner variance is the constant
# $\sigma_t^2$. Under the induction hypothesis $x_t \sim \mathcal N(\sqrt{\bar\alpha_t}x_0, 1-\bar\alpha_t)$; sympy's
# `stats` module takes the outer expectation and variance. This time $\sigma_t = 0$ is allowed.

# %%
sigma0 = sp.Symbol("sigma_t", nonnegative=True)
X_t = Normal("X_t", sp.sqrt(a_t) * x0, sp.sqrt(1 - a_t))  # the induction hypothesis q_sigma(x_t | x_0)
inner_mean = ddim_posterior_mean(X_t, x0, a_t, a_prev, sigma0)  # E[x_{t-1} | x_t, x_0], a random variable
inner_var = sigma0**2  # Var[x_{t-1} | x_t, x_0], the same for every x_t
total_mean = sp.simplify(E(inner_mean))
total_var = sp.simplify(inner_var + variance(inner_mean))
assert sp.simplify(total_mean - sp.sqrt(a_prev) * x0) == 0
assert sp.simplify(total_var - (1 - a_prev)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("Var[E[x_{t-1} | x_t]] =", sp.simplify(variance(inner_mean)))
print("E[x_{t-1}]            =", total_mean)
print("Var[x_{t-1}]          =", total_var)

# %% [markdown]
# The split is instructive: the part of $x_{t-1}$ explained by $x_t$ contributes $1-\bar\alpha_{t-1}-\sigma_t^2$
# and the fresh noise contributes the remaining $\sigma_t^2$. Choosing $\sigma_t$ moves variance between the two
# without changing the total.
#
# ## 5.5 Proof 3: undetermined coefficients, and a common slip
#
# The third proof does not assume eq. (7); it *finds* it. Posit a Gaussian kernel with unknown coefficients $\kappa_t$
# and $\zeta_t$ (the review quoted below calls the second one $\lambda_t$),
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N(\kappa_t x_t + \zeta_t x_0,\ \sigma_t^2 I),$$
#
# and demand that it carries $q(x_t \mid x_0)$ to $q(x_{t-1} \mid x_0)$. In sampling form,
# $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon_1$ and $x_{t-1} = \kappa_t x_t + \zeta_t x_0 + \sigma_t \epsilon_2$ with
# independent standard normals $\epsilon_1, \epsilon_2$. Expanding, $x_{t-1}$ is $x_0$ times a number plus a sum of
# independent noises; a noise multiplied by $c$ has variance $c^2$. Matching mean and variance gives two
# equations for the two unknowns, with $\sigma_t$ left free.

# %%
kappa, zeta = sp.symbols("kappa_t zeta_t", real=True)
eps1, eps2, K = sp.symbols("epsilon_1 epsilon_2 K", real=True)

x_t_sampled = sp.sqrt(a_t) * x0 + sp.sqrt(1 - a_t) * eps1
x_prev_sampled = sp.expand(kappa * x_t_sampled + zeta * x0 + sigma0 * eps2)
coef = sp.Poly(x_prev_sampled, x0, eps1, eps2)
mean_coef = coef.coeff_monomial(x0)
# independent unit-variance noises: each contributes the square of its coefficient
noise_var = coef.coeff_monomial(eps1) ** 2 + coef.coeff_monomial(eps2) ** 2

mean_condition = sp.Eq(mean_coef, sp.sqrt(a_prev))
var_condition = sp.Eq(noise_var, 1 - a_prev)
kappa_sq = sp.solve(var_condition.subs(kappa**2, K), K)[0]  # the variance condition is linear in kappa^2
zeta_sol = sp.solve(mean_condition, zeta)[0]  # zeta in terms of kappa

kappa_ddim = sp.sqrt(1 - a_prev - sigma0**2) / sp.sqrt(1 - a_t)
assert sp.simplify(kappa_sq - kappa_ddim**2) == 0  # DDIM takes the non-negative root: kappa_t = kappa_ddim
assert sp.simplify(zeta_sol - (sp.sqrt(a_prev) - sp.sqrt(a_t) * kappa)) == 0
# kappa x_t + zeta x_0 is exactly the mean of DDIM eq. (7)
mean_from_coefs = (kappa * xt + zeta_sol * x0).subs(kappa, kappa_ddim)
assert sp.simplify(sp.expand(mean_from_coefs - ddim_posterior_mean(xt, x0, a_t, a_prev, sigma0))) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("mean condition:    ", mean_condition)
print("variance condition:", var_condition)
print("kappa_t^2 =", sp.factor(kappa_sq))
print("zeta_t    =", zeta_sol)

# %% [markdown]
# So $\kappa_t = \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}/\sqrt{1-\bar\alpha_t}$ and $\zeta_t = \sqrt{\bar\alpha_{t-1}} - \sqrt{\bar\alpha_t}\,\kappa_t$,
# and $\kappa_t x_t + \zeta_t x_0$ regroups into the mean of eq. (7). (The negative root $\kappa_t < 0$ also
# preserves the marginals; DDIM's choice $\kappa_t \ge 0$ keeps $x_{t-1}$ positively correlated with $x_t$.)
#
# **The slip.** One widely read review of DDIM derives the same
# decomposition correctly, $x_{t-1} = (\kappa_t\sqrt{\bar\alpha_t} + \zeta_t)\,x_0 + \sqrt{\kappa_t^2(1-\bar\alpha_t) + \sigma_t^2}\;\epsilon$,
# and then writes the variance condition as
#
# $$1 - \bar\alpha_{t-1} = \sqrt{\kappa_t^2 (1-\bar\alpha_t) + \sigma_t^2}
# \quad\Longrightarrow\quad \kappa_t = \sqrt{\frac{(1-\bar\alpha_{t-1})^2 - \sigma_t^2}{1-\bar\alpha_t}} .$$
#
# The left side is a *variance*; the right side is the *standard deviation* of the combined noise. One of the two
# sides needs its square root removed (or the other one given one): $\sqrt{1-\bar\alpha_{t-1}} = \sqrt{\kappa_t^2(1-\bar\alpha_t)+\sigma_t^2}$.
# The mismatch shows up as the square on $(1-\bar\alpha_{t-1})$ in the resulting $\kappa_t$. (The review then states
# the correct eq. (7) anyway, which does not follow from its system.) With the slipped $\kappa_t$ the marginal
# variance comes out as $(1-\bar\alpha_{t-1})^2$:

# %%
var_condition_slipped = sp.Eq(sp.sqrt(noise_var), 1 - a_prev)
kappa_sq_slipped = sp.solve(var_condition_slipped.subs(kappa**2, K), K)[0]
variance_slipped = sp.simplify(noise_var.subs(kappa**2, kappa_sq_slipped))  # what the slipped kernel produces
assert sp.simplify(kappa_sq_slipped - ((1 - a_prev) ** 2 - sigma0**2) / (1 - a_t)) == 0
assert sp.simplify(variance_slipped - (1 - a_prev)) != 0  # the slipped version fails the variance law
assert sp.simplify(variance_slipped - (1 - a_prev) + a_prev * (1 - a_prev)) == 0  # it is short by abar (1 - abar)

# %%
# NBVAL_CHECK_OUTPUT
print("slipped kappa_t^2               =", sp.factor(kappa_sq_slipped))
print("variance it produces            =", sp.factor(variance_slipped))
print("minus the required 1 - abar_{t-1} =", sp.factor(variance_slipped - (1 - a_prev)))

# %% [markdown]
# The produced variance is short by $\bar\alpha_{t-1}(1-\bar\alpha_{t-1})$, which vanishes only at the ends
# $\bar\alpha_{t-1} \in \{0, 1\}$. Worse, at small $t$ the slipped $\kappa_t$ is not even real: $(1-\bar\alpha_{t-1})^2$ is
# tiny there, smaller than DDPM's $\sigma_t^2 = \tilde\beta_t$. We run both kernels on MNIST digits
# (256 digits, every pixel, 4 noise draws each; $\sigma_t = \sigma_t(\eta = 0.5)$) and measure the variance of
# $x_{t-1} - \sqrt{\bar\alpha_{t-1}}x_0$. The correct kernel is the package's `ddim_step` fed the true noise.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(5)
x0_batch = digits[:256].repeat(4, 1, 1, 1)  # (1024, 1, 28, 28) float64
n_values = x0_batch.numel()
print(f"{'t':>4} {'1-abar_{t-1}':>13} {'ddim_step':>10} {'slipped':>10} {'(1-abar_{t-1})^2':>17}")
for t in (20, 200, 500, 800):
    a, a_p = ab[t].item(), ab[t - 1].item()
    sig = samplers.ddim_sigma(a, a_p, 0.5)
    eps = torch.randn(x0_batch.shape, generator=gen, dtype=torch.float64)
    z = torch.randn(x0_batch.shape, generator=gen, dtype=torch.float64)
    x_t = schedule.q_sample(x0_batch, t, noise=eps)
    good = samplers.ddim_step(x_t, eps, a, a_p, eta=0.5, noise=z) - a_p**0.5 * x0_batch
    k_sq = ((1 - a_p) ** 2 - sig**2) / (1 - a)
    if k_sq < 0:
        slipped = "imaginary"
    else:
        k = k_sq**0.5
        bad = k * x_t + (a_p**0.5 - a**0.5 * k) * x0_batch + sig * z - a_p**0.5 * x0_batch
        slipped = f"{bad.var().item():.4f}"
    z_score = (good.var().item() - (1 - a_p)) / ((1 - a_p) * math.sqrt(2 / n_values))
    assert abs(z_score) < 4, (t, z_score)
    print(f"{t:>4} {1 - a_p:>13.4f} {good.var().item():>10.4f} {slipped:>10} {(1 - a_p) ** 2:>17.4f}")

# %% [markdown]
# The correct kernel lands on $1 - \bar\alpha_{t-1}$ at every $t$ (the assertion checks it to four standard errors);
# the slipped one lands on $(1-\bar\alpha_{t-1})^2$, or has no real coefficient at all.
#
# ## 5.6 The law on MNIST: one step of `ddim_step`
#
# The DDIM sampler (chapter 6) is eq. (7) with $x_0$ replaced by a prediction. If we hand `ddim_step` the *true*
# noise, the prediction is exact and the step samples $q_\sigma(x_{t-1} \mid x_t, x_0)$ itself. Starting from
# $x_t \sim q(x_t \mid x_0)$ on real digits, the output should then be distributed as $q(x_{t-1} \mid x_0)$: mean
# $\sqrt{\bar\alpha_{t-1}}\,x_0$ and variance $1-\bar\alpha_{t-1}$, for every $\eta$. The law needs nothing about
# consecutive steps, so we also try a skip from $t = 600$ to $400$ (the kind of step DDIM takes when it samples on a
# sub-sequence). We regress the output on $x_0$ over all $802{,}816$ pixel values: the slope must be
# $\sqrt{\bar\alpha_{\text{prev}}}$ and the residual variance $1-\bar\alpha_{\text{prev}}$.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(6)
x0_flat = x0_batch.flatten()
var_x0 = x0_flat.var().item()
print(f"{'eta':>4} {'step':>10} {'slope':>8} {'sqrt(abar)':>10} {'resid var':>10} {'1-abar':>8}")
for t, prev in ((500, 499), (600, 400)):
    a, a_p = ab[t].item(), ab[prev].item()
    for eta in (0.0, 0.5, 1.0):
        eps = torch.randn(x0_batch.shape, generator=gen, dtype=torch.float64)
        x_t = schedule.q_sample(x0_batch, t, noise=eps)
        x_prev = samplers.ddim_step(x_t, eps, a, a_p, eta=eta, generator=gen).flatten()
        slope = ((x_prev - x_prev.mean()) * (x0_flat - x0_flat.mean())).mean().item() / var_x0
        resid = x_prev - a_p**0.5 * x0_flat
        se_slope = math.sqrt((1 - a_p) / (n_values * var_x0))
        se_var = (1 - a_p) * math.sqrt(2 / n_values)
        assert abs(slope - a_p**0.5) < 4 * se_slope and abs(resid.var().item() - (1 - a_p)) < 4 * se_var
        assert abs(resid.mean().item()) < 4 * math.sqrt((1 - a_p) / n_values)
        print(
            f"{eta:>4} {f'{t}->{prev}':>10} {slope:>8.4f} {a_p**0.5:>10.4f} {resid.var().item():>10.4f} {1 - a_p:>8.4f}"
        )

# %% [markdown]
# ## 5.7 Following the chain from $t = T$ down
#
# Section 5.3's induction runs the whole way down. We simulate it: 40,000 scalar chains, each with its own $x_0$ (a
# pixel value drawn from the MNIST digits), start at $x_T \sim q(x_T \mid x_0)$ and step with
# $q_\sigma(x_{t-1} \mid x_t, x_0)$ for $t = T, \dots, 2$ — `ddim_step` with the chain's own current noise
# $(x_t - \sqrt{\bar\alpha_t}x_0)/\sqrt{1-\bar\alpha_t}$. At chosen $t$ we compare the variance of
# $r_t = x_t - \sqrt{\bar\alpha_t}x_0$ with $1-\bar\alpha_t$.
#
# The *joint* laws differ, and the chain shows that too. Since $r_{t-1} = \kappa_t r_t + \sigma_t \epsilon$, the
# correlation between $r_T$ and $r_1$ is
# $\rho_{T,1} = \prod_{t=2}^{T} \sqrt{1 - \sigma_t^2 / (1-\bar\alpha_{t-1})}$: one for $\eta = 0$ (a deterministic
# chain), and for $\eta = 1$ DDPM's Markov value $\sqrt{\bar\alpha_T/\bar\alpha_1}\sqrt{(1-\bar\alpha_1)/(1-\bar\alpha_T)}$.

# %%
n_chains, etas = 40_000, (0.0, 0.5, 1.0)
record = [1000, 900, 700, 500, 300, 200, 100, 50, 20, 10, 5, 2, 1]
gen = torch.Generator().manual_seed(7)
pixels = digits.flatten()
x0_chain = pixels[torch.randint(0, pixels.numel(), (n_chains,), generator=gen)]
chain_var, chain_corr = {}, {}
for eta in etas:
    x = schedule.q_sample(x0_chain, T, generator=gen)
    r_T = x - ab[T].sqrt() * x0_chain
    for t in range(T, 0, -1):
        if t in record:
            chain_var[eta, t] = (x - ab[t].sqrt() * x0_chain).var().item()
        if t == 1:
            break
        eps = (x - ab[t].sqrt() * x0_chain) / (1 - ab[t]).sqrt()
        x = samplers.ddim_step(x, eps, ab[t], ab[t - 1], eta=eta, generator=gen)
    r_1 = x - ab[1].sqrt() * x0_chain
    chain_corr[eta] = torch.corrcoef(torch.stack([r_T, r_1]))[0, 1].item()


def corr_T1(eta):
    """rho_{T,1} = prod_{t=2}^T sqrt(1 - sigma_t^2 / (1 - abar_{t-1})) for the schedule above."""
    sig = samplers.ddim_sigma(ab[2:], ab[1:-1], eta)
    return (1 - sig**2 / (1 - ab[1:-1])).sqrt().prod().item()


ddpm_corr = ((ab[T] / ab[1]) * (1 - ab[1]) / (1 - ab[T])).sqrt().item()
assert abs(corr_T1(1.0) - ddpm_corr) < 1e-12

# %%
# NBVAL_CHECK_OUTPUT
print("Var[x_t - sqrt(abar_t) x_0] / (1 - abar_t) along the chain")
print(f"{'t':>5} {'1-abar_t':>9}" + "".join(f"{f'eta={eta}':>10}" for eta in etas))
for t in record:
    ratios = [chain_var[eta, t] / (1 - ab[t].item()) for eta in etas]
    assert all(abs(q - 1) < 4 * math.sqrt(2 / n_chains) for q in ratios), (t, ratios)
    print(f"{t:>5} {1 - ab[t].item():>9.6f}" + "".join(f"{q:>10.4f}" for q in ratios))
print()
print(f"{'eta':>5} {'corr(r_T, r_1)':>15} {'closed form':>12}")
for eta in etas:
    se = (1 - corr_T1(eta) ** 2) / math.sqrt(n_chains)
    assert abs(chain_corr[eta] - corr_T1(eta)) < 4 * se + 1e-9
    print(f"{eta:>5} {chain_corr[eta]:>15.4f} {corr_T1(eta):>12.4f}")

# %% [markdown]
# Every column sits on 1 (within Monte Carlo error, about $\pm 0.007$ here) while the correlations between the two
# ends of the chain range from 1 to almost 0. (The $\eta = 0.5$ column stays a little below 1 all the way down
# because its starting draw at $t = T$ happened to have sample variance 0.991, and that chain remembers its start;
# at $\eta = 0$ it remembers it completely, hence the constant 0.9994.) Same marginals, different processes. The left panel shows the
# standard deviations $\sigma_t(\eta)$ that the family uses; the right panel shows the marginal standard deviation
# of the simulated chains on the curve $\sqrt{1-\bar\alpha_t}$ for each $\eta$.

# %%
ts = torch.arange(1, T + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
for eta in (0.25, 0.5, 1.0):
    ax1.plot(ts, samplers.ddim_sigma(ab[1:], ab[:-1], eta), label=f"$\\eta={eta}$")
ax1.plot(ts, samplers.sigma_hat(ab[1:], ab[:-1]), "k:", label="$\\hat\\sigma_t=\\sqrt{\\beta_t}$")
ax1.axhline(0, color="C3", lw=1, label="$\\eta=0$")
ax1.set(xlabel="t", ylabel="$\\sigma_t(\\eta)$", title="the free standard deviations")
ax1.legend(fontsize=8)
ax2.plot(ts, (1 - ab[1:]).sqrt(), "k-", lw=1, label="$\\sqrt{1-\\bar\\alpha_t}$")
for k, (eta, marker) in enumerate(zip(etas, "os^")):
    t_rec = torch.tensor(record) * 1.12 ** (k - 1)  # small horizontal offsets keep the markers apart
    ax2.plot(t_rec, [chain_var[eta, t] ** 0.5 for t in record], marker, ms=4, mfc="none", label=f"chain, $\\eta={eta}$")
ax2.set(
    xscale="log",
    xlabel="t (log scale)",
    ylabel="std of $x_t - \\sqrt{\\bar\\alpha_t}x_0$",
    title="marginals stay on the curve",
)
ax2.legend(fontsize=8, loc="upper left")
fig.tight_layout()

# %% [markdown]
# ## 5.8 Why the same $L_\text{simple}$ trains every member (DDIM Theorem 1)
#
# For each $\sigma$ DDIM pairs the forward family with a generative process that replaces $x_0$ by the network's
# prediction $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (DDIM eq. (9)):
# $p_\theta(x_{t-1} \mid x_t) = q_\sigma(x_{t-1} \mid x_t, \hat x_0)$ for $t \ge 2$ and
# $p_\theta(x_0 \mid x_1) = \mathcal N(\hat x_0, \sigma_1^2 I)$ (DDIM eq. (10)). Its variational objective is
# $J_\sigma(\epsilon_\theta) = \mathbb E_{q_\sigma}[\log q_\sigma(x_{1:T} \mid x_0) - \log p_\theta(x_{0:T})]$ (DDIM eq. (11)).
# Compare the weighted denoising loss (DDIM eq. (5))
#
# $$L_\gamma(\epsilon_\theta) = \sum_{t=1}^T \gamma_t\, \mathbb E_{x_0, \epsilon}\big\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\|^2,$$
#
# of which DDPM's $L_\text{simple}$ (DDPM eq. (14); chapter 3) is the case $\gamma = 1$.
#
# **Theorem 1 (DDIM).** For every $\sigma > 0$ there are weights $\gamma \in \mathbb R^T_{>0}$ and a constant $C$ with
# $J_\sigma = L_\gamma + C$.
#
# *The key step.* Split $J_\sigma$ as in DDPM: up to terms free of $\theta$ it is
# $\sum_{t \ge 2} \mathbb E\, \mathrm{KL}\big(q_\sigma(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1} \mid x_t)\big) - \mathbb E \log p_\theta(x_0 \mid x_1)$.
# Both Gaussians in the KL have covariance $\sigma_t^2 I$, and their means differ only through $x_0$ versus
# $\hat x_0$. Writing $x_0$ itself through the true noise, $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$,
# the KL becomes a multiple of $\|\epsilon - \epsilon_\theta\|^2$ per coordinate:

# %%
m1, m2 = sp.symbols("m_1 m_2", real=True)
X = Normal("X", m1, sigma)


def log_normal(x, m, s):
    return -((x - m) ** 2) / (2 * s**2) - sp.log(s * sp.sqrt(2 * sp.pi))


kl_equal_var = sp.simplify(E(log_normal(X, m1, sigma) - log_normal(X, m2, sigma)))
assert sp.simplify(kl_equal_var - (m1 - m2) ** 2 / (2 * sigma**2)) == 0

eps, eps_theta = sp.symbols("epsilon epsilon_theta", real=True)
x0_true = (xt - sp.sqrt(1 - a_t) * eps) / sp.sqrt(a_t)
x0_hat = (xt - sp.sqrt(1 - a_t) * eps_theta) / sp.sqrt(a_t)  # DDIM eq. (9)
kl_step = kl_equal_var.subs(
    {m1: ddim_posterior_mean(xt, x0_true, a_t, a_prev, sigma), m2: ddim_posterior_mean(xt, x0_hat, a_t, a_prev, sigma)}
)
# the claim: the KL is gamma_t (eps - eps_theta)^2 with gamma_t = zeta_t^2 (1 - abar_t) / (2 sigma_t^2 abar_t),
# zeta_t the x_0 coefficient of section 5.5; checked by writing eps_theta = eps + d for a free d
d_err = sp.symbols("d", real=True)
zeta_t = sp.sqrt(a_prev) - sp.sqrt(a_t) * sp.sqrt(1 - a_prev - sigma**2) / sp.sqrt(1 - a_t)
gamma_compact = zeta**2 * (1 - a_t) / (2 * sigma**2 * a_t)
assert sp.simplify(kl_step.subs(eps_theta, eps + d_err) - gamma_compact.subs(zeta, zeta_t) * d_err**2) == 0
gamma_t = gamma_compact.subs(zeta, zeta_t)
assert not gamma_t.free_symbols & {xt, eps, eps_theta}  # the weight knows nothing about x_t or the network

# t = 1: -log N(x_0; x0_hat, sigma_1^2) = (x_0 - x0_hat)^2 / (2 sigma_1^2) + a constant
gamma_1 = sp.simplify(((x0_true - x0_hat) ** 2 / (2 * sigma**2)) / (eps - eps_theta) ** 2)
assert sp.simplify(gamma_1 - (1 - a_t) / (2 * sigma**2 * a_t)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("KL(N(m1, s^2) || N(m2, s^2)) =", kl_equal_var)
print("gamma_t (t >= 2) =", gamma_compact, " with zeta_t =", zeta_t)
print("gamma_1          =", gamma_1, "  (with abar_t = abar_1)")

# %% [markdown]
# So $\gamma_t = \zeta_t^2 (1-\bar\alpha_t) / (2\sigma_t^2 \bar\alpha_t)$ for $t \ge 2$, with the $\zeta_t$ of section 5.5, and
# $\gamma_1 = (1-\bar\alpha_1)/(2\sigma_1^2\bar\alpha_1)$. They depend on $t$ and $\sigma$, never on $\theta$, and they are
# positive: $\kappa_t \le \sqrt{1-\bar\alpha_{t-1}}/\sqrt{1-\bar\alpha_t}$ gives $\zeta_t > 0$ whenever $\bar\alpha_t < \bar\alpha_{t-1}$.
# Summing over the $d$ coordinates and taking expectations gives $J_\sigma = L_\gamma + C$.
#
# *What it means.* If the network had separate parameters for each $t$, $L_\gamma$ would be a sum of independent
# problems, each minimised by the same function $\epsilon_\theta(x_t, t) = \mathbb E[\epsilon \mid x_t]$ whatever the
# positive weight in front. The minimiser of $L_\gamma$ is then the minimiser of $L_1 = L_\text{simple}$, for every
# $\sigma$: **one network trained with $L_\text{simple}$ serves the whole family**, and we may choose $\sigma$ (and
# $\eta$) after training.
#
# *The term $t = 1$.* Eq. (16) gives $\sigma_1(\eta) = 0$ for every $\eta$, because $1 - \bar\alpha_0 = 0$: no member of the
# $\eta$ family has $\sigma > 0$ at $t = 1$, and $\gamma_1$ above would be infinite. The theorem covers the family only
# through the paper's separate treatment of that term (DDIM eq. (10)): $q_\sigma(x_0 \mid x_1, x_0)$ is a point mass in
# every member, so nothing in the forward process fixes the last reverse step, and the paper takes
# $p_\theta(x_0 \mid x_1) = \mathcal N(\hat x_0, \sigma_1^2 I)$ with its own constant $\sigma_1 > 0$ ("to ensure that the generative
# process is supported everywhere"), chosen apart from eq. (16). With that convention $\gamma_1 = (1-\bar\alpha_1)/(2\sigma_1^2\bar\alpha_1)$
# is finite and positive for every $\eta$, and the conclusion stands. A real U-Net shares its parameters across $t$, so the weights do change the compromise it
# strikes; DDPM's experience that $L_\text{simple}$ works well is what makes the shortcut safe in practice.
# ($\sigma = 0$ is the limit $\gamma \to \infty$; the theorem needs $\sigma > 0$, but the sampler at $\eta = 0$ uses the
# same network.)
#
# A numerical check with the package: the two means are `ddim_step` outputs with zero noise, once with the true
# noise and once with a deliberately wrong prediction; `torch.distributions` computes the KL. The table also shows
# how much the weights of $\eta = 0.5$ and $\eta = 1$ differ.

# %%
# NBVAL_CHECK_OUTPUT
gamma_fn = sp.lambdify((a_t, a_prev, sigma), gamma_t)
gen = torch.Generator().manual_seed(8)
x0_small = digits[:64]
print(f"{'t':>5} {'eta':>4} {'gamma_t':>12} {'KL / (gamma_t * SSE)':>21}")
for t in (2, 10, 100, 500, 1000):
    a, a_p = ab[t].item(), ab[t - 1].item()
    for eta in (0.5, 1.0):
        sig = samplers.ddim_sigma(a, a_p, eta)
        eps = torch.randn(x0_small.shape, generator=gen, dtype=torch.float64)
        eps_wrong = eps + 0.3 * torch.randn(x0_small.shape, generator=gen, dtype=torch.float64)
        x_t = schedule.q_sample(x0_small, t, noise=eps)
        zero = torch.zeros_like(x_t)
        mean_q = samplers.ddim_step(x_t, eps, a, a_p, eta=eta, noise=zero)
        mean_p = samplers.ddim_step(x_t, eps_wrong, a, a_p, eta=eta, noise=zero)
        kl = kl_divergence(TorchNormal(mean_q, sig), TorchNormal(mean_p, sig)).sum().item()
        ratio = kl / (gamma_fn(a, a_p, sig) * ((eps - eps_wrong) ** 2).sum().item())
        assert abs(ratio - 1) < 1e-8
        print(f"{t:>5} {eta:>4} {gamma_fn(a, a_p, sig):>12.5g} {ratio:>21.6f}")

# %% [markdown]
# The KL is exactly $\gamma_t$ times the squared error in $\epsilon$. The weights of $\eta = 0.5$ are 1.5 to 1.9 times
# those of $\eta = 1$, by a factor that changes with $t$: a different $L_\gamma$, with the same per-$t$ minimiser.
#
# ## 5.9 $\eta = 1$ is DDPM's posterior
#
# With $\sigma_t^2 = \sigma_t(1)^2 = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\big(1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}\big) = \tilde\beta_t$ the
# kernel (7) should be DDPM's posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)$ with
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0 + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t$
# (DDPM eqs. (6)-(7); chapter 2). Square roots of differences are where sympy needs help with signs, so we
# write $\bar\alpha = 1/(1+\rho)$ with $\rho = (1-\bar\alpha)/\bar\alpha$ the inverse signal-to-noise ratio and
# $\rho_t = \rho_{t-1} + \delta$, $\delta > 0$: every factor is then visibly positive. We also check that
# Theorem 1's weight at $\eta = 1$ is DDPM's weight $\beta_t^2/(2\sigma_t^2\alpha_t(1-\bar\alpha_t))$ (DDPM eq. (12)).

# %%
rho_p, delta = sp.symbols("rho_{t-1} delta", positive=True)
abar_p_rho, abar_t_rho = 1 / (1 + rho_p), 1 / (1 + rho_p + delta)
alpha_rho = abar_t_rho / abar_p_rho
beta_rho = 1 - alpha_rho


def root(expr):
    return sp.sqrt(sp.factor(expr))  # factor first so sympy sees a product of positive terms


sigma_sq_eta1 = (1 - abar_p_rho) / (1 - abar_t_rho) * (1 - abar_t_rho / abar_p_rho)  # DDIM eq. (16), eta = 1
kappa_eta1 = root(1 - abar_p_rho - sigma_sq_eta1) / root(1 - abar_t_rho)
zeta_eta1 = sp.sqrt(abar_p_rho) - sp.sqrt(abar_t_rho) * kappa_eta1
ddpm_xt_coef = sp.sqrt(alpha_rho) * (1 - abar_p_rho) / (1 - abar_t_rho)
ddpm_x0_coef = sp.sqrt(abar_p_rho) * beta_rho / (1 - abar_t_rho)
ddpm_var = (1 - abar_p_rho) / (1 - abar_t_rho) * beta_rho

assert sp.simplify(kappa_eta1 - ddpm_xt_coef) == 0
assert sp.simplify(zeta_eta1 - ddpm_x0_coef) == 0
assert sp.simplify(sigma_sq_eta1 - ddpm_var) == 0
gamma_eta1 = gamma_t.subs({a_t: abar_t_rho, a_prev: abar_p_rho, sigma: sp.sqrt(sigma_sq_eta1)})
ddpm_weight = beta_rho**2 / (2 * sigma_sq_eta1 * alpha_rho * (1 - abar_t_rho))
assert sp.simplify(sp.factor(gamma_eta1 - ddpm_weight, deep=True)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("kappa_t(eta=1)  - DDPM x_t coefficient =", sp.simplify(kappa_eta1 - ddpm_xt_coef))
print("zeta_t(eta=1) - DDPM x_0 coefficient =", sp.simplify(zeta_eta1 - ddpm_x0_coef))
print("sigma_t(1)^2    - beta_tilde_t         =", sp.simplify(sigma_sq_eta1 - ddpm_var))
print("sigma_t(1)^2 in rho form               =", sp.factor(sigma_sq_eta1))

# %% [markdown]
# **No other member is Markovian.** The forward kernel $q_\sigma(x_t \mid x_{t-1}, x_0)$ is Markovian exactly when it does
# not depend on $x_0$. Given $x_0$, the pair $(x_t, x_{t-1})$ is Gaussian: $x_t \sim \mathcal N(\sqrt{\bar\alpha_t}x_0, 1-\bar\alpha_t)$,
# and $x_{t-1}$ is drawn from kernel (7). The Gaussian conditioning rule gives $\mathbb E[x_t \mid x_{t-1}, x_0]$, whose
# variance does not involve $x_0$ at all; so the chain is Markovian if and only if the coefficient of $x_0$ in that
# conditional mean vanishes. sympy finds that coefficient, solves "coefficient $= 0$" for $\sigma_t^2$, and compares the
# one solution with eq. (16) at $\eta = 1$, derived above without any reference to Markov chains:

# %%
# NBVAL_CHECK_OUTPUT
s2 = sp.symbols("s2", positive=True)  # sigma_t^2
kappa_s2 = sp.sqrt(1 - a_prev - s2) / sp.sqrt(1 - a_t)  # kernel (7): x_{t-1} = zeta x_0 + kappa x_t + noise
cov_t_prev = kappa_s2 * (1 - a_t)  # Cov(x_t, x_{t-1} | x_0) = kappa Var(x_t | x_0)
var_prev = kappa_s2**2 * (1 - a_t) + s2  # Var(x_{t-1} | x_0)
assert sp.simplify(var_prev - (1 - a_prev)) == 0  # the marginal law again
mean_prev = sp.sqrt(a_prev) * x0  # E[x_{t-1} | x_0]
cond_mean = sp.sqrt(a_t) * x0 + cov_t_prev / var_prev * (xprev - mean_prev)  # E[x_t | x_{t-1}, x_0]
x0_coefficient = sp.simplify(sp.expand(cond_mean).coeff(x0))
solutions = sp.solve(sp.Eq(x0_coefficient, 0), s2)
sigma_sq_eta1_plain = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)  # DDIM eq. (16) at eta = 1
assert len(solutions) == 1 and sp.simplify(solutions[0] - sigma_sq_eta1_plain) == 0
print("coefficient of x_0 in E[x_t | x_{t-1}, x_0]:", x0_coefficient)
print("it vanishes only at sigma_t^2 =", sp.factor(solutions[0]))

# %% [markdown]
# Numerically, over every $t = 2, \dots, T$ at once: the mean of `ddim_step` at $\eta = 1$ (zero noise, true
# $\epsilon$) against `schedule.q_posterior` on MNIST digits, and `ddim_sigma(eta=1)` squared against
# `schedule.posterior_variances`.

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(9)
x0_few = digits[:16]
mean_err, var_err = 0.0, 0.0
for t in range(2, T + 1):
    eps = torch.randn(x0_few.shape, generator=gen, dtype=torch.float64)
    x_t = schedule.q_sample(x0_few, t, noise=eps)
    mean_ddim = samplers.ddim_step(x_t, eps, ab[t], ab[t - 1], eta=1.0, noise=torch.zeros_like(x_t))
    mean_ddpm, var_ddpm = schedule.q_posterior(x0_few, x_t, t)
    mean_err = max(mean_err, (mean_ddim - mean_ddpm).abs().max().item())
    var_err = max(var_err, abs(samplers.ddim_sigma(ab[t], ab[t - 1], 1.0).item() ** 2 - var_ddpm.item()))
print("max |DDIM(eta=1) mean - DDPM posterior mean| < 1e-12:", mean_err < 1e-12)
print("max |sigma_t(1)^2 - beta_tilde_t|            < 1e-15:", var_err < 1e-15)

# %% [markdown]
# ## Summary
#
# - DDIM's $\alpha_t$ is our $\bar\alpha_t$. DDIM eq. (7) defines, for each $\sigma$, a forward process whose
#   reverse kernels condition on $x_0$; the implied forward kernels depend on $x_0$, so it is not Markovian.
# - **Variance law:** every member has DDPM's marginals $\mathcal N(\sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t)I)$. We
#   proved it by induction (composing Gaussians), by total expectation and variance, and by solving for the
#   undetermined coefficients $\kappa_t = \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}/\sqrt{1-\bar\alpha_t}$,
#   $\zeta_t = \sqrt{\bar\alpha_{t-1}} - \sqrt{\bar\alpha_t}\kappa_t$.
# - Matching a variance to a standard deviation (the slip of that review) squares $1-\bar\alpha_{t-1}$ and yields a
#   kernel whose marginal variance is $(1-\bar\alpha_{t-1})^2$: variance scales by the *square* of a coefficient.
# - Theorem 1: $J_\sigma = L_\gamma + C$ with weights that depend on $t$ and $\sigma$ only, so a network trained
#   with $L_\text{simple}$ serves every $\sigma$.
# - $\eta = 1$ in $\sigma_t(\eta)$ of eq. (16) gives back DDPM's posterior exactly; $\eta = 0$ gives a
#   deterministic chain. `ddim_step` fed the true noise reproduces the marginals on MNIST, one step or a thousand.
#
# ## Exercises
#
# **5.1 (code).** Implement $\sigma_t(\eta)$ of DDIM eq. (16) for tensors of $\bar\alpha_t$, $\bar\alpha_{t-1}$ (the
# previous step of a possibly skipping sub-sequence) and a number $\eta$. Fill in the exercise cell and run it:
# `ch05.check_ddim_sigma` compares your function with `samplers.ddim_sigma` on consecutive steps, uniform, trailing and
# quadratic sub-sequences, and the cosine schedule. The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_sigma(alpha_bar_t, alpha_bar_prev, eta):
    return ...


result = ch05.check_ddim_sigma(my_sigma)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_sigma(alpha_bar_t, alpha_bar_prev, eta):
    return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)).sqrt()


result = ch05.check_ddim_sigma(my_sigma)

# %% [markdown]
# **5.2 (code).** Implement the undetermined coefficients: `my_coefs(alpha_bar_t, alpha_bar_prev, sigma)` returns the pair
# $(\kappa_t, \zeta_t)$ of section 5.5 (tensors in, tensors out). Then run the grader on the review's slipped
# $\kappa_t$ to see it rejected.


# %% tags=["exercise"]
def my_coefs(alpha_bar_t, alpha_bar_prev, sigma):
    kappa = ...
    zeta = ...
    return kappa, zeta


result = ch05.check_posterior_coefs(my_coefs)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_coefs(alpha_bar_t, alpha_bar_prev, sigma):
    rest = (1 - alpha_bar_prev - sigma**2).clamp_min(0)  # >= 0 exactly; the clamp removes rounding below 0
    kappa = rest.sqrt() / (1 - alpha_bar_t).sqrt()  # variances: kappa^2 (1 - abar_t) + sigma^2 = 1 - abar_prev
    return (
        kappa,
        alpha_bar_prev.sqrt() - alpha_bar_t.sqrt() * kappa,
    )  # means: zeta + kappa sqrt(abar_t) = sqrt(abar_prev)


result = ch05.check_posterior_coefs(my_coefs)

# %% tags=["solution"]
from ddim_book.exercises import ExerciseError


def slipped_coefs(alpha_bar_t, alpha_bar_prev, sigma):
    kappa = ((1 - alpha_bar_prev) ** 2 - sigma**2).sqrt() / (1 - alpha_bar_t).sqrt()  # the variance set to a std
    return kappa, alpha_bar_prev.sqrt() - alpha_bar_t.sqrt() * kappa


try:
    ch05.check_posterior_coefs(slipped_coefs)
    raise AssertionError("the slipped coefficients should fail")
except ExerciseError as err:
    print("rejected:", str(err).splitlines()[0])

# %% [markdown]
# **5.3 (pen and paper, then code).** For a step from $\bar\alpha_t$ to $\bar\alpha_{\text{prev}} < 1$ — consecutive or
# skipping — find the largest $\eta$ for which the direction coefficient $\sqrt{1-\bar\alpha_{\text{prev}}-\sigma_t(\eta)^2}$ is
# real. Show that it is never below 1, so $\eta \in [0, 1]$ is always safe, and that for a single step it is
# $\sqrt{(1-\bar\alpha_t)/\beta_t}$, large when $\beta_t$ is small. (What happens at the final step,
# $\bar\alpha_{\text{prev}} = 1$?) Then code it as `my_max_eta(alpha_bar_t, alpha_bar_prev)`; `ch05.check_max_eta` grades it.
# Worked solution: appendix C; the solution cell also checks that `ddim_step` accepts $\eta_{\max}$ and refuses
# $1.01\,\eta_{\max}$.


# %% tags=["exercise"]
def my_max_eta(alpha_bar_t, alpha_bar_prev):
    return ...


result = ch05.check_max_eta(my_max_eta)


# %% tags=["solution"]
def my_max_eta(alpha_bar_t, alpha_bar_prev):
    return ((1 - alpha_bar_t) * alpha_bar_prev / (alpha_bar_prev - alpha_bar_t)).sqrt()


result = ch05.check_max_eta(my_max_eta)
a, a_p = ab[600], ab[400]
edge = my_max_eta(a, a_p).item()
one = torch.ones(1, dtype=torch.float64)
samplers.ddim_step(one, one, a, a_p, eta=edge, noise=one)
try:
    samplers.ddim_step(one, one, a, a_p, eta=1.01 * edge, noise=one)
    raise AssertionError("ddim_step should refuse eta above eta_max")
except ValueError:
    print(f"eta_max(600 -> 400) = {edge:.4f}: ddim_step accepts it and refuses 1.01 x eta_max")

# %% [markdown]
# **5.4 (pen and paper).** Prove the law of total covariance,
# $\operatorname{Cov}(X, Z) = \mathbb E\big[\operatorname{Cov}(X, Z \mid Y)\big] + \operatorname{Cov}\big(\mathbb E[X \mid Y], \mathbb E[Z \mid Y]\big)$,
# with the three steps of section 5.4 applied to the product $XZ$. Then condition on $x_0$ throughout, take $Y = Z = x_t$
# and $X = x_{t-1}$, and show that $\operatorname{Cov}(x_{t-1}, x_t \mid x_0) = \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\,\sqrt{1-\bar\alpha_t}$.
# Deduce that the correlation of consecutive noises $r_{t-1}, r_t$ is $\sqrt{1 - \sigma_t^2/(1-\bar\alpha_{t-1})}$, the factor
# of the product in section 5.7, and that it is 1 at $\eta = 0$. Worked solution: appendix C.
