"""The steps of one MINRES-QLP iteration (`natgrad.solvers.minres_qlp`; Choi, Paige & Saunders
2011), in the order the loop body calls them.

Each scalar step reads the carried scalars `sc` (the dict the loop carries: the last reflections,
the provisional entries of L, the running estimates) and this iteration's values `it` so far, and
returns its own values for `it`: Lanczos, the left reflection Q_k, the right reflections
P_{k-2,k} and P_{k-1,k}, the forward substitution for τ, the norm and condition estimates, the
safeguards and stopping tests; then the vector update as one linear map, applied leafwise. The
notation (and which quantity is provisional) is the module docstring of `_minres_qlp`'s.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.tree_util import tree_map

from .. import pytree as t
from ._info import ACOND_LIMIT, BREAKDOWN, CONVERGED, LEAST_SQUARES, SINGULAR, XNORM_LIMIT

#: The flag of an iteration that has not stopped.
RUNNING = -1


def safe_divide(a, b):
    """a / b, or 0 where b == 0."""
    nz = b != 0
    return jnp.where(nz, a / jnp.where(nz, b, 1), jnp.zeros_like(a))


def sym_ortho(a, b):
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


def first_match(flags_and_values, default):
    """The value of the first true condition in [(cond, value), ...], else `default`."""
    out = jnp.asarray(default)
    for cond, value in reversed(flags_and_values):
        out = jnp.where(cond, value, out)
    return out


def lanczos_step(op, inverse, vec, beta):
    """One preconditioned Lanczos step: (v_k, u_k, p, z = M⁻¹p) and {α_k, β_{k+1}, a lower
    estimate of ‖A + λI‖ from this column of T}."""
    v = vec["v"]
    u, u_prev = (v, vec["v_prev"]) if inverse is None else (vec["u"], vec["u_prev"])
    p = t.axpy(-beta, u_prev, op(v))
    alpha = t.vdot(v, p)
    p = t.axpy(-alpha, u, p)
    z = p if inverse is None else inverse(p)
    beta_next = t.norm(p) if inverse is None else jnp.sqrt(t.vdot(p, z))
    pnorm = jnp.sqrt(beta**2 + alpha**2 + beta_next**2)
    return v, u, p, z, dict(alpha=alpha, beta_next=beta_next, pnorm=pnorm)


def left_reflection(sc, it):
    """Q_{k-2}, Q_{k-1} on column k of T, then the new reflection Q_k: ε_k, δ_k, γ_k (`lam`),
    ζ_k and ζ̄_{k+1}, and ‖A r_{k-1}‖/‖r_{k-1}‖ (before Q_k) for the least-squares test."""
    eps_k = sc["s2"] * sc["beta"]
    gbar_km1 = -sc["c2"] * sc["beta"]
    delta_k = sc["c1"] * gbar_km1 + sc["s1"] * it["alpha"]
    lbar = sc["s1"] * gbar_km1 - sc["c1"] * it["alpha"]
    ar_ratio = jnp.hypot(lbar, sc["c1"] * it["beta_next"])
    c, s, lam = sym_ortho(lbar, it["beta_next"])
    return dict(eps_k=eps_k, delta_k=delta_k, ar_ratio=ar_ratio, c=c, s=s, lam=lam,
                zeta=c * sc["zetabar"], zetabar=s * sc["zetabar"])


def right_reflections(sc, it, first, second, zero, minus_one):
    """P_{k-2,k} then P_{k-1,k} (overridden by (−1, 0) in the first two iterations): the new
    entries of L_k (μ_{k-2}, ψ_{k-2}, ρ_{k-2}, the provisional μ̃_{k-1}, ψ̄_{k-1}, μ̄_k)."""
    cp, sp, mu_km2 = sym_ortho(sc["mubis"], it["eps_k"])
    cp = jnp.where(second, minus_one, cp)
    sp = jnp.where(second, zero, sp)
    psi_km2 = cp * sc["psibar"] + sp * it["delta_k"]
    theta = sp * sc["psibar"] - cp * it["delta_k"]
    rho_km2 = sp * it["lam"]
    eta = -cp * it["lam"]
    cd, sd, mubis_km1 = sym_ortho(sc["mubar"], theta)
    cd = jnp.where(first, minus_one, cd)
    sd = jnp.where(first, zero, sd)
    psibar_km1 = sd * eta
    mubar = -cd * eta
    return dict(cp=cp, sp=sp, mu_km2=mu_km2, psi_km2=psi_km2, rho_km2=rho_km2, cd=cd, sd=sd,
                mubis_km1=mubis_km1, psibar_km1=psibar_km1, mubar=mubar, abs_mubar=jnp.abs(mubar))


def forward_substitution(sc, it):
    """L_k t_k = z_k: the last three components τ_{k-2}, τ_{k-1}, τ_k (and ξ_k, and the
    numerator of τ_k, which is the residual's share when τ_k is dropped)."""
    tau_km2 = safe_divide(sc["tau_a"] * sc["mubis"], it["mu_km2"])
    tau_km1 = safe_divide(sc["xi"] - it["psi_km2"] * tau_km2, it["mubis_km1"])
    xi = it["zeta"] - it["rho_km2"] * tau_km2
    num = xi - it["psibar_km1"] * tau_km1
    return dict(tau_km2=tau_km2, tau_km1=tau_km1, xi=xi, num=num,
                tau_k=safe_divide(num, it["mubar"]))


def norm_and_condition(sc, it, first, zero, inf, acondlim):
    """Estimates of ‖A + λI‖, of min_j μ_j (μ_{k-1} is final once P_{k-1,k+1} is known) and of
    ‖x‖, and whether the condition estimate ‖A + λI‖ / min(μ_1, …, μ_{k-1}, |μ̄_k|) reached
    acondlim (products, not quotients, so that an infinite limit never fires)."""
    mu_km1 = jnp.where(first, inf, jnp.hypot(it["mubis_km1"], it["s"] * it["beta_next"]))
    anorm = jnp.maximum(sc["anorm"], jnp.maximum(it["pnorm"], it["abs_mubar"]))
    anorm = jnp.maximum(anorm, jnp.where(first, zero, mu_km1))
    gmin = jnp.minimum(sc["gmin"], mu_km1)
    gmin_k = jnp.minimum(gmin, it["abs_mubar"])
    ill = anorm >= acondlim * gmin_k
    xl2norm = jnp.hypot(sc["xl2norm"], it["tau_km2"])
    return dict(anorm=anorm, gmin=gmin, gmin_k=gmin_k, ill=ill, xl2norm=xl2norm,
                xnorm_prev=jnp.hypot(xl2norm, it["tau_km1"]))


def stopping_tests(it, eps, rtol, bnorm, maxxnorm, acondlim, zero):
    """The reference's safeguards on τ_k (`drop`: set it to 0), the residual norm of the iterate
    that would be returned, the exit flag (first match wins, see the module docstring) and
    whether the step is finite (`finite`: else it is not committed)."""
    tiny = it["abs_mubar"] <= eps * it["anorm"]
    x_big = it["xnorm_prev"] >= maxxnorm
    tau_big = ~tiny & ~x_big & (jnp.hypot(it["xnorm_prev"], it["tau_k"]) > maxxnorm)
    # τ_k is also dropped when it is μ̄_k itself that puts the condition estimate past acondlim.
    drop = tiny | x_big | tau_big | (it["ill"] & (it["abs_mubar"] * acondlim <= it["anorm"]))
    rnorm = jnp.where(drop, jnp.hypot(it["num"], it["zetabar"]), jnp.abs(it["zetabar"]))
    least_squares = safe_divide(it["ar_ratio"], it["anorm"]) <= rtol
    finite = jnp.isfinite(it["alpha"]) & jnp.isfinite(it["beta_next"])
    flag = first_match(
        [
            (~finite, BREAKDOWN),
            (tau_big, XNORM_LIMIT),
            (rnorm <= rtol * bnorm, CONVERGED),
            (least_squares, LEAST_SQUARES),
            (x_big, XNORM_LIMIT),
            (it["ill"], ACOND_LIMIT),
            (tiny, SINGULAR),
            (it["beta_next"] <= eps * it["anorm"], BREAKDOWN),
        ],
        RUNNING,
    ).astype(jnp.int32)
    # Least-squares exit: the reference keeps τ_k, but T_k is singular at tolerance rtol when
    # |μ̄_k| ≤ rtol·‖A‖, and the minimum-length solution then drops it (with τ_k kept, x can
    # be far from pinv(A + λI) b on a loose rtol).
    ls_drop = (flag == LEAST_SQUARES) & (it["abs_mubar"] <= rtol * it["anorm"])
    rnorm = jnp.where(ls_drop & ~drop, jnp.hypot(it["num"], it["zetabar"]), rnorm)
    drop = drop | ls_drop
    tau_k = jnp.where(drop | ~jnp.isfinite(it["tau_k"]), zero, it["tau_k"])
    return dict(drop=drop, rnorm=rnorm, finite=finite, flag=flag, tau_k=tau_k)


def update_map(sc, it, qlp, dtype, zero, one):
    """The vector update as one linear map m of (w_a, w_b, v): x' = x + m[0]·(…), w_a' = m[1]·(…),
    w_b' = m[2]·(…), and 1/β_{k+1}; the identity and 0 for a non-finite step.

    QLP step: w_{k-2} = cp ẘ_{k-2} + sp v_k is final and goes into x; the carried pair
    (ẘ_{k-1}, w̄_k) is one reflection of (w̄_{k-1}, sp ẘ_{k-2} − cp v_k). MINRES step:
    d_k = (v_k − ε_k d_{k-2} − δ_k d_{k-1})/γ_k, x += ζ_k d_k. Transfer (first QLP step after
    MINRES ones): W = D L on the carried pair and x minus its last two terms.
    """
    cp, sp, cd, sd, lam = it["cp"], it["sp"], it["cd"], it["sd"], it["lam"]
    transfer = qlp & ~sc["qlp"]
    tr_x = jnp.stack([-sc["tau_a"] * sc["mubis"],
                      -(sc["tau_a"] * sc["psibar"] + sc["tau_b"] * sc["mubar"])])
    tr_w = jnp.stack([jnp.stack([sc["mubis"], sc["psibar"]]), jnp.stack([zero, sc["mubar"]])])
    eye2 = jnp.eye(2, dtype=dtype)
    pre_x = jnp.where(transfer, tr_x, jnp.zeros(2, dtype))  # x_q = x + pre_x·(w_a, w_b)
    pre_w = jnp.where(transfer, tr_w, eye2)  # (w_a, w_b)_q = pre_w·(w_a, w_b)
    q_w = jnp.stack([jnp.stack([sd * sp, cd]), jnp.stack([-cd * sp, sd])]) @ pre_w
    qlp_m = jnp.stack([
        jnp.concatenate([pre_x + it["tau_km2"] * cp * pre_w[0], (it["tau_km2"] * sp)[None]]),
        jnp.concatenate([q_w[0], (-sd * cp)[None]]),
        jnp.concatenate([q_w[1], (cd * cp)[None]]),
    ])
    d_row = jnp.stack([safe_divide(-it["eps_k"], lam), safe_divide(-it["delta_k"], lam),
                       safe_divide(one, lam)])
    minres_m = jnp.stack([it["zeta"] * d_row, jnp.stack([zero, one, zero]), d_row])
    identity = jnp.concatenate([jnp.zeros((1, 3), dtype), jnp.eye(2, 3, dtype=dtype)])
    # (A `lax.cond` rather than `where`: its outputs are materialised, so XLA cannot fuse the
    # whole scalar recurrence into, and recompute it for every element of, the vector loops.)
    return lax.cond(
        it["finite"],
        lambda: (jnp.where(qlp, qlp_m, minres_m), safe_divide(one, it["beta_next"])),
        lambda: (identity, zero),
    )


def apply_update(vec, m, inv_beta, v, u, p, z, inverse):
    """The carried vectors after the step: (x, w_a, w_b) through the map m, the next Lanczos
    vectors scaled by 1/β_{k+1}."""
    v_next = t.scale(inv_beta, z)

    def row(r, *base):  # (base +) m[r]·(w_a, w_b, v), leafwise
        return tree_map(
            lambda wa, wb, v_, *x_: (sum(x_) + m[r, 0] * wa + m[r, 1] * wb + m[r, 2] * v_)
            .astype(wa.dtype), vec["w_a"], vec["w_b"], v, *base,
        )

    x, w_a, w_b = row(0, vec["x"]), row(1), row(2)
    if inverse is None:
        new_vec = dict(v_prev=v, v=v_next)
    else:
        new_vec = dict(u_prev=u, u=t.scale(inv_beta, p), v=v_next)
    new_vec.update(x=x, w_a=w_a, w_b=w_b)
    return new_vec
