"""The natural-gradient step (paper Algorithm 1), as a plain function and as optax transformations.

One step at θ with learning rate η and damping λ:

1. g = ∇ L(θ), L the mean NLL on the gradient batch (inputs, targets);
2. the metric M at θ on the metric batch — the Fisher/GGN (eq. 8, inputs only: the targets are
   integrated out, so unlabeled inputs work), the uncentred (eq. 13) or centred (eq. 12) covariance
   of per-example gradients, or the Hessian — from **one** linearization;
3. solve (M + λI) x = g/‖g‖ with a truncated Krylov solver (CG or MINRES-QLP, `natgrad.solvers`),
   ng = ‖g‖·x (the original code normalises g before the solve and rescales after); what the solve
   spends (warm start, preconditioner, progress truncation, metric sub-batch) is the step's
   `economics` (`natgrad.economics`: `NaturalGradient`'s default is `RECOMMENDED`, the plain
   functions' is `PAPER`, the paper's protocol);
4. θ_new = θ − η·ng;
5. ρ = (L(θ_new) − L(θ)) / (−η g·ng) (eq. 30) on the gradient batch, and the damping rule's update
   of λ (Levenberg-Marquardt: eq. 29-30).

When the metric batch's inputs are the gradient batch's inputs (the same array object), L and g
come from the metric's own linearization: one forward pass for all three.

One settings object, `NaturalGradient` (frozen, hashable: family, metric, solver, truncation,
damping rule, economics, learning rate, run-time checks), makes the state (`init`) and the steps,
so the two cannot disagree. It has two faces, one core (`curvature.loss_gradient_and_metric` for
step 1-2, `_natural_direction` for step 3, `_next_damping` for λ):

- `NaturalGradient.step` (and the plain function `natural_gradient_step`, which builds the
  settings from its arguments) does all five steps; it knows the applied update −η·ng, so it evaluates ρ
  at once (one extra forward at θ_new), only when the damping rule needs it or `compute_rho=True`.
- `NaturalGradient.scale_by()` (= `scale_by_natural_gradient`) is an optax transformation that returns the direction
  (M + λI)⁻¹·updates (step 3, for whatever gradient the chain hands it, e.g. clipped), and
  `NaturalGradient.optax()` (= `natural_gradient`) chains it with `optax.scale_by_learning_rate`. The update actually applied is
  whatever the rest of the chain makes of the direction, unknown when it returns. So ρ of step t
  is evaluated at the next call, from the update that was applied, d = θ_{t+1} − θ_t: with θ_t kept
  in the state, ρ_t = (L(θ_{t+1}) − L(θ_t)) / (∇L(θ_t)·d) on the gradient batch of call t+1
  (L(θ_{t+1}) comes with that call's linearization; L(θ_t) and ∇L(θ_t)·d from one `jax.jvp` at
  θ_t), and λ is updated before that call's solve — the λ sequence of an immediate evaluation
  whenever the gradient batch is the same. Why this design rather than storing batch t for the
  next call: the state must have a fixed structure from `init(params)` (for `jax.lax.scan` and
  `fori_loop` training loops), and `init` cannot know the batch's shape; it holds one parameter-
  sized copy θ_t, and only when ρ is needed (constant damping carries nothing extra). With
  minibatches ρ_t is then measured on data that step t was not fitted to. The first call has no
  previous step: ρ is NaN and λ keeps its initial value.

Everything is jittable: the settings are static (a `NaturalGradient` is hashable; close over the
plain function's settings, e.g. with `functools.partial`, before `jax.jit`); params, state,
batches, learning rate, a constant damping and rtol may be traced. Impossible settings are refused
when the settings are made, shapes and dtypes of params and batches at trace time
(`natgrad.checks`), and with `checks=True` the values (finite data, targets in range, a finite
gradient and direction) at run time, through `jax.experimental.checkify`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import optax

from . import checks as _checks
from . import pytree
from . import solvers as _solvers
from .curvature import (
    METRICS,
    loss_gradient_and_metric,
    mean_nll,
    metric_kind,
    metric_operator,
    shares_linearization,
)
from .damping import as_damping
from .economics import PAPER, RECOMMENDED, SolverEconomics
from .families import Family
from .state import NaturalGradientState, StepInfo, empty_info

PyTree = Any

__all__ = [
    "NaturalGradient",
    "StepInfo",
    "NaturalGradientState",
    "natural_gradient_init",
    "natural_gradient_step",
    "scale_by_natural_gradient",
    "natural_gradient",
    "METRICS",  # re-exported from natgrad.curvature, where metric names are resolved
]

_SOLVERS = {"cg": _solvers.cg, "minres_qlp": _solvers.minres_qlp}


def _solver(solver) -> Callable:
    if callable(solver):
        return solver
    if solver in _SOLVERS:
        return _SOLVERS[solver]
    raise ValueError(f"unknown solver {solver!r}: 'cg', 'minres_qlp' or a callable")


@dataclasses.dataclass(frozen=True)
class NaturalGradient:
    """The natural-gradient optimizer's settings, made once: `init(params)` and
    `step(params, state, grad_batch, metric_batch=None)`, or the optax faces `scale_by()` and
    `optax()`. Frozen and hashable (a static argument of `jax.jit`; `jax.jit(ng.step)` works).

    apply_fn: `apply_fn(params, inputs) -> r`, the model's pre-activations.
    family: the output family (`natgrad.families`).
    learning_rate: η, a number ≥ 0 or an optax-style schedule of the step count (default 1).
    economics: the solve's settings (`natgrad.economics`), default `RECOMMENDED`: 5 CG iterations
        from a warm start, the metric on a tenth of the batch, Levenberg-Marquardt damping.
    damping: a damping rule or a number (constant λ); None: the economics' rule.
    max_iters: the solver's iteration budget; None: the economics'.
    rtol: the solver's relative-residual tolerance (≥ 0).
    metric: "fisher" (= "ggn"), "empirical_fisher" (eq. 13), "covariance" (eq. 12) or "hessian".
    solver: "cg", "minres_qlp", or a callable with their signature.
    compute_rho: compute ρ (one extra forward pass); None: when the damping rule needs it.
    checks: run-time checks (finite data, targets in the family's range, finite gradient and
        direction, a traced damping or learning rate ≥ 0) as `jax.experimental.checkify` checks:
        run the jitted step or loop under `checkify.checkify` and call `err.throw()`.
    """

    apply_fn: Callable[[PyTree, Any], jax.Array]
    family: Family
    _: dataclasses.KW_ONLY
    learning_rate: Union[float, Callable[[jax.Array], jax.Array]] = 1.0
    economics: SolverEconomics = RECOMMENDED
    damping: Any = None
    max_iters: Optional[int] = None
    rtol: Union[float, jax.Array] = 1e-4
    metric: str = "fisher"
    solver: Union[str, Callable] = "cg"
    compute_rho: Optional[bool] = None
    checks: bool = False

    def __post_init__(self):
        if self.family is None:
            raise TypeError("an output family is needed: family=natgrad.families.Categorical() "
                            "or another natgrad.families.Family")
        if not isinstance(self.economics, SolverEconomics):
            raise TypeError(f"economics must be a natgrad.economics.SolverEconomics, got "
                            f"{self.economics!r}")
        metric_kind(self.metric)
        _solvers.check_truncation(self.iterations, self.rtol)
        if not callable(self.learning_rate):  # a schedule is checked at run time (checks=True)
            _solvers.check_non_negative("learning_rate", self.learning_rate)
        self.economics.check_solver(self.solve)
        rule = self.rule  # a bad damping fails here, not at the first step
        if self.compute_rho is False and getattr(rule, "needs_rho", True):
            raise ValueError(f"compute_rho=False, but the damping rule {rule!r} needs ρ")

    @property
    def rule(self):
        """The damping rule in force: `damping`, else the economics'."""
        return _rule(self.damping, self.economics)

    @property
    def iterations(self) -> int:
        """The iteration budget in force: `max_iters`, else the economics'."""
        return self.economics.max_iters if self.max_iters is None else self.max_iters

    @property
    def solve(self) -> Callable:
        """The solver function."""
        return _solver(self.solver)

    @property
    def needs_rho(self) -> bool:
        """Whether a step computes ρ: `compute_rho`, else when the damping rule needs it."""
        if self.compute_rho is not None:
            return bool(self.compute_rho)
        return bool(getattr(self.rule, "needs_rho", True))

    # --- the plain step ---------------------------------------------------------------------

    def init(self, params: PyTree) -> NaturalGradientState:
        """The initial state: λ from the damping rule in the parameters' floating dtype, and the
        zero direction and the preconditioner's state that the economics carry."""
        return _initial_state(params, self.rule, self.economics)

    def step(self, params: PyTree, state: NaturalGradientState, grad_batch: tuple,
             metric_batch=None) -> tuple[PyTree, NaturalGradientState, StepInfo]:
        """One step θ ← θ − η (M + λI)⁻¹ ∇L(θ): (new_params, new_state, StepInfo).

        grad_batch: `(inputs, targets)`: L and g are taken on it.
        metric_batch: the metric's batch: `inputs`, `(inputs,)` or `(inputs, targets)`; the Fisher
          needs inputs only (unlabeled data work), the covariance metrics and the Hessian need
          targets. None: the gradient batch.
        """
        _refuse_family_as_batch(metric_batch)
        self._check_inputs(params, grad_batch, metric_batch)
        economics, rule = self.economics, self.rule
        loss, g, matvec = loss_gradient_and_metric(
            self.apply_fn, params, grad_batch, economics.metric_batch(grad_batch, metric_batch),
            self.family, self.metric)
        lam = rule.current(state.damping)
        dtype = pytree.scalar_dtype(params)
        eta = jnp.asarray(self._learning_rate(state.count), dtype)
        if self.checks:
            _checks.check_damping(rule, lam)
            _checks.check_scalar(eta, "learning_rate")
        ng, gnorm, sinfo, preconditioner = self._direction(g, matvec, params, grad_batch, state,
                                                           lam)
        new_params = jax.tree_util.tree_map(lambda p, d: (p - eta * d).astype(p.dtype), params, ng)
        if self.needs_rho:
            x, t = grad_batch
            rho = _reduction_ratio(mean_nll(self.apply_fn, x, t, self.family), new_params, loss,
                                   eta, g, ng, dtype)
        else:
            rho = jnp.full((), jnp.nan, dtype)
        info = _step_info(loss, gnorm, sinfo, rho, lam, eta, ng, dtype)
        new_state = NaturalGradientState(state.count + 1, _next_damping(rule, lam, rho), info,
                                         direction=self._carried(ng),
                                         preconditioner=preconditioner)
        return new_params, new_state, info

    # --- the optax faces --------------------------------------------------------------------

    def scale_by(self) -> optax.GradientTransformationExtraArgs:
        """The optax transformation u ↦ (M + λI)⁻¹ u (no learning rate): see
        `scale_by_natural_gradient`."""
        need_rho = self.needs_rho

        def init_fn(params):
            state = self.init(params)
            return state._replace(previous_params=params) if need_rho else state

        def update_fn(updates, state, params=None, *, metric_batch=None, grad_batch=None, **extra):
            del extra
            if params is None:
                raise ValueError("scale_by_natural_gradient needs params (the metric is taken at θ)")
            if metric_batch is None and grad_batch is None:
                raise ValueError("scale_by_natural_gradient needs metric_batch=inputs or "
                                 "(inputs, targets) (or grad_batch=(inputs, targets))")
            if need_rho and grad_batch is None:
                raise ValueError("ρ (Levenberg-Marquardt damping) needs "
                                 "grad_batch=(inputs, targets)")
            self._check_inputs(params, grad_batch, metric_batch)
            _checks.check_updates(updates, params)
            loss, matvec = _transform_metric(self.apply_fn, params, grad_batch,
                                             self.economics.metric_batch(grad_batch, metric_batch),
                                             self.family, self.metric, need_rho)
            dtype = pytree.scalar_dtype(params)
            lam, rho = state.damping, jnp.full((), jnp.nan, dtype)
            if need_rho:
                lam, rho = _revised_damping(self.rule, state,
                                            mean_nll(self.apply_fn, *grad_batch, self.family),
                                            params, loss, dtype)
            lam = self.rule.current(lam)
            if self.checks:
                _checks.check_damping(self.rule, lam)
            ng, gnorm, sinfo, preconditioner = self._direction(updates, matvec, params,
                                                               grad_batch, state, lam)
            info = _step_info(loss, gnorm, sinfo, rho, lam, 1.0, ng, dtype)
            previous = params if need_rho else None
            return ng, NaturalGradientState(state.count + 1, lam, info, previous,
                                            self._carried(ng), preconditioner)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    def optax(self) -> optax.GradientTransformationExtraArgs:
        """`scale_by()` chained with `optax.scale_by_learning_rate(learning_rate)`: see
        `natural_gradient`."""
        return optax.chain(self.scale_by(), optax.scale_by_learning_rate(self.learning_rate))

    # --- shared parts -----------------------------------------------------------------------

    def _learning_rate(self, count):
        return self.learning_rate(count) if callable(self.learning_rate) else self.learning_rate

    def _check_inputs(self, params, grad_batch, metric_batch):
        """Trace-time shape checks, and with `checks` the run-time value checks of the data."""
        _checks.check_step(self.apply_fn, params, grad_batch, metric_batch, self.family)
        if self.checks:
            _checks.check_batches(self.apply_fn, params, grad_batch, metric_batch, self.family)

    def _direction(self, g, matvec, params, grad_batch, state, lam):
        """(ng, ‖g‖, SolverInfo, the preconditioner's new state) for right-hand side g."""
        economics = self.economics
        preconditioner = economics.refreshed_preconditioner(
            state.preconditioner, self.apply_fn, params, grad_batch, self.family, lam)
        options = functools.partial(economics.solver_options, state.direction, preconditioner)
        if self.checks:
            _checks.check_values(g, "the gradient (the incoming updates)")
        ng, gnorm, sinfo = _natural_direction(g, matvec, lam, self.solve, self.iterations,
                                              self.rtol, options)
        if self.checks:
            _checks.check_values(ng, "the natural-gradient direction")
        return ng, gnorm, sinfo, preconditioner

    def _carried(self, ng):
        """What the state carries for the next warm start: ng, or None."""
        return ng if self.economics.warm_start else None


def _rule(damping, economics):
    """The damping rule in force: `damping` (a rule or a number), else the economics'."""
    return as_damping(economics.damping if damping is None else damping)


def _refuse_family_as_batch(metric_batch):
    if isinstance(metric_batch, Family):
        raise TypeError("metric_batch is an output family: pass it as family=...")


def _initial_state(params, rule, economics) -> NaturalGradientState:
    _checks.check_params(params)
    dtype = pytree.scalar_dtype(params)
    return NaturalGradientState(
        count=jnp.zeros((), jnp.int32),
        damping=jnp.asarray(rule.init(), dtype),
        info=empty_info(dtype),
        direction=economics.initial_direction(params),
        preconditioner=economics.initial_preconditioner(params),
    )


def _step_info(loss, gnorm, sinfo, rho, lam, eta, ng, dtype) -> StepInfo:
    return StepInfo(
        loss=jnp.asarray(loss, dtype),
        grad_norm=gnorm.astype(dtype),
        iterations=sinfo.iterations,
        relative_residual=jnp.asarray(sinfo.relative_residual, dtype),
        flag=sinfo.flag,
        rho=rho,
        damping=jnp.asarray(lam, dtype),
        step_norm=(jnp.abs(eta) * pytree.norm(ng)).astype(dtype),
    )


def _natural_direction(g, matvec, damping, solver, max_iters, rtol, options):
    """ng = (M + λI)⁻¹ g through a solve on g/‖g‖, rescaled after; (ng, ‖g‖, SolverInfo).
    `options(‖g‖ or 1)` gives the solver's further keyword arguments (`SolverEconomics`)."""
    dtype = pytree.scalar_dtype(g)
    gnorm = pytree.norm(g).astype(dtype)
    safe = jnp.where(gnorm > 0, gnorm, jnp.ones_like(gnorm))
    b = pytree.scale(1.0 / safe, g)
    x, sinfo = solver(matvec, b, damping=jnp.asarray(damping, dtype), max_iters=max_iters,
                      rtol=rtol, **options(safe))
    return pytree.scale(safe, x), gnorm, sinfo


def _next_damping(rule, lam, rho):
    """The damping rule's λ after a step with reduction ratio ρ, in λ's dtype."""
    return jnp.asarray(rule.update(lam, rho), lam.dtype)


def _reduction_ratio(loss_fn, new_params, loss, eta, g, ng, dtype):
    """ρ of eq. 30, (L(θ_new) − L(θ)) / (−η g·ng): actual over predicted reduction, for the damping
    rule; costs one forward pass at θ_new."""
    return ((loss_fn(new_params) - loss) / (-eta * pytree.vdot(g, ng))).astype(dtype)


def _applied_reduction_ratio(loss_fn, previous, params, loss, dtype):
    """ρ of eq. 30 for the update d = θ − θ_prev that was applied, (L(θ) − L(θ_prev)) / (∇L(θ_prev)·d),
    L(θ) given; L(θ_prev) and the directional derivative from one `jax.jvp` at θ_prev."""
    d = jax.tree_util.tree_map(lambda a, b: a - b, params, previous)
    loss_prev, predicted = jax.jvp(loss_fn, (previous,), (d,))
    return ((loss - loss_prev) / predicted).astype(dtype)


def _revised_damping(rule, state, loss_fn, params, loss, dtype):
    """(λ, ρ) at a transformation call: ρ of the previous step from the update that was applied,
    and the rule's λ from it; on the first call (no previous step) ρ is NaN and λ unchanged."""
    rho = _applied_reduction_ratio(loss_fn, state.previous_params, params, loss, dtype)
    first = state.count == 0
    rho = jnp.where(first, jnp.nan, rho)
    return jnp.where(first, state.damping, _next_damping(rule, state.damping, rho)), rho


def _transform_metric(apply_fn, params, grad_batch, metric_batch, family, metric, need_loss):
    """(L or NaN, v ↦ M v) for the transformation: L on the gradient batch when ρ needs it or when
    it comes free with a shared linearization, the metric on the metric batch."""
    dtype = pytree.scalar_dtype(params)
    if grad_batch is not None and (need_loss or shares_linearization(grad_batch, metric_batch,
                                                                     metric)):
        loss, _, matvec = loss_gradient_and_metric(apply_fn, params, grad_batch, metric_batch,
                                                   family, metric)
        return jnp.asarray(loss, dtype), matvec
    batch = grad_batch if metric_batch is None else metric_batch
    return jnp.full((), jnp.nan, dtype), metric_operator(apply_fn, params, batch, family, metric)


# --- the plain functions: the settings object made from their arguments -----------------------

def natural_gradient_init(params: PyTree, damping=None, *,
                          economics: SolverEconomics = PAPER) -> NaturalGradientState:
    """The initial state for `natural_gradient_step` (λ from the damping rule or a number; None:
    the economics'), in the parameters' floating dtype; with a warm-starting `economics`, a zero
    direction, with a preconditioner its state (the state's structure is fixed here, so pass the
    economics the steps will use). `NaturalGradient(...).init` is the same, from the one object
    the steps use too."""
    return _initial_state(params, _rule(damping, economics), economics)


def natural_gradient_step(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    state: NaturalGradientState,
    grad_batch: tuple,
    metric_batch=None,
    *,
    family: Optional[Family] = None,
    learning_rate: Union[float, jax.Array],
    damping=None,
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: Optional[int] = None,
    rtol: Union[float, jax.Array] = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
    checks: bool = False,
) -> tuple[PyTree, NaturalGradientState, StepInfo]:
    """One natural-gradient step θ ← θ − η (M + λI)⁻¹ ∇L(θ): `NaturalGradient(apply_fn, family,
    ...).step(params, state, grad_batch, metric_batch)` with the paper's protocol as the default
    economics (`PAPER`: 20 iterations, undamped unless `damping` is given).

    Args:
      apply_fn: `apply_fn(params, inputs) -> r`, the model's pre-activations.
      params: θ (any pytree of float arrays).
      state: from `natural_gradient_init` (holds λ), or the previous step.
      grad_batch, metric_batch: as for `NaturalGradient.step`.
      family, learning_rate, metric, solver, rtol, compute_rho, checks: as for `NaturalGradient`
        (keyword-only; `learning_rate` may be a traced scalar).
      damping: a damping rule or a number (constant λ); None: the economics'. An adaptive rule's λ
        lives in `state` (make it with the same rule); a constant's is the rule's value.
      max_iters: the solver's iteration budget; None: the economics' (`PAPER`: 20).
      economics: the solve's settings (`natgrad.economics.SolverEconomics`), default `PAPER`.

    Returns:
      (new_params, new_state, StepInfo).
    """
    _refuse_family_as_batch(metric_batch)
    settings = NaturalGradient(apply_fn, family, learning_rate=learning_rate, economics=economics,
                               damping=damping, max_iters=max_iters, rtol=rtol, metric=metric,
                               solver=solver, compute_rho=compute_rho, checks=checks)
    return settings.step(params, state, grad_batch, metric_batch)


def scale_by_natural_gradient(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    family: Family,
    *,
    damping=None,
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: Optional[int] = None,
    rtol: Union[float, jax.Array] = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
    checks: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Precondition the incoming updates by the damped metric: u ↦ (M + λI)⁻¹ u (no learning rate).

    The updates it receives are the gradient of the mean NLL, possibly already transformed by
    earlier links of a chain (e.g. `optax.clip_by_global_norm`); it returns the natural-gradient
    direction, to be scaled by later links (`natural_gradient` adds the learning rate). The metric
    is taken at `params`; `update(updates, state, params, metric_batch=..., grad_batch=...)`:

    - `metric_batch`: the metric's batch, `inputs`, `(inputs,)` or `(inputs, targets)` (the
      covariance metrics and the Hessian need targets); None: the gradient batch;
    - `grad_batch`: `(inputs, targets)` of the gradient. Needed when ρ is (Levenberg-Marquardt
      damping or `compute_rho=True`): ρ of the previous step is evaluated on it from the update
      that was actually applied (see the module docstring). When its inputs are the metric
      batch's, L comes from the metric's linearization. A preconditioner in `economics` needs it
      too (per-example gradients need targets).

    With a warm-starting `economics` the state carries the last returned direction (the solve
    starts from warm_start × it, on the scale of the incoming updates).

    Other extra arguments are ignored (a chain passes them to every link). The state is a
    `NaturalGradientState`; its `info` describes the last call. Arguments as for
    `natural_gradient_step`; `NaturalGradient(...).scale_by()` is the same transformation.
    """
    return NaturalGradient(apply_fn, family, economics=economics, damping=damping,
                           max_iters=max_iters, rtol=rtol, metric=metric, solver=solver,
                           compute_rho=compute_rho, checks=checks).scale_by()


def natural_gradient(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    family: Family,
    learning_rate: Union[float, Callable[[jax.Array], jax.Array]],
    *,
    damping=None,
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: Optional[int] = None,
    rtol: Union[float, jax.Array] = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
    checks: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """The natural-gradient step as an optax optimizer: `scale_by_natural_gradient` chained with
    `optax.scale_by_learning_rate(learning_rate)`, so its updates are −η (M + λI)⁻¹ grads and
    `optax.apply_updates` gives `natural_gradient_step`'s parameters (for constant damping;
    ρ is evaluated one call later, see the module docstring).

    `learning_rate` is a float or an optax schedule (a function of the step count). The state is
    the chain's: `(NaturalGradientState, ScaleByScheduleState or EmptyState)`. The extra arguments
    of `update` are those of `scale_by_natural_gradient`. Under `optax.inject_hyperparams` the
    model function is not a schedule: `optax.inject_hyperparams(natgrad.natural_gradient,
    static_args="apply_fn")(apply_fn, family, learning_rate=..., damping=...)` injects the
    learning rate and a constant damping (docs/training_loop.md).
    """
    return NaturalGradient(apply_fn, family, learning_rate=learning_rate, economics=economics,
                           damping=damping, max_iters=max_iters, rtol=rtol, metric=metric,
                           solver=solver, compute_rho=compute_rho, checks=checks).optax()
