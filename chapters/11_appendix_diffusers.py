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
# # Appendix B — From this book to diffusers
#
# Most readers will meet DDIM next in Hugging Face's `diffusers` library (von Platen et al. 2022,
# github.com/huggingface/diffusers), whose `DDIMScheduler` implements the same update, DDIM eq. (12), as
# `samplers.ddim_sample`. The two agree to float32 rounding once a handful of settings are right, and differ
# silently when they are not: diffusers counts timesteps from 0, and several constructor arguments change which
# timesteps are visited and where the last step lands. This appendix reproduces `ddim_sample` with `DDIMScheduler`,
# then takes the settings that trip users one at a time: what each one does, how large a difference it makes, and
# which value removes it. It needs diffusers, which the `dev` and `bench` extras install.
#
# In this appendix you will be able to
#
# - translate a `DDIMScheduler` configuration into the book's 1-based timesteps, step by step;
# - reproduce `ddim_sample` with `DDIMScheduler` to a stated tolerance, for $\eta = 0$ and $\eta > 0$;
# - recognise the effect of `set_alpha_to_one`, `steps_offset`, `clip_sample`, `timestep_spacing` and $\eta$, and
#   pick the values that match the book (or a given code base).
#
# The model is the exact noise predictor of a 2-D mixture of eight Gaussians on a circle of radius 1.5
# (`GaussianMixtureOracle.ring_2d`, chapter 3's "perfect network"): it is a real nonlinear model, costs little,
# and works in float64, so every difference below is the sampler's and not a network's. Section B.2 repeats the main
# check with the shipped MNIST U-Net.

# %%
import warnings

import matplotlib.pyplot as plt
import torch
from tqdm import TqdmWarning

with warnings.catch_warnings():  # diffusers imports tqdm.auto, which warns in a notebook without ipywidgets
    warnings.simplefilter("ignore", TqdmWarning)
    from diffusers import DDIMScheduler, DDPMScheduler

from ddim_book import pretrained, samplers
from ddim_book.bench.versus_diffusers import ddim_scheduler, scheduler_sample
from ddim_book.oracles import GaussianMixtureOracle, GaussianOracle
from ddim_book.plotting import book_style
from ddim_book.schedules import NoiseSchedule

book_style()
torch.set_num_threads(1)  # the tensors here are small: one thread is faster than two competing ones
schedule = NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)  # DDPM's schedule, diffusers' default too
T = schedule.T
oracle = GaussianMixtureOracle.ring_2d(schedule)  # exact E[eps | x_t] for 8 Gaussians on a circle of radius 1.5
x_T = torch.randn((512, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def gap(a, b):
    """max |a - b| over all coordinates: the one distance this appendix reports."""
    return (a - b).abs().max().item()


# %% [markdown]
# ## B.1 The dictionary
#
# | this book | diffusers |
# |---|---|
# | timestep $t = 1, \dots, T$ | timestep $k = t - 1 = 0, \dots, T - 1$ |
# | `schedule.alpha_bars[t]`, with `alpha_bars[0] = 1` | `scheduler.alphas_cumprod[t - 1]` (float32); $\bar\alpha_0$ is `final_alpha_cumprod` |
# | `model(x_t, t)` | `unet(x_t, k)`: a model trained with diffusers is called with $k$ |
# | `samplers.timesteps(T, S, "uniform")` | `timestep_spacing="leading"`, `steps_offset=0` |
# | `samplers.timesteps(T, S, "trailing")` | `timestep_spacing="trailing"` (exactly only when $S$ divides $T$, B.8) |
# | the last step goes to $\bar\alpha_0 = 1$ | `set_alpha_to_one=True` |
# | `clip_x0=None` (the default) | `clip_sample=False` (the default is `True`) |
# | `clip_x0=True` | `clip_sample=True` and `step(..., use_clipped_model_output=True)` |
# | `ddim_sample(..., eta=e, generator=g)` | `step(..., eta=e, generator=g)` at every step |
# | `ddpm_sample(variance="beta_tilde")`, `"beta"` | `DDPMScheduler(variance_type="fixed_small")`, `"fixed_large"` |
#
# The cell prints the defaults of a `DDIMScheduler()` next to the values that make it the book's sampler, and
# checks the first line of the table: diffusers' `alphas_cumprod[k]` is the book's $\bar\alpha_{k+1}$, not $\bar\alpha_k$.

# %%
# NBVAL_CHECK_OUTPUT
default = DDIMScheduler()
matched = ddim_scheduler(schedule, 20, steps_offset=0)  # the settings ddim_book.bench uses against diffusers
print(f"{'setting':<20} {'DDIMScheduler()':>16} {'matches the book':>17}")
for key in ("num_train_timesteps", "beta_start", "beta_end", "clip_sample", "set_alpha_to_one", "steps_offset"):
    print(f"{key:<20} {default.config[key]!s:>16} {matched.config[key]!s:>17}")
print(f"{'timestep_spacing':<20} {default.config.timestep_spacing:>16} {matched.config.timestep_spacing:>17}")
cumprod = matched.alphas_cumprod.double()
shifted = (cumprod - schedule.alpha_bars[1:]).abs().max().item()
unshifted = (cumprod - schedule.alpha_bars[:-1]).abs().max().item()
assert shifted < 1e-6 and unshifted > 1e-3
print(f"\nmax |alphas_cumprod[k] - alpha_bars[k + 1]| = {shifted:.1e}  (float32 rounding)")
print(f"max |alphas_cumprod[k] - alpha_bars[k]|     = {unshifted:.1e}")

# %% [markdown]
# Only `clip_sample` separates the default scheduler from the book's sampler; the others matter as soon as a model's
# configuration file sets them (B.5, B.6). diffusers keeps its schedule in float32, so agreement is to about
# $10^{-6}$, not to float64 rounding.
#
# ## B.2 `ddim_sample` reproduced
#
# `ddim_book.bench.versus_diffusers`, the module behind `ddim-book bench`'s comparison with diffusers, has the two
# pieces: `ddim_scheduler(schedule, S, steps_offset)` builds a `DDIMScheduler` with the settings of the table, and
# `scheduler_sample(model, scheduler, x_T)` runs diffusers' loop, `x = scheduler.step(model(x, k + 1), k, x)`, with
# the book's model called at $t = k + 1$. We run both samplers from the same $x_T$ and compare. A second comparison
# runs `ddim_sample` on a "twin" schedule built from diffusers' float32 `alphas_cumprod`: it separates the
# rounding of the schedule from everything else.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'S':>4} {'max |ddim_sample - DDIMScheduler|':>34} {'same, on the float32 twin schedule':>36}")
for S in (10, 20, 50, 100):
    sch = ddim_scheduler(schedule, S, steps_offset=0)
    twin = NoiseSchedule.from_alpha_bars(sch.alphas_cumprod.double())
    theirs = scheduler_sample(oracle, sch, x_T)
    ours = samplers.ddim_sample(oracle, schedule, x_T, steps=S, progress=False)
    ours_twin = samplers.ddim_sample(oracle, twin, x_T, steps=S, progress=False)
    assert gap(ours, theirs) < 1e-5 and gap(ours_twin, theirs) < 1e-6
    print(f"{S:>4} {gap(ours, theirs):>34.1e} {gap(ours_twin, theirs):>36.1e}")
print(f"max |x_0| = {ours.abs().max().item():.2f}")

# %% [markdown]
# The samplers agree to about $10^{-6}$ (the cell asserts $10^{-5}$) on samples as large as 1.9, and to
# $5 \times 10^{-8}$ once they share a schedule (asserted: $10^{-6}$); what is left is diffusers taking square roots
# of float32 numbers. The shipped U-Net runs in float32, so there the
# tolerance is $10^{-4}$ (this cell prints no digits, because float32 convolutions differ between CPUs in the last
# bits):

# %%
unet, unet_schedule = pretrained.load("mnist")
digits_T = torch.randn((4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
ours = samplers.ddim_sample(unet, unet_schedule, digits_T, steps=10, progress=False)
theirs = scheduler_sample(unet, ddim_scheduler(unet_schedule, 10, steps_offset=0), digits_T)
assert gap(ours, theirs) < 1e-4
print("shipped U-Net, S = 10, 4 digits: max |ddim_sample - DDIMScheduler| < 1e-4 (pixels in [-1, 1])")

# %% [markdown]
# ## B.3 A scheduler, read as a plan
#
# Every setting below changes one of two things: the timesteps the model is asked about, and the $\bar\alpha$ that
# each step moves to. `DDIMScheduler.step` at diffusers' timestep $k$ reads `alphas_cumprod[k]` and
# `alphas_cumprod[k - T // S]`, or `final_alpha_cumprod` when that index is negative. In the book's $t$ this is a list
# of pairs (from $t$, to $t'$): from $k + 1$ to $k + 1 - \lfloor T/S \rfloor$, and to $t' = 0$ (or 1, B.5) at the end.
# `ddim_plan` writes that list down and `ddim_along` runs the package's `samplers.ddim_step` along it. If
# `ddim_along` reproduces the scheduler, the plan is a complete account of what the scheduler did. For the matched
# settings the plan is the book's: $(\tau_i, \tau_{i-1})$ with $\tau_0 = 0$.


# %%
def ddim_plan(sch):
    """The (t, t_prev) pairs, in the book's 1-based t, that DDIMScheduler.step visits after set_timesteps."""
    stride = sch.config.num_train_timesteps // sch.num_inference_steps
    last = 0 if sch.config.set_alpha_to_one else 1  # final_alpha_cumprod: alpha_bar_0 = 1, or alphas_cumprod[0]
    return [(int(k) + 1, int(k) + 1 - stride if int(k) >= stride else last) for k in sch.timesteps]


def ddim_along(model, sched, x, plan, **step_args):
    """DDIM eq. (12) along explicit (t, t_prev) pairs with samplers.ddim_step; step_args: eta, generator, clip_x0."""
    ab = sched.alpha_bars
    for t, t_prev in plan:
        eps = model(x, torch.full((x.shape[0],), t))
        x = samplers.ddim_step(x, eps, ab[t], ab[t_prev], **step_args)
    return x


def with_settings(S, **changes):
    """The matched scheduler of B.2 with some settings changed (diffusers' from_config), set to S steps."""
    sch = DDIMScheduler.from_config(ddim_scheduler(schedule, S, steps_offset=0).config, **changes)
    sch.set_timesteps(S)
    return sch


S = 20  # the number of steps of every comparison below unless a cell says otherwise
ours = samplers.ddim_sample(oracle, schedule, x_T, steps=S, progress=False)  # the reference of B.4 - B.7
twin = NoiseSchedule.from_alpha_bars(matched.alphas_cumprod.double())  # diffusers' float32 schedule


def compare(label, sch, **step_args):
    """Run diffusers with sch; print its distance from ddim_sample and from the plan run on the twin schedule."""
    theirs = scheduler_sample(oracle, sch, x_T)
    explained = gap(theirs, ddim_along(oracle, twin, x_T, ddim_plan(sch), **step_args))
    assert explained < 1e-6
    print(f"{label:<42} vs ddim_sample {gap(theirs, ours):8.1e}   vs its plan {explained:.0e}")
    return theirs


# %%
# NBVAL_CHECK_OUTPUT
taus = samplers.timesteps(T, S, "uniform")
assert ddim_plan(matched) == list(zip(reversed(taus), reversed([0, *taus[:-1]])))
print("matched plan:", ddim_plan(matched)[:3], "...", ddim_plan(matched)[-2:])
_ = compare("matched settings", matched)

# %% [markdown]
# ## B.4 Timesteps from 0: diffusers' $k$ is the book's $t - 1$
#
# A loop written from diffusers' examples calls the model with the scheduler's timestep itself, `model(x, k)`. For a
# model trained with diffusers that is right. For a model trained with the book's 1-based $t$ it asks every question
# one timestep early, and on the last step asks about $t = 0$, which the book's models never saw. The cell runs the
# matched scheduler both ways; with the default "leading" spacing the oracle refuses $t = 0$ outright, so the
# measured difference uses "trailing" spacing (B.8), whose smallest $k$ is 49.

# %%
# NBVAL_CHECK_OUTPUT
trailing = with_settings(S, timestep_spacing="trailing")
ours_trailing = samplers.ddim_sample(oracle, schedule, x_T, steps=S, spacing="trailing", progress=False)
for label, shift in (("model(x, k)     ", 0), ("model(x, k + 1) ", 1)):
    x = x_T
    for k in trailing.timesteps:
        x = trailing.step(oracle(x, k + shift), k, x, return_dict=False)[0]
    print(f"trailing, {label}: max |diffusers - ddim_sample| = {gap(x, ours_trailing):.1e}")
try:
    scheduler_sample(lambda x, t: oracle(x, t - 1), matched, x_T)  # model(x, k) under "leading"
except ValueError as err:
    print(f"leading, model(x, k): the oracle refuses the last call: {err}")

# %% [markdown]
# An off-by-one timestep changes the samples by about $10^{-2}$ here: small enough to go unnoticed by eye, large
# enough to spoil a comparison. The fix is `model(x, k + 1)`, which is what `scheduler_sample` does.
#
# ## B.5 `set_alpha_to_one`: where the last step lands
#
# The last step goes from $\tau_1$ to `final_alpha_cumprod`. With `set_alpha_to_one=True` (the default) that is
# $\bar\alpha_0 = 1$, and the step returns $\hat x_0$, as the book's sampler does. With `False` it is
# `alphas_cumprod[0]` $= \bar\alpha_1 = 1 - \beta_1$: the sampler stops at $t = 1$ and returns $x_1$, which still
# carries noise of standard deviation $\sqrt{1 - \bar\alpha_1} = 0.01$.

# %%
# NBVAL_CHECK_OUTPUT
_ = compare("set_alpha_to_one=False", with_settings(S, set_alpha_to_one=False))
print("its last step:", ddim_plan(with_settings(S, set_alpha_to_one=False))[-1], "  fix: set_alpha_to_one=True")

# %% [markdown]
# ## B.6 `steps_offset`: every timestep one later
#
# "Leading" spacing visits $k = 0, \lfloor T/S \rfloor, 2\lfloor T/S \rfloor, \dots$ plus `steps_offset`. With
# `steps_offset=0` these are the book's uniform $\tau_i = 1 + (i - 1)\lfloor T/S\rfloor$ (and the DDIM paper's code). With
# `steps_offset=1` every model call is one timestep later, $t = 2, 52, 102, \dots$, and the last step jumps from $t = 2$
# to $t' = 0$. The latent-diffusion code (Rombach et al. 2022, arXiv:2112.10752) adds one to its DDIM timesteps and ends
# at its own $\bar\alpha_1$, and Stable Diffusion's scheduler configuration carries both settings, `steps_offset=1`
# and `set_alpha_to_one=False`: right for those models, one timestep off for the book's.

# %%
# NBVAL_CHECK_OUTPUT
offset = with_settings(S, steps_offset=1)
_ = compare("steps_offset=1", offset)
_ = compare("steps_offset=1, set_alpha_to_one=False", with_settings(S, steps_offset=1, set_alpha_to_one=False))
print("plan with steps_offset=1:", ddim_plan(offset)[:2], "...", ddim_plan(offset)[-1:], "  fix: steps_offset=0")

# %% [markdown]
# ## B.7 `clip_sample`, on by default
#
# `DDIMScheduler()` clips the predicted $\hat x_0$ to $[-1, 1]$ at every step (`clip_sample=True`,
# `clip_sample_range=1.0`). For image pixels in $[-1, 1]$ that is a reasonable guard; for anything else it is a
# distortion. Our ring has radius 1.5, so clipping squeezes it into the square. One further detail: the book's
# `clip_x0=True` recomputes $\hat\epsilon$ from the clipped $\hat x_0$ (so that the two predictions again add up to
# $x_t$), which in diffusers is `step(..., use_clipped_model_output=True)`, off by default.

# %%
# NBVAL_CHECK_OUTPUT
clipped = with_settings(S, clip_sample=True)
theirs_clipped = scheduler_sample(oracle, clipped, x_T)
print(f"clip_sample=True (the default):  max |diffusers - ddim_sample| = {gap(theirs_clipped, ours):.2f}")
print(f"  mean radius: ddim_sample {ours.norm(dim=1).mean():.3f}, clipped {theirs_clipped.norm(dim=1).mean():.3f}")
print(f"  max |coordinate|: ddim_sample {ours.abs().max():.3f}, clipped {theirs_clipped.abs().max():.3f}")
ours_clip = samplers.ddim_sample(oracle, schedule, x_T, steps=S, clip_x0=True, progress=False)
for flag in (False, True):
    x = x_T
    for k in clipped.timesteps:
        x = clipped.step(oracle(x, k + 1), k, x, use_clipped_model_output=flag, return_dict=False)[0]
    print(f"vs ddim_sample(clip_x0=True), use_clipped_model_output={flag!s:<5}: {gap(x, ours_clip):.1e}")
print("fix: clip_sample=False, or clip_sample=True with use_clipped_model_output=True to match clip_x0=True")

# %% [markdown]
# In the figure, look at the clipped samples (right): the eight modes at radius 1.5 are pulled onto the edges of the
# square $[-1, 1]^2$, and the diagonal ones towards its corners.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4), sharex=True, sharey=True)
panels = ((ours, "ddim_sample (no clipping)"), (theirs_clipped, "DDIMScheduler(), clip_sample=True"))
for ax, (pts, title) in zip(axes, panels):
    ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.5, color="C0", label="samples, S = 20")
    ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], "k--", lw=1, label="$[-1, 1]^2$")
    ax.set(title=title, xlabel="$x_0$, coordinate 1", aspect="equal", xlim=(-2, 2), ylim=(-2, 2))
axes[0].set_ylabel("$x_0$, coordinate 2")
axes[1].legend(loc="center", fontsize=8, markerscale=3)  # the clipped panel is empty inside the square
fig.tight_layout()

# %% [markdown]
# ## B.8 `timestep_spacing` against `ddim_book.subsequences`
#
# The book's `samplers.timesteps` (module `ddim_book.subsequences`, chapter 6) has "uniform", "quadratic" and
# "trailing"; diffusers has "leading", "trailing" and "linspace" (the names of Lin et al. 2023, arXiv:2305.08891,
# table 2). "Leading" is the book's "uniform". "Trailing" visits the book's trailing timesteps, up to rounding
# ties, but `step` always moves $\lfloor T/S \rfloor$ timesteps down, whatever the next visited timestep is. When $S$
# divides $T$ the two agree. When it does not, some steps land one timestep away from where the next one starts
# (diffusers issues #9261 and #12633 report this). "Linspace" visits $k = \mathrm{round}(\mathrm{linspace}(0, T - 1, S))$,
# a spacing the book does not have, with the same $\lfloor T/S\rfloor$ steps. The nearest book spacing
# ends at $t = T$ as well, so "linspace" is compared with "trailing". "Quadratic" has no diffusers counterpart. The table
# compares visited timesteps ("same t"), whether each step lands where the next one starts ("chained"), and the samples.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'S':>3} {'diffusers':>9} {'book':>8} {'same t':>7} {'chained':>8} {'vs ddim_sample':>15} {'vs plan':>8}")
for S_row in (10, 16, 20, 30, 50):
    for theirs_name, book_name in (("leading", "uniform"), ("trailing", "trailing"), ("linspace", "trailing")):
        sch = with_settings(S_row, timestep_spacing=theirs_name)
        plan = ddim_plan(sch)
        book_t = list(reversed(samplers.timesteps(T, S_row, book_name)))
        chained = all(plan[i][1] == plan[i + 1][0] for i in range(len(plan) - 1)) and plan[-1][1] == 0
        theirs = scheduler_sample(oracle, sch, x_T)
        ours_row = samplers.ddim_sample(oracle, schedule, x_T, steps=S_row, spacing=book_name, progress=False)
        explained = gap(theirs, ddim_along(oracle, twin, x_T, plan))
        assert explained < 1e-6 and (gap(theirs, ours_row) < 1e-5) == ([t for t, _ in plan] == book_t and chained)
        print(
            f"{S_row:>3} {theirs_name:>9} {book_name:>8} {str([t for t, _ in plan] == book_t):>7} {str(chained):>8}"
            f" {gap(theirs, ours_row):>15.1e} {explained:>8.0e}"
        )

# %% [markdown]
# Whenever a row says "same t" and "chained", the samplers agree to $10^{-6}$; otherwise they differ by 0.006 to 0.24,
# and the plan accounts for every difference ("vs plan" is at most about $10^{-7}$). At $S = 16$ ($T/S = 62.5$) even the
# timesteps differ: numpy rounds the ties 812.5, 562.5, 312.5 and 62.5 down to the even neighbour, the book rounds them
# up. The fix: "leading" with `steps_offset=0` for the book's "uniform"; "trailing" only with $S$ dividing $T$; no
# setting gives the book's "quadratic" or diffusers' "linspace" on the other side.
#
# One more trap in "trailing": `set_timesteps` builds the list with `np.arange(T, 0, -T/S)`, and for some $S$ the
# float step makes that list one entry too long, ending at $k = -1$. `step` then reads `alphas_cumprod[-1]`, which
# Python's negative indexing makes $\bar\alpha_T$: the last step treats an almost clean sample as pure noise, and the
# model is asked about $t = 0$.

# %%
# NBVAL_CHECK_OUTPUT
trailing_any = with_settings(1, timestep_spacing="trailing")  # set_timesteps(S) below re-plans it for S steps
too_long = []
for S_try in range(1, 101):
    trailing_any.set_timesteps(S_try)
    if len(trailing_any.timesteps) != S_try:
        too_long.append(S_try)
print("S in 1..100 for which trailing set_timesteps(S) returns S + 1 timesteps:", too_long)
sch = with_settings(61, timestep_spacing="trailing")
print(f"S = 61: {len(sch.timesteps)} timesteps, the last three k = {sch.timesteps[-3:].tolist()}")
x = x_T
for k in sch.timesteps:  # the oracle cannot answer t = 0: it stands in with its answer at t = 1
    x = sch.step(oracle(x, max(int(k) + 1, 1)), k, x, return_dict=False)[0]
ours_61 = samplers.ddim_sample(oracle, schedule, x_T, steps=61, spacing="trailing", progress=False)
print(f"max |x_0|: ddim_sample {ours_61.abs().max():.2f}, DDIMScheduler {x.abs().max():.3g}")

# %% [markdown]
# ## B.9 $\eta$ and the variance conventions
#
# diffusers and the book use the same $\sigma_t(\eta)$ of DDIM eq. (16), but $\eta$ is an argument of every `step`
# call, not of the scheduler (the constructor rejects it), and the noise comes from the generator passed to `step`.
# Both libraries draw one `torch.randn` of the sample's shape per step, in the same order, so the same seed gives the
# same samples. Three things go wrong in practice: $\eta$ passed to the constructor, no generator (the noise differs
# from run to run), and $\eta$ above the largest value eq. (12) allows, where $1 - \bar\alpha_{t'} - \sigma^2 < 0$
# (`ddim_sample` stops with an error; diffusers takes the square root of a negative number). DDPM's two variances
# (chapter 4) have their own names in `DDPMScheduler`, whose `clip_sample` is also on by default.

# %%
# NBVAL_CHECK_OUTPUT
try:
    DDIMScheduler(eta=1.0)
except TypeError as err:
    print("DDIMScheduler(eta=1.0):", err)
ours_eta = samplers.ddim_sample(oracle, schedule, x_T, S, eta=1.0, generator=torch.Generator().manual_seed(5), progress=False)  # fmt: skip
for label, gen in (("same seed", torch.Generator().manual_seed(5)), ("no generator", None)):
    x = x_T
    for k in matched.timesteps:
        x = matched.step(oracle(x, k + 1), k, x, eta=1.0, generator=gen, return_dict=False)[0]
    if label == "same seed":
        assert gap(x, ours_eta) < 1e-4
        print(f"eta = 1, same seed: max |diffusers - ddim_sample| = {gap(x, ours_eta):.1e}")
    else:  # the global generator's noise: a different draw, whatever its state
        print(f"eta = 1, no generator: max |diffusers - ddim_sample| > 0.1: {gap(x, ours_eta) > 0.1}")
try:
    samplers.ddim_sample(oracle, schedule, x_T, S, eta=1.5, progress=False)
except ValueError as err:
    print("ddim_sample, eta = 1.5:", str(err).split(";")[0])
x = x_T
for k in matched.timesteps:
    x = matched.step(oracle(x, k + 1), k, x, eta=1.5, generator=torch.Generator().manual_seed(5), return_dict=False)[0]
print(f"DDIMScheduler, eta = 1.5: {torch.isnan(x).any(dim=1).sum().item()} of {len(x)} samples are NaN")

# %% [markdown]
# With the same seed the stochastic samplers agree to $10^{-5}$; without a generator they are two different draws.
# For DDPM, the book's `ddpm_sample(variance=...)` against `DDPMScheduler(variance_type=...)`, all $T = 1000$ steps,
# on a Gaussian oracle (data $\mathcal N(1, 0.5^2)$ per coordinate; it is affine, so float32 rounding is not amplified
# over the 1000 steps, and it is cheap):

# %%
# NBVAL_CHECK_OUTPUT
gauss = GaussianOracle(schedule, mean=1.0, std=0.5, shape=(2,))
ours_ddpm = {
    v: samplers.ddpm_sample(
        gauss, schedule, x_T, variance=v, generator=torch.Generator().manual_seed(7), progress=False
    )
    for v in ("beta_tilde", "beta")
}
print(f"{'DDPMScheduler variance_type':<28} {'vs beta_tilde':>14} {'vs beta':>8}")
for variance_type in ("fixed_small", "fixed_large"):
    ddpm = DDPMScheduler.from_config(default.config, variance_type=variance_type, clip_sample=False)
    ddpm.set_timesteps(T)
    x, gen = x_T, torch.Generator().manual_seed(7)
    for k in ddpm.timesteps:
        x = ddpm.step(gauss(x, k + 1), k, x, generator=gen, return_dict=False)[0]
    row = [gap(x, ours_ddpm[v]) for v in ("beta_tilde", "beta")]
    assert min(row) < 1e-4 < 1e-2 < max(row)
    print(f"{variance_type:<28} {row[0]:>14.1e} {row[1]:>8.1e}")

# %% [markdown]
# "fixed_small" is $\tilde\beta_t$ (DDPM's $\sigma_t^2 = \tilde\beta_t$, and DDIM's $\eta = 1$ at $S = T$), the default;
# "fixed_large" is $\beta_t$. The book's `eta="sigma_hat"` (DDIM sec. 5.1) has no `DDIMScheduler` setting.
#
# ## Summary
#
# To make `DDIMScheduler` compute what `samplers.ddim_sample(model, schedule, x_T, S, eta, spacing, clip_x0)` computes:
#
# - build it with the model's betas, `set_alpha_to_one=True`, `steps_offset=0`, `clip_sample=False` (or `True` with
#   `use_clipped_model_output=True` for `clip_x0=True`), `timestep_spacing="leading"` for "uniform" or
#   `"trailing"` for "trailing" with $S$ dividing $T$: `ddim_book.bench.versus_diffusers.ddim_scheduler` does this;
# - call the book's model with $t = k + 1$, and pass `eta` and a seeded `generator` to every `step`;
# - expect agreement to about $10^{-6}$, the rounding of diffusers' float32 schedule, and read any larger difference
#   with `ddim_plan`: every setting above changes which timesteps are visited or where a step lands.
#
# ## Exercises
#
# **B.1 (code).** Write `my_setup(steps, eta, clip_x0, seed)` returning a `DDIMScheduler` and the keyword arguments of its
# `step` calls, such that diffusers' loop reproduces
# `ddim_sample(oracle, schedule, x_T, steps, eta=eta, clip_x0=clip_x0, generator=torch.Generator().manual_seed(seed))` to
# $10^{-5}$. Fill in the exercise cell and run it: `appendix_b.check_scheduler_setup` runs your setup with diffusers' loop
# (`appendix_b.run_scheduler`) for $S = 25$, $\eta = 0.5$ with clipping, and three other settings. The solution cell after
# it holds a worked answer.

# %% tags=["exercise"]
from ddim_book.exercises import appendix_b


def my_setup(steps, eta, clip_x0, seed):
    scheduler = ...  # DDIMScheduler(...): the constructor arguments of the table in B.1
    step_kwargs = ...  # dict(...): the keyword arguments of every scheduler.step call
    return scheduler, step_kwargs


result = appendix_b.check_scheduler_setup(my_setup)


# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
def my_setup(steps, eta, clip_x0, seed):
    scheduler = DDIMScheduler(clip_sample=clip_x0, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    step_kwargs = dict(eta=eta, use_clipped_model_output=clip_x0, generator=torch.Generator().manual_seed(seed))
    return scheduler, step_kwargs


result = appendix_b.check_scheduler_setup(my_setup)

# %% tags=["solution"]
scheduler_b1, step_kwargs_b1 = my_setup(25, 0.5, True, 3)
x_b1 = appendix_b.run_scheduler(oracle, scheduler_b1, x_T, 25, step_kwargs_b1)
target = samplers.ddim_sample(oracle, schedule, x_T, 25, eta=0.5, clip_x0=True, generator=torch.Generator().manual_seed(3), progress=False)  # fmt: skip
assert gap(x_b1, target) < 1e-5, f"max |difference| = {gap(x_b1, target):.2e}"
print(f"B.1 on the chapter's 512 points: max |diffusers - ddim_sample| = {gap(x_b1, target):.1e}")

# %% [markdown]
# **B.2 (pen and paper).** Show that diffusers' "trailing" plan for $T = 1000$ is chained (every step lands where the
# next one starts, and the last lands on $t = 0$) exactly when $S$ divides $T$. Hint: write $T = gS + r$ with
# $0 \le r < S$ and $g = \lfloor T/S \rfloor$; a chained plan starts at $t = T$ and steps down by $g$ every time, so where
# is its last visited $t$, and where does its last step land? The cell checks the claim for every $S$ from 1 to 1000;
# worked solution: appendix C.

# %%
chained_S = []
for S_try in range(1, T + 1):
    trailing_any.set_timesteps(S_try)
    plan = ddim_plan(trailing_any)
    if all(plan[i][1] == plan[i + 1][0] for i in range(len(plan) - 1)) and plan[-1][1] == 0:
        chained_S.append(S_try)
assert chained_S == [S_try for S_try in range(1, T + 1) if T % S_try == 0]
print(f"B.2: trailing is chained for the {len(chained_S)} divisors of {T} and for no other S")
