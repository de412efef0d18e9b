"""Two-sample distances for low-dimensional point clouds: the 2-D chapters' check of samplers against oracles.

A sampler run on :class:`~ddim_book.oracles.GaussianMixtureOracle` should reproduce the mixture; these
numbers say how far its samples are from fresh samples of the mixture (chapter 6 and appendix A).
Both take x (N, D) and y (M, D) (D = 2 in the book), compute in float64 and return a Python float.
"""

from __future__ import annotations

import math
import numbers

import torch

from ddim_book._checks import as_float64, check_int_range

__all__ = ["fold_ring", "mmd_rbf", "sliced_wasserstein"]


def _points(name: str, value, dim: int | None = None) -> torch.Tensor:
    """``value`` as a finite float64 CPU tensor of shape (N, D), N >= 1, D == ``dim`` when given."""
    out = as_float64(name, value)
    if out.ndim != 2 or out.shape[0] == 0 or out.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1, got {tuple(out.shape)}")
    if dim is not None and out.shape[1] != dim:
        raise ValueError(f"{name} must have D = {dim} columns to match x, got shape {tuple(out.shape)}")
    return out


def _wasserstein_1d_pow(xs: torch.Tensor, ys: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the empirical measures of each row of xs (P, N) and ys (P, M), both sorted along dim 1.

    W_p^p = int_0^1 |F^{-1}(u) - G^{-1}(u)|^p du with F^{-1}, G^{-1} the empirical quantile functions; both
    are step functions, constant between the levels k/N and k/M, so the integral is an exact finite sum.
    """
    n, m = xs.shape[1], ys.shape[1]
    f64 = torch.float64
    levels = torch.unique(torch.cat([torch.arange(1, n + 1, dtype=f64) / n, torch.arange(1, m + 1, dtype=f64) / m]))
    widths = torch.diff(levels, prepend=levels.new_zeros(1))
    mids = levels - widths / 2  # one point inside each piece picks its quantile indices without rounding trouble
    ix = (mids * n).floor().long().clamp_max(n - 1)
    iy = (mids * m).floor().long().clamp_max(m - 1)
    return ((xs[:, ix] - ys[:, iy]).abs() ** p * widths).sum(1)


def sliced_wasserstein(
    x, y, n_projections: int = 256, p: float = 2.0, generator: torch.Generator | None = None
) -> float:
    """Sliced p-Wasserstein distance between the empirical distributions of x (N, D) and y (M, D).

    SW_p(x, y) = ( E_theta W_p^p(theta . x, theta . y) )^{1/p}, theta uniform on the unit sphere
    (Rabin et al. 2011; Bonneel et al. 2015): each projection is a 1-D optimal-transport problem, solved
    exactly by matching quantiles; the expectation is a Monte-Carlo mean over ``n_projections`` directions.
    It is 0 for identical point sets and in the units of x (for p = 2, an estimate of a lower bound on W_2).
    N and M may differ.

    Args:
        x, y: point clouds (N, D) and (M, D), tensors or arrays; float64 inside.
        n_projections: random directions, 1..1e6.
        p: order >= 1.
        generator: CPU torch.Generator for the directions; default a fresh one seeded with 0, so the value
            is reproducible (the same directions on every call).
    """
    x = _points("x", x)
    y = _points("y", y, x.shape[1])
    n_projections = check_int_range("n_projections", n_projections, 1, 10**6)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 1.0 <= float(p) < float("inf"):
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    theta = torch.randn((x.shape[1], n_projections), generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    xs = (x @ theta).T.sort(dim=1).values
    ys = (y @ theta).T.sort(dim=1).values
    return float(_wasserstein_1d_pow(xs, ys, float(p)).mean() ** (1.0 / float(p)))


def mmd_rbf(x, y, bandwidths=(0.1, 0.2, 0.5, 1.0, 2.0)) -> float:
    """Squared maximum mean discrepancy between x (N, D) and y (M, D), biased (V-statistic) estimate.

    MMD_b^2 = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j)   (Gretton et al. 2012, MMD_b),
    with the diagonal terms included, and k the average of Gaussian kernels exp(-|a - b|^2 / (2 h^2)) over the
    ``bandwidths`` h (in the units of x), so k(a, a) = 1. Being the squared RKHS distance between the two
    empirical mean embeddings, it is >= 0 and exactly 0 for identical sets (the unbiased estimate can go
    negative); it is biased upward by O(1/N + 1/M), so compare values at equal sample sizes.
    Memory is O(N M) in float64.

    Args:
        x, y: point clouds (N, D) and (M, D), tensors or arrays.
        bandwidths: positive kernel widths h, a number or a non-empty sequence.

    Returns:
        MMD_b^2 as a Python float (units: kernel values, dimensionless, in [0, 2]).
    """
    x = _points("x", x)
    y = _points("y", y, x.shape[1])
    widths = [bandwidths] if isinstance(bandwidths, numbers.Real) else list(bandwidths)
    if not widths or any(
        isinstance(h, bool) or not isinstance(h, numbers.Real) or not 0 < float(h) < float("inf") for h in widths
    ):
        raise ValueError(
            f"bandwidths must be positive finite numbers (one or a non-empty sequence), got {bandwidths!r}"
        )

    def kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # exact squared distances (no |a|^2 + |b|^2 - 2ab cancellation): k(a, a) is exactly 1
        sq = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        return torch.stack([torch.exp(-sq / (2 * float(h) ** 2)).mean() for h in widths]).mean()

    mmd2 = kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)
    return max(float(mmd2), 0.0)


def fold_ring(x: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Map 2-D points (n, 2) onto one wedge of the k-fold ring: the angle folded into [0, pi / k] (chapter 6).

    The ring mixture, N(0, I) and the oracle are all symmetric under the k rotations and k reflections of the
    ring, so every sampler's output distribution is too: two such distributions are equal exactly when their
    folded versions are. Folding removes the counting noise in the mode weights (about +-sqrt(n / k) points per
    mode), which would otherwise swamp the within-mode errors that tell the samplers apart.
    """
    width = 2 * math.pi / k
    angle = torch.atan2(x[:, 1], x[:, 0])
    folded = (torch.remainder(angle + width / 2, width) - width / 2).abs()
    radius = x.norm(dim=1)
    return torch.stack([radius * folded.cos(), radius * folded.sin()], dim=1)
