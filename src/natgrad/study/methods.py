"""The training methods of every experiment, each built from its config entry by `build_method`.

A method is `init(params) -> state` and `update(params, state, batch, t) -> (params, state,
StepRecord)`: one update at step `t` (traced) on a `Batch`. Experiments draw the batches (the
stream of the order experiment, the restricted split of the overfitting one); a method only says
where its metric's inputs come from (`Method.metric_source`).

Kinds (paper §5-6, appendix 8.5-8.8; hyper-parameter keys in `HYPER_KEYS`):

- `msgd`: minibatch SGD (optax.sgd, optional heavy-ball momentum);
- `adam`: optax.adam;
- `ng_same_batch`: natural gradient, Fisher on the gradient's own minibatch (Hessian-free's set-up,
  and the order experiment's "ng": appendix 8.8);
- `ng_different_batch`: Fisher on another minibatch of the training set, disjoint from the
  gradient's (the original code's separate blocks);
- `ng_unlabeled`: Fisher on inputs of the unlabeled pool alone (their labels are never read: eq. 8
  integrates the targets out), as the original code's restricted-MNIST module does;
- `ng_batch_plus_unlabeled`: Fisher on the gradient's minibatch plus pool inputs, appendix 8.7's
  TFD protocol;
- `covariance`: TONGA, the uncentred covariance of per-example gradients (eq. 13) on the gradient's
  minibatch;
- `kfac`: kfac-jax's K-FAC (not jittable: see `KFAC` below).

The natural-gradient kinds run the library's public step, `natgrad.natural_gradient_step`, with
its run-time checks on (the study's loops run under checkify: `natgrad.study.checked`): the paper's
step rule (a fixed learning rate, ρ of eq. 30, every step applied), and with `reject` the library's
step rejection (a step that does not lower the loss is not applied and raises the damping), so that
a comparison of metrics is not decided by an unguarded step.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

import natgrad
from natgrad.damping import Constant, LevenbergMarquardt
from natgrad.families import Categorical
from natgrad.study.kinds import KINDS

FAMILY = Categorical()

_SCHEDULE = ("learning_rate", "decay_start", "decay_scale")
_SOLVE = ("damping", "adapt_damping", "solver", "max_iters", "rtol", "reject")
#: The hyper-parameters each kind (`kinds.KINDS`) reads (the schema's defaults fill them in).
HYPER_KEYS = {
    "msgd": _SCHEDULE + ("momentum",),
    "adam": _SCHEDULE,
    "ng_same_batch": _SCHEDULE + _SOLVE,
    "ng_different_batch": _SCHEDULE + _SOLVE + ("metric_batch_size",),
    "ng_unlabeled": _SCHEDULE + _SOLVE + ("metric_batch_size",),
    "ng_batch_plus_unlabeled": _SCHEDULE + _SOLVE + ("metric_batch_size",),
    "covariance": _SCHEDULE + _SOLVE,
    "kfac": ("damping", "l2_reg", "inverse_update_period", "damping_interval"),
}
#: Where each natural-gradient kind takes its metric's inputs from.
METRIC_SOURCE = {"ng_same_batch": "same", "ng_different_batch": "different",
                 "ng_unlabeled": "unlabeled", "ng_batch_plus_unlabeled": "batch_plus_unlabeled",
                 "covariance": "same"}




class Batch(NamedTuple):
    """The data of one update: the gradient's inputs `x` and labels `y`, and the metric's inputs
    (`metric_x`, `metric_y`: None means the gradient's own minibatch; `metric_y` None means
    unlabeled inputs)."""

    x: jax.Array
    y: jax.Array
    metric_x: Optional[jax.Array] = None
    metric_y: Optional[jax.Array] = None


class StepRecord(NamedTuple):
    """What one update did, the same record for every method (NaN / -1 where it does not apply)."""

    loss: jax.Array
    solver_iterations: jax.Array
    relative_residual: jax.Array
    damping: jax.Array
    solver_flag: jax.Array
    rejected: jax.Array


@dataclasses.dataclass(frozen=True)
class Method:
    """A built method: `init(params) -> state`, `update(params, state, batch, t)`."""

    kind: str
    init: Callable
    update: Callable
    metric_source: Optional[str] = None


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy (nats) of integer labels: the family's NLL, the study's one loss."""
    return jnp.mean(FAMILY.nll(logits, labels))


def learning_rate_schedule(hyper):
    """`learning_rate` constant, then `learning_rate / (1 + (t − decay_start) / decay_scale)` from
    update `decay_start` on (appendix 8.6) when `decay_start` is set."""
    lr0 = float(hyper["learning_rate"])
    start = hyper.get("decay_start")
    if start is None:
        return lambda t: jnp.asarray(lr0, jnp.float32)
    scale = float(hyper["decay_scale"])

    def schedule(t):
        t = jnp.asarray(t, jnp.float32)
        return jnp.where(t < start, lr0, lr0 / (1.0 + (t - start) / scale)).astype(jnp.float32)

    return schedule


def damping_rule(hyper):
    """Levenberg-Marquardt (eq. 29-30) from λ = `damping` when `adapt_damping`, else constant λ."""
    if hyper["adapt_damping"]:
        return LevenbergMarquardt(initial=float(hyper["damping"]))
    return Constant(float(hyper["damping"]))


def _first_order(apply, transform):
    """An optax transformation as a method: its gradient is of `cross_entropy` on the batch."""
    nan = jnp.float32(jnp.nan)

    def update(params, state, batch, t):
        del t  # the transformation counts its own steps
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(apply(p, batch.x), batch.y))(params)
        updates, state = transform.update(grads, state, params)
        return (optax.apply_updates(params, updates), state,
                StepRecord(loss, jnp.int32(0), nan, nan, jnp.int32(-1), jnp.int32(0)))

    return transform.init, update


def _natural_gradient(apply, kind, hyper, checks):
    metric = "empirical_fisher" if kind == "covariance" else "fisher"
    rule = damping_rule(hyper)
    schedule = learning_rate_schedule(hyper)
    solver, max_iters, rtol = hyper["solver"], int(hyper["max_iters"]), float(hyper["rtol"])
    reject = bool(hyper["reject"])

    def init(params):
        return natgrad.natural_gradient_init(params, rule)

    def update(params, state, batch, t):
        if batch.metric_x is None:
            metric_batch = (batch.x, batch.y)
        elif batch.metric_y is None:
            metric_batch = (batch.metric_x,)
        else:
            metric_batch = (batch.metric_x, batch.metric_y)
        params, state, info = natgrad.natural_gradient_step(
            apply, params, state, (batch.x, batch.y), metric_batch, family=FAMILY,
            learning_rate=schedule(t), damping=rule, metric=metric, solver=solver,
            max_iters=max_iters, rtol=rtol, reject=reject, checks=checks)
        return params, state, StepRecord(
            jnp.asarray(info.loss, jnp.float32), jnp.asarray(info.iterations, jnp.int32),
            jnp.asarray(info.relative_residual, jnp.float32), jnp.asarray(info.damping, jnp.float32),
            jnp.asarray(info.flag, jnp.int32), jnp.asarray(info.rejected, jnp.int32))

    return init, update


def build_method(kind, hyper, apply, *, checks=True):
    """The method `kind` (one of `KINDS` but `kfac`) with hyper-parameters `hyper` for the model
    function `apply(params, x) -> logits`; `checks`: the natural-gradient step's run-time checks
    (its caller then runs it under checkify, `natgrad.study.checked`)."""
    if kind == "msgd":
        init, update = _first_order(apply, optax.sgd(learning_rate_schedule(hyper),
                                                     momentum=float(hyper["momentum"]) or None))
    elif kind == "adam":
        init, update = _first_order(apply, optax.adam(learning_rate_schedule(hyper)))
    elif kind in METRIC_SOURCE:
        init, update = _natural_gradient(apply, kind, hyper, checks)
    else:
        raise ValueError(f"unknown jittable method kind {kind!r}; one of "
                         f"{', '.join(k for k in KINDS if k != 'kfac')}")
    return Method(kind, init, update, METRIC_SOURCE.get(kind))


def hyper_of(kind, hyper):
    """Only the keys `kind` reads (so a job's parameters change only when its own settings do)."""
    return {k: hyper[k] for k in HYPER_KEYS[kind] if k in hyper}


class KFAC:
    """kfac-jax's K-FAC (adaptive learning rate, momentum and damping, as its examples do).

    Not a `Method`: kfac-jax compiles its own step, takes a Python step count and may delete the
    parameter arrays it is given, so a runner calls `step` once per update with its own copies.
    """

    kind = "kfac"
    metric_source = None

    def __init__(self, hyper, apply):
        import kfac_jax

        def loss(params, batch):
            x, y = batch
            logits = apply(params, x)
            kfac_jax.register_softmax_cross_entropy_loss(logits, y)
            return cross_entropy(logits, y)

        self.damping_interval = int(hyper["damping_interval"])
        self.optimizer = kfac_jax.Optimizer(
            value_and_grad_func=jax.value_and_grad(loss),
            l2_reg=float(hyper["l2_reg"]),
            use_adaptive_learning_rate=True,
            use_adaptive_momentum=True,
            use_adaptive_damping=True,
            initial_damping=float(hyper["damping"]),
            inverse_update_period=int(hyper["inverse_update_period"]),
            damping_adaptation_interval=self.damping_interval,
            num_burnin_steps=0,
            multi_device=False,
        )

    @staticmethod
    def copy(tree):
        return jax.tree.map(jnp.array, tree)

    def init(self, params, key, batch):
        return self.optimizer.init(self.copy(params), key, batch)

    def step(self, params, state, key, batch, t):
        params, state, _ = self.optimizer.step(params, state, key, batch=batch,
                                               global_step_int=int(t))
        return params, state

    def variant_steps(self):
        """Steps that compile kfac-jax's two static variants (with and without a damping update)."""
        return sorted({0, self.damping_interval - 1})

    def copy_state(self, state):
        return self.optimizer.copy_obj(state)
