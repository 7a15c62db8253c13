"""Solver economics of the natural-gradient step (Martens 2010, "Deep learning via Hessian-free
optimization"): what a step spends on its solve, and what it reuses from the last one.

`SolverEconomics` bundles the solve's settings that go together:

- `max_iters`: the solver's iteration budget (the paper: 20);
- `damping`: the damping rule (`natgrad.damping`; by default `SAFE_DAMPING`, the paper's
  Levenberg-Marquardt rule from λ = 1 floored at 0.1: undamped, or with λ free to fall to ~0, a
  minibatch solve diverges; `damping=0.0` asks for the undamped solve explicitly);
- `warm_start`: the solve starts from warm_start × the previous step's direction (Martens: 0.95),
  carried in the optimizer state;
- `preconditioner`: a preconditioner with state, refreshed at each step (see below), e.g.
  `natgrad.preconditioners.MartensDiagonal()` ((D + λ)^0.75 from per-example gradients) or
  `natgrad.preconditioners.kronecker.KroneckerFactors()`, passed to the solver (preconditioned CG / MINRES-QLP);
- `progress`: CG also stops when its quadratic model stops improving
  (`natgrad.solvers.Progress()`, Martens §4.4; CG only);
- `metric_fraction`: the metric on the first ⌈f·n⌉ rows of its batch, the preconditioner on the
  first ⌈f·n⌉ rows of the gradient batch unless `preconditioner_fraction` says otherwise
  (K-FAC feeds its factors from the whole gradient batch: `preconditioner_fraction=1.0`);
  `metric_min_rows` a floor on those rows (a tenth of a minibatch of 128 is 13 rows: too few).

The step's own `max_iters=` and `damping=` arguments, when given, replace the economics' (the
settings object then holds the one resulting economics, so `init` and `step` agree).

A preconditioner implements `natgrad.preconditioners.Preconditioner`: a frozen dataclass with
`init(params) -> state` (a pytree whose structure depends only on params: it lives in the
optimizer state), `refresh(state, apply_fn, params, inputs, targets, family, damping) -> state`
(jittable, on the first ⌈metric_fraction·n⌉ rows of the gradient batch) and
`inverse(state) -> v ↦ M⁻¹ v`.

`PAPER` is the paper's solve (zero start, no preconditioner, 20 iterations, the full metric
batch) with `SAFE_DAMPING`; `RECOMMENDED` is the library's recommended setting, complete: docs/solver_economics.md
gives the measurements it rests on.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax.numpy as jnp

from . import pytree
from .curvature import leading_rows, metric_subbatch
from .damping import LevenbergMarquardt, as_damping
from .preconditioners import Preconditioner
from .solvers import Progress, check_truncation, solver_traits

PyTree = Any

#: The economics' default damping: Levenberg-Marquardt (eq. 29-30) from λ = 1, floored at 0.1. On
#: minibatches of 128 digits (benchmarks/bench_minibatch.py) λ = 0, or eq. 30's ρ at a fixed η < 1
#: (which it scores ≈ 1 − η/2, "good") driving λ to the rule's 1e-8 floor, blew the loss up to
#: 10²-10⁴ nats within 100 steps; with the 0.1 floor every η in {0.1, 0.5, 1} trained.
SAFE_DAMPING = LevenbergMarquardt(initial=1.0, minimum=0.1)

__all__ = ["SolverEconomics", "SAFE_DAMPING", "PAPER", "RECOMMENDED"]


@dataclasses.dataclass(frozen=True)
class SolverEconomics:
    """Settings of the natural-gradient solve (hashable: a static argument of `jax.jit`).

    max_iters: the solver's iteration budget, an int ≥ 1 (default 20, the paper's).
    damping: the damping rule, or a number for `Constant` (default `SAFE_DAMPING`).
    warm_start: decay d in [0, 1] of the warm start x0 = d·ng_prev/‖g‖ of the solve on g/‖g‖ (the
        previous direction, rescaled to this step's right-hand side); 0 = start from 0. The state
        then carries the last direction (one parameter-sized copy).
    preconditioner: None, or a `natgrad.preconditioners.Preconditioner` (see the module
        docstring), refreshed on the first ⌈metric_fraction·n⌉ rows of the gradient batch.
    progress: None, or a `natgrad.solvers.Progress` rule (CG only).
    metric_fraction: fraction f in (0, 1] of the metric batch the metric is taken on (the first
        ⌈f·n⌉ rows; the gradient batch's when no metric batch is given).
    preconditioner_fraction: fraction in (0, 1] of the gradient batch the preconditioner is
        refreshed on (its first rows); None: `metric_fraction`.
    metric_min_rows: the fewest rows the fractions take (an int ≥ 1; the whole batch when it is
        smaller), default 1.
    """

    max_iters: int = 20
    damping: Any = SAFE_DAMPING
    warm_start: float = 0.0
    preconditioner: Optional[Preconditioner] = None
    progress: Optional[Progress] = None
    metric_fraction: float = 1.0
    preconditioner_fraction: Optional[float] = None
    metric_min_rows: int = 1

    def __post_init__(self):
        check_truncation(self.max_iters, None)
        object.__setattr__(self, "damping", as_damping(self.damping))
        if not 0 <= self.warm_start <= 1:
            raise ValueError(f"warm_start must be in [0, 1], got {self.warm_start!r}")
        if not 0 < self.metric_fraction <= 1:
            raise ValueError(f"metric_fraction must be in (0, 1], got {self.metric_fraction!r}")
        if isinstance(self.metric_min_rows, bool) or not (isinstance(self.metric_min_rows, int)
                                                          and self.metric_min_rows >= 1):
            raise ValueError(f"metric_min_rows must be an integer >= 1, got "
                             f"{self.metric_min_rows!r}")
        if self.preconditioner_fraction is not None and not 0 < self.preconditioner_fraction <= 1:
            raise ValueError(f"preconditioner_fraction must be in (0, 1] or None, got "
                             f"{self.preconditioner_fraction!r}")

    def overridden(self, damping=None, max_iters=None) -> "SolverEconomics":
        """These economics with the damping rule (a rule or a number) and the iteration budget
        replaced where given: how a step's own `damping=`/`max_iters=` arguments take effect."""
        if damping is None and max_iters is None:
            return self
        return dataclasses.replace(self, damping=self.damping if damping is None else damping,
                                   max_iters=self.max_iters if max_iters is None else max_iters)

    def check_solver(self, solver) -> None:
        """The options that are on must be ones the solver takes (`natgrad.solvers.SolverTraits`):
        progress truncation needs a solver that minimises the quadratic model (CG; MINRES-QLP
        minimises the residual)."""
        wanted = {"progress": self.progress is not None, "x0": bool(self.warm_start),
                  "preconditioner": self.preconditioner is not None}
        refused = [name for name, on in wanted.items()
                   if on and name not in solver_traits(solver).options]
        if refused:
            name = getattr(solver, "__name__", repr(solver))
            hint = (": progress truncation needs solver='cg' (MINRES-QLP minimises the residual, "
                    "not the quadratic model)" if "progress" in refused else "")
            raise ValueError(f"the solver {name} does not take {', '.join(refused)}, which the "
                             f"economics turn on{hint}")

    def initial_direction(self, params: PyTree) -> Optional[PyTree]:
        """The direction a state starts with: zeros when warm-starting, else None."""
        return pytree.zeros_like(params) if self.warm_start else None

    def initial_preconditioner(self, params: PyTree) -> Optional[PyTree]:
        """The preconditioner's state a step state starts with, or None."""
        return None if self.preconditioner is None else self.preconditioner.init(params)

    def metric_batch(self, grad_batch, metric_batch):
        """The batch the metric is taken on (see `natgrad.curvature.metric_subbatch`)."""
        return metric_subbatch(grad_batch, metric_batch, self.metric_fraction,
                               self.metric_min_rows)

    def refreshed_preconditioner(self, state, apply_fn, params, grad_batch, family, damping):
        """The preconditioner's state after its refresh on this step's rows, or None."""
        if self.preconditioner is None:
            return None
        if grad_batch is None:
            raise ValueError("a preconditioner needs grad_batch=(inputs, targets)")
        fraction = (self.metric_fraction if self.preconditioner_fraction is None
                    else self.preconditioner_fraction)
        x, t = leading_rows(tuple(grad_batch), fraction, self.metric_min_rows)
        return self.preconditioner.refresh(state, apply_fn, params, x, t, family, damping)

    def solver_options(self, direction, preconditioner_state, gnorm):
        """The solver's keyword arguments beyond damping/max_iters/rtol: `x0` (the decayed
        previous direction on the scale of b = g/‖g‖, `gnorm` = ‖g‖ or 1 when g = 0),
        `preconditioner`, `progress`; only those that are on (so a custom solver without them
        still works with the default economics)."""
        options = {}
        if self.warm_start:
            if direction is None:
                raise ValueError("warm_start needs a state from natural_gradient_init(..., "
                                 "economics=...) or NaturalGradient.init, same economics")
            options["x0"] = pytree.scale(jnp.asarray(self.warm_start, gnorm.dtype) / gnorm,
                                         direction)
        if self.preconditioner is not None:
            options["preconditioner"] = self.preconditioner.inverse(preconditioner_state)
        if self.progress is not None:
            options["progress"] = self.progress
        return options


#: The paper's protocol (and the plain functions' default): zero start, 20 iterations, the full
#: metric batch, Levenberg-Marquardt damping (`SAFE_DAMPING`) unless the step says otherwise.
PAPER = SolverEconomics()

#: The library's recommended setting, complete: 5 CG iterations from a warm start (0.95 × the last
#: direction), the metric on a tenth of the batch but at least 64 rows (on minibatches of 128
#: digits a tenth, 13 rows, left the loss at 0.037 after 300 updates, 64 rows at 0.009:
#: benchmarks/bench_minibatch.py), Levenberg-Marquardt damping from λ = 1; the
#: preconditioner and progress truncation off. Measured with benchmarks/bench_time_to_target.py
#: and checked not to diverge (tests/test_recommended.py); docs/solver_economics.md gives the figures.
RECOMMENDED = SolverEconomics(max_iters=5, damping=LevenbergMarquardt(1.0), warm_start=0.95,
                              metric_fraction=0.1, metric_min_rows=64)
