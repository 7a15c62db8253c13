"""The natural-gradient step (paper Algorithm 1) and its settings object, `NaturalGradient`.

One step at θ with damping λ:

1. L and g = ∇L(θ) on the gradient batch (inputs, targets);
2. the metric M at θ on the metric batch (Fisher/GGN, eq. 8, inputs only, so unlabeled inputs
   work; the uncentred or centred covariance of per-example gradients, eq. 13/12; the Hessian),
   from **one** linearization (`curvature.loss_gradient_and_metric`; one forward pass for all
   three when the two batches share their inputs);
3. ng ≈ (M + λI)⁻¹g by a truncated Krylov solve on g/‖g‖, rescaled after (the original code's
   normalisation), spending what the `economics` say (`natgrad.economics`);
4. θ_new = θ + δ, δ = −α·ng + μ·δ₀: the fixed rate α = η, or α, μ from the damped quadratic model
   (`natgrad.step_control`);
5. ρ (eq. 30's first-order one or the quadratic model's), rejection of a step that does not lower
   the loss when asked, and the damping rule's next λ.

`NaturalGradient` (frozen, hashable: a static argument of `jax.jit`) makes the state (`init`) and
the steps, so the two cannot disagree; a state also records its damping rule, and a step with
another is refused. `natgrad.functional` has the same step as plain functions (the paper's
protocol by default).

The optax faces, `scale_by()` and `optax()`, return the direction (M + λI)⁻¹u for whatever update
u the chain hands them; the update applied is the chain's, unknown when they return. So ρ of step
t is evaluated at call t+1 from the applied d = θ_{t+1} − θ_t (θ_t kept in the state, only when ρ
is needed): ρ_t = (L(θ_{t+1}) − L(θ_t)) / (∇L(θ_t)·d) on call t+1's gradient batch, L(θ_t) and
∇L(θ_t)·d from one `jax.jvp`, and λ is updated before that call's solve (the first call has ρ NaN).
The state keeps a structure fixed at `init`, for `lax.scan` loops. They take a fixed rate and eq.
30's ρ only: the adaptive step, the quadratic ρ and rejection need the applied update.

Everything is jittable (params, state, batches, the rate, a constant damping and rtol may be
traced); impossible settings are refused when made, shapes at trace time, values with `checks`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import optax

from . import checks as _checks
from . import lagged_rho, pytree, stalls
from . import solvers as _solvers
from . import step_control as _control
from .curvature import METRICS, loss_gradient_and_metric, mean_nll, metric_kind
from .damping import adapts, next_damping
from .economics import RECOMMENDED, SolverEconomics
from .families import Family
from .state import NaturalGradientState, StepInfo, check_state, initial_state, make_step_info

PyTree = Any

__all__ = [
    "NaturalGradient",
    "StepInfo",
    "NaturalGradientState",
    "METRICS",  # re-exported from natgrad.curvature, where metric names are resolved
]


@dataclasses.dataclass(frozen=True)
class NaturalGradient:
    """The natural-gradient optimizer's settings, made once: `init(params)` and
    `step(params, state, grad_batch, metric_batch=None)`, or the optax faces `scale_by()` and
    `optax()`. Frozen and hashable (a static argument of `jax.jit`; `jax.jit(ng.step)` works).

    apply_fn: `apply_fn(params, inputs) -> r`, the model's pre-activations.
    family: the output family (`natgrad.families`).
    learning_rate: "adaptive" (default): α chosen every step by the exact damped quadratic model
        (Martens & Grosse 2015 §7; `natgrad.step_control`); or a fixed η, a number ≥ 0 or an
        optax-style schedule of the step count.
    momentum: μ of the previous update δ₀ chosen with α (one metric product more); None
        (default): with the adaptive rate.
    rho: how ρ is measured: "first_order" (eq. 30, the paper's) or "quadratic" (actual over the
        damped quadratic model's predicted reduction, Martens 2010; −∞ on a rising loss); None
        (default): "quadratic" with the adaptive rate, "first_order" with a fixed one (a fixed
        η ≥ 2 makes the model predict no decrease).
    reject: a step that does not lower the loss on the gradient batch (or whose ρ is not > 0) is
        not applied: θ stays, λ rises by the rule, `StepInfo.rejected` is 1. None (default): on
        in `step` unless `compute_rho=False`; the optax faces cannot reject (True is refused there).
    economics: the solve's settings (`natgrad.economics`), default `RECOMMENDED`: 5 CG iterations
        from a warm start, the metric on a tenth of the batch, Levenberg-Marquardt damping. It is
        the one home of the damping rule and the iteration budget.
    damping, max_iters: given here, they replace the economics' damping rule (a rule, or a
        number for constant λ) and iteration budget (init-only: the object keeps one economics).
    rtol: the solver's relative-residual tolerance (≥ 0).
    metric: "fisher" (= "ggn"), "empirical_fisher" (eq. 13), "covariance" (eq. 12) or "hessian".
    solver: "cg", "minres_qlp", or a callable with their signature.
    compute_rho: compute ρ (one extra forward pass); None: when the damping rule or rejection
        needs it.
    checks: run-time checks (finite data, targets in the family's range, finite gradient and
        direction, a traced damping or learning rate ≥ 0) as `jax.experimental.checkify` checks:
        run the jitted step or loop under `checkify.checkify` and call `err.throw()`.
    on_stall: what a run of `natgrad.stalls.STALL_STEPS` stalled steps (a non-finite loss, or
        an adaptive λ ≥ `STALL_DAMPING`) does on the host: "warn" (default, a `StallWarning`
        naming the likely causes), "raise" (a `StallError`) or None (`StepInfo.stall_run` only).
    """

    apply_fn: Callable[[PyTree, Any], jax.Array]
    family: Family
    _: dataclasses.KW_ONLY
    learning_rate: Union[float, str, Callable[[jax.Array], jax.Array]] = _control.ADAPTIVE
    momentum: Optional[bool] = None
    rho: Optional[str] = None
    reject: Optional[bool] = None
    economics: SolverEconomics = RECOMMENDED
    damping: dataclasses.InitVar[Any] = None
    max_iters: dataclasses.InitVar[Optional[int]] = None
    rtol: Union[float, jax.Array] = 1e-4
    metric: str = "fisher"
    solver: Union[str, Callable] = "cg"
    compute_rho: Optional[bool] = None
    checks: bool = False
    on_stall: Optional[str] = "warn"

    def __post_init__(self, damping, max_iters):
        _checks.check_family(self.family)
        stalls.check_on_stall(self.on_stall)
        if not isinstance(self.economics, SolverEconomics):
            raise TypeError(f"economics must be a natgrad.economics.SolverEconomics, got "
                            f"{self.economics!r}")
        # a bad damping fails here; the object keeps one economics
        object.__setattr__(self, "economics", self.economics.overridden(damping, max_iters))
        metric_kind(self.metric)
        _solvers.check_truncation(self.iterations, self.rtol)
        _control.check_step_control(self.learning_rate, self.momentum, self.rho, self.reject)
        if not (callable(self.learning_rate) or self.adaptive):  # a schedule: checks=True
            _solvers.check_non_negative("learning_rate", self.learning_rate)
            if not isinstance(self.learning_rate, jax.Array) and self.learning_rate == 0:
                raise ValueError("learning_rate=0 never moves the parameters (every step would "
                                 "be rejected): give a rate > 0 or 'adaptive'")
        self.economics.check_solver(self.solve)
        if self.compute_rho is False and (getattr(self.rule, "needs_rho", True) or self.reject):
            needs = "rejection" if self.reject else f"the damping rule {self.rule!r}"
            raise ValueError(f"compute_rho=False, but {needs} needs ρ")

    @property
    def rule(self):
        """The damping rule in force (the economics')."""
        return self.economics.damping

    @property
    def iterations(self) -> int:
        """The iteration budget in force (the economics')."""
        return self.economics.max_iters

    @property
    def solve(self) -> Callable:
        """The solver function."""
        return _solvers.resolve_solver(self.solver)

    @property
    def adaptive(self) -> bool:
        """Whether the step size is the quadratic model's (`learning_rate="adaptive"`)."""
        return isinstance(self.learning_rate, str)

    @property
    def needs_rho(self) -> bool:
        """Whether a step computes ρ: `compute_rho`, else when the damping rule or rejection
        needs it."""
        if self.compute_rho is not None:
            return bool(self.compute_rho)
        return bool(getattr(self.rule, "needs_rho", True)) or self.rejects

    @property
    def with_momentum(self) -> bool:
        """Whether `step` chooses μ: `momentum`, else with the adaptive rate."""
        return self.adaptive if self.momentum is None else self.momentum

    @property
    def rho_model(self) -> str:
        """How `step` measures ρ: `rho`, else "quadratic" with the adaptive rate, "first_order"
        with a fixed one."""
        if self.rho is not None:
            return self.rho
        return "quadratic" if self.adaptive else "first_order"

    @property
    def rejects(self) -> bool:
        """Whether `step` rejects a step that does not lower the loss: `reject`, else unless
        `compute_rho=False`."""
        return self.reject if self.reject is not None else self.compute_rho is not False

    # --- the plain step ---------------------------------------------------------------------

    def init(self, params: PyTree) -> NaturalGradientState:
        """The initial state: λ from the damping rule in the parameters' floating dtype, the zero
        direction and the preconditioner's state that the economics carry, with momentum a zero
        previous update, and the rule's tag (a step with another rule is refused)."""
        return initial_state(params, self.economics, momentum=self.with_momentum)

    def step(self, params: PyTree, state: NaturalGradientState, grad_batch: tuple,
             metric_batch=None) -> tuple[PyTree, NaturalGradientState, StepInfo]:
        """One step θ ← θ − α (M + λI)⁻¹ ∇L(θ) + μ δ₀: (new_params, new_state, StepInfo).

        grad_batch: `(inputs, targets)`: L and g are taken on it.
        metric_batch: the metric's batch: `inputs`, `(inputs,)` or `(inputs, targets)`; the Fisher
          needs inputs only (unlabeled data work), the covariance metrics and the Hessian need
          targets. None: the gradient batch.
        """
        _checks.refuse_family_as_batch(metric_batch)
        self._check_inputs(params, grad_batch, metric_batch)
        economics, rule = self.economics, self.rule
        check_state(state, rule, self.with_momentum, params)
        loss, g, matvec = loss_gradient_and_metric(
            self.apply_fn, params, grad_batch, economics.metric_batch(grad_batch, metric_batch),
            self.family, self.metric)
        lam = rule.current(state.damping)
        dtype = pytree.scalar_dtype(params)
        if self.checks:
            _checks.check_damping(rule, lam)
        ng, gnorm, sinfo, preconditioner = self._direction(g, matvec, params, grad_batch, state,
                                                           lam)
        size = self._step_size(state, g, ng, gnorm, sinfo, pytree.damped(matvec, lam), dtype)
        previous = state.update if self.with_momentum else None
        new_params = _control.moved(params, ng, previous, size)
        rho = jnp.full((), jnp.nan, dtype)
        rejected = jnp.zeros((), bool)
        if self.needs_rho:
            # ρ only where the rule adapts λ, unless rejection needs the new loss at every step
            when = (adapts(rule, state.count)
                    if not self.rejects and getattr(rule, "every", 1) > 1 else None)
            new_loss = _control.loss_after(mean_nll(self.apply_fn, *grad_batch, self.family),
                                           new_params, loss, when)
            rho = _control.reduction_ratio(self.rho_model, new_loss, loss, size, dtype)
            if when is not None:  # NaN where not measured
                rho = jnp.where(when, rho, jnp.nan).astype(dtype)
        judged = rho
        if self.rejects:
            rejected = ~_control.accepted(new_loss, loss, rho)
            new_params = _select(rejected, params, new_params)
            judged = jnp.where(rejected, -jnp.inf, rho).astype(dtype)
        run = self._stall_run(state, lam, loss)
        info = make_step_info(loss, gnorm, sinfo, rho, lam, size, ng, previous, rejected, run,
                              dtype)
        new_state = NaturalGradientState(
            state.count + 1, next_damping(rule, lam, judged, state.count), info,
            direction=self._carried(ng), preconditioner=preconditioner,
            update=None if previous is None else _select(
                rejected, previous, _control.moved(pytree.zeros_like(params), ng, previous, size)),
            rule=state.rule)
        return new_params, new_state, info

    def _step_size(self, state, g, ng, gnorm, sinfo, damped_op, dtype) -> _control.StepSize:
        """α, μ and the model's predictions: the fixed rate, or the quadratic model's choice;
        ngᵀ(M + λI)ng only where the quadratic ρ or the adaptive rate needs it."""
        wants_curvature = self.adaptive or (self.rho_model == "quadratic" and self.needs_rho)
        curvature = None
        if wants_curvature:
            curvature = _control.curvature_along(
                ng, g, gnorm, sinfo.model, damped_op,
                _solvers.solver_traits(self.solve).reports_model).astype(dtype)
        if self.adaptive:
            return _control.adaptive_step(g, ng, curvature,
                                          state.update if self.with_momentum else None,
                                          damped_op)
        eta = jnp.asarray(self._learning_rate(state.count), dtype)
        if self.checks:
            _checks.check_scalar(eta, "learning_rate")
        return _control.fixed_step(eta, g, ng, curvature)

    # --- the optax faces --------------------------------------------------------------------

    def scale_by(self) -> optax.GradientTransformationExtraArgs:
        """The optax transformation u ↦ (M + λI)⁻¹ u (no learning rate): see
        `scale_by_natural_gradient`. The lagged first-order ρ only, no momentum or rejection (the
        chain, not the transformation, applies the update): those given explicitly are refused."""
        if self.momentum or self.reject or self.rho == "quadratic":
            raise ValueError("the optax transformation takes rho='first_order', no momentum and "
                             "no rejection (it does not know the update the chain applies): use "
                             "NaturalGradient.step for the adaptive step, the quadratic ρ or "
                             "rejection")
        need_rho = (bool(self.compute_rho) if self.compute_rho is not None  # the rule's ρ only
                    else bool(getattr(self.rule, "needs_rho", True)))

        def init_fn(params):  # no momentum here: the structure stays the one update_fn returns
            state = initial_state(params, self.economics)
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
            check_state(state, self.rule, False, params)
            loss, matvec = lagged_rho.transform_metric(self.apply_fn, params, grad_batch,
                                             self.economics.metric_batch(grad_batch, metric_batch),
                                             self.family, self.metric, need_rho)
            dtype = pytree.scalar_dtype(params)
            lam, rho = state.damping, jnp.full((), jnp.nan, dtype)
            if need_rho:
                lam, rho = lagged_rho.revised_damping(self.rule, state,
                                            mean_nll(self.apply_fn, *grad_batch, self.family),
                                            params, loss, dtype)
            lam = self.rule.current(lam)
            if self.checks:
                _checks.check_damping(self.rule, lam)
            ng, gnorm, sinfo, preconditioner = self._direction(updates, matvec, params,
                                                               grad_batch, state, lam)
            one = jnp.ones((), dtype)
            size = _control.StepSize(one, jnp.zeros((), dtype), jnp.nan, jnp.nan)
            never = jnp.zeros((), bool)
            info = make_step_info(loss, gnorm, sinfo, rho, lam, size, ng, None, never,
                                  self._stall_run(state, lam, loss), dtype)
            previous = params if need_rho else None
            return ng, NaturalGradientState(state.count + 1, lam, info, previous,
                                            self._carried(ng), preconditioner, rule=state.rule)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    def optax(self) -> optax.GradientTransformationExtraArgs:
        """`scale_by()` chained with `optax.scale_by_learning_rate(learning_rate)`: see
        `natural_gradient`. Needs a fixed learning rate (a number or a schedule)."""
        if self.adaptive:
            raise ValueError("optax() needs a fixed learning_rate (a number or a schedule; the "
                             "adaptive rate needs the step's model: use NaturalGradient.step)")
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

    def _stall_run(self, state, lam, loss):
        """`StepInfo.stall_run` of this step, reported on the host as `on_stall` says."""
        run = stalls.stall_run(state.info.stall_run, loss, lam,
                               bool(getattr(self.rule, "needs_rho", True)))
        stalls.report_stall(self.on_stall, run, lam, loss)
        return run

    def _carried(self, ng):
        """What the state carries for the next warm start: ng, or None."""
        return ng if self.economics.warm_start else None


def _select(reject, old, new):
    """`old` where `reject`, else `new`, leaf by leaf (a select: no branch under jit)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(reject, a, b), old, new)


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
