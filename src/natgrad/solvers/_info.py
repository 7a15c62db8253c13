"""The result record every solver returns, and its exit flags."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax

#: ‖b − (A + λI)x‖ ≤ rtol·‖b‖ was reached.
CONVERGED = 0
#: `max_iters` iterations ran without reaching `rtol` (a truncated solve: x is the last iterate).
MAX_ITERS = 1
#: MINRES-QLP only: b is not in the range of A + λI (an inconsistent system) and the iteration
#: converged to the minimum-length least-squares solution pinv(A + λI) b: the least-squares
#: optimality ‖(A + λI) r‖ ≤ rtol·‖A + λI‖·‖r‖ holds. `relative_residual` is then ‖r‖/‖b‖
#: (> rtol), the least-squares residual.
LEAST_SQUARES = 2
#: CG only: a direction p with pᵀ(A + λI)p ≤ 0 was met, so A + λI is not positive definite.
#: x is the iterate before that direction (x = 0 if it happened on the first iteration).
NEGATIVE_CURVATURE = 3
#: A non-finite number appeared (NaN/inf in the operator's output), or the Krylov recurrence
#: broke down; x is the last finite iterate.
BREAKDOWN = 4
#: b = 0: x = 0 is returned exactly, with zero iterations and relative residual 0.
ZERO_RHS = 5
#: MINRES-QLP only: the newest component of x would have pushed ‖x‖ past `maxxnorm`, so it was
#: set to 0 and the iteration stopped (Choi-Paige-Saunders flag 6). The usual exit on a singular
#: inconsistent system: x is then pinv(A + λI) b, to the accuracy the end of Lanczos allows.
XNORM_LIMIT = 6
#: MINRES-QLP only: the condition estimate ‖A + λI‖ / min|diag L_k| reached `acondlim` (their
#: flag 7); the newest component was set to 0 if its own pivot put the estimate there.
ACOND_LIMIT = 7
#: MINRES-QLP only: the last pivot of the Lanczos matrix's LQ factor vanished (≤ eps·‖A + λI‖):
#: T_k is singular, the newest component was set to 0 and the iteration stopped (their flag 9).
SINGULAR = 8
#: CG with `progress` truncation only: the quadratic model φ(x) = ½xᵀ(A + λI)x − bᵀx stopped
#: improving fast enough (Martens 2010, §4.4): (φ(x_i) − φ(x_{i−k}))/φ(x_i) < k·ε with φ(x_i) < 0
#: (`natgrad.solvers.Progress`). x is the iterate at which the rule fired.
PROGRESS = 9

FLAG_NAMES = {
    CONVERGED: "converged",
    MAX_ITERS: "max_iters",
    LEAST_SQUARES: "least_squares",
    NEGATIVE_CURVATURE: "negative_curvature",
    BREAKDOWN: "breakdown",
    ZERO_RHS: "zero_rhs",
    XNORM_LIMIT: "xnorm_limit",
    ACOND_LIMIT: "acond_limit",
    SINGULAR: "singular",
    PROGRESS: "progress",
}


class SolverInfo(NamedTuple):
    """What a solve did (all fields are JAX scalars, so the record is a jittable pytree).

    iterations: matrix-vector products with A spent in the Krylov loop (int32): the iteration
        count the solve used, whichever rule stopped it (a start from `x0` costs one more
        product, for its residual, outside the loop).
    relative_residual: ‖b − (A + λI)x‖ / ‖b‖ of the returned x (0 when b = 0), from the
        solver's residual recurrence, which equals the true residual in exact arithmetic.
    flag: one of the module constants CONVERGED, MAX_ITERS, LEAST_SQUARES, NEGATIVE_CURVATURE,
        BREAKDOWN, ZERO_RHS, XNORM_LIMIT, ACOND_LIMIT, SINGULAR, PROGRESS (int32);
        `FLAG_NAMES[int(flag)]` names it.
    model: φ(x) = ½xᵀ(A + λI)x − bᵀx, the quadratic model's value at the returned x, for a
        solver that has it without a product with A (CG: its scalar recurrence, φ falling by ½·α·rᵀz per iteration); NaN
        where the solver does not report it (`reports_model` is False: MINRES-QLP).
    """

    iterations: jax.Array
    relative_residual: jax.Array
    flag: jax.Array
    model: Any = float("nan")
