"""Stalls that speak: a run of steps that changed nothing is counted in `StepInfo.stall_run` and,
when it reaches `STALL_STEPS`, reported on the host.

A step stalls when its loss is not finite (a NaN pixel, a label of 10 for 10 classes), or when an
adaptive damping's λ is at or past `STALL_DAMPING`: a loss that never falls (a learning rate of 0)
makes Levenberg-Marquardt raise λ ×1.5 a step, past 10⁴ after 23. A rejected step alone is no
stall: a converged run rejects the steps that cannot lower its loss in floating point, at a small
λ. Seen from inside, these causes look alike, so the report names them and the way to find which:
`checks=True` under `checkify`.

The report is a `jax.debug.callback` inside a `lax.cond` (paid only on the step that reaches the
run length): `on_stall="warn"` issues a `StallWarning`, `"raise"` raises a `StallError` (under
`jit` it surfaces as the runtime error that carries its message), None reports through `StepInfo`
only (a host callback keeps an executable out of jax's persistent compilation cache).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["STALL_STEPS", "STALL_DAMPING", "StallWarning", "StallError"]

#: Consecutive stalled steps that are reported.
STALL_STEPS = 10
#: An adaptive damping's λ at or past this counts as a stalled step.
STALL_DAMPING = 1e4
#: The settings of `on_stall`.
ON_STALL = ("warn", "raise", None)


class StallWarning(RuntimeWarning):
    """A run of `STALL_STEPS` steps with a non-finite loss or at λ ≥ `STALL_DAMPING`."""


class StallError(RuntimeError):
    """`StallWarning` as an error (`on_stall="raise"`)."""


def check_on_stall(on_stall) -> None:
    """One line naming the setting when it is not one of `ON_STALL`."""
    if on_stall not in ON_STALL:
        raise ValueError(f"on_stall must be one of {ON_STALL}, got {on_stall!r}")


def stall_run(previous_run, loss, damping, adaptive: bool) -> jax.Array:
    """The length of the run of stalled steps that ends at this step (0 when this one is not):
    a non-finite loss, or with `adaptive` (λ is the damping rule's, not the user's constant)
    λ ≥ `STALL_DAMPING`."""
    stalled = ~jnp.isfinite(loss)
    if adaptive:
        stalled = stalled | (damping >= STALL_DAMPING)
    return jnp.where(stalled, previous_run + 1, 0).astype(jnp.int32)


def _message(damping, loss) -> str:
    return (f"natgrad: {STALL_STEPS} steps in a row stalled (loss {loss:.4g}, λ = {damping:.3g}; a "
            f"stall is a non-finite loss or λ ≥ {STALL_DAMPING:g}). Likely causes: non-finite inputs or targets "
            f"(NaN or inf), targets outside the family's range (e.g. a label ≥ the number of "
            f"classes), a learning rate of 0. Find which with checks=True, the step run under "
            f"jax.experimental.checkify.checkify")


def _warn(run, damping, loss):
    if int(run) == STALL_STEPS:  # under vmap the cond is a select: both branches run
        warnings.warn(_message(float(damping), float(loss)), StallWarning, stacklevel=2)


def _raise(run, damping, loss):
    if int(run) == STALL_STEPS:
        raise StallError(_message(float(damping), float(loss)))


def report_stall(on_stall, run, damping, loss) -> None:
    """The host-side report when `run` reaches `STALL_STEPS` (nothing traced for None)."""
    if on_stall is None:
        return
    report = _warn if on_stall == "warn" else _raise
    lax.cond(run == STALL_STEPS, lambda: jax.debug.callback(report, run, damping, loss),
             lambda: None)
