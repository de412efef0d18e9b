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
# # Chapter 6 — The DDIM sampler
#
# Chapter 5 built a family of forward processes $q_\sigma$ that share DDPM's marginals, and showed that one network
# trained with $L_\text{simple}$ serves every member. Here we turn the family into a sampler. Replace the unknown
# $x_0$ in the reverse kernel by the network's guess, and out comes the DDIM update (DDIM eq. (12)). It has two
# knobs: how much fresh noise each step adds ($\eta$), and which timesteps it visits (the sub-sequence $\tau$).
# Both can be changed after training. We end with the trade-off between speed and quality, measured in two
# settings: with an exact $\epsilon$-oracle, so that only the sampler's own error is left, and with the shipped
# MNIST model, where the network's error comes on top. We set both beside the DDIM paper's CIFAR10 table.
#
# In this chapter you will be able to
#
# - derive the DDIM update, "predicted $x_0$ + direction pointing to $x_t$ + random noise", from chapter 5's
#   posterior, and check `samplers.ddim_step` against it, symbolically and by probing it with unit inputs;
# - set $\sigma_t$ through $\eta$ (DDIM eq. (16)), and compute how far the larger $\hat\sigma_t$ breaks the variance law;
# - show that $\eta = 0$ makes the sampler a deterministic function of $x_T$;
# - build the sub-sequences $\tau$ (uniform, quadratic, trailing), and say why a network trained on all $T$ steps may
#   be sampled on $S \ll T$ of them;
# - read the $\eta \times S$ table on an exact oracle and on MNIST, and say where the paper's pattern holds.

# %%
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import sympy as sp
import torch

from ddim_book import paths, pretrained, samplers
from ddim_book.exercises import ch06
from ddim_book.metrics import fold_ring, sliced_wasserstein
from ddim_book.oracles import GaussianMixtureOracle
from ddim_book.plotting import book_style, show_grid
from ddim_book.schedules import NoiseSchedule

book_style()
# one thread makes the float64 oracle runs bit-reproducible; the U-Net cell near the end asks for two
torch.set_num_threads(1)
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule, and the shipped model's
T, ab = schedule.T, schedule.alpha_bars.tolist()  # ab[t] is alpha_bar_t as a float; ab[0] = 1
oracle = GaussianMixtureOracle.ring_2d(schedule)  # exact E[eps | x_t] for a ring of 8 Gaussians (chapter 3)
RESULTS = paths.results_dir()  # the cached results: data/results in a clone, inside the package in a wheel
ROOT = Path(pretrained.__file__).resolve().parents[1]  # the repository (for scripts/)
RECOMPUTE = os.environ.get("DDIM_BOOK_RECOMPUTE") == "1"
print(schedule)

# %% [markdown]
# ## 6.1 The update: the $q_\sigma$ posterior with $x_0$ replaced by its prediction
#
# DDIM's generative process (DDIM eq. (10)) uses the reverse kernel of chapter 5's forward family, with the clean
# image replaced by what the network says it is:
#
# $$p_\theta(x_{t-1} \mid x_t) = q_\sigma(x_{t-1} \mid x_t, \hat x_0), \qquad
# \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}} \quad \text{(DDIM eq. (9))}.$$
#
# (DDIM writes $\alpha_t$ for our $\bar\alpha_t$; every formula here is translated, see the bridge in chapter 5.)
# A draw from this Gaussian is its mean, DDIM eq. (7) at $x_0 = \hat x_0$, plus $\sigma_t z$ with $z \sim \mathcal N(0, I)$.
# One fact does all the simplifying: the noise that $\hat x_0$ implies, $(x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$,
# is exactly the predicted $\epsilon$. We call the target step "prev" rather than $t-1$, because nothing below needs
# it to be the neighbouring step; section 6.4 uses that freedom.

# %%
a_t, a_prev, sigma, eta = sp.symbols("abar_t abar_prev sigma_t eta", positive=True)
x_t, eps, z = sp.symbols("x_t epsilon z", real=True)


def q_sigma_mean(x_t, x_0):
    """Mean of q_sigma(x_prev | x_t, x_0), DDIM eq. (7) (chapter 5), as a sympy expression."""
    return sp.sqrt(a_prev) * x_0 + sp.sqrt(1 - a_prev - sigma**2) * (x_t - sp.sqrt(a_t) * x_0) / sp.sqrt(1 - a_t)


x0_hat = (x_t - sp.sqrt(1 - a_t) * eps) / sp.sqrt(a_t)  # DDIM eq. (9)
implied_noise = (x_t - sp.sqrt(a_t) * x0_hat) / sp.sqrt(1 - a_t)
assert sp.simplify(implied_noise - eps) == 0

x_prev = q_sigma_mean(x_t, x0_hat) + sigma * z  # a draw from q_sigma(x_prev | x_t, x0_hat)
eq12 = sp.sqrt(a_prev) * x0_hat + sp.sqrt(1 - a_prev - sigma**2) * eps + sigma * z
assert sp.simplify(x_prev - eq12) == 0

# the step is linear in its three inputs: x_prev = c_x x_t + c_eps eps + c_z z, with no constant term
x_prev_expanded = sp.expand(x_prev)
c_x, c_eps, c_z = (sp.simplify(x_prev_expanded.coeff(v)) for v in (x_t, eps, z))
assert sp.simplify(x_prev_expanded - (c_x * x_t + c_eps * eps + c_z * z)) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("noise implied by x0_hat, minus eps:", sp.simplify(implied_noise - eps))
print("x_prev - eq. (12):                 ", sp.simplify(x_prev - eq12))
print("c_x   =", c_x)
print("c_eps =", c_eps)
print("c_z   =", c_z)

# %% [markdown]
# So the step is DDIM eq. (12):
#
# $$x_\text{prev} = \underbrace{\sqrt{\bar\alpha_\text{prev}}\;\hat x_0}_{\text{predicted } x_0}
# + \underbrace{\sqrt{1-\bar\alpha_\text{prev}-\sigma_t^2}\;\epsilon_\theta(x_t, t)}_{\text{direction pointing to } x_t}
# + \underbrace{\sigma_t z}_{\text{random noise}} .$$
#
# Read it as: predict the clean image, then put back noise to the level $1-\bar\alpha_\text{prev}$ of the target step.
# Part of that noise is the predicted $\epsilon$ itself, the noise $x_t$ is believed to hold; with $\sigma_t = 0$ this
# makes $x_\text{prev}$ a combination of $x_t$ and $\hat x_0$ (in the plane they span, not on the line through them: the
# weights do not sum to one). The rest, of variance $\sigma_t^2$, is fresh. The last step goes to $\bar\alpha_0 = 1$, where the direction
# and the noise terms vanish and the step returns $\hat x_0$.
#
# **The package, checked symbolically.** `samplers.ddim_step` computes $\hat x_0$ (`_predict_x0`), the direction
# coefficient $\sqrt{1-\bar\alpha_\text{prev}-\sigma^2}$ (`_step_coefs`) and then
# `a_prev.sqrt() * x0_hat + dir_coef * eps + sigma * noise`. We transcribe those lines into sympy. $\sigma$ itself
# comes from `samplers.ddim_sigma`, which is plain arithmetic, so we can call *the package function itself* on
# sympy symbols and compare it with eq. (16) (both sides are non-negative, so comparing squares is enough).

# %%
# ddim_book/samplers.py, transcribed: _predict_x0, the direction coefficient of _step_coefs, the update line
pkg_x0 = (x_t - (1 - a_t) ** sp.Rational(1, 2) * eps) / a_t ** sp.Rational(1, 2)
pkg_dir_coef = (1 - a_prev - sigma**2) ** sp.Rational(1, 2)
pkg_step = sp.expand(sp.sqrt(a_prev) * pkg_x0 + pkg_dir_coef * eps + sigma * z)
pkg_coefs = [pkg_step.coeff(v) for v in (x_t, eps, z)]
assert all(sp.simplify(p - d) == 0 for p, d in zip(pkg_coefs, (c_x, c_eps, c_z)))

pkg_sigma = sp.nsimplify(samplers.ddim_sigma(a_t, a_prev, eta))  # the package's function, on symbols
eq16 = eta * sp.sqrt((1 - a_prev) / (1 - a_t)) * sp.sqrt(1 - a_t / a_prev)  # DDIM eq. (16)
assert sp.simplify(pkg_sigma**2 - eq16**2) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("samplers.ddim_sigma on symbols:", pkg_sigma)
print("its square minus eq. (16)^2:   ", sp.simplify(pkg_sigma**2 - eq16**2))
print("package coefficients minus derived ones:", [sp.simplify(p - d) for p, d in zip(pkg_coefs, (c_x, c_eps, c_z))])

# %% [markdown]
# **The three terms in the plane.** The figure draws one step $400 \to 150$ for a 2-D mixture of two Gaussians, with
# the exact $\epsilon$ of its oracle (chapter 3) and the numbers of `samplers.ddim_step`
# (`ddim_book.diagrams.ddim_step_diagram`). Laid tip to tail from the origin, the three arrows of eq. (12) end at
# $x_\text{prev}$ (the star); the cell checks that against `ddim_step` itself. Look at the orange arrow: it is parallel
# to the noise part of $x_t$ (grey dashed, $x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$), which is
# why it "points to $x_t$". Between the panels only $\eta$ changes: the blue term stays, and at $\eta = 1$ the red fresh
# noise takes most of the budget $1-\bar\alpha_\text{prev} = (\text{direction coefficient})^2 + \sigma_t^2$ from the orange one.

# %%
from ddim_book.diagrams import ddim_step_diagram

fig = ddim_step_diagram(etas=(0.0, 1.0), t=400, prev=150)
for part in fig.ddim_parts:  # the arrows add up to the package's step
    step = samplers.ddim_step(
        part.x_t[None], part.eps[None], ab[part.t], ab[part.prev], eta=part.eta, noise=part.z[None]
    )
    assert torch.allclose(part.x0_term + part.direction + part.noise, step[0], rtol=0, atol=1e-12)

# %% [markdown]
# **The package, checked numerically.** A transcription can drift from the code it copies, so we also ask the code
# itself. Because the step is linear, one call reveals all three coefficients: feed $x_t$, $\epsilon$ and the noise
# as unit vectors in three *different* slots, $x_t = (1, 0, 0)$, $\epsilon = (0, 1, 0)$, $z = (0, 0, 1)$; slot $k$ of
# the output is then the coefficient of input $k$. We compare with the derived coefficients, and confirm linearity
# on random inputs, for consecutive steps, skips, the last step and $\hat\sigma$ (section 6.2), whose direction
# term uses $\sigma(1)$ and whose noise is $\hat\sigma$.

# %%
# NBVAL_CHECK_OUTPUT
coef_fn = sp.lambdify((a_t, a_prev, sigma), (c_x, c_eps, c_z))
unit = torch.eye(3, dtype=torch.float64)  # row k is a unit vector in slot k


def probe(alpha_bar_t, alpha_bar_prev, eta):
    """(c_x, c_eps, c_z) of samplers.ddim_step, read off one call whose inputs are unit vectors in separate slots."""
    return samplers.ddim_step(unit[:1], unit[1:2], alpha_bar_t, alpha_bar_prev, eta=eta, noise=unit[2:]).flatten()


def derived_coefs(alpha_bar_t, alpha_bar_prev, eta):
    """The sympy coefficients; sigma_hat keeps the eta = 1 direction and draws noise of std sigma_hat."""
    if eta == "sigma_hat":
        c = coef_fn(alpha_bar_t, alpha_bar_prev, samplers.ddim_sigma(alpha_bar_t, alpha_bar_prev, 1.0))
        return torch.tensor([c[0], c[1], samplers.sigma_hat(alpha_bar_t, alpha_bar_prev)], dtype=torch.float64)
    sig = samplers.ddim_sigma(alpha_bar_t, alpha_bar_prev, eta)
    return torch.tensor([float(v) for v in coef_fn(alpha_bar_t, alpha_bar_prev, sig)], dtype=torch.float64)


gen = torch.Generator().manual_seed(61)
x_r, e_r, n_r = torch.randn((3, 1, 1000), generator=gen, dtype=torch.float64)
cases = [(500, 499, 0.0), (500, 499, 1.0), (981, 961, 0.5), (600, 400, 1.0), (101, 1, 0.2), (20, 0, 0.0)]
cases.append((981, 961, "sigma_hat"))
print(f"{'step':>11} {'eta':>9} {'c_x':>10} {'c_eps':>11} {'c_z':>10}  probe = derived  linear")
for t, prev, eta_ in cases:
    got = probe(ab[t], ab[prev], eta_)
    same = (got - derived_coefs(ab[t], ab[prev], eta_)).abs().max().item() < 1e-12
    direct = samplers.ddim_step(x_r, e_r, ab[t], ab[prev], eta=eta_, noise=n_r)
    linear = (direct - (got[0] * x_r + got[1] * e_r + got[2] * n_r)).abs().max().item() < 1e-12
    assert same and linear
    c = got.tolist()
    print(f"{t:>4} -> {prev:<4} {eta_!s:>9} {c[0]:>10.6f} {c[1]:>11.6f} {c[2]:>10.6f}  {same!s:>14} {linear!s:>7}")

# %% [markdown]
# A consecutive step barely changes $x_t$ ($c_x \approx 1$, $c_\epsilon \approx 0$). A long one, such as $600 \to 400$,
# scales $x_t$ up by $c_x = \sqrt{\bar\alpha_{400}/\bar\alpha_{600}} = 2.75$ and takes most of that back through
# $c_\epsilon = -2.41$; the two terms nearly cancel, which is why errors in $\epsilon$ weigh more on long steps. At
# the last step ($20 \to 0$), $c_x = 1/\sqrt{\bar\alpha_{20}}$, $c_\epsilon = -\sqrt{1-\bar\alpha_{20}}/\sqrt{\bar\alpha_{20}}$ and
# $c_z = 0$: the step is $\hat x_0$.
#
# ## 6.2 $\sigma$ from $\eta$, and the larger $\hat\sigma$
#
# DDIM eq. (16) sets $\sigma_t(\eta) = \eta\sqrt{(1-\bar\alpha_\text{prev})/(1-\bar\alpha_t)}\sqrt{1-\bar\alpha_t/\bar\alpha_\text{prev}}$ (chapter 5):
# $\eta = 1$ is DDPM's posterior, $\eta = 0$ adds no noise at all. DDIM sec. 5.1 also tries a *larger* noise,
# $\hat\sigma_t = \sqrt{1-\bar\alpha_t/\bar\alpha_\text{prev}}$. For a consecutive step that is $\sqrt{\beta_t}$, DDPM's
# other variance choice $\sigma_t^2 = \beta_t$ (DDPM sec. 3.2; chapter 4), the one DDPM used for its CIFAR10 samples.
# With $\hat\sigma$ the mean stays DDPM's (the $\eta = 1$ direction), and only the noise grows, so $\hat\sigma$ is
# not a value of $\eta$.
#
# What does each choice do to the marginal? Feed the step the *true* noise, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$.
# Then $\hat x_0 = x_0$, and $x_\text{prev}$ should be distributed as $q(x_\text{prev} \mid x_0) = \mathcal N(\sqrt{\bar\alpha_\text{prev}}\,x_0, (1-\bar\alpha_\text{prev}) I)$.
# With the coefficients of section 6.1 we get the slope on $x_0$ and the variance, for every $\sigma$. The
# symbols $\bar\alpha_t$ and $\bar\alpha_\text{prev}$ are unrelated here, so this covers skipping steps too. For
# $\hat\sigma$ we add up the same two variances, with $\sigma(1)$ in the direction and $\hat\sigma$ in the noise.

# %%
slope_x0 = sp.simplify(c_x * sp.sqrt(a_t))
noise_coef = sp.simplify(c_x * sp.sqrt(1 - a_t) + c_eps)  # the coefficient of the true eps in x_prev
var_eta = sp.simplify(noise_coef**2 + c_z**2)
assert sp.simplify(slope_x0 - sp.sqrt(a_prev)) == 0
assert sp.simplify(noise_coef - sp.sqrt(1 - a_prev - sigma**2)) == 0
assert sp.simplify(var_eta - (1 - a_prev)) == 0

sigma1_sq = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)  # eq. (16) at eta = 1, squared
sigma_hat_sq = 1 - a_t / a_prev
var_hat = (1 - a_prev - sigma1_sq) + sigma_hat_sq  # direction^2 (eta = 1) + noise^2 (sigma_hat)
excess = sp.factor(sp.simplify(var_hat - (1 - a_prev)))
assert sp.simplify(excess - (a_prev - a_t) ** 2 / (a_prev * (1 - a_t))) == 0

# %%
# NBVAL_CHECK_OUTPUT
print("slope on x_0:                  ", slope_x0)
print("coefficient of the true eps:   ", noise_coef)
print("variance, any sigma:           ", var_eta)
print("variance with sigma_hat, minus 1 - abar_prev:", excess)

# %% [markdown]
# Every $\sigma$ of the family gives exactly $\mathcal N(\sqrt{\bar\alpha_\text{prev}}\,x_0, 1-\bar\alpha_\text{prev})$; $\sigma$ only
# moves variance between the two noise terms. $\hat\sigma$ overshoots by $(\bar\alpha_\text{prev}-\bar\alpha_t)^2 / (\bar\alpha_\text{prev}(1-\bar\alpha_t))$.
# That is tiny for a short step and large for a long one. Along the uniform sub-sequences of section 6.4:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'S':>5} {'step':>12} {'1-abar_prev':>12} {'excess':>10} {'excess/(1-abar_prev)':>21}")
for S in (10, 50, 1000):
    taus = samplers.timesteps(T, S, "uniform")
    rows = []
    for t, prev in zip(taus[1:], taus[:-1]):  # the last step, tau_1 -> 0, adds no noise
        e = (ab[prev] - ab[t]) ** 2 / (ab[prev] * (1 - ab[t]))
        assert (
            abs(e - (samplers.sigma_hat(ab[t], ab[prev]) ** 2 - samplers.ddim_sigma(ab[t], ab[prev], 1.0) ** 2)) < 1e-12
        )
        rows.append((t, prev, 1 - ab[prev], e))
    shown = rows if S == 10 else [max(rows, key=lambda r: r[3])]
    for t, prev, v, e in shown:
        print(f"{S:>5} {f'{t} -> {prev}':>12} {v:>12.3e} {e:>10.3e} {e / v:>21.4g}")

# %% [markdown]
# At $S = 1000$ the worst step ($2 \to 1$) adds a variance of $6.5\cdot10^{-5}$. That is a standard deviation of 0.008,
# about one grey level of an 8-bit image on the $[-1, 1]$ scale. At $S = 10$ the step $101 \to 1$ leaves noise of
# standard deviation $\sqrt{0.105} \approx 0.32$ where $0.01$ belongs, and the final step passes it straight into
# $\hat x_0$. **This is why $\hat\sigma$ collapses at small $S$**, whatever the network: even a perfect $\epsilon$
# cannot remove noise that the sampler itself adds. The variance law cannot explain why $\hat\sigma$ is the *best*
# choice at $S = 1000$ on CIFAR10 (section 6.5): with a perfect $\epsilon$, $\hat\sigma$ and $\eta = 1$ are nearly
# the same sampler there. Any difference must come from the network, and section 6.5 tests that.
#
# ## 6.3 $\sigma = 0$: a deterministic map from $x_T$ to $x_0$
#
# With $\eta = 0$ there is no noise term. The sampler then never draws a random number, and $x_0$ is a fixed function
# of $x_T$. That function is the "implicit" model of DDIM's title, and chapter 7 uses it to encode and interpolate.
# Two runs from the same $x_T$ with different random generators give the same result at $\eta = 0$, and different
# results at $\eta = 1$:

# %%
# NBVAL_CHECK_OUTPUT
x_T_small = torch.randn((512, 2), generator=torch.Generator().manual_seed(63), dtype=torch.float64)
for eta_ in (0.0, 1.0):
    runs = [
        samplers.ddim_sample(
            oracle, schedule, x_T_small, 20, eta_, generator=torch.Generator().manual_seed(k), progress=False
        )
        for k in (1, 2)
    ]
    identical = torch.equal(runs[0], runs[1])
    assert identical == (eta_ == 0.0)
    gap = (runs[0] - runs[1]).abs().max().item()
    print(f"eta = {eta_}: generators 1 and 2 give identical samples: {identical}; max |difference| = {gap:.3f}")

# %% [markdown]
# ## 6.4 Sub-sequences $\tau$: sampling on $S \ll T$ steps
#
# **Which steps.** DDIM sec. 4.2 samples on an increasing sub-sequence $\tau_1 < \dots < \tau_S$ of $\{1, \dots, T\}$:
# eq. (12) from $\tau_S$ down to $\tau_1$, with $\bar\alpha_\text{prev} = \bar\alpha_{\tau_{i-1}}$, and a last step to
# $\bar\alpha_0 = 1$. `samplers.timesteps(T, S, spacing)` offers three choices:
#
# - `"uniform"`: $\tau_i = 1 + (i-1)\lfloor T/S \rfloor$, the stride of the DDIM code in 1-based time;
# - `"quadratic"`: $\tau_i = 1 + \lfloor c_i^2 \rfloor$ with $c_i$ evenly spaced on $[0, \sqrt{0.8\,T}]$ (the paper's
#   choice for CIFAR10; it is dense near $t = 1$ and stops at $0.8\,T$);
# - `"trailing"`: $\tau_i = \mathrm{round}(iT/S)$, which ends exactly at $T$ (Lin et al. 2023, arXiv:2305.08891).

# %%
# NBVAL_CHECK_OUTPUT
for spacing in samplers.SPACINGS:
    taus = samplers.timesteps(T, 10, spacing)
    assert len(taus) == 10 and all(1 <= a < b <= T for a, b in zip(taus, taus[1:]))
    print(f"{spacing:>9}: {taus}")
assert samplers.timesteps(T, 10, "uniform")[-1] == 901 and samplers.timesteps(T, 50, "uniform")[-1] == 981
assert samplers.timesteps(T, 10, "trailing")[-1] == T and samplers.timesteps(T, T, "quadratic") == list(range(1, T + 1))

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax, S in zip(axes, (10, 50)):
    for spacing, marker in zip(samplers.SPACINGS, "o^s"):
        taus = samplers.timesteps(T, S, spacing)
        ax.plot(range(1, S + 1), [ab[t] for t in taus], marker=marker, ms=3, lw=1, label=spacing)
    ax.axhline(ab[T], color="k", lw=0.8, ls=":", label=r"$\bar\alpha_T$ (where $x_T$ lives)")
    ax.set(yscale="log", xlabel="step index $i$", ylabel=r"$\bar\alpha_{\tau_i}$", title=f"S = {S}")
axes[0].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The same sub-sequences on the timeline itself (`ddim_book.diagrams.subsequence_timeline`, which calls
# `samplers.timesteps`): grey ticks are the $T = 1000$ steps of the chain, dots the $S = 10$ that DDIM visits, and each
# arc is one step of eq. (12), one network evaluation. Look at where the dots crowd: uniform spacing puts them evenly
# from 1 to 901, quadratic packs them near $t = 1$, where the last details of the image are settled, and stops at 801.

# %%
from ddim_book.diagrams import subsequence_timeline

fig = subsequence_timeline(T, 10, ("uniform", "quadratic"))

# %% [markdown]
# **Why skipping is allowed.** The network was trained with $L_\text{simple}$, which sees the forward process only
# through its marginals $q(x_t \mid x_0)$, one $t$ at a time (chapter 3): **the marginals are all that training fixes.**
# DDIM sec. 4.2 builds a forward process on the sub-sequence alone, with kernels $q_\sigma(x_{\tau_{i-1}} \mid x_{\tau_i}, x_0)$
# (eq. (7) with $t, t-1$ replaced by $\tau_i, \tau_{i-1}$). By the variance law it has the same marginals
# $q(x_{\tau_i} \mid x_0)$, and Theorem 1 applied to it gives a weighted $L_\gamma$ over the $\tau_i$ (DDIM appendix C.1),
# every one of them a $t$ the network was trained on. So the network trained for $T$ steps fits the short process
# as well as it fits the long one, with no retraining.
#
# The variance law of section 6.2 never assumed $\text{prev} = t - 1$. With the true noise, one skip step lands
# exactly on the marginal. We check it with the probed coefficients of the code, for every step of every
# sub-sequence at $S = 10$ and every $\eta$ (the step from $x_t$ carries slope $c_x\sqrt{\bar\alpha_t}$ on $x_0$ and
# variance $(c_x\sqrt{1-\bar\alpha_t} + c_\epsilon)^2 + c_z^2$):

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'spacing':>9} {'longest skip':>13} {'max |slope - sqrt(abar_prev)|':>30} {'max |var - (1-abar_prev)|':>26}")
for spacing in samplers.SPACINGS:
    taus = samplers.timesteps(T, 10, spacing)
    pairs = list(zip(taus, [0, *taus[:-1]]))
    slope_err = var_err = 0.0
    for t, prev in pairs:
        for eta_ in (0.0, 0.2, 0.5, 1.0):
            cx, ce, cz = probe(ab[t], ab[prev], eta_).tolist()
            slope_err = max(slope_err, abs(cx * ab[t] ** 0.5 - ab[prev] ** 0.5))
            var_err = max(var_err, abs((cx * (1 - ab[t]) ** 0.5 + ce) ** 2 + cz**2 - (1 - ab[prev])))
    assert slope_err < 1e-12 and var_err < 1e-12
    longest = max(t - prev for t, prev in pairs)
    print(f"{spacing:>9} {longest:>13} {str(slope_err < 1e-12):>30} {str(var_err < 1e-12):>26}")

# %% [markdown]
# **What skipping costs.** The real sampler does not know the true noise. The best it can use is $\mathbb E[\epsilon \mid x_t]$,
# which is exactly what the oracle returns. We take one step from $x_t \sim q_t$ to prev, once with the true noise and
# once with the oracle's, and compare the result with fresh samples of $q_\text{prev}$.
#
# *The yardstick.* We use the sliced Wasserstein distance (`ddim_book.metrics.sliced_wasserstein`), computed after
# **folding**. The ring is symmetric under its 8 rotations and 8 reflections, and so are $\mathcal N(0, I)$ and the
# oracle. So every sampler's output has the same symmetry, and its 8 modes get equal weight on average. Two
# distributions with this symmetry are equal exactly when their images in one wedge of the ring are equal.
# Mapping every point into the wedge $0 \le \text{angle} \le \pi/8$ therefore loses nothing. It does remove the
# counting noise in the mode weights (about $\pm\sqrt{n/8}$ points per mode), which would otherwise hide the
# within-mode errors that tell the samplers apart (section 6.5 shows how much).


# %%
def folded_distance(x, y):
    """Sliced W2 between two 2-D point sets after folding both onto one wedge of the ring."""
    return sliced_wasserstein(fold_ring(x), fold_ring(y))


# %%
# NBVAL_CHECK_OUTPUT
n_pts = 4000
gen = torch.Generator().manual_seed(64)
print(f"{'step':>11} {'exact vs exact (4 draws)':>25} {'eta':>4} {'true eps':>9} {'oracle eps':>11}")
for t, prev in ((501, 401), (301, 201), (101, 1), (21, 1)):
    x0 = oracle.sample(n_pts, 0, gen)
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x_t_pts = schedule.q_sample(x0, t, noise=noise)
    reference = oracle.sample(n_pts, prev, gen)
    fresh = torch.tensor([folded_distance(oracle.sample(n_pts, prev, gen), reference) for _ in range(4)])
    for eta_ in (0.0, 1.0):
        z_pts = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        with_true = samplers.ddim_step(x_t_pts, noise, ab[t], ab[prev], eta=eta_, noise=z_pts)
        with_oracle = samplers.ddim_step(x_t_pts, oracle(x_t_pts, t), ab[t], ab[prev], eta=eta_, noise=z_pts)
        d_true, d_oracle = folded_distance(with_true, reference), folded_distance(with_oracle, reference)
        spread = f"{fresh.mean().item():.4f} +- {fresh.std().item():.4f}"
        print(f"{f'{t} -> {prev}':>11} {spread:>25} {eta_:>4} {d_true:>9.4f} {d_oracle:>11.4f}")

# %% [markdown]
# With the true noise, one step of any length scores like fresh exact samples (the first column). With the best
# possible prediction it is not: $\hat x_0 = \mathbb E[x_0 \mid x_t]$ is an average over everything $x_t$ is compatible
# with, so a long step towards it lands between the modes. The error grows with the length of the step. A short
# step leaves little room for it, because $\epsilon_\theta$ hardly changes along the way (exercise 6.3 makes this
# exact). Skipping is *allowed* by training, and it *costs* accuracy through the step's length. Section 6.5 measures
# what that cost adds up to over a whole run.
#
# **Why trailing matters.** The sampler starts from $x_T \sim \mathcal N(0, I)$, a stand-in for $q(x_T)$. But its first
# evaluation is at $\tau_S$, and it tells the network that $x_T$ is a sample of $q(x_{\tau_S})$. For uniform spacing at
# $S = 50$ that is $t = 981$, not $1000$. The paper's quadratic spacing stops at $t = 801$, at $S = 10$ and $50$ alike. Only
# trailing evaluates the first step where $x_T$ lives, and it does not spend its last evaluation at $t = 1$, where
# $\bar\alpha_1 = 0.9999$ and $\hat x_0 \approx x_1$ teaches nothing new:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'S':>3} {'spacing':>9} {'first t':>8} {'abar there':>11} {'/ abar_T':>9} {'last t':>7} {'abar there':>11}")
for S in (10, 50):
    for spacing in samplers.SPACINGS:
        taus = samplers.timesteps(T, S, spacing)
        first, last = taus[-1], taus[0]
        print(
            f"{S:>3} {spacing:>9} {first:>8} {ab[first]:>11.3e} {ab[first] / ab[T]:>9.2f} {last:>7} {ab[last]:>11.4f}"
        )

# %% [markdown]
# Does the mismatch matter here? We measure it on the mixture at $\eta = 0$. We run uniform spacing twice: from
# $x_T \sim \mathcal N(0, I)$, as the sampler does, and from exact samples of $q(x_{\tau_S})$, which removes the
# mismatch. We set both beside the other two spacings.

# %%
# NBVAL_CHECK_OUTPUT
x_T_pts = torch.randn((n_pts, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
exact_pts = oracle.sample(n_pts, 0, torch.Generator().manual_seed(2))
print(f"{'S':>3} {'uniform':>8} {'uniform from q(x_tau_S)':>24} {'quadratic':>10} {'trailing':>9}")
for S in (10, 50):
    start = oracle.sample(n_pts, samplers.timesteps(T, S, "uniform")[-1], torch.Generator().manual_seed(65))
    runs = [
        samplers.ddim_sample(oracle, schedule, x, S, 0.0, spacing, progress=False)
        for x, spacing in ((x_T_pts, "uniform"), (start, "uniform"), (x_T_pts, "quadratic"), (x_T_pts, "trailing"))
    ]
    d = [folded_distance(x, exact_pts) for x in runs]
    print(f"{S:>3} {d[0]:>8.4f} {d[1]:>24.4f} {d[2]:>10.4f} {d[3]:>9.4f}")

# %% [markdown]
# On this linear schedule the mismatch is invisible for uniform spacing, the one measured in the second column. At its
# first evaluated step $\bar\alpha$ is at most $3\cdot10^{-4}$ (a signal coefficient $\sqrt{\bar\alpha} \le 0.017$), so
# $q(x_{\tau_S})$ and $\mathcal N(0, I)$ are practically the same distribution, and removing the mismatch changes nothing
# beyond noise. Quadratic spacing is another matter: it starts at $t = 801$, where $\bar\alpha$ is about
# $1.5\cdot 10^{-3}$ (the table above), nearly forty times its value at $t = 1000$; its first step reads $x_T$ as a
# noisy sample of $q(x_{801})$, which it is not, and its good score at $S = 10$ comes despite that. Where the steps are placed matters far more: quadratic spacing, dense at small $t$ where the
# modes take shape, is clearly best at $S = 10$. Trailing earns its keep with schedules whose $\bar\alpha_T$ is not
# negligible next to $\bar\alpha_{\tau_S}$. Lin et al. found that it matters for image models, above all once the
# schedule is rescaled to zero terminal SNR, where $x_T$ is pure noise by construction. Even on a schedule like this one, trailing
# costs nothing and is the consistent choice.
#
# ## 6.5 The speed/quality trade-off
#
# DDIM's Table 1 crosses the noise level with the number of steps. We do the same, for
# $\eta \in \{0, 0.2, 0.5, 1, \hat\sigma\}$ and $S \in \{10, 20, 50, 100, 1000\}$, with uniform spacing (the paper's
# choice for every data set except CIFAR10). Every cell starts from the same $x_T$ and draws the same noise.
# `scripts/eta_steps_table.py` computes both tables and records the model, seeds, $n$ and wall time with each cell.
# The chapter reads the caches in `data/results/`. With `DDIM_BOOK_RECOMPUTE=1` it recomputes the mixture table,
# which takes a few minutes on one core. An MNIST cell costs about $1.3\,n S$ milliseconds on a quiet two-core CPU
# (many times more on a busy one), an hour or more for the whole table at $n = 500$, so the chapter never recomputes
# it. Run `python scripts/eta_steps_table.py --setting mnist` instead: it resumes, and skips the cells it has already
# done for the same model, settings and $n$.
#
# ### (a) The 2-D mixture with the exact oracle: the sampler's own error

# %%
mixture_file = RESULTS / "eta_steps_mixture.json"
if RECOMPUTE or not mixture_file.exists():
    script = [sys.executable, str(ROOT / "scripts" / "eta_steps_table.py"), "--setting", "mixture", "--recompute"]
    subprocess.run(script, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
mixture = json.loads(mixture_file.read_text())
STEPS, ETAS = (10, 20, 50, 100, 1000), ("0", "0.2", "0.5", "1", "sigma_hat")
mix_cells = {(c["eta"], c["steps"]): c for c in mixture["cells"]}
n_mix = mix_cells["0", 10]["n"]
mix_base = mixture["baselines"][str(n_mix)]


def print_table(cells, key, fmt, label):
    """Rows S, columns eta; a missing cell is marked 'not computed'."""
    print(label)
    print(f"{'S':>6}" + "".join(f"{'eta=' + e if e != 'sigma_hat' else 'sigma_hat':>17}" for e in ETAS))
    for S in STEPS:
        row = [format(cells[e, S][key], fmt) if (e, S) in cells else "not computed" for e in ETAS]
        print(f"{S:>6}" + "".join(f"{v:>17}" for v in row))


# %%
# NBVAL_CHECK_OUTPUT
base_f, base_p = mix_base["sliced_w2_folded"], mix_base["sliced_w2"]
print(f"n = {n_mix} samples per cell; exact vs exact over {mix_base['draws']} fresh draws of n:")
print(
    f"  folded sliced W2 {base_f['mean']:.4f} +- {base_f['sd']:.4f};  plain sliced W2 {base_p['mean']:.4f} +- {base_p['sd']:.4f}"
)
print_table(mix_cells, "sliced_w2_folded", ".4f", "folded sliced W2 to exact samples (lower is better)")
print_table(mix_cells, "mode_spread", ".4f", "within-mode spread, RMS per axis (exact: 0.15)")
print("plain sliced W2 at S = 1000: " + ", ".join(f"eta={e} {mix_cells[e, 1000]['sliced_w2']:.4f}" for e in ETAS))

# %% [markdown]
# The cache was computed by the script; the cell below recomputes the $S = 10$ row here with the same recipe
# (same $x_T$, sampler noise and exact set) and checks that it matches.

# %%
# NBVAL_CHECK_OUTPUT
seed = mix_cells["0", 10]["seed"]  # x_T from seed, the sampler's noise from seed + 1, the exact set from seed + 2
x_T_mix = torch.randn((n_mix, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
exact_mix = oracle.sample(n_mix, 0, torch.Generator().manual_seed(seed + 2))
for e in ETAS:
    eta_ = e if e == "sigma_hat" else float(e)
    out = samplers.ddim_sample(
        oracle, schedule, x_T_mix, 10, eta_, generator=torch.Generator().manual_seed(seed + 1), progress=False
    )
    live = folded_distance(out, exact_mix)
    assert abs(live - mix_cells[e, 10]["sliced_w2_folded"]) < 1e-9, (e, live)
print("S = 10 row recomputed live: matches the cache")

# %% [markdown]
# Read the folded distances against the exact-vs-exact baseline (about 0.005). At $S = 10$ every sampler is far from
# it, with modes too wide (spread 0.20 against 0.15). $\eta = 0$ is best, the stochastic ones follow in order of
# $\eta$, and $\hat\sigma$ is worst by a factor of two, its modes more than twice too wide (0.33). From $S = 20$ on,
# $\eta = 0$ is best at every $S < 1000$. The stochastic samplers now err the other way, with modes too *narrow*
# ($\eta = 1$ most), while $\hat\sigma$'s stay too wide; by $S = 100$ the two errors are about equal in size. At
# $S = 1000$ all five are at the baseline: given the exact $\epsilon$, every member of the family is a correct sampler, and $\hat\sigma$'s excess
# (section 6.2) is too small to see. So with no network error, the paper's small-$S$ pattern holds ($\eta = 0$ best,
# $\hat\sigma$ terrible). Its $S = 1000$ pattern ($\hat\sigma$ best) does not: here nothing beats the baseline, so
# nothing can be best.
#
# The last line shows why we fold. By the plain sliced distance, $\eta = 0$ would look like the *worst* sampler at
# $S = 1000$. That is only because of how many of these particular 4000 starting points fall into each mode's basin,
# and the stochastic samplers reshuffle it. The plain baseline spreads ten times wider than the folded one.
#
# ### (b) MNIST with the shipped model: sampler error plus network error
#
# The metric is the Fréchet LeNet Distance (FLD; `ddim_book.metrics`). It is the FID recipe, with the features of the
# book's small MNIST classifier in place of Inception-v3's, so its values are **not** comparable to published FIDs.
# The reference set is the 1,000 held-out digits that no model in the book trains on. FLD depends on $n$, so we read it
# beside two anchors at the same $n$ and reference: $n$ real digits (what a perfect generator scores) and $n$ images of
# clipped Gaussian noise. The classifier's mean confidence (real digits: see the anchor line) and its class
# coverage say whether the samples look like digits at all. The numbers depend on the network's weights. A cell
# computed with a different model file than the one shipped now is marked stale.

# %%
mnist_file = RESULTS / "eta_steps_mnist.json"
mnist = json.loads(mnist_file.read_text()) if mnist_file.exists() else {"cells": [], "baselines": {}}
current_sha = pretrained.entry("mnist")["sha256"]
mnist_cells = {(c["eta"], c["steps"]): c for c in mnist["cells"]}
stale = {k for k, c in mnist_cells.items() if c["model"] != current_sha}
mnist_ns = sorted({c["n"] for c in mnist_cells.values()})
print(f"current model sha256 {current_sha[:16]}...; {len(mnist_cells)} of 25 cells computed, n = {mnist_ns or 'none'}")
if stale:
    print(f"{len(stale)} cells were computed with another model file (marked *): rerun the script to refresh them")
for n_key, anchor in sorted(mnist.get("baselines", {}).items(), key=lambda kv: int(kv[0])):
    print(
        f"anchors at n = {n_key}: real vs real FLD {anchor['real_vs_real']:.2f}, noise vs real FLD "
        f"{anchor['noise_vs_real']:.1f}, confidence on real digits {anchor['real_confidence']:.3f}"
    )
shown = {
    k: {**c, "fld_s": f"{c['fld']:.1f} [{c['fld_low']:.0f},{c['fld_high']:.0f}]" + ("*" if k in stale else "")}
    for k, c in mnist_cells.items()
}
print_table(shown, "fld_s", "", "FLD [95% bootstrap interval] to the held-out digits (lower is better)")
for k, c in shown.items():
    c["conf_s"] = f"{c['confidence']:.3f}/{c['coverage']}" + ("*" if k in stale else "")
print_table(shown, "conf_s", "", "classifier confidence / classes covered (of 10)")
if mnist_cells:
    per_step = [c["wall_s"] / (c["n"] * c["steps"]) * 1e3 for c in mnist_cells.values()]
    print(f"cost: {min(per_step):.2f} to {max(per_step):.2f} ms per digit and step (sampling + scoring), as recorded")

# %% [markdown]
# ### (c) The DDIM paper's CIFAR10 numbers
#
# For comparison, these are the CIFAR10 rows of DDIM's Table 1 (arXiv:2010.02502, Table 1; FID, lower is better;
# quadratic spacing, the paper's choice for CIFAR10), as published:

# %%
# NBVAL_CHECK_OUTPUT
cifar10_fid = {  # DDIM (Song, Meng & Ermon 2021), Table 1, CIFAR10 32x32, as published
    "0": (13.36, 6.84, 4.67, 4.16, 4.04),
    "0.2": (14.04, 7.11, 4.77, 4.25, 4.09),
    "0.5": (16.66, 8.35, 5.25, 4.46, 4.29),
    "1": (41.07, 18.36, 8.01, 5.78, 4.73),
    "sigma_hat": (367.43, 133.37, 32.72, 9.99, 3.17),
}
paper_cells = {(e, S): {"fid": v} for e, row in cifar10_fid.items() for S, v in zip(STEPS, row)}
print_table(paper_cells, "fid", ".2f", "CIFAR10 FID, DDIM Table 1")

# %% [markdown]
# The paper's pattern has two parts. (i) At small $S$, smaller $\eta$ is better: $\eta = 0$ wins at every $S < 1000$,
# and $\hat\sigma$ is catastrophic at $S = 10$. (ii) At $S = 1000$ the order reverses at the top: $\hat\sigma$, DDPM's
# own CIFAR10 sampler, is best (3.17 against 4.04). One widely read review of DDIM sums the table up as
# DDPM winning at $S = T$, with DDPM taken to be $\eta = 1$. Only $\hat\sigma$ wins there: $\eta = 1$ scores 4.73, worse
# than $\eta = 0$. The cells below test both parts on our two settings, from whatever cells the caches hold.


# %%
def pattern(cells, key, label):
    """Which eta is best at each S, and where sigma_hat ranks at the smallest and largest S computed."""
    print(label)
    for S in STEPS:
        row = {e: cells[e, S][key] for e in ETAS if (e, S) in cells}
        if len(row) < len(ETAS):
            print(f"  S = {S:>4}: {len(row)} of {len(ETAS)} cells computed")
            continue
        ranked = sorted(row, key=row.get)
        print(f"  S = {S:>4}: best eta = {ranked[0]:>9}, sigma_hat ranks {ranked.index('sigma_hat') + 1} of 5")


# %%
# NBVAL_CHECK_OUTPUT
pattern(mix_cells, "sliced_w2_folded", "2-D mixture, exact oracle (folded sliced W2)")
pattern(paper_cells, "fid", "CIFAR10, DDIM Table 1 (FID)")

# %%
pattern({k: c for k, c in mnist_cells.items() if k not in stale}, "fld", "MNIST, shipped model (FLD)")


def separated(cells, label):
    """At each S: the best eta by FLD, and every other eta marked '>' when its interval lies wholly above the best
    one's (a real difference) or '~' when the two intervals overlap (a difference within the noise)."""
    print(label)
    for S in STEPS:
        row = {e: cells[e, S] for e in ETAS if (e, S) in cells}
        if len(row) < len(ETAS):
            print(f"  S = {S:>4}: {len(row)} of {len(ETAS)} cells computed")
            continue
        best = min(row, key=lambda e: row[e]["fld"])
        marks = [f"{e} {'>' if row[e]['fld_low'] > row[best]['fld_high'] else '~'}" for e in ETAS if e != best]
        print(f"  S = {S:>4}: best eta = {best:>9} (n = {row[best]['n']}); others: " + ", ".join(marks))


separated({k: c for k, c in mnist_cells.items() if k not in stale}, "MNIST, shipped model: which differences are real")

# %% [markdown]
# Two intervals side by side are a blunt test here, because the cells are not independent: every cell of a column
# starts its $i$-th digit from the same $x_T$, and the bootstrap resamples the same positions in every cell (the
# script keeps each cell's 200 resampled FLDs). When one $x_T$ gives a poor digit under $\eta = 0$ it tends to give
# one under $\eta = 0.2$ too, so the two FLDs rise and fall together and their *difference* varies much less than
# either. The paired bootstrap (`metrics.paired_difference`) measures that difference directly. The table gives, for
# each $\eta$, $\mathrm{FLD}(\eta) - \mathrm{FLD}(\eta = 0)$ with its paired 95% interval; a `*` marks an interval
# that excludes 0, a difference larger than its noise (positive: worse than $\eta = 0$).

# %%
from ddim_book.metrics import paired_fld_change


def paired_against(cells, reference="0"):
    """FLD(eta) - FLD(reference) at each S with the paired 95% interval, where the cells kept their resampled FLDs."""
    print(f"{'':>8}" + "".join(f"{'eta = ' + e:>22}" for e in ETAS if e != reference))
    for S in STEPS:
        row = {e: cells[e, S] for e in ETAS if (e, S) in cells}
        if reference not in row or any("fld_boot" not in c for c in row.values()):
            print(f"S = {S:>4}: cells missing, or computed without their resampled FLDs (rerun the script)")
            continue
        entries = []
        for e in (e for e in ETAS if e != reference):
            if e not in row:
                entries.append(f"{'-':>22}")
                continue
            d = paired_fld_change(row[e], row[reference])
            star = "*" if d["excludes_zero"] else " "
            entries.append(f"{d['diff']:+7.1f} [{d['low']:+6.1f},{d['high']:+6.1f}]{star}")
        print(f"S = {S:>4}" + "".join(f"{x:>22}" for x in entries))


paired_against({k: c for k, c in mnist_cells.items() if k not in stale})

# %% [markdown]
# The same table was first computed with the book's first shipped model, trained on far fewer images (its cells are
# kept in `data/results/eta_steps_mnist_previous_model.json`, with the file's sha256 and n; the model card records
# how many images it saw):

# %%
# NBVAL_CHECK_OUTPUT
previous = json.loads((RESULTS / "eta_steps_mnist_previous_model.json").read_text())
previous_cells = {(c["eta"], c["steps"]): c for c in previous["cells"]}
previous_n = sorted({c["n"] for c in previous["cells"]})
shipped_entry = pretrained.entry("mnist")
earlier = shipped_entry.get("quality", {}).get("previous_model", {})
if earlier.get("sha256") == previous["model"]:
    shipped_images = shipped_entry["images_seen"]
    print(
        f"that model saw {earlier['images_seen']:,} training images, the shipped one {shipped_images:,} "
        f"({shipped_images / earlier['images_seen']:.1f} times as many)"
    )
pattern(previous_cells, "fld", f"MNIST, the first model (sha256 {previous['model'][:12]}..., n = {previous_n})")

# %% [markdown]
# On the mixture, part (i) holds exactly as in the paper. Part (ii) does not, and cannot: at $S = 1000$ all five
# samplers sit on the exact-vs-exact baseline, and which one ranks first is noise. With a perfect $\epsilon$ there is
# no error for extra noise to hide. This suggests why $\hat\sigma$ can win at $S = T$ with a *network*. Fresh noise
# lets a stochastic sampler forget an error made at one step, while a deterministic sampler carries every error of
# $\epsilon_\theta$ along to the end. More noise forgets faster, and with 1000 short steps $\hat\sigma$'s own excess is
# negligible (section 6.2). That is an explanation, not a proof.
#
# **What the digits say.** With the shipped model (1,000 digits per cell, each FLD with its 95% interval), part (i)
# holds for $\hat\sigma$: at $S = 10$ and $20$ it is far worse than every $\eta$, as on CIFAR10, and from $S = 50$ on it
# is within the noise of the others. Among $\eta = 0, 0.2, 0.5$ and $1$, no difference is larger than its noise at any
# $S$: side by side every interval overlaps the best one's (in "which differences are real" every $\eta$ is marked `~`;
# only $\hat\sigma$ is marked `>`, at $S = 10$ and $20$), and paired against $\eta = 0$ every one of their intervals
# contains 0 (the only `*` in the last table are $\hat\sigma$'s). Pairing narrows the intervals little here, unlike for two checkpoints of one training run
# (BENCHMARKS.md, "Training longer"): with $\eta > 0$ fresh noise enters at every step, so one $x_T$ ends as a different
# digit under each $\eta$ and the two sets are paired only loosely. So DDIM's headline advantage of $\eta = 0$ at small
# $S$ (CIFAR10 at $S = 10$: FID 13.4 against 41.1 for $\eta = 1$) does not show on these digits: the deterministic and
# the stochastic samplers are equally good within what 1,000 samples can resolve, and at $S = 10$ and $20$ the point
# estimates even lean slightly the other way. The book's first shipped model, trained on far fewer images (the ratio
# is printed above its table), had $\eta = 1$ ahead at every $S$ (250 digits per cell, no intervals). With more
# training that lead shrank into the noise, which fits the explanation above (a network with larger errors gains more
# from noise that forgets them); two models are not a proof of it. At $S = 1000$, where the paper finds $\hat\sigma$
# best, each cell has 500 digits (they cost ten times the $S = 100$ ones). $\eta = 0$ and $0.5$ have the higher point
# estimates there, but every interval, side by side or paired, is wide enough to contain the others, so at this $n$
# the ranking is noise.
#
# The figure puts the three tables side by side (log scales). The dotted lines are the baselines: exact vs exact for
# the mixture, real vs real and noise vs real for MNIST.

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 3))
panels = [
    (axes[0], mix_cells, "sliced_w2_folded", "2-D mixture, exact oracle", "folded sliced W2"),
    (axes[1], {k: c for k, c in mnist_cells.items() if k not in stale}, "fld", "MNIST, shipped U-Net", "FLD"),
    (axes[2], paper_cells, "fid", "CIFAR10 (DDIM Table 1)", "FID"),
]
for ax, cells, key, title, ylabel in panels:
    for e, marker in zip(ETAS, "osd^v"):
        pts = [(S, cells[e, S][key]) for S in STEPS if (e, S) in cells]
        if pts:
            label = r"$\hat\sigma$" if e == "sigma_hat" else rf"$\eta={e}$"
            ax.plot(*zip(*pts), marker=marker, ms=3, lw=1, label=label)
    ax.set(xscale="log", yscale="log", xlim=(7, 1400), xlabel="steps S", ylabel=ylabel, title=title)
    ax.title.set_fontsize(8)
axes[0].axhline(base_f["mean"], color="k", ls=":", lw=0.8)
for anchor in mnist.get("baselines", {}).values():
    axes[1].axhline(anchor["real_vs_real"], color="k", ls=":", lw=0.8)
    axes[1].axhline(anchor["noise_vs_real"], color="grey", ls=":", lw=0.8)
if not any(k not in stale for k in mnist_cells):
    axes[1].text(0.5, 0.5, "not computed", ha="center", va="center", transform=axes[1].transAxes)
axes[2].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Finally, what the samples look like: 8 digits from one fixed $x_T$, for $S \in \{10, 50\}$ and $\eta \in \{0, 1\}$,
# computed live with the shipped model. At $\eta = 0$ the digits for $S = 10$ and $S = 50$ should be recognisably the
# same ones, the "consistency" of the deterministic map (DDIM sec. 5.2) that chapter 7 exploits. At $\eta = 1$ the
# fresh noise lets the two step counts drift apart.

# %%
model, model_schedule = pretrained.load("mnist")
x_T_digits = torch.randn((8, 1, 28, 28), generator=torch.Generator().manual_seed(66))
fig, axes = plt.subplots(2, 2, figsize=(8, 2.4))
for row, S in enumerate((10, 50)):
    for col, eta_ in enumerate((0.0, 1.0)):
        digits = samplers.ddim_sample(
            model, model_schedule, x_T_digits, S, eta_, generator=torch.Generator().manual_seed(67), progress=False
        )
        show_grid(digits.clamp(-1, 1), ax=axes[row, col], title=f"S = {S}, eta = {eta_}", nrow=8)
fig.tight_layout()

# %% [markdown]
# ## Summary
#
# - The DDIM update (eq. (12)) is a draw from chapter 5's posterior $q_\sigma(x_\text{prev} \mid x_t, \hat x_0)$: "predicted
#   $x_0$" $\sqrt{\bar\alpha_\text{prev}}\,\hat x_0$, plus "direction pointing to $x_t$" $\sqrt{1-\bar\alpha_\text{prev}-\sigma_t^2}\,\epsilon_\theta$,
#   plus "random noise" $\sigma_t z$. It works because the noise implied by $\hat x_0$ is the predicted $\epsilon$.
#   `samplers.ddim_step` matches it, symbolically and by probing its three coefficients.
# - $\sigma_t(\eta)$ (eq. (16)) only moves variance between the two noise terms: with the true noise every $\eta$
#   reproduces the marginal, for any step length. $\hat\sigma$ overshoots by $(\bar\alpha_\text{prev}-\bar\alpha_t)^2/(\bar\alpha_\text{prev}(1-\bar\alpha_t))$,
#   which is negligible at $S = 1000$ and ruinous at $S = 10$.
# - At $\eta = 0$ sampling is a deterministic function of $x_T$.
# - Training fixes only the marginals $q(x_t \mid x_0)$, so the network serves any sub-sequence $\tau$ (DDIM sec. 4.2).
#   Skipping costs accuracy through the step length, because $\hat x_0$ is a conditional mean. Trailing spacing
#   evaluates the first step where $x_T$ lives; on the mixture with the linear schedule that makes no measurable
#   difference, while quadratic spacing helps a lot at small $S$.
# - With the exact oracle, $\eta = 0$ is best at small $S$ and $\hat\sigma$ worst, as on CIFAR10. At $S = 1000$ every
#   sampler is exact, so $\hat\sigma$'s CIFAR10 win at $S = 1000$ must come from the network's errors, not the sampler.
#
# ## Exercises
#
# **6.1 (code).** Implement the DDIM step: `my_ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise) -> x_prev` (eq. (12)
# with $\sigma_t(\eta)$ of eq. (16); the alpha_bars are floats, `alpha_bar_prev = 1` at the last step). Fill in the exercise
# cell and run it: `ch06.check_ddim_step` compares your function with `samplers.ddim_step` on consecutive and skipping
# steps, the last step, $\eta \in \{0, 0.5, 1\}$ with given noise, images and 2-D points. The solution cell after it holds a
# worked answer.


# %% tags=["exercise"]
def my_ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    # the predicted x_0, sigma_t(eta) of eq. (16), then the three terms of eq. (12)
    return ...


result = ch06.check_ddim_step(my_ddim_step)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    x0_hat = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t**0.5
    sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)) ** 0.5
    direction = max(1 - alpha_bar_prev - sigma**2, 0.0) ** 0.5  # >= 0 exactly; max() removes rounding below 0
    return alpha_bar_prev**0.5 * x0_hat + direction * eps + sigma * noise


result = ch06.check_ddim_step(my_ddim_step)

# %% [markdown]
# **6.2 (code).** Implement the uniform and the trailing sub-sequences, `my_uniform(T, S)` and `my_trailing(T, S)`, each
# returning `[tau_1, ..., tau_S]` (1-based, increasing). The graders compare them with `samplers.timesteps` for several $T$
# and $S$, including $S$ that do not divide $T$. Watch the rounding of the trailing one.


# %% tags=["exercise"]
def my_uniform(T, S):
    return ...


def my_trailing(T, S):
    return ...


result = ch06.check_uniform_timesteps(my_uniform)
result = ch06.check_trailing_timesteps(my_trailing)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_uniform(T, S):
    return [1 + i * (T // S) for i in range(S)]  # start at t = 1, integer stride T // S


def my_trailing(T, S):
    return [(2 * i * T + S) // (2 * S) for i in range(1, S + 1)]  # round(i T / S) with halves up, in integers


result = ch06.check_uniform_timesteps(my_uniform)
result = ch06.check_trailing_timesteps(my_trailing)

# %% [markdown]
# **6.3 (pen and paper).** Take two $\eta = 0$ steps $t \to s \to r$ ($\bar\alpha_t < \bar\alpha_s < \bar\alpha_r$) that use the
# *same* $\epsilon$ at both steps, and show that they land exactly where the single step $t \to r$ lands. (Hint: the
# $\hat x_0$ computed at $s$ from $x_s$ with that $\epsilon$ equals the one computed at $t$.) Conclude that a
# deterministic step has no error of its own: all the error of skipping comes from $\epsilon_\theta(x_s, s)$ differing from
# $\epsilon_\theta(x_t, t)$. Then explain why the same argument fails for $\eta > 0$ even with the true $\epsilon$ at
# each step. The cell checks the first claim numerically; worked solution: appendix C.

# %%
gen = torch.Generator().manual_seed(68)
x_start, eps_fixed = torch.randn((2, 16, 2), generator=gen, dtype=torch.float64)
via_s = samplers.ddim_step(samplers.ddim_step(x_start, eps_fixed, ab[900], ab[500]), eps_fixed, ab[500], ab[100])
direct_step = samplers.ddim_step(x_start, eps_fixed, ab[900], ab[100])
assert (via_s - direct_step).abs().max().item() < 1e-10
print("two eta = 0 steps with one eps equal one long step:", (via_s - direct_step).abs().max().item() < 1e-10)
