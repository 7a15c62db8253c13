"""ρ one call late, for the optax faces of `natgrad.NaturalGradient`: a transformation returns a
direction and the chain applies some update, so ρ of step t is measured at call t+1 from the
update d = θ_{t+1} − θ_t that was applied (see `natgrad.optimizer`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import pytree
from .curvature import loss_gradient_and_metric, metric_operator, shares_linearization
from .damping import next_damping

__all__ = ["applied_reduction_ratio", "revised_damping", "transform_metric"]


def applied_reduction_ratio(loss_fn, previous, params, loss, dtype):
    """ρ of eq. 30 for the update d = θ − θ_prev that was applied, (L(θ) − L(θ_prev)) / (∇L(θ_prev)·d),
    L(θ) given; L(θ_prev) and the directional derivative from one `jax.jvp` at θ_prev."""
    d = jax.tree_util.tree_map(lambda a, b: a - b, params, previous)
    loss_prev, predicted = jax.jvp(loss_fn, (previous,), (d,))
    return ((loss - loss_prev) / predicted).astype(dtype)


def revised_damping(rule, state, loss_fn, params, loss, dtype):
    """(λ, ρ) at a transformation call: ρ of the previous step from the update that was applied,
    and the rule's λ from it; on the first call (no previous step) ρ is NaN and λ unchanged."""
    rho = applied_reduction_ratio(loss_fn, state.previous_params, params, loss, dtype)
    first = state.count == 0
    rho = jnp.where(first, jnp.nan, rho)
    return jnp.where(first, state.damping, next_damping(rule, state.damping, rho,
                                                            state.count - 1)), rho


def transform_metric(apply_fn, params, grad_batch, metric_batch, family, metric, need_loss):
    """(L or NaN, v ↦ M v) for the transformation: L on the gradient batch when ρ needs it or when
    it comes free with a shared linearization, the metric on the metric batch."""
    dtype = pytree.scalar_dtype(params)
    if grad_batch is not None and (need_loss or shares_linearization(grad_batch, metric_batch,
                                                                     metric)):
        loss, _, matvec = loss_gradient_and_metric(apply_fn, params, grad_batch, metric_batch,
                                                   family, metric)
        return jnp.asarray(loss, dtype), matvec
    batch = grad_batch if metric_batch is None else metric_batch
    return jnp.full((), jnp.nan, dtype), metric_operator(apply_fn, params, batch, family, metric)


