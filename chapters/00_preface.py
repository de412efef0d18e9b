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
# # Preface — how to use this book
#
# This is a book about two papers: *Denoising Diffusion Probabilistic Models* (DDPM; Ho, Jain & Abbeel 2020,
# arXiv:2006.11239) and *Denoising Diffusion Implicit Models* (DDIM; Song, Meng & Ermon 2021, arXiv:2010.02502,
# equation numbers from its v4). It is meant to be run, not only read. Every chapter follows the same pattern:
#
# 1. an idea in words;
# 2. its derivation in **sympy**, closed by an assertion that would fail if the identity were false;
# 3. the same identity confirmed **numerically**, on real MNIST digits or on distributions whose answer is known exactly;
# 4. a call into the tested package `ddim_book`, which holds the one implementation of every formula the book derives.
#
# The notebooks never re-implement the package: they derive a formula, then import it. When you read
# `schedule.q_posterior(x0, x_t, t)` in chapter 4, it is the function whose every coefficient chapter 2 proved.

# %% [markdown]
# ## Prerequisites
#
# The book assumes a first course in each of the following, and recalls anything beyond it where it is used.
#
# - **Probability.** Random variables, densities and expectations; mean, variance and covariance, and how they
#   behave under sums and scaling; the Gaussian in one and in $d$ dimensions (with covariance $c I$ first of all) and
#   the fact that a sum of independent Gaussians is Gaussian; conditional densities, Bayes' rule and conditional
#   expectation $\mathbb E[\epsilon \mid x_t]$. The KL divergence and the score are introduced in chapter 3, where
#   they are first needed.
# - **Linear algebra.** Vectors, dot products and norms, the Cauchy–Schwarz inequality (appendix A), a matrix acting
#   on a vector, and an inverse and a determinant of a small covariance matrix (the 2-D mixtures).
# - **Calculus.** Derivatives, gradients and the chain rule (scores, changes of variable); first- and second-order
#   Taylor expansions (every "order of a method" argument); completing the square in a Gaussian exponent (chapter 2
#   does it step by step); and a first ordinary differential equation $dx/dt = f(x, t)$ with Euler's method, which
#   chapter 7 builds on and chapter 9 extends.
# - **Python.** Functions, lists and dictionaries; NumPy-style arrays with indexing, slicing and broadcasting;
#   PyTorch tensors, their `dtype` and `device`, seeded `torch.Generator`s, and `nn.Module` as "a function with
#   parameters" (chapter 4 trains one, and explains the training loop); reading a matplotlib figure. sympy is used
#   through a few calls (`symbols`, `simplify`, `expand`), each shown where it first appears.
#
# No measure theory or stochastic calculus is needed: chapters 7–9 use ODEs and discrete Markov chains only.
#
# **What can be skipped, by whom.**
#
# - You know DDPM: skim chapters 1–3 (their summaries collect the identities used later) and chapter 4's sampling
#   section, then start at chapter 5.
# - You want to use DDIM rather than derive it: read chapter 1's marginal $q(x_t \mid x_0)$, then chapters 6 and 7,
#   and appendix B if you sample with `diffusers`; chapter 5 is the proof that the sampler is legitimate.
# - You do not train models: chapter 4's training section runs only a 50-step demonstration on a tiny network, and
#   every later chapter loads the shipped model.
# - You care about the theory: appendix B (library settings) can be left out; chapter 8 (the score view) and
#   chapter 9 (a higher-order solver) are optional extensions, and chapter 9 needs chapter 7.

# %% [markdown]
# ## Running the book
#
# **Set-up.** Install the package with its development extras from the repository root,
# `pip install -e ".[dev]"` (the README has the two commands that create a fresh environment). Everything runs on a
# laptop CPU; no download is needed, because the MNIST test split (10,000 digits, md5-checked) ships in `data/mnist/`.
#
# **Two files per chapter.** Each chapter is a pair made with [jupytext](https://jupytext.readthedocs.io):
# `chapters/NN_topic.py` (plain Python in the "percent" format, the source of truth, easy to diff and review) and
# `chapters/NN_topic.ipynb` (the same cells, executed, with their outputs). Edit whichever you like, then bring the other
# up to date with
#
#     jupytext --sync chapters/01_forward_process.py      # or the .ipynb you edited
#
# **Re-executing.** `python scripts/build_book.py` runs every chapter top to bottom in a fresh kernel and writes the
# `.ipynb` with its outputs; `python scripts/build_book.py chapters/02_reverse_posterior.py` rebuilds one chapter. It
# prints the wall time of each: every chapter is budgeted to about a minute on a 2-core CPU.
#
# **Testing.** `pytest` runs the package's tests and, through nbval, every notebook. All cells must run without error,
# and the cells whose first line is `# NBVAL_CHECK_OUTPUT` (sympy results, tables of numbers from fixed seeds) must
# reproduce their stored output exactly. One chapter at a time:
#
#     pytest --nbval-lax chapters/01_forward_process.ipynb
#
# **Cached results.** A few experiments (long sampling sweeps, trained models) take far longer than a minute. Their
# results are stored in `data/results/` and `data/checkpoints/`, each with the script and command that regenerates
# it, and the chapters read them by default. Set the environment variable `DDIM_BOOK_RECOMPUTE=1` to recompute
# instead, e.g. `DDIM_BOOK_RECOMPUTE=1 python scripts/build_book.py chapters/NN_topic.py`. (`DDIM_BOOK_DATA` and
# `DDIM_BOOK_CHECKPOINTS` point the package at other data and checkpoint folders.)
#
# **CPU or GPU.** The chapters run on the CPU by default, in float64 wherever numbers are printed, with fixed seeds, so
# that their checked outputs reproduce on any machine. The package itself is GPU-ready: samplers run on the device of
# the tensors they are given, `pretrained.load("mnist", device="cuda")` puts the shipped model on a GPU, and
# `ddim-book sample --device auto` and `ddim-book train --config NAME` pick CUDA when it is available (with bf16
# autocast and channels-last layout; several GPUs through `torchrun`). Moving a chapter's own computations to a GPU
# gives the same results up to rounding, but the checked cells compare printed digits, so keep the CPU when testing.
#
# **Exercises.** Each chapter ends with exercises, numbered N.k (chapter N, exercise k; A.k and B.k in the appendices)
# and marked *code* or *pen and paper*. A code exercise is a pair of cells. The **exercise cell** holds a stub for you
# to fill in (its body is `return ...`) and a call of its grader from `ddim_book.exercises`, e.g.
# `ch01.check_q_sample(my_q_sample)`; while the stub is unfilled the grader prints "Exercise 1.1 not attempted yet: fill
# in my_q_sample, then run this cell again." A right answer prints "all cases passed"; a wrong one stops at the first
# case that failed, with what was expected and what came back. The **solution cell** after it holds a worked answer
# that the same grader passes. Pen-and-paper exercises are answered in appendix C. The two kinds of cell are tagged
# `exercise` and `solution` in the notebooks, and `python scripts/student_version.py OUT` writes a copy of the book
# without the solution cells and without outputs, for a course: it still runs top to bottom.

# %% [markdown]
# ## The package `ddim_book`
#
# | module | what it holds | derived in |
# |---|---|---|
# | `schedules` | `NoiseSchedule`: betas, alphas, alpha_bars, the forward marginal `q_sample`, the posterior `q_posterior`, `snr` | ch. 1, 2 |
# | `samplers` | `ddim_step`, `ddim_sample`, `ddpm_sample`, `ddim_invert`, `ddim_sigma`, `timesteps` | ch. 4, 5, 6, 7 |
# | `subsequences`, `latents` | the sub-sequences $\tau$ of DDIM; `slerp` between latents | ch. 6, 7 |
# | `oracles` | exact noise predictors for Gaussian and Gaussian-mixture data (a "perfect network") | ch. 3, appendix A |
# | `langevin` | Langevin and annealed Langevin dynamics, the denoising score-matching target | ch. 8 |
# | `data`, `toy` | MNIST (md5-checked, pixels in $[-1, 1]$, a fixed held-out split) and 2-D toy data | all |
# | `models`, `training`, `pretrained` | the U-Net and MLP denoisers, the trainer, the shipped MNIST model | ch. 3, 4 |
# | `metrics` | Fréchet LeNet distance and classifier scores for MNIST; sliced Wasserstein and MMD for 2-D points | ch. 6, appendix A |
# | `plotting`, `exercises` | image grids and the book's figure style; the exercise graders | all |
#
# The same functions are on the command line: `ddim-book sample`, `ddim-book train`, `ddim-book evaluate`
# (also `python -m ddim_book`). The cell below lists the modules with the first line of each one's documentation.

# %%
import importlib

import torch

from ddim_book import samplers
from ddim_book.schedules import NoiseSchedule

modules = ["schedules", "samplers", "subsequences", "latents", "oracles", "langevin", "data", "toy"]
modules += ["models", "training", "pretrained", "metrics", "plotting", "exercises"]
for name in modules:
    doc = (importlib.import_module(f"ddim_book.{name}").__doc__ or "").strip()
    first_paragraph = " ".join(doc.split("\n\n")[0].split())
    print(f"ddim_book.{name:13s} {first_paragraph}")
print(f"\ntorch {torch.__version__}; CUDA available: {torch.cuda.is_available()}")

# %% [markdown]
# ## Chapter map
#
# | | chapter | the question it answers |
# |---|---|---|
# | 0 | Preface | how to run the book, the notation |
# | 1 | The forward process | how is data turned into noise, and what is $q(x_t \mid x_0)$? |
# | 2 | The reverse posterior | what is $q(x_{t-1} \mid x_t, x_0)$, the target of every reverse step? |
# | 3 | The training objective | how does the variational bound become $L_\text{simple}$, "predict the noise"? |
# | 4 | DDPM in practice | training the U-Net on MNIST and sampling with DDPM's 1000 steps |
# | 5 | DDIM's non-Markovian forward process | which other forward processes share DDPM's marginals? |
# | 6 | The DDIM sampler | "predicted $x_0$", "direction pointing to $x_t$", random noise; $\eta$ and sub-sequences |
# | 7 | DDIM as an ODE | the deterministic sampler as an ODE solver; encoding, inversion and interpolation |
# | 8 | Score matching and Langevin dynamics | the score-based view of the same models |
# | 9 | Beyond DDIM | DDIM as the first-order exponential integrator, and a second-order solver |
# | A | How exact is DDIM with a perfect network? | the sampler's own error, measured with the exact oracles |
# | B | From this book to diffusers | which `DDIMScheduler` settings reproduce `ddim_sample`, and what the others change |
# | C | Worked solutions | the pen-and-paper exercises of every chapter, solved step by step, with sympy checks |
#
# Chapters 1–3 are the theory every later chapter leans on. Chapters 5–7 are the DDIM paper; they need chapter 2's
# posterior and chapter 3's objective, but not chapter 4's training. Chapter 8 can be read at any time after 3,
# chapter 9 after 7. Appendix A needs chapter 3's oracles and chapter 6's sampler; appendix B needs chapter 6 and
# the `diffusers` library (installed by the `dev` extra).

# %% [markdown]
# ## Notation
#
# The book uses the DDPM paper's names throughout, in the text and in the code.
#
# | symbol | meaning | in code |
# |---|---|---|
# | $T$ | number of diffusion steps (1000 in the book) | `schedule.T` |
# | $t$ | a timestep, $t = 1, \dots, T$; $t = 0$ is the clean data | an `int`, or an int64 tensor of shape (B,) |
# | $\beta_t$ | variance of the noise added at step $t$ | `schedule.betas[t]` |
# | $\alpha_t = 1 - \beta_t$ | one step's signal factor (squared) | `schedule.alphas[t]` |
# | $\bar\alpha_t = \prod_{s \le t} \alpha_s$ | the whole way's signal factor (squared); $\bar\alpha_0 = 1$ | `schedule.alpha_bars[t]` |
# | $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$ | signal-to-noise ratio of $x_t$ | `schedule.snr(t)` |
# | $x_0$, $x_t$ | a data point (pixels in $[-1, 1]$) and its noisy version at step $t$ | `x0`, `x_t` |
# | $\epsilon$ | standard normal noise, $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$ | `noise`, `eps`; `schedule.q_sample(x0, t, noise)` |
# | $\epsilon_\theta(x_t, t)$ | the network's prediction of $\epsilon$ | `model(x_t, t)` |
# | $\tilde\mu_t$, $\tilde\beta_t$ | mean and variance of $q(x_{t-1} \mid x_t, x_0)$ | `schedule.q_posterior(x0, x_t, t)`, `schedule.posterior_variances[t]` |
# | $\hat x_0$ | predicted clean data, $(x_t - \sqrt{1 - \bar\alpha_t}\, \epsilon_\theta) / \sqrt{\bar\alpha_t}$ | `ddim_step(..., return_x0=True)` |
# | $\sigma_t$, $\eta$ | DDIM's reverse noise level and its scale (DDIM eq. (16)); $\sigma$ has other meanings too (below) | `samplers.ddim_sigma(a_t, a_prev, eta)` |
# | $\tau_1 < \dots < \tau_S$ | the $S$ timesteps a DDIM sampler visits | `samplers.timesteps(T, S, spacing)` |
# | $q$, $p_\theta$ | the forward process (fixed) and the reverse process (learned) | |
#
# Arrays of the schedule have length $T + 1$ and are indexed by $t$ itself, so code and page read the same:
# `schedule.alpha_bars[t]` is $\bar\alpha_t$, and `schedule.alpha_bars[0] = 1`.
#
# ### The DDPM $\leftrightarrow$ DDIM notation bridge
#
# The DDIM paper writes $\alpha_t$ for the cumulative product. Every time the book quotes a DDIM equation it
# translates it with this table.
#
# | DDPM and this book | DDIM paper | in code |
# |---|---|---|
# | $\bar\alpha_t$ | $\alpha_t$ | `schedule.alpha_bars[t]` |
# | $\alpha_t = \bar\alpha_t / \bar\alpha_{t-1}$ | $\alpha_t / \alpha_{t-1}$ | `schedule.alphas[t]` |
# | $\beta_t = 1 - \alpha_t$ | $1 - \alpha_t / \alpha_{t-1}$ | `schedule.betas[t]` |
# | $\bar\alpha_0 = 1$ | $\alpha_0 := 1$ | `schedule.alpha_bars[0]` |
# | $\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t$ | $\sigma_t^2$ at $\eta = 1$ | `schedule.posterior_variances[t]` |
# | $\sigma_t(\eta) = \eta \sqrt{\frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}} \sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}}$ | $\sigma_t(\eta)$, eq. (16) | `samplers.ddim_sigma(schedule.alpha_bars[t], schedule.alpha_bars[t-1], eta)` |
# | $t = 1, \dots, T$ | $t = 1, \dots, T$ | `t` (never shifted) |
#
# Both papers count $t$ from 1, and so does the book. Many implementations store timesteps from 0 instead
# (their index $i$ is our $t = i + 1$, and their `alphas_cumprod[i]` is our $\bar\alpha_{i+1}$); when comparing with
# such code, shift by one. Because $\bar\alpha_0 = 1$ is stored, the last DDIM step $t = \tau_1 \to 0$ needs no special case:
# it lands on $\sqrt{\bar\alpha_0}\, \hat x_0 = \hat x_0$.
#
# The cell below checks the bridge on DDPM's schedule: reading the schedule in DDIM's notation gives back
# $\beta_t$, and DDIM's $\sigma_t^2$ at $\eta = 1$ is DDPM's $\tilde\beta_t$, with $\sigma_1 = 0$ because $\alpha_0 = 1$.

# %%
# NBVAL_CHECK_OUTPUT
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)
alpha_ddim = schedule.alpha_bars  # the DDIM paper's alpha_t, t = 0..T, with alpha_0 = 1
t_all = torch.arange(1, schedule.T + 1)
beta_from_ddim = 1 - alpha_ddim[t_all] / alpha_ddim[t_all - 1]
sigma_eta1 = samplers.ddim_sigma(alpha_ddim[t_all], alpha_ddim[t_all - 1], eta=1.0)
assert alpha_ddim[0] == 1.0
assert torch.allclose(beta_from_ddim, schedule.betas[1:], rtol=1e-9, atol=0)
assert torch.allclose(sigma_eta1**2, schedule.posterior_variances[1:], rtol=1e-9, atol=1e-15)
print(
    f"{'t':>5} {'DDIM alpha_t':>13} {'1 - a_t/a_(t-1)':>16} {'DDPM beta_t':>12} {'sigma_t(1)^2':>13} {'beta_tilde_t':>13}"
)
for t in (1, 2, 500, 1000):
    print(
        f"{t:5d} {alpha_ddim[t].item():13.6e} {beta_from_ddim[t - 1].item():16.6e} {schedule.betas[t].item():12.6e} "
        f"{sigma_eta1[t - 1].item() ** 2:13.6e} {schedule.posterior_variances[t].item():13.6e}"
    )

# %% [markdown]
# The index convention in code: arrays have length $T + 1$ and are read at $t$ itself, and a DDIM run with $S$
# steps visits the sub-sequence $\tau$ of `samplers.timesteps`, from $\tau_S$ down to $\tau_1$, then one last step
# to $\bar\alpha_0 = 1$.

# %%
# NBVAL_CHECK_OUTPUT
taus = samplers.timesteps(schedule.T, 50, "uniform")
assert len(schedule.alpha_bars) == schedule.T + 1 and schedule.alpha_bars[0] == 1 and schedule.betas[0] == 0
assert taus[0] == 1 and taus[-1] == 981 and len(taus) == 50
print(
    f"len(alpha_bars) = {len(schedule.alpha_bars)}, alpha_bars[0] = {schedule.alpha_bars[0].item()}, betas[0] = {schedule.betas[0].item()}"
)
print(f"uniform tau for S = 50: {taus[:3]} ... {taus[-2:]}")

# %%
# NBVAL_CHECK_OUTPUT
# the last DDIM step goes to alpha_bar_0 = 1 and returns the predicted x_0 exactly
x_t = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
eps = torch.tensor([[0.5, 0.1]], dtype=torch.float64)
a_1 = schedule.alpha_bars[1].item()
x_0 = samplers.ddim_step(x_t, eps, a_1, 1.0, eta=1.0)
x0_hat = (x_t - (1 - a_1) ** 0.5 * eps) / a_1**0.5
assert torch.allclose(x_0, x0_hat, rtol=1e-12, atol=1e-15)
print(
    f"last step: x_0 = {[round(v, 6) for v in x_0[0].tolist()]} = x0_hat = {[round(v, 6) for v in x0_hat[0].tolist()]}"
)

# %% [markdown]
# ### One letter, several meanings
#
# The papers the book follows reuse a few letters, and the book keeps their notation where it quotes them. Each
# chapter says which meaning it uses; this table collects them.
#
# | symbol | meaning | where |
# |---|---|---|
# | $\sigma_t$ | standard deviation of DDPM's reverse step $p_\theta(x_{t-1} \mid x_t)$, with $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ | ch. 2, 3, 4; ch. 8 sec. 8 (DDPM's update as a Langevin step) |
# | $\sigma_t$, $\sigma_t(\eta)$ | the free standard deviation of DDIM's $q_\sigma$, set by $\eta$ in DDIM eq. (16); $\sigma_t(1)^2 = \tilde\beta_t$, and $\hat\sigma_t$ the larger choice of DDIM sec. 5.1 | ch. 5, 6, appendix B |
# | $\sigma$, $\sigma_t$ | $\sqrt{1 - \bar\alpha}/\sqrt{\bar\alpha}$: the time of DDIM's ODE (eq. (14)), and NCSN's noise scale | ch. 7, 8 sec. 3, 9 |
# | $\sigma_t$ (quoted) | the DPM-Solver paper's $\sqrt{1 - \bar\alpha_t}$, translated where quoted | ch. 9 |
# | $\mu$, $\sigma$, $\sigma^2$ | a generic Gaussian's mean, standard deviation and variance | ch. 2 sec. 2 |
# | $s$ | standard deviation of Gaussian data $x_0 \sim \mathcal N(m, s^2)$ (the oracles' `std`) | ch. 3, 4, 7, 8, 9, appendices A and C |
# | $s$ | offset of the cosine schedule, 0.008: the improved-DDPM paper's own name (`NoiseSchedule.cosine(s=...)`) | ch. 1 |
# | $s$ | an index or an earlier time: $\bar\alpha_t = \prod_{s \le t}\alpha_s$; a solver step from $s$ to $t$ | ch. 0, 1; ch. 9 |
# | $s_\theta$ | the score network, $s_\theta(x_t, t) \approx \nabla_{x_t} \log q_t(x_t)$ | ch. 8 |
# | $\epsilon$ | standard normal noise, and $\epsilon_\theta$ the network's prediction of it | every chapter |
# | $\alpha_t$ | $1 - \beta_t$ (DDPM's and the book's) | every chapter |
# | $\alpha_t$ (quoted) | the DDIM paper's $\bar\alpha_t$; the DPM-Solver paper's $\sqrt{\bar\alpha_t}$ | ch. 0, 5; ch. 9 |
# | $\delta$, $\delta_i$ | the step size of Langevin dynamics, at level $i$ of the annealed ladder $\delta_i = \delta_0\, v_i / v_L$ (NCSN's $\alpha_i$ and $\epsilon$, renamed here) | ch. 8 |
# | $w_t$ | the weight of term $t$ in a loss: the variational bound's (DDPM eq. (12)), and denoising score matching's, $w(\sigma)$ (NCSN's $\lambda(\sigma)$) | ch. 3 sec. 5, ch. 4 sec. 4; ch. 8 sec. 8 |
# | $w$, $w_k$, $w_i$ | other weights, and a width: mixture weights $w_k$ (ch. 7 sec. 2, ch. 8); importance weights $w_i$ (ch. 3 sec. 7); the time embedding's frequencies $w_k$ (ch. 4 sec. 2); the slope $w$ of chapter 3's toy VAE decoder (sec. 1); the width $w$ of chapter 8's thin ring (sec. 6) | as listed |
# | $\zeta_t$ | the coefficient of $x_0$ in the mean of $q_\sigma(x_{t-1} \mid x_t, x_0)$, next to $\kappa_t$ (a review's $\lambda_t$) | ch. 5, appendix C |
# | $\xi$ | the interpolation weight of lerp and slerp (`xi` in `samplers.slerp`) | ch. 7, appendix C |
# | $\lambda$ | half the log signal-to-noise ratio, $-\log\sigma$: DPM-Solver's time | ch. 9, appendix C |
# | $m$ | the mean of Gaussian data $x_0 \sim \mathcal N(m, s^2)$ (the oracles' `mean`); $\tilde\mu_t$ and $\mu_\theta$ are the means of reverse steps (DDPM's names, ch. 2–5), and $M$ the mean of the start of a DDIM chain (appendix A) | ch. 3, 4, 7, 8, 9, appendices A and C |
# | $k$ | diffusers' 0-based timestep, $k = t - 1$ | appendix B |
#
# The sharpest clash is $\sigma_t$: in chapters 2–4 a fixed part of DDPM, in chapters 5–6 a free parameter of DDIM, in
# chapters 7–9 a time. The first two agree at $\eta = 1$ with $\sigma_t^2 = \tilde\beta_t$; the third is a different
# quantity altogether. Where a source's letter would add a clash without need, the book renames it and says so where it
# quotes the source: a loss weight is $w_t$ (NCSN's $\lambda(\sigma)$), the coefficient next to $\kappa_t$ is $\zeta_t$,
# and the interpolation weight is $\xi$, so that $\lambda$ is only DPM-Solver's time; Gaussian data have mean $m$ and
# standard deviation $s$ in every chapter; and the code calls its noise schedule `schedule`, never `s`.

# %% [markdown]
# ## Conventions
#
# - Equations are cited by their number in the papers: "DDPM eq. (4)", "DDIM eq. (12)", and the chapter that derives them;
#   the package's docstrings do the same, so every function can be traced to the page.
# - Printed numbers come from seeded CPU computations (`torch.Generator().manual_seed(k)`), mostly in float64, rounded to
#   the digits that are meaningful.
# - Figures are small and few, so that the executed notebooks stay light.
# - Where a commonly copied derivation has a slip, the chapter shows the correct form and lets sympy show the difference.
