"""Preconditioners for the Krylov solvers: M⁻¹ as a function, or M as a diagonal pytree.

Both solvers take `preconditioner=`: None (no preconditioning), a function `v ↦ M⁻¹ v` on pytrees
shaped like the right-hand side (M symmetric positive definite), or a pytree shaped like the
right-hand side holding the diagonal of M (positive entries), so that M⁻¹ v = v / diag.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax

PyTree = Any

__all__ = ["inverse_preconditioner"]


def inverse_preconditioner(preconditioner) -> Optional[Callable[[PyTree], PyTree]]:
    """`v ↦ M⁻¹ v` for a `preconditioner` given as None, a function or the diagonal of M."""
    if preconditioner is None or callable(preconditioner):
        return preconditioner

    def apply(v):
        return jax.tree_util.tree_map(lambda vi, di: (vi / di).astype(vi.dtype), v, preconditioner)

    return apply
