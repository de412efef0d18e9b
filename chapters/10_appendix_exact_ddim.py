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
# # Appendix A — How exact is DDIM with a perfect network?
#
# A trained network makes errors, and so does a sampler that takes 10 steps where the model was trained for 1000.
# To see the sampler's own error we remove the network's: for Gaussian data $x_0 \sim \mathcal N(m, s^2 I)$ the
# exact noise predictor $\mathbb E[\epsilon \mid x_t]$ is known in closed form (`ddim_book.oracles.GaussianOracle`),
# and deterministic DDIM ($\eta = 0$, DDIM eq. (12)) becomes a chain of affine maps that we can follow with pen,
# paper and sympy.
#
# In this appendix you will be able to
#
# - derive the affine map $x_{\text{prev}} = A_i x_t + b_i$ that one DDIM step makes with a perfect network;
# - compute the mean and variance that $S$ steps produce from $x_T \sim \mathcal N(0, I)$;
# - prove that the produced variance never exceeds the true $s^2$ when the chain starts from the right marginal,
#   and say how the start $x_T \sim \mathcal N(0, I)$ (rather than $q(x_T)$) and the choice of sub-sequence change that;
# - confirm every number with `samplers.ddim_sample` run on the oracle.

# %%
import math

import matplotlib.pyplot as plt
import sympy as sp
import torch
from sympy.stats import Normal, covariance, variance

from ddim_book import samplers
from ddim_book.exercises import appendix
from ddim_book.oracles import GaussianOracle
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
torch.set_num_threads(1)  # the tensors here are small: one thread is faster than two competing ones
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule
T, ab = schedule.T, schedule.alpha_bars
m, s = 1.0, 0.5  # the data: x_0 ~ N(m, s^2) per coordinate
oracle = GaussianOracle(schedule, mean=m, std=s, shape=(1,))

# %% [markdown]
# ## A.1 The perfect network for Gaussian data
#
# Write $a = \bar\alpha_t$. With $x_t = \sqrt a\, x_0 + \sqrt{1-a}\,\epsilon$ and $x_0 \sim \mathcal N(m, s^2)$ (one
# coordinate: the covariance is $s^2 I$, so coordinates never interact), $x_t$ and $\epsilon$ are jointly Gaussian and
#
# $$\mathbb E[\epsilon \mid x_t] = \frac{\operatorname{Cov}(\epsilon, x_t)}{\operatorname{Var}(x_t)}\,(x_t - \mathbb E x_t)
# = \frac{\sqrt{1-a}}{v(a)}\,(x_t - \sqrt a\,m), \qquad v(a) = a s^2 + 1 - a .$$
#
# This is the minimiser of $L_\text{simple}$ (chapter 3), the network we would get with infinite data and capacity.

# %%
a, a2, s_sym = sp.symbols("a a' s", positive=True)  # a = alpha_bar at the current step, a' at the next one
m_sym, x = sp.symbols("m x", real=True)
X0, Eps = Normal("x_0", m_sym, s_sym), Normal("epsilon", 0, 1)
X_t = sp.sqrt(a) * X0 + sp.sqrt(1 - a) * Eps
v = a * s_sym**2 + 1 - a
v2 = a2 * s_sym**2 + 1 - a2
assert sp.simplify(variance(X_t) - v) == 0
eps_coef = sp.simplify(covariance(Eps, X_t) / variance(X_t))
assert sp.simplify(eps_coef - sp.sqrt(1 - a) / v) == 0
eps_hat = eps_coef * (x - sp.sqrt(a) * m_sym)  # the exact E[epsilon | x_t = x]

# %%
# NBVAL_CHECK_OUTPUT
print("Var[x_t]            =", variance(X_t).simplify())
print("E[epsilon | x_t=x]  =", eps_hat)
eps_fn = sp.lambdify((x, a, s_sym, m_sym), eps_hat)
points = torch.tensor([[-2.0], [0.0], [0.7], [3.0]], dtype=torch.float64)
print(f"{'t':>5} {'x':>5} {'GaussianOracle':>15} {'closed form':>12}")
for t in (1, 300, 1000):
    got = oracle(points, t)
    for xv, e in zip(points[:, 0].tolist(), got[:, 0].tolist()):
        want = eps_fn(xv, ab[t].item(), s, m)
        assert abs(e - want) < 1e-12
        print(f"{t:>5} {xv:>5.1f} {e:>15.6f} {want:>12.6f}")

# %% [markdown]
# ## A.2 One DDIM step is an affine map
#
# With $\eta = 0$ a DDIM step from $a = \bar\alpha_{\tau_i}$ to $a' = \bar\alpha_{\tau_{i-1}}$ is
# $x' = \sqrt{a'}\,\hat x_0 + \sqrt{1-a'}\,\hat\epsilon$ with $\hat x_0 = (x - \sqrt{1-a}\,\hat\epsilon)/\sqrt a$ (DDIM eqs. (9), (12)).
# Both $\hat\epsilon$ and $\hat x_0$ are affine in $x$, so the step is $x' = A_i x + b_i$:

# %%
x0_hat = (x - sp.sqrt(1 - a) * eps_hat) / sp.sqrt(a)
x_next = sp.sqrt(a2) * x0_hat + sp.sqrt(1 - a2) * eps_hat  # DDIM eq. (12), eta = 0
A_i = sp.simplify(sp.diff(x_next, x))
b_i = sp.simplify(x_next.subs(x, 0))
A_closed = (sp.sqrt(a) * sp.sqrt(a2) * s_sym**2 + sp.sqrt(1 - a) * sp.sqrt(1 - a2)) / v
assert sp.simplify(A_i - A_closed) == 0
assert sp.simplify(sp.diff(x_next, x, 2)) == 0  # affine: no curvature
assert sp.simplify(b_i - (sp.sqrt(a2) - A_closed * sp.sqrt(a)) * m_sym) == 0  # the step maps the mean to the mean
# the predicted x_0 is the posterior mean E[x_0 | x_t] (Tweedie; chapter 3)
assert sp.simplify(x0_hat - (m_sym + sp.sqrt(a) * s_sym**2 * (x - sp.sqrt(a) * m_sym) / v)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("A_i =", A_closed)
print("b_i =", sp.factor(b_i))
print("x0_hat(x) =", sp.simplify(x0_hat))

# %% [markdown]
# $A_i = \big(\sqrt{a a'}\,s^2 + \sqrt{(1-a)(1-a')}\big) / (a s^2 + 1 - a)$ and $b_i = (\sqrt{a'} - A_i\sqrt a)\,m$. Since
# $b_i$ sends the true mean $\sqrt a\,m$ to the true mean $\sqrt{a'}m$, it is cleaner to follow deviations
# $y = x - \sqrt{a}\,m$ from the true mean: $y' = A_i\, y$.
#
# ## A.3 What $S$ steps produce, and why it is never too much
#
# DDIM runs $\tau_S \to \tau_{S-1} \to \dots \to \tau_1 \to 0$, the last step going to $\bar\alpha_0 = 1$. Start from
# $x_{\tau_S}$ with mean $M$ and variance $V$. Every step multiplies the deviation by $A_i$, so the output has
#
# $$\operatorname{Var}_S = V \prod_{i=1}^{S} A_i^2, \qquad
# \mathbb E_S - m = \big(M - \sqrt{\bar\alpha_{\tau_S}}\,m\big) \prod_{i=1}^{S} A_i .$$
#
# The sampler starts from $x_T \sim \mathcal N(0, I)$: $V = 1$, $M = 0$.
#
# **Per-step inequality.** The exact transport (the probability-flow ODE, DDIM eq. (14)) would scale a deviation by
# $\sqrt{v(a')/v(a)}$, turning variance $v(a)$ into $v(a')$. DDIM does not scale more: $A_i^2\, v(a) \le v(a')$. Put
# $u = (\sqrt a\, s,\ \sqrt{1-a})$ and $u' = (\sqrt{a'}\, s,\ \sqrt{1-a'})$; then $v(a) = |u|^2$, $v(a') = |u'|^2$ and the
# numerator of $A_i$ is $u \cdot u'$. The inequality is Cauchy–Schwarz, $(u \cdot u')^2 \le |u|^2 |u'|^2$, and
# Lagrange's identity makes the gap explicit:
#
# $$v(a)\,v(a') - (u\cdot u')^2 = s^2\big(\sqrt{a(1-a')} - \sqrt{a'(1-a)}\big)^2 \ge 0 .$$

# %%
numerator = sp.sqrt(a) * sp.sqrt(a2) * s_sym**2 + sp.sqrt(1 - a) * sp.sqrt(1 - a2)
lagrange_gap = s_sym**2 * (sp.sqrt(a) * sp.sqrt(1 - a2) - sp.sqrt(a2) * sp.sqrt(1 - a)) ** 2
assert sp.simplify(sp.expand(v * v2 - numerator**2 - lagrange_gap)) == 0
assert sp.simplify(A_closed**2 * v - numerator**2 / v) == 0  # so v(a') - A_i^2 v(a) = gap / v(a) >= 0

# the angle form: u = |u| (cos phi, sin phi), and A_i = sqrt(v'/v) cos(phi' - phi)
cos_phi, sin_phi = s_sym * sp.sqrt(a) / sp.sqrt(v), sp.sqrt(1 - a) / sp.sqrt(v)
cos_phi2, sin_phi2 = s_sym * sp.sqrt(a2) / sp.sqrt(v2), sp.sqrt(1 - a2) / sp.sqrt(v2)
assert sp.simplify(cos_phi**2 + sin_phi**2 - 1) == 0
assert sp.simplify(A_closed - sp.sqrt(v2) / sp.sqrt(v) * (cos_phi * cos_phi2 + sin_phi * sin_phi2)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("v(a) v(a') - (u.u')^2 =", sp.factor(lagrange_gap))
print("check of the identity  :", sp.simplify(sp.expand(v * v2 - numerator**2 - lagrange_gap)))
print("A_i / sqrt(v'/v)       = cos(phi' - phi) with tan(phi) =", sp.simplify(sin_phi / cos_phi))

# %% [markdown]
# **The bound.** Multiply the per-step inequalities along the chain. If the start had the true marginal,
# $V = v(\bar\alpha_{\tau_S})$, then each step keeps the variance at or below the true one and
# $\operatorname{Var}_S \le v(\bar\alpha_0) = s^2$. The angle form says more. With $\tan\varphi(a) = \sqrt{1-a}/(s\sqrt a)$ the
# factors $\sqrt{v'/v}$ telescope:
#
# $$\operatorname{Var}_S = \frac{V}{v(\bar\alpha_{\tau_S})}\; s^2 \prod_{i=1}^S \cos^2\Delta\varphi_i,
# \qquad \sum_i \Delta\varphi_i = \varphi(\bar\alpha_{\tau_S}) < \frac{\pi}{2}.$$
#
# Each step loses the factor $\cos^2\Delta\varphi_i$, and $1 - \prod_i \cos^2\Delta\varphi_i \le \sum_i \sin^2\Delta\varphi_i \le \sum_i \Delta\varphi_i^2$.
# As the steps shrink, $\sum_i \Delta\varphi_i^2 \le \max_i \Delta\varphi_i \cdot \pi/2 \to 0$: the variance climbs toward
# $s^2$ from below, and the deficit is about the sum of the squared angle increments.
#
# **Where the start matters.** The sampler uses $V = 1$, not $v(\bar\alpha_{\tau_S}) = 1 - \bar\alpha_{\tau_S}(1 - s^2)$.
# That multiplies the output variance by $1/v(\bar\alpha_{\tau_S})$:
#
# - with the "trailing" sub-sequence, $\tau_S = T$ and $\bar\alpha_T \approx 4\times 10^{-5} > 0$: the factor is
#   $1 + \bar\alpha_T (1-s^2) + \dots$, harmless, but for $s < 1$ it is the only way the output can exceed $s^2$
#   (for $s \ge 1$ it is $\le 1$ and the bound holds as stated);
# - with the "uniform" sub-sequence of the DDIM code, $\tau_S = 1 + (S-1)\lfloor T/S\rfloor < T$: for $S = 1$ the single
#   step starts at $t = 1$, where $q(x_1)$ is essentially the data, and pure noise passes through almost unchanged.
#
# ## A.4 The closed form against `ddim_sample`
#
# The closed form below is the product of the $A_i$ above along `samplers.timesteps`. We compare it with
# `samplers.ddim_sample` run on the oracle, in two ways: exactly (the sampler is an affine map, so running it from
# $x_T = 0$ and $x_T = 1$ gives its intercept and slope: `appendix.produced_map`) and by Monte Carlo on 50,000
# draws of $x_T \sim \mathcal N(0, 1)$. The samplers hand the model a batch of equal timesteps; the oracle also
# accepts one integer $t$, which spares it the per-sample bookkeeping, so we pass it `t[0]`.

# %%
A_fn = sp.lambdify((a, a2, s_sym), A_closed, "math")


def closed_form(sched, std, steps, spacing, mean=0.0):
    """(prod A_i, Var_S from V = 1, mean error from M = 0, sum of squared angle steps, tau_S) for one plan."""
    taus = samplers.timesteps(sched.T, steps, spacing)
    abl = sched.alpha_bars.tolist()
    slope, angles = 1.0, 0.0
    for t, prev in zip(taus, [0, *taus[:-1]]):
        slope *= A_fn(abl[t], abl[prev], std)
        phi = math.atan2(math.sqrt(1 - abl[t]), std * math.sqrt(abl[t]))
        phi_prev = math.atan2(math.sqrt(1 - abl[prev]), std * math.sqrt(abl[prev]))
        angles += (phi - phi_prev) ** 2
    mean_error = -math.sqrt(abl[taus[-1]]) * mean * slope
    return slope, slope**2, mean_error, angles, taus[-1]


def oracle_at_common_t(x_t, t):
    return oracle(x_t, int(t[0]))


S_list = [1, 2, 5, 10, 20, 50, 100, 1000]
n_draws = 50_000
gen = torch.Generator().manual_seed(11)
x_T = torch.randn((n_draws, 1), generator=gen, dtype=torch.float64)
results = {}
for spacing in ("trailing", "uniform"):
    for S in S_list:
        slope, var_S, mean_err, angles, tau_S = closed_form(schedule, s, S, spacing, m)
        exact_slope, exact_intercept = appendix.produced_map(schedule, s, S, spacing, mean=m)
        assert abs(exact_slope - slope) < 1e-12 * max(1.0, abs(slope)) and abs(exact_intercept - m - mean_err) < 1e-12
        if spacing == "uniform" and S == T:
            results[spacing, S] = results["trailing", S]  # the same sequence 1, ..., T
            continue
        out = samplers.ddim_sample(oracle_at_common_t, schedule, x_T, steps=S, spacing=spacing, progress=False)
        mc_var, mc_mean_err = out.var().item(), out.mean().item() - m
        assert abs(mc_var - var_S) < 4 * var_S * math.sqrt(2 / n_draws)
        assert abs(mc_mean_err - mean_err) < 4 * math.sqrt(var_S / n_draws)
        results[spacing, S] = (tau_S, var_S, mc_var, mean_err, mc_mean_err, angles)


# %%
# NBVAL_CHECK_OUTPUT
def v_of(t):
    return ab[t].item() * s**2 + 1 - ab[t].item()  # the variance of q(x_t)


print(
    f"data N({m}, {s}^2): true variance s^2 = {s**2}; sample variance of the 50,000 x_T draws = {x_T.var().item():.4f}"
)
for spacing in ("trailing", "uniform"):
    print(f"\n{spacing} sub-sequence, x_T ~ N(0, 1)")
    print(
        f"{'S':>5} {'tau_S':>5} {'Var_S':>10} {'MC':>10} {'Var_S/s^2':>9} {'from q(x_tau)':>13}"
        f" {'mean err':>9} {'MC':>8} {'deficit':>8} {'sum dphi^2':>10}"
    )
    for S in S_list:
        tau_S, var_S, mc_var, mean_err, mc_mean_err, angles = results[spacing, S]
        var_true_start = var_S * v_of(tau_S)  # the same chain started from q(x_{tau_S})
        deficit = 1 - var_true_start / s**2
        assert var_true_start <= s**2 and deficit <= angles
        print(
            f"{S:>5} {tau_S:>5} {var_S:>10.6f} {mc_var:>10.6f} {var_S / s**2:>9.4f} {var_true_start / s**2:>13.4f}"
            f" {mean_err:>9.5f} {mc_mean_err:>8.5f} {deficit:>8.5f} {angles:>10.5f}"
        )

# %% [markdown]
# Columns: $\operatorname{Var}_S$ from the closed form and from Monte Carlo; the ratio to $s^2$; the ratio the same chain
# would give started from the true $q(x_{\tau_S})$; the mean error $\mathbb E_S - m$ (closed form and Monte Carlo); the
# deficit $1 - \prod\cos^2\Delta\varphi_i$ and its bound $\sum \Delta\varphi_i^2$. Every Monte Carlo number agrees with the
# closed form to four standard errors, and `ddim_sample` matches the closed-form slope and intercept to $10^{-12}$.
# (The Monte Carlo variances all sit about 0.3% low together: every row maps the same 50,000 draws, whose sample
# variance is 0.997, through an affine map.)
#
# What the table says:
#
# - **Trailing**: one step from pure noise returns $\mathbb E[x_0 \mid x_T] \approx m$ for every draw — variance
#   $\approx 0$. The variance then climbs monotonically toward $s^2$, but even $S = T = 1000$ falls short by 0.6%: the
#   1000-step schedule is itself a discretisation, and its first steps (near $t = 1$, where $\varphi$ changes fastest)
#   take the largest angles. The deficit is almost exactly $\sum\Delta\varphi_i^2$.
# - **Uniform**: at $S = 1$ the single step starts at $t = 1$ and the output variance is $\approx 1$, four times too large, with the
#   mean near 0 instead of $m$ — the bound fails because the start is wrong, not because the step is. From $S = 2$ on, $\tau_S$
#   is at least 501, the start is nearly right, and the variance stays below $s^2$.
# - The mean error is $-\sqrt{\bar\alpha_{\tau_S}}\,m\prod A_i$: it is the mean of $q(x_{\tau_S})$ that the $\mathcal N(0, I)$
#   start forgets, carried down by the same slopes. For trailing steps it stays below $0.4\%$ of $m$.
# - Started from the true $q(x_{\tau_S})$, every entry of the "from q(x_tau)" column is $\le 1$, as the theorem says.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
S_dense = sorted({1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000} | set(S_list))
for spacing, color in (("trailing", "C0"), ("uniform", "C1")):
    closed = [closed_form(schedule, s, S, spacing) for S in S_dense]
    mc = [results[spacing, S][2] for S in S_list]
    ax1.plot(S_dense, [c[1] for c in closed], "-", color=color, label=f"closed form, {spacing}")
    ax1.plot(S_list, mc, "o", color=color, ms=4, mfc="none", label=f"ddim_sample, {spacing}")
trailing = [closed_form(schedule, s, S, "trailing") for S in S_dense]
deficit = [1 - c[1] * v_of(c[4]) / s**2 for c in trailing]
ax2.loglog(S_dense, deficit, "-", color="C0", label="deficit $1 - \\mathrm{Var}_S/s^2$")
ax2.loglog(S_dense, [c[3] for c in trailing], "--", color="k", lw=1, label="bound $\\sum\\Delta\\varphi_i^2$")
ax1.axhline(s**2, color="k", lw=1, ls=":", label="$s^2$")
ax1.set(xscale="log", xlabel="S (DDIM steps)", ylabel="produced variance", ylim=(0, 0.3))
ax1.set_title("variance from $x_T \\sim N(0, 1)$")
ax1.legend(fontsize=8)
ax2.set(xlabel="S (DDIM steps)", ylabel="relative deficit", title="trailing, started from $q(x_T)$")
ax2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The left panel clips the uniform $S = 1$ point (variance $\approx 1$). On the right the deficit falls roughly like
# $1/S$ until $S$ approaches $T$, where the angles of the fixed 1000-step grid near $t = 1$ take over.
#
# ## Summary
#
# - With a perfect network for Gaussian data, a deterministic DDIM step is affine: $A_i = \big(\sqrt{a a'}s^2 + \sqrt{(1-a)(1-a')}\big)/(a s^2 + 1 - a)$,
#   and $S$ steps produce variance $V\prod A_i^2$ and mean error $(M - \sqrt{\bar\alpha_{\tau_S}}\,m)\prod A_i$.
# - By Cauchy–Schwarz each step scales a deviation by no more than the exact flow would, so from the true
#   $q(x_{\tau_S})$ the produced variance is $s^2 \prod\cos^2\Delta\varphi_i \le s^2$, with a deficit of about $\sum\Delta\varphi_i^2$
#   that vanishes as the steps refine: DDIM under-disperses, it does not over-disperse.
# - Starting from $\mathcal N(0, I)$ instead of $q(x_{\tau_S})$ multiplies the variance by $1/v(\bar\alpha_{\tau_S})$: negligible
#   when $\tau_S = T$ (trailing), decisive when the first step starts at a small $t$ (uniform, $S = 1$).
#
# ## Exercises
#
# **A.1 (code).** Write `my_produced_variance(schedule, std, steps, spacing)` that returns the variance deterministic DDIM
# produces from $x_T \sim \mathcal N(0, 1)$ for data $\mathcal N(m, \text{std}^2)$, from the closed form (use
# `samplers.timesteps` and `schedule.alpha_bars`, not the sampler). Fill in the exercise cell and run it:
# `appendix.check_produced_variance` compares your function with `appendix.produced_variance`, which measures the
# variance with `ddim_sample` and the oracle. The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_produced_variance(schedule, std, steps, spacing):
    # the steps tau_S -> ... -> tau_1 -> 0 come from samplers.timesteps(schedule.T, steps, spacing);
    # the start's variance (1) times the product of A_i^2 over the steps
    return ...


result = appendix.check_produced_variance(my_produced_variance)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_produced_variance(schedule, std, steps, spacing):
    taus = samplers.timesteps(schedule.T, steps, spacing)
    abl = schedule.alpha_bars.tolist()
    produced = 1.0  # x_T ~ N(0, 1)
    for t, prev in zip(taus, [0, *taus[:-1]]):  # the steps tau_S -> ... -> tau_1 -> 0, in any order: a product
        a, a_prev = abl[t], abl[prev]
        slope = (math.sqrt(a * a_prev) * std**2 + math.sqrt((1 - a) * (1 - a_prev))) / (a * std**2 + 1 - a)
        produced *= slope**2
    return produced


result = appendix.check_produced_variance(my_produced_variance)

# %% [markdown]
# **A.2 (pen and paper).** Show that $\cos x \cos y \ge \cos(x + y)$ for $x, y \ge 0$ with $x + y \le \pi/2$ (the range
# where the angles of a sub-sequence live, since they sum to less than $\pi/2$), and conclude that inserting
# an extra timestep into a sub-sequence never lowers the produced variance. Trailing sub-sequences with $S = 10, 20, 40$
# are nested, so their variances must increase; the cell checks that. Then explain why the theorem says nothing about
# uniform sub-sequences with different $S$ (hint: are they nested, and where do they start?). Worked solution: appendix C.

# %%
nested = [samplers.timesteps(T, S, "trailing") for S in (10, 20, 40)]
assert set(nested[0]) <= set(nested[1]) <= set(nested[2])
variances = [closed_form(schedule, s, S, "trailing")[1] for S in (10, 20, 40)]
assert variances[0] < variances[1] < variances[2]
print("trailing S = 10, 20, 40:", [f"{x:.5f}" for x in variances])
