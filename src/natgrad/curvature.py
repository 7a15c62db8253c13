"""Curvature matrix-vector products as linear operators on parameter pytrees.

Each builder takes the model `apply_fn(params, inputs) -> r` (pre-activations, batch first), a batch
and an output family (`natgrad.families`) and returns a function `v ↦ M v` with `v` and `M v` shaped
like `params`. Every builder linearizes **once** when it is called: the returned function applies
only linear maps (stored Jacobian residuals), so calling it inside a Krylov solver's loop never
re-runs the forward pass.

- `ggn_operator`: the Fisher information of eq. 8 = the extended Gauss-Newton matrix of eq. 14,
  `G = (1/n) Σ_i J_iᵀ F_r(r_i) J_i`, J_i = ∂r(x_i)/∂θ. It needs inputs only: the targets are
  integrated out (eq. 8), so the metric works on unlabeled data.
- `empirical_fisher_operator`: the covariance of per-example gradients g_i = ∇_θ nll(r(x_i), t_i),
  uncentred `U = (1/n) Σ g_i g_iᵀ` (eq. 13, the "empirical Fisher") or centred
  `C = (1/n) Σ (g_i − ḡ)(g_i − ḡ)ᵀ = U − ḡ ḡᵀ` (eq. 12, Le Roux et al.'s TONGA), ḡ = (1/n) Σ g_i.
- `hessian_operator`: the exact Hessian of the mean NLL, `H v` by forward-over-reverse.

For the optimizer, `metric_operator` picks one of these by name (`METRICS`) and
`loss_gradient_and_metric` returns the mean NLL, its gradient and the metric product together,
from **one** linearization when the metric batch is the gradient batch (one forward pass for all
three instead of two). `mean_nll` is the loss all of them differentiate.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

PyTree = Any

__all__ = [
    "ggn_operator",
    "empirical_fisher_operator",
    "hessian_operator",
    "mean_nll",
    "METRICS",
    "metric_kind",
    "metric_operator",
    "loss_gradient_and_metric",
    "split_metric_batch",
    "metric_subbatch",
    "leading_rows",
    "leading_row_count",
    "shares_linearization",
]


def _batch_size(r) -> int:
    leaves = jax.tree_util.tree_leaves(r)
    return leaves[0].shape[0]


def ggn_operator(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    inputs: Any,
    family,
) -> Callable[[PyTree], PyTree]:
    """The Fisher / generalized Gauss-Newton product `v ↦ G v`, `G = (1/n) Σ_i J_iᵀ F_r,i J_i`.

    Linearizes `p ↦ apply_fn(p, inputs)` once (`jax.linearize`) and transposes that linear map
    (`jax.linear_transpose`); each product is then one JVP, the family's r-space metric
    (`family.output_metric_vp`) and one VJP of the *linearized* network: no forward pass.

    Args:
      apply_fn: `apply_fn(params, inputs) -> r`, pre-activations of shape (n, ..., outputs).
      params: the point θ at which G is taken (any pytree).
      inputs: the metric batch (no targets needed).
      family: a `natgrad.families` output family.

    Returns:
      A jittable function `v ↦ G v` on pytrees shaped like `params`.
    """
    r, jvp_fn = jax.linearize(lambda p: apply_fn(p, inputs), params)
    vjp_fn = jax.linear_transpose(jvp_fn, params)
    return _ggn_matvec(r, jvp_fn, vjp_fn, family)


def _ggn_matvec(r, jvp_fn, vjp_fn, family):
    """`v ↦ (1/n) Jᵀ F_r J v` from an existing linearization (r, J, Jᵀ) of the network."""
    scale = jnp.asarray(1.0 / _batch_size(r), r.dtype)

    def matvec(v: PyTree) -> PyTree:
        u = jvp_fn(v)
        (gv,) = vjp_fn(family.output_metric_vp(r, u) * scale)
        return gv

    return matvec


def mean_nll(apply_fn, inputs, targets, family) -> Callable[[PyTree], jax.Array]:
    """The loss `θ ↦ mean_i nll(apply_fn(θ, x_i), t_i)` on one batch: the L that the gradient, ρ
    and the Hessian are taken of, defined once so all of them differentiate the same expression."""
    def loss(p):
        return jnp.mean(family.nll(apply_fn(p, inputs), targets))

    return loss


def empirical_fisher_operator(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    inputs: Any,
    targets: Any,
    family,
    *,
    centred: bool = False,
) -> Callable[[PyTree], PyTree]:
    """The (un)centred covariance of per-example gradients, `v ↦ U v` (eq. 13) or `v ↦ C v` (eq. 12).

    Linearizes the per-example loss vector `l(p) = nll(apply_fn(p, inputs), targets)` (shape (n,))
    once; with J_l = ∂l/∂θ (rows g_iᵀ), `U v = (1/n) J_lᵀ (J_l v)` and, centred,
    `C v = U v − ḡ (ḡ·v)` with ḡ = (1/n) J_lᵀ 1 the mean gradient. No per-example gradient is
    materialised.

    Args:
      apply_fn, params, inputs: as for `ggn_operator`.
      targets: the labels t_i of the batch (this metric needs them).
      family: the output family whose NLL is the per-example loss.
      centred: False for U (eq. 13), True for C (eq. 12).
    """
    def losses(p):
        return family.nll(apply_fn(p, inputs), targets)

    l, jvp_fn = jax.linearize(losses, params)
    vjp_fn = jax.linear_transpose(jvp_fn, params)
    return _empirical_matvec(l, jvp_fn, vjp_fn, centred)


def _empirical_matvec(l, jvp_fn, vjp_fn, centred):
    """U v or C v from an existing linearization (l, J_l, J_lᵀ) of the per-example losses."""
    inv_n = jnp.asarray(1.0 / l.shape[0], l.dtype)

    def matvec(v: PyTree) -> PyTree:
        jv = jvp_fn(v)
        if centred:
            # ḡ·v = mean(J_l v) and ḡ = (1/n) J_lᵀ 1, so C v = (1/n) J_lᵀ (J_l v − mean(J_l v)·1):
            # one JVP and one VJP, as for U.
            jv = jv - jnp.mean(jv)
        (out,) = vjp_fn(jv * inv_n)
        return out

    return matvec


def hessian_operator(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    inputs: Any,
    targets: Any,
    family,
) -> Callable[[PyTree], PyTree]:
    """The exact Hessian of the mean NLL, `v ↦ H v` (forward-over-reverse).

    `jax.linearize(jax.grad(loss), params)` runs the forward and backward pass once; each product
    is then the JVP of the gradient's linearization (no forward pass per product). H may be
    indefinite: pair it with MINRES(-QLP), or damping, rather than CG.
    """
    loss = mean_nll(apply_fn, inputs, targets, family)
    _, hvp = jax.linearize(jax.grad(loss), params)
    return hvp


# ---------------------------------------------------------------------------------------------
# metrics by name, and the gradient with the metric from one linearization

#: Accepted `metric` names and the metric each denotes ("fisher", "uncentred", "centred" or
#: "hessian"; each of these is also a name for itself).
METRICS = {
    "fisher": "fisher",
    "ggn": "fisher",
    "empirical_fisher": "uncentred",
    "uncentred": "uncentred",
    "uncentred_covariance": "uncentred",
    "covariance": "centred",
    "centred": "centred",
    "centred_covariance": "centred",
    "hessian": "hessian",
}

_NEEDS_TARGETS = ("uncentred", "centred", "hessian")


def metric_kind(metric: str) -> str:
    """The metric a name in `METRICS` denotes; a ValueError otherwise, so that a caller can reject
    a bad name before anything is traced."""
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; one of {sorted(METRICS)}") from None


def _needs_targets(kind):
    return ValueError(f"metric {kind!r} needs targets: pass metric_batch=(inputs, targets)")


def split_metric_batch(metric_batch, grad_batch=None):
    """(inputs, targets or None) of a metric batch given as `inputs`, `(inputs,)` or
    `(inputs, targets)`; None means the gradient batch's inputs. One parser for every caller, so
    the formats accepted are the same everywhere."""
    if metric_batch is None:
        return grad_batch[0], None
    if isinstance(metric_batch, (tuple, list)):
        if len(metric_batch) == 1:
            return metric_batch[0], None
        if len(metric_batch) == 2:
            return metric_batch[0], metric_batch[1]
        raise ValueError("metric_batch must be inputs, (inputs,) or (inputs, targets)")
    return metric_batch, None


def leading_row_count(n: int, fraction: float, min_rows: int = 1) -> int:
    """⌈fraction·n⌉ rows, at least `min_rows`, at most n."""
    return min(n, max(min_rows, 1, math.ceil(fraction * n)))


def leading_rows(tree, fraction: float, min_rows: int = 1):
    """The first ⌈fraction·n⌉ rows (at least `min_rows`, at most n) of every leaf of a batch (n
    its leading size; static)."""
    n = jax.tree_util.tree_leaves(tree)[0].shape[0]
    m = leading_row_count(n, fraction, min_rows)
    return jax.tree_util.tree_map(lambda a: a[:m], tree)


def metric_subbatch(grad_batch, metric_batch, fraction: float = 1.0, min_rows: int = 1):
    """The metric batch cut to its first ⌈fraction·n⌉ rows, at least `min_rows` (a floor for
    small minibatches): of `metric_batch` (`inputs`,
    `(inputs,)` or `(inputs, targets)`), or of the gradient batch `(inputs, targets)` when it is
    None (or shares the gradient batch's inputs without targets: they are taken along). The
    metric on a fraction of the batch costs that fraction of a full product, and its batch is then
    no longer the gradient batch: L and g come from a separate forward pass. `fraction` = 1
    returns `metric_batch` itself."""
    if not 0 < fraction <= 1:
        raise ValueError(f"metric_fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1:
        return metric_batch
    mx, mt = split_metric_batch(metric_batch, grad_batch)
    n = jax.tree_util.tree_leaves(mx)[0].shape[0]
    if leading_row_count(n, fraction, min_rows) == n:  # the whole batch: keep it shared
        return metric_batch
    if mt is None and grad_batch is not None and mx is grad_batch[0]:
        mt = grad_batch[1]
    return leading_rows(mx if mt is None else (mx, mt), fraction, min_rows)


def _kind_operator(apply_fn, params, mx, mt, family, kind):
    """v ↦ M v at θ on the metric batch (inputs mx, targets mt or None), from one linearization."""
    if kind == "fisher":
        return ggn_operator(apply_fn, params, mx, family)
    if mt is None:
        raise _needs_targets(kind)
    if kind in ("uncentred", "centred"):
        return empirical_fisher_operator(apply_fn, params, mx, mt, family, centred=(kind == "centred"))
    return hessian_operator(apply_fn, params, mx, mt, family)


def metric_operator(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    metric_batch: Any,
    family,
    metric: str = "fisher",
) -> Callable[[PyTree], PyTree]:
    """`v ↦ M v` for the metric named `metric` (a key of `METRICS`) at θ, so that callers choose a
    metric by name without knowing which builder (and which arguments) it takes.

    `metric_batch` is `inputs`, `(inputs,)` or `(inputs, targets)`: the Fisher needs inputs only,
    the covariance metrics and the Hessian need targets (a ValueError without them).
    """
    kind = metric_kind(metric)
    if metric_batch is None:
        raise ValueError("metric_operator needs a metric batch: inputs or (inputs, targets)")
    mx, mt = split_metric_batch(metric_batch)
    return _kind_operator(apply_fn, params, mx, mt, family, kind)


def _shared_linearization(apply_fn, params, x, t, family, kind):
    """(L, g, v ↦ M v) from one linearization on the gradient batch (x, t)."""
    if kind == "fisher":
        r, jvp_fn = jax.linearize(lambda p: apply_fn(p, x), params)
        vjp_fn = jax.linear_transpose(jvp_fn, params)
        loss, dr = jax.value_and_grad(lambda rr: jnp.mean(family.nll(rr, t)))(r)
        (g,) = vjp_fn(dr)
        return loss, g, _ggn_matvec(r, jvp_fn, vjp_fn, family)
    if kind in ("uncentred", "centred"):
        l, jvp_fn = jax.linearize(lambda p: family.nll(apply_fn(p, x), t), params)
        vjp_fn = jax.linear_transpose(jvp_fn, params)
        (g,) = vjp_fn(jnp.full_like(l, 1.0 / l.shape[0]))
        return jnp.mean(l), g, _empirical_matvec(l, jvp_fn, vjp_fn, centred=(kind == "centred"))
    (loss, g), hvp = jax.linearize(jax.value_and_grad(mean_nll(apply_fn, x, t, family)), params)
    return loss, g, lambda v: hvp(v)[1]


def shares_linearization(grad_batch: tuple, metric_batch: Any, metric: str = "fisher") -> bool:
    """Whether `loss_gradient_and_metric` takes L, g and the metric from one linearization: the
    metric batch's inputs are the gradient batch's inputs (the same object) and, for the metrics
    that need targets, its targets are the gradient batch's or none are given. Callers use it to
    know whether L comes for free with the metric."""
    x, t = grad_batch
    mx, mt = split_metric_batch(metric_batch, grad_batch)
    return mx is x and (metric_kind(metric) == "fisher" or mt is None or mt is t)


def loss_gradient_and_metric(
    apply_fn: Callable[[PyTree, Any], jax.Array],
    params: PyTree,
    grad_batch: tuple,
    metric_batch: Any,
    family,
    metric: str = "fisher",
) -> tuple[jax.Array, PyTree, Callable[[PyTree], PyTree]]:
    """(L(θ), g = ∇L(θ), v ↦ M v): what one natural-gradient step needs, with as few passes as
    the batches allow.

    When the metric batch's inputs are the gradient batch's inputs (the same array object; and,
    for the metrics that need targets, the same targets object or none given), L and g come from
    the metric's own linearization: one forward pass for all three. Otherwise the metric is built
    on its batch and L, g by a separate `value_and_grad` on the gradient batch.

    Args:
      apply_fn, params, family: as for `ggn_operator`.
      grad_batch: `(inputs, targets)`; L is the mean NLL on it (`mean_nll`).
      metric_batch: `inputs`, `(inputs,)` or `(inputs, targets)`; None: the gradient batch. The
        metrics that need targets take the gradient batch's when the inputs are the same object.
      metric: a key of `METRICS`.
    """
    kind = metric_kind(metric)
    x, t = grad_batch
    mx, mt = split_metric_batch(metric_batch, grad_batch)
    if kind in _NEEDS_TARGETS and mt is None:
        if mx is not x:
            raise _needs_targets(kind)
        mt = t
    if shares_linearization(grad_batch, metric_batch, metric):
        return _shared_linearization(apply_fn, params, x, t, family, kind)
    matvec = _kind_operator(apply_fn, params, mx, mt, family, kind)
    loss, g = jax.value_and_grad(mean_nll(apply_fn, x, t, family))(params)
    return loss, g, matvec
