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
# # Chapter 7 — DDIM as an ODE: encoding, consistency, interpolation
#
# With $\eta = 0$ the DDIM sampler of chapter 6 adds no noise: the generated image is a fixed function of the
# starting latent $x_T$. This chapter shows what that function is. The deterministic update is exactly one Euler
# step of an ordinary differential equation (DDIM eqs. (13)-(14)), so generation is the numerical solution of an ODE,
# and running the solver the other way **encodes** an image into its latent. Three properties follow, and we
# measure each with the shipped MNIST model: images can be reconstructed from their latents, a latent keeps its
# digit whatever number of steps decodes it, and latents can be interpolated.
#
# In this chapter you will be able to
#
# - prove with sympy that the $\eta = 0$ step of DDIM eq. (12) is an Euler step of
#   $d\bar x = \epsilon_\theta(\bar x / \sqrt{1 + \sigma^2})\, d\sigma$ with $\bar x = x / \sqrt{\bar\alpha}$ and $\sigma = \sqrt{1 - \bar\alpha} / \sqrt{\bar\alpha}$;
# - solve that ODE exactly for Gaussian data and watch DDIM converge to the solution at first order;
# - encode digits with `samplers.ddim_invert`, decode them again, and compare the reconstruction error with the DDIM paper's;
# - show that one latent decodes to the same digit for every number of steps $S$;
# - interpolate between latents with slerp, and explain why linear interpolation fails in high dimension.
#
# **Notation.** The DDIM paper writes $\alpha_t$ for what this book (and DDPM) calls $\bar\alpha_t$, the cumulative
# product. Every DDIM formula quoted here is translated: the paper's $\alpha_t$ is our $\bar\alpha_t$.
#
# The reconstruction table of section 3 and the consistency numbers of section 4 come from
# `data/results/reconstruction.json`, written by `python scripts/reconstruction_table.py`; set
# `DDIM_BOOK_RECOMPUTE=1` to rerun it while the chapter builds (a few minutes on a 2-core CPU).

# %%
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import mpmath
import sympy as sp
import torch

from ddim_book import paths, pretrained, samplers
from ddim_book.data import mnist_dataset
from ddim_book.exercises import ch07
from ddim_book.oracles import GaussianOracle
from ddim_book.plotting import book_style, image_grid

book_style()
# one thread: as fast as two for these batch sizes on a shared machine, and the printed numbers do not depend on it
torch.set_num_threads(1)
RECOMPUTE = os.environ.get("DDIM_BOOK_RECOMPUTE") == "1"
ROOT = Path(pretrained.__file__).resolve().parents[1]  # the repository (for runs/ and scripts/)
model, schedule = pretrained.load("mnist")  # the shipped EMA U-Net and its schedule (DDPM's linear one, T = 1000)
held_out = mnist_dataset("held_out")[0]  # 1,000 digits the model never saw, pixels in [-1, 1]


def show_rows(images, ncol, ax, row_labels=(), title=None):
    """Draw (N, 1, 28, 28) images as a grid of ``ncol`` columns, with a label in front of each row."""
    ax.imshow(image_grid(images, nrow=ncol), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([14 + 29 * r for r in range(len(row_labels))], row_labels, fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)


# %% [markdown]
# ## 1. The deterministic step is an Euler step
#
# Take DDIM eq. (12) with $\sigma_t = 0$, in our notation, for a step from $\bar\alpha_t$ to a less noisy $\bar\alpha_{t'}$ (in
# sampling, $t'$ is the previous element of the sub-sequence $\tau$):
#
# $$x_{t'} = \sqrt{\bar\alpha_{t'}}\; \hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\; \epsilon_\theta(x_t, t), \qquad
#   \hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\, \epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}.$$
#
# Divide by $\sqrt{\bar\alpha_{t'}}$ and name the two quantities that appear:
#
# $$\bar x = \frac{x}{\sqrt{\bar\alpha}}, \qquad \sigma = \frac{\sqrt{1 - \bar\alpha}}{\sqrt{\bar\alpha}} .$$
#
# $\bar x$ is the sample with the signal's shrinking undone, and $\sigma$ is the noise level relative to the signal
# ($\sigma^2 = 1/\mathrm{SNR}$). sympy shows that the update becomes $\bar x_{t'} = \bar x_t + (\sigma_{t'} - \sigma_t)\,\epsilon_\theta$,
# and that the network's input is $x_t = \bar x_t / \sqrt{1 + \sigma_t^2}$:

# %%
# NBVAL_CHECK_OUTPUT
a_t, a_next = sp.symbols("alphabar_t alphabar_t'", positive=True)
x, eps = sp.symbols("x_t epsilon", real=True)
x0_hat = (x - sp.sqrt(1 - a_t) * eps) / sp.sqrt(a_t)  # DDIM eq. (9)
x_next = sp.sqrt(a_next) * x0_hat + sp.sqrt(1 - a_next) * eps  # DDIM eq. (12) with sigma_t = 0


def sigma_of(a):
    return sp.sqrt(1 - a) / sp.sqrt(a)


xbar_t, xbar_next = x / sp.sqrt(a_t), x_next / sp.sqrt(a_next)
euler = xbar_t + (sigma_of(a_next) - sigma_of(a_t)) * eps
assert sp.simplify(xbar_next - euler) == 0
assert sp.simplify(xbar_t / sp.sqrt(1 + sigma_of(a_t) ** 2) - x) == 0
print("(xbar_t' - xbar_t) / epsilon =", sp.simplify((xbar_next - xbar_t) / eps))
print("xbar_t / sqrt(1 + sigma_t^2) =", sp.simplify(xbar_t / sp.sqrt(1 + sigma_of(a_t) ** 2)))

# %% [markdown]
# The first line is $\sigma_{t'} - \sigma_t$. So the DDIM step (DDIM eq. (13)) is exactly one step of **Euler's method**,
# with step size $\sigma_{t'} - \sigma_t$, for the ODE
#
# $$\frac{d\bar x}{d\sigma} = \epsilon_\theta\Big(\frac{\bar x}{\sqrt{1 + \sigma^2}}, \sigma\Big) \qquad \text{(DDIM eq. (14))},$$
#
# where the network is told the time $t$ whose $\sigma_t$ is $\sigma$. Sampling integrates from the large $\sigma$ of $x_T$
# down to $\sigma = 0$, where $\bar x = x_0$; the DDIM sub-sequence $\tau$ only chooses the grid of $\sigma$ values. With DDPM's
# linear schedule $\sigma$ spans more than four orders of magnitude:

# %%
# NBVAL_CHECK_OUTPUT
sigma_table = ((1 - schedule.alpha_bars) / schedule.alpha_bars).sqrt()
assert torch.allclose(sigma_table[1:], schedule.snr()[1:].rsqrt(), rtol=1e-12)
print(f"{'t':>5} {'alphabar_t':>11} {'sigma_t':>10}")
for t in (1, 10, 100, 300, 500, 700, 900, 1000):
    print(f"{t:5d} {schedule.alpha_bars[t].item():11.6f} {sigma_table[t].item():10.4f}")

# %% [markdown]
# The package's `samplers.ddim_step` with `eta=0` is the same map, to rounding:

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(70)
x_img, eps_img = (torch.randn((3, 1, 28, 28), generator=gen, dtype=torch.float64) for _ in range(2))
for t, t_next in ((1000, 980), (500, 400), (20, 1), (1, 0)):
    step = samplers.ddim_step(x_img, eps_img, schedule.alpha_bars[t], schedule.alpha_bars[t_next], eta=0.0)
    h_step = sigma_table[t_next] - sigma_table[t]
    euler_num = (x_img / schedule.alpha_bars[t].sqrt() + h_step * eps_img) * schedule.alpha_bars[t_next].sqrt()
    assert torch.allclose(step, euler_num, rtol=1e-10, atol=1e-10)
    print(f"t = {t:4d} -> {t_next:3d}: ddim_step(eta=0) == Euler step in sigma (step size {h_step.item():+.4f})")

# %% [markdown]
# Two consequences. First, an ODE's flow is invertible: integrating from $\sigma = 0$ up to $\sigma_T$ maps an image to its
# latent, and the latent determines the image. Second, Euler's method has **first-order** error: halving every step
# halves the gap to the exact flow. Both can be checked exactly on data whose ODE we can solve.
#
# ## 2. An ODE we can solve: Gaussian data
#
# For $x_0 \sim \mathcal{N}(m, s^2 I)$ the perfect predictor is known in closed form (chapter 3): $x_t \sim \mathcal{N}(\sqrt{\bar\alpha_t}\, m, v_t I)$
# with $v_t = \bar\alpha_t s^2 + 1 - \bar\alpha_t$, and $\epsilon(x_t, t) = -\sqrt{1 - \bar\alpha_t}\, \nabla \log q_t(x_t) = \sqrt{1 - \bar\alpha_t}\,(x_t - \sqrt{\bar\alpha_t}\, m) / v_t$.
# `GaussianOracle` computes exactly this. In the coordinates $(\bar x, \sigma)$, with $\bar\alpha = 1 / (1 + \sigma^2)$, the ODE becomes linear
# and sympy solves it:

# %%
# NBVAL_CHECK_OUTPUT
sigma, m, sd, h = sp.symbols("sigma m s h", positive=True)
xbar = sp.symbols("xbar", real=True)
eps_oracle = sp.sqrt(1 - a_t) * (x - sp.sqrt(a_t) * m) / (a_t * sd**2 + 1 - a_t)
eps_in_xbar = eps_oracle.subs(x, xbar * sp.sqrt(a_t)).subs(a_t, 1 / (1 + sigma**2))
assert sp.simplify(eps_in_xbar - sigma * (xbar - m) / (sd**2 + sigma**2)) == 0
X = sp.Function("xbar")
ode = sp.Eq(X(sigma).diff(sigma), sigma * (X(sigma) - m) / (sd**2 + sigma**2))
solution = sp.dsolve(ode).rhs
assert sp.simplify(solution.diff(sigma) - ode.rhs.subs(X(sigma), solution)) == 0
print("epsilon in (xbar, sigma):", sp.simplify(eps_in_xbar))
print("xbar(sigma) =", solution)

# %% [markdown]
# $\bar x - m$ scales like $\sqrt{s^2 + \sigma^2}$. Going from $x_T$ at $\sigma_T$ down to $\sigma = 0$ (where $\bar x = x_0$) and translating
# back, the exact ODE map is linear:
#
# $$x_0 = m_0 + \sqrt{v_0 / v_T}\,(x_T - m_T), \qquad m_t = \sqrt{\bar\alpha_t}\, m, \quad v_0 = s^2 .$$
#
# It is the map that carries $\mathcal{N}(m_T, v_T)$ onto the data distribution $\mathcal{N}(m, s^2)$ without mixing coordinates
# (sympy checks the translation below); the end of this section proves that the ODE keeps every marginal on the way. One Euler step
# from $\sigma$ to $\sigma + h$ multiplies $\bar x - m$ by $1 + h\sigma / (s^2 + \sigma^2)$, where the exact flow multiplies it by
# $\sqrt{(s^2 + (\sigma + h)^2) / (s^2 + \sigma^2)}$; they differ at second order in $h$, the signature of a first-order method:

# %%
# NBVAL_CHECK_OUTPUT
a_T = sp.symbols("alphabar_T", positive=True)
sigma_T = sigma_of(a_T)
exact_gain = sp.sqrt(sd**2 / (sd**2 + sigma_T**2)) / sp.sqrt(a_T)  # (x_0 - m) / (x_T - m_T), from the solution above
v_T = a_T * sd**2 + 1 - a_T
assert sp.simplify(exact_gain - sp.sqrt(sd**2 / v_T)) == 0
euler_factor = 1 + h * sigma / (sd**2 + sigma**2)
exact_factor = sp.sqrt((sd**2 + (sigma + h) ** 2) / (sd**2 + sigma**2))
local_error = sp.factor(sp.series(exact_factor - euler_factor, h, 0, 3).removeO())
assert sp.simplify(local_error - h**2 * sd**2 / (2 * (sd**2 + sigma**2) ** 2)) == 0
print("(x_0 - m) / (x_T - m_T) =", sp.simplify(exact_gain), " = sqrt(v_0 / v_T)")
print("exact factor - Euler factor =", local_error, "+ O(h^3)")

# %% [markdown]
# **Why the flow keeps every marginal.** The claim is stronger than "the endpoints match": at every $\sigma$ along the
# way, the ODE carries the distribution of $\bar x$ onto the noisy marginal at that $\sigma$. In $\bar x$ the marginals are
# simple: $\bar x = x_0 + \sigma\epsilon$, so the density $p_\sigma$ of $\bar x$ is the data density smoothed by
# $\mathcal N(0, \sigma^2 I)$, and the exact $\epsilon$-predictor is $\mathbb E[\epsilon \mid \bar x] = -\sigma \nabla \log p_\sigma(\bar x)$ (Tweedie's
# formula, chapter 3). A flow $d\bar x/d\sigma = u(\bar x, \sigma)$ transports a family of densities $p_\sigma$ exactly when
# the continuity equation $\partial_\sigma p_\sigma + \nabla\cdot(p_\sigma u) = 0$ holds. With $u = -\sigma\nabla\log p_\sigma$,
# $p_\sigma u = -\sigma\nabla p_\sigma$, so the continuity equation is the heat equation $\partial_\sigma p_\sigma = \sigma\,\Delta p_\sigma$,
# which every Gaussian smoothing satisfies. That is the general argument, for any data density. sympy checks it where
# the density is explicit: the Gaussian above, and a two-component Gaussian mixture with arbitrary weights, means
# and widths (1-D, which is enough: the smoothing acts on each coordinate alike):

# %%
# NBVAL_CHECK_OUTPUT
xb = sp.symbols("xbar", real=True)
w, m_1, m_2 = sp.symbols("w m_1 m_2", real=True)
s_1, s_2 = sp.symbols("s_1 s_2", positive=True)


def smoothed(mean, var):  # N(xbar; mean, var + sigma^2): a Gaussian data component, smoothed to level sigma
    return sp.exp(-((xb - mean) ** 2) / (2 * (var + sigma**2))) / sp.sqrt(2 * sp.pi * (var + sigma**2))


for label, parts in (
    ("Gaussian data", [(1, smoothed(m, sd**2))]),
    ("two-component mixture", [(w, smoothed(m_1, s_1**2)), (1 - w, smoothed(m_2, s_2**2))]),
):
    density = sum(weight * part for weight, part in parts)
    velocity = -sigma * sp.diff(sp.log(density), xb)  # the exact eps, i.e. d xbar / d sigma of DDIM eq. (14)
    assert sp.cancel(sp.together(density * velocity + sigma * sp.diff(density, xb))) == 0  # p u = -sigma dp/dxbar
    # so dp/dsigma + d(p u)/dxbar = sum of weight * (d part/dsigma - sigma d^2 part/dxbar^2): the heat equation
    assert all(sp.simplify(sp.diff(part, sigma) - sigma * sp.diff(part, xb, 2)) == 0 for _, part in parts)
    print(f"{label}: dp/dsigma + d(p u)/dxbar = 0 with u = E[eps | xbar] = -sigma d log p/dxbar")
velocity_gauss = -sigma * sp.diff(sp.log(smoothed(m, sd**2)), xb)
assert sp.simplify(velocity_gauss - sigma * (xb - m) / (sd**2 + sigma**2)) == 0  # the eps solved above

# %% [markdown]
# Now the sampler itself. We run `samplers.ddim_sample` with the oracle as its model, data $m = 0.3$, $s = 0.5$, from
# random starting points. Everything is linear, so the output is $m + G_S\,(x_{\tau_S} - m_{\tau_S})$ for one number $G_S$,
# the same for every pixel. We measure $G_S$ from the sampler, recompute it as the product of the Euler factors, and
# compare with the exact gain $\sqrt{v_0 / v_{\tau_S}}$ from the sampler's first time $\tau_S$ (with the uniform spacing
# $\tau_S = 1 + (S - 1)\,T/S$). The relative error times $S$ settles to a constant: first-order convergence.

# %%
# NBVAL_CHECK_OUTPUT
m0, s0 = 0.3, 0.5
oracle = GaussianOracle(schedule, mean=m0, std=s0, shape=(1, 28, 28))
ab = schedule.alpha_bars.tolist()
x_start = torch.randn((4, 1, 28, 28), generator=torch.Generator().manual_seed(71), dtype=torch.float64)
step_counts = (10, 20, 50, 100, 200, 500, 1000)
decode_errors = []
print(
    f"{'S':>5} {'tau_S':>6} {'G_S (sampler)':>14} {'G_S (product)':>14} {'exact gain':>11} {'rel. error':>11} {'S x error':>10}"
)
for S in step_counts:
    taus = samplers.timesteps(schedule.T, S)
    t_S = taus[-1]
    out = samplers.ddim_sample(oracle, schedule, x_start, steps=S, progress=False)
    gains = ((out - m0) / (x_start - math.sqrt(ab[t_S]) * m0)).flatten()
    assert (gains.max() - gains.min()).item() < 1e-9  # one gain for every pixel: the map is affine
    sig = [0.0] + [math.sqrt((1 - ab[t]) / ab[t]) for t in taus]
    product = math.prod(1 + (sig[i - 1] - sig[i]) * sig[i] / (s0**2 + sig[i] ** 2) for i in range(1, S + 1))
    product /= math.sqrt(ab[t_S])  # x_bar = x / sqrt(alphabar) at the start
    exact = math.sqrt(s0**2 / (ab[t_S] * s0**2 + 1 - ab[t_S]))
    g = gains.median().item()
    assert abs(g - product) < 1e-10
    decode_errors.append(g / exact - 1)
    print(f"{S:5d} {t_S:6d} {g:14.6f} {product:14.6f} {exact:11.6f} {g / exact - 1:11.3e} {S * (g / exact - 1):10.3f}")

# %% [markdown]
# The Euler steps undershoot (the gain is too small: samples come out a little too concentrated), by about $3/S$ of the
# exact gain. Even at $S = T = 1000$ the error is not zero, because the ODE is continuous and DDPM's 1000 steps are just
# one grid on it.
#
# **Encoding.** `samplers.ddim_invert` integrates the same ODE upwards, from $\sigma = 0$ to $\sigma_{\tau_S}$. Step $i$ goes from
# $\tau_{i-1}$ (with $\tau_0 = 0$, $\bar\alpha_0 = 1$) to $\tau_i$, using $\hat x_0$ and $\epsilon$ from the current point:
#
# $$x_{\tau_i} = \sqrt{\bar\alpha_{\tau_i}}\; \hat x_0 + \sqrt{1 - \bar\alpha_{\tau_i}}\; \epsilon_\theta(x_{\tau_{i-1}}, \tau_i), \qquad
#   \hat x_0 = \frac{x_{\tau_{i-1}} - \sqrt{1 - \bar\alpha_{\tau_{i-1}}}\, \epsilon_\theta(x_{\tau_{i-1}}, \tau_i)}{\sqrt{\bar\alpha_{\tau_{i-1}}}} .$$
#
# The network is asked at the current point but with the target time $\tau_i$: an exact inverse of the decoding step
# would need $\epsilon$ at the unknown end point, and at the first step $t = 0$ is not a time the network was trained on.
# So decoding after encoding does not return $x_0$ exactly; the gap is again a discretisation error and shrinks at
# first order. With the oracle (data drawn from $\mathcal{N}(0.3, 0.5^2)$) the per-dimension MSE of the round trip falls as
# $1/S^2$, and the encoded latents have the spread of $q_{\tau_S} \approx \mathcal{N}(0, I)$, a standard deviation close to 1:

# %%
# NBVAL_CHECK_OUTPUT
x0_gauss = oracle.sample(4, generator=torch.Generator().manual_seed(72))
round_trip_mse = []
print(f"{'S':>5} {'round-trip MSE':>15} {'MSE x S^2':>10} {'latent std':>11}")
for S in step_counts[:5]:
    latent = samplers.ddim_invert(oracle, schedule, x0_gauss, steps=S, progress=False)
    back = samplers.ddim_sample(oracle, schedule, latent, steps=S, progress=False)
    round_trip_mse.append((back - x0_gauss).pow(2).mean().item())
    print(f"{S:5d} {round_trip_mse[-1]:15.3e} {round_trip_mse[-1] * S**2:10.2f} {latent.std().item():11.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(step_counts, [abs(e) for e in decode_errors], "o-", label=r"decoding: $|G_S / G - 1|$")
ax.loglog(step_counts[:5], [math.sqrt(v) / s0 for v in round_trip_mse], "s-", label=r"round trip: RMS error / $s$")
ax.loglog(step_counts, [3 / S for S in step_counts], "k:", lw=0.8, label="slope -1")
ax.set(xlabel="number of steps S", ylabel="relative error", title="DDIM on exact Gaussian data: first order")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Encoding real digits
#
# Now the shipped network. We encode eight held-out digits (digits the model never saw in training) with
# `samplers.ddim_invert`, and decode the latents with `samplers.ddim_sample`, with the same $S$ both ways:

# %%
x0_digits = held_out[:8]
rows, labels = [x0_digits], ["x_0"]
for S in (10, 50):
    latent = samplers.ddim_invert(model, schedule, x0_digits, steps=S, progress=False)
    rows.append(samplers.ddim_sample(model, schedule, latent, steps=S, progress=False).clamp(-1, 1))
    labels.append(f"S={S}")
    mse = (rows[-1] - x0_digits).pow(2).flatten(1).mean(1)
    print(
        f"S = {S:3d}: latent std {latent.std().item():.3f}, per-digit MSE " + " ".join(f"{v:.4f}" for v in mse.tolist())
    )
rows.insert(1, latent.clamp(-2, 2) / 2)
labels.insert(1, "x_T")
fig, ax = plt.subplots(figsize=(5.5, 3.2))
show_rows(torch.cat(rows), 8, ax, labels, title="encode with ddim_invert, decode with ddim_sample")
fig.tight_layout()
plt.show()

# %% [markdown]
# At $S = 50$ the decoded digits are the originals; at $S = 10$ they are recognisably the same digits, with visible
# changes in stroke and shape. The latents (second row,
# the $S = 50$ encodings, scaled by 1/2 for display) look noisy, but they are not white noise: the outline of each digit
# is still visible in them. The encoding is a deterministic function of the image, and a latent carries its image's
# structure in a form that the decoder, and only the decoder, unpacks. The error as a function of $S$, on the first 100
# held-out digits, from the cache, with 95% intervals over the digits:

# %%
record_path = paths.results_dir() / "reconstruction.json"
if RECOMPUTE:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "reconstruction_table.py")], check=True, cwd=ROOT)
record = json.loads(record_path.read_text())
current = pretrained.entry("mnist")["sha256"]
print(f"{record['command']}: n = {record['n']} held-out digits, {record['wall_time_s']} s")
if record["model"]["sha256"] != current:
    print("NOTE: the cache was made with a different model than the shipped one; rerun the script")
# DDIM paper (Song et al. 2021), Table 2: per-dimension MSE of the round trip on the CIFAR10 test set, rounded to 1e-4
published_cifar10 = {10: 0.014, 20: 0.0065, 50: 0.0023, 100: 0.0009, 200: 0.0004, 500: 0.0001, 1000: 0.0001}
print(
    f"\n{'S':>5} {'MNIST MSE, [-1, 1] [95% interval]':>34} {'on [0, 1]':>10} {'latent std':>11}   "
    f"{'CIFAR10, DDIM Table 2':>22}"
)
for row in record["reconstruction"]:
    S = row["steps"]
    paper = f"{published_cifar10[S]:.4f}" if S in published_cifar10 else "-"
    low = max(0.0, row.get("mse_low", float("nan")))  # a normal interval, clipped at 0: the errors are skewed
    mse = f"{row['mse_mean']:.5f} [{low:.5f}, {row.get('mse_high', float('nan')):.5f}]"
    print(f"{S:5d} {mse:>34} {row['mse_mean'] / 4:10.5f} {row['latent_std']:11.3f}   {paper:>22}")
rows = {row["steps"]: row for row in record["reconstruction"]}
fall, paper_fall = rows[10]["mse_mean"] / rows[200]["mse_mean"], published_cifar10[10] / published_cifar10[200]
print(f"\nfrom S = 10 to S = 200 the MSE falls by a factor of {fall:.0f} (CIFAR10, DDIM Table 2: {paper_fall:.0f})")
print(
    "ours on [0, 1] / CIFAR10's: "
    + ", ".join(f"S={S}: {rows[S]['mse_mean'] / 4 / published_cifar10[S]:.2f}" for S in rows)
)
pairs = list(zip(sorted(rows), sorted(rows)[1:]))
apart = [f"{a}->{b}" for a, b in pairs if rows[b]["mse_high"] < max(0.0, rows[a]["mse_low"])]
print(f"steps whose interval lies wholly below the previous S's: {', '.join(apart) or 'none'}")
stds = {S: row["latent_std"] for S, row in rows.items()}
print(
    f"latent std from {min(stds.values()):.2f} to {max(stds.values()):.2f}, smallest at S = {min(stds, key=stds.get)}"
)
# the same table for the model shipped before this one (same digits, same script), kept beside the current cache
previous = json.loads((paths.results_dir() / "reconstruction_previous_model.json").read_text())
old_rows = {row["steps"]: row for row in previous["reconstruction"]}
print(
    f"\nMSE of the model shipped before ({previous['model']['training_steps']:,} training steps) over this one's "
    f"({record['model']['training_steps']:,}): "
    + ", ".join(f"S={S}: {old_rows[S]['mse_mean'] / rows[S]['mse_mean']:.1f}" for S in rows if S in old_rows)
)

# %% [markdown]
# The last column is the published table of the DDIM paper (Song, Meng & Ermon 2021, Table 2, CIFAR10 test set,
# rounded to $10^{-4}$), quoted beside ours for orientation only: the datasets differ (32×32 colour photographs against
# 28×28 digits that are mostly flat black background), and so do the networks (35.7M parameters against 0.28M) and
# their training. The paper describes its numbers as per-dimension mean squared errors; ours are in the model's
# $[-1, 1]$ pixel range (the decoded images clipped to it), and a $[0, 1]$ scale divides them by 4 (the
# "on [0, 1]" column), the column to set beside the paper's. What the two share is the trend: the error falls steadily
# with $S$, as a discretisation error does: ours by a factor of about 200 from $S = 10$ to $S = 200$, the paper's by 35
# (both printed under the table). Ours is the smaller at every $S$: by a factor of about 1.5 at $S = 10$, 3 at
# $S = 20$ and 8 to 9 from $S = 50$ to $200$ (the paper's last entries, rounded to $10^{-4}$, are only bounds). Up to
# $S = 100$ each interval in our column lies wholly below the previous one; from $S = 200$ on the errors are tiny and
# neighbouring intervals overlap. Nothing in the round trip depends on the network being accurate: for any smooth
# $\epsilon_\theta$ the ODE has an invertible flow, so the error is the solver's alone and vanishes as $S$ grows. How
# fast it falls depends on how smoothly $\epsilon_\theta$ varies with $x$ and $t$, so the constants are the network's
# own, not those of the oracle in section 2. The last line shows it: the model shipped before this one, the same
# network and recipe trained for less than half as many steps, round-tripped the same 100 digits with two to three and
# a half times this error at every $S$ up to 200 (the ratios at 500 and 1000 divide two numbers near zero). The solver is the same; only
# the field it integrates changed. That the better-trained network's $\epsilon_\theta$ is also the smoother one along
# these paths is the natural reading, not something this table measures.
#
# The `latent std` column is the per-pixel standard deviation of the encoded latents. A latent drawn from $\mathcal{N}(0, I)$
# has 1, and so do the oracle's encodings of Gaussian data in section 2, even at $S = 10$. Our network's encodings of
# digits come out narrower at every $S$ (the range is printed under the table): the latent of a real image is not a
# typical draw from the prior. How atypical it looks depends on the solver, and not monotonically: the spread is
# smallest around $S = 50$ to $100$ and widens from there as the solver approaches the exact flow.
#
# ## 4. Consistency: a latent is its image
#
# If generation solves an ODE, then the number of steps only changes the accuracy of the solution, not which solution
# it is. The DDIM paper (sec. 5.2) observes exactly that: from the same $x_T$, samples with different $S$ share their
# high-level content. We decode six latents with $S$ = 10, 20, 50 and 100:

# %%
z_consistency = torch.randn((6, 1, 28, 28), generator=torch.Generator().manual_seed(73))
consistency_steps = (10, 20, 50, 100)
decoded = [samplers.ddim_sample(model, schedule, z_consistency, steps=S, progress=False) for S in consistency_steps]
fig, ax = plt.subplots(figsize=(4.2, 3))
show_rows(torch.cat(decoded), 6, ax, [f"S={S}" for S in consistency_steps], title="one latent per column")
fig.tight_layout()
plt.show()

# %% [markdown]
# Down each column the image changes in its details, and converges as $S$ grows, but not in what it is. In numbers,
# over 100 latents (from the cache): the mean
# absolute pixel difference between two decodings of the **same** latent with different $S$, against the difference
# between decodings of **different** latents with the same $S$:

# %%
same = record["consistency"]
steps_c = same["steps"]
print("same latent, two values of S (mean |pixel difference|, pixels in [-1, 1]):")
print("       " + "".join(f"{'S=' + str(S):>8}" for S in steps_c))
for S, row in zip(steps_c, same["same_latent"]):
    print(f"{'S=' + str(S):>7}" + "".join(f"{v:8.3f}" for v in row))
print("different latents, same S: " + ", ".join(f"S={S}: {v:.3f}" for S, v in zip(steps_c, same["different_latents"])))

# %% [markdown]
# Two decodings of one latent are about an order of magnitude closer to each other than two different latents decoded
# alike, and the closer the two values of $S$, the closer the images: the latent, not the sampler, decides the digit. With
# $\eta > 0$ this fails, since fresh noise enters at every step (chapter 6).
#
# ## 5. Interpolation, and why slerp
#
# A latent is a point in $\mathbb{R}^d$, $d = 784$, so we can walk between two latents and decode each point. The obvious
# walk, $(1 - \xi) z_0 + \xi z_1$ for a weight $\xi$ from 0 to 1, leaves the region where latents live. For $z \sim \mathcal{N}(0, I_d)$ the squared norm
# $|z|^2$ is a $\chi^2_d$ variable with mean $d$ and variance $2d$, so $|z| / \sqrt{d}$ concentrates at 1 with a spread of only
# about $1 / \sqrt{2d} = 0.025$: Gaussian latents live on a thin shell. Two independent latents are nearly orthogonal, and
# the midpoint of the segment between them has norm about $\sqrt{d/2}$, deep inside the shell, where $\mathcal{N}(0, I)$ puts
# essentially no mass. The spherical interpolation of DDIM sec. 5.3 (`samplers.slerp`),
#
# $$\mathrm{slerp}(z_0, z_1; \xi) = \frac{\sin((1 - \xi)\theta)}{\sin\theta}\, z_0 + \frac{\sin(\xi\theta)}{\sin\theta}\, z_1,
#   \qquad \cos\theta = \frac{z_0 \cdot z_1}{|z_0|\,|z_1|},$$
#
# moves along the great circle instead and keeps the norm. Numbers, exact and Monte Carlo:

# %%
# NBVAL_CHECK_OUTPUT
d = 28 * 28
chi_mean = float(sp.N(sp.sqrt(2) * sp.gamma(sp.Rational(d + 1, 2)) / sp.gamma(sp.Rational(d, 2)) / sp.sqrt(d), 12))
p_inside = mpmath.gammainc(d / 2, 0, 0.75**2 * d / 2, regularized=True)  # P(|z| / sqrt(d) <= 0.75), chi-square CDF
gen = torch.Generator().manual_seed(74)
z = torch.randn((20000, d), generator=gen, dtype=torch.float64)
z0, z1 = z[:10000], z[10000:]
radius = z.norm(dim=1) / math.sqrt(d)
cos_angle = (z0 * z1).sum(1) / (z0.norm(dim=1) * z1.norm(dim=1))
lerp_mid = ((z0 + z1) / 2).norm(dim=1) / math.sqrt(d)
slerp_mid = torch.stack([samplers.slerp(a, b, 0.5) for a, b in zip(z0[:500], z1[:500])]).norm(dim=1) / math.sqrt(d)
assert abs(radius.mean().item() - chi_mean) < 5 * radius.std().item() / math.sqrt(20000)
print(
    f"|z| / sqrt(d):           exact mean {chi_mean:.5f}; MC mean {radius.mean().item():.5f}, std {radius.std().item():.4f} (1/sqrt(2d) = {1 / math.sqrt(2 * d):.4f})"
)
print(
    f"                         MC range {radius.min().item():.3f} .. {radius.max().item():.3f}; P(|z| / sqrt(d) <= 0.75) = {mpmath.nstr(p_inside, 3)}"
)
print(
    f"angle between two latents: {math.degrees(math.acos(cos_angle.mean().item())):.2f} deg on average, std of cos {cos_angle.std().item():.4f} (1/sqrt(d) = {1 / math.sqrt(d):.4f})"
)
print(
    f"lerp midpoint:  |z| / sqrt(d) = {lerp_mid.mean().item():.4f} +- {lerp_mid.std().item():.4f}  (1/sqrt(2) = {1 / math.sqrt(2):.4f})"
)
print(f"slerp midpoint: |z| / sqrt(d) = {slerp_mid.mean().item():.4f} +- {slerp_mid.std().item():.4f}")

# %% [markdown]
# Not one of the 20,000 latents comes anywhere near 0.75, and the probability of a draw that far inside is astronomically
# small; yet every lerp midpoint lies at 0.71. The network was trained on $x_T$-like inputs near the shell, so a midpoint
# off the shell is an input unlike any it was trained to start from, and what it decodes there need not be related to
# either end. We interpolate between two random latents both ways, and between the $S = 20$ encodings of two held-out
# digits with slerp, decoding every frame with DDIM, $S = 20$:

# %%
xis = torch.linspace(0, 1, 9)
za, zb = torch.randn((2, 1, 28, 28), generator=torch.Generator().manual_seed(75))
slerp_frames = samplers.slerp(za, zb, xis)
lerp_frames = torch.stack([(1 - xi) * za + xi * zb for xi in xis])
pair = held_out[[1, 12]]  # a 7 and a 0
pair_latents = samplers.ddim_invert(model, schedule, pair, steps=20, progress=False)
digit_frames = samplers.slerp(pair_latents[0], pair_latents[1], xis)
frames = torch.cat([slerp_frames, lerp_frames, digit_frames])
images = samplers.ddim_sample(model, schedule, frames, steps=20, progress=False).clamp(-1, 1)  # the pixel range
fig, ax = plt.subplots(figsize=(6.5, 2.6))
show_rows(
    images, 9, ax, ["slerp", "lerp", "slerp, two digits"], title=r"interpolation from $\xi = 0$ to $1$, DDIM S = 20"
)
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("xi                  " + " ".join(f"{xi:6.3f}" for xi in xis.tolist()))
for name, frames_ in (("slerp |z|/sqrt(d)", slerp_frames), ("lerp  |z|/sqrt(d)", lerp_frames)):
    print(f"{name:20s}" + " ".join(f"{v:6.3f}" for v in (frames_.flatten(1).norm(dim=1) / math.sqrt(d)).tolist()))

# %% [markdown]
# The slerp path stays on the shell (its norm moves smoothly between the two end norms), while the lerp path's norm
# sags to about 0.72 in the middle. How far is each decoded frame from the two decoded end frames?

# %%
for name, row in (("slerp", images[:9]), ("lerp", images[9:18])):
    to_start = [(x - row[0]).abs().mean().item() for x in row]
    to_end = [(x - row[-1]).abs().mean().item() for x in row]
    print(f"{name:5s} mean |x(xi) - x(0)|: " + " ".join(f"{v:5.2f}" for v in to_start))
    print(f"{'':5s} mean |x(xi) - x(1)|: " + " ".join(f"{v:5.2f}" for v in to_end))

# %% [markdown]
# Along the slerp path the frames stay variations of the first digit for a while and then of the last: the distance to
# the start grows and the distance to the end shrinks steadily. Along the lerp path the frames leave both ends at once;
# from the second frame on they are about as far from either end as two unrelated samples are (compare the
# different-latent distances of section 4), and in the figure the middle frames are other digits altogether. They are
# also drawn with cleaner, thinner strokes than the end frames: a latent inside the shell carries less noise energy
# than the sampler expects at $\tau_S$, somewhat like sampling at a lower temperature (for Gaussian data, where the ODE map
# is linear, shrinking the latent shrinks the sample's deviation from the mean by the same factor). Clean, but not
# in between. Between the encodings of two real digits (third row) the slerp frames morph one digit into the other;
# its end frames are the two reconstructions.
#
# ## Summary
#
# - With $\bar x = x / \sqrt{\bar\alpha}$ and $\sigma = \sqrt{1 - \bar\alpha} / \sqrt{\bar\alpha}$, the $\eta = 0$ DDIM update is exactly an Euler step,
#   $\bar x_{t'} = \bar x_t + (\sigma_{t'} - \sigma_t)\,\epsilon_\theta$, of the ODE $d\bar x / d\sigma = \epsilon_\theta(\bar x / \sqrt{1 + \sigma^2})$ (DDIM eqs. (13)-(14)).
# - For Gaussian data the ODE is linear and its flow is the map $x_0 = m + \sqrt{v_0 / v_T}\,(x_T - m_T)$; DDIM's gain undershoots
#   it by about $3/S$ and the encode-decode round trip's MSE falls as $1/S^2$: first-order convergence, measured exactly.
# - `ddim_invert` followed by `ddim_sample` reconstructs held-out digits, with an error that falls steadily with $S$;
#   the DDIM paper reports 0.014, 0.0065, 0.0023, 0.0009 at $S$ = 10, 20, 50, 100 on CIFAR10 (a different dataset).
# - A latent decodes to the same digit for every $S$: two decodings of one latent differ far less than two latents do.
# - Gaussian latents concentrate on the shell $|z| \approx \sqrt{d}$; slerp stays on it, lerp cuts through the inside
#   (norm $\approx \sqrt{d/2}$ at the midpoint), and its middle frames resemble neither end.
#
# ## Exercises
#
# **7.1 (code).** *The encoding step.* Write `my_invert_step(x, eps, alpha_bar_cur, alpha_bar_next)` that moves $x$ from the
# noise level $\bar\alpha_\text{cur}$ to the higher level $\bar\alpha_\text{next}$ as `ddim_invert` does (the alphas are floats;
# $\bar\alpha_\text{cur} = 1$ at the first step). Fill in the exercise cell and run it: `ch07.check_invert_step` runs your
# step inside a full encoding with an exact Gaussian oracle as the model and compares every point with
# `samplers.ddim_invert`. The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_invert_step(x, eps, alpha_bar_cur, alpha_bar_next):
    # undo the current noise level (x0_hat), then re-noise x0_hat to the next level along eps
    return ...


result = ch07.check_invert_step(my_invert_step)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_invert_step(x, eps, alpha_bar_cur, alpha_bar_next):
    x0_hat = (x - (1 - alpha_bar_cur) ** 0.5 * eps) / alpha_bar_cur**0.5
    return alpha_bar_next**0.5 * x0_hat + (1 - alpha_bar_next) ** 0.5 * eps


result = ch07.check_invert_step(my_invert_step)

# %% [markdown]
# **7.2 (code).** *Slerp.* Write `my_slerp(z0, z1, xi)` for a float `xi` in $[0, 1]$ (the weight $\xi$ of section 5, as
# in `samplers.slerp`), treating the tensors as flat vectors and returning a tensor of `z0`'s shape.
# Then check that it gives the frames between the encodings of the two held-out digits of section 5 (`digit_frames`,
# the bottom row of the figure). (Bonus: what should happen when `z0` and `z1` point the same way, $\theta = 0$?)


# %% tags=["exercise"]
def my_slerp(z0, z1, xi):
    # theta: the angle between z0 and z1, from the flattened vectors; then the sin-weighted combination
    return ...


result = ch07.check_slerp(my_slerp)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_slerp(z0, z1, xi):
    a, b = z0.flatten().double(), z1.flatten().double()
    theta = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1.0, 1.0))
    if torch.sin(theta) < 1e-6:  # theta -> 0: the weights tend to 1 - xi and xi, so slerp becomes lerp
        return (1 - xi) * z0 + xi * z1
    return (torch.sin((1 - xi) * theta) * z0 + torch.sin(xi * theta) * z1) / torch.sin(theta)


result = ch07.check_slerp(my_slerp)
mine = torch.stack([my_slerp(pair_latents[0], pair_latents[1], xi) for xi in xis.tolist()])
assert (mine - digit_frames).abs().max().item() < 1e-5
print("my_slerp reproduces the two-digit frames of section 5")

# %% [markdown]
# **7.3 (pen and paper).** *The shell.* For $z \sim \mathcal{N}(0, I_d)$ show that $\mathbb{E}|z|^2 = d$ and
# $\mathrm{Var}\,|z|^2 = 2d$, and deduce that $|z| / \sqrt{d} = 1 + O(1/\sqrt{2d})$. For independent $z_0, z_1$, find the
# distribution of $(z_0 + z_1)/2$ and of $w (z_0 + z_1)$: which weight $w$ makes the combination again a standard normal
# latent? Compare with the slerp weights at $\xi = 1/2$ when $\theta = 90°$. Worked solution: appendix C.
