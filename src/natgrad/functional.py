"""The paper's step as plain functions and optax optimizers: thin wrappers that make a
`natgrad.NaturalGradient` from their arguments.

Their one default is `PAPER_SETTINGS`, the paper's protocol: `PAPER` economics (20 iterations from
zero, the full metric batch, Levenberg-Marquardt damping floored at 0.1 unless `damping` is
given), ρ against the first-order prediction (eq. 30), every step applied, stalls reported in
`StepInfo.stall_run` only (`on_stall=None`: no host callback, so jax's persistent compilation
cache keeps the step; `on_stall="warn"` adds the warning). Any of `NaturalGradient`'s keywords overrides it (e.g.
`economics=RECOMMENDED, reject=True`); `NaturalGradient` itself defaults to the recommended
settings.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import jax
import optax

from .checks import refuse_family_as_batch
from .economics import PAPER
from .families import Family
from .optimizer import NaturalGradient
from .state import initial_state
from .state import NaturalGradientState, StepInfo

PyTree = Any

__all__ = ["PAPER_SETTINGS", "natural_gradient_init", "natural_gradient_step",
           "scale_by_natural_gradient", "natural_gradient"]

#: The plain functions' defaults: the paper's protocol.
PAPER_SETTINGS = {"economics": PAPER, "momentum": False, "rho": "first_order", "reject": False,
                  "on_stall": None}


def _settings(apply_fn, family, settings) -> NaturalGradient:
    return NaturalGradient(apply_fn, family, **{**PAPER_SETTINGS, **settings})


def _spelled_out(factory):
    """`factory` with its `**settings` written out as `NaturalGradient`'s keywords (defaults
    `PAPER_SETTINGS`'s, else the class's) in its signature, so that `optax.inject_hyperparams`,
    which reads the optax factories' signatures, sees every setting; the keywords are still one
    list, the class's."""
    own = [p for p in inspect.signature(factory).parameters.values()
           if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in own} | {"apply_fn", "family"}
    extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=inspect.Parameter.empty,
                       default=PAPER_SETTINGS.get(p.name, p.default))
             for p in inspect.signature(NaturalGradient).parameters.values()
             if p.name not in taken]
    factory.__signature__ = inspect.signature(factory).replace(parameters=own + extra)
    return factory


def natural_gradient_init(params: PyTree, damping=None, *, economics=PAPER,
                          momentum: bool = False) -> NaturalGradientState:
    """The initial state for `natural_gradient_step`, made for the damping rule (or number; None:
    the economics') and the economics the steps will use (they fix the state's structure: a
    warm start's direction, a preconditioner's state; `momentum=True` the previous update). A
    step given another damping rule than the state's is refused."""
    return initial_state(params, economics.overridden(damping), momentum=momentum)


def natural_gradient_step(apply_fn: Callable[[PyTree, Any], jax.Array], params: PyTree,
                          state: NaturalGradientState, grad_batch: tuple, metric_batch=None, *,
                          family: Optional[Family] = None, learning_rate,
                          **settings) -> tuple[PyTree, NaturalGradientState, StepInfo]:
    """One natural-gradient step: `NaturalGradient(apply_fn, family, learning_rate=...,
    **settings).step(params, state, grad_batch, metric_batch)`, with `PAPER_SETTINGS` as the
    defaults (keyword-only; `learning_rate` may be a traced scalar, as may a constant damping
    and rtol). Returns (new_params, new_state, StepInfo)."""
    refuse_family_as_batch(metric_batch)
    return _settings(apply_fn, family, {**settings, "learning_rate": learning_rate}).step(
        params, state, grad_batch, metric_batch)


@_spelled_out
def scale_by_natural_gradient(apply_fn: Callable[[PyTree, Any], jax.Array], family: Family,
                              **settings) -> optax.GradientTransformationExtraArgs:
    """Precondition the incoming updates by the damped metric, u ↦ (M + λI)⁻¹ u (no learning
    rate): `NaturalGradient(apply_fn, family, **settings).scale_by()` with `PAPER_SETTINGS` as
    the defaults.

    `update(updates, state, params, metric_batch=..., grad_batch=...)`: `metric_batch` the
    metric's batch (`inputs`, `(inputs,)` or `(inputs, targets)`; None: the gradient batch),
    `grad_batch` `(inputs, targets)`, needed when ρ is (Levenberg-Marquardt damping or
    `compute_rho=True`: ρ of the previous step is evaluated on it from the update actually
    applied) and by a preconditioner. Other extra arguments are ignored."""
    return _settings(apply_fn, family, settings).scale_by()


@_spelled_out
def natural_gradient(apply_fn: Callable[[PyTree, Any], jax.Array], family: Family,
                     learning_rate, **settings) -> optax.GradientTransformationExtraArgs:
    """The step as an optax optimizer: `scale_by_natural_gradient` chained with
    `optax.scale_by_learning_rate(learning_rate)` (a float or a schedule), so its updates are
    −η (M + λI)⁻¹ grads. Under `optax.inject_hyperparams` the model function is not a schedule:
    `optax.inject_hyperparams(natgrad.natural_gradient, static_args="apply_fn")(apply_fn,
    family, learning_rate=..., damping=...)` injects the learning rate and a constant damping."""
    return _settings(apply_fn, family, {**settings, "learning_rate": learning_rate}).optax()
