"""Truncated (preconditioned) conjugate gradient on pytrees.

Solves (A + damping·I) x = b for symmetric positive (semi)definite A given only v ↦ A v, from
x = 0 or from a given `x0` (a warm start). The loop is a `lax.while_loop`: jittable,
differentiable-free, no host round-trips. Each iteration costs one product with A plus a handful
of fused vector updates (tree_map over the leaves, nothing is ravelled); a preconditioner adds one
application of M⁻¹ and one inner product, progress truncation one inner product.

The loop is written so that XLA updates every loop-carried vector in place: the search direction
is updated at the top of an iteration (p_k = z_{k-1} + β_k p_{k-1}, from p_0 = −0 and β_1 = 0),
where its old value has no other reader, instead of at the end, where x's update still reads it
and XLA:CPU copied it every iteration. p_0 is −0 rather than 0 because −0 + z = z for every z
(so p_1 is z_0 bit for bit) and so that XLA does not merge it with x_0 = 0 into one buffer that
it would then copy. The iterates are the same bits as with the update at the end.

With a preconditioner, z_{k-1} = M⁻¹r_{k-1} is likewise applied at the top of iteration k, the one
that reads it, not at the end of iteration k − 1: k iterations apply M⁻¹ k times, not k + 1 (the
last application's z was never read; K-FAC's M⁻¹ on a 1000-wide layer costs as much as metric
products on hundreds of examples). The iterates are the same bits.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from .. import pytree as t
from ._info import (
    BREAKDOWN,
    CONVERGED,
    MAX_ITERS,
    NEGATIVE_CURVATURE,
    PROGRESS,
    ZERO_RHS,
    SolverInfo,
)
from ..preconditioners.protocol import inverse_preconditioner
from ._progress import Progress
from ._truncation import checked_arguments

PyTree = Any

_RUNNING = -1


class _State(NamedTuple):
    """The loop's carry. p is the direction of the last iteration; rz is rᵀM⁻¹r of the residual
    that made it (‖r‖² without a preconditioner), the denominator of the next β; flag is −1
    while running."""

    x: PyTree
    r: PyTree
    p: PyTree
    rs: jax.Array  # ‖r‖²
    rz: jax.Array  # r_{k-1}ᵀz_{k-1}, z = M⁻¹r
    phi: jax.Array  # φ(x) = ½xᵀ(A + λI)x − bᵀx, by its scalar recurrence
    k: jax.Array
    flag: jax.Array
    history: Optional[jax.Array]  # φ(x_0), φ(x_1), … for the progress rule


def _start(op, b, bnorm2, x0):
    """(x, r) of the first iterate: (0, b), or (x0, b − (A + λI)x0) with x0 = 0 when b = 0."""
    if x0 is None:
        return t.zeros_like(b), b
    x = t.scale(jnp.where(bnorm2 > 0, 1, 0).astype(t.scalar_dtype(b)), x0)
    return x, t.axpy(-1.0, op(x), b)


def _progress_history(progress, max_iters, b, x, r):
    """φ(x_0), …, φ(x_max_iters) (φ(x_0) filled in) for the progress rule, or None."""
    if progress is None:
        return None
    if not isinstance(max_iters, int):
        raise TypeError("progress truncation needs max_iters as a Python int (it sizes the "
                        "history of φ)")
    history = jnp.zeros(max_iters + 1, t.scalar_dtype(b))
    return history.at[0].set(-0.5 * t.vdot(t.axpy(1.0, b, r), x))


def cg(
    matvec: Callable[[PyTree], PyTree],
    b: PyTree,
    *,
    damping: float | jax.Array = 0.0,
    max_iters: int = 100,
    rtol: float | jax.Array = 1e-5,
    x0: Optional[PyTree] = None,
    preconditioner=None,
    progress: Optional[Progress] = None,
) -> tuple[PyTree, SolverInfo]:
    """Conjugate gradient for (A + damping·I) x = b.

    Args:
      matvec: linear map v ↦ A v on pytrees shaped like `b` (A symmetric positive semidefinite,
        A + damping·I positive definite).
      b: right-hand side, any pytree of floating arrays (e.g. flax params).
      damping: λ ≥ 0 added to the diagonal; a Python float or a traced scalar.
      max_iters: maximum number of iterations (products with A), ≥ 1: an int, or a traced integer
        scalar (a Python int when `progress` is given).
      rtol: stop once ‖r‖ ≤ rtol·‖b‖ with r = b − (A + λI)x (the usual relative residual, also
        with a preconditioner); finite and ≥ 0. A traced rtol that is not acts as 0.
      x0: the first iterate (a warm start; shaped like `b`), default 0. Its residual costs one
        product with A before the loop. With b = 0 the solution 0 is returned, whatever x0.
      preconditioner: None, a function v ↦ M⁻¹ v, or the diagonal of M as a pytree shaped like
        `b` (M symmetric positive definite): preconditioned CG, whose iterates minimise the
        (A + λI)-norm of the error over x0 + span{M⁻¹r_0, (M⁻¹(A + λI))M⁻¹r_0, …}.
      progress: a `Progress` rule: also stop once the quadratic model φ(x) = ½xᵀ(A + λI)x − bᵀx
        stops improving (Martens 2010, §4.4; flag PROGRESS). None: rtol and max_iters only.

    Returns:
      (x, SolverInfo(iterations, relative_residual, flag, model)); see `natgrad.solvers` for the
      flags; `model` is φ(x) = ½xᵀ(A + λI)x − bᵀx by CG's scalar recurrence (no product with A).
      CG returns CONVERGED, MAX_ITERS, PROGRESS, NEGATIVE_CURVATURE (pᵀ(A+λI)p ≤ 0: x is the last
      iterate before it), BREAKDOWN (non-finite numbers from matvec or x0) or ZERO_RHS (b = 0,
      x = 0). relative_residual is the recursively updated residual norm over ‖b‖.

    Raises:
      ValueError: a concrete max_iters < 1, or a negative or non-finite concrete rtol or damping
        (one line naming the argument and the value).
    """
    dtype = t.scalar_dtype(b)
    damping, rtol = checked_arguments(damping, max_iters, rtol, dtype)
    op = t.damped(matvec, damping)
    inverse = inverse_preconditioner(preconditioner)

    bnorm2 = t.vdot(b, b)
    tol2 = (rtol * rtol) * bnorm2
    zero = jnp.zeros((), dtype)

    x, r = _start(op, b, bnorm2, x0)
    rr = bnorm2 if x0 is None else t.vdot(r, r)
    init_flag = jnp.where(
        bnorm2 == 0, ZERO_RHS, jnp.where(jnp.isfinite(rr), _RUNNING, BREAKDOWN)
    ).astype(jnp.int32)
    history = _progress_history(progress, max_iters, b, x, r)
    # −0, not 0: see the module docstring.
    p0 = jax.tree_util.tree_map(lambda leaf: jnp.full_like(leaf, -0.0), b)
    phi0 = zero if x0 is None else -0.5 * t.vdot(t.axpy(1.0, b, r), x)
    init = _State(x, r, p0, rr, rr, phi0, jnp.zeros((), jnp.int32), init_flag, history)

    def cond(s):
        return (s.flag == _RUNNING) & (s.k < max_iters) & (s.rs > tol2)

    def body(s):
        # z = M⁻¹r here, in the iteration that reads it (see the module docstring)
        z, rz = (s.r, s.rs) if inverse is None else (inverse(s.r), None)
        rz = t.vdot(s.r, z) if rz is None else rz
        beta = jnp.where(s.k == 0, zero, rz / s.rz)
        p = t.axpy(beta, s.p, z)
        ap = op(p)
        pap = t.vdot(p, ap)
        alpha = rz / pap
        bad = ~(jnp.isfinite(pap) & jnp.isfinite(alpha))
        negative = ~bad & (pap <= 0)
        ok = ~(bad | negative)
        alpha = jnp.where(ok, alpha, zero)  # a refused step leaves x and r unchanged
        x = t.axpy(alpha, p, s.x)
        r = t.axpy(-alpha, ap, s.r)
        rs = jnp.where(ok, t.vdot(r, r), s.rs)
        flag = jnp.where(bad, BREAKDOWN, jnp.where(negative, NEGATIVE_CURVATURE, _RUNNING))
        history = s.history
        if progress is not None:
            i = s.k + 1
            phi = -0.5 * t.vdot(t.axpy(1.0, b, r), x)
            history = history.at[i].set(phi)
            window = progress.window(i)
            stalled = progress.stalled(i, phi, history[i - window], window) & (rs > tol2)
            flag = jnp.where(ok & stalled, PROGRESS, flag)
        # φ(x + αp) = φ(x) − α pᵀr + ½α² pᵀ(A + λI)p, and pᵀr = rᵀz: φ falls by ½·α·rᵀz (a
        # scalar recurrence, so nothing reads r after the loop and XLA copies no vector)
        phi = s.phi - 0.5 * alpha * rz
        return _State(x, r, p, rs, rz, phi, s.k + 1, flag.astype(jnp.int32), history)

    final = lax.while_loop(cond, body, init)
    x, rs, k, flag = final.x, final.rs, final.k, final.flag
    model = final.phi

    safe_b2 = jnp.where(bnorm2 > 0, bnorm2, 1)
    relres = jnp.where(bnorm2 > 0, jnp.sqrt(rs / safe_b2), zero)
    flag = jnp.where(
        flag == _RUNNING, jnp.where(rs <= tol2, CONVERGED, MAX_ITERS), flag
    ).astype(jnp.int32)
    return x, SolverInfo(iterations=k, relative_residual=relres, flag=flag, model=model)
