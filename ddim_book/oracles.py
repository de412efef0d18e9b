"""Exact epsilon-predictors: the "perfect network" for data whose noisy marginals are known in closed form.

If x_0 ~ N(m, C) then x_t = sqrt(a) x_0 + sqrt(1 - a) eps is N(sqrt(a) m, a C + (1 - a) I) (a = alpha_bar_t,
DDPM eq. (4); chapter 1), and a mixture of Gaussians stays a mixture with the same weights. The
minimiser of L_simple is E[eps | x_t] = -sqrt(1 - a) * grad log q_t(x_t) (Tweedie's formula; chapter 3).
An oracle is called like a trained model, ``oracle(x_t, t) -> eps``, so every sampler can be run with
the network error removed and only the sampler's own error left.
"""

from __future__ import annotations

import math

import torch

from ddim_book._checks import check_int_range, check_timesteps
from ddim_book.schedules import NoiseSchedule


class _Oracle:
    """Shared plumbing: maps t (int or (B,) tensor; 0 = the data) to alpha_bar_t in float64."""

    def __init__(self, schedule: NoiseSchedule | None):
        if schedule is not None and not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule or None, got {type(schedule).__name__}")
        self.schedule = schedule

    def _alpha_bar(self, t, batch: int | None = None) -> torch.Tensor:
        """alpha_bar_t as float64: 0-d for an int t, (B,) for a tensor t; t = 0 gives 1 (clean data)."""
        if isinstance(t, int) and t == 0:
            return torch.tensor(1.0, dtype=torch.float64)
        if self.schedule is None:
            raise ValueError("this oracle has no schedule: only t = 0 (the data distribution) is available")
        if isinstance(t, torch.Tensor) and t.ndim == 1 and batch is not None and t.shape[0] != batch:
            raise ValueError(f"t has shape {tuple(t.shape)} but x has batch size {batch}")
        if isinstance(t, torch.Tensor) and t.ndim > 1:
            raise ValueError(f"t must be an int or a tensor of shape (B,), got shape {tuple(t.shape)}")
        zero = isinstance(t, torch.Tensor) and not t.is_floating_point() and bool((t == 0).all())
        if zero:
            return torch.ones(t.shape, dtype=torch.float64)
        idx = check_timesteps(t, self.schedule.T).cpu()
        if idx.ndim == 1 and bool((idx == idx[0]).all()):
            idx = idx[0]  # one t for the whole batch (what samplers pass): one coefficient, not B of them
        return self.schedule.alpha_bars[idx]

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """The exact epsilon prediction E[eps | x_t] = -sqrt(1 - alpha_bar_t) * score (chapter 3), in x_t's dtype."""
        return self.eps(x_t, t)

    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        if self.schedule is None:
            raise ValueError("an epsilon-predictor needs a schedule: build the oracle with schedule=...")
        check_timesteps(t, self.schedule.T)
        a = self._alpha_bar(t, x_t.shape[0] if x_t.ndim else None)
        score = self.score(x_t, t)
        scale = (1 - a).sqrt().reshape(-1, *([1] * (x_t.ndim - 1))) if a.ndim else (1 - a).sqrt()
        return (-scale.to(score) * score).to(x_t.dtype)


class GaussianOracle(_Oracle):
    """Data x_0 ~ N(mean, std^2 I) of any shape; q_t = N(sqrt(a) mean, (a std^2 + 1 - a) I).

    Args:
        schedule: the NoiseSchedule (None if only the data distribution, t = 0, is needed).
        mean: a tensor of the event shape (e.g. (2,) or (1, 28, 28)), or a number with ``shape``.
        std: the data standard deviation s > 0.
        shape: the event shape when ``mean`` is a number.
    """

    def __init__(self, schedule: NoiseSchedule | None, mean=0.0, std: float = 1.0, shape=None):
        super().__init__(schedule)
        mean = torch.as_tensor(mean, dtype=torch.float64)
        if shape is not None:
            mean = mean.expand(tuple(shape)).clone()
        if mean.ndim == 0:
            raise ValueError("mean is a number: pass shape=(...) to say the data's shape")
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.mean, self.std, self.event_shape = mean, float(std), tuple(mean.shape)

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim < 1 or tuple(x.shape[1:]) != self.event_shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, *{self.event_shape}), got {got}")

    def marginal(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance) of q_t for an int t in 0..T: (sqrt(a) mean, a std^2 + 1 - a)."""
        a = self._alpha_bar(t)
        return a.sqrt() * self.mean, a * self.std**2 + 1 - a

    def _per_sample(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(a) mean and a std^2 + 1 - a, float64 on x's device, shaped to broadcast against x."""
        self._check_x(x)
        a = self._alpha_bar(t, x.shape[0]).to(x.device)
        if a.ndim:
            a = a.reshape(-1, *([1] * len(self.event_shape)))
        return a.sqrt() * self.mean.to(x.device), a * self.std**2 + 1 - a

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """grad_x log q_t(x) = -(x - sqrt(a) mean) / (a std^2 + 1 - a); float64, x's shape and device."""
        m, v = self._per_sample(x, t)
        return -(x.double() - m) / v

    def log_prob(self, x: torch.Tensor, t=0) -> torch.Tensor:
        """log q_t(x) for x (B, *event_shape); returns (B,) float64."""
        m, v = self._per_sample(x, t)
        d = math.prod(self.event_shape)
        sq = ((x.double() - m) ** 2 / v).flatten(1).sum(1)
        return -0.5 * (sq + d * math.log(2 * math.pi) + d * torch.log(v).flatten())

    def sample(self, n: int, t=0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples of q_t (t = 0: the data), float64 CPU tensor (n, *event_shape)."""
        n = check_int_range("n", n, 1, 10**9)
        m, v = self.marginal(t)
        z = torch.randn((n, *self.event_shape), generator=generator, dtype=torch.float64)
        return m + v.sqrt() * z

    def ode_map(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """Where DDIM's ODE (DDIM eq. (14)) carries x_t at timestep t when it is solved exactly down to the data:
        x_0 = mean + (x_t / sqrt(a) - mean) * std / sqrt(std^2 + (1 - a) / a), with a = alpha_bar_t (chapter 7
        solves the ODE, chapter 9 checks the map in sympy). The reference that samplers' global error is measured
        against. x_t (B, *event_shape); returns float64 of that shape."""
        self._check_x(x_t)
        a = self._alpha_bar(t, x_t.shape[0]).to(x_t.device)
        if a.ndim:
            a = a.reshape(-1, *([1] * len(self.event_shape)))
        m = self.mean.to(x_t.device)
        return m + (x_t.double() / a.sqrt() - m) * self.std / (self.std**2 + (1 - a) / a).sqrt()


class GaussianMixtureOracle(_Oracle):
    """Data x_0 ~ sum_k w_k N(mu_k, C_k) in R^D (meant for small D, e.g. the 2-D chapters).

    q_t = sum_k w_k N(sqrt(a) mu_k, a C_k + (1 - a) I): the weights never change, which is why the
    mixture is the book's test of every sampler against an exact distribution.

    Args:
        schedule: the NoiseSchedule (None if only the data distribution, t = 0, is needed).
        weights: (K,) positive, normalised here. means: (K, D). covs: (K, D, D) symmetric positive
            definite, or (K,) standard deviations for isotropic components.
    """

    def __init__(self, schedule: NoiseSchedule | None, weights, means, covs):
        super().__init__(schedule)
        w = torch.as_tensor(weights, dtype=torch.float64)
        mu = torch.as_tensor(means, dtype=torch.float64)
        c = torch.as_tensor(covs, dtype=torch.float64)
        if mu.ndim != 2 or w.shape != (mu.shape[0],):
            raise ValueError(f"means must be (K, D) and weights (K,), got {tuple(mu.shape)} and {tuple(w.shape)}")
        if not bool((w > 0).all()):
            raise ValueError("every mixture weight must be > 0")
        K, D = mu.shape
        if c.shape == (K,):
            if not bool((c > 0).all()):
                raise ValueError("isotropic component standard deviations must be > 0")
            c = c[:, None, None] ** 2 * torch.eye(D, dtype=torch.float64)
        if c.shape != (K, D, D):
            raise ValueError(f"covs must be (K, D, D) = {(K, D, D)} or (K,) stds, got {tuple(c.shape)}")
        try:
            torch.linalg.cholesky(c)
        except RuntimeError as err:
            raise ValueError("every covariance must be symmetric positive definite") from err
        self.weights, self.means, self.covs, self.dim = w / w.sum(), mu, c, D

    @classmethod
    def ring_2d(
        cls, schedule: NoiseSchedule | None = None, k: int = 8, radius: float = 1.5, std: float = 0.15
    ) -> GaussianMixtureOracle:
        """The book's 2-D mixture: k equal components on a circle (roughly unit variance per axis)."""
        k = check_int_range("k", k, 1, 10**4)
        angle = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
        means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)
        return cls(schedule, torch.ones(k), means, torch.full((k,), float(std)))

    def marginal(self, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights (K,), means (K, D), covariances (K, D, D)) of q_t for an int t in 0..T."""
        a = self._alpha_bar(t)
        return self.weights, a.sqrt() * self.means, a * self.covs + (1 - a) * torch.eye(self.dim, dtype=torch.float64)

    def _components(self, x: torch.Tensor, t):
        """Per sample and component: (log w_k N(x; m_k, C_k), C_k^{-1} (x - m_k)), float64 on the CPU."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, {self.dim}), got {got}")
        x = x.double().cpu()
        a = self._alpha_bar(t, x.shape[0])
        a = a.reshape(-1, 1, 1, 1) if a.ndim else a.reshape(1, 1, 1, 1)
        eye = torch.eye(self.dim, dtype=torch.float64)
        cov = a * self.covs[None] + (1 - a) * eye  # (B or 1, K, D, D)
        diff = x[:, None, :] - a[..., 0].sqrt() * self.means[None]  # (B, K, D)
        # D is small: explicit inverses of the (B or 1, K) covariances are cheap and batch well
        prec = torch.linalg.inv(cov)
        sol = (prec @ diff[..., None])[..., 0]  # C^{-1} (x - m)
        logdet = torch.linalg.slogdet(cov)[1]
        quad = (diff * sol).sum(-1)
        logn = -0.5 * (quad + logdet + self.dim * math.log(2 * math.pi))
        return torch.log(self.weights) + logn, sol

    def log_prob(self, x: torch.Tensor, t=0) -> torch.Tensor:
        """log q_t(x) for x (B, D); returns (B,) float64."""
        logp, _ = self._components(x, t)
        return torch.logsumexp(logp, dim=1)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """grad log q_t(x) = -sum_k r_k(x) C_k^{-1} (x - m_k), r_k the posterior responsibilities; (B, D) float64."""
        logp, sol = self._components(x, t)
        resp = torch.softmax(logp, dim=1)
        return -(resp[..., None] * sol).sum(1).to(x.device)

    def sample(self, n: int, t=0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples of q_t (t = 0: the data), float64 CPU tensor (n, D)."""
        n = check_int_range("n", n, 1, 10**9)
        w, m, c = self.marginal(t)
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        z = torch.randn((n, self.dim), generator=generator, dtype=torch.float64)
        return m[k] + (torch.linalg.cholesky(c)[k] @ z[..., None])[..., 0]
