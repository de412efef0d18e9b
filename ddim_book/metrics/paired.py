"""Paired comparisons of two samplers' FLDs: an interval for the difference, not two intervals side by side.

Chapter 6 compares samplers that start every image from the same x_T (and draw the same noise). Their FLDs
then move together when the x_T are redrawn: an x_T that gives an odd digit under one sampler tends to give one
under the other. Two separate bootstrap intervals ignore that and overlap even when every resample agrees on
which sampler is better. Resampling the same image positions in both sets (the same bootstrap seed and n, as
:func:`ddim_book.metrics.fld_bootstrap` does) and taking the spread of the *differences* keeps the pairing.
This is the paired bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 16).
"""

from __future__ import annotations

import math

import torch

__all__ = ["paired_difference", "paired_fld_change"]


def paired_difference(a: dict, b: dict, level: float = 0.95) -> dict:
    """FLD(a) - FLD(b) with a normal interval from the paired bootstrap.

    Args:
        a, b: results of :func:`ddim_book.metrics.fld_bootstrap` with ``keep_values=True`` (or dicts holding
            ``"fld"`` and ``"values"``) for two image sets of the same size whose image i share an x_T, scored
            with the same bootstrap seed, so that resample k picks the same positions in both.
        level: coverage of the interval, in [0.5, 1).

    Returns:
        ``{"diff", "low", "high", "sd", "reps", "level", "excludes_zero"}``: ``diff = fld_a - fld_b``; ``sd`` is
        the standard deviation of the resampled differences, and the interval is ``diff +- z * sd``. An interval
        that excludes 0 says which set is better at this level; one that contains 0 does not.
    """
    if not (isinstance(level, float) and 0.5 <= level < 1.0):
        raise ValueError(f"level must be a float in [0.5, 1), got {level!r}")
    for name, d in (("a", a), ("b", b)):
        if not isinstance(d, dict) or "values" not in d or "fld" not in d:
            raise ValueError(f"{name} needs 'fld' and 'values' (fld_bootstrap(..., keep_values=True))")
    if a.get("n") != b.get("n") or len(a["values"]) != len(b["values"]):
        raise ValueError(
            f"a paired comparison needs equal n and reps, got n = {a.get('n')} and {b.get('n')}, "
            f"reps = {len(a['values'])} and {len(b['values'])}"
        )
    if len(a["values"]) < 10:
        raise ValueError(f"need at least 10 resampled values, got {len(a['values'])}")
    diffs = torch.tensor(a["values"], dtype=torch.float64) - torch.tensor(b["values"], dtype=torch.float64)
    z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2.0, dtype=torch.float64)))
    diff, sd = float(a["fld"]) - float(b["fld"]), float(diffs.std())
    if not math.isfinite(sd):
        raise ValueError("the resampled values are not finite")
    low, high = diff - z * sd, diff + z * sd
    return {"diff": diff, "low": low, "high": high, "sd": sd, "reps": len(diffs), "level": level,
            "excludes_zero": low > 0 or high < 0}  # fmt: skip


def paired_fld_change(a: dict, b: dict, level: float = 0.95) -> dict:
    """:func:`paired_difference` of two stored scores, which keep their resampled FLDs as ``fld_boot``
    (``evaluation.score_digits(keep_values=True)``, the cells of ``scripts/eta_steps_table.py``)."""
    return paired_difference({**a, "values": a["fld_boot"]}, {**b, "values": b["fld_boot"]}, level)
