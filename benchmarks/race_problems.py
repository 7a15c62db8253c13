"""The time-to-target race's problems: restricted MNIST and Hinton & Salakhutdinov's deep
autoencoder on the embedded MNIST sample, their networks (plain dense layers and the same layers as
flax modules), losses and minibatch streams (see `bench_time_to_target.py`'s docstring)."""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from natgrad import families

#: The methods raced, in the order they run and are printed.
METHODS = ("ng", "ng_kron", "ng_paper", "msgd", "adam", "kfac", "muon", "psgd_kron")
#: Methods that train on the small minibatches (the rest on the natural-gradient batch).
SMALL_BATCH = ("msgd", "adam", "muon", "psgd_kron")


@dataclasses.dataclass
class Problem:
    name: str
    apply_fn: Callable
    family: Any
    params: Any
    x: jax.Array
    t: jax.Array
    target: float
    budget: float  # seconds of update clock per run
    eval_dt: float  # seconds of update clock between evaluations: the resolution of the result
    batch: dict  # minibatch size per method
    activations: tuple = ()  # of `_forward`'s layers (for the flax view, `flax_problem`)
    seed: int = 0  # of the data's order, the initialisation and the minibatch order


def _dense(key, fan_in, fan_out, sparse):
    if sparse:  # Martens (2010): 15 non-zero N(0, 1) incoming weights per unit
        k1, k2 = jax.random.split(key)
        w = jax.random.normal(k1, (fan_in, fan_out))
        keep = jax.vmap(lambda k: jax.random.permutation(k, fan_in) < min(15, fan_in),
                        out_axes=1)(jax.random.split(k2, fan_out))
        w = jnp.where(keep, w, 0.0)
    else:  # LeCun normal
        w = jax.random.normal(key, (fan_in, fan_out)) / math.sqrt(fan_in)
    return {"w": w.astype(jnp.float32), "b": jnp.zeros(fan_out, jnp.float32)}


def _network(sizes, key, sparse):
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense(k, a, b, sparse) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _forward(activations, params, x):
    """Dense layers; activations[i] after layer i (None: linear)."""
    h = x.reshape(x.shape[0], -1)
    for layer, act in zip(params, activations):
        h = h @ layer["w"] + layer["b"]
        h = h if act is None else act(h)
    return h


MNIST_ACTS = (jnp.tanh, None)
AE_SIZES = (784, 1000, 500, 250, 30, 250, 500, 1000, 784)
AE_ACTS = (jax.nn.sigmoid,) * 3 + (None,) + (jax.nn.sigmoid,) * 3 + (None,)


class DenseStack(nn.Module):
    """`_forward` as a flax module: the same x @ kernel + bias per layer (flax's `nn.Dense`), so
    that `natgrad.preconditioners.kronecker` finds its layers by method interception."""

    widths: tuple
    activations: tuple

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        for width, act in zip(self.widths, self.activations):
            h = nn.Dense(width)(h)
            h = h if act is None else act(h)
        return h


def as_flax(params):
    """`_network`'s [{"w", "b"}] as flax variables (the same arrays, relabelled)."""
    return {"params": {f"Dense_{i}": {"kernel": layer["w"], "bias": layer["b"]}
                       for i, layer in enumerate(params)}}


def from_flax(variables):
    layers = variables["params"]
    return [{"w": layers[f"Dense_{i}"]["kernel"], "b": layers[f"Dense_{i}"]["bias"]}
            for i in range(len(layers))]


def flax_problem(problem):
    """The problem with its network as a `DenseStack` and its parameters as flax variables."""
    widths = tuple(layer["w"].shape[1] for layer in problem.params)
    model = DenseStack(widths, problem.activations)
    return dataclasses.replace(problem, apply_fn=model.apply, params=as_flax(problem.params))


def batch_sizes(small, large):
    """Each method's minibatch size: `small` for the first-order methods (`SMALL_BATCH`), `large`
    for the second-order ones."""
    return {name: small if name in SMALL_BATCH else large for name in METHODS}


def problems(a, seed=None):
    """The two problems with data order and initialisation from `seed` (default `--seed`)."""
    from natgrad.study.data import load_source

    seed = a.seed if seed is None else seed
    source = load_source("mnist5k", seed=seed)
    images = source.images.reshape(len(source.images), -1).astype(np.float32)
    key = jax.random.PRNGKey(seed)
    mnist = Problem(
        "restricted_mnist", functools.partial(_forward, MNIST_ACTS), families.Categorical(),
        _network((784, 256, 10), key, sparse=False), jnp.asarray(images[:a.mnist_train]),
        jnp.asarray(source.labels[:a.mnist_train]), a.mnist_target, a.mnist_budget, 0.01,
        batch_sizes(50, a.mnist_train), MNIST_ACTS, seed)
    x_ae = jnp.asarray(images[:a.ae_train])
    ae = Problem(
        "autoencoder", functools.partial(_forward, AE_ACTS), families.Bernoulli(),
        _network(AE_SIZES, key, sparse=True), x_ae, x_ae, a.ae_target, a.ae_budget, 0.25,
        batch_sizes(100, a.ae_ng_batch), AE_ACTS, seed)
    return [mnist, ae]


def loss_fn(problem):
    def loss(params, x, t):
        return jnp.mean(problem.family.nll(problem.apply_fn(params, x), t))

    return loss


def full_loss(problem):
    """The whole-training-set loss, in chunks of at most 1000 rows (one compiled call)."""
    loss = loss_fn(problem)
    n = problem.x.shape[0]
    chunk = math.gcd(n, 1000)
    xs = problem.x.reshape((n // chunk, chunk) + problem.x.shape[1:])
    ts = problem.t.reshape((n // chunk, chunk) + problem.t.shape[1:])

    @jax.jit
    def full(params):
        return jnp.mean(jax.lax.map(lambda b: loss(params, *b), (xs, ts)))

    return full




def batches(n, batch, seed):
    """Minibatch indices, epoch after epoch of one seeded permutation stream (the same for every
    method with the same batch size)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield jnp.asarray(order[i:i + batch])


def copy_tree(tree):
    """A copy of every leaf (a run never shares buffers with the problem's parameters)."""
    return jax.tree.map(jnp.array, tree)
