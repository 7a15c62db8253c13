"""Trace-time checks of what a natural-gradient step is given, with messages that name the mistake.

Shapes and dtypes are static under `jax.jit`, so every check here runs once, while the step is
traced, and costs nothing per step. Without them a wrong batch fails deep inside the model (a
matmul shape error that names no argument) or, worse, broadcasts silently: (n, 1) integer labels
became soft targets of a categorical. Each error is a `ValueError` (a shape) or a `TypeError` (a
dtype) whose one-line message names the argument and the shape expected.

What cannot be checked statically (NaNs, labels ≥ the number of classes, a traced negative
damping) is checked at run time by `check_values`, `check_targets_in_range` and `check_scalar`,
which the step calls only with `checks=True`: they are `jax.experimental.checkify` checks, so a
caller runs the jitted step (or its whole training loop) under `checkify.checkify(...)` and calls
`err.throw()`; off, they are not traced at all and cost nothing.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from .curvature import split_metric_batch
from .families import Family

__all__ = ["check_family", "refuse_family_as_batch", "check_params", "check_updates", "check_step", "check_values",
           "check_targets_in_range", "check_scalar", "check_damping", "check_batches"]


def check_family(family) -> None:
    """A `Family` instance: one line naming what was given instead (None, a name, a class)."""
    if isinstance(family, Family):
        return
    hint = "family=natgrad.families.Categorical() or another natgrad.families.Family instance"
    if family is None:
        raise TypeError(f"an output family is needed: {hint}")
    if isinstance(family, type):
        raise TypeError(f"family is the class {family.__name__}, not an instance: pass "
                        f"{family.__name__}() ({hint})")
    raise TypeError(f"family must be a natgrad.families.Family instance, got {family!r}: pass "
                    f"{hint}")


def refuse_family_as_batch(metric_batch) -> None:
    """An output family passed where the metric batch goes is refused, naming `family=`."""
    if isinstance(metric_batch, Family):
        raise TypeError("metric_batch is an output family: pass it as family=...")


def _leaves(tree):
    return jax.tree_util.tree_leaves_with_path(tree)


def _shape_struct(tree):
    """The tree as `jax.ShapeDtypeStruct`s (tracers included): what `jax.eval_shape` needs."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)),
                                  tree)


def check_params(params: Any) -> None:
    """Every leaf of `params` is a floating-point array (the metric and the solve need them)."""
    leaves = _leaves(params)
    if not leaves:
        raise ValueError("params has no array leaves: pass the model's parameter pytree")
    for path, leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"params{jax.tree_util.keystr(path)} has dtype {dtype}: every leaf of "
                            "params must be a floating-point array")


def check_updates(updates: Any, params: Any) -> None:
    """`updates` (the incoming gradient) is shaped like `params`, leaf by leaf."""
    pt, ut = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(updates)
    if pt != ut:
        raise ValueError(f"updates must have params' tree structure {pt}, got {ut}")
    for (path, u), p in zip(_leaves(updates), jax.tree_util.tree_leaves(params)):
        if jnp.shape(u) != jnp.shape(p):
            raise ValueError(f"updates{jax.tree_util.keystr(path)} has shape {jnp.shape(u)}, "
                             f"expected params' shape {jnp.shape(p)}")


def _batch_size(tree, name):
    leaves = _leaves(tree)
    if not leaves or any(jnp.ndim(a) == 0 for _, a in leaves):
        raise ValueError(f"{name} must be arrays with a leading batch axis, got {_shape_struct(tree)}")
    sizes = {jnp.shape(a)[0] for _, a in leaves}
    if len(sizes) > 1:
        raise ValueError(f"{name} leaves have different batch sizes {sorted(sizes)}")
    return sizes.pop()


def _features(tree):
    return jax.tree_util.tree_map(lambda a: jnp.shape(a)[1:], tree)


def _check_pair(inputs, targets, name):
    """Targets with the inputs' batch size; returns that size."""
    n = _batch_size(inputs, f"{name} inputs")
    if targets is not None:
        m = _batch_size(targets, f"{name} targets")
        if m != n:
            raise ValueError(f"{name} targets have batch size {m} but its inputs have {n}: "
                             f"expected targets of shape ({n}, ...)")
    return n


def _check_family(apply_fn, params, inputs, targets, family, name):
    """The family accepts these targets for the model's outputs on these inputs (output shape by
    `jax.eval_shape`: no computation)."""
    if targets is None:
        return
    r = jax.eval_shape(apply_fn, _shape_struct(params), _shape_struct(inputs))
    family.check_targets(r, _shape_struct(jnp.asarray(targets)), name=f"{name} targets")


def check_step(
    apply_fn: Callable,
    params: Any,
    grad_batch: Any,
    metric_batch: Any,
    family: Any,
) -> None:
    """Everything a step can check before it runs: floating params; `grad_batch` an
    `(inputs, targets)` pair with one batch size and targets the family accepts for the model's
    outputs; `metric_batch` (`inputs`, `(inputs,)` or `(inputs, targets)`, or None) with the
    gradient batch's feature shape. `grad_batch` may be None (an optax update with only a metric
    batch)."""
    check_params(params)
    if grad_batch is not None:
        if not isinstance(grad_batch, (tuple, list)) or len(grad_batch) != 2:
            raise ValueError("grad_batch must be an (inputs, targets) pair, got "
                             f"{type(grad_batch).__name__} {_shape_struct(grad_batch)}")
        x, t = grad_batch
        _check_pair(x, t, "grad_batch")
        _check_family(apply_fn, params, x, t, family, "grad_batch")
    if metric_batch is None:
        return
    mx, mt = split_metric_batch(metric_batch)
    _check_pair(mx, mt, "metric_batch")
    if grad_batch is not None and _features(mx) != _features(grad_batch[0]):
        raise ValueError(f"metric_batch inputs have feature shape {_features(mx)} but grad_batch "
                         f"inputs have {_features(grad_batch[0])}: expected the same")
    _check_family(apply_fn, params, mx, mt, family, "metric_batch")


def check_values(tree: Any, name: str) -> None:
    """Run-time check (checkify): every number of `tree` is finite."""
    for path, leaf in _leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            checkify.check(jnp.all(jnp.isfinite(leaf)),
                           f"{name}{jax.tree_util.keystr(path)} contain NaN or inf")


def check_targets_in_range(apply_fn, params, inputs, targets, family, name: str) -> None:
    """Run-time check (checkify): the targets are values the family's distribution can take
    (`family.targets_in_range`, e.g. labels in [0, k))."""
    r = jax.eval_shape(apply_fn, _shape_struct(params), _shape_struct(inputs))
    checkify.check(family.targets_in_range(r, targets),
                   f"{name} targets are out of range for {type(family).__name__} "
                   f"(outputs {tuple(r.shape)})")


def check_scalar(value, name: str) -> None:
    """Run-time check (checkify): a traced hyper-parameter is finite and ≥ 0."""
    value = jnp.asarray(value)
    checkify.check(jnp.isfinite(value) & (value >= 0), f"{name} must be finite and >= 0")


def check_damping(rule, damping) -> None:
    """Run-time check (checkify): λ is finite, ≥ 0 and within the rule's [minimum, maximum] when
    it has them (a state made with another rule, e.g. λ = 0 for Levenberg-Marquardt, fails)."""
    check_scalar(damping, "damping")
    low, high = getattr(rule, "minimum", None), getattr(rule, "maximum", None)
    if low is not None and high is not None:
        checkify.check((damping >= low) & (damping <= high),
                       f"damping is outside {type(rule).__name__}'s [{low}, {high}]: make the "
                       "state with the rule the steps use")


def check_batches(apply_fn, params, grad_batch, metric_batch, family) -> None:
    """Run-time checks of a step's data (checkify): finite inputs and targets, targets in the
    family's range, for the gradient batch and the metric batch."""
    for name, batch in (("grad_batch", grad_batch), ("metric_batch", metric_batch)):
        if batch is None:
            continue
        x, t = batch if name == "grad_batch" else split_metric_batch(batch)
        check_values(x, f"{name} inputs")
        if t is not None:
            check_values(t, f"{name} targets")
            check_targets_in_range(apply_fn, params, x, t, family, name)
