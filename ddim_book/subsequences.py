"""Timestep sub-sequences tau for DDIM sampling (DDIM sec. 4.2, appendix D.2); chapter 6."""

from __future__ import annotations

import math

from ddim_book._checks import check_choice, check_int_range

SPACINGS = ("uniform", "quadratic", "trailing")


def timesteps(T: int, S: int, spacing: str = "uniform") -> list[int]:
    """The DDIM sub-sequence tau_1 < ... < tau_S of {1, ..., T} (DDIM sec. 4.2 and appendix D.2).

    - ``"uniform"``: tau_i = 1 + (i - 1) * (T // S), the stride the DDIM code uses, shifted to 1-based t.
      T=1000, S=50 gives 1, 21, 41, ..., 981; T=1000, S=1000 gives 1, 2, ..., 1000. When S does not
      divide T the paper's code takes ceil(T / (T // S)) steps; we keep exactly the first S of them.
    - ``"quadratic"``: tau_i = 1 + floor(c_i^2) with c_i evenly spaced on [0, sqrt(0.8 T)] (the
      paper's CIFAR10 choice). For large S this formula repeats values near t = 1; repeats are pushed up
      by one (tau_i = max(tau_i, tau_{i-1} + 1)) so the sequence stays strictly increasing.
      T=1000, S=10 gives 1, 10, 40, 89, 159, 247, 356, 484, 633, 801; the last point is always
      1 + floor(0.8 T) up to the rounding of sqrt, as in the paper's code (T=1000, S=100 ends at 801).
    - ``"trailing"``: tau_i = round(i * T / S), ending at t = T (Lin et al. 2023, arXiv:2305.08891, table 2).
      T=1000, S=50 gives 20, 40, ..., 1000.

    Returns a list of S distinct increasing ints in 1..T.
    """
    T = check_int_range("T", T, 1, 10**7)
    S = check_int_range("S (the number of sampling steps)", S, 1, T)
    check_choice("spacing", spacing, SPACINGS)
    if spacing == "uniform":
        stride = T // S
        return [1 + i * stride for i in range(S)]
    if spacing == "trailing":
        # integer arithmetic: round-half-up of i*T/S without float error
        return [(2 * i * T + S) // (2 * S) for i in range(1, S + 1)]
    top = math.sqrt(0.8 * T)
    step = top / (S - 1) if S > 1 else 0.0
    taus: list[int] = []
    for i in range(S):
        # c_i exactly as np.linspace(0, top, S) makes it (i * step, and the end point itself), so that the
        # floor of c_i^2 matches the DDIM code's `(np.linspace(0, sqrt(0.8 T), S) ** 2).astype(int) + 1`
        c = top if i == S - 1 else i * step
        tau = 1 + int(c * c)
        if taus and tau <= taus[-1]:
            tau = taus[-1] + 1
        taus.append(tau)
    return taus
