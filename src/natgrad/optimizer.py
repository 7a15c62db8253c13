"""The natural-gradient step (paper Algorithm 1), as a plain function and as optax transformations.

One step at θ with learning rate η and damping λ:

1. g = ∇ L(θ), L the mean NLL on the gradient batch (inputs, targets);
2. the metric M at θ on the metric batch — the Fisher/GGN (eq. 8, inputs only: the targets are
   integrated out, so unlabeled inputs work), the uncentred (eq. 13) or centred (eq. 12) covariance
   of per-example gradients, or the Hessian — from **one** linearization;
3. solve (M + λI) x = g/‖g‖ with a truncated Krylov solver (CG or MINRES-QLP, `natgrad.solvers`),
   ng = ‖g‖·x (the original code normalises g before the solve and rescales after); what the solve
   spends (warm start, preconditioner, progress truncation, metric sub-batch) is the step's
   `economics` (`natgrad.economics`; the default is the paper's protocol);
4. θ_new = θ − η·ng;
5. ρ = (L(θ_new) − L(θ)) / (−η g·ng) (eq. 30) on the gradient batch, and the damping rule's update
   of λ (Levenberg-Marquardt: eq. 29-30).

When the metric batch's inputs are the gradient batch's inputs (the same array object), L and g
come from the metric's own linearization: one forward pass for all three.

Two faces, one core (`curvature.loss_gradient_and_metric` for step 1-2, `_natural_direction` for
step 3, `_next_damping` for λ):

- `natural_gradient_step` does all five steps; it knows the applied update −η·ng, so it evaluates ρ
  at once (one extra forward at θ_new), only when the damping rule needs it or `compute_rho=True`.
- `scale_by_natural_gradient` is an optax transformation that returns the direction
  (M + λI)⁻¹·updates (step 3, for whatever gradient the chain hands it, e.g. clipped), and
  `natural_gradient` chains it with `optax.scale_by_learning_rate`. The update actually applied is
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

Everything is jittable: `apply_fn`, `family`, `damping`, `metric`, `solver`, `max_iters` and
`compute_rho` are static (close over them, e.g. with `functools.partial`, before `jax.jit`);
params, state, batches, learning rate and rtol may be traced. Shapes and dtypes of params and
batches are checked at trace time (`natgrad.checks`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from . import checks, pytree
from . import solvers as _solvers
from .curvature import (
    METRICS,
    loss_gradient_and_metric,
    mean_nll,
    metric_kind,
    metric_operator,
    shares_linearization,
)
from .damping import Constant, as_damping
from .economics import PAPER, SolverEconomics

PyTree = Any

__all__ = [
    "StepInfo",
    "NaturalGradientState",
    "natural_gradient_init",
    "natural_gradient_step",
    "scale_by_natural_gradient",
    "natural_gradient",
    "METRICS",  # re-exported from natgrad.curvature, where metric names are resolved
]


class StepInfo(NamedTuple):
    """What one natural-gradient step did (JAX scalars: a jittable pytree).

    loss: L(θ), the mean NLL on the gradient batch before the step (NaN in the optax
        transformation when it had no gradient batch, or needed no loss and shared no
        linearization).
    grad_norm: ‖g‖ (in the transformation: the norm of the incoming updates).
    iterations, relative_residual, flag: the solver's `SolverInfo` (flags in `natgrad.solvers`).
    rho: the reduction ratio of eq. 30 of this step (plain step) or, in the transformation, of the
        previous step, measured at this call; NaN when not computed.
    damping: the λ used for this step's solve.
    step_norm: ‖θ_new − θ‖ = η‖ng‖ (in the transformation: ‖ng‖, the returned direction's norm).
    """

    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    relative_residual: jax.Array
    flag: jax.Array
    rho: jax.Array
    damping: jax.Array
    step_norm: jax.Array


class NaturalGradientState(NamedTuple):
    """The optimizer's state: step count, damping λ, the last step's info, for the optax
    transformation when ρ is needed the parameters of the previous call (else None), and, when
    the economics warm-start the solve, the last direction ng (else None).

    λ is the one for the next solve (plain step) or the one of the last solve (transformation,
    which revises it from the applied update at its next call before solving)."""

    count: jax.Array
    damping: jax.Array
    info: StepInfo
    previous_params: Optional[PyTree] = None
    direction: Optional[PyTree] = None


def _empty_info(dtype) -> StepInfo:
    z = jnp.zeros((), dtype)
    nan = jnp.full((), jnp.nan, dtype)
    zi = jnp.zeros((), jnp.int32)
    return StepInfo(z, z, zi, z, zi, nan, z, z)


def natural_gradient_init(params: PyTree, damping=Constant(0.0), *,
                          economics: SolverEconomics = PAPER) -> NaturalGradientState:
    """The initial state for `natural_gradient_step` (λ from the damping rule, or a number), with
    λ in the parameters' floating dtype; with a warm-starting `economics`, a zero direction (the
    state's structure is fixed here, so pass the economics the steps will use)."""
    rule = as_damping(damping)
    checks.check_params(params)
    dtype = pytree.scalar_dtype(params)
    return NaturalGradientState(
        count=jnp.zeros((), jnp.int32),
        damping=jnp.asarray(rule.init(), dtype),
        info=_empty_info(dtype),
        direction=economics.initial_direction(params),
    )


def _solver(solver) -> Callable:
    if callable(solver):
        return solver
    if solver == "cg":
        return _solvers.cg
    if solver in ("minres_qlp", "minres-qlp", "minresqlp"):
        return _solvers.minres_qlp
    raise ValueError(f"unknown solver {solver!r}: 'cg', 'minres_qlp' or a callable")


def _needs_rho(rule, compute_rho) -> bool:
    return bool(getattr(rule, "needs_rho", True)) if compute_rho is None else bool(compute_rho)


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


def _carried_direction(economics, ng):
    """What the state carries for the next warm start: ng, or None."""
    return ng if economics.warm_start else None


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


def natural_gradient_step(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    state: NaturalGradientState,
    grad_batch: tuple,
    metric_batch=None,
    family=None,
    *,
    learning_rate: Union[float, jax.Array],
    damping=Constant(0.0),
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: int = 20,
    rtol: Union[float, jax.Array] = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
) -> tuple[PyTree, NaturalGradientState, StepInfo]:
    """One natural-gradient step θ ← θ − η (M + λI)⁻¹ ∇L(θ).

    Args:
      apply_fn: `apply_fn(params, inputs) -> r`, the model's pre-activations.
      params: θ (any pytree of float arrays).
      state: from `natural_gradient_init` (holds λ), or the previous step.
      grad_batch: `(inputs, targets)`: L and g are taken on it.
      metric_batch: the metric's batch: `inputs`, `(inputs,)` or `(inputs, targets)`; the Fisher
        needs inputs only (unlabeled data work), the covariance metrics and the Hessian need targets.
        None: the gradient batch.
      family: the output family (`natgrad.families`).
      learning_rate: η (a float or a traced scalar).
      damping: a damping rule (`natgrad.damping.Constant`, `LevenbergMarquardt`) or a number
        (constant λ); λ itself lives in `state`.
      metric: "fisher" (= "ggn"), "empirical_fisher" (uncentred covariance, eq. 13), "covariance"
        (centred, eq. 12) or "hessian".
      solver: "cg", "minres_qlp", or a callable with their signature.
      max_iters, rtol: the solver's truncation (the paper: 20 and 1e-4).
      compute_rho: compute ρ (one extra forward pass); default: when the damping rule needs it.
      economics: the solve's economics (`natgrad.economics.SolverEconomics`: warm start,
        preconditioner, progress truncation, metric sub-batch); default `PAPER`, none of them.
        A warm start needs `state` from `natural_gradient_init(..., economics=economics)`.

    Returns:
      (new_params, new_state, StepInfo).
    """
    if family is None:
        raise TypeError("natural_gradient_step needs an output family")
    metric_kind(metric)  # reject an unknown name before tracing anything
    rule = as_damping(damping)
    solve = _solver(solver)
    economics.check_solver(solve)
    checks.check_step(apply_fn, params, grad_batch, metric_batch, family)

    loss, g, matvec = loss_gradient_and_metric(apply_fn, params, grad_batch,
                                               economics.metric_batch(grad_batch, metric_batch),
                                               family, metric)
    lam = state.damping
    options = functools.partial(economics.solver_options, apply_fn, params, grad_batch, family,
                                lam, state.direction)
    ng, gnorm, sinfo = _natural_direction(g, matvec, lam, solve, max_iters, rtol, options)

    dtype = pytree.scalar_dtype(params)
    eta = jnp.asarray(learning_rate, dtype)
    new_params = jax.tree_util.tree_map(lambda p, d: (p - eta * d).astype(p.dtype), params, ng)
    if _needs_rho(rule, compute_rho):
        x, t = grad_batch
        rho = _reduction_ratio(mean_nll(apply_fn, x, t, family), new_params, loss, eta, g, ng, dtype)
    else:
        rho = jnp.full((), jnp.nan, dtype)
    new_lam = _next_damping(rule, lam, rho)

    info = _step_info(loss, gnorm, sinfo, rho, lam, eta, ng, dtype)
    new_state = NaturalGradientState(state.count + 1, new_lam, info,
                                     direction=_carried_direction(economics, ng))
    return new_params, new_state, info


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


def scale_by_natural_gradient(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    family,
    *,
    damping=Constant(0.0),
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: int = 20,
    rtol: float = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
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
    `natural_gradient_step`.
    """
    if family is None:
        raise TypeError("scale_by_natural_gradient needs an output family")
    metric_kind(metric)  # reject an unknown name when the transformation is built
    rule = as_damping(damping)
    solve = _solver(solver)
    economics.check_solver(solve)
    need_rho = _needs_rho(rule, compute_rho)

    def init_fn(params):
        state = natural_gradient_init(params, rule, economics=economics)
        return state._replace(previous_params=params) if need_rho else state

    def update_fn(updates, state, params=None, *, metric_batch=None, grad_batch=None, **extra):
        del extra
        if params is None:
            raise ValueError("scale_by_natural_gradient needs params (the metric is taken at θ)")
        if metric_batch is None and grad_batch is None:
            raise ValueError("scale_by_natural_gradient needs metric_batch=inputs or "
                             "(inputs, targets) (or grad_batch=(inputs, targets))")
        if need_rho and grad_batch is None:
            raise ValueError("ρ (Levenberg-Marquardt damping) needs grad_batch=(inputs, targets)")
        checks.check_step(apply_fn, params, grad_batch, metric_batch, family)
        checks.check_updates(updates, params)
        loss, matvec = _transform_metric(apply_fn, params, grad_batch,
                                         economics.metric_batch(grad_batch, metric_batch), family,
                                         metric, need_rho)
        dtype = pytree.scalar_dtype(params)
        lam, rho = state.damping, jnp.full((), jnp.nan, dtype)
        if need_rho:
            lam, rho = _revised_damping(rule, state, mean_nll(apply_fn, *grad_batch, family),
                                        params, loss, dtype)
        options = functools.partial(economics.solver_options, apply_fn, params, grad_batch,
                                    family, lam, state.direction)
        ng, gnorm, sinfo = _natural_direction(updates, matvec, lam, solve, max_iters, rtol, options)
        info = _step_info(loss, gnorm, sinfo, rho, lam, 1.0, ng, dtype)
        previous = params if need_rho else None
        return ng, NaturalGradientState(state.count + 1, lam, info, previous,
                                        _carried_direction(economics, ng))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def natural_gradient(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    family,
    learning_rate: Union[float, Callable[[jax.Array], jax.Array]],
    *,
    damping=Constant(0.0),
    metric: str = "fisher",
    solver: Union[str, Callable] = "cg",
    max_iters: int = 20,
    rtol: float = 1e-4,
    compute_rho: Optional[bool] = None,
    economics: SolverEconomics = PAPER,
) -> optax.GradientTransformationExtraArgs:
    """The natural-gradient step as an optax optimizer: `scale_by_natural_gradient` chained with
    `optax.scale_by_learning_rate(learning_rate)`, so its updates are −η (M + λI)⁻¹ grads and
    `optax.apply_updates` gives `natural_gradient_step`'s parameters (for constant damping;
    ρ is evaluated one call later, see the module docstring).

    `learning_rate` is a float or an optax schedule (a function of the step count). The state is
    the chain's: `(NaturalGradientState, ScaleByScheduleState or EmptyState)`. The extra arguments
    of `update` are those of `scale_by_natural_gradient`.
    """
    return optax.chain(
        scale_by_natural_gradient(apply_fn, family, damping=damping, metric=metric, solver=solver,
                                  max_iters=max_iters, rtol=rtol, compute_rho=compute_rho,
                                  economics=economics),
        optax.scale_by_learning_rate(learning_rate),
    )
