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
# # Chapter 9 — Beyond DDIM: the exponential integrator and a second-order solver
#
# Chapter 7 showed that DDIM with $\eta = 0$ is Euler's method for an ODE, and measured its first-order error on
# exact oracles: halve the step, halve the error. With the same trained network a better solver can do more with
# each network evaluation. This chapter derives the one most people now run, the exponential integrator of
# DPM-Solver (Lu et al. 2022, arXiv:2206.00927; DPM-Solver++ is arXiv:2211.01095), checks every identity in
# sympy, and measures it on the exact oracles.
#
# In this chapter you will be able to
#
# - rewrite DDIM's ODE with $\lambda$, half the log signal-to-noise ratio, as time, and integrate its linear part
#   exactly, leaving an integral of $\epsilon$;
# - prove that the first-order rule of this family (hold $\epsilon$ constant over the step) is exactly DDIM's step;
# - derive the second-order multistep rule ("2M") from a linear model of $\epsilon$, with its exact integrals;
# - see why the last step, to $t = 0$ where $\lambda$ is infinite, needs its own treatment, and what the variable in
#   which $\epsilon$ is expanded does to the order of the whole run;
# - measure global error against the number of network evaluations on Gaussian data (exact ODE map) and on the
#   Gaussian mixture, and sample quality on real digits;
# - drive the same rule through diffusers' `DPMSolverMultistepScheduler` and account for every difference.
#
# **Notation.** As in chapter 7, $\bar x = x / \sqrt{\bar\alpha}$ and $\sigma = \sqrt{1 - \bar\alpha} / \sqrt{\bar\alpha}$,
# the ODE's time (DDIM eq. (14); not the noise level $\sigma_t$ of DDIM eq. (12)). New here is
# $\lambda = -\log\sigma = \tfrac12 \log(\bar\alpha / (1 - \bar\alpha))$. The DPM-Solver paper writes $\alpha_t$ for our
# $\sqrt{\bar\alpha_t}$ and $\sigma_t$ for our $\sqrt{1 - \bar\alpha_t}$; we translate every formula we quote.

# %%
import math

import matplotlib.pyplot as plt
import sympy as sp
import torch

from ddim_book import pretrained, samplers
from ddim_book.dpm_solver import dpm_solver_coefficients
from ddim_book.exercises import ch09
from ddim_book.metrics import fold_ring, sliced_wasserstein
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.plotting import book_style, show_grid
from ddim_book.schedules import NoiseSchedule

book_style()
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(1000)  # DDPM's linear schedule, the one the shipped model was trained with
ab = schedule.alpha_bars.double()


def sigma_at(t: int) -> float:
    """Chapter 7's ODE time sigma_t = sqrt((1 - alphabar_t) / alphabar_t); 0 at t = 0."""
    return math.sqrt((1 - ab[t].item()) / ab[t].item())


# %% [markdown]
# ## 1. The linear part, integrated exactly
#
# In the variables of chapter 7 the ODE has no linear part at all: $d\bar x / d\sigma = \epsilon$. In the original
# variable $x = \sqrt{\bar\alpha}\,\bar x$, with $\lambda$ as time, it does. Since $\bar\alpha = 1 / (1 + \sigma^2)$ and
# $\sigma = e^{-\lambda}$,
#
# $$\frac{dx}{d\lambda} = \frac{d \log\sqrt{\bar\alpha}}{d\lambda}\, x \;-\; \sqrt{1 - \bar\alpha}\;\epsilon ,$$
#
# a linear term in $x$ plus the network's term. DPM-Solver's first observation (its eq. (3.4)) is that the linear
# term can be integrated exactly, with the integrating factor $1/\sqrt{\bar\alpha}$: from a noisier time $s$ to a
# cleaner time $t$ ($\lambda_t > \lambda_s$),
#
# $$\bar x_t = \bar x_s - \int_{\lambda_s}^{\lambda_t} e^{-\lambda}\, \epsilon(x_\lambda, \lambda)\, d\lambda
#   \;=\; \bar x_s + \int_{\sigma_s}^{\sigma_t} \epsilon \, d\sigma .$$
#
# sympy checks both halves: that $x(\lambda) = \sqrt{\bar\alpha(\lambda)}\,\big(c - \int^\lambda e^{-u}\epsilon(u)\,du\big)$
# solves the ODE above for an arbitrary function $\epsilon$, and that $e^{-\lambda}\,d\lambda = -d\sigma$:

# %%
# NBVAL_CHECK_OUTPUT
lam, u, c = sp.symbols("lambda u c", real=True)
eps_fn = sp.Function("epsilon")
abar_of_lam = 1 / (1 + sp.exp(-2 * lam))  # alphabar / (1 - alphabar) = e^{2 lambda}
x_of_lam = sp.sqrt(abar_of_lam) * (c - sp.Integral(sp.exp(-u) * eps_fn(u), (u, 0, lam)))
lhs = x_of_lam.diff(lam)
rhs = sp.diff(sp.log(sp.sqrt(abar_of_lam)), lam) * x_of_lam - sp.sqrt(1 - abar_of_lam) * eps_fn(lam)
assert sp.simplify((lhs - rhs).doit()) == 0
sigma_of_lam = sp.sqrt(1 - abar_of_lam) / sp.sqrt(abar_of_lam)
assert sp.simplify(sigma_of_lam - sp.exp(-lam)) == 0
assert sp.simplify(sigma_of_lam.diff(lam) + sp.exp(-lam)) == 0
print("sigma(lambda) =", sp.simplify(sigma_of_lam))
print("d log sqrt(alphabar) / d lambda =", sp.simplify(sp.diff(sp.log(sp.sqrt(abar_of_lam)), lam)))

# %% [markdown]
# All that is left to approximate is the integral of $\epsilon$. A solver is a choice of model for $\epsilon$ between the
# points where the network is evaluated, integrated exactly.
#
# ## 2. Order one: hold $\epsilon$ constant, and get DDIM
#
# With $\epsilon \equiv \epsilon_s$ over the step, $\int_{\lambda_s}^{\lambda_t} e^{-\lambda} d\lambda = \sigma_s - \sigma_t$, so
# $\bar x_t = \bar x_s + (\sigma_t - \sigma_s)\,\epsilon_s$. In DPM-Solver's own variables, with $h = \lambda_t - \lambda_s$, this is
# their first-order rule $x_t = \frac{\sqrt{\bar\alpha_t}}{\sqrt{\bar\alpha_s}} x_s - \sqrt{1 - \bar\alpha_t}\,(e^h - 1)\,\epsilon_s$. sympy
# compares it with DDIM eq. (12) at $\eta = 0$, written independently from $\hat x_0$:

# %%
# NBVAL_CHECK_OUTPUT
a_s, a_t = sp.symbols("alphabar_s alphabar_t", positive=True)
x_s, e_s = sp.symbols("x_s epsilon_s", real=True)
lam_s = sp.log(sp.sqrt(a_s) / sp.sqrt(1 - a_s))
lam_t = sp.log(sp.sqrt(a_t) / sp.sqrt(1 - a_t))
h = lam_t - lam_s
dpm_first_order = sp.sqrt(a_t) / sp.sqrt(a_s) * x_s - sp.sqrt(1 - a_t) * (sp.exp(h) - 1) * e_s
x0_hat = (x_s - sp.sqrt(1 - a_s) * e_s) / sp.sqrt(a_s)  # DDIM eq. (9)
ddim_eta0 = sp.sqrt(a_t) * x0_hat + sp.sqrt(1 - a_t) * e_s  # DDIM eq. (12), sigma_t = 0
assert sp.simplify(sp.expand(dpm_first_order - ddim_eta0)) == 0
last_step = sp.limit(sp.sqrt(1 - a_t) * (sp.exp(h) - 1), a_t, 1)
assert sp.simplify(last_step - sp.sqrt(1 - a_s) / sp.sqrt(a_s)) == 0
print("first-order exponential integrator - DDIM(eta = 0) = 0")
print("at the last step (alphabar_t -> 1): sqrt(1 - alphabar_t) (e^h - 1) ->", sp.simplify(last_step))

# %% [markdown]
# At the last step, to $t = 0$, $h$ is infinite but the product has a finite limit, $\sigma_s$: the step returns
# $\hat x_0$, as DDIM's last step does. The package's `samplers.dpm_solver_sample(..., order=1)` is therefore DDIM;
# on the mixture oracle, in float64, the two agree to rounding:

# %%
# NBVAL_CHECK_OUTPUT
mixture = GaussianMixtureOracle.ring_2d(schedule)
x_T_mix = torch.randn((4000, 2), generator=torch.Generator().manual_seed(90), dtype=torch.float64)
for spacing in ("uniform", "trailing"):
    first = samplers.dpm_solver_sample(mixture, schedule, x_T_mix, 20, order=1, spacing=spacing, progress=False)
    ddim = samplers.ddim_sample(mixture, schedule, x_T_mix, 20, 0.0, spacing, progress=False)
    gap = (first - ddim).abs().max().item()
    assert gap < 1e-12
    print(f"{spacing:>8}, S = 20: max |order-1 rule - DDIM| < 1e-12")

# %% [markdown]
# ## 3. Order two: a straight line through two evaluations
#
# A second-order rule models $\epsilon$ as a straight line over the step. The **multistep** form ("2M") spends no
# extra network evaluation on it: it draws the line through this step's evaluation $\epsilon_s$ and the previous
# step's $\epsilon_p$, so every step still costs one evaluation and $S$ steps cost $S$. (Single-step forms evaluate
# the network at a point inside the step instead; with a network that knows only integer timesteps, that point must
# land on one, which is why we take the multistep form.)
#
# DPM-Solver draws the line in $\lambda$: $\epsilon(\lambda) \approx \epsilon_s + (\lambda - \lambda_s)\,\frac{\epsilon_s - \epsilon_p}{\lambda_s - \lambda_p}$.
# The line could as well be drawn in $\sigma$: $\epsilon(\sigma) \approx \epsilon_s + (\sigma - \sigma_s)\,\frac{\epsilon_s - \epsilon_p}{\sigma_s - \sigma_p}$.
# Both are integrated exactly; sympy does the integrals and we compare them with the closed forms that
# `dpm_solver_coefficients` uses, $\bar x_t = \bar x_s + c_1 \epsilon_s + c_2 (\epsilon_s - \epsilon_p)$:

# %%
# NBVAL_CHECK_OUTPUT
L, Ls, Lt, Lp = sp.symbols("lambda lambda_s lambda_t lambda_p", real=True)
S_, Ss, St, Sp = sp.symbols("sigma sigma_s sigma_t sigma_p", positive=True)
# in lambda: integrate e^{-lambda} (lambda - lambda_s) from lambda_s to lambda_t, then divide by lambda_s - lambda_p
w_lambda = sp.integrate(sp.exp(-L) * (L - Ls), (L, Ls, Lt))
hh = Lt - Ls
closed_lambda = sp.exp(-Ls) - sp.exp(-Lt) * (1 + hh)  # sigma_s - sigma_t (1 + h)
assert sp.simplify(w_lambda - closed_lambda) == 0
# in sigma: integrate (sigma - sigma_s) from sigma_s to sigma_t, then divide by sigma_s - sigma_p
w_sigma = sp.integrate(S_ - Ss, (S_, Ss, St))
assert sp.simplify(w_sigma - (St - Ss) ** 2 / 2) == 0
print("lambda: int e^-lam (lam - lam_s) dlam =", sp.simplify(w_lambda), "= sigma_s - sigma_t (1 + h)")
print("sigma:  int (sig - sig_s) dsig        =", sp.factor(w_sigma))
numbers = {Ls: -math.log(sigma_at(500)), Lt: -math.log(sigma_at(400)), Lp: -math.log(sigma_at(600))}
c2_lambda = float(-(w_lambda / (Ls - Lp)).subs(numbers))
c2_sigma = float((w_sigma / (Ss - Sp)).subs({Ss: sigma_at(500), St: sigma_at(400), Sp: sigma_at(600)}))
for expand_in, want in (("lambda", c2_lambda), ("sigma", c2_sigma)):
    got = dpm_solver_coefficients(sigma_at(500), sigma_at(400), sigma_at(600), expand_in)[1]
    assert abs(got - want) < 1e-12 * abs(want)
    print(f"step 500 -> 400 after 600, eps linear in {expand_in:>6}: c2 = {got:.6f} (sympy {want:.6f})")

# %% [markdown]
# (The sign of $c_2$ in $\lambda$: $\bar x_t = \bar x_s - \int e^{-\lambda}\epsilon\,d\lambda$.) With uniform steps, each rule is
# exact for a straight-line $\epsilon$ in its own variable, and the error of one step is third order in the step,
# the hallmark of a second-order method. sympy expands the one-step error for $\epsilon = \sin\lambda$, a smooth
# function that is not a line in either variable, with $h_p = h$:

# %%
# NBVAL_CHECK_OUTPUT
hs = sp.symbols("h", positive=True)
l0 = sp.Rational(1, 3)  # lambda_s; the previous point is at l0 - h, the target at l0 + h


def integral_exact(f):
    return sp.integrate(sp.exp(-L) * f(L), (L, l0, l0 + hs))


def integral_2m_lambda(f):
    slope = (f(l0) - f(l0 - hs)) / hs
    return sp.integrate(sp.exp(-L) * (f(l0) + (L - l0) * slope), (L, l0, l0 + hs))


local = sp.series(integral_exact(sp.sin) - integral_2m_lambda(sp.sin), hs, 0, 4).removeO()
assert sp.simplify(local.coeff(hs, 0)) == 0 and sp.simplify(local.coeff(hs, 1)) == 0
assert sp.simplify(local.coeff(hs, 2)) == 0 and sp.simplify(local.coeff(hs, 3)) != 0
print(f"one 2M step in lambda, eps = sin(lambda): error = {float(local.coeff(hs, 3)):.6f} h^3 + O(h^4)")

# %% [markdown]
# ## 4. The last step, and the variable of the line
#
# The last step goes to $t = 0$: $\sigma_t = 0$, $\lambda_t = \infty$, and the network is never evaluated there. The
# first-order rule survives ($c_1 = -\sigma_s$, section 2). A line in $\lambda$, however, is extrapolated over an
# infinite interval. What does $\epsilon$ look like near the data? For Gaussian data chapter 7 found, along the ODE,
# $\bar x - m = k\sqrt{s^2 + \sigma^2}$ and $\epsilon = \sigma(\bar x - m)/(s^2 + \sigma^2) = k\sigma / \sqrt{s^2 + \sigma^2}$: a
# function that starts **linearly in $\sigma$** and is odd in it (only odd powers). In $\lambda$, the same function is
# $\approx (k/s)\,e^{-\lambda}$, which no straight line in $\lambda$ follows. sympy computes the error of the last
# step for $\epsilon = a\sigma + b\sigma^3$, with the line drawn through $\sigma_p = 2\sigma_s$ (in each variable):

# %%
# NBVAL_CHECK_OUTPUT
a_, b_ = sp.symbols("a b", real=True)


def eps_near_data(sig):
    return a_ * sig + b_ * sig**3


sig_s = sp.symbols("sigma_s", positive=True)
sig_p = 2 * sig_s
exact_last = sp.integrate(eps_near_data(S_), (S_, sig_s, 0))  # int_{sigma_s}^{0} eps d sigma
line_sigma = eps_near_data(sig_s) + (S_ - sig_s) * (eps_near_data(sig_s) - eps_near_data(sig_p)) / (sig_s - sig_p)
last_sigma = sp.integrate(line_sigma, (S_, sig_s, 0))
lam_line_slope = (eps_near_data(sig_s) - eps_near_data(sig_p)) / (-sp.log(sig_s) + sp.log(sig_p))
# in lambda: - int_{lambda_s}^{inf} e^{-lambda} (eps_s + (lambda - lambda_s) slope) d lambda = -(sigma_s eps_s + sigma_s slope)
last_lambda = -(sig_s * eps_near_data(sig_s) + sig_s * lam_line_slope)
err_sigma = sp.factor(sp.simplify(exact_last - last_sigma))
err_lambda = sp.factor(sp.simplify(exact_last - last_lambda))
assert err_sigma.subs(b_, 0) == 0 and sp.degree(sp.Poly(err_sigma, sig_s)) == 4
assert sp.simplify(err_lambda.subs(b_, 0)) != 0
print("last step, line in sigma:  error =", err_sigma)
print("last step, line in lambda: error =", err_lambda)

# %% [markdown]
# A line in $\sigma$ gets the leading term exactly and leaves an error of order $\sigma_s^4$; a line in $\lambda$ leaves
# one of order $\sigma_s^2$ even when $\epsilon$ is exactly linear in $\sigma$. With DDPM's linear schedule and a grid that
# is uniform in $t$ (trailing spacing), the last evaluated time is $\tau_1 = T/S$ and $\sigma_{\tau_1}^2 \approx \beta_1 \tau_1 \propto 1/S$,
# so an error of order $\sigma_s^2$ is an error of order $1/S$: one first-order step caps the whole run at first
# order. The package therefore takes the line in $\sigma$ for the last step, whichever variable the other steps use.
#
# The same reasoning reaches further back than the last step. Near the data, consecutive grid points $t = k T/S$
# have $\lambda$-distances $\tfrac12\log\frac{k+1}{k}$ that do not shrink as $S$ grows, so a line in $\lambda$ keeps
# making errors of relative size $O(1)$ there; they are weighted by $\sigma^2 \propto k/S$, and their sum is again of
# order $1/S$, with a small constant. A line in $\sigma$ has no such problem. Which effect wins at practical $S$ is a
# question for measurement.
#
# ## 5. Measured on Gaussian data, against the exact ODE map
#
# Chapter 7 solved the ODE for $x_0 \sim \mathcal N(m, s^2 I)$: $x_0 = m + (\bar x_T - m)\, s / \sqrt{s^2 + \sigma_T^2}$ with
# $\bar x_T = x_T / \sqrt{\bar\alpha_T}$. sympy confirms that this is where the flow through $(\sigma_T, \bar x_T)$ arrives:

# %%
# NBVAL_CHECK_OUTPUT
m, sd, sT, xbT = sp.symbols("m s sigma_T xbar_T", positive=True)
k_const = (xbT - m) / sp.sqrt(sd**2 + sT**2)  # xbar - m = k sqrt(s^2 + sigma^2) through (sigma_T, xbar_T)
xbar_flow = m + k_const * sp.sqrt(sd**2 + S_**2)
assert sp.simplify(xbar_flow.diff(S_) - S_ * (xbar_flow - m) / (sd**2 + S_**2)) == 0  # d xbar/d sigma = eps
assert sp.simplify(xbar_flow.subs(S_, sT) - xbT) == 0
print("x_0 - m = xbar(0) - m =", sp.simplify(xbar_flow.subs(S_, 0) - m))

# %% [markdown]
# We run DDIM and both second-order rules with trailing spacing from one set of $x_T$ (256 points in 64 dimensions,
# float64) and measure the root-mean-square distance to the exact $x_0$. The slopes are least-squares fits of
# $\log(\text{error})$ against $\log S$ over $S = 25, 50, 100$.

# %%
# NBVAL_CHECK_OUTPUT
m_val, s_val = 0.5, 0.3
gauss = GaussianOracle(schedule, mean=m_val, std=s_val, shape=(64,))
x_T = torch.randn((256, 64), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
exact = gauss.ode_map(x_T, 1000)  # the package's copy of the map just derived, checked against it:
assert torch.allclose(
    exact, m_val + (x_T / ab[1000].sqrt() - m_val) * s_val / math.sqrt(s_val**2 + sigma_at(1000) ** 2)
)
STEPS = (5, 10, 20, 25, 50, 100, 200, 400)
RULES = {
    "DDIM (order 1)": lambda model, xT, S: samplers.ddim_sample(
        model, schedule, xT, S, 0.0, "trailing", progress=False
    ),
    "2M, line in lambda": lambda model, xT, S: samplers.dpm_solver_sample(
        model, schedule, xT, S, 2, "trailing", "lambda", progress=False
    ),
    "2M, line in sigma": lambda model, xT, S: samplers.dpm_solver_sample(
        model, schedule, xT, S, 2, "trailing", "sigma", progress=False
    ),
}


def fitted_slope(steps, errors):
    x, y = torch.log(torch.tensor(steps, dtype=torch.float64)), torch.log(torch.tensor(errors, dtype=torch.float64))
    return float(-((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


gauss_errors = {
    name: [(rule(gauss, x_T, S) - exact).pow(2).mean().sqrt().item() for S in STEPS] for name, rule in RULES.items()
}
print(f"{'rule':>20}" + "".join(f"{'S=' + str(S):>10}" for S in STEPS) + f"{'slope 25-100':>14}")
for name, errs in gauss_errors.items():
    fit = fitted_slope([25, 50, 100], [errs[STEPS.index(S)] for S in (25, 50, 100)])
    print(f"{name:>20}" + "".join(f"{e:10.2e}" for e in errs) + f"{fit:14.2f}")

# %% [markdown]
# DDIM's slope is 1, as chapter 7 found. The line in $\sigma$ has slope 2, and keeps it from $S = 25$ to $400$: a
# second-order method. The line in $\lambda$ is the more accurate of the two from $S = 20$ to $100$ here, but its error
# does not fall at a steady rate: its fitted slope over $25$-$100$ (2.3) comes from a drop by ten between $S = 25$ and
# $50$ followed by a drop by about two, and from $S = 100$ to $400$ it falls roughly like $1/S$, the floor of
# section 4, so the $\sigma$ rule overtakes it at $S = 200$. Its error terms have different signs and partly cancel,
# which makes it good at some $S$ and not at others. At $S = 5$ the three rules are within 10% of one another; at
# $S = 10$ both second-order rules are about 30% closer to the exact map than DDIM.
#
# ## 6. Measured on the Gaussian mixture
#
# For the ring of eight Gaussians (chapter 6) the ODE has no closed form; the reference is a very fine solve, the
# $\sigma$-line rule with $S = 1000$, checked against the $\lambda$-line rule at the same $S$. The first table is the
# distance of each run's endpoints to the reference endpoints of the same $x_T$ (the solver's error); the second is
# a sample-quality distance, the folded sliced Wasserstein distance of chapter 6 between the 4000 endpoints and 4000
# exact samples of the mixture (what a perfect sampler scores: the last column of section 6.5's baseline, about 0.005).

# %%
# NBVAL_CHECK_OUTPUT
reference = RULES["2M, line in sigma"](mixture, x_T_mix, 1000)
check = RULES["2M, line in lambda"](mixture, x_T_mix, 1000)
print(f"reference: S = 1000; the two second-order rules agree to {(reference - check).abs().max().item():.1e}")
MIX_STEPS = (5, 10, 20, 50, 100, 200)
exact_mix = fold_ring(mixture.sample(4000, 0, torch.Generator().manual_seed(91)))
mix_errors, mix_quality = {}, {}
for name, rule in RULES.items():
    runs = {S: rule(mixture, x_T_mix, S) for S in MIX_STEPS}
    mix_errors[name] = [(runs[S] - reference).pow(2).sum(1).mean().sqrt().item() for S in MIX_STEPS]
    mix_quality[name] = [sliced_wasserstein(fold_ring(runs[S]), exact_mix) for S in (5, 10, 20)]
print(f"{'rule':>20}" + "".join(f"{'S=' + str(S):>10}" for S in MIX_STEPS) + "   (RMS distance to the reference)")
for name, errs in mix_errors.items():
    print(f"{name:>20}" + "".join(f"{e:10.2e}" for e in errs))
print(
    f"\n{'rule':>20}" + "".join(f"{'S=' + str(S):>10}" for S in (5, 10, 20)) + "   (folded sliced W2 to exact samples)"
)
for name, q in mix_quality.items():
    print(f"{name:>20}" + "".join(f"{v:10.4f}" for v in q))

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax, errors, steps, title in (
    (axes[0], gauss_errors, STEPS, "Gaussian data: error to the exact ODE map"),
    (axes[1], mix_errors, MIX_STEPS, "Gaussian mixture: error to a fine solve"),
):
    for (name, errs), marker in zip(errors.items(), "osd"):
        ax.loglog(steps, errs, marker=marker, ms=3, lw=1, label=name)
    s0, e0 = steps[-1], errors["DDIM (order 1)"][-1]
    ax.loglog([steps[2], s0], [e0 * s0 / steps[2], e0], "k:", lw=0.8)  # slope 1
    e2 = errors["2M, line in sigma"][-1]
    ax.loglog([steps[2], s0], [e2 * (s0 / steps[2]) ** 2, e2], "k--", lw=0.8)  # slope 2
    ax.set(xlabel="network evaluations S", ylabel="RMS error", title=title)
    ax.title.set_fontsize(8)
axes[0].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The dotted line has slope 1, the dashed one slope 2. On the mixture both second-order rules pull away from DDIM
# from $S = 50$ on: at $S = 50$ they are as close to the exact flow as DDIM at $S = 100$, and at $S = 100$ closer than
# DDIM at $S = 200$ by a factor of 2.5 to 4. At $S = 5$ to $20$ the distances to the flow are similar, yet the sample
# quality (second table) is better with the second-order rules at $S = 5$ and $10$ (0.18 against 0.26, and 0.07
# against 0.09), and equal at $S = 20$. All are far from what exact samples score at this $n$ (about 0.005,
# chapter 6) at $S \le 20$.
#
# ## 7. On real digits
#
# The same three rules, driving the shipped U-Net from one $x_T$ (8 digits) with 5, 10 and 20 network evaluations
# and trailing spacing:

# %%
model, model_schedule = pretrained.load("mnist")
x_T_digits = torch.randn((8, 1, 28, 28), generator=torch.Generator().manual_seed(92))
fig, axes = plt.subplots(3, 3, figsize=(7, 5.4))
for row, (name, _) in enumerate(RULES.items()):
    for col, S in enumerate((5, 10, 20)):
        if name.startswith("DDIM"):
            digits = samplers.ddim_sample(model, model_schedule, x_T_digits, S, 0.0, "trailing", progress=False)
        else:
            expand_in = "lambda" if "lambda" in name else "sigma"
            digits = samplers.dpm_solver_sample(
                model, model_schedule, x_T_digits, S, 2, "trailing", expand_in, progress=False
            )
        show_grid(digits.clamp(-1, 1), ax=axes[row, col], title=f"{name}, S = {S}", nrow=4)
        axes[row, col].title.set_fontsize(8)
fig.tight_layout()

# %% [markdown]
# Each column starts from the same $x_T$, so the three rules solve the same ODE and should reach similar digits,
# the better solvers sooner. How much better the digits are is a measurement over many samples, cached by
# `scripts/solver_digits_table.py` (with `DDIM_BOOK_RECOMPUTE=1` the chapter reruns it, about 10 minutes): 1,000
# digits per cell from one seeded set of $x_T$, trailing spacing, each set scored against the 1,000 held-out digits
# with the Fréchet LeNet Distance of chapter 6 and its 95% bootstrap interval (lower is better; real digits score
# about 7 at this $n$).

# %%
# NBVAL_CHECK_OUTPUT
import json
import os
import subprocess
import sys
from pathlib import Path

from ddim_book import metrics, paths

record_path = paths.results_dir() / "solver_digits.json"
if os.environ.get("DDIM_BOOK_RECOMPUTE") == "1":
    root = Path(pretrained.__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "scripts" / "solver_digits_table.py")], check=True, cwd=root)
solver_record = json.loads(record_path.read_text())
if solver_record["model"]["sha256"] != pretrained.entry("mnist")["sha256"]:
    print("NOTE: the cache was made with a different model than the shipped one; rerun the script")
print(f"n = {solver_record['n']} digits per cell, x_T seed {solver_record['seed']}, {solver_record['spacing']} spacing")
rule_names = {"ddim": "DDIM (order 1)", "2m-lambda": "2M, line in lambda", "2m-sigma": "2M, line in sigma"}
cell_steps = sorted({c["steps"] for c in solver_record["cells"].values()})
print(f"{'FLD [95% interval]':>20}" + "".join(f"{'S = ' + str(S):>24}" for S in cell_steps))
for key, name in rule_names.items():
    row = [solver_record["cells"][f"{key}|{S}"] for S in cell_steps]
    print(f"{name:>20}" + "".join(f"{c['fld']:>8.1f} [{c['fld_low']:5.1f}, {c['fld_high']:5.1f}]" for c in row))
print(f"{'confidence':>20}" + "".join(f"{'S = ' + str(S):>24}" for S in cell_steps))
for key, name in rule_names.items():
    print(f"{name:>20}" + "".join(f"{solver_record['cells'][f'{key}|{S}']['confidence']:>24.3f}" for S in cell_steps))
print(f"{'FLD difference [paired]':>20}" + "".join(f"{'S = ' + str(S):>24}" for S in cell_steps))
pairs = {"2M-lambda - DDIM": ("2m-lambda", "ddim"), "2M-sigma - DDIM": ("2m-sigma", "ddim")}
pairs["2M-lambda - 2M-sigma"] = ("2m-lambda", "2m-sigma")
for label, (first, second) in pairs.items():
    entries = []
    for S in cell_steps:
        a, b = solver_record["cells"][f"{first}|{S}"], solver_record["cells"][f"{second}|{S}"]
        if "fld_boot" not in a or "fld_boot" not in b:
            entries.append(f"{'(no resamples)':>24}")
            continue
        d = metrics.paired_fld_change(a, b)
        star = "*" if d["excludes_zero"] else " "
        entries.append(f"{d['diff']:+8.1f} [{d['low']:+5.1f}, {d['high']:+5.1f}]{star}")
    print(f"{label:>20}" + "".join(entries))

# %% [markdown]
# On real digits the second-order rules pay off where the steps are long. At 5 evaluations both are far better than
# DDIM, whose interval lies well above both of theirs; at 10 and 20 the three intervals overlap side by side. But the
# three rules are deterministic and start every digit from the same $x_T$, so digit $i$ comes out much the same under
# each, and the bootstrap resamples the same positions in every set: the *difference* of two rules' FLDs has a far
# narrower interval (`metrics.paired_difference`, chapter 6). The last three rows give it, with `*` where it excludes 0.
# Paired, both second-order rules beat DDIM at 5, 10 and 20 evaluations, by less as $S$ grows, and the line in
# $\lambda$ beats the line in $\sigma$ at each $S$, by a margin that shrinks to a fraction of an FLD unit at 20. The
# classifier's confidence moves the same way. In evaluations, DPM-Solver-2M at $S = 10$ lands about where DDIM is at
# $S = 20$: the factor of two that section 6 measured on the mixture, here on a trained network, where the error also
# contains what the network gets wrong, which no solver removes.
#
# **The same rule in diffusers.** diffusers' `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver"`,
# `solver_order=2` and `solver_type="heun"` integrates a line in $\lambda$ exactly: our `expand_in="lambda"`. Driven by
# our U-Net from the same 64 $x_T$ with trailing spacing (its timestep $k$ is our $t = k + 1$, appendix B), it visits
# the same timesteps. Its last step differs by design: diffusers makes it first order and, for this algorithm,
# refuses to end at $\bar\alpha = 1$ (`final_sigmas_type="zero"`), so it stops at its timestep 0, our $t = 1$. We
# compare the states before the last step, where the two rules are the same, and the outputs:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'S':>4} {'same timesteps':>15} {'max |diff| before the last step':>32} {'max |diff| of the outputs':>26}")
for row in solver_record["diffusers"]:
    before, after = row["max_abs_diff_before_last_step"], row["max_abs_diff_output"]
    print(f"{row['steps']:4d} {str(row['timesteps_agree']):>15} {before:>32.1e} {after:>26.2f}")
assert all(r["timesteps_agree"] and r["max_abs_diff_before_last_step"] < 1e-3 for r in solver_record["diffusers"])

# %% [markdown]
# Up to the last step the two implementations agree to float32 rounding (the U-Net runs in float32). The outputs
# differ by a few tenths of a pixel (pixels in $[-1, 1]$), and almost all of it is the rule of the last step, a long
# one with trailing spacing (from $t = T/S$ down): a first-order step in diffusers, the line in $\sigma$ of section 4 in
# ours. Stopping at $t = 1$ instead of $0$ accounts for little, since $x_1$ carries noise of standard deviation only
# $\sqrt{1 - \bar\alpha_1} = \sqrt{\beta_1} = 0.01$.
#
# ## Summary
#
# - With $\lambda = -\log\sigma$ as time, the linear part of DDIM's ODE integrates exactly:
#   $\bar x_t = \bar x_s - \int e^{-\lambda}\epsilon\,d\lambda = \bar x_s + \int \epsilon\,d\sigma$. A solver is a model of $\epsilon$
#   between evaluations, integrated exactly.
# - Holding $\epsilon$ constant gives exactly DDIM's $\eta = 0$ step (sympy), including the last step to $\hat x_0$.
# - The multistep second-order rule draws a line through the last two evaluations, one evaluation per step. Drawn in
#   $\lambda$ it is DPM-Solver-2M; drawn in $\sigma$ it is the Adams-Bashforth method for DDIM's ODE.
# - Near the data $\epsilon$ is linear (and odd) in $\sigma$. The last step to $t = 0$ must use a line in $\sigma$, or the whole
#   run drops to first order; on a grid uniform in $t$ the line in $\lambda$ also loses order near the data.
# - Measured on Gaussian data: slope 1 for DDIM, 2 for the $\sigma$-line rule; the $\lambda$-line rule is more accurate at
#   moderate $S$ but does not converge at a steady second-order rate. On the mixture both second-order rules need
#   half DDIM's evaluations or fewer for the same error from $S = 50$ on, and draw better samples at $S = 5$ and $10$.
# - On the shipped model's digits (n = 1000 per cell) both second-order rules beat DDIM at 5 evaluations, the line in
#   $\lambda$ also at 10, and all three are within noise at 20. diffusers' DPM-Solver-2M is the same rule up to its
#   last step.
#
# ## Exercises
#
# **9.1 (code).** Implement the first-order exponential-integrator step, `my_first_order_step(x_s, eps, alpha_bar_s, alpha_bar_t) -> x_t`,
# from DPM-Solver's formula $x_t = \frac{\sqrt{\bar\alpha_t}}{\sqrt{\bar\alpha_s}} x_s - \sqrt{1 - \bar\alpha_t}\,(e^h - 1)\,\epsilon_s$,
# in a form that stays finite at the last step ($\bar\alpha_t = 1$). Fill in the exercise cell and run it:
# `ch09.check_first_order_step` compares your function with `samplers.ddim_step`. The solution cell after it holds a worked
# answer.


# %% tags=["exercise"]
def my_first_order_step(x_s, eps, alpha_bar_s, alpha_bar_t):
    return ...


result = ch09.check_first_order_step(my_first_order_step)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_first_order_step(x_s, eps, alpha_bar_s, alpha_bar_t):
    alpha_s, alpha_t = alpha_bar_s**0.5, alpha_bar_t**0.5
    sigma_s, sigma_t = (1 - alpha_bar_s) ** 0.5, (1 - alpha_bar_t) ** 0.5
    # e^h = alpha_t sigma_s / (sigma_t alpha_s), so sigma_t (e^h - 1) = alpha_t sigma_s / alpha_s - sigma_t: finite at sigma_t = 0
    return alpha_t / alpha_s * x_s - (alpha_t * sigma_s / alpha_s - sigma_t) * eps


result = ch09.check_first_order_step(my_first_order_step)

# %% [markdown]
# **9.2 (code).** Derive the weights of the 2M step, `my_weights(sigma_s, sigma_t, sigma_p, expand_in) -> (c1, c2)` with
# $\bar x_t = \bar x_s + c_1 \epsilon_s + c_2 (\epsilon_s - \epsilon_p)$, for a line in `"lambda"` and in `"sigma"` (the last step,
# $\sigma_t = 0$, uses the line in $\sigma$ for both). `ch09.check_second_order_weights` compares them with
# `dpm_solver_coefficients`.


# %% tags=["exercise"]
def my_weights(sigma_s, sigma_t, sigma_p, expand_in):
    c1 = ...
    c2 = ...
    return c1, c2


result = ch09.check_second_order_weights(my_weights)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_weights(sigma_s, sigma_t, sigma_p, expand_in):
    c1 = sigma_t - sigma_s  # the integral of the constant eps_s over sigma
    if expand_in == "sigma" or sigma_t == 0.0:  # integral of (sigma - sigma_s) / (sigma_s - sigma_p) d sigma
        return c1, 0.5 * (sigma_t - sigma_s) ** 2 / (sigma_s - sigma_p)
    # with lambda = -log sigma and d sigma = -e^(-lambda) d lambda, the integral of (lambda - lambda_s) over sigma
    # from sigma_s to sigma_t is sigma_t (1 + h) - sigma_s, h = lambda_t - lambda_s; divide by lambda_s - lambda_p
    h = math.log(sigma_s / sigma_t)
    return c1, (sigma_t * (1 + h) - sigma_s) / math.log(sigma_p / sigma_s)


result = ch09.check_second_order_weights(my_weights)

# %% [markdown]
# **9.3 (pen and paper).** For data with a smooth density $p_0$, show that along the ODE $\epsilon = -\sigma\,\nabla\log p_\sigma(\bar x)$,
# where $p_\sigma$ is $p_0$ smoothed by $\mathcal N(0, \sigma^2 I)$, and that $\nabla\log p_\sigma = \nabla\log p_0 + O(\sigma^2)$. Conclude that
# $\epsilon$ is $\sigma$ times a function that is even in $\sigma$ to second order, which is what section 4 assumed. The
# cell checks the claim for the mixture oracle: $\epsilon / \sigma$ at small $\sigma$ changes by $O(\sigma^2)$. Worked
# solution: appendix C.

# %%
x_probe = mixture.sample(64, 0, torch.Generator().manual_seed(93))
ratios = []
for t in (1, 2, 4):
    x_t = ab[t].sqrt() * x_probe  # xbar held fixed at the data point
    ratios.append(mixture(x_t, torch.full((64,), t)) / sigma_at(t))
change_12 = (ratios[1] - ratios[0]).abs().max().item()
change_24 = (ratios[2] - ratios[1]).abs().max().item()
sig = [sigma_at(t) for t in (1, 2, 4)]
per_sigma2 = [change_12 / (sig[1] ** 2 - sig[0] ** 2), change_24 / (sig[2] ** 2 - sig[1] ** 2)]
per_sigma = [change_12 / (sig[1] - sig[0]), change_24 / (sig[2] - sig[1])]
print(f"change of eps/sigma per unit of sigma^2: {per_sigma2[0]:.0f}, {per_sigma2[1]:.0f} (steady)")
print(f"change of eps/sigma per unit of sigma:   {per_sigma[0]:.1f}, {per_sigma[1]:.1f} (not steady)")
assert abs(per_sigma2[1] / per_sigma2[0] - 1) < 0.1 and abs(per_sigma[1] / per_sigma[0] - 1) > 0.3
