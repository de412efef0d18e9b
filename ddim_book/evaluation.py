"""Scoring a model's digits: draw n of them from a seeded x_T, then score them against the held-out digits.

    from ddim_book import evaluation, pretrained
    model, schedule = pretrained.load("mnist")
    x = evaluation.generate(model, schedule, n=1000, steps=50, seed=0)
    scores = evaluation.score_digits(x)            # FLD with a bootstrap interval, confidence, class shares

Every quality figure of the book (the model card, the recipe comparison in BENCHMARKS.md, chapter 6's
eta x S table) is made by these two functions, so the figures are comparable: the same x_T for the same
seed, the same clipping, the same reference (the 1,000 held-out digits no model in the book trains on).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from ddim_book.metrics import classifier_scores, fld_bootstrap, fld_real_anchor, load_classifier
from ddim_book.samplers import ddim_sample, ddpm_sample, dpm_solver_sample

__all__ = ["generate", "score_digits"]


def generate(
    model,
    schedule,
    n: int,
    steps: int = 50,
    eta=0.0,
    sampler: str = "ddim",
    spacing: str = "uniform",
    seed: int = 0,
    batch_size: int = 250,
    clip_x0=None,
    progress: bool = False,
    expand_in: str = "lambda",
) -> torch.Tensor:
    """n samples, unclipped, float32 (n, C, H, W) on the CPU, drawn ``batch_size`` at a time.

    x_T (and, for stochastic samplers, every later noise draw) comes from one CPU generator seeded with
    ``seed``, so a seed gives the same x_T on every device and at every batch size that divides n alike.
    ``sampler`` is ``"ddim"`` (eq. (12) with ``steps``, ``eta``, ``spacing``), ``"ddpm"`` (Algorithm 2,
    all T steps) or ``"dpm-solver-2"`` (chapter 9's multistep second-order rule with ``steps``, ``spacing``
    and ``expand_in``).
    """
    if sampler not in ("ddim", "ddpm", "dpm-solver-2"):
        raise ValueError(f"sampler must be 'ddim', 'ddpm' or 'dpm-solver-2', got {sampler!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    param = next(model.parameters())
    shape = (model.config.in_channels, model.config.image_size, model.config.image_size)
    gen, out = torch.Generator().manual_seed(seed), []
    for start in tqdm(range(0, n, batch_size), desc=f"{sampler} S={steps}", disable=not progress, leave=False):
        x_T = torch.randn((min(batch_size, n - start), *shape), generator=gen).to(param.device, param.dtype)
        if sampler == "ddpm":
            x = ddpm_sample(model, schedule, x_T, generator=gen, clip_x0=clip_x0, progress=False)
        elif sampler == "dpm-solver-2":
            x = dpm_solver_sample(model, schedule, x_T, steps, 2, spacing, expand_in, progress=False)
        else:
            kwargs = {"steps": steps, "eta": eta, "spacing": spacing, "clip_x0": clip_x0}
            x = ddim_sample(model, schedule, x_T, generator=gen, progress=False, **kwargs)
        out.append(x.float().cpu())
    return torch.cat(out)


def score_digits(
    samples: torch.Tensor, classifier=None, reference="held_out", reps: int = 200, seed: int = 0, keep_values=False
) -> dict:
    """The quality figures of raw sampler output (N, 1, 28, 28).

    Samples are clipped to the data range [-1, 1] for scoring only; ``clipped`` is the share of pixels
    that lay more than one 8-bit grey level (2/255) outside it. Returns ``fld`` with its bootstrap
    interval ``fld_low``/``fld_high`` (95%, ``reps`` resamples), ``real_fld`` (N real training digits
    against the same reference: the floor), ``fld_ratio`` = fld / real_fld, ``confidence`` (mean top
    softmax probability of the shipped classifier), ``class_shares`` (fraction predicted as each digit
    0..9), ``class_histogram``, ``n``; with ``keep_values``, also ``fld_boot``, the ``reps`` resampled FLDs, for
    a paired comparison with another set scored with the same ``seed`` and n whose image i shares its x_T
    (:func:`ddim_book.metrics.paired_difference`).
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or not samples.is_floating_point():
        raise ValueError("samples must be a float tensor of shape (N, 1, 28, 28)")
    if not bool(torch.isfinite(samples).all()):
        raise ValueError("samples hold NaN or infinite values; the sampler or the model diverged")
    classifier = load_classifier() if classifier is None else classifier
    x = samples.float().cpu()
    clipped = float((x.abs() > 1 + 2 / 255).double().mean())
    x = x.clamp(-1.0, 1.0)
    fld = fld_bootstrap(x, reference, classifier, reps=reps, seed=seed, keep_values=keep_values)
    real = fld_real_anchor(x.shape[0], classifier, seed=seed)
    cls = classifier_scores(x, classifier)
    n = x.shape[0]
    return {
        "n": n,
        "fld": fld["fld"],
        "fld_low": fld["low"],
        "fld_high": fld["high"],
        "real_fld": real,
        "fld_ratio": fld["fld"] / real,
        "confidence": cls["confidence"],
        "class_histogram": cls["class_histogram"],
        "class_shares": [c / n for c in cls["class_histogram"]],
        "clipped": clipped,
    } | ({"fld_boot": [round(v, 4) for v in fld["values"]]} if keep_values else {})
