"""Truncation of CG by progress on its quadratic model (Martens 2010, "Deep learning via
Hessian-free optimization", §4.4).

CG minimises φ(x) = ½xᵀ(A + λI)x − bᵀx over growing Krylov spaces, so φ(x_i) decreases every
iteration; for a natural-gradient step only the model's decrease matters, and late iterations
refine directions that the model (a local quadratic) does not describe well anyway. The rule stops
at iteration i once

    i > k,  φ(x_i) < 0  and  (φ(x_i) − φ(x_{i−k})) / φ(x_i) < k·ε,   k = max(min_k, ⌊fraction·i⌋),

i.e. the relative decrease over the last k iterations fell below k·ε (Martens: min_k = 10,
fraction = 0.1, ε = 5·10⁻⁴). φ costs no product with A: with r = b − (A + λI)x,
φ(x) = −½ (b + r)ᵀx, one inner product per iteration.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

__all__ = ["Progress"]


@dataclasses.dataclass(frozen=True)
class Progress:
    """Martens' progress rule (hashable, so it can be a static argument of `jax.jit`)."""

    min_k: int = 10
    fraction: float = 0.1
    epsilon: float = 5e-4

    def window(self, i):
        """k = max(min_k, ⌊fraction·i⌋) at iteration i (a traced integer)."""
        return jnp.maximum(self.min_k, jnp.floor(self.fraction * i).astype(i.dtype))

    def stalled(self, i, phi_i, phi_i_minus_k, k):
        """Whether the rule fires at iteration i, given φ(x_i), φ(x_{i−k}) and k."""
        safe = jnp.where(phi_i < 0, phi_i, -1)
        return (i > k) & (phi_i < 0) & ((phi_i - phi_i_minus_k) / safe < k * self.epsilon)
