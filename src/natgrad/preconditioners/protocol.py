"""What a preconditioner is, in the two forms natgrad uses.

- `Preconditioner`: a preconditioner with state, the form `natgrad.economics.SolverEconomics(
  preconditioner=...)` refreshes at every step (`MartensDiagonal`, `kronecker.KroneckerFactors`).
- The solvers' `preconditioner=` argument: None (no preconditioning), a function `v ↦ M⁻¹ v` on
  pytrees shaped like the right-hand side (M symmetric positive definite), or a pytree shaped like
  the right-hand side holding the diagonal of M (positive entries), so that M⁻¹ v = v / diag;
  `inverse_preconditioner` turns any of them into the function (a `Preconditioner`'s `inverse`
  returns that function).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, runtime_checkable

import jax

PyTree = Any

__all__ = ["Preconditioner", "inverse_preconditioner"]


@runtime_checkable
class Preconditioner(Protocol):
    """A preconditioner with state, refreshed at every natural-gradient step.

    Implement it as a frozen dataclass (hashable: the economics is a static argument of
    `jax.jit`), with its state a pytree, since it lives in the optimizer state (e.g. through
    `jax.lax.scan`).
    """

    def init(self, params: PyTree) -> PyTree:
        """The state before the first step; its structure depends only on the params."""

    def refresh(self, state: PyTree, apply_fn: Callable[[PyTree, Any], jax.Array],
                params: PyTree, inputs: Any, targets: Any, family, damping) -> PyTree:
        """The state for this step (jittable; `damping` λ may be traced), from the first
        ⌈metric_fraction·n⌉ rows of the gradient batch `(inputs, targets)`."""

    def inverse(self, state: PyTree) -> Callable[[PyTree], PyTree]:
        """`v ↦ M⁻¹ v` on pytrees shaped like the params, the solvers' `preconditioner=`."""


def inverse_preconditioner(preconditioner) -> Optional[Callable[[PyTree], PyTree]]:
    """`v ↦ M⁻¹ v` for a `preconditioner` given as None, a function or the diagonal of M."""
    if preconditioner is None or callable(preconditioner):
        return preconditioner

    def apply(v):
        return jax.tree_util.tree_map(lambda vi, di: (vi / di).astype(vi.dtype), v, preconditioner)

    return apply
