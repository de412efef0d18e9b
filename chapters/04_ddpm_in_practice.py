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
# # Chapter 4 — DDPM in practice: the network, the training loop, the sampler
#
# Chapters 1-3 gave us the forward process, the reverse posterior and the loss $L_\text{simple}$. Everything
# that remains is engineering, and this chapter walks through it with the book's own code: the U-Net that plays
# $\epsilon_\theta(x_t, t)$, the training loop of DDPM Algorithm 1, and the sampler of Algorithm 2, run with the
# model that ships with the book (`data/checkpoints/mnist_unet.pt`).
#
# In this chapter you will be able to
#
# - read the DDPM U-Net block by block, predict the shape of every feature map and count its parameters;
# - explain how the timestep $t$ enters the network, through the sinusoidal embedding;
# - match each line of DDPM Algorithm 1 with a line of `ddim_book.training.Trainer`, and run a few training steps;
# - check DDPM eq. (11) against the posterior mean of chapter 2, and compare the two variances $\sigma_t^2 = \beta_t$
#   and $\sigma_t^2 = \tilde\beta_t$ on exact Gaussian data;
# - generate digits with Algorithm 2 and watch the predicted $x_0$ sharpen along the chain ("progressive generation").
#
# Expensive steps read cached results by default. Set the environment variable `DDIM_BOOK_RECOMPUTE=1` before
# building the book to retrain the MNIST model from scratch (about an hour on a 2-core CPU, minutes on a GPU) and to
# regenerate the DDPM samples.

# %%
import inspect
import json
import math
import os
import tempfile
import textwrap
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

from ddim_book import paths, pretrained, samplers
from ddim_book.data import to_model_range
from ddim_book.exercises import ch04
from ddim_book.models import SinusoidalTimeEmbedding, UNet, UNetConfig
from ddim_book.models.unet import AttentionBlock, ResBlock
from ddim_book.oracles import GaussianOracle
from ddim_book.plotting import book_style, image_grid, show_grid
from ddim_book.training import TrainConfig, Trainer, export_ema, get_config, load_model
from ddim_book.training.configs import config_differences

book_style()
# one thread: as fast as two for these batch sizes on a shared machine, and the printed numbers do not depend on it
torch.set_num_threads(1)
RECOMPUTE = os.environ.get("DDIM_BOOK_RECOMPUTE") == "1"
ROOT = Path(pretrained.__file__).resolve().parents[1]  # the repository (for runs/ and scripts/)
RESULTS = paths.results_dir()  # the cached results: data/results in a clone, inside the package in a wheel
model, schedule = pretrained.load("mnist")  # the shipped EMA U-Net (eval mode) and its schedule, DDPM's linear one
print(f"shipped model: {model.num_parameters():,} parameters; schedule: {schedule}")

# %% [markdown]
# ## 1. The U-Net, block by block
#
# The network must map an image $x_t$ and an integer $t$ to an image of the same shape, the predicted noise.
# DDPM (its appendix B) uses a U-Net in the style of PixelCNN++: a **down path** of residual blocks that halves the
# resolution level by level, a **middle** at the coarsest resolution, and an **up path** that doubles it back.
# Every activation of the down path is kept and concatenated onto the input of one up-path block (the skip
# connections), so fine detail does not have to squeeze through the $7 \times 7$ bottleneck. The residual blocks
# are Wide-ResNet blocks with group normalisation; self-attention runs at one resolution (16×16 in the paper's
# CIFAR10 model, 7×7 in ours) and in the middle.
#
# The shipped checkpoint records its architecture in its manifest (`data/checkpoints/manifest.json`); the network we
# loaded must be exactly that one. It is the `mnist-small` U-Net, started from PyTorch's default initialisation
# (`init`; BENCHMARKS.md measures the choice):

# %%
# NBVAL_CHECK_OUTPUT
entry = pretrained.entry("mnist")
config = UNetConfig.from_dict({**entry["train_config"]["model"], "T": schedule.T})
assert model.config == config
assert config == UNetConfig.named("mnist-small", init=config.init)  # the mnist-small U-Net, whatever its init
for field, value in config.to_dict().items():
    print(f"{field:24s} {value}")
print(f"{'resolutions':24s} {config.resolutions}")
print(f"{'channels per level':24s} {config.channels}")

# %% [markdown]
# `model.describe()` pushes one zero image through the network and records the output shape of every block, in
# the order the forward pass runs them. Shapes do not depend on the weights, so a freshly initialised copy gives
# the same table as the trained model:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
net = UNet(config)
walk = net.describe()
assert walk == model.describe()
print(f"{'block':26s} output shape (B, C, H, W)")
for name, shape in walk:
    print(f"{name:26s} {shape}")

# %% [markdown]
# Reading the table from the top: the time MLP turns $t$ into a 64-vector (section 2); the input convolution lifts
# the single grey channel to 16; `down.0` and `down.1` each end in a stride-2 convolution (28 → 14 → 7);
# `down.2` works at 7×7 with attention; the middle block is residual, attention, residual. On the way up each
# level has **one more** residual block than on the way down (`res.0` and `res.1` against `res.0` alone), because the
# up path must consume one extra skip per level: the down path pushed 1 (input conv) + 2 + 2 + 1 = 6 activations, and the up path's
# 2 + 2 + 2 = 6 residual blocks pop them in reverse order. The last convolution returns one channel at 28×28:
# the predicted $\epsilon$, with the shape of $x_t$.
#
# ### Where the parameters are
#
# A 3×3 convolution from $c_\text{in}$ to $c_\text{out}$ channels has $9 c_\text{in} c_\text{out} + c_\text{out}$
# parameters, a GroupNorm has $2c$ (a scale and a shift per channel) and a linear layer $n_\text{in} n_\text{out} + n_\text{out}$.
# A residual block (`ResBlock`: norm, conv, time projection, norm, conv, and a 1×1 convolution on the skip path
# when the channel count changes) and an attention block (norm, a 1×1 convolution to queries, keys and values, and
# an output projection) therefore have, with $E$ the width of the time embedding,
#
# $$P_\text{res} = 2c_\text{in} + (9c_\text{in}c_\text{out} + c_\text{out}) + (Ec_\text{out} + c_\text{out}) + 2c_\text{out}
#   + (9c_\text{out}^2 + c_\text{out}) + [c_\text{in} \ne c_\text{out}]\,(c_\text{in}c_\text{out} + c_\text{out}),
#   \qquad P_\text{attn} = 2c + (3c^2 + 3c) + (c^2 + c).$$
#
# We let sympy hold the formulas and check them against every block of the network.

# %%
# NBVAL_CHECK_OUTPUT
c_in, c_out, E, c = sp.symbols("c_in c_out E c", positive=True, integer=True)
res_same = 2 * c_in + (9 * c_in * c_out + c_out) + (E * c_out + c_out) + 2 * c_out + (9 * c_out**2 + c_out)
res_skip = res_same + c_in * c_out + c_out  # the 1x1 convolution on the skip path
attention = 2 * c + (3 * c**2 + 3 * c) + (c**2 + c)
emb_width = 4 * config.base_channels


def count(module):
    return sum(p.numel() for p in module.parameters())


res_blocks = [m for m in net.modules() if isinstance(m, ResBlock)]
attn_blocks = [m for m in net.modules() if isinstance(m, AttentionBlock)]
for block in res_blocks:
    cin, cout = block.conv1.in_channels, block.conv1.out_channels
    formula = res_same if cin == cout else res_skip
    assert formula.subs({c_in: cin, c_out: cout, E: emb_width}) == count(block), (cin, cout)
for block in attn_blocks:
    assert attention.subs(c, block.qkv.in_channels) == count(block)
print("P_res  (c_in = c_out) =", sp.factor(res_same.subs(c_in, c_out)))
print("P_attn                =", sp.factor(attention))
print(f"formulas match all {len(res_blocks)} residual and {len(attn_blocks)} attention blocks")

# %% [markdown]
# Grouping the parameters by the top-level parts of the network, in the order the forward pass visits them:

# %%
# NBVAL_CHECK_OUTPUT
parts = {"time_mlp": net.time_mlp, "input_conv": net.input_conv}
parts |= {f"down.{i}": level for i, level in enumerate(net.down)}
parts["mid"] = net.mid
parts |= {f"up.{i}": net.up[i] for i in reversed(range(len(net.up)))}
parts |= {"out_norm": net.out_norm, "out_conv": net.out_conv}
total = net.num_parameters()
assert sum(count(m) for m in parts.values()) == total == model.num_parameters()
print(f"{'part':12s} {'parameters':>10s} {'share':>7s}")
for name, module in parts.items():
    print(f"{name:12s} {count(module):10,d} {count(module) / total:7.1%}")
print(f"{'total':12s} {total:10,d}")

# %% [markdown]
# The up path holds more than half of the weights: its blocks take concatenated inputs (twice the channels) and it
# has one block more per level. The DDPM paper's CIFAR10 network, the same topology at base width 128 with four
# levels and two residual blocks per level (`UNetConfig.named("cifar10-ddpm")`), has 35.7M parameters; ours has
# 0.28M, small enough to train on a laptop CPU.
#
# ## 2. How the network knows the time: the sinusoidal embedding
#
# The same weights must denoise at every noise level, so $t$ is an input. An integer is a poor input for a network,
# and DDPM borrows the Transformer's position encoding (Vaswani et al. 2017, sec. 3.5): with $h$ frequencies
# $w_k = 10000^{-k/h}$, $k = 0, \dots, h - 1$,
#
# $$\mathrm{emb}(t) = \big[\sin(t w_0), \dots, \sin(t w_{h-1}), \cos(t w_0), \dots, \cos(t w_{h-1})\big].$$
#
# The fastest pair turns by one radian per step, the slowest by $10^{-4 (h-1)/h}$ radians. A two-layer MLP maps the
# $2h = 16$ numbers to a 64-vector, and every residual block adds its own linear projection of that vector to its
# feature maps, one shift per channel, after the first convolution (`use_scale_shift` is the variant of improved
# DDPM, which also scales; `mnist-small` uses DDPM's plain shift):

# %%
print(textwrap.dedent(inspect.getsource(ResBlock.forward)))

# %% [markdown]
# The frequencies and their periods $2\pi / w_k$ for our $h = 8$:

# %%
# NBVAL_CHECK_OUTPUT
embedding = SinusoidalTimeEmbedding(config.base_channels)
h = config.base_channels // 2
k = sp.symbols("k", integer=True, nonnegative=True)
w_k = sp.Integer(10000) ** (-k / h)
for i in range(h):
    exact = float(w_k.subs(k, i))
    assert abs(embedding.frequencies[i].item() - exact) <= 1e-6 * exact
    print(f"k = {i}: w_k = {exact:.6f} rad/step, period {2 * math.pi / exact:9.1f} steps")

# %% [markdown]
# Over $t = 1, \dots, 1000$ the slowest pair covers only a twentieth of its period: it acts as a smooth, monotone
# "clock hand", while the fast pairs wrap around many times and separate neighbouring steps. Together they give
# every timestep its own vector. We check that nearest-neighbour decoding recovers $t$ from $\mathrm{emb}(t)$ for all
# 1000 timesteps, and measure how far apart consecutive timesteps land. That distance is the same for every $t$:
# moving from $t$ to $t + 1$ rotates each (sin, cos) pair by its angle $w_k$, so
# $|\mathrm{emb}(t+1) - \mathrm{emb}(t)|^2 = \sum_k (2 - 2\cos w_k)$ whatever $t$ is.

# %%
# NBVAL_CHECK_OUTPUT
all_t = torch.arange(1, schedule.T + 1)
emb = embedding(all_t).double()  # (1000, 16)
distances = torch.cdist(emb, emb)
decoded = distances.argmin(dim=1) + 1
neighbour = (emb[1:] - emb[:-1]).norm(dim=1)
print(f"t recovered by nearest neighbour: {int((decoded == all_t).sum())} of {schedule.T}")
rotation = math.sqrt(sum(2 - 2 * math.cos(float(w_k.subs(k, i))) for i in range(h)))
assert torch.allclose(neighbour, torch.tensor(rotation, dtype=torch.float64), atol=1e-5)
print(
    f"|emb(t+1) - emb(t)|: min {neighbour.min().item():.4f}, max {neighbour.max().item():.4f}, formula {rotation:.4f}"
)
print(
    f"|emb(t)| = sqrt(h) = {math.sqrt(h):.4f} for every t: {bool(torch.allclose(emb.norm(dim=1), torch.tensor(math.sqrt(h), dtype=torch.float64)))}"
)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
ax1.imshow(
    emb.T.numpy(),
    aspect="auto",
    cmap="RdBu",
    vmin=-1,
    vmax=1,
    extent=(1, schedule.T, 2 * h - 0.5, -0.5),
    interpolation="nearest",
)
ax1.set(xlabel="t", ylabel="component (sines, then cosines)", title="sinusoidal embedding, 16 components")
fast, slow = [0, 1, 2, 3], [4, 5, 6, 7]  # frequency indices k; component k and k + h form one (sin, cos) pair
for ks, color, label in ((fast, "C0", "fast pairs, k = 0..3"), (slow, "C1", "slow pairs, k = 4..7")):
    cols = ks + [i + h for i in ks]
    similarity = emb[:, cols] @ emb[499, cols] / len(ks)  # mean of cos((t - 500) w_k) over the pairs
    ax2.plot(all_t, similarity, color=color, lw=0.8, label=label)
ax2.set(xlabel="t", ylabel="similarity to t' = 500", title=r"$\frac{1}{4}\sum_k \cos((t - t') w_k)$")
ax2.legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# The two halves do different jobs. The fast pairs give a sharp peak at $t = t'$ and look like noise elsewhere: they
# tell neighbouring steps apart. The slow pairs fall off smoothly over hundreds of steps: they say roughly where in the
# chain we are, so that what the network learns at one noise level carries over to nearby ones. The time MLP sees
# both.
#
# ## 3. Training: DDPM Algorithm 1
#
# DDPM's training procedure is four lines (Algorithm 1):
#
# 1. take a data point $x_0 \sim q(x_0)$;
# 2. draw $t \sim \mathrm{Uniform}\{1, \dots, T\}$;
# 3. draw $\epsilon \sim \mathcal{N}(0, I)$;
# 4. take a gradient step on $\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon, t)\|^2$,
#
# repeated until convergence; the loss is $L_\text{simple}$ of DDPM eq. (14), derived in chapter 3. Here are the
# corresponding lines of the book's trainer, read from its source:

# %%
source = textwrap.dedent(inspect.getsource(Trainer._train_step)).splitlines()
first = next(i for i, line in enumerate(source) if "batches.next()" in line)
last = next(i for i, line in enumerate(source) if "ema.update" in line)
print("\n".join(source[first : last + 1]))

# %% [markdown]
# Line by line: `x0` is a minibatch of digits (step 1); `t` is drawn uniformly from 1..T, one per image (step 2);
# `noise` is $\epsilon$ (step 3); `x_t` is DDPM eq. (4), with $\sqrt{\bar\alpha_t}$ and $\sqrt{1 - \bar\alpha_t}$
# precomputed once; the mean squared error over the batch and all pixels is $L_\text{simple}$ up to a constant factor
# (step 4). Around it sit the practical pieces of DDPM's appendix B: the AdamW step, gradient clipping at norm 1, and an
# exponential moving average (EMA) of the weights, which is the model that samples.
#
# ### How low can the loss go?
#
# $L_\text{simple}$ never reaches zero: at a given $x_t$ the noise is not determined, and the best any network can
# do is predict $\mathbb{E}[\epsilon \mid x_t]$, leaving $\mathrm{Var}[\epsilon \mid x_t]$ per pixel. For Gaussian data
# $x_0 \sim \mathcal{N}(m, s^2)$ this floor is exact. $\epsilon$ and $x_t$ are jointly Gaussian with
# $\mathrm{Cov}(\epsilon, x_t) = \sqrt{1 - \bar\alpha_t}$ and $\mathrm{Var}\, x_t = \bar\alpha_t s^2 + 1 - \bar\alpha_t$, so

# %%
# NBVAL_CHECK_OUTPUT
ab_t, s_data = sp.symbols("alphabar_t s", positive=True)
var_xt = ab_t * s_data**2 + 1 - ab_t
floor_t = sp.simplify(1 - sp.sqrt(1 - ab_t) ** 2 / var_xt)  # Var[eps | x_t] = Var eps - Cov^2 / Var x_t
assert sp.simplify(floor_t - ab_t * s_data**2 / var_xt) == 0
print("Var[eps | x_t] =", floor_t)

# %% [markdown]
# It vanishes at large $t$ (pure noise: $x_t$ tells us $\epsilon$ almost exactly) and approaches 1 at small $t$ when the
# data spread $s$ is large compared with the noise. The loss floor is its average over $t \sim \mathrm{Uniform}\{1..T\}$.
# The exact Gaussian oracle (`ddim_book.oracles.GaussianOracle`) predicts $\mathbb{E}[\epsilon \mid x_t]$, so its Monte
# Carlo $L_\text{simple}$, computed exactly as the trainer does it, must land on the formula:

# %%
# NBVAL_CHECK_OUTPUT
gen = torch.Generator().manual_seed(40)
print(f"{'data std s':>10} {'floor (formula)':>16} {'oracle L_simple (MC)':>21} {'std error':>10}")
floor_numeric = sp.lambdify((ab_t, s_data), floor_t)
for std in (0.1, 0.5, 1.0):
    oracle = GaussianOracle(schedule, mean=0.0, std=std, shape=(16,))
    formula = floor_numeric(schedule.alpha_bars[1:], std).mean().item()
    x0 = oracle.sample(16384, generator=gen)
    t = torch.randint(1, schedule.T + 1, (16384,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    per_image = (oracle(schedule.q_sample(x0, t, noise), t) - noise).pow(2).mean(dim=1)
    mc, se = per_image.mean().item(), per_image.std().item() / math.sqrt(16384)
    assert abs(mc - formula) < 4 * se
    print(f"{std:10.1f} {formula:16.4f} {mc:21.4f} {se:10.4f}")

# %% [markdown]
# Digits are not Gaussian, but the lesson carries over: a training curve of $L_\text{simple}$ flattens at a positive
# value set by the data, and the plateau's height says little about sample quality by itself.
#
# ### The configuration and the shipped run
#
# The manifest also records the training configuration of the shipped run. It is the named preset whose name it
# carries, so `ddim-book train --config NAME` repeats the run; the cell checks that every field that decides the
# updates (all but logging, checkpointing and device settings) agrees with the preset:

# %%
# NBVAL_CHECK_OUTPUT
train_config = TrainConfig.from_dict(entry["train_config"])
assert config_differences(get_config(train_config.name).to_dict(), train_config) == []
for field, value in train_config.to_dict().items():
    print(f"{field:14s} {value}")
images = train_config.batch_size * train_config.total_steps
print(
    f"\n{images:,} images in {train_config.total_steps:,} steps = {images / 9000:.1f} passes over the 9,000 training digits"
)
print(f"EMA averaging horizon about 1 / (1 - decay) = {1 / (1 - train_config.ema_decay):.0f} steps")

# %% [markdown]
# What was actually run, from the same manifest (the model card, `data/checkpoints/MODEL_CARD.md`, shows it with the
# sample-quality figures):

# %%
print(f"steps: {entry['training_steps']:,}, images seen: {entry['images_seen']:,}")
hours = entry["training_wall_seconds"] / 3600
print(
    f"wall time: {hours:.2f} h on {entry['trained_on']} ({entry['machine']['cpu']}, {entry['machine']['cores']} cores)"
)
print(f"{entry['training_wall_seconds'] / entry['training_steps']:.2f} s per step of {train_config.batch_size} digits")
print(f"sha256: {entry['sha256'][:16]}...; command: {entry['command']}")

# %% [markdown]
# ### A few steps, live
#
# To see the loop run, we train the much smaller `mnist-tiny` network (base width 8, two levels) for 50 steps on
# the CPU, in a temporary folder. Its loss falls quickly from about 1, the value of predicting $\epsilon = 0$ (a network
# whose last convolution is initialised to zero does exactly that). With `DDIM_BOOK_RECOMPUTE=1` this cell instead
# trains the full shipped recipe in `runs/book-mnist` (resumable: an interrupted run continues where it stopped) and
# the rest of the chapter uses that model.

# %%
log_path = pretrained.checkpoint_dir() / entry["train_log"]
if RECOMPUTE:
    run_dir = ROOT / "runs" / "book-mnist"
    trainer = Trainer(get_config(train_config.name), run_dir, progress=False)
    trainer.train()
    model, schedule = load_model(export_ema(run_dir / "last.pt", run_dir / "mnist_unet.pt"))
    log_path = run_dir / "train_log.csv"
    print(
        f"trained {train_config.name} for {trainer.step} steps in {trainer.elapsed_s / 60:.1f} min; using it from here on"
    )
else:
    tiny_config = get_config("mnist-tiny", total_steps=50, log_every=10, ckpt_every=0, device="cpu")
    with tempfile.TemporaryDirectory() as run_dir:
        tiny = Trainer(tiny_config, run_dir, progress=False)
        start = time.perf_counter()
        tiny.train()
        seconds = time.perf_counter() - start
        tiny_log = np.genfromtxt(Path(run_dir) / "train_log.csv", delimiter=",", names=True)
    size, batch = tiny.model.num_parameters(), tiny_config.batch_size
    print(f"mnist-tiny: {size:,} parameters, {tiny.step} steps of {batch} digits in {seconds:.1f} s")
    print("loss every 10 steps:", " ".join(f"{v:.3f}" for v in tiny_log["loss"]))

# %% [markdown]
# The training log of the model used in this chapter (the shipped one, unless you recomputed), with the learning
# rate on the right-hand axis: look for the warm-up at the very start and, where the config has one, the cool-down at
# the end, where the lr falls linearly to 0 and the loss settles a little lower.

# %%
log = np.genfromtxt(log_path, delimiter=",", names=True)
fig, ax = plt.subplots(figsize=(6.4, 2.9))
loss_line = ax.semilogy(log["step"], log["loss"], "-", color="C0", lw=0.8, label=r"$L_\mathrm{simple}$")
ax.set(
    xlabel="training step", ylabel=r"$L_\mathrm{simple}$ (mean over 50 steps)", title=f"training loss, {log_path.name}"
)
ax.grid(True, which="both", lw=0.3)
lr_axis = ax.twinx()
lr_line = lr_axis.plot(log["step"], log["lr"], "-", color="C1", lw=1.2, label="learning rate")
lr_axis.set_ylabel("learning rate")
lr_axis.set_ylim(0, 1.1 * log["lr"].max())
ax.legend(handles=loss_line + lr_line, loc="upper right", fontsize=8)
fig.tight_layout()
plt.show()
print(f"last logged loss {log['loss'][-1]:.4f} at step {int(log['step'][-1])}")

# %% [markdown]
# ## 4. Sampling: DDPM Algorithm 2
#
# Generation starts from $x_T \sim \mathcal{N}(0, I)$ and runs, for $t = T, \dots, 1$,
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \epsilon_\theta(x_t, t)\Big) + \sigma_t z,
#   \qquad z \sim \mathcal{N}(0, I) \text{ for } t > 1, \quad z = 0 \text{ for } t = 1,$$
#
# with $\sigma_t^2 = \beta_t$ or $\sigma_t^2 = \tilde\beta_t$ (DDPM sec. 3.2). The mean is DDPM eq. (11). Chapter 2 derived it
# from the posterior mean $\tilde\mu_t(x_t, x_0)$ of eq. (7) by substituting the noise; read backwards, it is
# $\tilde\mu_t$ evaluated at the network's guess of the clean image, $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$
# (DDPM eq. (15)). The two forms must therefore have the same coefficients of $x_t$ and of $\epsilon_\theta$:

# %%
# NBVAL_CHECK_OUTPUT
alpha, ab_prev = sp.symbols("alpha_t alphabar_{t-1}", positive=True)
ab = alpha * ab_prev  # alphabar_t
beta = 1 - alpha
c_x0 = sp.sqrt(ab_prev) * beta / (1 - ab)  # DDPM eq. (7)
c_xt = sp.sqrt(alpha) * (1 - ab_prev) / (1 - ab)
x_coef_via_posterior = c_x0 / sp.sqrt(ab) + c_xt  # substitute x0_hat = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
eps_coef_via_posterior = -c_x0 * sp.sqrt(1 - ab) / sp.sqrt(ab)
assert sp.simplify(x_coef_via_posterior - 1 / sp.sqrt(alpha)) == 0
assert sp.simplify(eps_coef_via_posterior + beta / (sp.sqrt(alpha) * sp.sqrt(1 - ab))) == 0
print("coefficient of x_t:    ", sp.simplify(x_coef_via_posterior))
print("coefficient of epsilon:", sp.simplify(eps_coef_via_posterior))

# %% [markdown]
# The same two ways with the schedule's arrays, at a few timesteps (the first pair of columns is eq. (11), the second
# the posterior coefficients `schedule.posterior_x0_coefs` and `schedule.posterior_xt_coefs` of chapter 2 after the substitution):

# %%
# NBVAL_CHECK_OUTPUT
print(
    f"{'t':>5} {'1/sqrt(alpha_t)':>16} {'via posterior':>14} {'beta_t/(sqrt(alpha_t)sqrt(1-abar_t))':>37} {'via posterior':>14}"
)
for t in (1, 2, 10, 100, 500, 1000):
    a_bar, a_t, b_t = schedule.alpha_bars[t], schedule.alphas[t], schedule.betas[t]
    x_eq11, eps_eq11 = 1 / a_t.sqrt(), b_t / (a_t.sqrt() * (1 - a_bar).sqrt())
    x_post = schedule.posterior_x0_coefs[t] / a_bar.sqrt() + schedule.posterior_xt_coefs[t]
    eps_post = schedule.posterior_x0_coefs[t] * (1 - a_bar).sqrt() / a_bar.sqrt()
    assert torch.isclose(x_eq11, x_post, rtol=1e-12) and torch.isclose(eps_eq11, eps_post, rtol=1e-12)
    print(f"{t:5d} {x_eq11.item():16.8f} {x_post.item():14.8f} {eps_eq11.item():37.8f} {eps_post.item():14.8f}")

# the package's sampler uses eq. (11); q_posterior at x0_hat gives the same mean on real tensors
gen = torch.Generator().manual_seed(41)
x_t, eps = (torch.randn((4, 1, 28, 28), generator=gen, dtype=torch.float64) for _ in range(2))
for t in (1, 2, 500, 1000):
    x0_hat = (x_t - (1 - schedule.alpha_bars[t]).sqrt() * eps) / schedule.alpha_bars[t].sqrt()
    eq11 = (x_t - schedule.betas[t] / (1 - schedule.alpha_bars[t]).sqrt() * eps) / schedule.alphas[t].sqrt()
    assert torch.allclose(eq11, schedule.q_posterior(x0_hat, x_t, t)[0], rtol=1e-10, atol=1e-10)
print("eq. (11) == q_posterior(x0_hat, x_t, t) mean on (4, 1, 28, 28) tensors at t = 1, 2, 500, 1000")

# %% [markdown]
# ### Two variances
#
# Chapter 2 showed that $\tilde\beta_t$ is the reverse variance when $x_0$ is known and $\beta_t$ when
# $x_0 \sim \mathcal{N}(0, I)$; their ratio is $\tilde\beta_t / \beta_t = (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)$:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'t':>5} {'beta_t':>10} {'beta_tilde_t':>13} {'ratio':>8} {'(1-abar_{t-1})/(1-abar_t)':>26}")
for t in (1, 2, 3, 10, 50, 200, 1000):
    ratio = schedule.posterior_variances[t] / schedule.betas[t]
    formula = (1 - schedule.alpha_bars[t - 1]) / (1 - schedule.alpha_bars[t])
    assert torch.isclose(ratio, formula, rtol=1e-12, atol=1e-15)
    print(
        f"{t:5d} {schedule.betas[t].item():10.6f} {schedule.posterior_variances[t].item():13.6e} {ratio.item():8.4f} {formula.item():26.4f}"
    )

# %% [markdown]
# With a perfect $\epsilon$-predictor, which choice reproduces the data distribution better? For Gaussian data the
# oracle's prediction is linear in $x_t$, $\epsilon = \sqrt{1 - \bar\alpha_t}\,(x_t - \sqrt{\bar\alpha_t} m) / v_t$ with
# $v_t = \bar\alpha_t s^2 + 1 - \bar\alpha_t$, so each step of Algorithm 2 is $x_{t-1} = A_t x_t + b_t + \sigma_t z$ with
# $A_t = (1 - \beta_t / v_t) / \sqrt{\alpha_t}$, and the variance of the result follows exactly from the recursion
# $V_{t-1} = A_t^2 V_t + \sigma_t^2$, $V_T = 1$. sympy confirms $A_t$; then we compare the exact final standard deviation with
# `samplers.ddpm_sample` run on the oracle (4,096 chains of one pixel, $m = 0$) and with the target $s$.

# %%
# NBVAL_CHECK_OUTPUT
x_sym, m_sym = sp.symbols("x_t m", real=True)
v_t = ab * s_data**2 + 1 - ab
eps_oracle = sp.sqrt(1 - ab) * (x_sym - sp.sqrt(ab) * m_sym) / v_t
mean_eq11 = (x_sym - beta / sp.sqrt(1 - ab) * eps_oracle) / sp.sqrt(alpha)
assert sp.simplify(sp.diff(mean_eq11, x_sym) - (1 - beta / v_t) / sp.sqrt(alpha)) == 0


def final_std(std, sigma2):
    """Exact std of DDPM Algorithm 2's output for N(0, std^2) data and the oracle, from the variance recursion."""
    V = 1.0
    for t in range(schedule.T, 0, -1):
        v = schedule.alpha_bars[t].item() * std**2 + 1 - schedule.alpha_bars[t].item()
        A = (1 - schedule.betas[t].item() / v) / schedule.alphas[t].sqrt().item()
        V = A * A * V + (sigma2[t].item() if t > 1 else 0.0)
    return math.sqrt(V)


print(f"{'target s':>8} {'exact, beta':>12} {'exact, beta_tilde':>18} {'MC, beta':>9} {'MC, beta_tilde':>15}")
for std in (0.05, 0.2, 1.0):
    oracle = GaussianOracle(schedule, mean=0.0, std=std, shape=(1,))
    x_T = torch.randn((4096, 1), generator=torch.Generator().manual_seed(42), dtype=torch.float64)
    row = [final_std(std, schedule.betas), final_std(std, schedule.posterior_variances)]
    for variance in ("beta", "beta_tilde"):
        out = samplers.ddpm_sample(oracle, schedule, x_T, variance, torch.Generator().manual_seed(43), progress=False)
        row.append(out.std().item())
    assert abs(row[2] / row[0] - 1) < 0.04 and abs(row[3] / row[1] - 1) < 0.04  # MC error of a std: ~1 / sqrt(2n)
    print(f"{std:8.2f} {row[0]:12.4f} {row[1]:18.4f} {row[2]:9.4f} {row[3]:15.4f}")
late_only = torch.where(torch.arange(schedule.T + 1) <= 50, schedule.posterior_variances, schedule.betas)
print(f"s = 0.05 with beta_tilde for t <= 50 and beta before: exact std {final_std(0.05, late_only):.4f}")

# %% [markdown]
# With the exact predictor, $\sigma_t^2 = \beta_t$ lands on the target spread almost exactly, and $\tilde\beta_t$ comes out a
# little narrow, most visibly (by 7%) for the narrowest data. For $s = 0.05$ the deficit is made in the last few dozen
# steps, where $\tilde\beta_t$ falls visibly below $\beta_t$ (the ratio table above; the last line shows that switching to
# $\tilde\beta_t$ only for $t \le 50$ already gives the full 7%): $\tilde\beta_t$ is the right variance when $x_0$ is pinned down by $x_t$, and with
# data this narrow it is not quite pinned down yet at those $t$. A trained network's own errors add spread of their
# own, and DDPM reports similar sample quality for both choices (sec. 3.2). Both are one line of
# `samplers.ddpm_sample`: `variance="beta_tilde"` (the default) or `variance="beta"`.
#
# ### Digits from the shipped model
#
# A DDPM chain costs $T = 1000$ network evaluations, one per step. We time one evaluation on 8 digits:

# %%
x_probe = torch.randn((8, 1, 28, 28), generator=torch.Generator().manual_seed(44))
with torch.inference_mode():
    model(x_probe, torch.full((8,), 500))
    start = time.perf_counter()
    for _ in range(5):
        model(x_probe, torch.full((8,), 500))
    per_call = (time.perf_counter() - start) / 5
print(
    f"one forward pass on 8 digits: {1000 * per_call:.0f} ms, so two T = 1000 chains cost about {2000 * per_call:.0f} s here"
)

# %% [markdown]
# Two full chains would take that long, more than the minute this chapter may take under CI, so the samples below come from
# `data/results/ddpm_samples.npz`, written by `python scripts/ddpm_samples.py` (8 digits per variance, seed 0; its JSON
# record holds the model's sha256, the command and the wall time). With `DDIM_BOOK_RECOMPUTE=1` they are generated
# here instead. Both runs start from the same $x_T$ and draw the same noise $z$, so they differ only in $\sigma_t$.

# %%
record_path = RESULTS / "ddpm_samples.json"
if RECOMPUTE:
    x_T = torch.randn((8, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    runs = {
        variance: samplers.ddpm_sample(
            model, schedule, x_T, variance, torch.Generator().manual_seed(1), return_trajectory=True, progress=False
        )
        for variance in ("beta_tilde", "beta")
    }
    samples = {variance: run.sample for variance, run in runs.items()}
    strip_t = [1000, 800, 600, 400, 250, 150, 50, 1]
    index = [runs["beta_tilde"].timesteps.index(t) for t in strip_t]
    strip_xt = torch.stack([runs["beta_tilde"].xs[i] for i in index], dim=1)[:, :, 0]
    strip_x0 = torch.stack([runs["beta_tilde"].x0_preds[i] for i in index], dim=1)[:, :, 0]
    del runs
else:
    record = json.loads(record_path.read_text())
    cache = np.load(RESULTS / record["file"])
    samples = {v: to_model_range(torch.from_numpy(cache["samples"][i])) for i, v in enumerate(record["variances"])}
    strip_t = cache["strip_t"].tolist()
    strip_xt = to_model_range(torch.from_numpy(cache["x_t"].reshape(-1, 28, 28))).reshape(record["n"], -1, 28, 28)
    strip_x0 = to_model_range(torch.from_numpy(cache["x0_pred"].reshape(-1, 28, 28))).reshape(record["n"], -1, 28, 28)
    same = record["model"]["sha256"] == entry["sha256"]
    print(f"cache: {record['command']!r}, n = {record['n']}, seed {record['seed']}, {record['wall_time_s']} s")
    print(
        "made with the current shipped model"
        if same
        else "NOTE: made with a different model than the shipped one; rerun the script"
    )

fig, axes = plt.subplots(1, 2, figsize=(7, 2.2))
for ax, (variance, x) in zip(axes, samples.items()):
    label = r"$\sigma_t^2 = \tilde\beta_t$" if variance == "beta_tilde" else r"$\sigma_t^2 = \beta_t$"
    show_grid(x, ax, title=f"DDPM, {label}", nrow=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Column by column the two rows share their starting noise, and mostly their digit: the noise injected along the
# chain is the same, only scaled differently, and the two samplers make the same large-scale decisions.
#
# ### Progressive generation
#
# At every step the network's $\epsilon_\theta$ also gives a guess of the final image,
# $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta(x_t, t)) / \sqrt{\bar\alpha_t}$ (DDPM eq. (15)). The sampler hands these
# back with `return_trajectory=True` (`trajectory.x0_preds[i]` is made at `trajectory.timesteps[i]`). For three of the
# chains above ($\sigma_t^2 = \tilde\beta_t$), the rows show $x_t$ and, below it, $\hat x_0$, at eight values of $t$ (DDPM fig. 6):

# %%
rows = torch.cat([strip_xt[:3, None], strip_x0[:3, None]], dim=1).reshape(-1, 1, 28, 28)
fig, ax = plt.subplots(figsize=(6.4, 3.4))
ax.imshow(image_grid(rows, nrow=len(strip_t)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
ax.set_xticks([14 + 29 * j for j in range(len(strip_t))], [f"t={t}" for t in strip_t], fontsize=8)
ax.set_yticks([14 + 29 * r for r in range(6)], [r"$x_t$", r"$\hat x_0$"] * 3, fontsize=8)
ax.tick_params(length=0)
for spine in ax.spines.values():
    spine.set_visible(False)
ax.set_title("progressive generation: the chain and its running guess of $x_0$")
fig.tight_layout()
plt.show()

# %%
final = strip_x0[:, -1]
change = [(strip_x0[:, j] - final).abs().mean().item() for j in range(len(strip_t))]
print("mean |x0_hat(t) - x0_hat(1)| per pixel:", ", ".join(f"t={t}: {d:.3f}" for t, d in zip(strip_t, change)))

# %% [markdown]
# At $t = 1000$ the guess is worthless: $\hat x_0$ divides by $\sqrt{\bar\alpha_{1000}} = 0.0064$, which magnifies every error
# of $\epsilon_\theta$ about 157 times (the display clips it to $[-1, 1]$). By $t = 600$ a blurred shape has appeared; between
# $t \approx 600$ and $t \approx 250$ the identity and the pose of the digit are settled, and the last few hundred steps
# sharpen strokes: large-scale features are decided early and details late (the printed distances to the final image
# shrink in the same way). DDPM reads this as a progressive lossy decompression (sec. 4.3). DDIM (chapters 5 and 6)
# exploits it from another side: a sampler that takes a few large steps instead of a thousand small ones.
#
# ### Progressive lossy decompression, and the autoregressive view
#
# DDPM (sec. 4.3) reads the reverse chain as a code. A sender holds a digit $x_0$, and sender and receiver share the model.
# The sender draws a forward path and transmits $x_T$, then $x_{T-1}$, and so on down the chain. With an idealised code
# for continuous variables (DDPM Algorithms 3 and 4), sending $x_{t-1}$ to a receiver who already holds $x_t$ and expects
# $p_\theta(x_{t-1} \mid x_t)$ costs on average $L_{t-1} = D_\text{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)$ nats, and
# sending $x_T$ costs $L_T$. On reaching $x_t$ the receiver has therefore paid the **rate** $L_T + \sum_{u > t} L_{u-1}$, the terms of
# the bound of chapter 3 summed from the top, and at any moment it can decode its best guess $\hat x_0(x_t)$; the error of that
# guess is the **distortion**. (The bound's last term, $L_0$, would send $x_0$ itself; we stop at $x_1$.)
#
# The next cell measures both on 32 test digits with the shipped model and $\sigma_t^2 = \tilde\beta_t$, for which
# $L_{t-1} = w_t\, \mathbb{E}\|\epsilon - \epsilon_\theta\|^2$ with no constant (chapter 3, sections 2 and 5). It runs the network at 22 timesteps, one batch
# each, and interpolates $\log L_{t-1}$ linearly in $\log t$ in between: the rates are estimates, which a grid of 150 timesteps
# confirms to within a few per cent. The distortion is split by scale into the error of the 7×7 grid of 4×4 block means
# (coarse) and the rest (detail within the blocks), each as a share of the error of the average digit, the best guess of
# a receiver that has been sent nothing.

# %%
from ddim_book.data import mnist_dataset

rd_images, _ = mnist_dataset("all")
rd_x0 = rd_images[:32]  # 32 test digits, pixels in [-1, 1]
rd_dim = rd_x0[0].numel()
rd_grid = [1, 2, 3, 5, 8, 12, 20, 30, 50, 75, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000]
pool = torch.nn.functional.avg_pool2d


def by_scale(err):
    """RMSE of the 4 x 4 block means of ``err`` and of what is left within the blocks."""
    block = pool(err, 4)
    detail = err - torch.nn.functional.interpolate(block, scale_factor=4)
    return block.pow(2).mean().sqrt().item(), detail.pow(2).mean().sqrt().item()


average_err = 127.5 * (rd_images.mean(dim=0, keepdim=True) - rd_x0)  # in grey levels, 0..255
average_rmse, (average_coarse, average_detail) = average_err.pow(2).mean().sqrt().item(), by_scale(average_err)
rd_gen = torch.Generator().manual_seed(45)
step_kl, rmse, coarse, detail = {}, {}, {}, {}
with torch.inference_mode():
    for t in rd_grid:
        rd_eps = torch.randn(rd_x0.shape, generator=rd_gen)
        rd_xt = schedule.q_sample(rd_x0, t, noise=rd_eps)  # what the receiver holds on reaching x_t
        rd_eps_hat = model(rd_xt, torch.full((rd_x0.shape[0],), t))
        a_bar = schedule.alpha_bars[t].item()
        rd_x0_hat = ((rd_xt - math.sqrt(1 - a_bar) * rd_eps_hat) / math.sqrt(a_bar)).clamp(-1, 1)  # DDPM eq. (15)
        if t >= 2:  # L_{t-1} with sigma_t^2 = beta_tilde_t
            w_t = schedule.betas[t] ** 2 / (
                2 * schedule.posterior_variances[t] * schedule.alphas[t] * (1 - schedule.alpha_bars[t])
            )
            step_kl[t] = w_t.item() * (rd_eps - rd_eps_hat).pow(2).sum(dim=(1, 2, 3)).mean().item()
        err = 127.5 * (rd_x0_hat - rd_x0)
        rmse[t] = err.pow(2).mean().sqrt().item()
        coarse[t], detail[t] = by_scale(err)

a_T = schedule.alpha_bars[schedule.T].item()  # L_T = KL(N(sqrt(a_T) x_0, (1 - a_T) I) || N(0, I)), in closed form
L_T = 0.5 * (a_T * rd_x0.pow(2).sum(dim=(1, 2, 3)) - rd_dim * (a_T + math.log(1 - a_T))).mean().item()
kl_ts = sorted(step_kl)
all_t = np.arange(2, schedule.T + 1)
kl_all = np.exp(np.interp(np.log(all_t), np.log(kl_ts), np.log([step_kl[t] for t in kl_ts])))
sent_below = np.concatenate([np.cumsum(kl_all[::-1])[::-1], [0.0]])  # sent_below[i] = sum of L_{u-1} over u >= i + 2
rate = {t: (L_T + sent_below[t - 1]) / (rd_dim * math.log(2)) for t in rd_grid}  # bits per pixel to reach x_t
print(f"average digit: RMSE {average_rmse:.1f} grey levels; L_T = {L_T:.4f} nats per digit")
print(
    f"{'t':>5} {'rate (bits/pixel)':>18} {'RMSE of x0_hat (grey levels)':>29} {'coarse left':>12} {'detail left':>12}"
)
for t in (1000, 700, 500, 300, 200, 100, 30, 20, 12, 5, 2, 1):
    print(
        f"{t:5d} {rate[t]:18.3f} {rmse[t]:29.2f} {coarse[t] / average_coarse:12.3f} {detail[t] / average_detail:12.3f}"
    )

assert all(coarse[t] / average_coarse < detail[t] / average_detail for t in (500, 300, 200, 100, 30))  # coarse first
assert rate[1] - rate[20] > rate[20]  # the last 20 steps cost more than all the others together

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
ax1.plot([rate[t] for t in rd_grid], [rmse[t] for t in rd_grid], "o-", ms=3)
for t in (1000, 500, 300, 100, 20, 5, 1):
    ax1.annotate(f"t={t}", (rate[t], rmse[t]), textcoords="offset points", xytext=(4, 4), fontsize=8)
ax1.set_xlim(-0.02, 1.15 * rate[1])
ax1.set(xlabel=r"rate: bits per pixel to reach $x_t$", ylabel=r"RMSE of $\hat x_0$ (grey levels)")
ax1.set_title("distortion against rate")
ax2.plot(rd_grid, [coarse[t] / average_coarse for t in rd_grid], "o-", ms=3, label="coarse: 4×4 block means")
ax2.plot(rd_grid, [detail[t] / average_detail for t in rd_grid], "s--", ms=3, label="detail within the blocks")
ax2.axhline(1.0, color="0.5", lw=0.8, ls=":", label="the average digit")
ax2.set_xlim(1000, 0)
ax2.set(xlabel="t (sampling runs left to right)", ylabel="error / error of the average digit")
ax2.set_title(r"error of $\hat x_0$ by scale")
ax2.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# On the left, the distortion falls steeply for almost no rate and then crawls. Down to $t \approx 700$ the receiver has paid
# about 0.001 bits per pixel and knows no more than the average digit (the RMSE is the average digit's, about 65 grey levels).
# By $t = 200$, for about 0.06 bits per pixel, the error is down to about 16 grey levels and the digit is recognisable. The last
# 20 steps then take more than half of the total of about 0.75 bits per pixel, to remove errors of about 3 grey levels or less, which
# nobody can see. DDPM makes the same observation on CIFAR10 (its fig. 5): most of the code length goes to imperceptible
# detail, which is how its models can be excellent lossy compressors, with good samples, and still have only middling
# log-likelihoods. On the right, the coarse error
# falls earlier than the detail error: at $t = 300$ about a quarter of the coarse error is left but almost half of the detail
# error. That is the quantitative side of the pictures above: the large-scale layout is decided first, details last.
# (At $t$ near $T$ both shares exceed 1: there $\hat x_0$ amplifies the network's errors, as noted above.)
#
# The **autoregressive view** (DDPM sec. 4.3) makes the ordering explicit. Take $T = d$, the number of pixels, and replace the
# Gaussian step by one that blanks out a pixel: $q(x_t \mid x_0)$ is $x_0$ with its first $t$ pixels masked, and $p(x_T)$ is the
# blank image. Each reverse step must copy the pixels it is given and predict one more from them, so (for discrete pixel
# values) the bound becomes exactly the negative log-likelihood of an autoregressive model that fills in the pixels one by
# one in a fixed order, and a sample costs one network pass per pixel. Gaussian diffusion keeps that structure (a short conditional per step, fed by everything decided so far) but
# its steps do not reveal coordinates: each raises the signal-to-noise ratio of every pixel a little, closer to sending an
# image bit-plane by bit-plane, the most significant first, than pixel by pixel. DDPM calls this a generalised bit
# ordering that no reordering of the pixels can express; the measurement above shows the order it takes on digits:
# coarse layout, then strokes, then invisible detail.
#
# ## Summary
#
# - The DDPM U-Net maps $(x_t, t)$ to an image of $x_t$'s shape: a down path (28 → 14 → 7), a middle block with
#   attention, and an up path that consumes every down-path activation through a skip connection; `model.describe()`
#   lists the shape after each block. The book's `mnist-small` network has 280,177 parameters, more than half of them
#   in the up path; sympy's block formulas account for every one.
# - The time enters as a sinusoidal embedding with frequencies $10000^{-k/h}$, mapped by an MLP and added to every
#   residual block as a per-channel shift; it tells all 1000 timesteps apart.
# - `Trainer._train_step` is DDPM Algorithm 1 line by line, with AdamW, gradient clipping and an EMA of the weights;
#   $L_\text{simple}$ is bounded below by the average of $\mathrm{Var}[\epsilon \mid x_t]$, which is exact for Gaussian data.
# - Algorithm 2's mean, eq. (11), is the posterior mean $\tilde\mu_t$ at $\hat x_0$; with an exact predictor on Gaussian data,
#   $\sigma_t^2 = \beta_t$ reproduces the data spread and $\tilde\beta_t$ comes out slightly narrow.
# - Along the chain, the predicted $\hat x_0$ settles the digit's identity early and its details late.
#
# ## Exercises
#
# **4.1 (code).** *The time embedding.* Write `my_embedding(t, dim)` returning the $(B, \mathrm{dim})$ sinusoidal embedding
# of an int64 tensor `t`: all sines first, then all cosines, with $w_k = 10000^{-k/(\mathrm{dim}/2)}$. Fill in the exercise
# cell and run it: `ch04.check_time_embedding` compares your function with `SinusoidalTimeEmbedding` for several sizes.
# The solution cell after it holds a worked answer.


# %% tags=["exercise"]
def my_embedding(t, dim):
    # the dim // 2 frequencies w_k (w_0 = 1); the angles t * w_k, shape (B, dim // 2)
    return ...  # sines first, then cosines, along dim 1


result = ch04.check_time_embedding(my_embedding)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_embedding(t, dim):
    half = dim // 2
    w = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
    angles = t.double()[:, None] * w[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


result = ch04.check_time_embedding(my_embedding)

# %% [markdown]
# **4.2 (code).** *One step of Algorithm 2.* Write `my_ddpm_step(x_t, eps, t, z, variance)` returning $x_{t-1}$ for an int
# `t`, with `variance` either `"beta_tilde"` or `"beta"`, using the arrays of `schedule`. Remember that Algorithm 2 adds no noise
# at $t = 1$. Then loop it from $t = 1000$ down to 1 and compare with `samplers.ddpm_sample` started from the same $x_T$
# and generator. (The solution loops over the exact Gaussian noise predictor, for which 1000 steps cost nothing; with
# the shipped `model` the same loop works on digits but takes seconds per hundred steps on a CPU.)


# %% tags=["exercise"]
def my_ddpm_step(x_t, eps, t, z, variance):
    # the mean of DDPM eq. (11), plus sqrt(beta_tilde_t or beta_t) * z; no noise at t = 1
    return ...


result = ch04.check_ddpm_step(my_ddpm_step)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_ddpm_step(x_t, eps, t, z, variance):
    beta_t, ab_t, ab_prev = schedule.betas[t], schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps) / (1 - beta_t).sqrt()
    if t == 1:
        return mean
    var = (1 - ab_prev) / (1 - ab_t) * beta_t if variance == "beta_tilde" else beta_t
    return mean + var.sqrt() * z


result = ch04.check_ddpm_step(my_ddpm_step)

# %% tags=["solution"]
# an exact noise predictor: 1000 steps cost nothing
loop_model = GaussianOracle(schedule, mean=0.0, std=0.5, shape=(16,))
loop_x = torch.randn((8, 16), generator=torch.Generator().manual_seed(47), dtype=torch.float64)
loop_start, loop_gen = loop_x.clone(), torch.Generator().manual_seed(48)
for loop_t in range(schedule.T, 0, -1):  # ddpm_sample draws z only for t > 1, so the two generators stay in step
    loop_z = torch.randn(loop_x.shape, generator=loop_gen, dtype=torch.float64) if loop_t > 1 else None
    loop_x = my_ddpm_step(loop_x, loop_model(loop_x, torch.full((8,), loop_t)), loop_t, loop_z, "beta_tilde")
reference = samplers.ddpm_sample(
    loop_model, schedule, loop_start, generator=torch.Generator().manual_seed(48), progress=False
)
assert (loop_x - reference).abs().max().item() < 1e-10
print("my_ddpm_step looped from t = 1000 to 1 lands where ddpm_sample does")


# %% [markdown]
# **4.3 (pen and paper).** *Count by hand.* Using the block formulas of section 1, count the parameters of the first
# residual block of `up.1`. The table shows it works at 14×14 with 32 output channels; what is its input channel count,
# and why does it need a 1×1 convolution on its skip path? Worked solution: appendix C; the solution cell below counts
# the block with `count`.

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
print(f"up.1 res.0: {net.up[1].res[0].conv1.in_channels} input channels, {count(net.up[1].res[0]):,} parameters")
