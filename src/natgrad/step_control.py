"""Step control: how far along the natural-gradient direction a step goes, how ρ judges it, and
whether it is applied.

Given the direction ng ≈ (M + λI)⁻¹g and A = M + λI, the damped quadratic model of the change in
loss along an update δ is q(δ) = gᵀδ + ½δᵀAδ. A step is δ = −α·ng + μ·δ₀ (δ₀ the previous
applied update):

- **fixed rate** (the paper's): α = η (a number or a schedule), μ = 0;
- **adaptive** (`learning_rate="adaptive"`, Martens & Grosse 2015 §7, kfac-jax's adaptive learning
  rate and momentum): α and, with `momentum=True`, μ minimise q over span{ng, δ₀}, a 2×2 system
  [α μ] = −Q⁻¹b with Q = [[ngᵀA ng, −ngᵀAδ₀], [−ngᵀAδ₀, δ₀ᵀAδ₀]] and b = [−gᵀng, gᵀδ₀]. Where Q
  is not positive definite (no δ₀ yet, δ₀ ∥ ng), or its solution leaves α > 0, ``|μ| < 1`` (a noisy
  minibatch's model), μ = 0 and α = gᵀng / ngᵀA ng; where even that
  curvature is not positive, α = μ = 0 (a null step: the quadratic ρ is −∞, eq. 30's NaN; the
  damping rule counts either as a failure, and rejection refuses it).

ρ, the actual over the predicted change, drives the damping rule:

- `"first_order"` (eq. 30, the paper's): (L(θ+δ) − L(θ)) / gᵀδ;
- `"quadratic"` (Martens 2010): (L(θ+δ) − L(θ)) / q(δ); −∞ when the loss rose or is not finite,
  or when the model predicts no decrease (q(δ) ≥ 0: with an exact solve that is every fixed η ≥ 2,
  so the quadratic rule goes with η ≤ 1 or the adaptive rate; a fixed number ≥ 2 is refused).

With rejection on, a step is applied only when L(θ+δ) < L(θ) and ρ > 0 (finite): otherwise θ
stays and the damping rule sees ρ = −∞ (λ rises). Both are selects, not branches (`jit`/`scan`).

Costs: ngᵀA ng comes free with a solver that reports its model value (CG: φ(x) from its
residual); otherwise one product with M. Momentum adds one product (A δ₀). ρ costs one forward
pass at θ+δ, which rejection reuses; a damping rule that adapts λ every k steps
(`LevenbergMarquardt(every=k)`) without rejection pays it once every k steps (`loss_after`).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from . import pytree

PyTree = Any

__all__ = ["RHO_MODELS", "ADAPTIVE", "StepSize", "check_step_control", "curvature_along",
           "fixed_step", "adaptive_step", "moved", "loss_after", "reduction_ratio", "accepted"]

#: How ρ is measured.
RHO_MODELS = ("first_order", "quadratic")
#: The learning rate that asks for the exact-quadratic step size.
ADAPTIVE = "adaptive"


class StepSize(NamedTuple):
    """A step δ = −α·ng + μ·δ₀ and what the model predicts of it.

    alpha, mu: the coefficients; first_order: gᵀδ; model: q(δ) = gᵀδ + ½δᵀAδ (NaN when not
    computed: fixed rate with the first-order ρ)."""

    alpha: jax.Array
    mu: jax.Array
    first_order: jax.Array
    model: jax.Array


def check_step_control(learning_rate, momentum, rho, reject) -> None:
    """One line naming the setting for impossible combinations (at construction); None is a
    setting left to its default."""
    if rho is not None and rho not in RHO_MODELS:
        raise ValueError(f"rho must be one of {', '.join(map(repr, RHO_MODELS))}, got {rho!r}")
    if isinstance(learning_rate, str) and learning_rate != ADAPTIVE:
        raise ValueError(f"learning_rate must be a number, a schedule or {ADAPTIVE!r}, got "
                         f"{learning_rate!r}")
    if rho == "quadratic" and isinstance(learning_rate, (int, float)) and learning_rate >= 2:
        raise ValueError(f"rho='quadratic' with a fixed learning_rate={learning_rate!r} ≥ 2: the "
                         f"model predicts no decrease for a well-solved step, so every step would "
                         f"score ρ = −∞; use rho='first_order' or learning_rate='adaptive'")
    if momentum and not isinstance(learning_rate, str):
        raise ValueError(f"momentum=True needs learning_rate={ADAPTIVE!r} (μ is chosen with α by "
                         f"the quadratic model)")
    if not all(isinstance(flag, (bool, type(None))) for flag in (reject, momentum)):
        raise TypeError(f"reject and momentum must be True, False or None, got reject={reject!r}, "
                        f"momentum={momentum!r}")


def curvature_along(ng: PyTree, g: PyTree, gnorm, model, damped_op: Callable,
                    reports_model: bool) -> jax.Array:
    """ngᵀ(M + λI)ng. From the solver's φ(x) of the solve on b = g/‖g‖ (x = ng/‖g‖:
    xᵀAx = 2φ + 2bᵀx), else one product with A."""
    if reports_model:
        scale = jnp.where(gnorm > 0, gnorm, jnp.ones_like(gnorm))
        return 2 * scale * scale * model + 2 * pytree.vdot(g, ng)
    return pytree.vdot(ng, damped_op(ng))


def fixed_step(eta, g: PyTree, ng: PyTree, curvature: Optional[jax.Array]) -> StepSize:
    """α = η, μ = 0: gᵀδ = −η gᵀng and, given ngᵀA ng, q(δ) = −η gᵀng + ½η² ngᵀA ng."""
    gng = pytree.vdot(g, ng)
    first = -eta * gng
    model = jnp.full_like(first, jnp.nan) if curvature is None else first + 0.5 * eta * eta * curvature
    return StepSize(eta, jnp.zeros_like(first), first, model)


def adaptive_step(g: PyTree, ng: PyTree, curvature, previous: Optional[PyTree],
                  damped_op: Callable) -> StepSize:
    """α (and μ when `previous` = δ₀ is given) minimising q over span{ng, δ₀}: see the module
    docstring. One product with A for δ₀."""
    gng = pytree.vdot(g, ng)
    finite_alpha = jnp.isfinite(curvature) & (curvature > 0)
    alpha = jnp.where(finite_alpha, gng / jnp.where(finite_alpha, curvature, 1), 0)
    mu = jnp.zeros_like(alpha)
    if previous is not None:
        a_prev = damped_op(previous)
        q12 = -pytree.vdot(ng, a_prev)
        q22 = pytree.vdot(previous, a_prev)
        b1, b2 = -gng, pytree.vdot(g, previous)
        det = curvature * q22 - q12 * q12
        definite = finite_alpha & jnp.isfinite(det) & (det > 1e-6 * curvature * q22)
        safe = jnp.where(definite, det, 1)
        alpha2 = -(q22 * b1 - q12 * b2) / safe
        mu2 = -(q12 * -b1 + curvature * b2) / safe
        # a noisy minibatch's model can ask for α ≤ 0 or |μ| ≥ 1 (seen: μ = −2.17 and a loss of
        # 5.2 → 121): then the one-dimensional step along −ng
        sane = definite & (alpha2 > 0) & (jnp.abs(mu2) < 1)
        alpha = jnp.where(sane, alpha2, alpha)
        mu = jnp.where(sane, mu2, mu)
        first = -alpha * gng + mu * b2
        model = first + 0.5 * (alpha * alpha * curvature + 2 * alpha * mu * q12 + mu * mu * q22)
    else:
        first = -alpha * gng
        model = first + 0.5 * alpha * alpha * curvature
    return StepSize(alpha, mu, first, jnp.where(finite_alpha, model, 0))


def moved(params: PyTree, ng: PyTree, previous: Optional[PyTree], step: StepSize) -> PyTree:
    """θ + δ, δ = −α·ng + μ·δ₀, in each leaf's dtype."""
    if previous is None:
        return jax.tree_util.tree_map(lambda p, d: (p - step.alpha * d).astype(p.dtype),
                                      params, ng)
    return jax.tree_util.tree_map(
        lambda p, d, d0: (p - step.alpha * d + step.mu * d0).astype(p.dtype), params, ng, previous)


def loss_after(loss_fn: Callable, new_params: PyTree, loss, when=None) -> jax.Array:
    """L(θ + δ) for ρ: always (`when` None), or only where the traced bool `when` holds (a
    `lax.cond`: the forward pass is skipped, not masked; NaN there, ρ not measured)."""
    if when is None:
        return loss_fn(new_params)
    return lax.cond(when, loss_fn, lambda _: jnp.full_like(loss, jnp.nan), new_params)


def reduction_ratio(rho: str, new_loss, loss, step: StepSize, dtype) -> jax.Array:
    """ρ of the step: `"first_order"` (eq. 30) or `"quadratic"` (−∞ on a rising or non-finite
    loss or a model that predicts no decrease)."""
    change = new_loss - loss
    if rho == "first_order":
        return (change / step.first_order).astype(dtype)
    valid = jnp.isfinite(new_loss) & (change <= 0) & (step.model < 0)
    ratio = change / jnp.where(valid, step.model, -1)
    return jnp.where(valid, ratio, -jnp.inf).astype(dtype)


def accepted(new_loss, loss, rho) -> jax.Array:
    """Whether a step passes rejection: the loss fell and ρ > 0, finite."""
    return (new_loss < loss) & jnp.isfinite(rho) & (rho > 0)
