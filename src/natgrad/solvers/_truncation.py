"""The arguments every solver takes (`damping`, `max_iters`, `rtol`), checked where they are known.

They may be traced (e.g. injected hyper-parameters), so only concrete values can be refused; a
traced negative or non-finite `rtol` acts as 0, so a solver never reports CONVERGED for a residual
test it did not pass.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["check_non_negative", "check_truncation", "checked_arguments"]


def _concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def check_non_negative(name: str, value) -> None:
    """Refuse a concrete `value` that is negative or not finite, with one line naming it (the
    library's one check of a damping, a tolerance or a learning rate); a traced value passes."""
    if _concrete(value):
        number = float(value)
        if not (math.isfinite(number) and number >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_truncation(max_iters, rtol) -> None:
    """Refuse, with one line naming the argument, `max_iters` < 1 and a negative or non-finite
    `rtol` when they are concrete (traced values pass: they are only known inside the loop;
    None: not given here)."""
    if max_iters is not None and _concrete(max_iters):
        if isinstance(max_iters, bool) or int(max_iters) != max_iters or max_iters < 1:
            raise ValueError(f"max_iters must be an integer >= 1, got {max_iters!r}")
    if rtol is not None:
        check_non_negative("rtol", rtol)


def checked_arguments(damping, max_iters, rtol, dtype):
    """`damping` and `rtol` as scalars of `dtype`, after refusing, with one line naming the
    argument, a concrete `max_iters` < 1, a negative or non-finite `rtol` or `damping`. A traced
    `rtol` that is negative or not finite acts as 0 (the solve runs to max_iters and never reports
    CONVERGED for a residual test it did not pass); a traced `damping` is taken as it is."""
    check_truncation(max_iters, rtol)
    check_non_negative("damping", damping)
    rtol = jnp.asarray(rtol, dtype)
    rtol = jnp.where(jnp.isfinite(rtol) & (rtol >= 0), rtol, jnp.zeros_like(rtol))
    return jnp.asarray(damping, dtype), rtol
