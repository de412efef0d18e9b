"""The comparison machinery shared by every exercise check."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class ExerciseError(AssertionError):
    """A reader's function disagreed with the reference; the message says where and how."""


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        head = ", ".join(f"{v:.6g}" for v in flat[:4].tolist())
        more = ", ..." if flat.numel() > 4 else ""
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}: [{head}{more}]"
    return repr(value)


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double()
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def _mismatch(got, want, rtol: float, atol: float) -> str | None:
    """None if ``got`` matches ``want``, else a sentence saying how it does not."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"expected a {type(want).__name__} of {len(want)} values, got {_describe(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            problem = _mismatch(g, w, rtol, atol)
            if problem:
                return f"item {i}: {problem}"
        return None
    g, w = _as_tensor(got), _as_tensor(want)
    if g is None:
        return f"expected {_describe(want)}, got {_describe(got)}"
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor) and got.shape != want.shape:
        return f"shape {tuple(got.shape)} where {tuple(want.shape)} was expected"
    if not bool(torch.isfinite(g).all()):
        return f"the result contains NaN or inf: {_describe(got)}"
    diff = (g - w).abs()
    bad = diff > atol + rtol * w.abs()
    if bool(bad.any()):
        i = int(torch.nonzero(bad.flatten())[0])
        return (
            f"value {g.flatten()[i].item():.8g} where {w.flatten()[i].item():.8g} was expected "
            f"(at flat index {i}; {int(bad.sum())} of {bad.numel()} entries differ; "
            f"max abs error {diff.max().item():.3g})"
        )
    return None


def compare(
    name: str,
    fn: Callable,
    reference: Callable,
    cases: Iterable[tuple[str, dict]],
    rtol: float = 1e-6,
    atol: float = 1e-8,
    hint: str = "",
) -> str:
    """Call ``fn(**kwargs)`` and ``reference(**kwargs)`` for each (label, kwargs) case and compare.

    Tensors are compared in float64 with ``|got - want| <= atol + rtol |want|``; tuples item by item.
    Raises :class:`ExerciseError` at the first failing case; returns a "passed" message otherwise.
    """
    if not callable(fn):
        raise ExerciseError(f"{name}: expected a function, got {_describe(fn)}")
    count = 0
    for label, kwargs in cases:
        copies = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        try:
            got = fn(**copies)
        except Exception as err:  # the reader's code: report, don't crash the lab
            raise ExerciseError(f"{name}, case '{label}': your function raised {type(err).__name__}: {err}") from err
        want = reference(**kwargs)
        problem = _mismatch(got, want, rtol, atol)
        if problem:
            extra = f"\nHint: {hint}" if hint else ""
            raise ExerciseError(f"{name}, case '{label}': {problem}{extra}")
        count += 1
    message = f"{name}: all {count} cases passed"
    print(message)
    return message
