"""Solver economics of the natural-gradient step (Martens 2010, "Deep learning via Hessian-free
optimization"): what a step spends on its solve, and what it reuses from the last one.

`SolverEconomics` bundles four options, each off by default (the default object is the paper's
protocol: zero start, no preconditioner, `max_iters`/`rtol` truncation, the full metric batch,
bit for bit the step without it):

- `warm_start`: the solve starts from warm_start × the previous step's direction (Martens: 0.95),
  carried in the optimizer state (`natural_gradient_init(..., economics=...)` fixes its structure);
- `preconditioner`: a diagonal preconditioner built at each step, e.g.
  `natgrad.preconditioners.MartensDiagonal()` ((D + λ)^0.75 from per-example gradients), passed
  to the solver (preconditioned CG / MINRES-QLP);
- `progress`: CG also stops when its quadratic model stops improving
  (`natgrad.solvers.Progress()`, Martens §4.4; CG only);
- `metric_fraction`: the metric (and the preconditioner) on the first ⌈f·n⌉ rows of its batch.

`RECOMMENDED` is the library's recommended setting; docs/solver_economics.md gives the
measurements it rests on.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax.numpy as jnp

from . import pytree
from .curvature import leading_rows, metric_subbatch
from .solvers import Progress, cg

PyTree = Any

__all__ = ["SolverEconomics", "PAPER", "RECOMMENDED"]


@dataclasses.dataclass(frozen=True)
class SolverEconomics:
    """Options of the natural-gradient solve (hashable: a static argument of `jax.jit`).

    warm_start: decay d of the warm start x0 = d·ng_prev/‖g‖ of the solve on g/‖g‖ (the previous
        direction, rescaled to this step's right-hand side); 0 = start from 0. The state then
        carries the last direction (one parameter-sized copy).
    preconditioner: None, or a callable `(apply_fn, params, inputs, targets, family, λ) ->
        diag(M)` (e.g. `natgrad.preconditioners.MartensDiagonal()`), evaluated on the first
        ⌈metric_fraction·n⌉ rows of the gradient batch (it needs targets).
    progress: None, or a `natgrad.solvers.Progress` rule (CG only).
    metric_fraction: fraction f in (0, 1] of the metric batch the metric is taken on (the first
        ⌈f·n⌉ rows; the gradient batch's when no metric batch is given).
    """

    warm_start: float = 0.0
    preconditioner: Optional[Any] = None
    progress: Optional[Progress] = None
    metric_fraction: float = 1.0

    def __post_init__(self):
        if not 0 <= self.warm_start <= 1:
            raise ValueError(f"warm_start must be in [0, 1], got {self.warm_start!r}")
        if not 0 < self.metric_fraction <= 1:
            raise ValueError(f"metric_fraction must be in (0, 1], got {self.metric_fraction!r}")

    def check_solver(self, solver) -> None:
        """Progress truncation is defined for CG only (MINRES-QLP does not minimise the model)."""
        if self.progress is not None and solver is not cg:
            raise ValueError("progress truncation needs solver='cg' (MINRES-QLP minimises the "
                             "residual, not the quadratic model)")

    def initial_direction(self, params: PyTree) -> Optional[PyTree]:
        """The direction a state starts with: zeros when warm-starting, else None."""
        return pytree.zeros_like(params) if self.warm_start else None

    def metric_batch(self, grad_batch, metric_batch):
        """The batch the metric is taken on (see `natgrad.curvature.metric_subbatch`)."""
        return metric_subbatch(grad_batch, metric_batch, self.metric_fraction)

    def solver_options(self, apply_fn, params, grad_batch, family, damping, direction, gnorm):
        """The solver's keyword arguments beyond damping/max_iters/rtol: `x0` (the decayed
        previous direction on the scale of b = g/‖g‖, `gnorm` = ‖g‖ or 1 when g = 0),
        `preconditioner`, `progress`; only those that are on (so a custom solver without them
        still works with the default economics)."""
        options = {}
        if self.warm_start:
            if direction is None:
                raise ValueError("warm_start needs a state from natural_gradient_init(params, "
                                 "damping, economics=...) with the same economics")
            options["x0"] = pytree.scale(jnp.asarray(self.warm_start, gnorm.dtype) / gnorm,
                                         direction)
        if self.preconditioner is not None:
            if grad_batch is None:
                raise ValueError("a preconditioner needs grad_batch=(inputs, targets)")
            x, t = leading_rows(tuple(grad_batch), self.metric_fraction)
            options["preconditioner"] = self.preconditioner(apply_fn, params, x, t, family,
                                                            damping)
        if self.progress is not None:
            options["progress"] = self.progress
        return options


#: The paper's protocol (and the default): zero start, fixed truncation, full metric batch.
PAPER = SolverEconomics()

#: The library's recommended setting: warm start 0.95, the metric on a tenth of the batch, with a
#: small `max_iters` (5); the preconditioner and progress truncation off. Measured with
#: benchmarks/bench_time_to_target.py (docs/solver_economics.md gives the figures).
RECOMMENDED = SolverEconomics(warm_start=0.95, metric_fraction=0.1)
