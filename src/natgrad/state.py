"""What the natural-gradient optimizer carries from step to step, and what each step reports."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

PyTree = Any

__all__ = ["StepInfo", "NaturalGradientState", "empty_info"]


class StepInfo(NamedTuple):
    """What one natural-gradient step did (JAX scalars: a jittable pytree).

    loss: L(θ), the mean NLL on the gradient batch before the step (NaN in the optax
        transformation when it had no gradient batch, or needed no loss and shared no
        linearization).
    grad_norm: ‖g‖ (in the transformation: the norm of the incoming updates).
    iterations, relative_residual, flag: the solver's `SolverInfo` (flags in `natgrad.solvers`).
    rho: the reduction ratio of eq. 30 of this step (plain step) or, in the transformation, of the
        previous step, measured at this call; NaN when not computed.
    damping: the λ used for this step's solve.
    step_norm: ‖θ_new − θ‖ = η‖ng‖ (in the transformation: ‖ng‖, the returned direction's norm).
    """

    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    relative_residual: jax.Array
    flag: jax.Array
    rho: jax.Array
    damping: jax.Array
    step_norm: jax.Array


class NaturalGradientState(NamedTuple):
    """The optimizer's state: step count, damping λ, the last step's info, for the optax
    transformation when ρ is needed the parameters of the previous call (else None), when the
    economics warm-start the solve the last direction ng (else None), and the economics'
    preconditioner's state (else None).

    λ is the one for the next solve (plain step) or the one of the last solve (transformation,
    which revises it from the applied update at its next call before solving)."""

    count: jax.Array
    damping: jax.Array
    info: StepInfo
    previous_params: Optional[PyTree] = None
    direction: Optional[PyTree] = None
    preconditioner: Optional[PyTree] = None


def empty_info(dtype) -> StepInfo:
    """The info of a state no step has written yet: zeros, ρ NaN."""
    z = jnp.zeros((), dtype)
    nan = jnp.full((), jnp.nan, dtype)
    zi = jnp.zeros((), jnp.int32)
    return StepInfo(z, z, zi, z, zi, nan, z, z)


