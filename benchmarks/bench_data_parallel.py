"""A natural-gradient step data-parallel over every device: the same step as on one device.

The gradient batch, on which the metric is taken too (the recommended economics with
`metric_fraction=1`: a leading fraction of a sharded batch would sit on the first device), is
sharded over a one-axis `jax.sharding.Mesh` ("batch") of all devices; the parameters and the
optimizer state are replicated. Under `jax.jit` XLA's SPMD partitioner then computes the
forward pass, the gradient and every metric-vector product on each device's rows and reduces them
over devices (all-reduce) inside the compiled step: the solver's inner products see the whole
batch. Nothing in natgrad knows about devices.

Prints one line per measurement and, last, one JSON object: `devices`, `platform`, `steps`, the
largest relative difference of the parameters after `--steps` sharded steps against the same steps
on one device (`max_relative_difference`), whether the compiled step all-reduces
(`all_reduce`), and the milliseconds per step on one device and on all (`ms_one_device`,
`ms_all_devices`).

    python benchmarks/bench_data_parallel.py                   # every device of this machine
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python benchmarks/bench_data_parallel.py
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import natgrad
from natgrad.models import MLP


def problem(batch: int, features: int, hidden: int, classes: int, seed: int = 0):
    """An MLP classification batch (random inputs, labels from a fixed linear rule)."""
    kx, kw, kp = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (batch, features))
    y = jnp.argmax(x @ jax.random.normal(kw, (features, classes)), axis=-1).astype(jnp.int32)
    model = MLP(hidden=(hidden,), outputs=classes)
    return model.apply, model.init(kp, x[:1]), x, y


def run(settings, params, batch, steps, sharding=None, replicated=None):
    """`steps` jitted steps from `params`; with shardings, the batch sharded and the rest
    replicated. Returns (params, ms per step after the first, the compiled step's HLO text)."""
    state = settings.init(params)
    if sharding is not None:
        batch = jax.device_put(batch, sharding)
        params, state = jax.device_put((params, state), replicated)
    step = jax.jit(settings.step)
    hlo = step.lower(params, state, batch).compile().as_text()
    params, state, _ = step(params, state, batch)
    jax.block_until_ready(params)
    start = time.perf_counter()
    for _ in range(steps - 1):
        params, state, _ = step(params, state, batch)
    jax.block_until_ready(params)
    return params, 1e3 * (time.perf_counter() - start) / max(1, steps - 1), hlo


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1024, help="rows per step (a multiple of the "
                   "device count)")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args(argv)
    devices = jax.devices()
    if a.batch % len(devices):
        raise SystemExit(f"--batch {a.batch} is not a multiple of the {len(devices)} devices")
    apply_fn, params, x, y = problem(a.batch, a.features, a.hidden, 10)
    economics = dataclasses.replace(natgrad.economics.RECOMMENDED, metric_fraction=1.0)
    settings = natgrad.NaturalGradient(apply_fn, natgrad.families.Categorical(), learning_rate=0.5,
                                       economics=economics)
    one, ms_one, _ = run(settings, params, (x, y), a.steps)
    mesh = Mesh(np.array(devices), ("batch",))
    many, ms_many, hlo = run(settings, params, (x, y), a.steps,
                             NamedSharding(mesh, PartitionSpec("batch")),
                             NamedSharding(mesh, PartitionSpec()))
    diffs = [float(jnp.max(jnp.abs(a_ - b_)) / jnp.maximum(jnp.max(jnp.abs(a_)), 1e-30))
             for a_, b_ in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(many))]
    result = {"devices": len(devices), "platform": devices[0].platform, "steps": a.steps,
              "batch": a.batch, "max_relative_difference": max(diffs),
              "all_reduce": "all-reduce" in hlo, "ms_one_device": round(ms_one, 2),
              "ms_all_devices": round(ms_many, 2)}
    print(f"{len(devices)} {devices[0].platform} devices, batch {a.batch}: one device "
          f"{ms_one:.1f} ms/step, all {ms_many:.1f} ms/step; parameters after {a.steps} steps "
          f"differ by {max(diffs):.2e} (relative)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
