"""Output families: the conditional distribution p(t | r) a network's pre-activations r define.

Each family knows

- `mean(r)`: the output y = σ(r) (identity, sigmoid, softmax);
- `nll(r, t)`: the negative log-likelihood −log p(t | r), one value per example (summed over the
  output dimensions), shape `r.shape[:-1]`;
- `output_metric_vp(r, u)`: the Fisher information of p(t | r) with respect to r, times u, example by
  example: `F_r u` with `F_r = E_{t~p(t|r)}[∇_r log p ∇_r log pᵀ]`. For these matching (canonical)
  families it equals the Hessian of the NLL with respect to r, whatever t is (paper §7, eq. 14-21), so
  `J_rᵀ F_r J_r` is both the Fisher of eq. 8 and the extended Gauss-Newton matrix;
- `sample(key, r)`: draws t ~ p(t | r);
- `check_targets(r, t, name)`: refuses targets that do not fit the outputs, by shape and dtype
  (static under `jax.jit`), with a message naming `name`; `nll` calls it, so targets that would
  broadcast silently (e.g. (n, 1) labels) fail at trace time instead of training on garbage;
- `targets_in_range(r, t)`: whether every target is a value p(t | r) can take (a traced boolean:
  the values are known only at run time; the optimizer's opt-in `checks=True` uses it).

The r-space metrics are

- Gaussian(std): `F_r = I / std²` (eq. 9 and 24 write β²; the Fisher of N(y, std²) is JᵀJ / std², as
  tests/test_families.py checks against E_t[score scoreᵀ]);
- Bernoulli: `F_r = diag(y (1 − y))`, y = sigmoid(r) (eq. 10, 17-18);
- Categorical: `F_r = diag(y) − y yᵀ`, y = softmax(r) (eq. 11, 19-21).

Families are frozen dataclasses (hashable), so they can be passed as static arguments to `jax.jit`.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

__all__ = ["Family", "Gaussian", "Bernoulli", "Categorical"]


class Family:
    """Interface shared by the output families (see the module docstring)."""

    def check_targets(self, r, t, name: str = "targets") -> None:
        """Targets shaped like the outputs r (arrays or `jax.ShapeDtypeStruct`); ValueError else."""
        if tuple(t.shape) != tuple(r.shape):
            raise ValueError(
                f"{name} have shape {tuple(t.shape)} but {type(self).__name__} needs them shaped "
                f"like the model's outputs, {tuple(r.shape)}")

    def targets_in_range(self, r, t) -> jax.Array:
        """All targets finite (the Gaussian's support is the real line)."""
        del r
        return jnp.all(jnp.isfinite(jnp.asarray(t)))

    def mean(self, r):
        raise NotImplementedError

    def nll(self, r, t):
        raise NotImplementedError

    def output_metric_vp(self, r, u):
        raise NotImplementedError

    def sample(self, key, r):
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Gaussian(Family):
    """Independent Gaussians around the linear outputs: t_k ~ N(r_k, std²).

    `nll` includes the normaliser `½ log(2π std²)` per output, so it is the true −log p(t | r).
    """

    std: float = 1.0

    def mean(self, r):
        return r

    def nll(self, r, t):
        t = jnp.asarray(t)
        self.check_targets(r, t)
        var = self.std**2
        sq = jnp.sum(jnp.square(t - r), axis=-1)
        const = 0.5 * r.shape[-1] * math.log(2.0 * math.pi * var)
        return 0.5 * sq / var + const

    def output_metric_vp(self, r, u):
        return u / (self.std**2)

    def sample(self, key, r):
        return r + self.std * jax.random.normal(key, r.shape, r.dtype)


@dataclasses.dataclass(frozen=True)
class Bernoulli(Family):
    """Independent Bernoulli outputs: t_k ∈ {0, 1}, p(t_k = 1) = sigmoid(r_k) (cross-entropy loss).

    Targets may also be probabilities in [0, 1] (soft targets); the NLL is then the cross-entropy.
    """

    def mean(self, r):
        return jax.nn.sigmoid(r)

    def targets_in_range(self, r, t) -> jax.Array:
        """All targets in [0, 1] (a probability of the positive outcome)."""
        del r
        t = jnp.asarray(t)
        return jnp.all((t >= 0) & (t <= 1))

    def nll(self, r, t):
        # −t log σ(r) − (1 − t) log(1 − σ(r)) = softplus(r) − t r, stable for large |r|.
        t = jnp.asarray(t)
        self.check_targets(r, t)
        t = t.astype(r.dtype)
        return jnp.sum(jax.nn.softplus(r) - t * r, axis=-1)

    def output_metric_vp(self, r, u):
        y = jax.nn.sigmoid(r)
        return y * (1.0 - y) * u

    def sample(self, key, r):
        return jax.random.bernoulli(key, jax.nn.sigmoid(r)).astype(r.dtype)


@dataclasses.dataclass(frozen=True)
class Categorical(Family):
    """One categorical output over the last axis: p(t = k) = softmax(r)_k (softmax cross-entropy).

    Targets are integer class labels of shape `r.shape[:-1]`, or one-hot / probability vectors of
    shape `r.shape`. `sample` returns integer labels.
    """

    def mean(self, r):
        return jax.nn.softmax(r, axis=-1)

    def check_targets(self, r, t, name: str = "targets") -> None:
        """Integer labels shaped like r without its last axis, or one-hot/probability targets
        shaped like r; an (n, 1) integer array is refused rather than broadcast as soft targets."""
        lead, k, shape = tuple(r.shape[:-1]), r.shape[-1], tuple(t.shape)
        labels, onehot = f"{lead} integer labels", f"{tuple(r.shape)} one-hot/probability targets"
        integer = jnp.issubdtype(t.dtype, jnp.integer)
        if len(shape) == len(r.shape) - 1:
            if shape != lead:
                raise ValueError(f"{name} have shape {shape}; Categorical over outputs "
                                 f"{tuple(r.shape)} needs {labels} or {onehot}")
            if not integer:
                raise TypeError(f"{name} of shape {shape} are class labels and must be integers, "
                                f"got {t.dtype}; pass {labels} or {onehot}")
        elif shape != tuple(r.shape):
            if integer and len(shape) == len(r.shape) and shape[-1] == 1 and shape[:-1] == lead:
                raise ValueError(f"{name} are integer labels of shape {shape}, which would "
                                 f"broadcast as soft targets; pass {labels} or {onehot}")
            raise ValueError(f"{name} have shape {shape}, but the model has {k} outputs "
                             f"{tuple(r.shape)}: Categorical needs {labels} or {onehot}")

    def targets_in_range(self, r, t) -> jax.Array:
        """Integer labels in [0, k) for k outputs; soft targets non-negative, summing to 1."""
        t = jnp.asarray(t)
        if jnp.issubdtype(t.dtype, jnp.integer) and t.ndim == r.ndim - 1:
            return jnp.all((t >= 0) & (t < r.shape[-1]))
        total = jnp.sum(t, axis=-1)
        return jnp.all(t >= 0) & jnp.all(jnp.abs(total - 1) <= 1e-3)

    def nll(self, r, t):
        logz = jax.nn.logsumexp(r, axis=-1)
        t = jnp.asarray(t)
        self.check_targets(r, t)
        if t.ndim == r.ndim:  # one-hot or soft targets
            return logz * jnp.sum(t, axis=-1) - jnp.sum(t * r, axis=-1)
        picked = jnp.take_along_axis(r, t[..., None].astype(jnp.int32), axis=-1)[..., 0]
        return logz - picked

    def output_metric_vp(self, r, u):
        y = jax.nn.softmax(r, axis=-1)
        yu = y * u
        return yu - y * jnp.sum(yu, axis=-1, keepdims=True)

    def sample(self, key, r):
        return jax.random.categorical(key, r, axis=-1)
