"""Diagonal preconditioners for the natural-gradient solve, from per-example gradients.

Martens (2010, "Deep learning via Hessian-free optimization", §4.7) preconditions CG by

    M = [diag(Σ_i g_i ⊙ g_i) + λI]^α,  α = 0.75,

g_i the gradient of example i's loss and λ the damping: the diagonal of the empirical Fisher,
damped, raised to a power below 1 (the full inverse over-corrects: the empirical Fisher's diagonal
is a crude estimate of the curvature's). natgrad's loss is the *mean* NLL, and its metrics are
means over the batch, so the sum becomes a mean here: D = (1/n) Σ_i g_i ⊙ g_i is the diagonal of
the uncentred covariance `natgrad.empirical_fisher_operator`, on the scale of the metric and λ.

`squared_gradients` computes D with `jax.vmap` of `jax.grad` (per-example gradients, optionally
in chunks to bound memory); `MartensDiagonal` turns it into M, in the form the solvers'
`preconditioner=` takes (the diagonal of M as a pytree), and is a preconditioner of
`natgrad.economics.SolverEconomics` (a `Preconditioner`; its state is the diagonal).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from .protocol import inverse_preconditioner

PyTree = Any

__all__ = ["squared_gradients", "MartensDiagonal"]


def _sum_of_squares(apply_fn, params, inputs, targets, family):
    """Σ_i g_i ⊙ g_i over one batch, from `jax.vmap` of the per-example gradient."""
    def example_grad(x, t):
        one = jax.tree_util.tree_map(lambda a: a[None], (x, t))
        return jax.grad(lambda p: jnp.sum(family.nll(apply_fn(p, one[0]), one[1])))(params)

    grads = jax.vmap(example_grad)(inputs, targets)
    return jax.tree_util.tree_map(lambda g: jnp.sum(g * g, axis=0), grads)


def squared_gradients(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    inputs: Any,
    targets: Any,
    family,
    *,
    chunk: Optional[int] = None,
) -> PyTree:
    """D = (1/n) Σ_i g_i ⊙ g_i, g_i = ∇_θ nll(apply_fn(θ, x_i), t_i): the diagonal of the
    uncentred covariance of per-example gradients (eq. 13), shaped like `params`.

    Args:
      apply_fn, params, family: as for `natgrad.ggn_operator`.
      inputs, targets: the batch (leading axis n).
      chunk: per-example gradients held at once (`jax.lax.scan` over chunks of this many
        examples, the remainder in one more `vmap`); None: all n at once.
    """
    n = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    chunk = n if chunk is None else min(chunk, n)
    full = (n // chunk) * chunk
    batch = (inputs, targets)
    head = jax.tree_util.tree_map(lambda a: a[:full].reshape((n // chunk, chunk) + a.shape[1:]),
                                  batch)

    def add(total, part):
        squares = _sum_of_squares(apply_fn, params, *part, family)
        return jax.tree_util.tree_map(jnp.add, total, squares), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    total, _ = jax.lax.scan(add, zeros, head)
    if full < n:
        total, _ = add(total, jax.tree_util.tree_map(lambda a: a[full:], batch))
    return jax.tree_util.tree_map(lambda s: (s / n).astype(s.dtype), total)


@dataclasses.dataclass(frozen=True)
class MartensDiagonal:
    """Martens' preconditioner M = (D + λ)^exponent, D from `squared_gradients` (hashable: a
    static argument of `jax.jit`).

    `MartensDiagonal()(apply_fn, params, inputs, targets, family, λ)` returns the diagonal of M
    as a pytree. An entry with D + λ = 0 (a parameter no example's loss depends on, undamped) is
    set to 1: that coordinate is left unpreconditioned rather than divided by 0. As an economics
    preconditioner its state is that diagonal, rebuilt at every step on (a sub-batch of) the
    gradient batch.
    """

    exponent: float = 0.75
    chunk: Optional[int] = None

    def __call__(self, apply_fn, params, inputs, targets, family, damping) -> PyTree:
        d = squared_gradients(apply_fn, params, inputs, targets, family, chunk=self.chunk)
        def power(s):
            m = (s + damping) ** self.exponent
            return jnp.where(m > 0, m, 1).astype(s.dtype)

        return jax.tree_util.tree_map(power, d)

    def init(self, params) -> PyTree:
        """The state before the first step: a diagonal of ones (no preconditioning)."""
        return jax.tree_util.tree_map(jnp.ones_like, params)

    def refresh(self, state, apply_fn, params, inputs, targets, family, damping) -> PyTree:
        """The diagonal of M on this batch at λ = `damping` (rebuilt at every step)."""
        del state
        return self(apply_fn, params, inputs, targets, family, damping)

    def inverse(self, state):
        """v ↦ v / diag(M)."""
        return inverse_preconditioner(state)
