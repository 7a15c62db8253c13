"""The time-to-target race's peers and grid entries (benchmarks/race_methods.py): Muon
orthogonalises the weight matrices but the output layer's and leaves those and the biases to Adam
(checked against Nesterov Adam's first step written out, and against the Newton-Schulz
iteration's flat spectrum), and ng_kron's grid overrides reach the economics and refuse what they
do not know."""
import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

pytest.importorskip("flax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import race_methods  # noqa: E402


def _flags(**extra):
    return argparse.Namespace(kron_max_iters=1, kron_every=5, kron_statistics_every=1,
                              kron_metric_rows=1.0, kron_rows=None, kron_damping_every=5,
                              kron_min_damping=1e-8, kron_warm_start=0.0, **extra)


def test_muon_orthogonalises_inner_weights_and_leaves_the_rest_to_adam():
    sizes = (12, 10, 8, 3)
    rng = np.random.default_rng(0)
    params = [{"w": jnp.asarray(rng.normal(size=(a, b)), jnp.float32), "b": jnp.zeros(b)}
              for a, b in zip(sizes[:-1], sizes[1:])]
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    muon_rate, adam_rate = 0.05, 1e-3
    tx = optax.contrib.muon(muon_rate, adam_learning_rate=adam_rate,
                            muon_weight_dimension_numbers=race_methods.muon_dimensions(params))
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    # Nesterov Adam's first step (muon's Adam is Nesterov's): v̂ = g² and
    # m̂ = β₁(1 − β₁)g/(1 − β₁²) + g, so the update is −lr·(β₁/(1 + β₁) + 1)·g/(|g| + ε)
    nesterov = 0.9 / 1.9 + 1
    adam_first = jax.tree.map(lambda g: -adam_rate * nesterov * g / (jnp.abs(g) + 1e-8),
                              grads)
    for i, layer in enumerate(updates):
        np.testing.assert_allclose(layer["b"], adam_first[i]["b"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(updates[-1]["w"], adam_first[-1]["w"], rtol=1e-4, atol=1e-7)
    for layer, reference in zip(updates[:-1], adam_first[:-1]):
        assert not np.allclose(layer["w"], reference["w"], rtol=1e-2)
        singular = np.linalg.svd(np.asarray(layer["w"]), compute_uv=False)
        assert singular.max() / singular.min() < 2.0  # Newton-Schulz flattens the spectrum


def test_ng_kron_overrides_reach_the_economics_and_control():
    economics, control = race_methods.kron_setup((1e-4, "cg", 3, "stats", 5, "momentum", 0),
                                                 _flags())
    assert economics.max_iters == 3
    assert economics.preconditioner.statistics_every == 5
    assert economics.damping.initial == 1e-4
    assert control["momentum"] is False and control["learning_rate"] == "adaptive"
    economics, control = race_methods.kron_setup(1e-3, _flags())
    assert economics.max_iters == 1 and control["momentum"] is True


def test_ng_kron_override_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="iters"):
        race_methods.kron_setup((1e-4, "iters", 2), _flags())
