"""Wall-clock seconds to a training-loss target: natural gradient (recommended economics and the
paper's protocol) vs MSGD, Adam and K-FAC, on restricted MNIST and on the deep autoencoder.

Problems (data: the embedded MNIST sample `mnist5k`, `natgrad.study.data.load_source`):

- `restricted_mnist`: the first `--mnist-train` digits, MLP 784-256-10 (tanh, LeCun-normal
  initialisation), softmax output; target: training cross-entropy `--mnist-target` (nats).
- `autoencoder`: Hinton & Salakhutdinov's deep autoencoder 784-1000-500-250-30 with the symmetric
  decoder 30-250-500-1000-784, logistic units (the 30-unit code layer linear, as theirs), Bernoulli
  output (sigmoid cross-entropy summed over the 784 pixels), on the first `--ae-train` digits;
  Martens' (2010) sparse initialisation (15 non-zero N(0, 1) weights per unit, zero biases);
  target: training reconstruction cross-entropy `--ae-target` (nats per digit), by default one
  that Adam, best of its grid, reaches in the second half of the budget on an AVX2 machine (60
  nats in 45 s: calibrated on a 2-core AVX2 EPYC, where Adam's grid stood at 55.7, 58.5 and 70.6
  after 40 s; on the AVX-512 machine of README's figures its best reaches it at 21.5 s; 90 in 10 s
  with `--quick`).

Methods, each from the same initial parameters, with the same minibatch order:

- `ng`: `natgrad.natural_gradient_step` with the library's recommended economics
  (`natgrad.economics.RECOMMENDED`: warm start from 0.95 × the previous direction, the metric on
  the first tenth of the gradient batch), Levenberg-Marquardt damping, CG for `--ng-max-iters`
  (5) iterations;
- `ng_kron`: the exact metric's solve preconditioned by Kronecker factors
  (`natgrad.preconditioners.kronecker.KroneckerFactors`, K-FAC's per-layer A ⊗ G) inside K-FAC's
  step control (`KRON_CONTROL`, `kron_economics`): `--kron-max-iters` (1) CG iterations from
  zero (`--kron-warm-start`, default 0; one iteration from zero is K-FAC's direction), α and μ
  minimising the exact damped quadratic model over span{−ng, δ₀}, ρ against that model, the
  exact metric on `--kron-metric-rows` (1: the whole gradient batch, where K-FAC takes its model),
  Levenberg-Marquardt λ adapted every `--kron-damping-every` (5) steps (so ρ's forward pass is paid once per 5 steps), no rejection;
  the factors fed as K-FAC feeds them: statistics accumulated every `--kron-statistics-every` (1)
  steps on `--kron-rows` of the gradient batch (default the metric's rows), decay 0.95 per step,
  inverses every `--kron-every` (5) steps. Its grid is the initial λ, and beside it entries
  `("fixed", η)` with the last round's control around the same factors: a fixed step size η, no
  momentum, ρ against the first-order prediction, 3 warm-started CG iterations, λ from 1 adapted
  every step and floored at 1e-3 (`kron_setup`). Its networks are the same
  dense layers written as flax modules (`DenseStack`, which the preconditioner's method
  interception finds), the parameters relabelled at the step's boundary (`as_flax` /
  `from_flax`: the same arrays);
- `ng_paper`: the paper's protocol: zero start, 20 CG iterations (rtol 1e-4), metric on the whole
  gradient batch, Levenberg-Marquardt damping;
- `msgd` (momentum 0.9) and `adam` (optax), on small minibatches;
- `kfac`: kfac-jax's optimizer with its adaptive learning rate, momentum and damping (adapted
  every 5 steps), inverses every 5 steps, curvature EMA 0.95 per step on the whole batch; its grid
  holds initial dampings (kfac-jax's default floor, no burn-in) and `"example"`, kfac-jax's own
  example settings for this autoencoder (`KFAC_EXAMPLE`: initial damping 150, floor 1e-5, ceiling
  1000, 5 burn-in steps, their batches inside the first update's clock).

Every method runs once per value of its grid (`GRIDS`, written below: learning rates; ng_kron's
initial λ; K-FAC's settings) and the best value is kept; its time to target is then the median of
`--repeats` (3) timed runs of that value (the grid's run and 2 more: this machine's clock varies by
±20-30 % from run to run). The clock counts the updates only: each run is
compiled and warmed up on copies first, and the evaluations of the whole-training-set loss (at the
start, then after the first update that ends 0.01 s (restricted MNIST) or 0.25 s (autoencoder) of
clock after the last one: after every update of a slower method) are not counted. A run stops at
the target or when its clock passes the problem's budget; time to target is the clock at the first
evaluation at or below the target (null if none).

After the runs, a per-step cost report for `ng`, `ng_kron` and `ng_paper` (their best runs): CG
iterations per step, and the step's time split into the gradient, the metric products
(linearization plus iterations × one product, timed as jitted loops of products on the step's
metric batch), the solver's vector work (the same solver, iterations and options on a diagonal
operator, whose product is one vector pass), the preconditioner (its statistics over
`statistics_every` steps, its inversion over `every` steps, one application per iteration) and
the step control (momentum's product with the metric, ρ's forward pass over the damping's
`every` steps); the measured whole step is printed beside. The metric products include the warm
start's one product per step (the start's residual).

Then the loss table: each method at its best grid value, the whole-training-set loss after 20, 40
and 60 updates (`LOSS_AFTER`), median over `--loss-seeds` (3) seeds (data order, initialisation
and minibatch order from seeds `--seed`, `--seed` + 1, …), untimed: a count of updates does not
depend on the machine's load, so these figures compare methods on a shared machine.

The last line printed is one JSON object `{"restricted_mnist": {"ng": s, "ng_kron": s,
"ng_paper": s, "msgd": s, "adam": s, "kfac": s}, "autoencoder": {...}}` (seconds, or null if not
reached).

    python benchmarks/bench_time_to_target.py           # the full run (about 45 min on 2 CPU cores)
    python benchmarks/bench_time_to_target.py --quick   # smaller budgets, one grid value, one
                                                        # repeat and one seed (~5 min)
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import statistics
import sys
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import natgrad
from natgrad import families
from natgrad.curvature import leading_rows
from natgrad.economics import PAPER, RECOMMENDED, SolverEconomics
from natgrad.preconditioners.kronecker import KroneckerFactors
from natgrad.solvers import Progress

METHODS = ("ng", "ng_kron", "ng_paper", "msgd", "adam", "kfac")


def kron_economics(a, initial=1.0):
    """ng_kron's economics: the metric on `--kron-metric-rows` of the gradient batch (the whole
    batch), `--kron-warm-start`, `--kron-max-iters` CG iterations, Levenberg-Marquardt damping
    from `initial` adapted every `--kron-damping-every` steps (kfac-jax's T₁ = 5) and floored
    at `--kron-min-damping`, Kronecker factors fed as K-FAC feeds them (`kron_factors`) on the
    first `--kron-rows` of the gradient batch. With `--kron-max-iters 1` and no warm start the direction is K-FAC's, α and μ then
    chosen by the exact metric's model."""
    return SolverEconomics(
        max_iters=a.kron_max_iters,
        damping=natgrad.damping.LevenbergMarquardt(initial=initial, minimum=a.kron_min_damping,
                                                   every=a.kron_damping_every),
        warm_start=a.kron_warm_start, metric_fraction=a.kron_metric_rows,
        preconditioner_fraction=a.kron_rows, preconditioner=kron_factors(a))


def kron_factors(a):
    """The Kronecker factors as K-FAC feeds them: statistics every `--kron-statistics-every`
    steps, decay 0.95 per step, inverses every `--kron-every` steps."""
    return KroneckerFactors(every=a.kron_every, statistics_every=a.kron_statistics_every,
                            decay=0.95)


#: ng_kron's step control (K-FAC's, around the exact metric): α and μ minimising the exact damped
#: quadratic model over span{−ng, δ₀}, ρ against that model, no rejection (so that ρ's forward
#: pass is paid only on the steps where λ adapts).
KRON_CONTROL = {"learning_rate": "adaptive", "momentum": True, "rho": "quadratic",
                "reject": False}


def fixed_rate_economics(a):
    """The economics of ng_kron's fixed-rate entries (the last round's best ng_kron on the
    autoencoder): 3 CG iterations warm-started as RECOMMENDED, Levenberg-Marquardt λ from 1
    adapted every step and floored at 1e-3 (ρ against the first-order prediction drives it down
    whenever the model is good), the factors fed as K-FAC feeds them (`kron_economics`)."""
    return SolverEconomics(
        max_iters=3, damping=natgrad.damping.LevenbergMarquardt(initial=1.0, minimum=1e-3),
        warm_start=RECOMMENDED.warm_start, metric_fraction=RECOMMENDED.metric_fraction,
        preconditioner_fraction=a.kron_rows, preconditioner=kron_factors(a))


def kron_setup(value, a):
    """(economics, step control) of one ng_kron grid entry: an initial λ, K-FAC's control
    (`kron_economics`, `KRON_CONTROL`); or `("fixed", η)`, a fixed step size η with no momentum
    and ρ against the first-order prediction (`fixed_rate_economics`)."""
    if isinstance(value, tuple):
        _, eta = value
        return fixed_rate_economics(a), {"learning_rate": eta, "momentum": False,
                                         "rho": "first_order", "reject": False}
    return kron_economics(a, value), KRON_CONTROL


#: kfac-jax's own example settings for this autoencoder (its examples' optimizer config): a
#: `"example"` entry of the K-FAC grid runs them.
KFAC_EXAMPLE = {"initial_damping": 150.0, "min_damping": 1e-5, "max_damping": 1000.0,
                "num_burnin_steps": 5}

# Each method's grid (learning rates; ng_kron: the initial damping, its step size being the
# model's, or ("fixed", η), `kron_setup`; K-FAC: initial damping with kfac-jax's default floor
# and no burn-in, or "example", `KFAC_EXAMPLE`), per problem. The first value is the best of the
# last full run (README, "Benchmarks"; ng_kron's: of a pilot of the loss after 20/40/60 updates,
# docs/solver_economics.md): --quick runs it alone. A best value at the edge of its grid had the grid extended past it.
GRIDS = {
    "restricted_mnist": {"ng": (0.5, 1.0, 0.25), "ng_kron": (1e-3, 1e-4, 0.1, 1.0, ("fixed", 0.5)),
                         "ng_paper": (2.0, 1.0, 0.5),
                         "msgd": (0.2, 0.05, 0.5), "adam": (2e-2, 5e-2, 1e-2, 5e-3, 2e-3),
                         "kfac": (1e-3, 1e-4, 1e-2, 0.1, "example")},
    "autoencoder": {"ng": (0.25, 0.1, 0.5, 1.0),
                    "ng_kron": (1e-4, 1e-3, 1e-2, 1.0, ("fixed", 0.25)),
                    "ng_paper": (0.25, 0.5, 1.0),
                    "msgd": (0.01, 3e-3, 0.05), "adam": (3e-3, 1e-3, 3e-4, 1e-2),
                    "kfac": ("example", 1e-4, 1e-3, 1e-2, 0.1)},
}

#: The update counts after which the loss table reports each method's training loss.
LOSS_AFTER = (20, 40, 60)


def label(value):
    """A grid value as printed."""
    if isinstance(value, tuple):
        return " ".join(map(label, value))
    return value if isinstance(value, str) else f"{value:g}"


# --------------------------------------------------------------------------------------------
# Problems


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
        {"ng": a.mnist_train, "ng_kron": a.mnist_train, "ng_paper": a.mnist_train, "msgd": 50,
         "adam": 50, "kfac": a.mnist_train}, MNIST_ACTS, seed)
    x_ae = jnp.asarray(images[:a.ae_train])
    ae = Problem(
        "autoencoder", functools.partial(_forward, AE_ACTS), families.Bernoulli(),
        _network(AE_SIZES, key, sparse=True), x_ae, x_ae, a.ae_target, a.ae_budget, 0.25,
        {"ng": a.ae_ng_batch, "ng_kron": a.ae_ng_batch, "ng_paper": a.ae_ng_batch, "msgd": 100,
         "adam": 100, "kfac": a.ae_ng_batch}, AE_ACTS, seed)
    return [mnist, ae]


def _loss_fn(problem):
    def loss(params, x, t):
        return jnp.mean(problem.family.nll(problem.apply_fn(params, x), t))

    return loss


def _full_loss(problem):
    """The whole-training-set loss, in chunks of at most 1000 rows (one compiled call)."""
    loss = _loss_fn(problem)
    n = problem.x.shape[0]
    chunk = math.gcd(n, 1000)
    xs = problem.x.reshape((n // chunk, chunk) + problem.x.shape[1:])
    ts = problem.t.reshape((n // chunk, chunk) + problem.t.shape[1:])

    @jax.jit
    def full(params):
        return jnp.mean(jax.lax.map(lambda b: loss(params, *b), (xs, ts)))

    return full


# --------------------------------------------------------------------------------------------
# Methods: (init(params) -> state, step(params, state, idx, t) -> (params, state, iterations))


def _ng(problem, lr, economics, max_iters, damping=None, **control):
    damping = damping or natgrad.damping.LevenbergMarquardt(initial=1.0)

    @jax.jit
    def step(params, state, idx):
        batch = (problem.x[idx], problem.t[idx])
        params, state, info = natgrad.natural_gradient_step(
            problem.apply_fn, params, state, batch, None, family=problem.family, learning_rate=lr,
            damping=damping, max_iters=max_iters, economics=economics, **control)
        return params, state, info.iterations

    def init(params):
        return natgrad.natural_gradient_init(params, damping, economics=economics,
                                             momentum=bool(control.get("momentum")))

    return init, lambda p, s, idx, t: step(p, s, idx)


def _ng_flax(problem, economics, **control):
    """`_ng` on the problem's flax view (`flax_problem`), parameters relabelled at the boundary,
    with the economics' iterations and damping and the entry's step control (`kron_setup`)."""
    init, step = _ng(flax_problem(problem), control.pop("learning_rate"), economics,
                     economics.max_iters, economics.damping, **control)

    def flax_step(params, state, idx, t):
        params, state, iterations = step(as_flax(params), state, idx, t)
        return from_flax(params), state, iterations

    return lambda params: init(as_flax(params)), flax_step


def _first_order(problem, tx):
    loss = _loss_fn(problem)

    @jax.jit
    def step(params, state, idx):
        grads = jax.grad(loss)(params, problem.x[idx], problem.t[idx])
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, jnp.zeros((), jnp.int32)

    return tx.init, lambda p, s, idx, t: step(p, s, idx)


def _kfac(problem, value, a):
    """kfac-jax's optimizer, adaptive learning rate, momentum and damping (every 5 steps), its
    inverses every 5 steps; `value` an initial damping (kfac-jax's default floor 1e-8, no
    burn-in) or "example" (`KFAC_EXAMPLE`, its burn-in batches drawn from the minibatch stream
    of the problem's seed + 1, inside the first update's clock)."""
    import kfac_jax

    def loss(params, batch):
        x, t = batch
        r = problem.apply_fn(params, x)
        if isinstance(problem.family, families.Categorical):
            kfac_jax.register_softmax_cross_entropy_loss(r, t)
        else:
            kfac_jax.register_sigmoid_cross_entropy_loss(r, t)
        return jnp.mean(problem.family.nll(r, t))

    settings = (KFAC_EXAMPLE if value == "example"
                else {"initial_damping": float(value), "num_burnin_steps": 0})
    opt = kfac_jax.Optimizer(
        value_and_grad_func=jax.value_and_grad(loss), l2_reg=0.0,
        use_adaptive_learning_rate=True, use_adaptive_momentum=True, use_adaptive_damping=True,
        inverse_update_period=5, damping_adaptation_interval=5, multi_device=False, **settings)
    key = jax.random.PRNGKey(0)
    burnin = settings["num_burnin_steps"]

    def init(params):
        idx = jnp.arange(problem.batch["kfac"])
        return opt.init(jax.tree.map(jnp.array, params), key,
                        (problem.x[idx], problem.t[idx]))

    def step(params, state, idx, t):
        batch = (problem.x[idx], problem.t[idx])
        if int(t) == 0 and burnin:  # the burn-in's curvature batches, then this step's
            order = _batches(problem.x.shape[0], problem.batch["kfac"], problem.seed + 1)
            feed = [(problem.x[i], problem.t[i]) for i, _ in zip(order, range(burnin))]
            params, state, _ = opt.step(params, state, key, data_iterator=iter(feed + [batch]),
                                        global_step_int=0)
        else:
            params, state, _ = opt.step(params, state, key, batch=batch, global_step_int=int(t))
        return params, state, jnp.zeros((), jnp.int32)

    return init, step


def method(name, problem, value, a):
    if name == "ng":
        return _ng(problem, value, RECOMMENDED, a.ng_max_iters)
    if name == "ng_kron":
        economics, control = kron_setup(value, a)
        return _ng_flax(problem, economics, **control)
    if name == "ng_paper":
        return _ng(problem, value, PAPER, 20)
    if name == "msgd":
        return _first_order(problem, optax.sgd(value, momentum=0.9))
    if name == "adam":
        return _first_order(problem, optax.adam(value))
    return _kfac(problem, value, a)


# --------------------------------------------------------------------------------------------
# One timed run


def _batches(n, batch, seed):
    """Minibatch indices, epoch after epoch of one seeded permutation stream (the same for every
    method with the same batch size)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield jnp.asarray(order[i:i + batch])


def _copy(tree):
    return jax.tree.map(jnp.array, tree)


def run(problem, name, value, a):
    """Train one method with one grid value: (time to target or None, record)."""
    init, step = method(name, problem, value, a)
    full_loss = _full_loss(problem)
    batch = problem.batch[name]
    # compile and warm up on copies (K-FAC compiles a second variant at its damping update)
    t0 = time.perf_counter()
    params, state = _copy(problem.params), init(_copy(problem.params))
    for t, idx in zip(range(6), _batches(problem.x.shape[0], batch, problem.seed)):
        params, state, _ = step(params, state, idx, t)
    jax.block_until_ready((params, full_loss(params)))
    compile_s = time.perf_counter() - t0

    params, state = _copy(problem.params), init(_copy(problem.params))
    clock, next_eval, reached, iterations, t = 0.0, 0.0, None, [], 0
    losses = []
    for idx in _batches(problem.x.shape[0], batch, problem.seed):
        if clock >= next_eval:
            loss = float(full_loss(params))
            losses.append((clock, loss))
            next_eval = clock + problem.eval_dt
            if loss <= problem.target or not math.isfinite(loss):
                reached = clock if loss <= problem.target else None
                break
        if clock >= problem.budget:
            break
        start = time.perf_counter()
        params, state, its = step(params, state, idx, t)
        jax.block_until_ready(params)
        clock += time.perf_counter() - start
        iterations.append(its)
        t += 1
    its = [int(i) for i in iterations]
    record = {"updates": t, "clock": clock, "final_loss": losses[-1][1], "compile_s": compile_s,
              "iterations": statistics.mean(its) if its else 0.0,
              "step_s": clock / max(t, 1), "params": params}
    return reached, record


def losses_after(problem, name, value, a, counts=LOSS_AFTER):
    """The whole-training-set loss after each of `counts` updates (untimed: a count of updates
    does not depend on the machine's load)."""
    init, step = method(name, problem, value, a)
    full_loss = _full_loss(problem)
    params, state = _copy(problem.params), init(_copy(problem.params))
    out = []
    for t, idx in zip(range(max(counts)), _batches(problem.x.shape[0], problem.batch[name],
                                                   problem.seed)):
        params, state, _ = step(params, state, idx, t)
        if t + 1 in counts:
            out.append(float(full_loss(params)))
    return out


# --------------------------------------------------------------------------------------------
# Per-step cost report


def _timed(fn, *args, repeats=5):
    """Median seconds of a jitted call (compiled and warmed up first)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def preconditioner_costs(problem, params, preconditioner, rows, damping):
    """Seconds of the Kronecker factors' statistics (one accumulation), of their inversion and of
    one application, at params, the statistics on `rows` = (inputs, targets)."""
    def refresh(pc):
        return jax.jit(lambda p, s, lam: pc.refresh(s, problem.apply_fn, p, *rows,
                                                    problem.family, lam))

    state = refresh(preconditioner)(params, preconditioner.init(params), damping)
    later = state._replace(count=jnp.ones_like(state.count))  # a call that is not the first
    statistics_s = _timed(refresh(dataclasses.replace(preconditioner, every=2,
                                                      statistics_every=1)), params, later, damping)
    inversion_s = _timed(refresh(dataclasses.replace(preconditioner, every=1,
                                                     statistics_every=2)), params, later, damping)
    apply_s = _timed(jax.jit(lambda s, v: preconditioner.inverse(s)(v)), state, params)
    return statistics_s, inversion_s, apply_s


def cost_split(problem, params, economics, iterations, batch, control=None):
    """Seconds per step: gradient, metric products, solver vector work, preconditioner (its
    statistics over `statistics_every` steps, its inversion over `every` steps, `iterations`
    applications; also apart: `statistics`, `inversion`, `apply`) and, with K-FAC's step control
    (`control`), the step control: momentum's product A δ₀ and ρ's forward pass over the
    damping's `every` steps."""
    x, t = problem.x[:batch], problem.t[:batch]
    loss = _loss_fn(problem)
    grad = _timed(jax.jit(jax.value_and_grad(loss)), params, x, t)
    xm, tm = leading_rows((x, t), economics.metric_fraction)

    def products(k):  # k products from one linearization, each output rescaled (no overflow)
        @jax.jit
        def loop(p, xm, v):
            op = natgrad.ggn_operator(problem.apply_fn, p, xm, problem.family)
            return jax.lax.fori_loop(0, k, lambda _, u: jax.tree.map(
                lambda a: a / (1e-30 + jnp.abs(a).max()), op(u)), v)
        return loop

    t10, t30 = (_timed(products(k), params, xm, params) for k in (10, 30))
    per_product = max(t30 - t10, 0.0) / 20
    linearize = max(t10 - 10 * per_product, 0.0)
    k = max(1, round(iterations))
    diag = jax.tree.map(lambda p: 1.0 + jnp.abs(p), params)
    options = {}
    if economics.warm_start:
        options["x0"] = jax.tree.map(lambda p: 0.5 * p, params)
    if economics.preconditioner is not None:
        options["preconditioner"] = diag
    if economics.progress is not None:  # the same per-iteration work, never firing
        options["progress"] = Progress(min_k=k + 1)
    vectors = _timed(jax.jit(lambda b: natgrad.solvers.cg(
        lambda v: jax.tree.map(jnp.multiply, diag, v), b, max_iters=k, rtol=0.0, **options)[0]),
        params)
    pre = statistics_s = inversion_s = apply_s = 0.0
    pc = economics.preconditioner
    if pc is not None:
        fraction = economics.preconditioner_fraction or economics.metric_fraction
        statistics_s, inversion_s, apply_s = preconditioner_costs(
            problem, params, pc, leading_rows((x, t), fraction), 1.0)
        pre = statistics_s / pc.statistics_every + inversion_s / pc.every + iterations * apply_s
    control_s = 0.0
    if control:  # A δ₀ for μ, and ρ's forward pass where λ adapts
        forward = _timed(jax.jit(loss), params, x, t)
        control_s = (per_product if control.get("momentum") else 0.0) + forward / getattr(
            economics.damping, "every", 1)
    # a warm start's residual b − (M + λI)x0 is one more product per step
    products = iterations + (1 if economics.warm_start else 0)
    return {"gradient": grad, "metric_products": linearize + products * per_product,
            "linearize": linearize,
            "per_product": per_product, "solver_vectors": vectors, "preconditioner": pre,
            "statistics": statistics_s, "inversion": inversion_s, "apply": apply_s,
            "step_control": control_s}


# --------------------------------------------------------------------------------------------


#: ng_kron's flags: (flag, type, default, help).
KRON_FLAGS = (
    ("--kron-max-iters", int, 1,
     "ng_kron's CG iterations (1: K-FAC's direction, the exact model's α, μ)"),
    ("--kron-every", int, 5, "ng_kron's steps between inversions of the Kronecker factors"),
    ("--kron-statistics-every", int, 1,
     "ng_kron's steps between accumulations of the factors' statistics"),
    ("--kron-metric-rows", float, 1.0,
     "fraction of the gradient batch ng_kron's exact metric (its CG products and the model of α, "
     "μ and ρ) is taken on (default 1: the whole batch, as K-FAC's model)"),
    ("--kron-rows", float, None,
     "fraction of the gradient batch the factors' statistics are taken on (default: the "
     "metric's rows)"),
    ("--kron-damping-every", int, 5, "ng_kron's steps between adaptations of the damping"),
    ("--kron-min-damping", float, 1e-8, "ng_kron's floor of the Levenberg-Marquardt damping"),
    ("--kron-warm-start", float, 0.0,
     "ng_kron's warm-start decay (default 0: each solve from zero)"),
)
#: Repeats and seeds: (flag, type, default, help).
RUN_FLAGS = (
    ("--repeats", int, 3, "timed runs of each method's best grid value (time to target: median)"),
    ("--loss-seeds", int, 3, "seeds of the loss table (loss after 20/40/60 updates: median)"),
)


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="one grid value per method, budgets and the autoencoder's data shrunk")
    p.add_argument("--problems", nargs="+", default=["restricted_mnist", "autoencoder"])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mnist-train", type=int, default=1000)
    p.add_argument("--mnist-target", type=float, default=0.02)
    p.add_argument("--mnist-budget", type=float, default=10.0, help="update clock seconds per run")
    p.add_argument("--ae-train", type=int, default=2000)
    p.add_argument("--ae-ng-batch", type=int, default=1000)
    p.add_argument("--ae-target", type=float, default=None,
                   help="training reconstruction cross-entropy (nats per digit); default 60 (90 "
                        "with --quick): what Adam, best of its grid, reaches late in the budget")
    p.add_argument("--ae-budget", type=float, default=45.0, help="update clock seconds per run")
    p.add_argument("--ng-max-iters", type=int, default=5)
    for flag, kind, default, text in KRON_FLAGS + RUN_FLAGS:
        p.add_argument(flag, type=kind, default=default, help=text)
    a = p.parse_args(argv)
    if a.quick:
        a.mnist_budget, a.ae_budget, a.ae_train = 5.0, 10.0, 1000
        a.ae_ng_batch = min(a.ae_ng_batch, 500)
        a.repeats, a.loss_seeds = 1, 1
    if a.ae_target is None:
        a.ae_target = 90.0 if a.quick else 60.0
    return a


def main(argv=None):
    a = arguments(argv)
    print(f"# backend {jax.default_backend()} ({jax.devices()[0]}); quick={a.quick}",
          file=sys.stderr)
    result, best_runs = {}, {}
    for problem in problems(a):
        if problem.name not in a.problems:
            continue
        print(f"# {problem.name}: {problem.x.shape[0]} examples, target {problem.target}, "
              f"budget {problem.budget} s per run", file=sys.stderr)
        result[problem.name] = {}
        for name in a.methods:
            best = best_of_grid(problem, name, a)
            result[problem.name][name] = repeated(problem, name, best, a)
            best_runs[problem.name, name] = best
        report_costs(problem, best_runs, a)
        report_losses(problem.name, best_runs, a)
    print(json.dumps(result))
    return result


def best_of_grid(problem, name, a):
    """(value, time to target, record) of the grid value that reached the target first (else the
    lowest final loss); every run printed."""
    grid = GRIDS[problem.name][name][:1 if a.quick else None]
    runs = [(value,) + run(problem, name, value, a) for value in grid]
    for value, reached, rec in runs:
        print(f"{problem.name:17s} {name:9s} {label(value):<8s} to target "
              f"{'-' if reached is None else f'{reached:.2f} s':>9s}  final loss "
              f"{rec['final_loss']:.4g} after {rec['updates']} updates "
              f"({rec['clock']:.1f} s, {rec['step_s'] * 1e3:.1f} ms/update, "
              f"{rec['iterations']:.1f} CG it/update; compile {rec['compile_s']:.1f} s)",
              file=sys.stderr)
    reached = [r for r in runs if r[1] is not None]
    return min(reached, key=lambda r: r[1]) if reached else \
        min(runs, key=lambda r: r[2]["final_loss"])


def repeated(problem, name, best, a):
    """Time to target of the best grid value: the median of `--repeats` timed runs (the grid's
    and `--repeats` − 1 more; a run that missed counts as slower than any that reached; None if
    the median missed)."""
    value, reached, _ = best
    times = [reached] + [run(problem, name, value, a)[0] for _ in range(a.repeats - 1)]
    middle = statistics.median(math.inf if s is None else s for s in times)
    median = None if math.isinf(middle) else middle
    shown = ", ".join("-" if s is None else f"{s:.2f}" for s in times)
    print(f"# time to target {problem.name} {name} ({label(value)}): median "
          f"{'-' if median is None else f'{median:.2f} s'} of {len(times)} runs [{shown}]",
          file=sys.stderr)
    return median


def report_losses(problem_name, best_runs, a):
    """The loss table: each method at its best grid value, the whole-training-set loss after
    `LOSS_AFTER` updates, median over `--loss-seeds` seeds (initialisation and minibatch order)."""
    seeds = range(a.seed, a.seed + a.loss_seeds)
    views = {seed: next(p for p in problems(a, seed) if p.name == problem_name) for seed in seeds}
    for (name_of_problem, name), (value, _, _) in best_runs.items():
        if name_of_problem != problem_name:
            continue
        per_seed = [losses_after(views[seed], name, value, a) for seed in seeds]
        medians = [statistics.median(column) for column in zip(*per_seed)]
        print(f"# loss after {'/'.join(map(str, LOSS_AFTER))} updates {problem_name} {name} "
              f"({label(value)}, median of {len(per_seed)} seeds): "
              f"{' / '.join(f'{m:.4g}' for m in medians)}", file=sys.stderr)


def report_costs(problem, best_runs, a):
    """The per-step cost report of `ng`, `ng_kron` and `ng_paper` (their best runs, at their final
    params; `ng_kron` on the flax view)."""
    for name in ("ng", "ng_kron", "ng_paper"):
        if (problem.name, name) not in best_runs:
            continue
        value, _, rec = best_runs[problem.name, name]
        economics, control = {"ng": (RECOMMENDED, None), "ng_paper": (PAPER, None)}.get(name) \
            or kron_setup(value, a)
        view, params = problem, rec["params"]
        if name == "ng_kron":
            view, params = flax_problem(problem), as_flax(params)
        split = cost_split(view, params, economics, rec["iterations"], problem.batch[name],
                           control)
        parts = sum(split[k] for k in ("gradient", "metric_products", "solver_vectors",
                                       "preconditioner", "step_control"))
        print(f"# cost {problem.name} {name} ({label(value)}): {rec['iterations']:.1f} CG "
              f"it/step; gradient {split['gradient'] * 1e3:.1f} ms, metric products "
              f"{split['metric_products'] * 1e3:.1f} ms ({split['per_product'] * 1e3:.2f} ms "
              f"each), solver vectors {split['solver_vectors'] * 1e3:.1f} ms, preconditioner "
              f"{split['preconditioner'] * 1e3:.1f} ms (statistics "
              f"{split['statistics'] * 1e3:.1f}, inversion {split['inversion'] * 1e3:.1f}, "
              f"application {split['apply'] * 1e3:.2f}), step control "
              f"{split['step_control'] * 1e3:.1f} ms; sum {parts * 1e3:.1f} ms vs measured "
              f"step {rec['step_s'] * 1e3:.1f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
