"""What the natural-gradient optimizer carries from step to step, and what each step reports."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from . import checks, pytree

PyTree = Any

__all__ = ["StepInfo", "NaturalGradientState", "DampingTag", "check_state", "empty_info",
           "initial_state", "make_step_info", "step_info_of"]


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
    stall_run: how many steps in a row, this one included, had a non-finite loss or ran at an
        adaptive λ ≥ `natgrad.stalls.STALL_DAMPING` (0 when this one did not): `natgrad.stalls`.
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
    stall_run: jax.Array


@jax.tree_util.register_pytree_node_class
class DampingTag(NamedTuple):
    """Which damping rule a state was made for, carried as static pytree data (no leaves, so jit,
    scan and vmap see the state's arrays unchanged): a step given another rule is refused rather
    than run on a λ the rule never set. A `Constant` is tagged by its kind only (its value is the
    step's, and may be an injected, traced hyper-parameter), another rule by its repr (a frozen
    dataclass's: equal exactly when the rules are).

    The key is a string in a one-field named tuple, so that `flax.serialization` (which stores
    named tuples field by field) and orbax (which restores the target's tree structure) save and
    restore it as it is."""

    key: str

    @classmethod
    def of(cls, rule) -> "DampingTag":
        return cls(type(rule).__name__ if not getattr(rule, "needs_rho", True) else repr(rule))

    def tree_flatten(self):
        return (), self.key

    @classmethod
    def tree_unflatten(cls, key, children):
        del children
        return cls(key)

    def __repr__(self):
        return self.key if "(" in self.key else repr(self.key)


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


def _check_shaped_like(params, tree, what) -> None:
    """`tree` (a state's parameter-shaped part) has params' structure and leaf shapes."""
    if tree is None:
        return
    same = jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(params) and all(
        jnp.shape(a) == jnp.shape(b) for a, b in zip(jax.tree_util.tree_leaves(tree),
                                                     jax.tree_util.tree_leaves(params)))
    if not same:
        raise ValueError(f"the state's {what} is not shaped like params: the state was made for "
                         f"another model's parameters; make it with init(params) of this model")


def check_state(state: NaturalGradientState, rule, momentum: bool, params=None) -> None:
    """A state is stepped only with the damping rule it was made for (its λ is that rule's), with
    momentum exactly when it carries δ₀, and on parameters shaped like those it was made for: one
    line naming the mismatch, else."""
    if not isinstance(state, NaturalGradientState):
        raise TypeError(f"state must be a NaturalGradientState (from init(params)), got "
                        f"{type(state).__name__}")
    if params is not None:
        for what in ("previous_params", "direction", "update"):
            _check_shaped_like(params, getattr(state, what), what)
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
                    damping=z, step_norm=z, learning_rate=z, momentum=z, rejected=zi,
                    stall_run=zi)


def initial_state(params: PyTree, economics, *,
                  momentum: bool = False) -> NaturalGradientState:
    """A fresh state for these economics (`NaturalGradient.init`, `natural_gradient_init`)."""
    checks.check_params(params)
    dtype = pytree.scalar_dtype(params)
    return NaturalGradientState(
        count=jnp.zeros((), jnp.int32),
        damping=jnp.asarray(economics.damping.init(), dtype),
        info=empty_info(dtype),
        direction=economics.initial_direction(params),
        preconditioner=economics.initial_preconditioner(params),
        update=pytree.zeros_like(params) if momentum else None,
        rule=DampingTag.of(economics.damping),
    )


def make_step_info(loss, gnorm, sinfo, rho, lam, size, ng, previous, rejected, stall_run,
                   dtype) -> StepInfo:
    """What a step reports: its scalars in the parameters' dtype, ‖δ‖ of δ = −α·ng + μ·δ₀."""
    if previous is None:
        step_norm = jnp.abs(size.alpha) * pytree.norm(ng)
    else:
        step_norm = pytree.norm(jax.tree_util.tree_map(
            lambda d, d0: -size.alpha * d + size.mu * d0, ng, previous))
    return StepInfo(
        loss=jnp.asarray(loss, dtype),
        grad_norm=gnorm.astype(dtype),
        iterations=sinfo.iterations,
        relative_residual=jnp.asarray(sinfo.relative_residual, dtype),
        flag=sinfo.flag,
        rho=rho,
        damping=jnp.asarray(lam, dtype),
        step_norm=step_norm.astype(dtype),
        learning_rate=jnp.asarray(size.alpha, dtype),
        momentum=jnp.asarray(size.mu, dtype),
        rejected=rejected.astype(jnp.int32),
        stall_run=stall_run,
    )


def step_info_of(opt_state) -> StepInfo:
    """The `StepInfo` of the last update from an optax state that holds one natural-gradient
    transformation's state anywhere inside (a chain's tuple, `optax.inject_hyperparams`,
    `optax.MultiSteps`, `optax.named_chain`): what kfac-jax users read from their stats."""
    found = [node for node in jax.tree_util.tree_leaves(
        opt_state, is_leaf=lambda node: isinstance(node, NaturalGradientState))
        if isinstance(node, NaturalGradientState)]
    if len(found) != 1:
        raise ValueError(f"step_info_of needs an optax state with exactly one natgrad "
                         f"transformation's state inside, found {len(found)}")
    return found[0].info
