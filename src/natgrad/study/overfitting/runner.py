"""How an overfitting job draws its batches and runs its updates.

Update `t` draws its batches from `jax.random.fold_in(key, t)`, so a run is a pure function of its
seed. The jittable methods (`natgrad.study.methods.build_method`) run `n` updates inside one
compiled `fori_loop` whose `n` is an argument (one program for every chunk between evaluations,
however the evaluations are spaced); K-FAC calls kfac-jax's own compiled step once per update.
The seeds of a first-order method can run as one vmapped program (`VmappedRunner`, `VMAPPED_KINDS`).

Every runner carries a pytree `carry` (its parameters and optimizer states) and answers
`params(carry)`, the parameters of each of its seeds, so a job's loop reads them all alike.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study import kinds, methods
from natgrad.study.checked import checked, raise_failed


def sample(key, n, size):
    """`min(size, n)` distinct indices of `range(n)`, uniformly at random."""
    size = min(int(size), int(n))
    if size == n:
        return jax.random.permutation(key, n)
    return jax.random.choice(key, n, (size,), replace=False)


def device_data(data):
    """The arrays the batches are drawn from, on the default device. The pool has inputs only."""
    return {"x_train": jnp.asarray(data.x_train), "y_train": jnp.asarray(data.y_train),
            "x_unlabeled": jnp.asarray(data.x_unlabeled)}


def disjoint_sizes(n, batch_size, metric_batch_size):
    """Sizes of a gradient minibatch and a disjoint metric minibatch from `n` examples: as asked
    when they fit, else the `n` examples shared in proportion (each part at least one example),
    as every other batch size is capped at the training set's size."""
    if batch_size + metric_batch_size <= n:
        return batch_size, metric_batch_size
    b = min(n - 1, max(1, round(n * batch_size / (batch_size + metric_batch_size))))
    return b, n - b


def draw_batch(kind, hyper, data, key):
    """The `methods.Batch` of one update of `kind`: `batch_size` training examples, and the metric's
    inputs where the kind takes them elsewhere: `metric_batch_size` other training examples,
    disjoint from the gradient's (one permutation cut in two, `disjoint_sizes`), or pool inputs
    (alone, or after the gradient's own inputs)."""
    n = data["x_train"].shape[0]
    source = methods.METRIC_SOURCE.get(kind)
    if source == "different":
        order = jax.random.permutation(key, n)
        b, m = disjoint_sizes(n, int(hyper["batch_size"]), int(hyper["metric_batch_size"]))
        idx, jdx = order[:b], order[b:b + m]
        return methods.Batch(data["x_train"][idx], data["y_train"][idx],
                             data["x_train"][jdx], data["y_train"][jdx])
    if source is None:
        idx = sample(key, n, hyper["batch_size"])
        return methods.Batch(data["x_train"][idx], data["y_train"][idx])
    kg, km = jax.random.split(key)
    idx = sample(kg, n, hyper["batch_size"])
    x, y = data["x_train"][idx], data["y_train"][idx]
    if source in ("unlabeled", "batch_plus_unlabeled"):
        pool = data["x_unlabeled"]
        unlabeled = pool[sample(km, pool.shape[0], hyper["metric_batch_size"])]
        metric_x = unlabeled if source == "unlabeled" else jnp.concatenate([x, unlabeled])
        return methods.Batch(x, y, metric_x)
    return methods.Batch(x, y)


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _signature(*trees):
    leaves, treedef = jax.tree_util.tree_flatten(trees)
    return treedef, tuple((getattr(x, "shape", ()), str(getattr(x, "dtype", type(x))))
                          for x in leaves)


#: Compiled update loops shared by every runner of one process (tests and benchmarks build many),
#: keyed by the method's settings, n and the arguments' shapes.
_EXECUTABLES = {}


#: The kinds whose seeds a job may vmap: measured on a 2-core AVX-512 EPYC at restricted-MNIST
#: sizes (MLP 500, 4 seeds side by side with 4 single runs), MSGD's vmapped updates took 0.79× the
#: time, NG-unlabeled's 1.14× (its solver's while-loops run to the slowest seed), so natural
#: gradient keeps one seed per job; K-FAC is not jittable.
VMAPPED_KINDS = kinds.of_role(kinds.FIRST_ORDER)


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class CompiledRunner:
    """`n` updates of a jittable method in one compiled loop; `compile` ahead of time, so that the
    wall-clock a job measures excludes compilation."""

    def __init__(self, kind, hyper, model, data):
        self.kind, self.hyper, self.model, self.data = kind, hyper, model, data
        self.method = methods.build_method(kind, hyper, model.apply)

    def init(self, params, keys):
        """The carry (params, state) of one seed (`params`, `keys`: one-element lists)."""
        del keys
        return params[0], self.method.init(params[0])

    @staticmethod
    def params(carry):
        return [carry[0]]

    def _loop(self, params, state, data, key, t0, n):
        def body(i, carry):
            p, s, rejected = carry
            t = t0 + i
            batch = draw_batch(self.kind, self.hyper, data, jax.random.fold_in(key, t))
            p, s, record = self.method.update(p, s, batch, t)
            return p, s, rejected + record.rejected

        return jax.lax.fori_loop(0, n, body, (params, state, jnp.int32(0)))

    in_axes = None  # one seed, checked

    def compile(self, carry, key):
        params, state = carry
        ident = (self.kind, self.model, _freeze(self.hyper), self.in_axes,
                 _signature(params, state, self.data, key))
        if ident not in _EXECUTABLES:
            fn = checked(self._loop, in_axes=self.in_axes)
            _EXECUTABLES[ident] = fn.lower(params, state, self.data, key, jnp.int32(0),
                                           jnp.int32(1)).compile()
        return _EXECUTABLES[ident]

    def run(self, carry, key, t0, n):
        """(carry, steps rejected per seed) after updates `t0` to `t0 + n`."""
        params, state = carry
        error, (params, state, rejected) = self.compile(carry, key)(
            params, state, self.data, key, jnp.int32(t0), jnp.int32(n))
        raise_failed(error, f"{self.kind} updates {t0}-{t0 + n}")
        return (params, state), np.atleast_1d(np.asarray(rejected))


class VmappedRunner(CompiledRunner):
    """The seeds of one first-order method (`VMAPPED_KINDS`) as one vmapped compiled loop over
    their stacked parameters, states, data and keys (unchecked: first-order methods have no
    run-time checks; a non-finite loss still shows as a diverged run)."""

    in_axes = (0, 0, 0, 0, None, None)

    def __init__(self, kind, hyper, model, datas):
        if kind not in VMAPPED_KINDS:
            raise ValueError(f"{kind} runs one seed per job (vmapped: {', '.join(VMAPPED_KINDS)})")
        self.kind, self.hyper, self.model = kind, hyper, model
        self.data = _stack(datas)
        self.method = methods.build_method(kind, hyper, model.apply, checks=False)

    def init(self, params, keys):
        """The carry of the seeds: their `params` stacked, with their states."""
        del keys
        return _stack(params), _stack([self.method.init(p) for p in params])

    @staticmethod
    def params(carry):
        stacked = carry[0]
        n = jax.tree_util.tree_leaves(stacked)[0].shape[0]
        return [jax.tree.map(lambda a, j=j: a[j], stacked) for j in range(n)]


class KFACRunner:
    """K-FAC one update at a time (kfac-jax compiles its own step, in two static variants: `compile`
    runs one step of each on copies and throws the results away)."""

    def __init__(self, hyper, model, data):
        self.hyper, self.data = hyper, data
        self.kfac = methods.KFAC(hyper, model.apply)
        self._draw = jax.jit(functools.partial(draw_batch, "kfac", hyper))
        self._compiled = False

    def _batch(self, key):
        batch = self._draw(self.data, key)
        return batch.x, batch.y

    def init(self, params, keys):
        """The carry (params, state) of one seed (`params`, `keys`: one-element lists)."""
        return params[0], self.kfac.init(params[0], keys[0], self._batch(keys[0]))

    @staticmethod
    def params(carry):
        return [carry[0]]

    def _step(self, params, state, key, t):
        key = jax.random.fold_in(key, t)
        return self.kfac.step(params, state, key, self._batch(key), t)

    def compile(self, carry, key):
        params, state = carry
        if not self._compiled:
            for t in self.kfac.variant_steps():
                out = self._step(self.kfac.copy(params), self.kfac.copy_state(state), key, t)
                jax.block_until_ready(out)
            self._compiled = True

    def run(self, carry, key, t0, n):
        """(carry, [0]): K-FAC applies every step."""
        params, state = carry
        params = self.kfac.copy(params)
        for t in range(t0, t0 + n):
            params, state = self._step(params, state, key, t)
        return (params, state), np.zeros(1, np.int64)


def make_runner(kind, hyper, model, datas):
    """The runner of method `kind` for the flax `model` on the device data of each seed (`datas`:
    several only for `VMAPPED_KINDS`)."""
    if len(datas) > 1:
        return VmappedRunner(kind, hyper, model, datas)
    if kind == "kfac":
        return KFACRunner(hyper, model, datas[0])
    return CompiledRunner(kind, hyper, model, datas[0])
