"""Truncated conjugate gradient on pytrees.

Solves (A + damping·I) x = b for symmetric positive (semi)definite A given only v ↦ A v, starting
from x = 0. The loop is a `lax.while_loop`: jittable, differentiable-free, no host round-trips.
Each iteration costs one product with A plus a handful of fused vector updates (tree_map over the
leaves, nothing is ravelled).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from .. import pytree as t
from ._info import (
    BREAKDOWN,
    CONVERGED,
    MAX_ITERS,
    NEGATIVE_CURVATURE,
    ZERO_RHS,
    SolverInfo,
)

PyTree = Any

_RUNNING = -1


def cg(
    matvec: Callable[[PyTree], PyTree],
    b: PyTree,
    *,
    damping: float | jax.Array = 0.0,
    max_iters: int = 100,
    rtol: float | jax.Array = 1e-5,
) -> tuple[PyTree, SolverInfo]:
    """Conjugate gradient for (A + damping·I) x = b.

    Args:
      matvec: linear map v ↦ A v on pytrees shaped like `b` (A symmetric positive semidefinite,
        A + damping·I positive definite).
      b: right-hand side, any pytree of floating arrays (e.g. flax params).
      damping: λ ≥ 0 added to the diagonal; a Python float or a traced scalar.
      max_iters: maximum number of iterations (products with A): an int, or a traced integer scalar.
      rtol: stop once ‖r‖ ≤ rtol·‖b‖ with r = b − (A + λI)x (the usual relative residual).

    Returns:
      (x, SolverInfo(iterations, relative_residual, flag)); see `natgrad.solvers` for the flags.
      CG returns CONVERGED, MAX_ITERS, NEGATIVE_CURVATURE (pᵀ(A+λI)p ≤ 0: x is the last iterate
      before it), BREAKDOWN (non-finite numbers from matvec) or ZERO_RHS (b = 0, x = 0).
      relative_residual is the recursively updated residual norm over ‖b‖.
    """
    dtype = t.scalar_dtype(b)
    damping = jnp.asarray(damping, dtype)
    rtol = jnp.asarray(rtol, dtype)
    op = t.damped(matvec, damping)

    bnorm2 = t.vdot(b, b)
    tol2 = (rtol * rtol) * bnorm2
    zero = jnp.zeros((), dtype)

    init_flag = jnp.where(
        bnorm2 == 0, ZERO_RHS, jnp.where(jnp.isfinite(bnorm2), _RUNNING, BREAKDOWN)
    ).astype(jnp.int32)
    # State: x, r, p, ‖r‖², iteration count, flag (−1 while running).
    init = (t.zeros_like(b), b, b, bnorm2, jnp.zeros((), jnp.int32), init_flag)

    def cond(state):
        _, _, _, rs, k, flag = state
        return (flag == _RUNNING) & (k < max_iters) & (rs > tol2)

    def body(state):
        x, r, p, rs, k, _ = state
        ap = op(p)
        pap = t.vdot(p, ap)
        alpha = rs / pap
        bad = ~(jnp.isfinite(pap) & jnp.isfinite(alpha))
        negative = ~bad & (pap <= 0)
        ok = ~(bad | negative)
        alpha = jnp.where(ok, alpha, zero)  # a refused step leaves x and r unchanged
        x = t.axpy(alpha, p, x)
        r = t.axpy(-alpha, ap, r)
        rs_new = jnp.where(ok, t.vdot(r, r), rs)
        beta = rs_new / rs
        p = t.axpy(beta, p, r)
        flag = jnp.where(bad, BREAKDOWN, jnp.where(negative, NEGATIVE_CURVATURE, _RUNNING))
        return x, r, p, rs_new, k + 1, flag.astype(jnp.int32)

    x, _, _, rs, k, flag = lax.while_loop(cond, body, init)

    safe_b2 = jnp.where(bnorm2 > 0, bnorm2, 1)
    relres = jnp.where(bnorm2 > 0, jnp.sqrt(rs / safe_b2), zero)
    flag = jnp.where(
        flag == _RUNNING, jnp.where(rs <= tol2, CONVERGED, MAX_ITERS), flag
    ).astype(jnp.int32)
    return x, SolverInfo(iterations=k, relative_residual=relres, flag=flag)
