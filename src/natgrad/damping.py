"""Damping rules: the λ of the solve (G + λI) x = g.

A rule is a frozen (hashable, jit-static) dataclass with these pure functions:

- `init() -> λ`: the initial damping (a JAX scalar; the state of a rule is λ itself; the
  optimizer keeps it in the parameters' dtype);
- `current(λ) -> λ`: the λ of this step's solve given the state's λ: the state's for an adaptive
  rule, the rule's own value for `Constant` (so a constant changed between steps, e.g. by
  `optax.inject_hyperparams`, takes effect at once);
- `update(λ, rho) -> λ`: the next damping given the reduction ratio ρ of the last step.

`needs_rho` tells the optimizer whether ρ must be computed (it costs one extra forward pass at the
new parameters); `Constant` does not need it. A rule with an `every` attribute (k, default 1)
adapts λ only after steps t with (t + 1) % k == 0 (t counted from 0, kfac-jax's
`damping_adaptation_interval`, Martens & Grosse's T₁ = 5): `next_damping` keeps λ after the
others, and the optimizer measures ρ only on the steps that adapt (unless rejection needs the new
loss anyway), so the forward pass at the new parameters is paid once every k steps.

Levenberg-Marquardt (paper appendix 8.3, eq. 29-30; Martens 2010): with
ρ = (f(θ_new) − f(θ)) / (−η g·G⁻¹g), the actual over the predicted (first-order) decrease,
ρ < 1/4 → λ ← λ·3/2 (the model was too optimistic: shrink the trust region),
ρ > 3/4 → λ ← λ·2/3 (it was good: enlarge it), λ kept in [minimum, maximum]. A non-finite ρ
(e.g. a NaN loss) counts as a bad step and raises λ. With `every` = k > 1 the factors apply once
per adaptation, i.e. once every k steps, judged by the ρ of the step that ends the k (kfac-jax
likewise, its per-adaptation factor being 0.95^k).

Impossible settings (a negative or non-finite λ, bounds or factors the wrong way round) are
refused when the rule is made, with one line naming the field; a traced value (a constant damping
injected as a hyper-parameter) can only be checked at run time (`checks=True` in the step).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .solvers import check_non_negative

__all__ = ["Constant", "LevenbergMarquardt", "adapts", "as_damping", "next_damping"]


def _require(ok: bool, rule: str, field: str, value, needs: str) -> None:
    if not ok:
        raise ValueError(f"damping ({rule}.{field}) must be {needs}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Constant:
    """λ fixed at `value` (a number ≥ 0, or a traced scalar)."""

    value: float = 0.0
    needs_rho = False

    def __post_init__(self):
        check_non_negative("damping (Constant.value)", self.value)

    def init(self) -> jax.Array:
        return jnp.asarray(self.value)

    def current(self, damping) -> jax.Array:
        return jnp.asarray(self.value, jnp.result_type(damping))

    def update(self, damping, rho) -> jax.Array:
        del rho
        return damping


@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt:
    """λ adapted by the reduction ratio ρ (eq. 29-30), starting at `initial`, after every
    `every`-th step (an int ≥ 1; see the module docstring)."""

    initial: float = 1.0
    minimum: float = 1e-8
    maximum: float = 1e8
    lower: float = 0.25
    upper: float = 0.75
    increase: float = 1.5
    decrease: float = 2.0 / 3.0
    every: int = 1
    needs_rho = True

    def __post_init__(self):
        name = "LevenbergMarquardt"
        for field in ("initial", "minimum", "maximum"):
            check_non_negative(f"damping ({name}.{field})", getattr(self, field))
        _require(self.minimum <= self.maximum, name, "maximum", self.maximum,
                 f">= minimum ({self.minimum!r})")
        _require(self.lower <= self.upper, name, "upper", self.upper, f">= lower ({self.lower!r})")
        _require(self.increase > 1, name, "increase", self.increase, "> 1")
        _require(0 < self.decrease < 1, name, "decrease", self.decrease, "in (0, 1)")
        _require(isinstance(self.every, int) and not isinstance(self.every, bool)
                 and self.every >= 1, name, "every", self.every, "an integer >= 1")

    def init(self) -> jax.Array:
        return jnp.asarray(self.initial)

    def current(self, damping) -> jax.Array:
        return damping

    def update(self, damping, rho) -> jax.Array:
        lam = jnp.asarray(damping)
        rho = jnp.asarray(rho, lam.dtype)
        bad = (rho < self.lower) | ~jnp.isfinite(rho)
        good = rho > self.upper
        factor = jnp.where(bad, self.increase, jnp.where(good, self.decrease, 1.0))
        return jnp.clip(lam * factor, self.minimum, self.maximum).astype(lam.dtype)


def as_damping(damping):
    """A damping rule from a rule or a number (a number, or a traced scalar such as an injected
    hyper-parameter, means `Constant(number)`)."""
    if hasattr(damping, "init") and hasattr(damping, "update"):
        return damping
    if isinstance(damping, (bool, str)) or jnp.ndim(damping) != 0:
        raise TypeError(f"damping must be a damping rule or a number, got {damping!r}")
    return Constant(damping if isinstance(damping, jax.Array) else float(damping))


def adapts(rule, step) -> jax.Array:
    """Whether the rule adapts λ after step `step` (counted from 0): (step + 1) % every == 0, every
    the rule's `every` (1 when it has none: after every step)."""
    every = getattr(rule, "every", 1)
    return jnp.asarray(True) if every == 1 else (jnp.asarray(step) + 1) % every == 0


def next_damping(rule, damping, rho, step) -> jax.Array:
    """The rule's λ after step `step` (counted from 0) with reduction ratio ρ, in λ's dtype (the
    optimizer's state keeps λ in the parameters' dtype); λ unchanged after a step at which the
    rule does not adapt (`adapts`)."""
    new = jnp.asarray(rule.update(damping, rho), damping.dtype)
    if getattr(rule, "every", 1) == 1:
        return new
    return jnp.where(adapts(rule, step), new, damping)
