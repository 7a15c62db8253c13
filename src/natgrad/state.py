"""What the natural-gradient optimizer carries from step to step, and what each step reports."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

PyTree = Any

__all__ = ["StepInfo", "NaturalGradientState", "DampingTag", "check_state", "empty_info"]


class StepInfo(NamedTuple):
    """What one natural-gradient step did (JAX scalars: a jittable pytree).

    loss: L(θ), the mean NLL on the gradient batch before the step (NaN in the optax
        transformation when it had no gradient batch, or needed no loss and shared no
        linearization).
    grad_norm: ‖g‖ (in the transformation: the norm of the incoming updates).
    iterations, relative_residual, flag: the solver's `SolverInfo` (flags in `natgrad.solvers`).
    rho: ρ of this step (eq. 30's or the quadratic model's, per the settings' `rho`; as
        measured, also for a rejected step) or, in the transformation, eq. 30's ρ of the previous
        step, measured at this call; NaN when not computed.
    damping: the λ used for this step's solve.
    step_norm: ‖θ_new − θ‖ = ‖−α·ng + μ·δ₀‖ of the step proposed (in the transformation: ‖ng‖,
        the returned direction's norm).
    learning_rate: α, the step size along −ng: η for a fixed rate, the model's choice for
        `learning_rate="adaptive"` (1 in the transformation, which leaves it to the chain).
    momentum: μ, the coefficient of the previous update δ₀ (0 without momentum).
    rejected: 1 when step rejection kept θ (the step was not applied), else 0 (int32: summed
        over a run it counts the rejected steps).
    """

    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    relative_residual: jax.Array
    flag: jax.Array
    rho: jax.Array
    damping: jax.Array
    step_norm: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    rejected: jax.Array


@jax.tree_util.register_pytree_node_class
class DampingTag:
    """Which damping rule a state was made for, carried as static pytree data (no leaves, so jit,
    scan and vmap see the state's arrays unchanged): a step given another rule is refused rather
    than run on a λ the rule never set. A `Constant` is tagged by its kind only (its value is the
    step's, and may be an injected, traced hyper-parameter)."""

    def __init__(self, key):
        self.key = key

    @classmethod
    def of(cls, rule) -> "DampingTag":
        return cls(type(rule).__name__ if not getattr(rule, "needs_rho", True) else rule)

    def tree_flatten(self):
        return (), self.key

    @classmethod
    def tree_unflatten(cls, key, children):
        del children
        return cls(key)

    def __eq__(self, other):
        return isinstance(other, DampingTag) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return repr(self.key)


class NaturalGradientState(NamedTuple):
    """The optimizer's state: step count, damping λ, the last step's info, for the optax
    transformation when ρ is needed the parameters of the previous call (else None), when the
    economics warm-start the solve the last direction ng (else None), the economics'
    preconditioner's state (else None), with momentum the last applied update δ₀ (else None),
    and the damping rule it was made for (`DampingTag`).

    λ is the one for the next solve (plain step) or the one of the last solve (transformation,
    which revises it from the applied update at its next call before solving)."""

    count: jax.Array
    damping: jax.Array
    info: StepInfo
    previous_params: Optional[PyTree] = None
    direction: Optional[PyTree] = None
    preconditioner: Optional[PyTree] = None
    update: Optional[PyTree] = None
    rule: Optional[DampingTag] = None


def check_state(state: NaturalGradientState, rule, momentum: bool) -> None:
    """A state is stepped only with the damping rule it was made for (its λ is that rule's) and
    with momentum exactly when it carries δ₀: one line naming both, else."""
    if state.rule is not None and state.rule != DampingTag.of(rule):
        raise ValueError(f"the state was made for damping {state.rule!r} but the step's damping "
                         f"is {rule!r}: make the state with the step's damping "
                         f"(natural_gradient_init(params, damping) or NaturalGradient.init)")
    if momentum != (state.update is not None):
        raise ValueError(f"momentum={momentum} but the state was made "
                         f"{'without' if state.update is None else 'with'} momentum: make it "
                         f"with the step's settings (NaturalGradient.init, or "
                         f"natural_gradient_init(..., momentum={momentum}))")


def empty_info(dtype) -> StepInfo:
    """The info of a state no step has written yet: zeros, ρ NaN."""
    z = jnp.zeros((), dtype)
    nan = jnp.full((), jnp.nan, dtype)
    zi = jnp.zeros((), jnp.int32)
    return StepInfo(loss=z, grad_norm=z, iterations=zi, relative_residual=z, flag=zi, rho=nan,
                    damping=z, step_norm=z, learning_rate=z, momentum=z, rejected=zi)


