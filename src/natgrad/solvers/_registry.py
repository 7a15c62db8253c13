"""The solver protocol in code: what a solver is called with, what it may take, and the registry
of the solvers natgrad ships, so that the optimizer and the economics ask a solver what it can do
instead of testing which function it is.

A solver is any callable `solver(matvec, b, *, damping, max_iters, rtol, **options) -> (x,
SolverInfo)` solving (A + λI) x = b on pytrees. Its `traits` attribute (a `SolverTraits`) says
which of the economics' options it takes and whether its `SolverInfo.model` holds the quadratic
model φ(x); a callable without one is taken to accept `x0` and `preconditioner` and to report no
model (`CUSTOM`). Adding a solver: write it, give it `traits`, add it to `SOLVERS`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

from ._cg import cg
from ._info import SolverInfo
from ._minres_qlp import minres_qlp

__all__ = ["Solver", "SolverTraits", "CUSTOM", "SOLVERS", "resolve_solver", "solver_traits"]


class Solver(Protocol):
    """A truncated Krylov solver of (A + λI) x = b (see `natgrad.solvers.cg`)."""

    def __call__(self, matvec: Callable[[Any], Any], b: Any, *, damping: Any, max_iters: Any,
                 rtol: Any, **options: Any) -> tuple[Any, SolverInfo]: ...


@dataclasses.dataclass(frozen=True)
class SolverTraits:
    """options: the keyword options beyond damping/max_iters/rtol the solver accepts ("x0" a warm
    start, "preconditioner", "progress" truncation on the quadratic model).
    reports_model: whether `SolverInfo.model` is φ(x) = ½xᵀ(A + λI)x − bᵀx at the returned x (the
    step's quadratic-model ρ and adaptive step size then need no product with A for it)."""

    options: frozenset
    reports_model: bool


#: What a callable without `traits` is assumed to be.
CUSTOM = SolverTraits(options=frozenset({"x0", "preconditioner"}), reports_model=False)

cg.traits = SolverTraits(options=frozenset({"x0", "preconditioner", "progress"}),
                         reports_model=True)
minres_qlp.traits = SolverTraits(options=frozenset({"x0", "preconditioner"}), reports_model=False)

#: The solvers a name selects.
SOLVERS = {"cg": cg, "minres_qlp": minres_qlp}


def resolve_solver(solver) -> Solver:
    """The solver a name ('cg', 'minres_qlp') or a callable stands for."""
    if callable(solver):
        return solver
    if solver in SOLVERS:
        return SOLVERS[solver]
    raise ValueError(f"unknown solver {solver!r}: {', '.join(map(repr, SOLVERS))} or a callable")


def solver_traits(solver: Solver) -> SolverTraits:
    """What `solver` can do: its `traits`, else `CUSTOM`."""
    return getattr(solver, "traits", CUSTOM)
