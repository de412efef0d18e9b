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
# # Chapter 1 — The forward process
#
# A diffusion model is defined by the way it *destroys* data. The forward process takes a clean image
# $x_0$ and adds a little Gaussian noise, again and again, for $T$ steps, until nothing of the image is
# left. Nothing in it is learned: it is a fixed recipe, chosen so that every quantity we will need later
# has a closed form. This chapter derives the most important of those closed forms, the marginal
# $q(x_t \mid x_0)$, and checks it three ways: symbolically, by simulation, and on a picture.
#
# In this chapter you will be able to
#
# - write down one step of the forward process and say why it shrinks the signal by $\sqrt{\alpha_t}$;
# - derive $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I)$ by induction,
#   with sympy checking every step;
# - draw $x_t$ in one shot with the reparameterisation $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$
#   (`schedule.q_sample`);
# - compare DDPM's linear and quadratic schedules with the cosine schedule of improved DDPM through $\bar\alpha_t$ and the log-SNR;
# - confirm on a real MNIST digit that $t$ steps of the Markov chain and one shot of `schedule.q_sample` give the same distribution.

# %%
import math

import matplotlib.pyplot as plt
import sympy as sp
import torch
from sympy import stats

from ddim_book.data import mnist_dataset
from ddim_book.exercises import ch01
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
# the per-step tensors are small: one thread is as fast, and the seeded numbers do not depend on the core count
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule
quadratic = NoiseSchedule.quadratic(T=1000, beta_start=1e-4, beta_end=0.02)  # same endpoints, sqrt(beta) linear
cosine = NoiseSchedule.cosine(T=1000)  # improved DDPM's schedule
images, labels = mnist_dataset("all")  # the 10,000 shipped MNIST digits, pixels in [-1, 1]
digit = images[0].double()  # (1, 28, 28), a seven

# %% [markdown]
# ## 1. One step of noise
#
# DDPM (Ho et al. 2020, eq. (2)) defines the forward process as a Markov chain with Gaussian steps,
#
# $$q(x_{1:T} \mid x_0) = \prod_{t=1}^{T} q(x_t \mid x_{t-1}), \qquad
#   q(x_t \mid x_{t-1}) = \mathcal{N}\big(x_t;\ \sqrt{\alpha_t}\, x_{t-1},\ \beta_t I\big), \qquad \alpha_t = 1 - \beta_t,$$
#
# where the **variance schedule** $\beta_1, \dots, \beta_T$ is fixed in advance; DDPM uses $T = 1000$ and
# $\beta_t$ rising linearly from $10^{-4}$ to $0.02$. In code the schedule is an object `schedule` whose arrays
# have length $T + 1$ and are indexed by $t$ itself: `schedule.betas[t]` is $\beta_t$ and `schedule.alphas[t]` is $\alpha_t$
# (index 0 stands for the clean data: `schedule.betas[0] = 0`). Sampling one step reads
#
# $$x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon_t, \qquad \epsilon_t \sim \mathcal{N}(0, I) \text{ independent of } x_{t-1}.$$
#
# Two remarks before we compute anything.
#
# *Why the shrinking factor $\sqrt{\alpha_t}$?* Adding noise alone would make the variance grow without bound.
# Scaling the signal by $\sqrt{1 - \beta_t}$ makes the step **variance preserving**: a coordinate of variance $v$
# leaves with variance $\alpha_t v + \beta_t$, whose only fixed point is $v = 1$, and the distance to 1 shrinks
# by the factor $\alpha_t$ at every step. Whatever the data, the chain is pulled towards $\mathcal{N}(0, I)$.
#
# *The product is the joint, not the marginal.* The product of kernels above is the joint density of the
# whole path $x_1, \dots, x_T$. The density of $x_t$ alone, $q(x_t \mid x_0)$, is obtained by integrating the
# intermediate states out; writing "$q(x_t \mid x_0) = \prod_s q(x_s \mid x_{s-1})$", as one sometimes sees, mixes
# the two. Section 2 does the integration properly.

# %%
# NBVAL_CHECK_OUTPUT
alpha, v = sp.symbols("alpha_t v", positive=True)
step_variance = alpha * v + (1 - alpha)  # Var(x_t) when Var(x_{t-1}) = v
fixed_points = sp.solve(sp.Eq(step_variance, v), v)
assert fixed_points == [1]
assert sp.simplify((step_variance - 1) - alpha * (v - 1)) == 0  # the distance to 1 shrinks by alpha_t
print("Var(x_t) =", step_variance, "  fixed point:", fixed_points, "  Var(x_t) - 1 =", sp.factor(step_variance - 1))

# %% [markdown]
# ## 2. The marginal $q(x_t \mid x_0)$, by induction
#
# **Claim** (DDPM eq. (4)). With $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$,
#
# $$q(x_t \mid x_0) = \mathcal{N}\big(x_t;\ \sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big).$$
#
# All covariances are multiples of $I$, so the coordinates are independent and it is enough to prove the
# claim for one coordinate. We use induction on $t$.
#
# *Base case.* The empty product is $\bar\alpha_0 = 1$, and the claim at $t = 0$ says $x_0 = x_0$. At $t = 1$,
# $\bar\alpha_1 = \alpha_1$ and the claim is the one-step kernel itself.
#
# *Step.* Suppose $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\, x_0 + \sqrt{1 - \bar\alpha_{t-1}}\, \epsilon_1$ with
# $\epsilon_1 \sim \mathcal{N}(0, 1)$, and take one more step, $x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{1 - \alpha_t}\, \epsilon_2$
# with $\epsilon_2$ independent of $\epsilon_1$. Then $x_t$ is $x_0$ times a constant plus a sum of two independent
# centred Gaussians, which is again Gaussian, with mean and variance computed below by `sympy.stats`,
# which knows nothing of the claim.

# %%
# NBVAL_CHECK_OUTPUT
a_t, ab_prev = sp.symbols(r"alpha_t alphabar_{t-1}", positive=True)
x0 = sp.Symbol("x_0", real=True)
eps1, eps2 = stats.Normal("epsilon_1", 0, 1), stats.Normal("epsilon_2", 0, 1)

x_prev = sp.sqrt(ab_prev) * x0 + sp.sqrt(1 - ab_prev) * eps1  # the induction hypothesis
x_t = sp.sqrt(a_t) * x_prev + sp.sqrt(1 - a_t) * eps2  # one more forward step
mean_t = sp.simplify(stats.E(x_t))
var_t = sp.simplify(stats.variance(x_t))

ab_t = a_t * ab_prev  # alphabar_t = alpha_t * alphabar_{t-1}
assert sp.simplify(mean_t - sp.sqrt(ab_t) * x0) == 0
assert sp.simplify(var_t - (1 - ab_t)) == 0
assert mean_t.subs(ab_prev, 1) == sp.sqrt(a_t) * x0 and var_t.subs(ab_prev, 1) == 1 - a_t  # base case t = 1
print("E[x_t | x_0]   =", mean_t)
print("Var[x_t | x_0] =", var_t)

# %% [markdown]
# The variance of the sum is $\alpha_t (1 - \bar\alpha_{t-1}) + (1 - \alpha_t) = 1 - \alpha_t \bar\alpha_{t-1} = 1 - \bar\alpha_t$:
# the noise inherited from the past is shrunk by $\alpha_t$ and the fresh noise fills the gap exactly.
# That the sum of independent Gaussians is Gaussian is a one-line statement about characteristic functions:
# $\mathbb{E}\, e^{i\omega c \epsilon} = e^{-c^2 \omega^2 / 2}$, and the characteristic function of a sum of independent
# terms is the product of theirs.

# %%
omega = sp.Symbol("omega", real=True)


def char_fn(std):
    """Characteristic function of N(0, std^2) at omega."""
    return sp.exp(-(std**2) * omega**2 / 2)


product = char_fn(sp.sqrt(a_t) * sp.sqrt(1 - ab_prev)) * char_fn(sp.sqrt(1 - a_t))
assert sp.simplify(product - char_fn(sp.sqrt(1 - ab_t))) == 0  # the noise of x_t is N(0, 1 - alphabar_t)

# %% [markdown]
# As an independent check of the induction, here is the chain unrolled for $t = 1, \dots, 5$ with five free
# symbols $\alpha_1, \dots, \alpha_5$: we keep the coefficient of $x_0$ and the coefficient of each independent
# $\epsilon_s$, multiply all of them by $\sqrt{\alpha_t}$ at every step and append the new noise $\sqrt{1 - \alpha_t}$.
# The noise variance is the sum of the squared coefficients,
# $\sum_{s \le t} (1 - \alpha_s) \prod_{s < r \le t} \alpha_r$, a telescoping sum that collapses to $1 - \prod_{s \le t} \alpha_s$.

# %%
# NBVAL_CHECK_OUTPUT
alphas_sym = sp.symbols("alpha_1:6", positive=True)
signal = sp.Integer(1)  # the coefficient of x_0
noise = []  # the coefficient of each independent epsilon_s
for t, a in enumerate(alphas_sym, start=1):
    signal = sp.sqrt(a) * signal
    noise = [sp.sqrt(a) * c for c in noise] + [sp.sqrt(1 - a)]
    product_t = sp.prod(alphas_sym[:t])
    noise_var = sp.expand(sum(c**2 for c in noise))
    assert sp.simplify(signal - sp.sqrt(product_t)) == 0 and sp.expand(noise_var - (1 - product_t)) == 0
    print(f"t = {t}: coefficient of x_0 = {signal},  noise variance = {noise_var}")

# %% [markdown]
# ## 3. The reparameterisation, and why it matters
#
# The marginal can be sampled without simulating the chain:
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I).$$
#
# This is `schedule.q_sample(x0, t, noise)`: `schedule.alpha_bars[t]` is $\bar\alpha_t$ (with `schedule.alpha_bars[0] = 1`), `t` is an
# int or an int64 tensor holding one timestep per sample, and `noise` is $\epsilon$ (drawn for us if omitted).
# One line of arithmetic instead of $t$ steps is what makes training cheap: chapter 3 draws a random $t$ for every
# image of a batch and needs $x_t$ at once. Keeping $\epsilon$ around matters as much, since it becomes the
# regression target of the network.

# %%
x0_batch = images[:4].double()
noise = torch.randn(x0_batch.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
t_batch = torch.tensor([1, 10, 500, 1000])  # one timestep per image
by_hand = (
    schedule.alpha_bars[t_batch].sqrt().view(-1, 1, 1, 1) * x0_batch
    + (1 - schedule.alpha_bars[t_batch]).sqrt().view(-1, 1, 1, 1) * noise
)
x_t_batch = schedule.q_sample(x0_batch, t_batch, noise=noise)
assert torch.allclose(x_t_batch, by_hand, rtol=0, atol=1e-12)
print(tuple(x_t_batch.shape), x_t_batch.dtype)

# %% [markdown]
# ## 4. Three schedules: linear, quadratic and cosine
#
# Everything about the forward process is summarised by the curve $\bar\alpha_t$, or by the
# **signal-to-noise ratio** $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$ (`schedule.snr()`), the ratio of the
# signal's variance to the noise's in $x_t$ (for data of unit variance).
#
# - DDPM's **linear** schedule has $\beta_t$ rising linearly from $10^{-4}$ to $0.02$. Then
#   $\log \bar\alpha_t \approx -\sum_{s \le t} \beta_s$ falls quadratically, and by $t = T$ only
#   $\bar\alpha_T \approx 4 \cdot 10^{-5}$ is left: $x_T$ carries $\sqrt{\bar\alpha_T} \approx 0.006$ of the image.
#   The prior term of the loss (chapter 3), $\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,\mathcal{N}(0, I)\big)$, is then
#   $-\tfrac12 \log(1 - \bar\alpha_T) \approx \bar\alpha_T / 2$ nats for every pixel at $\pm 1$: negligible, but not zero.
# - DDPM's **quadratic** schedule keeps the same endpoints but spaces $\sqrt{\beta_t}$ evenly instead of $\beta_t$:
#   $\beta_t = \big(\sqrt{\beta_1} + \tfrac{t-1}{T-1}(\sqrt{\beta_T} - \sqrt{\beta_1})\big)^2$ (`NoiseSchedule.quadratic`). DDPM
#   (its appendix B) lists it, with constant and linear schedules, among those it tried before settling on the linear one;
#   it is the `"quad"` option of the DDPM and DDIM code. The square of an average is at most the average of the squares,
#   so every $\beta_t$ lies below the linear one, and the total $\sum_t \beta_t$, which sets $\bar\alpha_T \approx e^{-\sum_t \beta_t}$, shrinks
#   from $T(\beta_1 + \beta_T)/2$ to about $T(\beta_1 + \sqrt{\beta_1 \beta_T} + \beta_T)/3$ (sympy derives both facts below).
# - The **cosine** schedule (Nichol & Dhariwal 2021, eq. (17)) prescribes $\bar\alpha_t = f(t) / f(0)$ with
#   $f(t) = \cos^2\!\big(\tfrac{t/T + s}{1 + s} \cdot \tfrac{\pi}{2}\big)$ and $s = 0.008$. It destroys information
#   more evenly over $t$, and the log-SNR falls almost linearly in the middle. At $t = T$ it gives $f(T) = 0$,
#   so $\beta_T = 1 - \bar\alpha_T / \bar\alpha_{T-1} = 1$: the last step would erase $x_{T-1}$ completely
#   and $\bar\alpha_T = 0$ would make $x_0$ unrecoverable from any prediction of the noise. The betas are therefore
#   clipped at $0.999$ (`max_beta`), and $\bar\alpha_t$ is recomputed from the clipped betas.

# %%
# NBVAL_CHECK_OUTPUT
# the quadratic beta_t is (sqrt(beta_1) + k h)^2 with k = t - 1 and h = (sqrt(beta_T) - sqrt(beta_1)) / (T - 1)
u, r1, rT = sp.symbols("u r_1 r_T", positive=True)  # u = (t - 1) / (T - 1); r_1, r_T: sqrt(beta_1), sqrt(beta_T)
beta_lin = (1 - u) * r1**2 + u * rT**2  # the linear schedule at the same t
beta_quad = ((1 - u) * r1 + u * rT) ** 2
assert sp.expand(beta_lin - beta_quad - u * (1 - u) * (rT - r1) ** 2) == 0  # >= 0 for 0 <= u <= 1
k, T_sym = sp.symbols("k T", integer=True, positive=True)
h = (rT - r1) / (T_sym - 1)
sum_quad = sp.summation((r1 + k * h) ** 2, (k, 0, T_sym - 1))  # sympy sums the T terms
by_hand = T_sym * (r1**2 + r1 * rT + rT**2) / 3 + T_sym * (rT - r1) ** 2 / (6 * (T_sym - 1))
assert sp.simplify(sum_quad - by_hand) == 0
print("beta_linear - beta_quadratic =", sp.factor(beta_lin - beta_quad))
print("sum of the quadratic betas   =", by_hand)
endpoints = {T_sym: 1000, r1: math.sqrt(1e-4), rT: math.sqrt(0.02)}
formulas = {"linear": 1000 * (1e-4 + 0.02) / 2, "quadratic": float(by_hand.subs(endpoints))}
for name, sched in (("linear", schedule), ("quadratic", quadratic)):
    total = sched.betas.sum().item()
    assert abs(total - formulas[name]) < 1e-9
    print(f"{name:>9}: sum of the package's betas = {total:.4f}, formula = {formulas[name]:.4f}")

# %%
# NBVAL_CHECK_OUTPUT
print(
    f"{'schedule':>9} {'beta_1':>10} {'beta_T':>8} {'alphabar_T':>11} {'sqrt(alphabar_T)':>17} "
    f"{'clipped betas':>14} {'KL_T per +-1 pixel (nats)':>26}"
)
for name, sched in (("linear", schedule), ("quadratic", quadratic), ("cosine", cosine)):
    T = sched.T
    clipped = int((sched.betas[1:] >= 0.999).sum())
    ab_T = sched.alpha_bars[T].item()
    kl_pixel = -0.5 * math.log1p(-ab_T)  # KL(N(sqrt(ab) x0, 1 - ab) || N(0, 1)) at x0 = +-1
    print(
        f"{name:>9} {sched.betas[1].item():10.3e} {sched.betas[T].item():8.4f} {ab_T:11.3e} "
        f"{math.sqrt(ab_T):17.3e} {clipped:14d} {kl_pixel:26.2e}"
    )


def f_cos(t, T=1000, offset=0.008):
    """improved DDPM's f(t); alphabar_t = f(t) / f(0) before clipping"""
    return math.cos((t / T + offset) / (1 + offset) * math.pi / 2) ** 2


print(f"cosine beta_T before clipping: 1 - f(T) / f(T-1) = {1 - f_cos(1000) / f_cos(999):.6f}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
t_axis = torch.arange(1, schedule.T + 1)
for name, sched, style in (("linear", schedule, "-"), ("quadratic", quadratic, "-."), ("cosine", cosine, "--")):
    ax1.plot(t_axis, sched.alpha_bars[1:], style, label=name)
    ax2.plot(t_axis, sched.snr()[1:].log(), style, label=name)
ax1.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title=r"signal kept, $\bar\alpha_t$")
ax2.axhline(0, color="gray", lw=0.8, ls=":")
ax2.set(xlabel="t", ylabel=r"$\log \mathrm{SNR}(t)$", title=r"$\log\, \bar\alpha_t / (1 - \bar\alpha_t)$")
ax1.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The linear schedule spends its last 300 steps (from $t = 703$ on) on images that are already almost pure noise,
# with log-SNR below $-5$; the cosine schedule keeps a visible signal much longer and only plunges at the very
# end, where the clipped last step sends the log-SNR from about $-13$ to $-20$. Look at the dash-dotted quadratic curve: with
# every $\beta_t$ smaller than the linear one it keeps more signal from the start (its SNR falls below 1 at $t = 419$
# instead of $260$, close to the cosine schedule's $497$), and it ends highest of the three, at $\bar\alpha_T \approx 7 \cdot 10^{-4}$, so $x_T$ still carries $2.7\%$ of the
# image, and $L_T$ is 18 times that of the linear schedule (still small).
#
# ## 5. A digit dissolving into noise
#
# Here is one MNIST digit pushed through $q(x_t \mid x_0)$ at several $t$, with **the same** $\epsilon$ for every
# column and all three schedules, so that only $\bar\alpha_t$ changes from picture to picture.

# %%
steps_shown = [0, 25, 50, 100, 200, 300, 500, 700, 1000]
eps_fixed = torch.randn(digit.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
fig, axes = plt.subplots(3, len(steps_shown), figsize=(8, 3.3))
for row, (name, sched) in enumerate((("linear", schedule), ("quadratic", quadratic), ("cosine", cosine))):
    for col, t in enumerate(steps_shown):
        x_shown = digit if t == 0 else sched.q_sample(digit, t, noise=eps_fixed)
        axes[row, col].imshow(x_shown[0].clamp(-1, 1), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
        if row == 0:
            axes[row, col].set_title(f"t = {t}", fontsize=8)
    axes[row, 0].set_ylabel(name, fontsize=8)
fig.tight_layout(pad=0.3)
plt.show()

# %% [markdown]
# With the linear schedule the seven is faint at $t = 500$ ($\bar\alpha_{500} \approx 0.08$) and gone at $t = 700$;
# with the cosine schedule it is still clearly legible at $t = 500$ ($\bar\alpha_{500} \approx 0.49$). The quadratic schedule sits in
# between: the seven is still visible at $t = 500$ ($\bar\alpha_{500} \approx 0.33$) and almost gone at $t = 700$ ($\bar\alpha_{700} \approx 0.07$). The gap between the linear and cosine rows is what improved DDPM was after: under the linear schedule a
# large share of the steps sees images with almost no signal left, which wastes training and sampling effort.
#
# ## 6. Monte Carlo: $t$ steps of the chain against one shot
#
# The sympy proof is airtight, but it is worth seeing the claim hold on real data, with the package's own
# schedule. We take the seven above and
#
# 1. run the **Markov chain** itself, $x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon_t$, for 1000
#    steps, for $N = 128$ independent noise paths, and record $x_t$ at $t = 10, 100, 500, 1000$;
# 2. draw $N = 128$ samples of $x_t$ in **one shot** with `schedule.q_sample` at the same $t$.
#
# For each of the 784 pixels we compare the two sample means and the two sample variances, each difference
# divided by its standard error: $\sqrt{(v_\text{chain} + v_\text{shot}) / N}$ for the means and
# $\sqrt{2 (v_\text{chain}^2 + v_\text{shot}^2) / (N - 1)}$ for the variances. If the two distributions agree,
# these $z$-scores are roughly standard normal: their root mean square is near 1, and the largest of 784 is
# typically about 3 and very rarely above 5. The table also shows the pixel-averaged variance next to the
# prediction $1 - \bar\alpha_t$.

# %%
# NBVAL_CHECK_OUTPUT
N, chunk, recorded = 128, 32, (10, 100, 500, 1000)
gen = torch.Generator().manual_seed(2024)
sqrt_alphas, sqrt_betas = schedule.alphas.sqrt().tolist(), schedule.betas.sqrt().tolist()
chain = {t: [] for t in recorded}
for _ in range(N // chunk):  # chunks of 32 paths keep each tensor small
    x = digit.expand(chunk, -1, -1, -1).clone()
    for t in range(1, max(recorded) + 1):
        # single-precision draws are four times cheaper here; the chain itself runs in float64
        x = sqrt_alphas[t] * x + sqrt_betas[t] * torch.randn(x.shape, generator=gen).double()
        if t in chain:
            chain[t].append(x)

print(
    f"{'t':>5} {'1-alphabar_t':>13} {'var chain':>10} {'var shot':>9} {'max|z| mean':>12} {'rms z mean':>11} "
    f"{'max|z| var':>11} {'rms z var':>10}"
)
for t in recorded:
    x_chain = torch.cat(chain[t])
    x_shot = schedule.q_sample(digit.expand(N, -1, -1, -1), t, generator=gen)
    m_c, m_s, v_c, v_s = x_chain.mean(0), x_shot.mean(0), x_chain.var(0), x_shot.var(0)
    z_mean = (m_c - m_s) / ((v_c + v_s) / N).sqrt()
    z_var = (v_c - v_s) / (2 * (v_c**2 + v_s**2) / (N - 1)).sqrt()
    rms_mean, rms_var = z_mean.pow(2).mean().sqrt().item(), z_var.pow(2).mean().sqrt().item()
    assert z_mean.abs().max() < 5 and z_var.abs().max() < 5.5, f"t={t}: chain and one shot disagree"
    assert abs(rms_mean - 1) < 0.15 and abs(rms_var - 1) < 0.15
    print(
        f"{t:5d} {1 - schedule.alpha_bars[t].item():13.4f} {v_c.mean().item():10.4f} {v_s.mean().item():9.4f} "
        f"{z_mean.abs().max().item():12.2f} {rms_mean:11.2f} {z_var.abs().max().item():11.2f} {rms_var:10.2f}"
    )

# %% [markdown]
# The two ways of producing $x_t$ are indistinguishable at every $t$, and both pixel averages lie within about
# 2.5 standard errors of $1 - \bar\alpha_t$ (the standard error of the average of 784 sample variances is
# $\sqrt{2/127}\,(1 - \bar\alpha_t) / \sqrt{784} \approx 0.0045\,(1 - \bar\alpha_t)$).
# From now on we use the one-shot form freely.
#
# ## Summary
#
# - One forward step is $x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon$ (DDPM eq. (2)); the factor $\sqrt{\alpha_t}$ makes
#   it variance preserving, pulling every coordinate towards $\mathcal{N}(0, 1)$.
# - Composing Gaussian steps gives the marginal $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I)$ with
#   $\bar\alpha_t = \prod_{s \le t} \alpha_s$ and $\bar\alpha_0 = 1$ (DDPM eq. (4)); sympy checked the induction step and the unrolled chain.
# - `schedule.q_sample(x0, t, noise)` draws $x_t$ in one shot; a 1000-step Monte Carlo on an MNIST digit agrees with it pixel by pixel.
# - The linear schedule ends at $\bar\alpha_T \approx 4 \cdot 10^{-5}$ and spends many steps on nearly pure noise; the quadratic
#   schedule, with the same endpoints but $\sqrt{\beta_t}$ evenly spaced, has smaller betas everywhere in between and ends at
#   $\bar\alpha_T \approx 7 \cdot 10^{-4}$; the cosine schedule spreads the destruction more evenly and needs its last beta clipped at $0.999$.
#
# ## Exercises
#
# **1.1 (code).** Write `my_q_sample(x0, t, noise)` that returns $\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$ for
# DDPM's linear schedule (the chapter's `schedule`), for `x0` of shape (B, ...) and `t` either an int or an int64 tensor of shape (B,). Fill in the
# exercise cell and run it: `ch01.check_q_sample` grades your function. The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_q_sample(x0, t, noise):
    # alpha_bar_t from schedule.alpha_bars, shaped (B, 1, ..., 1) for a tensor t so that it broadcasts over x0
    return ...


result = ch01.check_q_sample(my_q_sample)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_q_sample(x0, t, noise):
    ab = schedule.alpha_bars[t].to(x0.dtype)
    if ab.ndim == 1:  # one t per sample: (B,) -> (B, 1, ..., 1)
        ab = ab.reshape(-1, *([1] * (x0.ndim - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


result = ch01.check_q_sample(my_q_sample)

# %% [markdown]
# **1.2 (code).** Write `my_alpha_bars(betas)` that takes the $T$ values $\beta_1, \dots, \beta_T$ (a float64 tensor) and returns
# the tensor $(\bar\alpha_0, \bar\alpha_1, \dots, \bar\alpha_T)$ of length $T + 1$, with $\bar\alpha_0 = 1$ as in `NoiseSchedule.alpha_bars`.


# %% tags=["exercise"]
def my_alpha_bars(betas):
    return ...


result = ch01.check_alpha_bars(my_alpha_bars)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_alpha_bars(betas):
    products = torch.cumprod(1 - betas, dim=0)  # alpha_bar_1 .. alpha_bar_T
    return torch.cat([torch.ones(1, dtype=betas.dtype), products])  # alpha_bar_0 = 1: nothing multiplied yet


result = ch01.check_alpha_bars(my_alpha_bars)

# %% [markdown]
# **1.3 (pen and paper).** The SNR crosses 1 where $\bar\alpha_t = 1/2$. (a) For the cosine schedule, ignoring the clipping
# (which only touches $t = T$), solve $f(t)/f(0) = 1/2$ for $t$ in closed form. (b) For the linear schedule, use
# $\log(1 - \beta) \approx -\beta$ to turn $\bar\alpha_t = 1/2$ into a quadratic equation in $t$ and solve it. (c) Which schedule
# reaches "more noise than signal" earlier, and by how much? The worked solution is in appendix C; the solution cell
# below reads the exact crossing off the package's schedules.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
for name, sched in (("linear", schedule), ("cosine", cosine)):
    first = int(torch.nonzero(sched.snr()[1:] < 1)[0]) + 1
    print(
        f"{name}: SNR(t) >= 1 up to t = {first - 1}, SNR(t) < 1 from t = {first} (alphabar = {sched.alpha_bars[first].item():.4f})"
    )

# %% [markdown]
# **1.4 (pen and paper).** (a) Show that if every pixel of the data has variance $v$, then every pixel of $x_t$ has
# variance $\bar\alpha_t v + 1 - \bar\alpha_t$, so the forward process never leaves the interval between $v$ and 1.
# Contrast this with adding noise without shrinking, $x_t = x_0 + \sigma_t \epsilon$ (the "variance exploding" process of
# Song & Ermon 2019, chapter 8). (b) Find the constant $\beta$ for which $T = 1000$ steps give the same $\bar\alpha_T$ as
# the linear schedule, and the $t$ at which its SNR crosses 1. Worked solution: appendix C; the solution cell below
# computes (b) numerically.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
beta_const = 1 - schedule.alpha_bars[schedule.T].item() ** (1 / schedule.T)
constant = NoiseSchedule(torch.full((schedule.T,), beta_const, dtype=torch.float64))
crossing = int(torch.nonzero(constant.snr()[1:] < 1)[0]) + 1
assert abs(constant.alpha_bars[schedule.T].item() / schedule.alpha_bars[schedule.T].item() - 1) < 1e-9
print(f"constant beta = {beta_const:.6f}; its SNR falls below 1 at t = {crossing}")

# %% [markdown]
# **1.5 (code, then pen and paper).** (a) Write `my_quadratic_betas(T, beta_start, beta_end)` returning the $T$ values
# $\beta_1, \dots, \beta_T$ of the quadratic schedule of section 4 as a tensor of shape $(T,)$; `ch01.check_quadratic_betas`
# grades it. (b) With $\log \bar\alpha_T \approx -\sum_t \beta_t$ and the sum formula of section 4, predict $\bar\alpha_T$ for
# DDPM's endpoints $10^{-4}$ and $0.02$. Is the prediction too high or too low, and what does the next term of
# $\log(1 - \beta) = -\beta - \beta^2/2 - \dots$ change? Worked solution of (b): appendix C; the second solution cell compares
# both predictions with the package.


# %% tags=["exercise"]
def my_quadratic_betas(T, beta_start, beta_end):
    return ...


result = ch01.check_quadratic_betas(my_quadratic_betas)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_quadratic_betas(T, beta_start, beta_end):
    roots = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64)  # sqrt(beta) evenly spaced
    return roots**2


result = ch01.check_quadratic_betas(my_quadratic_betas)

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
sum_beta = formulas["quadratic"]
sum_beta_sq = (quadratic.betas**2).sum().item()
print(f"first order  exp(-sum beta)                  = {math.exp(-sum_beta):.4e}")
print(f"second order exp(-sum beta - sum beta^2 / 2) = {math.exp(-sum_beta - sum_beta_sq / 2):.4e}")
print(f"exact alphabar_T                             = {quadratic.alpha_bars[-1].item():.4e}")
