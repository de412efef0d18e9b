"""The machinery shared by every exercise check: calling the reader's function, comparing, placeholders.

A check grades a reader's function ``fn`` in three steps: :func:`positional` wraps ``fn`` so that the check can call
it with the case's arguments (and notices a placeholder), the check adds whatever conversion it needs, and
:func:`compare` runs every case against the reference. The exercise cells of the book hold a stub whose body is
``raise NotImplementedError`` or ``return ...``; a check given such a stub prints one line, "Exercise N.k not
attempted yet: ...", and returns instead of raising, so that a notebook with unsolved exercises still runs top to
bottom. A wrong answer raises :class:`ExerciseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ddim_book.schedules import NoiseSchedule

__all__ = ["ExerciseError", "NotAttempted", "compare", "positional", "schedule_or_default"]


class ExerciseError(AssertionError):
    """A reader's function disagreed with the reference; the message says where and how."""


class NotAttempted(Exception):
    """Raised by a :func:`positional` wrapper when the reader's function is still a placeholder.

    A placeholder raises NotImplementedError, or returns ``...`` (Ellipsis), ``None``, or a tuple or list holding
    ``...``. :func:`compare` turns this into the "not attempted yet" line when it happens on the first case.
    """

    def __init__(self, function: str, returned: str = ""):
        self.function = function
        self.returned = returned  # "" (NotImplementedError), "..." or "None"
        super().__init__(f"{function} is a placeholder")


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        head = ", ".join(f"{v:.6g}" for v in flat[:4].tolist())
        more = ", ..." if flat.numel() > 4 else ""
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}: [{head}{more}]"
    return repr(value)


def _function_name(fn: Callable) -> str:
    """The name the reader gave ``fn`` ("my_ddim_step"), or "your function" for a lambda or a callable object."""
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else "your function"


def _placeholder_value(out) -> str:
    """ "..." or "None" when ``out`` is what an unfilled stub returns, "" otherwise."""
    if out is Ellipsis:
        return "..."
    if out is None:
        return "None"
    if isinstance(out, (tuple, list)) and any(item is Ellipsis for item in out):
        return "..."
    return ""


def positional(name: str, fn: Callable, *order: str) -> Callable:
    """The reader's ``fn`` as a check calls it: ``call(**case)`` passes the case's arguments by position, in
    ``order`` (so any parameter names work), or by keyword when ``order`` is empty.

    A call that raises NotImplementedError, or returns ``...`` or None, raises :class:`NotAttempted` instead.
    Raises :class:`ExerciseError` at once if ``fn`` is not callable.
    """
    if not callable(fn):
        raise ExerciseError(f"{name}: expected a function, got {_describe(fn)}")
    label = _function_name(fn)

    def call(**kwargs):
        try:
            out = fn(*(kwargs[key] for key in order)) if order else fn(**kwargs)
        except NotImplementedError as err:
            raise NotAttempted(label) from err
        returned = _placeholder_value(out)
        if returned:
            raise NotAttempted(label, returned)
        return out

    return call


def schedule_or_default(schedule: NoiseSchedule | None) -> NoiseSchedule:
    """The schedule a check grades against: ``schedule``, or DDPM's linear one (T = 1000) when None."""
    if schedule is None:
        return NoiseSchedule.linear(1000, 1e-4, 0.02)
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule or None, got {type(schedule).__name__}")
    return schedule


def not_attempted_message(exercise: str, function: str, returned: str = "") -> str:
    """The one line a check prints for a placeholder, e.g. "Exercise 6.1 not attempted yet: fill in my_ddim_step,
    then run this cell again." A stub that returned None may just lack its return statement, so the line says so."""
    what = f"Exercise {exercise}" if exercise else "This exercise"
    if returned == "None":
        return (
            f"{what} not attempted yet: {function} returned None; fill it in and return the result, "
            "then run this cell again."
        )
    return f"{what} not attempted yet: fill in {function}, then run this cell again."


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
    exercise: str = "",
) -> str:
    """Call ``fn(**kwargs)`` and ``reference(**kwargs)`` for each (label, kwargs) case and compare.

    ``fn`` is the reader's function wrapped by :func:`positional` (possibly inside a conversion of the check's).
    Tensors are compared in float64 with ``|got - want| <= atol + rtol |want|``; tuples item by item.
    If the first case finds a placeholder (:class:`NotAttempted`), prints and returns the "not attempted yet" line
    of ``exercise`` (e.g. "6.1"). Raises :class:`ExerciseError` at the first failing case; returns a "passed"
    message otherwise.
    """
    if not callable(fn):
        raise ExerciseError(f"{name}: expected a function, got {_describe(fn)}")
    count = 0
    for label, kwargs in cases:
        copies = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        try:
            got = fn(**copies)
        except NotAttempted as stub:
            if count == 0:
                message = not_attempted_message(exercise, stub.function, stub.returned)
                print(message)
                return message
            what = f"returned {stub.returned}" if stub.returned else "raised NotImplementedError"
            raise ExerciseError(
                f"{name}, case '{label}': your function {what} after passing {count} case(s) "
                "(is a branch or a return statement missing?)"
            ) from stub
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
