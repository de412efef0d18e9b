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
# # Appendix C — Worked solutions of the pen-and-paper exercises
#
# The code exercises of every chapter come with a grader and a worked answer in the solution cell that follows the
# exercise. The pen-and-paper exercises are answered here, chapter by chapter, in the book's notation (DDPM's
# $\beta_t$, $\alpha_t$, $\bar\alpha_t$; 1-based $t$). Where a computer algebra check is honest, a sympy cell follows
# the solution: it derives one side from the definitions (a density, a random variable, a sum) and compares it with
# the closed form typed from the solution, so it fails if the solution is wrong. Numbers are read off the package's
# schedules, never copied from the chapters.
#
# Every solution cell here is tagged `solution`, so the student edition of the book (`scripts/student_version.py`)
# keeps only this introduction.
#
# In this appendix you will be able to
#
# - compare your derivation with a complete one, step by step;
# - see which identities a few lines of sympy can confirm, and which claims need a numerical check instead;
# - find the closed forms that the chapters' checking cells only confirm numerically.

# %%
import math

import sympy as sp
import torch
from sympy.stats import E, Normal, variance

from ddim_book import samplers
from ddim_book.exercises import appendix
from ddim_book.models import UNet, UNetConfig
from ddim_book.schedules import NoiseSchedule

linear = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule
T = linear.T

# %% [markdown] tags=["solution"]
# ## Chapter 1
#
# **1.3.** The SNR is $\bar\alpha_t/(1-\bar\alpha_t)$, so it crosses 1 where $\bar\alpha_t = 1/2$.
#
# (a) Cosine: $f(t)/f(0) = 1/2$ with $f(t) = \cos^2\theta(t)$, $\theta(t) = \frac{t/T + s}{1+s}\frac{\pi}{2}$, gives
# $\cos\theta(t) = \cos\theta(0)/\sqrt2$ (both cosines are positive on $[0, \pi/2)$), hence
#
# $$t_\times = T\Big(\frac{2(1+s)}{\pi}\arccos\frac{\cos\frac{s\pi}{2(1+s)}}{\sqrt2} - s\Big) \approx 0.4960\,T .$$
#
# Without the offset ($s = 0$) this is exactly $T/2$; $s = 0.008$ moves it by less than half a percent.
#
# (b) Linear: $\beta_k = \beta_1 + (k-1)\Delta$ with $\Delta = (\beta_T - \beta_1)/(T-1)$, and
# $\log\bar\alpha_t \approx -\sum_{k\le t}\beta_k = -\big(t\beta_1 + \Delta\, t(t-1)/2\big)$. Setting this to $-\log 2$:
#
# $$\frac{\Delta}{2}t^2 + \Big(\beta_1 - \frac{\Delta}{2}\Big)t - \log 2 = 0, \qquad
#   t_\times = \frac{-(\beta_1 - \Delta/2) + \sqrt{(\beta_1 - \Delta/2)^2 + 2\Delta\log 2}}{\Delta} \approx 259.3 .$$
#
# (c) The linear schedule has more noise than signal from $t \approx 260$ on, the cosine schedule only from
# $t \approx 497$: about 237 steps, nearly a quarter of the chain, later. The linear schedule spends the last three
# quarters of its steps below SNR 1; the cosine schedule splits them evenly.
#
# The check: sympy solves $\sum_{k \le t}\beta_k = \log 2$ and $\cos^2\theta(t) = \cos^2\theta(0)/2$ itself, and both
# closed forms must fall between the last $t$ with SNR $\ge 1$ and the first with SNR $< 1$ of the package's schedules.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
t, k = sp.symbols("t k", positive=True)
b1, bT, Tn, s_off = sp.Rational(1, 10**4), sp.Rational(2, 100), sp.Integer(1000), sp.Rational(8, 1000)
step = (bT - b1) / (Tn - 1)
beta_sum = sp.summation(b1 + (k - 1) * step, (k, 1, t))  # sympy sums the t betas
log2 = sp.Symbol("L", positive=True)  # log 2, kept as a symbol while sympy solves the quadratic
t_linear_sympy = sp.solve(sp.Eq(beta_sum, log2), t)  # the one positive root
c = b1 - step / 2
t_linear_hand = ((-c + sp.sqrt(c**2 + 2 * step * log2)) / step).subs(log2, sp.log(2))
assert len(t_linear_sympy) == 1 and abs(float(t_linear_sympy[0].subs(log2, sp.log(2)) - t_linear_hand)) < 1e-9


def theta(time):
    return (time / Tn + s_off) / (1 + s_off) * sp.pi / 2


t_cosine_sympy = sp.nsolve(sp.cos(theta(t)) ** 2 - sp.cos(theta(0)) ** 2 / 2, t, 500)
t_cosine_hand = Tn * (2 * (1 + s_off) / sp.pi * sp.acos(sp.cos(s_off * sp.pi / (2 * (1 + s_off))) / sp.sqrt(2)) - s_off)
assert abs(float(t_cosine_sympy - t_cosine_hand)) < 1e-9

for name, sched, t_hand in (("linear", linear, t_linear_hand), ("cosine", NoiseSchedule.cosine(T), t_cosine_hand)):
    first_below = int(torch.nonzero(sched.snr()[1:] < 1)[0]) + 1
    assert first_below - 1 < float(t_hand) < first_below
    print(f"{name}: closed form t = {float(t_hand):.2f}; the package's SNR falls below 1 at t = {first_below}")

# %% [markdown] tags=["solution"]
# **1.4.** (a) $x_0$ and $\epsilon$ are independent, so per pixel
# $\mathrm{Var}[x_t] = \bar\alpha_t\,\mathrm{Var}[x_0] + (1-\bar\alpha_t)\,\mathrm{Var}[\epsilon] = \bar\alpha_t v + 1 - \bar\alpha_t$.
# This is a convex combination of $v$ and 1 with weight $\bar\alpha_t \in [0, 1]$, so it lies between them: the
# shrinking by $\sqrt{\bar\alpha_t}$ exactly makes room for the added noise ("variance preserving" when $v = 1$).
# Without the shrinking, $x_t = x_0 + \sigma_t\epsilon$ has variance $v + \sigma_t^2$, which grows without bound with
# $\sigma_t$: to drown the data the largest $\sigma$ must be large compared with the data's spread, and the prior the
# sampler starts from, $\mathcal N(0, \sigma_\text{max}^2 I)$, grows with it (a "variance exploding" process).
#
# (b) A constant $\beta$ gives $\bar\alpha_T = (1-\beta)^T$, so $\beta = 1 - \bar\alpha_T^{1/T}$ with the linear
# schedule's $\bar\alpha_T$. To second order, $\log\bar\alpha_T \approx -\sum\beta_k - \tfrac12\sum\beta_k^2$, and for the
# linear schedule $\sum\beta_k = T(\beta_1+\beta_T)/2 = 10.05$, $\sum\beta_k^2 \approx T(\beta_1^2 + \beta_1\beta_T + \beta_T^2)/3 \approx 0.134$,
# so $\beta \approx 1 - e^{-10.117/1000} \approx 0.01007$. Its SNR crosses 1 where $(1-\beta)^t = 1/2$,
# $t = \log 2 / (-\log(1-\beta)) \approx 68.5$: below 1 from $t = 69$ on, nearly four times earlier than the linear schedule,
# whose small early betas keep the signal much longer.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
a_sym, v_sym = sp.symbols("alphabar v", positive=True)
x0_rv, eps_rv = Normal("x_0", 0, sp.sqrt(v_sym)), Normal("epsilon", 0, 1)
var_xt = sp.simplify(variance(sp.sqrt(a_sym) * x0_rv + sp.sqrt(1 - a_sym) * eps_rv))
assert sp.simplify(var_xt - (a_sym * v_sym + 1 - a_sym)) == 0
assert sp.expand(var_xt - v_sym - (1 - a_sym) * (1 - v_sym)) == 0  # v + (1 - alphabar)(1 - v): between v and 1
print("Var[x_t] =", sp.factor(var_xt))

sum_beta = T * (1e-4 + 0.02) / 2
sum_beta_sq = T * (1e-4**2 + 1e-4 * 0.02 + 0.02**2) / 3
beta_hand = 1 - math.exp(-(sum_beta + sum_beta_sq / 2) / T)
beta_exact = 1 - linear.alpha_bars[T].item() ** (1 / T)  # the package's alphabar_T
assert abs(beta_hand / beta_exact - 1) < 1e-4
t_cross = math.log(2) / -math.log(1 - beta_hand)
print(f"constant beta: {beta_hand:.6f} by hand, {beta_exact:.6f} from the package; SNR = 1 at t = {t_cross:.1f}")

# %% [markdown] tags=["solution"]
# **1.5 (b).** Section 4's sum for the quadratic schedule, with $r_1 = \sqrt{\beta_1} = 0.01$ and $r_T = \sqrt{\beta_T}$:
# $\sum_t\beta_t = T(\beta_1 + \sqrt{\beta_1\beta_T} + \beta_T)/3 + T(r_T - r_1)^2/(6(T-1)) \approx 7.174$, so the
# prediction is $\bar\alpha_T \approx e^{-7.174} \approx 7.66\cdot 10^{-4}$. It is **too high**: $\log(1-\beta) = -\beta - \beta^2/2 - \dots < -\beta$
# for every $\beta > 0$, so each factor $1 - \beta_t$ is smaller than $e^{-\beta_t}$ and the true product is smaller than
# $e^{-\sum\beta_t}$. The next term multiplies the prediction by $e^{-\sum\beta_t^2/2}$. With $\sqrt{\beta}$ evenly spaced,
# $\sum_t\beta_t^2 \approx T\int_0^1\big((1-u)r_1 + u r_T\big)^4 du = T\,\frac{r_T^5 - r_1^5}{5(r_T - r_1)} \approx 0.0861$, a factor
# $e^{-0.043} \approx 0.958$ that brings the prediction to $7.34\cdot 10^{-4}$, within 0.05% of the exact value (the terms
# $\beta^3/3$ and beyond are smaller still, and still push down).

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
u, r1, rT = sp.symbols("u r_1 r_T", positive=True)
quartic = sp.integrate(((1 - u) * r1 + u * rT) ** 4, (u, 0, 1))  # sympy integrates the quartic
assert sp.simplify(quartic - (rT**5 - r1**5) / (5 * (rT - r1))) == 0
roots = {r1: sp.Rational(1, 100), rT: sp.sqrt(sp.Rational(2, 100))}
first = float((T * (r1**2 + r1 * rT + rT**2) / 3 + T * (rT - r1) ** 2 / (6 * (T - 1))).subs(roots))
second = float(T * quartic.subs(roots))
exact = NoiseSchedule.quadratic(T, 1e-4, 0.02).alpha_bars[T].item()
assert math.exp(-first) > math.exp(-first - second / 2) > exact  # too high, and the next term helps
assert abs(math.exp(-first - second / 2) / exact - 1) < 5e-4
print(f"sum beta = {first:.4f}, sum beta^2 = {second:.4f}")
print(
    f"exp(-sum beta) = {math.exp(-first):.4e}; with the beta^2 term {math.exp(-first - second / 2):.4e}; exact {exact:.4e}"
)

# %% [markdown] tags=["solution"]
# ## Chapter 2
#
# **2.3.** (a) By induction on $t$, as in chapter 1; the case $t = t'$ holds trivially (coefficient 1, variance 0).
# If $x_{t-1} = \sqrt{\bar\alpha_{t-1}/\bar\alpha_{t'}}\,x_{t'} + \sqrt{1 - \bar\alpha_{t-1}/\bar\alpha_{t'}}\,e$ with $e$ standard normal, then
# $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t$ has coefficient $\sqrt{\alpha_t\bar\alpha_{t-1}/\bar\alpha_{t'}} = \sqrt{\bar\alpha_t/\bar\alpha_{t'}}$ and,
# the two noises being independent, variance $\alpha_t(1 - \bar\alpha_{t-1}/\bar\alpha_{t'}) + 1 - \alpha_t = 1 - \bar\alpha_t/\bar\alpha_{t'}$.
#
# (b) Write $a = \bar\alpha_t$, $a' = \bar\alpha_{t'}$ and $\gamma = a/a'$. The forward process is Markov, so
# $q(x_{t'} \mid x_t, x_0) \propto q(x_t \mid x_{t'})\,q(x_{t'} \mid x_0)$, and the exponent, as a function of $y = x_{t'}$, is
# $-\frac{(x_t - \sqrt\gamma\,y)^2}{2(1-\gamma)} - \frac{(y - \sqrt{a'}x_0)^2}{2(1-a')}$. Its precision (minus twice the coefficient
# of $y^2$) is $\frac{\gamma}{1-\gamma} + \frac{1}{1-a'} = \frac{1 - \gamma a'}{(1-\gamma)(1-a')} = \frac{1-a}{(1-\gamma)(1-a')}$, and the mean is the
# coefficient of $y$ divided by the precision:
#
# $$q(x_{t'} \mid x_t, x_0) = \mathcal N\Big(\frac{\sqrt{a'}(1-\gamma)}{1-a}\,x_0 + \frac{\sqrt\gamma\,(1-a')}{1-a}\,x_t,\;
#   \frac{(1-a')(1-\gamma)}{1-a}\Big), \qquad \gamma = \frac{\bar\alpha_t}{\bar\alpha_{t'}} .$$
#
# This is DDPM's eq. (7) for a schedule whose two values of $\bar\alpha$ are $a'$ and $a$, one step with $\alpha = \gamma$: the trick
# behind `ch02.skip_posterior`.
#
# (c) $t' = t - 1$: $\gamma = \alpha_t$ and $1 - \gamma = \beta_t$, which gives $\tilde\mu_t$ and $\tilde\beta_t$ of eq. (7).
# $t' = 0$: $a' = 1$ and $\gamma = a$, so the weight of $x_t$ and the variance vanish and the weight of $x_0$ is $(1-a)/(1-a) = 1$.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
a, a_p = sp.symbols("alphabar_t alphabar_t'", positive=True)
x0, xt, y = sp.symbols("x_0 x_t y", real=True)
g = a / a_p
exponent = -((xt - sp.sqrt(g) * y) ** 2) / (2 * (1 - g)) - (y - sp.sqrt(a_p) * x0) ** 2 / (2 * (1 - a_p))
quad = sp.Poly(sp.expand(exponent), y)
precision = -2 * quad.coeff_monomial(y**2)
mean = quad.coeff_monomial(y) / precision  # completing the square
var_hand = (1 - a_p) * (1 - g) / (1 - a)
mean_hand = sp.sqrt(a_p) * (1 - g) / (1 - a) * x0 + sp.sqrt(g) * (1 - a_p) / (1 - a) * xt
assert sp.simplify(1 / precision - var_hand) == 0
assert sp.simplify(mean - mean_hand) == 0
alpha_t, abar_prev = sp.symbols("alpha_t alphabar_{t-1}", positive=True)
one_step = {a: alpha_t * abar_prev, a_p: abar_prev}  # t' = t - 1
beta_tilde = (1 - abar_prev) / (1 - alpha_t * abar_prev) * (1 - alpha_t)
mu_tilde = (sp.sqrt(abar_prev) * (1 - alpha_t) * x0 + sp.sqrt(alpha_t) * (1 - abar_prev) * xt) / (
    1 - alpha_t * abar_prev
)
assert sp.simplify(var_hand.subs(one_step) - beta_tilde) == 0
assert sp.simplify(mean_hand.subs(one_step) - mu_tilde) == 0
assert sp.simplify(var_hand.subs(a_p, 1)) == 0 and sp.simplify(mean_hand.subs(a_p, 1) - x0) == 0
print("Var[x_t' | x_t, x_0] =", sp.factor(1 / precision))

# %% [markdown] tags=["solution"]
# **2.4.** (a) Everything is Gaussian with mean zero. Let $V_k = \bar\alpha_k v + 1 - \bar\alpha_k$ be the variance of $x_k$
# (exercise 1.4). With $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon$: $\mathrm{Var}[x_t] = \alpha_t V_{t-1} + \beta_t = V_t$ and
# $\mathrm{Cov}[x_{t-1}, x_t] = \sqrt{\alpha_t}\,V_{t-1}$. For jointly Gaussian variables the conditional variance is
# $\mathrm{Var}[x_{t-1}] - \mathrm{Cov}^2/\mathrm{Var}[x_t]$:
#
# $$\mathrm{Var}[x_{t-1} \mid x_t] = V_{t-1} - \frac{\alpha_t V_{t-1}^2}{V_t} = \frac{\beta_t V_{t-1}}{V_t}
#   = \beta_t\,\frac{\bar\alpha_{t-1}v + 1 - \bar\alpha_{t-1}}{\bar\alpha_t v + 1 - \bar\alpha_t}.$$
#
# (b) A ratio $(Av + B)/(Cv + D)$ increases with $v$ when $AD - BC > 0$; here
# $AD - BC = \bar\alpha_{t-1}(1-\bar\alpha_t) - (1-\bar\alpha_{t-1})\bar\alpha_t = \bar\alpha_{t-1} - \bar\alpha_t > 0$. At $v = 0$ the ratio is
# $(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)$, which gives $\tilde\beta_t$; at $v = 1$ both $V$ are 1 and the answer is $\beta_t$.
#
# (c) For $v > 1$ it exceeds $\beta_t$, and as $v \to \infty$ it rises to $\beta_t\bar\alpha_{t-1}/\bar\alpha_t = \beta_t/\alpha_t$: bounded, and
# only slightly above $\beta_t$. Data more spread than the noise make $x_t$ a worse guide to $x_{t-1}$, but never by much.
#
# (d) Write the answer as $\beta_t / (\alpha_t + \beta_t/V_{t-1})$. It differs from $\beta_t$ by a relative amount of order
# $\beta_t/V_{t-1}$, so it is close to $\beta_t$ as soon as $V_{t-1} \gg \beta_t$. Without data variance, $V_{t-1} = 1 - \bar\alpha_{t-1} \approx \sum_{k<t}\beta_k$
# is only a few $\beta_t$ at small $t$, and the answer is the smaller $\tilde\beta_t$. Once $v \gg 1 - \bar\alpha_{t-1}$, the data
# term $\bar\alpha_{t-1}v \approx v$ dominates $V_{t-1}$ and makes it large compared with $\beta_t$: the uncertainty about
# $x_0$ already exceeds the noise added so far, and knowing $x_t$ pins $x_{t-1}$ down no better than the last step's
# own noise $\beta_t$ allows. The values below, at $t = 10$, are the ones chapter 2's Monte Carlo cell estimates.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
alpha, ab_prev, v = sp.symbols("alpha_t alphabar_{t-1} v", positive=True)
noises = sp.symbols("n_0 n_1 n_2", real=True)  # independent standard normals: x_0 = sqrt(v) n_0, then two noises


def cov(first, second):
    """Cov of two linear combinations of the independent standard normals `noises` (bilinearity)."""
    first, second = sp.expand(first), sp.expand(second)
    return sp.simplify(sum(first.coeff(n) * second.coeff(n) for n in noises))


x_prev = sp.sqrt(ab_prev) * sp.sqrt(v) * noises[0] + sp.sqrt(1 - ab_prev) * noises[1]
x_next = sp.sqrt(alpha) * x_prev + sp.sqrt(1 - alpha) * noises[2]
cond_var = sp.simplify(cov(x_prev, x_prev) - cov(x_prev, x_next) ** 2 / cov(x_next, x_next))  # Gaussian conditioning
ab_t = alpha * ab_prev
formula = (1 - alpha) * (ab_prev * v + 1 - ab_prev) / (ab_t * v + 1 - ab_t)
assert sp.simplify(cond_var - formula) == 0
assert sp.simplify(sp.diff(formula, v) * (ab_t * v + 1 - ab_t) ** 2 / (1 - alpha) - (ab_prev - ab_t)) == 0
assert sp.simplify(sp.limit(formula, v, sp.oo) - (1 - alpha) / alpha) == 0
t10 = {alpha: linear.alphas[10].item(), ab_prev: linear.alpha_bars[9].item()}
for v_value in (0.0, 1e-3, 1e-2, 1.0):
    print(f"t = 10, v = {v_value:5.3f}: Var[x_(t-1) | x_t] = {float(formula.subs(t10).subs(v, v_value)):.4e}")

# %% [markdown] tags=["solution"]
# ## Chapter 3
#
# **3.4.** $L_T = D_\text{KL}\big(q(x_T \mid x_0)\,\|\,\mathcal N(0, I)\big)$ with $q(x_T \mid x_0) = \mathcal N(\sqrt{\bar\alpha_T}x_0, (1-\bar\alpha_T)I)$.
# Both are products over the $d$ coordinates, so the KL is a sum of one-dimensional ones, and for one coordinate
# $D_\text{KL}(\mathcal N(m, \sigma^2)\,\|\,\mathcal N(0, 1)) = \mathbb E\big[\log\mathcal N(x; m, \sigma^2) - \log\mathcal N(x; 0, 1)\big] = \tfrac12(\sigma^2 + m^2 - 1 - \log\sigma^2)$.
# With $\sigma^2 = 1 - \bar\alpha_T$ and $\sum_i m_i^2 = \bar\alpha_T\|x_0\|^2$:
#
# $$L_T = \tfrac12\big(d(1-\bar\alpha_T) + \bar\alpha_T\|x_0\|^2 - d - d\log(1-\bar\alpha_T)\big)
#       = \tfrac12\bar\alpha_T\|x_0\|^2 + \tfrac d2\big(-\bar\alpha_T - \log(1-\bar\alpha_T)\big).$$
#
# The second part is $\tfrac d2(\bar\alpha_T^2/2 + \dots) \approx 6\cdot 10^{-7}$ nats; the first is at most
# $\tfrac12 \cdot 4\cdot 10^{-5} \cdot 784 \approx 0.016$ nats for a digit with every pixel at $\pm 1$, about $2\cdot 10^{-5}$ nats per pixel. And
# it is constant: it has no parameters (the forward process and the prior are fixed), so leaving it out changes neither
# the gradient nor the minimiser. It is safe to drop, as DDPM does; what it measures, how far $x_T$ is from pure noise,
# is a property of the schedule, and $\bar\alpha_T \approx 4\cdot 10^{-5}$ keeps it negligible.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
m, sig = sp.symbols("m sigma", positive=True)
xr = Normal("x", m, sig)
log_q = -((xr - m) ** 2) / (2 * sig**2) - sp.log(sig) - sp.log(2 * sp.pi) / 2
log_prior = -(xr**2) / 2 - sp.log(2 * sp.pi) / 2
kl_1d = sp.simplify(E(log_q - log_prior))  # the expectation taken by sympy
assert sp.simplify(kl_1d - (sig**2 + m**2 - 1 - sp.log(sig**2)) / 2) == 0
abar_T, d = linear.alpha_bars[T].item(), 784
worst = 0.5 * (d * (1 - abar_T) + abar_T * d - d - d * math.log(1 - abar_T))  # ||x_0||^2 = 784
print("KL(N(m, sigma^2) || N(0, 1)) =", kl_1d)
print(f"alphabar_T = {abar_T:.3e}: L_T <= {worst:.4f} nats per digit ({worst / d:.1e} per pixel)")

# %% [markdown] tags=["solution"]
# ## Chapter 4
#
# **4.3.** The up path consumes the skips in reverse order. The block before `up.1` is `up.2`, working at 7×7 with
# 32 channels; `up.1` upsamples that to 14×14 and its first residual block concatenates the last activation that the
# down path saved at 14×14, the 32 channels of `down.1`'s residual block. So $c_\text{in} = 32 + 32 = 64$ and
# $c_\text{out} = 32$. A residual block adds its input to its output, and a 64-channel input cannot be added to a
# 32-channel output: the skip path needs the 1×1 convolution that maps 64 channels to 32. With the time-embedding width
# $E = 4 \cdot 16 = 64$, the formula of section 1 gives
#
# $$2\cdot 64 + (9\cdot 64\cdot 32 + 32) + (64\cdot 32 + 32) + 2\cdot 32 + (9\cdot 32^2 + 32) + (64\cdot 32 + 32)
#   = 128 + 18464 + 2080 + 64 + 9248 + 2080 = 32064 .$$
#
# The check builds a fresh `mnist-small` U-Net (parameter counts do not depend on the weights) and counts the block.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
c_in, c_out, emb = sp.symbols("c_in c_out E", positive=True, integer=True)
by_hand = (2 * c_in + (9 * c_in * c_out + c_out) + (emb * c_out + c_out) + 2 * c_out + (9 * c_out**2 + c_out)) + (
    c_in * c_out + c_out
)
block = UNet(UNetConfig.named("mnist-small")).up[1].res[0]
assert block.conv1.in_channels == 64 and block.conv1.out_channels == 32
n_params = sum(p.numel() for p in block.parameters())
assert by_hand.subs({c_in: 64, c_out: 32, emb: 64}) == n_params == 32064
print(f"up.1 res.0: 64 -> 32 channels, {n_params:,} parameters")

# %% [markdown] tags=["solution"]
# ## Chapter 5
#
# **5.3.** Write $a = \bar\alpha_t$, $a' = \bar\alpha_\text{prev}$ and $\sigma_t(\eta)^2 = \eta^2\,\frac{1-a'}{1-a}\big(1 - \frac{a}{a'}\big)$ (eq. (16)).
# The direction coefficient is real while $1 - a' - \sigma_t(\eta)^2 \ge 0$; for $a' < 1$ divide by $1 - a'$:
#
# $$\eta^2 \le \frac{1-a}{1 - a/a'} = \frac{(1-a)\,a'}{a' - a}, \qquad \eta_{\max} = \sqrt{\frac{(1-\bar\alpha_t)\,\bar\alpha_\text{prev}}{\bar\alpha_\text{prev} - \bar\alpha_t}} .$$
#
# It is above 1, because $\eta_{\max}^2 - 1 = \frac{a(1 - a')}{a' - a} > 0$ when $a' < 1$. For a single step,
# $a' = \bar\alpha_{t-1}$ and $a = \bar\alpha_{t-1}\alpha_t$, so $a' - a = \bar\alpha_{t-1}\beta_t$ and $\eta_{\max}^2 = (1-\bar\alpha_t)/\beta_t$, large
# when $\beta_t$ is small compared with the noise already accumulated. For DDPM's schedule it is 1.35 at $t = 2$, about 10
# in the middle of the chain and $\sqrt{1/0.02} \approx 7$ at $t = T$. At the final step, $a' = 1$ (the step from $t = 1$), the factor
# $1 - a'$ makes $\sigma_t(\eta) = 0$ for every $\eta$: the step is deterministic, lands on $\hat x_0$, and every $\eta$ is
# allowed (the formula's value 1 there is an artefact of dividing by $1 - a' = 0$).

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
a, a_p, eta = sp.symbols("alphabar_t alphabar_prev eta", positive=True)
sigma_sq = eta**2 * (1 - a_p) / (1 - a) * (1 - a / a_p)
eta_max = sp.sqrt((1 - a) * a_p / (a_p - a))
roots_eta = sp.solve(sp.Eq(1 - a_p - sigma_sq, 0), eta)  # sympy finds where the coefficient stops being real
assert roots_eta and all(sp.simplify(root**2 - eta_max**2) == 0 for root in roots_eta)  # +- the same eta_max
assert sp.simplify(eta_max**2 - 1 - a * (1 - a_p) / (a_p - a)) == 0
beta_t = sp.symbols("beta_t", positive=True)
assert sp.simplify(eta_max.subs(a, a_p * (1 - beta_t)) ** 2 - (1 - a_p * (1 - beta_t)) / beta_t) == 0
assert sigma_sq.subs(a_p, 1) == 0
print("eta_max^2 - 1 =", sp.factor(sp.simplify(eta_max**2 - 1)))
single = {t_: math.sqrt((1 - linear.alpha_bars[t_].item()) / linear.betas[t_].item()) for t_ in (2, 10, 100, 350, 1000)}
print("single steps of DDPM's schedule: " + ", ".join(f"eta_max({t_}) = {e_:.2f}" for t_, e_ in single.items()))

# %% [markdown] tags=["solution"]
# **5.4.** The law of total covariance, in the three steps of section 5.4 applied to $XZ$:
#
# 1. $\operatorname{Cov}(X, Z) = \mathbb E[XZ] - \mathbb E[X]\,\mathbb E[Z]$, and by the tower rule $\mathbb E[XZ] = \mathbb E\big[\mathbb E[XZ \mid Y]\big]$,
#    $\mathbb E[X] = \mathbb E\big[\mathbb E[X \mid Y]\big]$, $\mathbb E[Z] = \mathbb E\big[\mathbb E[Z \mid Y]\big]$.
# 2. For each value of $Y$, $\mathbb E[XZ \mid Y] = \operatorname{Cov}(X, Z \mid Y) + \mathbb E[X \mid Y]\,\mathbb E[Z \mid Y]$ (the definition of
#    covariance under the conditional law).
# 3. Substituting, $\operatorname{Cov}(X, Z) = \mathbb E\big[\operatorname{Cov}(X, Z \mid Y)\big] + \mathbb E\big[\mathbb E[X \mid Y]\,\mathbb E[Z \mid Y]\big] - \mathbb E\big[\mathbb E[X \mid Y]\big]\,\mathbb E\big[\mathbb E[Z \mid Y]\big]$,
#    and the last two terms are $\operatorname{Cov}\big(\mathbb E[X \mid Y], \mathbb E[Z \mid Y]\big)$.
#
# Now condition everything on $x_0$ and take $X = x_{t-1}$, $Y = Z = x_t$ (one coordinate). Given $x_t$, $Z = x_t$ is
# fixed, so $\operatorname{Cov}(x_{t-1}, x_t \mid x_t, x_0) = 0$, and $\mathbb E[x_t \mid x_t] = x_t$. With
# $\mathbb E[x_{t-1} \mid x_t, x_0] = \kappa_t x_t + \zeta_t x_0$ (section 5.5):
#
# $$\operatorname{Cov}(x_{t-1}, x_t \mid x_0) = \operatorname{Cov}(\kappa_t x_t + \zeta_t x_0,\, x_t \mid x_0) = \kappa_t(1-\bar\alpha_t)
#   = \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\,\sqrt{1-\bar\alpha_t}.$$
#
# The noises $r_k = (x_k - \sqrt{\bar\alpha_k}x_0)/\sqrt{1-\bar\alpha_k}$ have unit variance given $x_0$ and are shifted and scaled
# copies of $x_k$, so their correlation is the covariance above divided by $\sqrt{1-\bar\alpha_{t-1}}\sqrt{1-\bar\alpha_t}$:
# $\sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}/\sqrt{1-\bar\alpha_{t-1}} = \sqrt{1 - \sigma_t^2/(1-\bar\alpha_{t-1})}$. At $\eta = 0$, $\sigma_t = 0$ and the
# correlation is 1: $r_{t-1} = r_t$, one noise vector carried from step to step.
#
# The check: the law on a discrete example (both sides computed from one joint distribution of $Y \in \{y_1, y_2\}$ and
# $(X, Z)$ with symbolic probabilities and values), then the covariance of DDIM's kernel from its random variables.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
p_y1 = sp.Symbol("q", positive=True)
p_y = [p_y1, 1 - p_y1]
xs, zs = sp.symbols("a_1 a_2", real=True), sp.symbols("b_1 b_2", real=True)
cond = {}
for j in range(2):  # p(X = a_i, Z = b_k | Y = y_j): three free symbols, the fourth completes the sum
    free = sp.symbols(f"c{j}_11 c{j}_12 c{j}_21", positive=True)
    cond[j] = {(0, 0): free[0], (0, 1): free[1], (1, 0): free[2], (1, 1): 1 - sum(free)}


def mean_given(values, j):
    """E[values(X, Z) | Y = y_j] for values given as a table {(i, k): value}."""
    return sum(p * values[key] for key, p in cond[j].items())


x_of = {(i, kk): xs[i] for i in range(2) for kk in range(2)}
z_of = {(i, kk): zs[kk] for i in range(2) for kk in range(2)}
xz_of = {key: x_of[key] * z_of[key] for key in x_of}
e_x, e_z = [mean_given(x_of, j) for j in range(2)], [mean_given(z_of, j) for j in range(2)]
cov_given = [mean_given(xz_of, j) - e_x[j] * e_z[j] for j in range(2)]
joint_cov = sum(p_y[j] * mean_given(xz_of, j) for j in range(2)) - sum(p * ex for p, ex in zip(p_y, e_x)) * sum(
    p * ez for p, ez in zip(p_y, e_z)
)
mean_ex, mean_ez = sum(p * e for p, e in zip(p_y, e_x)), sum(p * e for p, e in zip(p_y, e_z))
law = sum(p * cv for p, cv in zip(p_y, cov_given)) + sum(
    p * (ex - mean_ex) * (ez - mean_ez) for p, ex, ez in zip(p_y, e_x, e_z)
)
assert sp.expand(joint_cov - law) == 0

a, a_p, s_k, x0 = sp.symbols("alphabar_t alphabar_{t-1} sigma_t x_0", positive=True)
noises = sp.symbols("e_t z", real=True)  # x_0 is given; the kernel's two independent standard normals
x_t = sp.sqrt(a) * x0 + sp.sqrt(1 - a) * noises[0]
kappa = sp.sqrt(1 - a_p - s_k**2) / sp.sqrt(1 - a)
x_t_prev = kappa * x_t + (sp.sqrt(a_p) - sp.sqrt(a) * kappa) * x0 + s_k * noises[1]
cov_prev_t = cov(x_t_prev, x_t)  # by bilinearity, as in 2.4
assert sp.simplify(cov_prev_t - sp.sqrt(1 - a_p - s_k**2) * sp.sqrt(1 - a)) == 0
assert sp.simplify(cov(x_t_prev, x_t_prev) - (1 - a_p)) == 0 and sp.simplify(cov(x_t, x_t) - (1 - a)) == 0
corr = cov_prev_t / (sp.sqrt(1 - a_p) * sp.sqrt(1 - a))
assert sp.simplify(corr**2 - (1 - s_k**2 / (1 - a_p))) == 0 and sp.simplify(corr.subs(s_k, 0)) == 1
print("Cov(x_(t-1), x_t | x_0) =", cov_prev_t)

# %% [markdown] tags=["solution"]
# ## Chapter 6
#
# **6.3.** Let $a_t < a_s < a_r$ be the $\bar\alpha$'s and $\hat x_0(x, a, \epsilon) = (x - \sqrt{1-a}\,\epsilon)/\sqrt a$. The $\eta = 0$ step
# from $t$ to $s$ is $x_s = \sqrt{a_s}\,\hat x_0(x_t, a_t, \epsilon) + \sqrt{1-a_s}\,\epsilon$. With the same $\epsilon$ at $s$,
# $\hat x_0(x_s, a_s, \epsilon) = (x_s - \sqrt{1-a_s}\,\epsilon)/\sqrt{a_s} = \hat x_0(x_t, a_t, \epsilon)$: the second step starts from the same $\hat x_0$ and the
# same $\epsilon$, and lands on $\sqrt{a_r}\,\hat x_0 + \sqrt{1-a_r}\,\epsilon$, exactly where the single step $t \to r$ lands. A
# deterministic step only moves along the line $\sqrt{a}\,\hat x_0 + \sqrt{1-a}\,\epsilon$ that its inputs fix, so cutting a step in
# two changes nothing unless the network changes its answer: the whole error of skipping is
# $\epsilon_\theta(x_s, s) \ne \epsilon_\theta(x_t, t)$.
#
# For $\eta > 0$ the step $t \to s$ adds fresh noise: $x_s = \sqrt{a_s}\,\hat x_0 + \sqrt{1-a_s-\sigma^2}\,\epsilon + \sigma z$. The noise
# that $x_s$ actually carries is $(\sqrt{1-a_s-\sigma^2}\,\epsilon + \sigma z)/\sqrt{1-a_s} \ne \epsilon$, so even the true $\epsilon$ at $s$ is a new
# vector, the second step adds a second fresh draw, and the two paths cannot land on the same point. They do not
# even agree in distribution in general: given $x_t$ and $x_0$, two steps give a Gaussian whose variance is
# $\kappa_{s\to r}^2\sigma_{t\to s}^2 + \sigma_{s\to r}^2$, not $\sigma_{t\to r}^2$. Only at $\eta = 1$, where every step is the forward
# process's own posterior (exercise 2.3) and those compose, do the two agree in distribution.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
a_t, a_s, a_r, x_start, e = sp.symbols("alphabar_t alphabar_s alphabar_r x_t epsilon", positive=True)


def ddim_eta0(x, a_from, a_to):
    return sp.sqrt(a_to) * (x - sp.sqrt(1 - a_from) * e) / sp.sqrt(a_from) + sp.sqrt(1 - a_to) * e


assert sp.simplify(ddim_eta0(ddim_eta0(x_start, a_t, a_s), a_s, a_r) - ddim_eta0(x_start, a_t, a_r)) == 0


def kernel(a_from, a_to, eta_value):
    """(kappa, variance) of DDIM's q_sigma(x_to | x_from, x_0), sigma from eq. (16)."""
    var = eta_value**2 * (1 - a_to) / (1 - a_from) * (1 - a_from / a_to)
    return sp.sqrt(1 - a_to - var) / sp.sqrt(1 - a_from), var


abar = linear.alpha_bars
values = [sp.Float(abar[t_].item(), 30) for t_ in (900, 500, 100)]
for eta_value in (sp.Integer(1), sp.Rational(1, 2)):
    (k_ts, v_ts), (k_sr, v_sr), (k_tr, v_tr) = (
        kernel(values[0], values[1], eta_value),
        kernel(values[1], values[2], eta_value),
        kernel(values[0], values[2], eta_value),
    )
    two_steps, one_step = k_sr**2 * v_ts + v_sr, v_tr
    print(
        f"eta = {eta_value}: Var after 900 -> 500 -> 100 = {float(two_steps):.6f}, after 900 -> 100 = {float(one_step):.6f}"
    )
    assert (abs(two_steps - one_step) < 1e-20) == (eta_value == 1)

# %% [markdown] tags=["solution"]
# ## Chapter 7
#
# **7.3.** $|z|^2 = \sum_{i=1}^d z_i^2$ with independent $z_i \sim \mathcal N(0, 1)$: $\mathbb E z_i^2 = 1$ and
# $\mathrm{Var}\,z_i^2 = \mathbb E z_i^4 - 1 = 3 - 1 = 2$, so $\mathbb E|z|^2 = d$ and $\mathrm{Var}\,|z|^2 = 2d$. Hence
# $|z|^2/d = 1 + O(\sqrt{2d}/d) = 1 + O(\sqrt{2/d})$, and taking the square root halves the deviation:
# $|z|/\sqrt d = 1 + O(\tfrac12\sqrt{2/d}) = 1 + O(1/\sqrt{2d})$; for MNIST's $d = 784$, about $\pm 2.5\%$.
#
# For independent $z_0, z_1$, $(z_0 + z_1)/2$ is Gaussian with mean 0 and covariance $\tfrac14 I + \tfrac14 I = \tfrac12 I$:
# $\mathcal N(0, I/2)$, a latent on the shell of radius $\sqrt{d/2}$, far inside the one that $x_T$ lives on. In general
# $w(z_0 + z_1) \sim \mathcal N(0, 2w^2 I)$, which is standard normal for $w = 1/\sqrt2$. Slerp at $\xi = 1/2$ with $\theta = 90°$
# (two independent latents are nearly orthogonal in high dimension) gives each end the weight
# $\sin(45°)/\sin(90°) = 1/\sqrt2$: exactly the combination $(z_0 + z_1)/\sqrt2$ that is again a standard normal latent.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
z, z_0, z_1 = Normal("z", 0, 1), Normal("z_0", 0, 1), Normal("z_1", 0, 1)
w = sp.symbols("w", positive=True)
assert E(z**2) == 1 and sp.simplify(variance(z**2)) == 2
assert variance((z_0 + z_1) / 2) == sp.Rational(1, 2)
w_solutions = sp.solve(sp.Eq(variance(w * (z_0 + z_1)), 1), w)
slerp_weight = sp.sin(sp.pi / 4) / sp.sin(sp.pi / 2)
assert w_solutions == [1 / sp.sqrt(2)] and sp.simplify(slerp_weight - w_solutions[0]) == 0
print(
    f"Var z^2 = {variance(z**2)}; Var (z_0 + z_1) / 2 = {variance((z_0 + z_1) / 2)}; w = {w_solutions[0]} = slerp weight"
)

# %% [markdown] tags=["solution"]
# ## Chapter 8
#
# **8.3.** At a typical point the drift of one step has length $\tfrac{\delta_i}{2}\|\nabla\log q_i\| \approx
# \tfrac{\delta_i}{2}\sqrt d/\sigma_i$ and the noise $\|\sqrt{\delta_i}\,z\| \approx \sqrt{\delta_i d}$, so their ratio is
# $\sqrt{\delta_i}/(2\sigma_i)$. With $\delta_i = \delta_0\,\sigma_i^2/\sigma_L^2$ this is $\sqrt{\delta_0}/(2\sigma_L)$ at every level.
# A step held fixed at $\delta_0$ (a size that suits the cleanest level) gives the ratio $\sqrt{\delta_0}/(2\sigma_i)$,
# tiny at the noisiest level: there the density is about $\sigma_1$ wide while each step moves about $\sqrt{\delta_0}$,
# so the chain needs of the order of $\sigma_1^2/\delta_0$ steps to cross it, a random walk that has not mixed
# when the ladder moves on.
#
# **8.4.** With zero-mean data $x_0 \sim \mathcal N(0, s^2)$, $x_t = a x_0 + \sqrt u\,\epsilon$ ($a = \sqrt{\bar\alpha_t}$,
# $u = 1 - \bar\alpha_t$) and the target $-(x_t - a x_0)/u$, the loss $J(c_1) = \mathbb E\bigl[(c_1 x_t + (x_t - a x_0)/u)^2\bigr]$
# is a quadratic in $c_1$, minimised at $c_1 = -\mathbb E[x_t (x_t - a x_0)]/(u\,\mathbb E[x_t^2])$. With
# $\mathbb E[x_t^2] = a^2 s^2 + u$ and $\mathbb E[x_t x_0] = a s^2$ the numerator is $u$, so $c_1 = -1/(a^2 s^2 + u)$:
# the slope of the score of $q_t = \mathcal N(0, a^2 s^2 + u)$, not of the data's $-1/s^2$.
#
# **8.5 (the part by hand).** $J(a, b) = a + \tfrac12\bigl(a^2(s^2 + m^2) + 2abm + b^2\bigr)$. Setting
# $\partial J/\partial b = am + b = 0$ gives $b = -am$; then $\partial J/\partial a = 1 + a(s^2 + m^2) + bm =
# 1 + a s^2 = 0$, so $a = -1/s^2$ and $b = m/s^2$: the score $-(x - m)/s^2$ of $\mathcal N(m, s^2)$.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
delta_0, sigma_i, sigma_L, d_ = sp.symbols("delta_0 sigma_i sigma_L d", positive=True)
delta_i = delta_0 * sigma_i**2 / sigma_L**2
ratio = (delta_i / 2 * sp.sqrt(d_) / sigma_i) / sp.sqrt(delta_i * d_)  # drift length / noise length, from 8.3's sizes
assert sp.simplify(ratio - sp.sqrt(delta_0) / (2 * sigma_L)) == 0 and sp.diff(sp.simplify(ratio), sigma_i) == 0

a_, u_, s_ = sp.symbols("a u s", positive=True)
c_1 = sp.symbols("c_1", real=True)
x_0, eps_ = Normal("x_0", 0, s_), Normal("epsilon", 0, 1)
x_t = a_ * x_0 + sp.sqrt(u_) * eps_
loss = sp.expand(E(sp.expand((c_1 * x_t + (x_t - a_ * x_0) / u_) ** 2)))
(c_1_best,) = sp.solve(sp.diff(loss, c_1), c_1)
assert sp.simplify(c_1_best + 1 / (a_**2 * s_**2 + u_)) == 0

a_lin, b_lin, m_, var_ = sp.symbols("a b m s2", real=True)
J = a_lin + sp.Rational(1, 2) * (a_lin**2 * (var_ + m_**2) + 2 * a_lin * b_lin * m_ + b_lin**2)
best = sp.solve([sp.diff(J, a_lin), sp.diff(J, b_lin)], [a_lin, b_lin], dict=True)
assert best == [{a_lin: -1 / var_, b_lin: m_ / var_}]
print(f"8.3 ratio: {sp.simplify(ratio)}; 8.4: c_1 = {c_1_best}; 8.5: a = {best[0][a_lin]}, b = {best[0][b_lin]}")

# %% [markdown] tags=["solution"]
# ## Chapter 9
#
# **9.3.** In chapter 7's variables $\bar x = x_t/\sqrt{\bar\alpha_t} = x_0 + \sigma\epsilon$ with $\sigma = \sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t}$, so
# $\bar x$ has the density $p_\sigma = p_0 * \mathcal N(0, \sigma^2 I)$. Tweedie's formula for this additive noise (chapter 3) is
# $\mathbb E[x_0 \mid \bar x] = \bar x + \sigma^2\nabla\log p_\sigma(\bar x)$, and the exact noise prediction is therefore
# $\epsilon = \mathbb E[\epsilon \mid \bar x] = (\bar x - \mathbb E[x_0 \mid \bar x])/\sigma = -\sigma\,\nabla\log p_\sigma(\bar x)$.
#
# For the second claim write $p_\sigma(x) = \mathbb E_u\,p_0(x - \sigma u)$ with $u \sim \mathcal N(0, I)$ and expand in $\sigma$:
# $p_0(x) - \sigma\,\mathbb E[u]\cdot\nabla p_0 + \tfrac{\sigma^2}{2}\mathbb E[u^\top H u] - \dots$. Every odd moment of $u$ vanishes, so
# only even powers survive: $p_\sigma = p_0 + \tfrac{\sigma^2}{2}\Delta p_0 + O(\sigma^4)$ (the heat equation, $\partial p/\partial(\sigma^2/2) = \Delta p$).
# Taking the log and the gradient, $\nabla\log p_\sigma = \nabla\log p_0 + \tfrac{\sigma^2}{2}\nabla\big(\Delta p_0/p_0\big) + O(\sigma^4)$:
# a function of $\sigma^2$, equal to $\nabla\log p_0$ up to $O(\sigma^2)$. So $\epsilon/\sigma = -\nabla\log p_\sigma(\bar x)$ is even in
# $\sigma$, and $\epsilon = -\sigma\nabla\log p_0(\bar x) + O(\sigma^3)$ is odd and, to second order, linear in $\sigma$: exactly the
# model of section 4, and the reason the last step needs a line in $\sigma$ rather than in $\lambda = -\log\sigma$.
#
# The check takes a two-component 1-D mixture and smooths it exactly (each component's variance grows by $\sigma^2$), so
# $\epsilon/\sigma = f(\sigma^2)$ depends on $\sigma$ through $u = \sigma^2$ only: it is even. Its value at $u = 0$ must be $-\nabla\log p_0$,
# and its slope in $u$ the heat-equation term $-\tfrac12\nabla(\Delta p_0/p_0)$, computed from $p_0$ alone.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
xb, u_var = sp.symbols("xbar u", real=True)
parts = [(sp.Rational(1, 3), -1, sp.Rational(1, 4)), (sp.Rational(2, 3), sp.Rational(3, 2), sp.Rational(1, 9))]


def density(smoothing):
    return sum(
        wt * sp.exp(-((xb - mu) ** 2) / (2 * (var + smoothing))) / sp.sqrt(2 * sp.pi * (var + smoothing))
        for wt, mu, var in parts
    )


p0 = density(0)
point = {xb: sp.Rational(1, 5)}
eps_over_sigma = -sp.diff(sp.log(density(u_var)), xb)  # -grad log p_sigma, the exact eps / sigma, with u = sigma^2
value = eps_over_sigma.subs(u_var, 0).subs(point).evalf(40)
slope = sp.diff(eps_over_sigma, u_var).subs(u_var, 0).subs(point).evalf(40)
assert abs(value - (-sp.diff(sp.log(p0), xb)).subs(point).evalf(40)) < 1e-30
assert abs(slope - (-sp.diff(sp.diff(p0, xb, 2) / p0, xb) / 2).subs(point).evalf(40)) < 1e-30
print(f"eps / sigma at xbar = 1/5: {float(value):.4f} + ({float(slope):.4f}) sigma^2 + O(sigma^4)")

# %% [markdown] tags=["solution"]
# ## Appendix A
#
# **A.2.** For $x, y \ge 0$ with $x + y \le \pi/2$ both angles lie in $[0, \pi/2]$, so $\sin x \sin y \ge 0$ and
# $\cos(x + y) = \cos x\cos y - \sin x\sin y \le \cos x\cos y$, with equality only if $x = 0$ or $y = 0$. All these
# cosines are $\ge 0$, so squaring keeps the inequality: $\cos^2(x+y) \le \cos^2 x\cos^2 y$.
#
# The produced variance is $\frac{V}{v(\bar\alpha_{\tau_S})}\,s^2\prod_i\cos^2\Delta\varphi_i$ with angle increments $\Delta\varphi_i \ge 0$ that sum to
# $\varphi(\bar\alpha_{\tau_S}) < \pi/2$. Inserting a timestep between $\tau_{i-1}$ and $\tau_i$ leaves $\tau_S$ (and with it the
# prefactor) alone and splits one increment, $\Delta\varphi_i = x + y$, into two; the factor $\cos^2(x+y)$ becomes
# $\cos^2 x\cos^2 y \ge \cos^2(x+y)$. So a finer sub-sequence that contains the coarser one, with the same first step
# $\tau_S$, never has a lower produced variance. Trailing sub-sequences with $S = 10, 20, 40$ all start at $\tau_S = T$
# and are nested, so their variances increase with $S$.
#
# Uniform sub-sequences $\tau_i = 1 + (i-1)\lfloor T/S\rfloor$ start elsewhere: $\tau_S = 901$ for $S = 10$ and $951$ for $S = 20$.
# These two happen to be nested, but the finer one adds a step *above* the coarse one's start, which changes the
# prefactor $1/v(\bar\alpha_{\tau_S})$ and adds a new angle rather than splitting an old one; and most pairs, $S = 3$ and
# $S = 7$ for example, are not nested at all. The theorem compares neither.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
xa, ya = sp.symbols("x y", nonnegative=True)
assert sp.simplify(sp.expand_trig(sp.cos(xa + ya)) - (sp.cos(xa) * sp.cos(ya) - sp.sin(xa) * sp.sin(ya))) == 0
for S_pair in ((10, 20), (3, 7)):
    plans = [samplers.timesteps(T, S_, "uniform") for S_ in S_pair]
    produced = [appendix.produced_variance(linear, 0.5, S_, "uniform") for S_ in S_pair]
    print(
        f"uniform S = {S_pair}: nested {set(plans[0]) <= set(plans[1])}, first steps tau_S = "
        f"{[p[-1] for p in plans]}, produced variances {[round(x, 5) for x in produced]} (true 0.25)"
    )

# %% [markdown] tags=["solution"]
# ## Appendix B
#
# **B.2.** Let $g = \lfloor T/S\rfloor$ and $T = gS + r$ with $0 \le r < S$. diffusers' `step` moves every step from $t$ to $t - g$, or
# to $t = 0$ when $t \le g$ (with `set_alpha_to_one=True`). A chained plan starts at $t = T$ ("trailing" always visits
# $k = T - 1$ first), and each step must land where the next starts, so the visited timesteps are forced:
# $T, T - g, T - 2g, \dots$. With $S$ steps the last one starts at $T - (S-1)g = g + r$.
#
# - If $S$ divides $T$ ($r = 0$), the last step starts at $g$, and since $g \le g$ it lands on $t = 0$. Trailing's timesteps
#   $\mathrm{round}(T - jT/S) = T - jg$ are exactly these, so the plan is chained.
# - If $r > 0$, the last step starts at $g + r > g$, so it moves by $g$ and lands on $t = r \ne 0$: no plan with $S$ steps can
#   be chained. (When the float `arange` adds an extra entry $k = -1$, the step before it lands on $r$ too, not on the
#   $t = 0$ that the extra entry stands for.)
#
# So the trailing plan is chained exactly when $S$ divides $T$; for $T = 1000$ that is 16 values of $S$, as the
# chapter's cell finds by running diffusers for every $S$.
