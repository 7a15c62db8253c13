"""MINRES-QLP on pytrees (Choi, Paige & Saunders, SIAM J. Sci. Comput. 33(4), 2011).

Solves (A + damping·I) x = b for symmetric, possibly indefinite or singular A, given only v ↦ A v.
On a singular consistent system it returns the minimum-length solution, on an inconsistent one the
minimum-length least-squares solution pinv(A + λI) b.

Algorithm (the pure-QLP variant: every iteration does the QLP updates; the paper's optional MINRES
phase, switched over to QLP once the condition estimate grows, is not implemented, it only saves a
few flops per iteration and changes nothing in exact arithmetic):

1. Lanczos: (A + λI) V_k = V_{k+1} T_{k+1,k}, v_1 = b/β_1, three-term recurrence (α_k, β_{k+1}).
2. Left reflections Q_k (QR): Q_k T_{k+1,k} = [R_k; 0], R_k upper triangular with diagonal λ_j,
   superdiagonals γ_j, ε_j; the same reflections turn β_1 e_1 into (ζ_1, …, ζ_k, ζ̄_{k+1}), and
   ‖r_k‖ = |ζ̄_{k+1}|.
3. Right reflections P_k (LQ): R_k = L_k P_k, L_k lower triangular with diagonal μ_j (the last two
   still provisional: μ̃_{k-1}, μ̄_k), subdiagonals ψ_j, ρ_j.
4. x_k = W_k t_k with W_k = V_k P_kᵀ and L_k t_k = z_k (forward substitution, only the last three
   components of t change per iteration, so only w_{k-2} is final and x accumulates τ_{k-2} w_{k-2};
   the last two terms τ_{k-1} ẘ_{k-1} + τ_k w̄_k are added once, after the loop).
5. Minimum length: when b is (numerically) outside the range of A + λI, Lanczos ends (β_{k+1} → 0)
   with T_k singular: the last row of L_k is ≈ 0 and the minimum-length least-squares solution is
   t_k = 0, so the final τ_k w̄_k term is dropped.

Stopping, checked after every iteration k:
- CONVERGED: ‖r_k‖ ≤ rtol·‖b‖.
- LEAST_SQUARES: ‖(A+λI) r_{k-1}‖ ≤ rtol·‖A+λI‖·‖r_{k-1}‖ (least-squares optimality; ‖A+λI‖ is
  the largest column norm of T seen so far, a lower bound), or T_k numerically singular
  (|μ̄_k| ≤ 10·eps·‖A+λI‖, the end of Lanczos on an inconsistent system). τ_k is then dropped when
  |μ̄_k| ≤ max(rtol, 10·eps)·‖A+λI‖, which gives pinv(A+λI) b.
- MAX_ITERS after max_iters iterations.
- BREAKDOWN: Lanczos ended (β_{k+1} ≤ eps·‖A+λI‖) without any of the above, i.e. rtol is below
  what the arithmetic can reach; or a non-finite α/β (the step is not committed: x is the previous
  iterate).

Implementation: one `lax.while_loop`; the scalar recurrences are branch-free (the first two
iterations are handled by overriding the right reflections with (−1, 0)); their results pass
through one `lax.cond` (which also freezes the vectors on a non-finite step) so that XLA
materialises them once instead of fusing the whole scalar chain into each vector loop. Per
iteration: one product with A, two inner products and about six fused vector passes.

Known limits: relative_residual is the recurrence's ‖r‖, which in ill-conditioned problems can
drift below the true residual once the latter stalls near cond(A)·eps (as in every MINRES code).
On inconsistent systems the iterates before the end of Lanczos are the minimum-residual ones and
their norm can grow (the null-space component of b is only removed at the end, by dropping τ_k),
so a truncated solve of a singular, undamped, inconsistent system is not yet pinv(A) b; in floating
point, loss of orthogonality can blur the end of Lanczos when A has many distinct eigenvalues,
which costs accuracy in pinv(A) b (damping λ > 0 makes the system nonsingular and avoids all this).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.tree_util import tree_map

from .. import pytree as t
from ._info import (
    BREAKDOWN,
    CONVERGED,
    LEAST_SQUARES,
    MAX_ITERS,
    ZERO_RHS,
    SolverInfo,
)

PyTree = Any

_RUNNING = -1
# |μ̄_k| ≤ _SINGULAR·eps·‖A‖ marks T_k as numerically singular (a condition estimate ≥ 1/(10 eps),
# about Choi & Saunders' default Acondlim = 1e15 in float64).
_SINGULAR = 10.0


def _sdiv(a, b):
    """a / b, or 0 where b == 0."""
    nz = b != 0
    return jnp.where(nz, a / jnp.where(nz, b, 1), jnp.zeros_like(a))


def _sym_ortho(a, b):
    """Reflection [[c, s], [s, −c]] with [c s; s −c][a; b] = [r; 0], r = ‖(a, b)‖ ≥ 0.

    For a = b = 0 it returns the swap (c, s) = (0, 1): applied to the right-hand side it then moves
    nothing into a zero row, so the residual estimate |ζ̄| stays honest.
    """
    r = jnp.hypot(a, b)
    nz = r > 0
    safe_r = jnp.where(nz, r, 1)
    c = jnp.where(nz, a / safe_r, 0)
    s = jnp.where(nz, b / safe_r, 1)
    return c.astype(r.dtype), s.astype(r.dtype), r


def minres_qlp(
    matvec: Callable[[PyTree], PyTree],
    b: PyTree,
    *,
    damping: float | jax.Array = 0.0,
    max_iters: int = 100,
    rtol: float | jax.Array = 1e-5,
) -> tuple[PyTree, SolverInfo]:
    """MINRES-QLP for (A + damping·I) x = b, A symmetric (indefinite and singular allowed).

    Args:
      matvec: linear map v ↦ A v on pytrees shaped like `b`; A must be symmetric.
      b: right-hand side, any pytree of floating arrays (e.g. flax params).
      damping: λ added to the diagonal; a Python float or a traced scalar.
      max_iters: maximum number of iterations (products with A): an int, or a traced integer scalar.
      rtol: stop once ‖b − (A+λI)x‖ ≤ rtol·‖b‖ (CONVERGED), or, for an inconsistent system, once
        the least-squares optimality ‖(A+λI)r‖ ≤ rtol·‖A+λI‖·‖r‖ holds (LEAST_SQUARES: x is then
        the minimum-length least-squares solution, and relative_residual is ‖r‖/‖b‖ > rtol).

    Returns:
      (x, SolverInfo(iterations, relative_residual, flag)); flags are CONVERGED, MAX_ITERS,
      LEAST_SQUARES, BREAKDOWN or ZERO_RHS (see `natgrad.solvers`). relative_residual comes from
      the QLP recurrences (no extra product with A); it equals ‖b − (A+λI)x‖/‖b‖ in exact
      arithmetic.
    """
    dtype = t.scalar_dtype(b)
    eps = jnp.finfo(dtype).eps
    damping = jnp.asarray(damping, dtype)
    rtol = jnp.asarray(rtol, dtype)
    op = t.damped(matvec, damping)

    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    minus_one = -one

    beta1 = t.norm(b)
    init_flag = jnp.where(
        beta1 == 0, ZERO_RHS, jnp.where(jnp.isfinite(beta1), _RUNNING, BREAKDOWN)
    ).astype(jnp.int32)
    v1 = t.scale(_sdiv(one, beta1), b)
    zeros = t.zeros_like(b)

    scalars = dict(
        beta=zero,  # β_k as it enters column k of T (0 for k = 1)
        c1=minus_one, s1=zero,  # Q_{k-1}
        c2=minus_one, s2=zero,  # Q_{k-2}
        zetabar=beta1,  # ζ̄_k
        zetabar_prev=beta1,  # ζ̄_{k-1} (after the loop: residual of the dropped solution's row)
        mubis=one,  # μ̃_{k-2}  (provisional diagonal of L, row k-2)
        psibar=zero,  # ψ̄_{k-2}
        mubar=one,  # μ̄_{k-1}
        tau_a=zero,  # τ_{k-2} as known after iteration k-1
        tau_b=zero,  # τ_{k-1} as known after iteration k-1
        xi=zero,  # ξ_{k-1}
        num=zero,  # numerator of τ_{k-1}: row k-1 residual if τ_{k-1} is dropped
        anorm=zero,  # lower estimate of ‖A + λI‖
    )
    vectors = dict(v_prev=zeros, v=v1, x=zeros, w_a=zeros, w_b=zeros)
    init = (vectors, scalars, jnp.zeros((), jnp.int32), init_flag)

    def cond(state):
        _, _, k, flag = state
        return (flag == _RUNNING) & (k < max_iters)

    def body(state):
        vec, sc, k, _ = state
        k1 = k + 1
        first, second = k1 == 1, k1 <= 2

        # Lanczos step.
        v = vec["v"]
        p = t.axpy(-sc["beta"], vec["v_prev"], op(v))
        alpha = t.vdot(v, p)
        p = t.axpy(-alpha, v, p)
        beta_next = t.norm(p)
        anorm = jnp.maximum(sc["anorm"], jnp.sqrt(sc["beta"] ** 2 + alpha**2 + beta_next**2))

        # Previous left reflections on column k of T, then the new one Q_k.
        eps_km2 = sc["s2"] * sc["beta"]
        gbar_km1 = -sc["c2"] * sc["beta"]
        gamma_km1 = sc["c1"] * gbar_km1 + sc["s1"] * alpha
        lbar = sc["s1"] * gbar_km1 - sc["c1"] * alpha
        # ‖A r_{k-1}‖ / ‖r_{k-1}‖ (before Q_k), for the least-squares test.
        ar_ratio = jnp.hypot(lbar, sc["c1"] * beta_next)
        c, s, lam = _sym_ortho(lbar, beta_next)
        zeta = c * sc["zetabar"]
        zetabar = s * sc["zetabar"]

        # Right reflections: P_{k-2,k} then P_{k-1,k}.
        cp, sp, mu_km2 = _sym_ortho(sc["mubis"], eps_km2)
        cp = jnp.where(second, minus_one, cp)
        sp = jnp.where(second, zero, sp)
        psi_km2 = cp * sc["psibar"] + sp * gamma_km1
        theta = sp * sc["psibar"] - cp * gamma_km1
        rho_km2 = sp * lam
        eta = -cp * lam
        cd, sd, mubis_km1 = _sym_ortho(sc["mubar"], theta)
        cd = jnp.where(first, minus_one, cd)
        sd = jnp.where(first, zero, sd)
        psibar_km1 = sd * eta
        mubar = -cd * eta

        # Forward substitution L_k t_k = z_k: the last three components.
        tau_km2 = _sdiv(sc["tau_a"] * sc["mubis"], mu_km2)
        tau_km1 = _sdiv(sc["xi"] - psi_km2 * tau_km2, mubis_km1)
        xi = zeta - rho_km2 * tau_km2
        num = xi - psibar_km1 * tau_km1
        tau_k = _sdiv(num, mubar)

        # A non-finite step is not committed: the reflections (cp, sp, cd, sd) = (0, 1, 0, 1) and
        # tau_{k-2} = 0 turn the vector updates below into the identity on x and the two carried
        # directions (cheaper than selecting between old and new vectors); the scalars are restored
        # below.
        # (A `lax.cond` rather than `where`: its outputs are materialised, so XLA cannot fuse the
        # whole scalar recurrence into, and recompute it for every element of, the vector loops.)
        finite = jnp.isfinite(alpha) & jnp.isfinite(beta_next)
        cp, sp, cd, sd, tau_km2, inv_beta = lax.cond(
            finite,
            lambda: (cp, sp, cd, sd, tau_km2, _sdiv(one, beta_next)),
            lambda: (zero, one, zero, one, zero, zero),
        )
        v_next = t.scale(inv_beta, p)

        # Directions: w_{k-2} = cp ẘ_{k-2} + sp v_k is final and goes into x; the carried pair
        # (ẘ_{k-1}, w̄_k) is one reflection of (w̄_{k-1}, sp ẘ_{k-2} − cp v_k).
        w_a, w_b = vec["w_a"], vec["w_b"]
        x = tree_map(
            lambda x_, wa, v_: (x_ + (tau_km2 * cp) * wa + (tau_km2 * sp) * v_).astype(x_.dtype),
            vec["x"], w_a, v,
        )
        aux = tree_map(lambda wa, v_: sp * wa - cp * v_, w_a, v)
        w_a_new = tree_map(lambda wb, u: (cd * wb + sd * u).astype(wb.dtype), w_b, aux)
        w_b_new = tree_map(lambda wb, u: (sd * wb - cd * u).astype(wb.dtype), w_b, aux)
        new_vec = dict(v_prev=v, v=v_next, x=x, w_a=w_a_new, w_b=w_b_new)
        new_sc = dict(
            beta=beta_next, c1=c, s1=s, c2=sc["c1"], s2=sc["s1"],
            zetabar=zetabar, zetabar_prev=sc["zetabar"],
            mubis=mubis_km1, psibar=psibar_km1, mubar=mubar,
            tau_a=tau_km1, tau_b=tau_k, xi=xi, num=num, anorm=anorm,
        )

        # T_k numerically singular (the last diagonal of L_k is at rounding level): the step that
        # ends Lanczos on an inconsistent system. τ_k will be dropped; the residual is then that
        # of the truncated solution.
        singular = jnp.abs(mubar) <= _SINGULAR * eps * anorm
        rnorm = jnp.where(singular, jnp.hypot(num, zetabar), jnp.abs(zetabar))
        converged = rnorm <= rtol * beta1
        least_squares = singular | (_sdiv(ar_ratio, anorm) <= rtol)
        exhausted = beta_next <= eps * anorm
        flag = jnp.where(
            ~finite,
            BREAKDOWN,
            jnp.where(
                converged,
                CONVERGED,
                jnp.where(least_squares, LEAST_SQUARES, jnp.where(exhausted, BREAKDOWN, _RUNNING)),
            ),
        ).astype(jnp.int32)

        # A non-finite step is not committed: x stays the previous iterate.
        new_sc = tree_map(lambda new, old: jnp.where(finite, new, old), new_sc, sc)
        return new_vec, new_sc, k1, flag

    vec, sc, k, flag = lax.while_loop(cond, body, init)
    flag = jnp.where(flag == _RUNNING, MAX_ITERS, flag).astype(jnp.int32)

    # Minimum length: drop t_k when the last row of L_k is numerically zero on an inconsistent
    # system (or when τ_k overflowed).
    mubar = jnp.abs(sc["mubar"])
    drop = (
        (mubar <= _SINGULAR * eps * sc["anorm"])
        | ((flag == LEAST_SQUARES) & (mubar <= rtol * sc["anorm"]))
        | ~jnp.isfinite(sc["tau_b"])
    )
    tau_b = jnp.where(drop, zero, sc["tau_b"])
    x = tree_map(
        lambda x_, wa, wb: (x_ + sc["tau_a"] * wa + tau_b * wb).astype(x_.dtype),
        vec["x"], vec["w_a"], vec["w_b"],
    )
    rnorm = jnp.where(drop, jnp.hypot(sc["num"], sc["zetabar"]), jnp.abs(sc["zetabar"]))
    relres = jnp.where(beta1 > 0, _sdiv(rnorm, beta1), zero)
    relres = jnp.where(flag == ZERO_RHS, zero, relres)
    return x, SolverInfo(iterations=k, relative_residual=relres, flag=flag)
