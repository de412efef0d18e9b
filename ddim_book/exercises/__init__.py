"""Checks for the chapters' exercises: a reader's function against the package's reference.

Each chapter module (``ch01``, ``ch02``, ..., ``appendix`` for appendix A, ``appendix_b``) exposes
``check_<exercise>(fn)``. A check calls the reader's function on a fixed set of cases, compares with the
reference implementation from ``ddim_book``, and raises :class:`ExerciseError` with a message that says which
case failed, what was expected and what came back. It returns a short "passed" message otherwise, so course labs
can grade with it::

    from ddim_book.exercises import ch01
    ch01.check_q_sample(my_q_sample)

A function that is still the placeholder of an exercise cell (it raises NotImplementedError, or returns ``...``
or None) is not an error: the check prints "Exercise 1.1 not attempted yet: fill in my_q_sample, then run this
cell again." and returns that line, so a notebook with unsolved exercises runs top to bottom.
"""

from ddim_book.exercises._core import ExerciseError, NotAttempted, compare, positional

__all__ = ["ExerciseError", "NotAttempted", "compare", "positional"]
