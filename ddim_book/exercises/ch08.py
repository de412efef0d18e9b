"""Checks for the exercises of chapter 8 (score matching and Langevin dynamics).

    from ddim_book.exercises import ch08
    ch08.check_langevin_step(my_langevin_step)   # my_langevin_step(x, score, step_size, noise) -> new x
    ch08.check_dsm_target(my_dsm_target)         # my_dsm_target(x_t, x0, alpha_bar_t) -> grad log q(x_t | x_0)
    ch08.check_hyvarinen_linear(my_hyvarinen)    # my_hyvarinen(a, b, mean, var) -> E[s'(x) + s(x)^2 / 2]
    ch08.check_sliced_score_matching_loss(my_ssm)  # my_ssm(score_fn, x, v) -> sliced score-matching loss

The first two are graded against :mod:`ddim_book.langevin`, the last two against the reference implementations
:func:`hyvarinen_linear` and :func:`sliced_score_matching_loss` below; a failing case raises :class:`ExerciseError`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ddim_book import langevin
from ddim_book.exercises._core import compare, positional

__all__ = [
    "check_dsm_target",
    "check_hyvarinen_linear",
    "check_langevin_step",
    "check_sliced_score_matching_loss",
    "hyvarinen_linear",
    "sliced_score_matching_loss",
]


def _langevin_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(801)
    points = torch.randn((5, 2), generator=g, dtype=torch.float64)
    images = torch.randn((2, 1, 4, 3), generator=g, dtype=torch.float64)
    cases = []
    for label, x, step in (("2-D points", points, 0.01), ("2-D points", points, 0.5), ("images", images, 0.2)):
        score = torch.randn(x.shape, generator=g, dtype=torch.float64)
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        cases.append((f"{label}, step_size = {step}", {"x": x, "score": score, "step_size": step, "noise": noise}))
    return cases


def check_langevin_step(fn: Callable) -> str:
    """Grade ``fn(x, score, step_size, noise)`` = x + (delta / 2) score + sqrt(delta) noise.

    The Langevin update of Song & Ermon (2019), sec. 2.2; chapter 8. Arguments are passed by position;
    x, score and noise are float64 tensors of one shape (B, ...), step_size a float delta > 0.
    """
    return compare(
        "check_langevin_step",
        positional("check_langevin_step", fn, "x", "score", "step_size", "noise"),
        lambda x, score, step_size, noise: langevin.langevin_step(x, score, step_size, noise),
        _langevin_cases(),
        hint=(
            "the drift is HALF the step size times the score, and the noise is scaled by the SQUARE ROOT "
            "of the step size (delta is a variance)."
        ),
        exercise="8.1",
    )


def _dsm_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(802)
    x0 = torch.randn((4, 2), generator=g, dtype=torch.float64)
    noise = torch.randn((4, 2), generator=g, dtype=torch.float64)
    per_sample = torch.tensor([[0.99], [0.7], [0.3], [0.02]], dtype=torch.float64)
    images = torch.rand((2, 1, 3, 3), generator=g, dtype=torch.float64) * 2 - 1
    image_noise = torch.randn(images.shape, generator=g, dtype=torch.float64)
    cases = []
    for a in (0.9999, 0.5, 0.01):
        x_t = a**0.5 * x0 + (1 - a) ** 0.5 * noise
        cases.append((f"2-D points, alpha_bar_t = {a}", {"x_t": x_t, "x0": x0, "alpha_bar_t": a}))
    x_t = per_sample.sqrt() * x0 + (1 - per_sample).sqrt() * noise
    per_sample_case = {"x_t": x_t, "x0": x0, "alpha_bar_t": per_sample}
    cases.append(("2-D points, alpha_bar_t per sample (shape (4, 1))", per_sample_case))
    x_t = 0.8**0.5 * images + 0.2**0.5 * image_noise
    cases.append(("images, alpha_bar_t = 0.8", {"x_t": x_t, "x0": images, "alpha_bar_t": 0.8}))
    return cases


def check_dsm_target(fn: Callable) -> str:
    """Grade ``fn(x_t, x0, alpha_bar_t)`` = grad_{x_t} log q(x_t | x_0) = -(x_t - sqrt(a) x0) / (1 - a).

    The denoising score-matching target (Vincent 2011) for DDPM's kernel, DDPM eq. (4); chapter 8.
    ``alpha_bar_t`` is a float or a tensor broadcastable to x_t (e.g. (B, 1)).
    """
    return compare(
        "check_dsm_target",
        positional("check_dsm_target", fn, "x_t", "x0", "alpha_bar_t"),
        lambda x_t, x0, alpha_bar_t: langevin.dsm_target(x_t, x0, alpha_bar_t),
        _dsm_cases(),
        hint=(
            "q(x_t | x_0) = N(sqrt(a) x0, (1 - a) I): its log-density gradient is minus the residual "
            "x_t - sqrt(a) x0 divided by the VARIANCE 1 - a (not the standard deviation)."
        ),
        exercise="8.2",
    )


def hyvarinen_linear(a, b, mean, var) -> torch.Tensor:
    """Hyvarinen's objective without its constant for the 1-D linear score s(x) = a x + b; chapter 8.

    J(a, b) = E[s'(x) + s(x)^2 / 2] = a + (a^2 (var + mean^2) + 2 a b mean + b^2) / 2 under data with the given
    mean and variance (Hyvarinen 2005, Theorem 1; chapter 8, section 4 and exercise 8.5). Arguments are floats or
    tensors that broadcast together; ``var`` must be > 0. Returns a float64 tensor of the broadcast shape.
    """
    a, b, mean, var = (torch.as_tensor(value, dtype=torch.float64) for value in (a, b, mean, var))
    if not bool((var > 0).all()):
        raise ValueError(f"var must be > 0 (the data's variance), got {var.min().item()}")
    second_moment = var + mean**2
    return a + 0.5 * (a**2 * second_moment + 2 * a * b * mean + b**2)


def sliced_score_matching_loss(score_fn: Callable, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of v^T J(x) v + (v^T s(x))^2 / 2, the sliced score-matching loss; chapter 8.

    Song, Garg, Shi & Ermon (2019, arXiv:1905.07088), one projection per sample; chapter 8, section 5 and
    exercise 8.6. ``score_fn`` maps (B, d) to (B, d) row by row; x and v are float tensors (B, d); J(x) = d s / d x
    of each sample. This reference builds every sample's full Jacobian (d backward passes per sample), so that it
    shares nothing with the one-pass method it grades. Returns a 0-d float64 tensor.
    """
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable as score_fn(x), got {type(score_fn).__name__}")
    for name, value in (("x", x), ("v", v)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.ndim != 2:
            raise ValueError(f"{name} must be a floating-point tensor of shape (B, d)")
    if x.shape != v.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but v has shape {tuple(v.shape)}")
    total = torch.zeros((), dtype=torch.float64)
    for x_b, v_b in zip(x.detach(), v.detach()):
        jac = torch.autograd.functional.jacobian(lambda y: score_fn(y[None])[0], x_b)  # (d, d), J[i, j] = ds_i/dx_j
        s_b = score_fn(x_b[None])[0].detach()
        total = total + (v_b @ jac @ v_b).double() + 0.5 * (v_b @ s_b).double() ** 2
    return total / x.shape[0]


def _hyvarinen_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(803)
    a = torch.randn(6, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    mean = torch.randn(6, generator=g, dtype=torch.float64)
    var = torch.rand(6, generator=g, dtype=torch.float64) * 2 + 0.1
    return [
        ("floats: a = -1, b = 0, standard normal data (mean 0, var 1)", {"a": -1.0, "b": 0.0, "mean": 0.0, "var": 1.0}),
        ("floats: a = -0.5, b = 1, mean 2, var 4", {"a": -0.5, "b": 1.0, "mean": 2.0, "var": 4.0}),
        ("floats: a = 0.3, b = -2, mean -1, var 0.25", {"a": 0.3, "b": -2.0, "mean": -1.0, "var": 0.25}),
        ("six random cases (tensors of shape (6,))", {"a": a, "b": b, "mean": mean, "var": var}),
    ]


def check_hyvarinen_linear(fn: Callable) -> str:
    """Grade ``fn(a, b, mean, var)`` = E[s'(x) + s(x)^2 / 2] for s(x) = a x + b (Hyvarinen 2005; chapter 8)."""
    return compare(
        "check_hyvarinen_linear",
        positional("check_hyvarinen_linear", fn, "a", "b", "mean", "var"),
        hyvarinen_linear,
        _hyvarinen_cases(),
        hint=(
            "s'(x) = a enters with a PLUS sign (the trace term), and E[(a x + b)^2] = a^2 E[x^2] + 2 a b E[x] + b^2 "
            "with E[x^2] = var + mean^2; only the square carries the factor 1/2."
        ),
        exercise="8.5",
    )


def _linear_field(A: torch.Tensor, b: torch.Tensor) -> Callable:
    return lambda y: y @ A.T + b


def _tanh_field(W: torch.Tensor, U: torch.Tensor) -> Callable:
    return lambda y: -y + torch.tanh(y @ W.T) @ U.T


def _sliced_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(804)

    def randn(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float64)

    A2, b2, A5, b5 = randn(2, 2), randn(2), randn(5, 5), randn(5)
    W, U = randn(3, 3), randn(3, 3)
    signs = randn(7, 5).sign()
    return [
        (
            "linear score in 2-D, 4 samples, Gaussian v",
            {"score_fn": _linear_field(A2, b2), "x": randn(4, 2), "v": randn(4, 2)},
        ),
        (
            "linear score in 5-D, 7 samples, random signs v",
            {"score_fn": _linear_field(A5, b5), "x": randn(7, 5), "v": signs},
        ),
        ("-x + tanh(x W^T) U^T in 3-D, 5 samples", {"score_fn": _tanh_field(W, U), "x": randn(5, 3), "v": randn(5, 3)}),
        (
            "-x + tanh(x W^T) U^T in 3-D, one sample",
            {"score_fn": _tanh_field(W, U), "x": randn(1, 3), "v": randn(1, 3)},
        ),
    ]


def check_sliced_score_matching_loss(fn: Callable) -> str:
    """Grade ``fn(score_fn, x, v)`` = mean_b [v_b^T J(x_b) v_b + (v_b^T s(x_b))^2 / 2] (Song et al. 2019; chapter 8).

    x and v are float64 tensors (B, d); ``score_fn`` maps (B, d) to (B, d) row by row. The result is compared
    with :func:`sliced_score_matching_loss`, which uses full per-sample Jacobians.
    """
    return compare(
        "check_sliced_score_matching_loss",
        positional("check_sliced_score_matching_loss", fn, "score_fn", "x", "v"),
        sliced_score_matching_loss,
        _sliced_cases(),
        hint=(
            "take x = x.detach().requires_grad_(True), s = score_fn(x), g = grad((s * v).sum(), x); the trace term is "
            "(g * v).sum(1) and the square term 0.5 * ((s * v).sum(1))**2 (the projection squared, not |s|^2, which is "
            "the variance-reduced SSM-VR); average over the batch."
        ),
        exercise="8.6",
    )
