"""The truncation arguments every solver takes, checked where they are known.

`max_iters` and `rtol` may be traced (a learning-rate-style schedule of the truncation), so only
concrete values can be refused here; a traced negative `rtol` is made harmless by the solvers
themselves (they never report CONVERGED for it).
"""
from __future__ import annotations

import math

import jax

__all__ = ["check_truncation"]


def _concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def check_truncation(max_iters, rtol) -> None:
    """Refuse, with one line naming the argument, `max_iters` < 1 and a negative or non-finite
    `rtol` when they are concrete (traced values pass: they are only known inside the loop;
    None: not given here)."""
    if max_iters is not None and _concrete(max_iters):
        if isinstance(max_iters, bool) or int(max_iters) != max_iters or max_iters < 1:
            raise ValueError(f"max_iters must be an integer >= 1, got {max_iters!r}")
    if rtol is not None and _concrete(rtol):
        value = float(rtol)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"rtol must be a finite number >= 0, got {rtol!r}")
