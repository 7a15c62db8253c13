"""Minibatch training with natgrad's recommended settings beside Adam at its best grid value.

Problems (the embedded scikit-learn digits, `natgrad.study.data.load_source("digits")`: 1,797
8×8 images, pixels in [0, 1], the whole set as the training set), each at `--batch` (128):

- `digits_mlp`: MLP 64-64-10, tanh, softmax output;
- `digits_deep`: MLP 64-256-256-10, tanh, softmax output.

Initialisation N(0, 1/fan_in) weights, zero biases; the minibatches are reshuffled epochs; both
come from the seed, the same for every method.

Methods:

- `adam`: optax.adam over `ADAM_GRID`, the best value (lowest median loss after `--updates`)
  kept;
- `ng`: `natgrad.NaturalGradient(apply, family)`, its defaults (RECOMMENDED economics: 5
  warm-started CG iterations, the metric on a tenth of the batch but at least 64 rows; the adaptive
  α and μ, quadratic ρ, rejection);
- `ng_13rows`: the same with the metric on a tenth of the batch only (`metric_min_rows=1`, the
  floor's absence: 13 rows at batch 128);
- `ng_minibatch`: the documented minibatch setting (docs/training_loop.md): a fixed
  `learning_rate=1.0`, no rejection, eq. 30's ρ, `SolverEconomics(max_iters=5, warm_start=0.95)`
  (the metric on the whole minibatch, `SAFE_DAMPING`: Levenberg-Marquardt floored at 0.1).

Figures, medians over `--seeds` (3) seeds: the whole-training-set loss after `LOSS_AFTER` updates;
updates and seconds to `--target` (the first update after which the training loss is at or
below it; seconds = updates × the median time of one update, measured as a jitted `lax.scan` of
`--updates` updates, compiled first; null when not reached); the rejected steps; the time of one
update; the step's compile time (`jax.jit(...).lower` + `.compile`, split into tracing and
lowering vs XLA's compile), for one step of each method; and the parts of a step on one minibatch
(`cost_split`: the forward pass, the loss and gradient, the metric's linearization with 5
products), each timed as a jitted `lax.scan` of 100 calls.

Prints one JSON object (machine named) and a table. `nice python benchmarks/bench_minibatch.py`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import natgrad

ADAM_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LOSS_AFTER = (50, 100, 300)
NG_METHODS = {
    "ng": {},
    "ng_13rows": {"economics": dataclasses.replace(natgrad.economics.RECOMMENDED,
                                                   metric_min_rows=1)},
    "ng_minibatch": {"learning_rate": 1.0, "reject": False,
                     "economics": natgrad.economics.SolverEconomics(max_iters=5, warm_start=0.95)},
}
PROBLEMS = {"digits_mlp": (64, 64, 10), "digits_deep": (64, 256, 256, 10)}
FAMILY = natgrad.families.Categorical()


def machine() -> str:
    """The CPU model and core count (or the accelerator) the figures were measured on."""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    device = jax.devices()[0]
    return f"{model}, {os.cpu_count()} cores, jax {jax.__version__} on {device.platform}"


def digits():
    from natgrad.study.data import load_source

    source = load_source("digits")
    return (jnp.asarray(source.images.reshape(len(source.images), -1), jnp.float32),
            jnp.asarray(source.labels, jnp.int32))


def init_params(sizes, key):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (fan_in, fan_out)) / np.sqrt(fan_in),
                       jnp.zeros(fan_out)))
    return params


def apply(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def batches(n, batch, updates, seed):
    """`updates` minibatch index rows from reshuffled epochs."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(updates * batch // n + 1)])
    return jnp.asarray(order[:updates * batch].reshape(updates, batch))


def ng_step(settings):
    ng = natgrad.NaturalGradient(apply, FAMILY, **settings)

    def step(carry, batch):
        params, state = carry
        params, state, info = ng.step(params, state, batch)
        return (params, state), info.rejected

    return ng.init, step


def adam_step(lr):
    tx = optax.adam(lr)

    def step(carry, batch):
        params, state = carry
        x, y = batch
        grads = jax.grad(lambda p: jnp.mean(FAMILY.nll(apply(p, x), y)))(params)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), jnp.int32(0)

    return tx.init, step


def run(method, x, y, params, idx, with_curve):
    """The run's final (params, state), rejected count and, `with_curve`, the training loss after
    every update."""
    init, step = method

    def body(carry, i):
        carry, rejected = step(carry, (x[i], y[i]))
        loss = jnp.mean(FAMILY.nll(apply(carry[0], x), y)) if with_curve else jnp.zeros(())
        return carry, (rejected, loss)

    carry, (rejected, curve) = jax.lax.scan(body, (params, init(params)), idx)
    return carry[0], jnp.sum(rejected), curve


def measure(method, x, y, params, idx, target, repeats=3):
    """Loss curve, rejected steps, seconds per update (median of `repeats` timed runs)."""
    curve_run = jax.jit(functools.partial(run, method, with_curve=True))
    _, rejected, curve = curve_run(x, y, params, idx)
    timed = jax.jit(functools.partial(run, method, with_curve=False))
    jax.block_until_ready(timed(x, y, params, idx))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(timed(x, y, params, idx))
        times.append(time.perf_counter() - start)
    per_update = statistics.median(times) / idx.shape[0]
    curve = np.asarray(curve)
    hit = np.flatnonzero(curve <= target)
    updates = int(hit[0]) + 1 if hit.size else None
    return {"curve": curve, "rejected": int(rejected), "seconds_per_update": per_update,
            "updates_to_target": updates,
            "seconds_to_target": None if updates is None else updates * per_update}


def compile_seconds(method, x, y, params, batch):
    """(trace + lower, XLA compile) seconds of one jitted update."""
    init, step = method
    fn = jax.jit(lambda carry, b: step(carry, b))
    carry = (params, init(params))
    start = time.perf_counter()
    lowered = fn.lower(carry, (x[:batch], y[:batch]))
    traced = time.perf_counter() - start
    lowered.compile()
    return traced, time.perf_counter() - start - traced


def cost_split(x, y, params, batch, calls=100):
    """Milliseconds per call of a step's parts on one minibatch."""
    xb, yb = x[:batch], y[:batch]
    loss = natgrad.mean_nll(apply, xb, yb, FAMILY)

    def products(p):
        matvec = natgrad.ggn_operator(apply, p, xb, FAMILY)
        v = p
        for _ in range(5):
            v = jax.tree_util.tree_map(lambda a: a / (1.0 + jnp.max(jnp.abs(a))), matvec(v))
        return v

    parts = {"forward": loss, "loss_and_gradient": jax.value_and_grad(loss),
             "metric_and_5_products": products}
    out = {}
    for name, fn in parts.items():
        def scanned(p, fn=fn):
            def body(c, _):
                return jax.tree_util.tree_map(lambda a: a * 1.0, c), fn(c)
            return jax.lax.scan(body, p, None, length=calls)[1]
        timed = jax.jit(scanned)
        jax.block_until_ready(timed(params))
        start = time.perf_counter()
        jax.block_until_ready(timed(params))
        out[name] = (time.perf_counter() - start) / calls * 1e3
    return out


def _median(values):
    values = [v for v in values]
    if any(v is None for v in values):
        return None
    return float(statistics.median(values))


def summarise(runs, target):
    """Medians over seeds of one method's runs."""
    out = {f"loss_after_{k}": _median([float(r["curve"][k - 1]) for r in runs])
           for k in LOSS_AFTER if k <= len(runs[0]["curve"])}
    out.update(updates_to_target=_median([r["updates_to_target"] for r in runs]),
               seconds_to_target=_median([r["seconds_to_target"] for r in runs]),
               seconds_per_update=_median([r["seconds_per_update"] for r in runs]),
               rejected=_median([r["rejected"] for r in runs]), target=target,
               reached=sum(r["updates_to_target"] is not None for r in runs))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.05,
                        help="training cross-entropy (nats) to reach")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    a = parser.parse_args(argv)
    x, y = digits()
    report = {"machine": machine(), "batch": a.batch, "updates": a.updates, "seeds": a.seeds,
              "target": a.target, "adam_grid": list(ADAM_GRID), "problems": {}}
    for name in a.problems:
        sizes = PROBLEMS[name]
        seeds = range(a.seeds)
        setups = [(init_params(sizes, jax.random.key(s)), batches(len(x), a.batch, a.updates, s))
                  for s in seeds]
        results = {}
        adam_best = None
        for lr in ADAM_GRID:
            runs = [measure(adam_step(lr), x, y, p, idx, a.target) for p, idx in setups]
            summary = summarise(runs, a.target)
            results[f"adam_{lr:g}"] = summary
            last = summary[f"loss_after_{max(k for k in LOSS_AFTER if k <= a.updates)}"]
            if adam_best is None or last < adam_best[1]:
                adam_best = (f"adam_{lr:g}", last)
        for method, settings in NG_METHODS.items():
            runs = [measure(ng_step(settings), x, y, p, idx, a.target) for p, idx in setups]
            results[method] = summarise(runs, a.target)
        params = setups[0][0]
        methods = {"adam": adam_step(1e-2), **{m: ng_step(s) for m, s in NG_METHODS.items()}}
        for method, built in methods.items():
            traced, compiled = compile_seconds(built, x, y, params, a.batch)
            key = method if method != "adam" else adam_best[0]
            results[key]["compile_trace_s"], results[key]["compile_xla_s"] = traced, compiled
        report["problems"][name] = {"sizes": list(sizes), "adam_best": adam_best[0],
                                    "methods": results,
                                    "step_parts_ms": cost_split(x, y, params, a.batch)}
    print(table(report))
    print(json.dumps(report))  # the last line, as every benchmark's


def table(report):
    rows = [f"machine: {report['machine']}; batch {report['batch']}, {report['updates']} updates, "
            f"medians of {report['seeds']} seeds, target {report['target']} nats"]
    for name, prob in report["problems"].items():
        rows.append(f"\n{name} {prob['sizes']} (Adam's best: {prob['adam_best']})")
        rows.append(f"{'method':>14} {'L@50':>8} {'L@100':>8} {'L@300':>8} {'upd→tgt':>8} "
                    f"{'s→tgt':>8} {'ms/upd':>7} {'rej':>5} {'trace s':>8} {'xla s':>6}")
        for method, r in prob["methods"].items():
            if method.startswith("adam") and method != prob["adam_best"]:
                continue

            def f(v, fmt):
                return "-" if v is None else format(v, fmt)

            rows.append(f"{method:>14} {f(r.get('loss_after_50'), '8.4f')} "
                        f"{f(r.get('loss_after_100'), '8.4f')} {f(r.get('loss_after_300'), '8.4f')} "
                        f"{f(r['updates_to_target'], '8.0f')} {f(r['seconds_to_target'], '8.3f')} "
                        f"{r['seconds_per_update'] * 1e3:7.3f} {f(r['rejected'], '5.0f')} "
                        f"{f(r.get('compile_trace_s'), '8.2f')} {f(r.get('compile_xla_s'), '6.2f')}")
        rows.append("step parts (ms per call): " + ", ".join(
            f"{k} {v:.3f}" for k, v in prob["step_parts_ms"].items()))
    return "\n".join(rows)


if __name__ == "__main__":
    main()
