"""MINRES-QLP on pytrees (Choi, Paige & Saunders, SIAM J. Sci. Comput. 33(4), 2011).

Solves (A + damping·I) x = b for symmetric, possibly indefinite or singular A, given only v ↦ A v.
On a singular consistent system it returns the minimum-length solution, on an inconsistent one the
minimum-length least-squares solution pinv(A + λI) b.

Algorithm, in the notation of the paper:

1. Lanczos: (A + λI) V_k = V_{k+1} T_{k+1,k}, v_1 = b/β_1, three-term recurrence (α_k, β_{k+1}).
2. Left reflections Q_k (QR): Q_k T_{k+1,k} = [R_k; 0], R_k upper triangular with diagonal γ_j,
   superdiagonals δ_j, ε_j; the same reflections turn β_1 e_1 into (ζ_1, …, ζ_k, ζ̄_{k+1}), and
   ‖r_k‖ = |ζ̄_{k+1}|.
3. Right reflections P_k (LQ): R_k = L_k P_k, L_k lower triangular with diagonal μ_j (the last two
   still provisional: μ̃_{k-1}, μ̄_k), subdiagonals ψ_j, ρ_j.
4. x_k = W_k t_k with W_k = V_k P_kᵀ and L_k t_k = z_k (forward substitution: only the last three
   components of t change per iteration, so only w_{k-2} is final and x accumulates τ_{k-2} w_{k-2};
   the last two terms τ_{k-1} ẘ_{k-1} + τ_k w̄_k are added once, after the loop).
5. MINRES phase: while the condition estimate ‖A + λI‖/min_j μ_j is below `trancond`, x is the
   plain MINRES iterate D_k z_k (D_k = V_k R_k⁻¹; the pair d_{k-1}, d_k sits in the two direction
   slots); then one transfer, W_k = D_k L_k, and QLP updates from there on.
6. Safeguards (the reference's): τ_k is set to 0, and the iteration stops, when it would push the
   estimate ‖(τ_1, …, τ_k)‖ of ‖x‖ past `maxxnorm` (XNORM_LIMIT), when |μ̄_k| alone puts the
   condition estimate past `acondlim` (ACOND_LIMIT) or when |μ̄_k| ≤ eps·‖A + λI‖ (SINGULAR). On a
   singular inconsistent system the Krylov space is exhausted with μ̄_k → 0 while the residual does
   not vanish: τ_k explodes, and dropping it leaves pinv(A + λI) b. In floating point, with many
   distinct eigenvalues, the exhaustion is gradual (μ̄_k falls by a few per iteration) and every
   iteration past it costs accuracy, so where the iteration stops decides the error.

Stopping, checked after every iteration k, first match wins:
- BREAKDOWN: a non-finite α/β (the step is not committed: x is the previous iterate).
- XNORM_LIMIT: τ_k would push ‖x‖ past maxxnorm.
- CONVERGED: ‖r_k‖ ≤ rtol·‖b‖.
- LEAST_SQUARES: ‖(A+λI) r_{k-1}‖ ≤ rtol·‖A+λI‖·‖r_{k-1}‖ (least-squares optimality; ‖A+λI‖ is the
  lower bound max(‖T e_j‖, μ_j)). τ_k is dropped if |μ̄_k| ≤ rtol·‖A+λI‖ (T_k singular at rtol).
- XNORM_LIMIT: ‖x_{k-1}‖ already reached maxxnorm.
- ACOND_LIMIT: the condition estimate reached acondlim.
- SINGULAR: |μ̄_k| ≤ eps·‖A+λI‖.
- BREAKDOWN: Lanczos ended (β_{k+1} ≤ eps·‖A+λI‖) without any of the above (rtol unreachable).
- MAX_ITERS after max_iters iterations.
Differences from the reference code (minresqlp.m): rtol is relative to ‖b‖ (theirs to
‖A‖‖x‖ + ‖b‖); the ‖x‖ rule holds whether or not the system looks like a least-squares one (as
in its 2010 version; the 2013 one's `likeLS` condition can let an exploding τ_k through); τ_k is
dropped on LEAST_SQUARES and ACOND_LIMIT as above (theirs keeps it: on a loose rtol its x can then
be further from pinv(A) b than ‖pinv(A) b‖); the condition estimate is over the final μ_j and μ̄_k;
their flags -1, 3, 4, 5 are not separate; `iterations` counts every product with A (theirs
subtracts 1 on flags 2, 6, 7); acondlim and trancond default to their 1e15 and 1e7 in float64 and
to the same multiples of 1/eps in other dtypes (so float32 runs QLP throughout).

Implementation: one `lax.while_loop` whose body calls the named steps of `_minres_qlp_steps`
(Lanczos, reflections, substitution, estimates, stopping tests, vector update); the scalar
recurrences are branch-free (the first two iterations are handled by overriding the right
reflections with (−1, 0)). Every vector update, MINRES step, QLP step or the transfer followed by
a QLP step, is one linear map of (x, w_a, w_b, v) whose nine coefficients pass through one
`lax.cond` (which also turns a non-finite step into the identity), so that XLA materialises them once instead of fusing the whole scalar chain into each
vector loop. Per iteration: one product with A, two inner products and four fused vector passes.

Known limits: relative_residual is the recurrence's ‖r‖, which in ill-conditioned problems can
drift below the true residual once the latter stalls near cond(A)·eps (as in every MINRES code).
A truncated solve of a singular, undamped, inconsistent system is the MINRES iterate, whose
null-space component grows until the Krylov space is exhausted; only then is it dropped.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.tree_util import tree_map

from .. import pytree as t
from ..preconditioners.protocol import inverse_preconditioner
from ._info import BREAKDOWN, CONVERGED, MAX_ITERS, ZERO_RHS, SolverInfo
from ._minres_qlp_steps import (
    RUNNING,
    apply_update,
    forward_substitution,
    lanczos_step,
    left_reflection,
    norm_and_condition,
    right_reflections,
    safe_divide,
    stopping_tests,
    update_map,
)
from ._truncation import checked_arguments

PyTree = Any

# Choi & Saunders' defaults (float64): Acondlim and TranCond.
_ACONDLIM = 1e15
_TRANCOND = 1e7



def minres_qlp(
    matvec: Callable[[PyTree], PyTree],
    b: PyTree,
    *,
    damping: float | jax.Array = 0.0,
    max_iters: int = 100,
    rtol: float | jax.Array = 1e-5,
    maxxnorm: float | jax.Array = 1e7,
    acondlim: float | jax.Array | None = None,
    trancond: float | jax.Array | None = None,
    x0: Optional[PyTree] = None,
    preconditioner=None,
) -> tuple[PyTree, SolverInfo]:
    """MINRES-QLP for (A + damping·I) x = b, A symmetric (indefinite and singular allowed).

    Args:
      matvec: linear map v ↦ A v on pytrees shaped like `b`; A must be symmetric.
      b: right-hand side, any pytree of floating arrays (e.g. flax params).
      damping: λ ≥ 0 added to the diagonal; a Python float or a traced scalar.
      max_iters: maximum number of iterations (products with A), ≥ 1: an int, or a traced integer
        scalar.
      rtol: stop once ‖b − (A+λI)x‖ ≤ rtol·‖b‖ (CONVERGED), or, for an inconsistent system, once
        the least-squares optimality ‖(A+λI)r‖ ≤ rtol·‖A+λI‖·‖r‖ holds (LEAST_SQUARES: x is then
        the minimum-length least-squares solution, and relative_residual is ‖r‖/‖b‖ > rtol);
        finite and ≥ 0. A traced rtol that is not acts as 0.
      maxxnorm: bound on ‖x‖: the component that would cross it is dropped and the solve stops
        (XNORM_LIMIT). On singular inconsistent systems this is what stops the iteration near
        the end of the Krylov space; a bound closer to the expected ‖x‖ stops it sooner.
      acondlim: bound on the condition estimate of A + λI (ACOND_LIMIT). Default 1e15 in float64,
        the same multiple of 1/eps in other dtypes (1.9e6 in float32).
      trancond: MINRES steps while the condition estimate is below it, QLP steps after (equal in
        exact arithmetic; QLP is the accurate one near singularity). Default 1e7 in float64 and
        the same multiple of 1/eps in other dtypes (below 1 in float32: QLP throughout); 1 gives
        QLP throughout, inf MINRES throughout (until a component is dropped).
      The reference's defaults; inf disables each bound. All three may be traced scalars.
      x0: the first iterate (a warm start; shaped like `b`), default 0: the solver then runs on
        the residual system (A + λI) d = b − (A + λI)x0 and returns x0 + d (one more product with
        A, before the loop; maxxnorm bounds ‖d‖). With b = 0 the solution 0 is returned.
      preconditioner: None, a function v ↦ M⁻¹ v, or the diagonal of M as a pytree shaped like
        `b` (M symmetric positive definite): preconditioned MINRES-QLP (Choi-Saunders' Lanczos
        with z = M⁻¹r), whose iterates minimise ‖b − (A + λI)x‖ in the M⁻¹-norm
        ‖r‖_{M⁻¹} = (rᵀM⁻¹r)^½ over x0 + span{M⁻¹r_0, (M⁻¹(A + λI))M⁻¹r_0, …}. rtol and
        relative_residual are then in that norm: ‖r‖_{M⁻¹} ≤ rtol·‖b‖_{M⁻¹}, and the condition
        estimates are those of M^{-½}(A + λI)M^{-½}.

    Returns:
      (x, SolverInfo(iterations, relative_residual, flag)); flags are CONVERGED, MAX_ITERS,
      LEAST_SQUARES, BREAKDOWN, ZERO_RHS, XNORM_LIMIT, ACOND_LIMIT or SINGULAR (see
      `natgrad.solvers`). relative_residual comes from the QLP recurrences (no extra product with
      A; for a dropped last component it is that of the returned x); it equals ‖b − (A+λI)x‖/‖b‖
      in exact arithmetic.

    Raises:
      ValueError: a concrete max_iters < 1, or a negative or non-finite concrete rtol or damping
        (one line naming the argument and the value).
    """
    dtype = t.scalar_dtype(b)
    eps = jnp.finfo(dtype).eps
    # The reference's limits are for float64; other dtypes keep their product with eps.
    scale = float(jnp.finfo(jnp.float64).eps) / float(eps)
    acondlim = _ACONDLIM * scale if acondlim is None else acondlim
    trancond = _TRANCOND * scale if trancond is None else trancond
    damping, rtol = checked_arguments(damping, max_iters, rtol, dtype)
    maxxnorm, acondlim, trancond = (jnp.asarray(v, dtype) for v in (maxxnorm, acondlim, trancond))
    op = t.damped(matvec, damping)
    inverse = inverse_preconditioner(preconditioner)
    limits = dict(max_iters=max_iters, rtol=rtol, maxxnorm=maxxnorm, acondlim=acondlim,
                  trancond=trancond)
    if x0 is None:
        return _minres_qlp(op, b, inverse, None, **limits)
    bnorm = _norm(b, inverse)
    x0 = t.scale(jnp.where(bnorm > 0, 1, 0).astype(dtype), x0)
    d, info = _minres_qlp(op, t.axpy(-1.0, op(x0), b), inverse, bnorm, **limits)
    # x0 solves the system exactly: no iteration was needed (the residual system's b is 0).
    flag = jnp.where((info.flag == ZERO_RHS) & (bnorm > 0), CONVERGED, info.flag)
    return t.axpy(1.0, x0, d), info._replace(flag=flag.astype(jnp.int32))


def _norm(b, inverse):
    """‖b‖, or ‖b‖_{M⁻¹} = (bᵀM⁻¹b)^½ with a preconditioner."""
    return t.norm(b) if inverse is None else jnp.sqrt(t.vdot(b, inverse(b)))


def _minres_qlp(op, b, inverse, bnorm, *, max_iters, rtol, maxxnorm, acondlim, trancond):
    """MINRES-QLP for op(x) = b from x = 0, M⁻¹ = `inverse` (or None); rtol and the reported
    relative residual refer to the norm `bnorm` of the original right-hand side (None: b's own)."""
    dtype = t.scalar_dtype(b)
    eps = jnp.finfo(dtype).eps
    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    minus_one = -one
    inf = jnp.asarray(jnp.inf, dtype)

    beta1 = _norm(b, inverse)
    bnorm = beta1 if bnorm is None else bnorm
    init_flag = jnp.where(
        beta1 == 0, ZERO_RHS, jnp.where(jnp.isfinite(beta1), RUNNING, BREAKDOWN)
    ).astype(jnp.int32)
    zeros = t.zeros_like(b)

    scalars = dict(
        beta=zero,  # β_k as it enters column k of T (0 for k = 1)
        c1=minus_one, s1=zero,  # Q_{k-1}
        c2=minus_one, s2=zero,  # Q_{k-2}
        zetabar=beta1,  # ζ̄_k
        mubis=one,  # μ̃_{k-2}  (provisional diagonal of L, row k-2)
        psibar=zero,  # ψ̄_{k-2}
        mubar=one,  # μ̄_{k-1}
        tau_a=zero,  # τ_{k-1} as known after iteration k-1 (the carried ẘ's coefficient)
        tau_b=zero,  # τ_k, or 0 when dropped (the carried w̄'s coefficient)
        xi=zero,  # ξ_{k-1}
        anorm=zero,  # lower estimate of ‖A + λI‖
        gmin=inf,  # min of the final diagonal entries μ_j of L
        xl2norm=zero,  # ‖(τ_1, …, τ_{k-2})‖, the final part of ‖x‖
        rnorm=beta1,  # ‖r‖ of the iterate that would be returned
        # QLP phase; in the MINRES phase x is the MINRES iterate and (w_a, w_b) = (d_{k-1}, d_k).
        qlp=trancond <= 1,
        switch=trancond <= 1,  # the condition estimate reached trancond: QLP from the next step
    )
    # The Lanczos vectors v_k = M⁻¹u_k: without a preconditioner u_k = v_k (not stored twice).
    if inverse is None:
        vectors = dict(v_prev=zeros, v=t.scale(safe_divide(one, beta1), b))
    else:
        vectors = dict(u_prev=zeros, u=t.scale(safe_divide(one, beta1), b),
                       v=t.scale(safe_divide(one, beta1), inverse(b)))
    vectors.update(x=zeros, w_a=zeros, w_b=zeros)
    init = (vectors, scalars, jnp.zeros((), jnp.int32), init_flag)

    def cond(state):
        _, _, k, flag = state
        return (flag == RUNNING) & (k < max_iters)

    # Each step reads the carried scalars `sc` and this iteration's values `it` so far, and adds
    # its own to `it`: one dependent chain of scalar recurrences, then one vector update.
    def body(state):
        vec, sc, k, _ = state
        k1 = k + 1
        first, second = k1 == 1, k1 <= 2
        v, u, p, z, it = lanczos_step(op, inverse, vec, sc["beta"])
        it.update(left_reflection(sc, it))
        it.update(right_reflections(sc, it, first, second, zero, minus_one))
        it.update(forward_substitution(sc, it))
        it.update(norm_and_condition(sc, it, first, zero, inf, acondlim))
        it.update(stopping_tests(it, eps, rtol, bnorm, maxxnorm, acondlim, zero))
        qlp = sc["qlp"] | sc["switch"] | it["drop"]
        m, inv_beta = update_map(sc, it, qlp, dtype, zero, one)
        new_vec = apply_update(vec, m, inv_beta, v, u, p, z, inverse)
        new_sc = dict(
            beta=it["beta_next"], c1=it["c"], s1=it["s"], c2=sc["c1"], s2=sc["s1"],
            zetabar=it["zetabar"], mubis=it["mubis_km1"], psibar=it["psibar_km1"],
            mubar=it["mubar"], tau_a=it["tau_km1"], tau_b=it["tau_k"], xi=it["xi"],
            anorm=it["anorm"], gmin=it["gmin"], xl2norm=it["xl2norm"], rnorm=it["rnorm"],
            qlp=qlp, switch=it["anorm"] >= trancond * it["gmin_k"],
        )
        # A non-finite step is not committed: x stays the previous iterate.
        new_sc = tree_map(lambda new, old: jnp.where(it["finite"], new, old), new_sc, sc)
        return new_vec, new_sc, k1, it["flag"]

    vec, sc, k, flag = lax.while_loop(cond, body, init)
    flag = jnp.where(flag == RUNNING, MAX_ITERS, flag).astype(jnp.int32)

    # QLP phase: add the last two terms (τ_k is already 0 where it was dropped); MINRES phase: x is
    # the iterate itself.
    tau_a = jnp.where(sc["qlp"], sc["tau_a"], zero)
    tau_b = jnp.where(sc["qlp"] & jnp.isfinite(sc["tau_b"]), sc["tau_b"], zero)
    x = tree_map(
        lambda x_, wa, wb: (x_ + tau_a * wa + tau_b * wb).astype(x_.dtype),
        vec["x"], vec["w_a"], vec["w_b"],
    )
    relres = jnp.where(bnorm > 0, safe_divide(sc["rnorm"], bnorm), zero)
    relres = jnp.where(flag == ZERO_RHS, zero, relres)
    return x, SolverInfo(iterations=k, relative_residual=relres, flag=flag)
