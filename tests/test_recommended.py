"""`natgrad.economics.RECOMMENDED`, the settings `natgrad.NaturalGradient` uses by default, does not
diverge: on scikit-learn's digits with the whole training set as the batch (where 20 iterations, or
no damping, blow the loss up to hundreds of nats), and on both problems of
benchmarks/bench_time_to_target.py at the largest learning rate of its `ng` grid. Needs the study's
stack (scikit-learn, the embedded MNIST sample)."""
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import natgrad
from natgrad.models import MLP

sklearn_datasets = pytest.importorskip("sklearn.datasets")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_time_to_target.py"


def _losses(settings, params, batches, full_loss):
    """The whole-set loss before and after each step."""
    state = settings.init(params)
    step = jax.jit(settings.step)
    losses = [float(full_loss(params))]
    for batch in batches:
        params, state, _ = step(params, state, batch)
        losses.append(float(full_loss(params)))
    return np.array(losses)


@pytest.mark.parametrize("learning_rate", [0.5, 1.0, 2.0])
def test_recommended_settings_train_full_batch_digits(learning_rate):
    digits = sklearn_datasets.load_digits()
    x = jnp.asarray(digits.data[:1347] / 16.0, jnp.float32)
    y = jnp.asarray(digits.target[:1347], jnp.int32)
    model = MLP(hidden=(64,), outputs=10)
    family = natgrad.families.Categorical()
    settings = natgrad.NaturalGradient(model.apply, family, learning_rate=learning_rate)
    full = jax.jit(lambda p: jnp.mean(family.nll(model.apply(p, x), y)))
    losses = _losses(settings, model.init(jax.random.key(0), x[:1]), [(x, y)] * 40, full)
    assert np.all(np.isfinite(losses))
    assert losses.max() <= losses[0] * (1 + 1e-6), f"the loss rose to {losses.max():.2f}"
    assert losses[-1] < 0.1 * losses[0]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_time_to_target", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["restricted_mnist", "autoencoder"])
def test_recommended_settings_train_the_benchmark_problems(name):
    bench = _bench()
    problem = {p.name: p for p in bench.problems(bench.arguments(["--quick"]))}[name]
    rate = max(bench.GRIDS[name]["ng"])
    settings = natgrad.NaturalGradient(problem.apply_fn, problem.family, learning_rate=rate)
    size, n = problem.batch["ng"], problem.x.shape[0]
    batches = [(problem.x[i:i + size], problem.t[i:i + size])
               for i in list(range(0, n - size + 1, size)) * 4][:12]
    full = jax.jit(lambda p: jnp.mean(problem.family.nll(problem.apply_fn(p, problem.x),
                                                         problem.t)))
    losses = _losses(settings, problem.params, batches, full)
    assert np.all(np.isfinite(losses))
    assert losses.max() <= losses[0] * 1.01, f"the loss rose to {losses.max():.2f}"
    assert losses[-1] < losses[0]
