"""Noise schedules and the forward process of DDPM (Ho et al., 2020); derived in chapters 1 and 2.

Notation (ARCHITECTURE.md): timesteps are 1-based, t = 1..T. Every array has length T+1 and is indexed by t
directly; index 0 is the clean data, so ``betas[0] = 0``, ``alphas[0] = 1`` and ``alpha_bars[0] = 1``
(the DDIM paper's alpha_0 := 1). ``alpha_bars[t]`` in code is alpha_bar_t on the page.
"""

from __future__ import annotations

import math
import numbers

import torch

from ddim_book._checks import check_int_range, check_timesteps


def _check_open_unit(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a real number strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1), got {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:  # also refuses NaN
        raise ValueError(f"{name} must lie strictly inside (0, 1), got {value}")
    return value


class NoiseSchedule:
    """A variance schedule beta_1..beta_T and everything derived from it.

    Args:
        betas: the T values beta_1..beta_T (sequence or 1-D tensor), each strictly inside (0, 1).
        description: JSON-friendly dict that rebuilds the schedule (set by the named constructors).

    Attributes (float64 CPU tensors of length T+1, index = t):
        betas, alphas (= 1 - betas), alpha_bars (= prod_{s<=t} alphas_s, DDPM eq. (4)),
        posterior_variances (beta_tilde_t, DDPM eq. (7); beta_tilde_1 = 0).
    """

    def __init__(self, betas, description: dict | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.ndim != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a 1-D sequence of T >= 1 values, got shape {tuple(betas.shape)}")
        if not bool(torch.isfinite(betas).all()) or not bool(((betas > 0) & (betas < 1)).all()):
            bad = betas[~(torch.isfinite(betas) & (betas > 0) & (betas < 1))][0].item()
            raise ValueError(f"every beta_t must lie strictly inside (0, 1), got {bad}")
        self.T = int(betas.numel())
        one = torch.ones(1, dtype=torch.float64)
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
        self.alphas = 1.0 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)
        if not bool((self.alpha_bars[1:] > 0).all()):
            raise ValueError("alpha_bars underflowed to 0: the betas are too large for this T")
        self.sqrt_alpha_bars = self.alpha_bars.sqrt()
        self.sqrt_one_minus_alpha_bars = (1.0 - self.alpha_bars).sqrt()
        # DDPM eqs. (6)-(7); index 0 is unused (there is no x_{-1}) and set to 0
        prev = torch.cat([one, self.alpha_bars[:-1]])
        denom = torch.cat([one, 1.0 - self.alpha_bars[1:]])
        self.posterior_variances = (1.0 - prev) / denom * self.betas
        self.posterior_x0_coefs = prev.sqrt() * self.betas / denom
        self.posterior_xt_coefs = self.alphas.sqrt() * (1.0 - prev) / denom
        self.posterior_x0_coefs[0] = self.posterior_xt_coefs[0] = 0.0
        self._description = description or {"kind": "betas", "betas": betas.tolist()}
        self._tables: dict = {}
        self.validate = True

    # ----- constructors -------------------------------------------------------------------------
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """DDPM's linear schedule, beta_t from ``beta_start`` (t = 1) to ``beta_end`` (t = T) (DDPM sec. 4)."""
        T = check_int_range("T", T, 1, 10**7)
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64) if T > 1 else [beta_end]
        desc = {"kind": "linear", "T": T, "beta_start": float(beta_start), "beta_end": float(beta_end)}
        return cls(betas, description=desc)

    @classmethod
    def quadratic(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """DDPM's quadratic schedule: sqrt(beta_t) rises linearly from sqrt(``beta_start``) to sqrt(``beta_end``).

        beta_t = (sqrt(beta_start) + (t - 1) / (T - 1) * (sqrt(beta_end) - sqrt(beta_start)))^2 for t = 1..T
        (beta_1 = ``beta_start``, beta_T = ``beta_end``; with T = 1 the single beta is ``beta_end``, as in
        :meth:`linear`). DDPM (Ho et al. 2020, arXiv:2006.11239, appendix B) lists it among the schedules it
        tried; this is the ``"quad"`` option of the DDPM code and of the DDIM code (Song et al. 2020,
        arXiv:2010.02502). Chapter 1, section 4 compares it with the linear and cosine schedules.

        Args:
            T: number of steps, an int in 1..10**7.
            beta_start, beta_end: beta_1 and beta_T, real numbers strictly inside (0, 1).
        Returns:
            the schedule; ``to_dict()`` gives ``{"kind": "quadratic", "T", "beta_start", "beta_end"}``.
        """
        T = check_int_range("T", T, 1, 10**7)
        beta_start = _check_open_unit("beta_start", beta_start)
        beta_end = _check_open_unit("beta_end", beta_end)
        if T > 1:
            betas = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64) ** 2
        else:
            betas = [beta_end]
        desc = {"kind": "quadratic", "T": T, "beta_start": beta_start, "beta_end": beta_end}
        return cls(betas, description=desc)

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """The cosine schedule of improved DDPM (Nichol & Dhariwal 2021, eq. (17)).

        alpha_bar(t) = f(t) / f(0) with f(t) = cos^2((t/T + s) / (1 + s) * pi/2); betas are
        1 - alpha_bar(t)/alpha_bar(t-1), clipped at ``max_beta`` to avoid the singularity at t = T,
        and alpha_bars are then recomputed from the clipped betas.
        """
        T = check_int_range("T", T, 1, 10**7)
        if not 0 < max_beta < 1:
            raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        ratio = f[1:] / f[:-1]
        betas = (1.0 - ratio).clamp(min=1e-12, max=max_beta)
        desc = {"kind": "cosine", "T": T, "s": float(s), "max_beta": float(max_beta)}
        return cls(betas, description=desc)

    @classmethod
    def from_alpha_bars(cls, alpha_bars) -> NoiseSchedule:
        """Build from alpha_bar_1..alpha_bar_T (strictly decreasing, inside (0, 1)).

        A leading alpha_bar_0 = 1 may be included. beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} (DDPM eq. (4)).
        """
        a = torch.as_tensor(alpha_bars, dtype=torch.float64).detach().cpu()
        if a.ndim != 1 or a.numel() < 1:
            raise ValueError(f"alpha_bars must be a 1-D sequence, got shape {tuple(a.shape)}")
        if a[0] == 1.0:
            a = a[1:]
        if a.numel() < 1 or not bool(((a > 0) & (a < 1)).all()):
            raise ValueError("alpha_bars (for t = 1..T) must lie strictly inside (0, 1)")
        full = torch.cat([torch.ones(1, dtype=torch.float64), a])
        if not bool((full[1:] < full[:-1]).all()):
            i = int(torch.nonzero(full[1:] >= full[:-1])[0]) + 1
            raise ValueError(f"alpha_bars must be strictly decreasing in t; alpha_bars[{i}] >= alpha_bars[{i - 1}]")
        return cls(1.0 - full[1:] / full[:-1])

    @classmethod
    def from_dict(cls, d: dict) -> NoiseSchedule:
        """Rebuild a schedule from :meth:`to_dict`."""
        kind = d.get("kind")
        if kind == "linear":
            return cls.linear(d["T"], d["beta_start"], d["beta_end"])
        if kind == "quadratic":
            return cls.quadratic(d["T"], d["beta_start"], d["beta_end"])
        if kind == "cosine":
            return cls.cosine(d["T"], d.get("s", 0.008), d.get("max_beta", 0.999))
        if kind == "betas":
            return cls(d["betas"])
        raise ValueError(f"unknown schedule kind {kind!r}; expected 'linear', 'quadratic', 'cosine' or 'betas'")

    def to_dict(self) -> dict:
        """A JSON-friendly description that :meth:`from_dict` turns back into this schedule."""
        return dict(self._description)

    def __repr__(self) -> str:
        desc = {k: v for k, v in self._description.items() if k != "betas"}
        return f"NoiseSchedule({desc}, alpha_bar_T={self.alpha_bars[-1].item():.3g})"

    # ----- derived quantities -----------------------------------------------------------------
    def snr(self, t=None) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021); index 0 is +inf."""
        snr = self.alpha_bars / (1.0 - self.alpha_bars)
        if t is None:
            return snr
        return snr[check_timesteps(t, self.T).cpu()]

    def _table(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """``getattr(self, name)`` cast to like's dtype and device, cached (no copy per call on a GPU)."""
        key = (name, like.dtype, like.device)
        table = self._tables.get(key)
        if table is None:
            # cast on the CPU first: some devices (MPS) have no float64
            table = getattr(self, name).to(dtype=like.dtype).to(like.device)
            self._tables[key] = table
        return table

    def _coef(self, name: str, t, like: torch.Tensor) -> torch.Tensor:
        """Gather the table ``name`` at ``t`` and shape it to broadcast against ``like`` (batch dim first).

        ``t`` is an int (one coefficient for the whole tensor) or an integer tensor of shape (B,)
        with B = like.shape[0]. The result has like's dtype and device. The range check of a tensor
        ``t`` that lives on an accelerator is a host-device synchronisation; set ``validate = False``
        to skip it in a training loop that draws t itself.
        """
        if isinstance(t, torch.Tensor) and t.ndim == 1 and t.device.type != "cpu" and not self.validate:
            idx = t
        else:
            idx = check_timesteps(t, self.T)
        table = self._table(name, like)
        if idx.ndim == 0:
            return table[idx.to(table.device)]
        if idx.ndim != 1 or like.ndim == 0 or idx.shape[0] != like.shape[0]:
            raise ValueError(
                f"t must be an int or a tensor of shape (B,) with B = {like.shape[0] if like.ndim else '?'} "
                f"(the batch size of x), got shape {tuple(idx.shape)}"
            )
        return table[idx.to(table.device)].reshape(-1, *([1] * (like.ndim - 1)))

    @staticmethod
    def _check_float(name: str, x) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {type(x).__name__}")

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (DDPM eq. (4); chapter 1).

        Args:
            x0: clean data, float tensor (B, ...) of any dtype/device.
            t: int, or int tensor (B,) with values in 1..T.
            noise: the standard normal epsilon, same shape as x0; drawn with ``generator`` if None.
        Returns:
            x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, with x0's shape, dtype and device.
        """
        self._check_float("x0", x0)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        elif noise.shape != x0.shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has shape {tuple(x0.shape)}")
        return self._coef("sqrt_alpha_bars", t, x0) * x0 + self._coef("sqrt_one_minus_alpha_bars", t, x0) * noise.to(x0)

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (DDPM eqs. (6)-(7); chapter 2).

        mu_tilde = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0
                 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
        beta_tilde = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

        Args: x0, x_t float tensors of one shape (B, ...); t an int or int tensor (B,) in 1..T.
        Returns: (mean with x_t's shape, variance broadcastable to it: shape (B, 1, ...) or 0-d).
        """
        self._check_float("x0", x0)
        self._check_float("x_t", x_t)
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 has shape {tuple(x0.shape)} but x_t has shape {tuple(x_t.shape)}")
        if x0.device != x_t.device:
            raise ValueError(f"x0 is on {x0.device} but x_t is on {x_t.device}")
        c0 = self._coef("posterior_x0_coefs", t, x_t)
        ct = self._coef("posterior_xt_coefs", t, x_t)
        return c0 * x0.to(x_t) + ct * x_t, self._coef("posterior_variances", t, x_t)
