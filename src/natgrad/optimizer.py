"""The natural-gradient step (paper Algorithm 1), as a plain function and as an optax transformation.

One step at θ with learning rate η and damping λ:

1. g = ∇ L(θ), L the mean NLL on the gradient batch (inputs, targets);
2. the metric M at θ on the metric batch — the Fisher/GGN (eq. 8, inputs only: the targets are
   integrated out, so unlabeled inputs work), the uncentred (eq. 13) or centred (eq. 12) covariance
   of per-example gradients, or the Hessian — from **one** linearization;
3. solve (M + λI) x = g/‖g‖ with a truncated Krylov solver (CG or MINRES-QLP, `natgrad.solvers`),
   ng = ‖g‖·x (the original code normalises g before the solve and rescales after);
4. θ_new = θ − η·ng;
5. ρ = (L(θ_new) − L(θ)) / (−η g·ng) (eq. 30) on the gradient batch, and the damping rule's update
   of λ (Levenberg-Marquardt: eq. 29-30).

ρ costs one extra forward pass (L at θ_new), so it is computed only when the damping rule needs it
(`LevenbergMarquardt`) or when `compute_rho=True`; otherwise `StepInfo.rho` is NaN.

When the metric batch's inputs are the gradient batch's inputs (the same array object, as when the
caller passes the same minibatch twice), the gradient is taken from the metric's linearization
(one forward pass for both) instead of a separate `value_and_grad`.

Everything is jittable: `apply_fn`, `family`, `damping`, `metric`, `solver`, `max_iters` and
`compute_rho` are static (close over them, e.g. with `functools.partial`, before `jax.jit`);
params, state, batches, learning rate and rtol may be traced.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from . import pytree
from . import solvers as _solvers
from .curvature import METRICS, loss_gradient_and_metric, mean_nll, metric_kind, metric_operator
from .damping import Constant, as_damping

PyTree = Any

__all__ = [
    "StepInfo",
    "NaturalGradientState",
    "natural_gradient_init",
    "natural_gradient_step",
    "natural_gradient",
    "METRICS",  # re-exported from natgrad.curvature, where metric names are resolved
]


class StepInfo(NamedTuple):
    """What one natural-gradient step did (JAX scalars: a jittable pytree).

    loss: L(θ), the mean NLL on the gradient batch before the step.
    grad_norm: ‖g‖.
    iterations, relative_residual, flag: the solver's `SolverInfo` (flags in `natgrad.solvers`).
    rho: the reduction ratio of eq. 30, (L(θ_new) − L(θ)) / (−η g·ng); NaN when not computed
        (constant damping without `compute_rho=True`).
    damping: the λ used for this step.
    step_norm: ‖θ_new − θ‖ = η‖ng‖.
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
    """The optimizer's state: step count, current damping λ, and the last step's info."""

    count: jax.Array
    damping: jax.Array
    info: StepInfo


def _empty_info(dtype) -> StepInfo:
    z = jnp.zeros((), dtype)
    nan = jnp.full((), jnp.nan, dtype)
    zi = jnp.zeros((), jnp.int32)
    return StepInfo(z, z, zi, z, zi, nan, z, z)


def natural_gradient_init(params: PyTree, damping=Constant(0.0)) -> NaturalGradientState:
    """The initial state for `natural_gradient_step` (λ from the damping rule, or a number), with
    λ in the parameters' floating dtype."""
    rule = as_damping(damping)
    dtype = pytree.scalar_dtype(params)
    return NaturalGradientState(
        count=jnp.zeros((), jnp.int32),
        damping=jnp.asarray(rule.init(), dtype),
        info=_empty_info(dtype),
    )


def _solver(solver) -> Callable:
    if callable(solver):
        return solver
    if solver == "cg":
        return _solvers.cg
    if solver in ("minres_qlp", "minres-qlp", "minresqlp"):
        return _solvers.minres_qlp
    raise ValueError(f"unknown solver {solver!r}: 'cg', 'minres_qlp' or a callable")


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


def _natural_direction(g, matvec, damping, solver, max_iters, rtol):
    """ng = (M + λI)⁻¹ g through a solve on g/‖g‖, rescaled after; (ng, ‖g‖, SolverInfo)."""
    dtype = pytree.scalar_dtype(g)
    gnorm = pytree.norm(g).astype(dtype)
    safe = jnp.where(gnorm > 0, gnorm, jnp.ones_like(gnorm))
    b = pytree.scale(1.0 / safe, g)
    x, sinfo = solver(matvec, b, damping=jnp.asarray(damping, dtype), max_iters=max_iters, rtol=rtol)
    return pytree.scale(safe, x), gnorm, sinfo


def _reduction_ratio(loss_fn, new_params, loss, eta, g, ng, dtype):
    """ρ of eq. 30, (L(θ_new) − L(θ)) / (−η g·ng): actual over predicted reduction, for the damping
    rule; costs one forward pass at θ_new."""
    return ((loss_fn(new_params) - loss) / (-eta * pytree.vdot(g, ng))).astype(dtype)


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

    Returns:
      (new_params, new_state, StepInfo).
    """
    if family is None:
        raise TypeError("natural_gradient_step needs an output family")
    metric_kind(metric)  # reject an unknown name before tracing anything
    rule = as_damping(damping)
    solve = _solver(solver)
    if compute_rho is None:
        compute_rho = bool(getattr(rule, "needs_rho", True))

    loss, g, matvec = loss_gradient_and_metric(apply_fn, params, grad_batch, metric_batch, family,
                                               metric)
    lam = state.damping
    ng, gnorm, sinfo = _natural_direction(g, matvec, lam, solve, max_iters, rtol)

    dtype = pytree.scalar_dtype(params)
    eta = jnp.asarray(learning_rate, dtype)
    new_params = jax.tree_util.tree_map(lambda p, d: (p - eta * d).astype(p.dtype), params, ng)
    if compute_rho:
        x, t = grad_batch
        rho = _reduction_ratio(mean_nll(apply_fn, x, t, family), new_params, loss, eta, g, ng, dtype)
    else:
        rho = jnp.full((), jnp.nan, dtype)
    new_lam = jnp.asarray(rule.update(lam, rho), state.damping.dtype)

    info = _step_info(loss, gnorm, sinfo, rho, lam, eta, ng, dtype)
    return new_params, NaturalGradientState(state.count + 1, new_lam, info), info


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
) -> optax.GradientTransformationExtraArgs:
    """The natural-gradient step as an optax transformation.

    `update(grads, state, params, *, metric_batch, grad_batch=None, loss=None)` turns the gradient
    `grads` (of the mean NLL on the gradient batch) into the update `−η (M + λI)⁻¹ grads`;
    `optax.apply_updates(params, updates)` then gives the same parameters as
    `natural_gradient_step`. Extra arguments:

    - `metric_batch`: the metric's batch (`inputs`, `(inputs,)` or `(inputs, targets)`); for the
      covariance metrics and the Hessian, the targets are needed;
    - `grad_batch`: `(inputs, targets)` of the gradient, needed for ρ (Levenberg-Marquardt damping,
      or `compute_rho=True`), and used as the metric batch when `metric_batch` is None;
    - `loss`: L(θ) on the gradient batch, if already known (else recomputed when ρ needs it).

    `learning_rate` may be an optax schedule (a function of the step count). The state is a
    `NaturalGradientState`; its `info` is the last step's `StepInfo`.
    """
    metric_kind(metric)  # reject an unknown name when the transformation is built
    rule = as_damping(damping)
    solve = _solver(solver)
    need_rho = bool(getattr(rule, "needs_rho", True)) if compute_rho is None else compute_rho

    def init_fn(params):
        return natural_gradient_init(params, rule)

    def update_fn(updates, state, params=None, *, metric_batch=None, grad_batch=None, loss=None,
                  **extra_args):
        del extra_args
        if params is None:
            raise ValueError("natural_gradient needs params (the metric is taken at θ)")
        if metric_batch is None:
            if grad_batch is None:
                raise ValueError("natural_gradient needs metric_batch (or grad_batch)")
            metric_batch = grad_batch
        matvec = metric_operator(apply_fn, params, metric_batch, family, metric)

        dtype = pytree.scalar_dtype(params)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        eta = jnp.asarray(lr, dtype)
        lam = state.damping
        ng, gnorm, sinfo = _natural_direction(updates, matvec, lam, solve, max_iters, rtol)
        new_updates = jax.tree_util.tree_map(lambda d, p: (-eta * d).astype(p.dtype), ng, params)
        nan = jnp.full((), jnp.nan, dtype)
        loss0 = nan if loss is None else jnp.asarray(loss, dtype)
        rho = nan
        if need_rho:
            if grad_batch is None:
                raise ValueError("ρ (Levenberg-Marquardt damping) needs grad_batch=(inputs, targets)")
            x, t = grad_batch
            f = mean_nll(apply_fn, x, t, family)
            if loss is None:
                loss0 = jnp.asarray(f(params), dtype)
            new_params = optax.apply_updates(params, new_updates)
            rho = _reduction_ratio(f, new_params, loss0, eta, updates, ng, dtype)
        new_lam = jnp.asarray(rule.update(lam, rho), state.damping.dtype)
        info = _step_info(loss0, gnorm, sinfo, rho, lam, eta, ng, dtype)
        return new_updates, NaturalGradientState(state.count + 1, new_lam, info)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
