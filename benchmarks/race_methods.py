"""The time-to-target race's methods and their grids (see `bench_time_to_target.py`'s
docstring): each method is `init(params) -> state` and `step(params, state, idx, t) -> (params,
state, CG iterations)`, built from the library, optax, kfac-jax or psgd-jax from one grid value."""
from __future__ import annotations

import argparse
import contextlib
import sys

import jax
import jax.numpy as jnp
import optax

import natgrad
from natgrad import families
from natgrad.economics import PAPER, RECOMMENDED, SolverEconomics
from natgrad.preconditioners.kronecker import KroneckerFactors

from race_problems import as_flax, batches, flax_problem, from_flax, loss_fn


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


#: The spelling of ng_kron's grid overrides: (λ, "cg", k, "stats", s, "inv", e, "rows", f,
#: "momentum", 0) runs K-FAC's control from λ with k CG iterations, statistics every s steps,
#: inverses every e steps, the factors on the fraction f of the batch, without momentum (which
#: saves the model's product A δ₀), each pair optional (the flags' values and momentum otherwise).
KRON_OVERRIDES = {"cg": "kron_max_iters", "stats": "kron_statistics_every", "inv": "kron_every",
                  "rows": "kron_rows", "momentum": "kron_momentum"}


def with_overrides(a, pairs):
    """The flags `a` with ng_kron's grid overrides `pairs` (name, value, name, value, ...)."""
    names, values = pairs[::2], pairs[1::2]
    unknown = [n for n in names if n not in KRON_OVERRIDES]
    if unknown or len(names) != len(values):
        raise ValueError(f"ng_kron grid entry: expected (λ, name, value, ...) with names in "
                         f"{sorted(KRON_OVERRIDES)}, got {pairs!r}")
    return argparse.Namespace(**{**vars(a), **{KRON_OVERRIDES[n]: v
                                               for n, v in zip(names, values)}})


def kron_setup(value, a):
    """(economics, step control) of one ng_kron grid entry: an initial λ, K-FAC's control
    (`kron_economics`, `KRON_CONTROL`); (λ, "cg", k, ...), the same with the flags overridden
    (`KRON_OVERRIDES`); or `("fixed", η)`, a fixed step size η with no momentum and ρ against the
    first-order prediction (`fixed_rate_economics`)."""
    if isinstance(value, tuple) and value[0] == "fixed":
        _, eta = value
        return fixed_rate_economics(a), {"learning_rate": eta, "momentum": False,
                                         "rho": "first_order", "reject": False}
    if isinstance(value, tuple):
        a = with_overrides(a, value[1:])
        control = dict(KRON_CONTROL, momentum=bool(getattr(a, "kron_momentum", True)))
        return kron_economics(a, value[0]), control
    return kron_economics(a, value), KRON_CONTROL


#: kfac-jax's own example settings for this autoencoder (its examples' optimizer config): a
#: `"example"` entry of the K-FAC grid runs them.
KFAC_EXAMPLE = {"initial_damping": 150.0, "min_damping": 1e-5, "max_damping": 1000.0,
                "num_burnin_steps": 5}

# Each method's grid (learning rates; ng_kron: the initial damping, its step size being the
# model's, with `KRON_OVERRIDES`, or ("fixed", η), `kron_setup`; K-FAC: initial damping with
# kfac-jax's default floor and no burn-in, or "example", `KFAC_EXAMPLE`), per problem. The first
# value is the best of the last full run (README, "Benchmarks"; ng_kron's on the autoencoder: of
# the pilot of CG iterations and cadences in docs/solver_economics.md, which also dropped λ from
# 10⁻², 1 and the fixed rate there): --quick runs it alone. A best value at the edge of its grid
# had the grid extended past it. Muon's entries: (Muon's learning rate, Adam's on the rest, that
# problem's best Adam rate); PSGD Kron's: (learning rate, preconditioner update probability: a
# number, or "schedule", psgd-jax's default, 1 for 500 steps then annealed to 0.03), from a
# pilot of the loss after 20/40/60 updates on restricted MNIST (docs/solver_economics.md), the
# autoencoder's rates a tenth of those as its first-order rates are.
GRIDS = {
    "restricted_mnist": {"ng": (0.5, 1.0, 0.25),
                         "ng_kron": (1e-4, (1e-4, "cg", 2, "stats", 5), (1e-4, "stats", 5), 1e-3,
                                     0.1, ("fixed", 0.5)),
                         "ng_paper": (2.0, 1.0, 0.5),
                         "msgd": (0.2, 0.05, 0.5), "adam": (2e-2, 5e-2, 1e-2, 5e-3, 2e-3),
                         "kfac": (1e-3, 1e-4, 1e-2, 0.1, "example"),
                         "muon": ((0.05, 2e-2), (0.1, 2e-2), (0.02, 2e-2)),
                         "psgd_kron": ((0.3, 0.1), (0.1, 0.1), (1.0, 0.1), (0.01, "schedule"))},
    "autoencoder": {"ng": (0.25, 0.1, 0.5, 1.0),
                    "ng_kron": ((1e-4, "cg", 2, "stats", 5), (1e-4, "stats", 5), 1e-4,
                                (1e-3, "cg", 2, "stats", 5)),
                    "ng_paper": (0.25, 0.5, 1.0),
                    "msgd": (0.01, 3e-3, 0.05), "adam": (3e-3, 1e-3, 3e-4, 1e-2),
                    "kfac": (1e-3, "example", 1e-4, 1e-2, 0.1),
                    "muon": ((0.05, 3e-3), (0.1, 3e-3), (0.02, 3e-3)),
                    "psgd_kron": ((0.03, 0.1), (0.01, 0.1), (0.1, 0.1))},
}
#: The update counts after which the loss table reports each method's training loss.
LOSS_AFTER = (20, 40, 60)


def label(value):
    """A grid value as printed."""
    if isinstance(value, tuple):
        return " ".join(map(label, value))
    return value if isinstance(value, str) else f"{value:g}"



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
    loss = loss_fn(problem)

    @jax.jit
    def step(params, state, idx):
        grads = jax.grad(loss)(params, problem.x[idx], problem.t[idx])
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, jnp.zeros((), jnp.int32)

    return tx.init, lambda p, s, idx, t: step(p, s, idx)


def kfac(problem, value, a, curvature_update_period=1):
    """kfac-jax's optimizer, adaptive learning rate, momentum and damping (every 5 steps), its
    inverses every 5 steps; `value` an initial damping (kfac-jax's default floor 1e-8, no
    burn-in) or "example" (`KFAC_EXAMPLE`, its burn-in batches drawn from the minibatch stream
    of the problem's seed + 1, inside the first update's clock). `curvature_update_period`:
    kfac-jax's steps between curvature (factor statistics) updates (the cost split times its step
    without them)."""
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
        inverse_update_period=5, damping_adaptation_interval=5, multi_device=False,
        curvature_update_period=curvature_update_period, **settings)
    key = jax.random.PRNGKey(0)
    burnin = settings["num_burnin_steps"]

    def init(params):
        idx = jnp.arange(problem.batch["kfac"])
        return opt.init(jax.tree.map(jnp.array, params), key,
                        (problem.x[idx], problem.t[idx]))

    def step(params, state, idx, t):
        batch = (problem.x[idx], problem.t[idx])
        if int(t) == 0 and burnin:  # the burn-in's curvature batches, then this step's
            order = batches(problem.x.shape[0], problem.batch["kfac"], problem.seed + 1)
            feed = [(problem.x[i], problem.t[i]) for i, _ in zip(order, range(burnin))]
            params, state, _ = opt.step(params, state, key, data_iterator=iter(feed + [batch]),
                                        global_step_int=0)
        else:
            params, state, _ = opt.step(params, state, key, batch=batch, global_step_int=int(t))
        return params, state, jnp.zeros((), jnp.int32)

    return init, step


def muon_dimensions(params):
    """Which weights Muon orthogonalises: every layer's weight matrix but the output layer's (its
    authors keep the output head, biases and other non-matrix parameters on Adam)."""
    last = len(params) - 1
    return [{"w": optax.contrib.MuonDimensionNumbers() if i < last else None, "b": None}
            for i in range(len(params))]


def muon(problem, value):
    """optax.contrib.muon (Nesterov momentum 0.95, 5 Newton-Schulz steps) at Muon's learning rate
    `value[0]`, Adam at `value[1]` on the parameters it does not orthogonalise."""
    muon_rate, adam_rate = value
    return _first_order(problem, optax.contrib.muon(
        muon_rate, adam_learning_rate=adam_rate,
        muon_weight_dimension_numbers=muon_dimensions(problem.params)))


def psgd_kron(problem, value):
    """PSGD Kron (psgd-jax's `kron`, momentum 0.9) at learning rate `value[0]`, its preconditioner
    updated with probability `value[1]` per step (or psgd-jax's default schedule)."""
    from psgd_jax.kron import kron

    rate, probability = value
    tx = kron(rate) if probability == "schedule" else kron(
        rate, preconditioner_update_probability=probability)
    init, step = _first_order(problem, tx)

    def quiet_init(params):  # psgd-jax prints its state's sizes: off stdout, whose end is the JSON
        with contextlib.redirect_stdout(sys.stderr):
            return init(params)

    return quiet_init, step


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
    if name == "muon":
        return muon(problem, value)
    if name == "psgd_kron":
        return psgd_kron(problem, value)
    return kfac(problem, value, a)
