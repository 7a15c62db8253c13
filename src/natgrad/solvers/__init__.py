"""Truncated Krylov solvers on pytrees: `cg` and `minres_qlp`.

Both solve (A + damping·I) x = b from x = 0 (or a given `x0`) given only v ↦ A v, b any pytree of
float arrays, inside `lax.while_loop` (jittable, no host round-trips; `damping`, `rtol` and
`max_iters` may be traced), stop at `max_iters` (default 100) or at ‖b − (A + λI)x‖ ≤ rtol·‖b‖
(default rtol 1e-5), and return `(x, SolverInfo)`. A concrete `max_iters` < 1 or a negative or
non-finite `rtol` or `damping` raises a one-line ValueError naming it (`check_truncation`,
`check_non_negative`); a traced invalid `rtol` acts as 0, so CONVERGED is never reported for a
residual test that did not pass.
`relative_residual` is the solver's recursively updated residual norm over ‖b‖ (no extra product
with A), equal to the true one in exact arithmetic.

Options for Hessian-free-style economics (Martens 2010; all off by default, see
docs/solver_economics.md): `x0=` starts from a given iterate (a warm start), `preconditioner=`
takes M⁻¹ as a function or the diagonal of M as a pytree (preconditioned CG and MINRES-QLP), and
CG's `progress=Progress()` also stops once its quadratic model stops improving (flag PROGRESS).

Exit flags (`SolverInfo.flag`; docs/training_loop.md says what to do about each):

==========================  ==  ==========================================================
CONVERGED                    0  relative residual ≤ rtol
MAX_ITERS                    1  truncated: max_iters reached first
LEAST_SQUARES                2  MINRES-QLP: inconsistent system, converged to pinv(A+λI) b
NEGATIVE_CURVATURE           3  CG: pᵀ(A+λI)p ≤ 0 met (not positive definite)
BREAKDOWN                    4  non-finite numbers, or the recurrence broke down
ZERO_RHS                     5  b = 0, x = 0 returned exactly
XNORM_LIMIT                  6  MINRES-QLP: newest component dropped, it would push ‖x‖ past
                                maxxnorm (the usual exit on singular inconsistent systems)
ACOND_LIMIT                  7  MINRES-QLP: condition estimate reached acondlim
SINGULAR                     8  MINRES-QLP: last pivot of the Lanczos LQ factor ≤ eps·‖A+λI‖,
                                newest component dropped
PROGRESS                     9  CG with `progress`: the quadratic model's relative decrease over
                                the last k iterations fell below k·ε (Martens 2010, §4.4)
==========================  ==  ==========================================================

MINRES-QLP's safeguards are Choi, Paige & Saunders' (maxxnorm, acondlim, trancond keywords, their
defaults); on singular inconsistent systems they are what keeps x close to pinv(A + λI) b.

The solver protocol (`Solver`, `SolverTraits`, the `SOLVERS` registry, `resolve_solver`) is in
code: a solver says which options it takes and whether it reports the quadratic model φ(x).
"""
from ..preconditioners.protocol import inverse_preconditioner
from ._info import (
    BREAKDOWN,
    CONVERGED,
    FLAG_NAMES,
    LEAST_SQUARES,
    MAX_ITERS,
    NEGATIVE_CURVATURE,
    ZERO_RHS,
    XNORM_LIMIT,
    ACOND_LIMIT,
    SINGULAR,
    PROGRESS,
    SolverInfo,
)
from ._cg import cg
from ._minres_qlp import minres_qlp
from ._progress import Progress
from ._registry import CUSTOM, SOLVERS, Solver, SolverTraits, resolve_solver, solver_traits
from ._truncation import check_non_negative, check_truncation

__all__ = [
    "cg",
    "minres_qlp",
    "SolverInfo",
    "CONVERGED",
    "MAX_ITERS",
    "LEAST_SQUARES",
    "NEGATIVE_CURVATURE",
    "BREAKDOWN",
    "ZERO_RHS",
    "XNORM_LIMIT",
    "ACOND_LIMIT",
    "SINGULAR",
    "PROGRESS",
    "FLAG_NAMES",
    "Progress",
    "Solver",
    "SolverTraits",
    "CUSTOM",
    "SOLVERS",
    "resolve_solver",
    "solver_traits",
    "inverse_preconditioner",
    "check_truncation",
    "check_non_negative",
]

