"""Kronecker-factored (K-FAC) preconditioner for the natural-gradient solve.

Martens & Grosse (2015) approximate the Fisher's block of one dense layer, weights W (in × out,
flax's layout) and bias b stacked as the (in+1) × out block [W; b], by a Kronecker product

    F_layer ≈ A ⊗ G,  A = E[ã ãᵀ],  G = E[g gᵀ],

ã = [a; 1] the layer's input (with a 1 when it has a bias) and g the gradient of the per-example
NLL with respect to the layer's output (its pre-activation), the targets drawn from the model's
own distribution, so that E is the Fisher's expectation. natgrad's metric is the mean over the
batch, M = (1/n) Σ_i J_iᵀ F_r,i J_i, so A and G are means over the batch too and their product is
on the scale of M and of λ. `KroneckerFactors` preconditions CG and MINRES-QLP with

    M⁻¹ [W; b] = (A + π√λ I)⁻¹ [W; b] (G + (√λ/π) I)⁻¹,  π = √((tr A / dim A) / (tr G / dim G))

per layer (M&G §6.3: the damping λ split between the factors, π balancing their scales), which
is (A + π√λ I) ⊗ (G + √λ/π I) = A ⊗ G + … + λ I inverted, one layer at a time (block diagonal).

Convolutions (flax `nn.Conv`, one batch axis, no feature groups or mask) are factored the same
way on their patches (Grosse & Martens 2016, "KFC"): ã the input patch at each output location
(ordered as the kernel's `(*window, in_channels)` rows), A = (1/n) Σ_i Σ_t ã_it ã_itᵀ (summed over
the T locations), G = (1/(nT)) Σ_i Σ_t g_it g_itᵀ (their mean); a Dense layer applied to inputs
with axes between the batch and the features (and a layer called more than once) is treated
likewise, each extra row a location.

Design (why this and not kfac-jax's estimator): the library's models are flax modules, and flax's
method interception finds every `nn.Dense` / `nn.Conv` call of `apply_fn` without a graph matcher
or a registration inside the model (`_flax_layers`): one forward pass records each layer's input,
and one VJP with respect to zero perturbations of the layers' outputs gives the per-example g.
kfac-jax would bring its own pinned jax and a second optimizer's machinery for what is here one
forward pass and one VJP per sample.

- Targets: `estimator="sampled"` (default) draws `samples` targets per example from the family
  (`family.sample`): the cotangent of sample j is ∇_r Σ_i nll(r_i, t_ij) with t_j drawn with key
  `jax.random.fold_in(k, j)`, k the refresh's key (the state's key is split into (next key, k) at
  every refresh call). `estimator="exact"` takes the expectation exactly: the cotangents are the
  columns of the symmetric square root of each example's r-space Fisher F_r (from
  `family.output_metric_vp` on the basis), so G = (1/n) Σ_i J_iᵀ F_r,i J_i with J_i = ∂r_i/∂s_i;
  it costs one VJP per output (cheap for 10 classes, not for 784 Bernoulli pixels). The
  `targets` argument of `refresh` is not used (the metric is the Fisher, not the empirical one).
- Cadences (K-FAC's T₂ and T₃): the factors' statistics are accumulated at every
  `statistics_every`-th `refresh` call (default every call, as kfac-jax's
  `curvature_update_period=1`), and their damped inverses recomputed at every `every`-th call from
  the factors as they stand after that call's accumulation, with the λ of that call, then kept
  until the next inversion (K-FAC's `inverse_update_period`).
- Inverses: explicit damped inverses.
  The λ inside M⁻¹ only shapes the preconditioner: the solver still solves (M + λI)x = b with the
  current λ, so a stale λ costs iterations, never accuracy. An eigendecomposition would let M⁻¹
  follow λ between refreshes, but on XLA:CPU `eigh` of a 1000 × 1000 float32 matrix took 2.3 s
  where `jnp.linalg.inv` (LU) took 0.13-0.2 s and a Cholesky factorisation alone 0.4-0.6 s
  (2-core AVX-512 EPYC, cores shared), and applying an eigenbasis costs four matrix products per
  layer instead of two, paid at every Krylov iteration. So the damped factors are inverted by LU
  (well conditioned by the damping and the floor below) and symmetrised.
- Float32 safety: each factor's damping is floored at 100·eps·tr(factor) (condition number
  ≤ 1/(100·eps), about 10⁵ in float32), so λ = 0 or a singular factor (always-zero input pixels,
  fewer examples than inputs) still gives a finite SPD inverse; a factor with zero trace and
  λ = 0 gets damping 1, a non-finite inverse the identity; π is 1 when a trace is 0.
- Parameters outside the factored layers (and layers the interceptor did not see) get
  M⁻¹ v = v / c with c = (mean over the factored layers of (tr A/dim A)(tr G/dim G)) + λ: the
  average diagonal of the damped Kronecker blocks. The identity would ignore the blocks' scale
  (curvature of 10⁻³ next to an unscaled coordinate), and 1/λ alone assumes no curvature and is
  infinite at λ = 0; c is finite and positive whenever any layer has curvature (else 1).
- Running averages: with `decay` > 0 the factors are exponential moving averages, `decay` stated
  per step (kfac-jax's `curvature_ema`): weight min(decay^s, 1 − 1/k) on the old factors at the
  k-th accumulation, s = `statistics_every` (M&G §5), so a batch's weight falls by `decay` per step
  whatever the cadence and the first accumulation is that batch's estimate alone; `decay=0` uses
  only the latest batch.

`KroneckerFactors` is a `natgrad.preconditioners.Preconditioner` (the protocol
`natgrad.economics.SolverEconomics(preconditioner=...)` calls), its state a `KroneckerState`.
Layers are found by the flax parameter names (`_flax_layers.find_layers`) and their calls in
flax linen (`nn.Dense`, `nn.Conv`) and nnx (`nnx.Linear`) models; a plain-function model declares
each dense layer by computing it with `dense_layer(x, kernel, bias)`. A model none of whose calls
is found is refused (`refresh` raises) rather than left silently unpreconditioned.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .. import pytree
from ._flax_layers import dense_layer, find_layers, intercepted, key_name, leaves_by_path, patches

PyTree = Any

__all__ = ["KroneckerFactors", "KroneckerState", "ESTIMATORS", "dense_layer"]

#: Accepted values of `KroneckerFactors.estimator`.
ESTIMATORS = ("sampled", "exact")

_HIGHEST = lax.Precision.HIGHEST


class KroneckerState(NamedTuple):
    """The preconditioner's state (a pytree).

    count: calls of `refresh` so far (int32); a call accumulates the statistics when
        count % statistics_every == 0 and inverts when count % every == 0.
    key: the PRNG key of the next refresh call.
    factors: {layer: (A, G)}, the averaged factors (zeros before the first accumulation).
    inverses: {layer: (A_inv, G_inv)}, the damped inverses applied by `inverse` (identities
        before the first inversion; a layer its batch did not reach has (I, I/c)).
    scale: c, with M⁻¹ v = v / c outside the factored layers (1 before the first inversion).
    """

    count: jax.Array
    key: jax.Array
    factors: dict
    inverses: dict
    scale: jax.Array


def _root(matrix):
    """Symmetric square root of (a batch of) PSD matrices (negative rounding clipped to 0)."""
    w, u = jnp.linalg.eigh(matrix)
    return (u * jnp.sqrt(jnp.maximum(w, 0))[..., None, :]) @ jnp.swapaxes(u, -1, -2)


def _inverse_of_damped(factor, delta):
    """(factor + δ I)⁻¹, symmetrised; the identity where it is not finite."""
    eye = jnp.eye(factor.shape[0], dtype=factor.dtype)
    inv = jnp.linalg.inv(factor + delta * eye)
    inv = 0.5 * (inv + inv.T)
    return jnp.where(jnp.all(jnp.isfinite(inv)), inv, eye)


def _damped_inverses(a, g, lam):
    """((A + δ_A I)⁻¹, (G + δ_G I)⁻¹, (tr A/dim A)(tr G/dim G)): δ_A = π√λ, δ_G = √λ/π (M&G
    §6.3), each floored at 100·eps·tr (see the module docstring)."""
    floor = 100 * jnp.finfo(a.dtype).eps
    a_trace, g_trace = jnp.trace(a), jnp.trace(g)
    a_mean, g_mean = a_trace / a.shape[0], g_trace / g.shape[0]
    ok = (a_mean > 0) & (g_mean > 0)
    pi = jnp.where(ok, jnp.sqrt(jnp.where(ok, a_mean / jnp.where(ok, g_mean, 1), 1)), 1)
    root = jnp.sqrt(jnp.maximum(lam, 0)).astype(a.dtype)

    def delta(d, trace):
        d = jnp.maximum(d, floor * trace)
        return jnp.where(d > 0, d, jnp.ones_like(d))

    return (_inverse_of_damped(a, delta(pi * root, a_trace)),
            _inverse_of_damped(g, delta(root / pi, g_trace)), a_mean * g_mean)


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _every(period, count, run, keep):
    """`run(None)` at the calls with count % period == 0, else `keep(None)` (a `lax.cond`: the
    work is skipped, not masked); `run` alone when period is 1."""
    if period == 1:
        return run(None)
    return lax.cond(count % period == 0, run, keep, None)


def _inverted(state, factors, seen, damping):
    """(inverses, scale) of `factors` damped with λ: the layers in `seen` (reached by the
    refresh's batch) inverted, the others (I, I/c), c the scale outside the factored layers."""
    lam = jnp.asarray(damping, state.scale.dtype)
    inverses, means = {}, []
    for name in state.inverses:
        if name in seen:
            a_inv, g_inv, mean = _damped_inverses(*factors[name], lam)
            inverses[name] = (a_inv, g_inv)
            means.append(mean)
    mean = sum(means) / len(means)
    scale = mean + jnp.maximum(lam, 0)
    scale = jnp.where(jnp.isfinite(scale) & (scale > 0), scale, jnp.ones_like(scale))
    for name, (a_inv, g_inv) in state.inverses.items():
        if name not in inverses:  # not seen: v / c, as outside the layers
            inverses[name] = (jnp.eye(a_inv.shape[0], dtype=a_inv.dtype),
                              jnp.eye(g_inv.shape[0], dtype=g_inv.dtype) / scale)
    return inverses, scale


@dataclasses.dataclass(frozen=True)
class KroneckerFactors:
    """K-FAC preconditioner for the natural-gradient solve (see the module docstring);
    hashable, a static argument of `jax.jit`.

    every: recompute the damped inverses at every `every`-th `refresh` call (int ≥ 1, K-FAC's T₃).
    statistics_every: accumulate the factors' statistics (one forward pass and one VJP per
        sample on the call's rows) at every `statistics_every`-th call (int ≥ 1, K-FAC's T₂).
        The calls that do neither only advance the counter and the key.
    estimator: "sampled" (targets drawn from the model) or "exact" (the expectation over the
        family's Fisher, one VJP per output).
    samples: sampled targets per example (int ≥ 1; "sampled" only).
    decay: per step, the weight of the old factors in their running average, in [0, 1) (M&G and
        kfac-jax: 0.95; decay^statistics_every per accumulation, capped at 1 − 1/k at the k-th);
        0: the latest batch alone.
    seed: seed of the sampling key (int ≥ 0).
    """

    every: int = 1
    statistics_every: int = 1
    estimator: str = "sampled"
    samples: int = 1
    decay: float = 0.95
    seed: int = 0

    def __post_init__(self):
        _check_int("every", self.every, 1)
        _check_int("statistics_every", self.statistics_every, 1)
        _check_int("samples", self.samples, 1)
        _check_int("seed", self.seed, 0)
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if (isinstance(self.decay, bool) or not isinstance(self.decay, numbers.Real)
                or not 0 <= self.decay < 1):
            raise ValueError(f"decay must be a number in [0, 1), got {self.decay!r}")

    # -- protocol -----------------------------------------------------------------------------

    def init(self, params: PyTree) -> KroneckerState:
        """Identity inverses (M⁻¹ = I until the first refresh), zero factors, the seed's key."""
        layers = find_layers(params)
        if not layers:
            names = ["/".join(map(str, p)) for p in leaves_by_path(params)]
            raise ValueError(
                "KroneckerFactors found no layer kernel (a leaf named 'kernel' with >= 2 axes) "
                f"among the params' leaves {names[:8]}{' ...' if len(names) > 8 else ''}: name "
                "each dense layer's weight 'kernel' and its bias 'bias' beside it (flax linen "
                "and nnx do), e.g. {'layer0': {'kernel': W, 'bias': b}}")
        dtype = pytree.scalar_dtype(params)
        factors, inverses = {}, {}
        for name, layer in layers.items():
            factors[name] = (jnp.zeros((layer.rows,) * 2, dtype),
                             jnp.zeros((layer.cols,) * 2, dtype))
            inverses[name] = (jnp.eye(layer.rows, dtype=dtype), jnp.eye(layer.cols, dtype=dtype))
        return KroneckerState(jnp.zeros((), jnp.int32), jax.random.PRNGKey(self.seed), factors,
                              inverses, jnp.ones((), dtype))

    def refresh(self, state: KroneckerState, apply_fn: Callable, params: PyTree, inputs: Any,
                targets: Any, family, damping) -> KroneckerState:
        """The state after one call: the factors' statistics on this batch folded into their
        running average when count % statistics_every == 0, then, when count % every == 0, their
        inverses damped with λ = `damping`; the counter and the key always advance. Each part
        that does not run is skipped (`lax.cond`), not masked. `targets` is not used (the targets
        are drawn from the model, or integrated out)."""
        del targets
        key, sample_key = jax.random.split(state.key)
        seen = tuple(jax.eval_shape(
            lambda p, x, k: self.batch_factors(apply_fn, p, x, family, k), params, inputs,
            sample_key))

        def accumulate(_):
            return self._accumulated(state, apply_fn, params, inputs, family, sample_key)

        factors = _every(self.statistics_every, state.count, accumulate,
                         lambda _: state.factors)
        inverses, scale = _every(self.every, state.count,
                                 lambda _: _inverted(state, factors, seen, damping),
                                 lambda _: (state.inverses, state.scale))
        return KroneckerState(state.count + 1, key, factors, inverses, scale)

    def inverse(self, state: KroneckerState) -> Callable[[PyTree], PyTree]:
        """v ↦ M⁻¹ v on pytrees shaped like the params: A_inv [W; b] G_inv per factored layer,
        v / c elsewhere."""
        def apply(v):
            leaves = leaves_by_path(v)
            out = {}
            for name, layer in find_layers(v).items():
                if name not in state.inverses:
                    continue
                a_inv, g_inv = state.inverses[name]
                kernel = leaves[layer.kernel]
                block = kernel.reshape(-1, layer.cols)
                if layer.bias is not None:
                    block = jnp.concatenate([block, leaves[layer.bias][None]], 0)
                block = (a_inv @ block.astype(a_inv.dtype)) @ g_inv
                rows = kernel.size // layer.cols
                out[layer.kernel] = block[:rows].reshape(kernel.shape).astype(kernel.dtype)
                if layer.bias is not None:
                    out[layer.bias] = block[rows].astype(kernel.dtype)

            def pick(path, leaf):
                key = tuple(key_name(k) for k in path)
                return out[key] if key in out else (leaf / state.scale).astype(leaf.dtype)

            return jax.tree_util.tree_map_with_path(pick, v)

        return apply

    # -- the factors --------------------------------------------------------------------------

    def _accumulated(self, state, apply_fn, params, inputs, family, key) -> dict:
        """The factors with this batch's statistics folded in: weight min(decay^s, 1 − 1/k) on
        the old ones at the k-th accumulation, s = statistics_every."""
        batch = self.batch_factors(apply_fn, params, inputs, family, key)
        k = (state.count // self.statistics_every + 1).astype(state.scale.dtype)
        weight = jnp.minimum(jnp.asarray(self.decay ** self.statistics_every, k.dtype), 1 - 1 / k)
        factors = dict(state.factors)
        for name, (a, g) in batch.items():
            old_a, old_g = state.factors[name]
            factors[name] = (weight * old_a + (1 - weight) * a, weight * old_g + (1 - weight) * g)
        return factors

    def batch_factors(self, apply_fn, params, inputs, family, key) -> dict:
        """{layer: (A, G)} on this batch (no averaging), for the layers `apply_fn` calls; `key`
        draws the sampled targets (see the module docstring)."""
        layers = find_layers(params)
        calls = []
        _, shapes = jax.eval_shape(
            lambda p, x: intercepted(apply_fn, p, x, None, calls, layers), params, inputs)
        if not any(c.layer is not None for c in calls):
            raise ValueError(
                f"KroneckerFactors found the kernels {list(layers)} in params but {len(calls)} "
                "layer calls of apply_fn, none of them on those kernels: build the model of flax "
                "nn.Dense/nn.Conv or nnx.Linear layers, or compute each dense layer of a plain "
                "function as kronecker.dense_layer(x, params[...]['kernel'], bias)")
        zeros = [jnp.zeros(out.shape, out.dtype) for _, out in shapes]

        def forward(perturbations):
            r, seen = intercepted(apply_fn, params, inputs, perturbations, None, layers)
            return r, [x for x, _ in seen]

        r, vjp_fn, layer_inputs = jax.vjp(forward, zeros, has_aux=True)
        cotangents, weight = self._cotangents(family, lax.stop_gradient(r), key)
        grads = jax.vmap(lambda c: vjp_fn(c)[0])(cotangents)  # per call: (m, *output shape)

        stats = {}  # layer -> ([ã], [g]) over its calls, locations flattened
        for call, x, g in zip(calls, layer_inputs, grads):
            if call.layer is None:
                continue
            a = x if call.conv is None else patches(x, call.conv)
            n = a.shape[0]
            a = a.reshape(n, -1, a.shape[-1])
            if layers[call.layer].bias is not None:
                a = jnp.concatenate([a, jnp.ones(a.shape[:-1] + (1,), a.dtype)], -1)
            g = g.reshape(g.shape[:2] + (-1, g.shape[-1]))
            stats.setdefault(call.layer, ([], []))
            stats[call.layer][0].append(a)
            stats[call.layer][1].append(g)

        dtype = pytree.scalar_dtype(params)
        factors = {}
        for name, (a_list, g_list) in stats.items():
            a, g = jnp.concatenate(a_list, 1), jnp.concatenate(g_list, 2)
            n, locations = a.shape[0], a.shape[1]
            a_factor = jnp.einsum("nti,ntj->ij", a, a, precision=_HIGHEST) / n
            g_factor = jnp.einsum("mntk,mntl->kl", g, g, precision=_HIGHEST) * (
                weight / (n * locations))
            factors[name] = (a_factor.astype(dtype), g_factor.astype(dtype))
        return factors

    def _cotangents(self, family, r, key):
        """(m cotangents of r, weight): sampled score vectors (weight 1/samples) or the columns
        of the square root of each example's r-space Fisher (weight 1)."""
        if self.estimator == "exact":
            basis = jnp.eye(r.shape[-1], dtype=r.dtype)
            columns = jax.vmap(lambda e: family.output_metric_vp(r, jnp.broadcast_to(e, r.shape)))(
                basis)  # columns[j][..., i] = F[i, j]
            root = _root(jnp.moveaxis(columns, 0, -1))  # (*r.shape, k)
            return jnp.moveaxis(root, -1, 0), 1.0

        def score(j):
            t = family.sample(jax.random.fold_in(key, j), r)
            return jax.grad(lambda rr: jnp.sum(family.nll(rr, t)))(r)

        return jax.vmap(score)(jnp.arange(self.samples)), 1.0 / self.samples
