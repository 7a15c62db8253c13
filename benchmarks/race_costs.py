"""The per-step cost split of the natural-gradient methods (gradient, metric products, solver
vector work, preconditioner, step control; see `bench_time_to_target.py`'s docstring) and
kfac-jax's step timed beside them in the same process, with and without its curvature update."""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import natgrad
from natgrad.curvature import leading_rows
from natgrad.economics import PAPER, RECOMMENDED
from natgrad.solvers import Progress

from race_methods import kfac, kron_setup, label
from race_problems import as_flax, batches, copy_tree, flax_problem, loss_fn


def timed(fn, *args, repeats=5):
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
    statistics_s = timed(refresh(dataclasses.replace(preconditioner, every=2,
                                                      statistics_every=1)), params, later, damping)
    inversion_s = timed(refresh(dataclasses.replace(preconditioner, every=1,
                                                     statistics_every=2)), params, later, damping)
    apply_s = timed(jax.jit(lambda s, v: preconditioner.inverse(s)(v)), state, params)
    return statistics_s, inversion_s, apply_s


def cost_split(problem, params, economics, iterations, batch, control=None):
    """Seconds per step: gradient, metric products, solver vector work, preconditioner (its
    statistics over `statistics_every` steps, its inversion over `every` steps, `iterations`
    applications; also apart: `statistics`, `inversion`, `apply`) and, with K-FAC's step control
    (`control`), the step control: momentum's product A δ₀ and ρ's forward pass over the
    damping's `every` steps."""
    x, t = problem.x[:batch], problem.t[:batch]
    loss = loss_fn(problem)
    grad = timed(jax.jit(jax.value_and_grad(loss)), params, x, t)
    xm, tm = leading_rows((x, t), economics.metric_fraction)

    def products(k):  # k products from one linearization, each output rescaled (no overflow)
        @jax.jit
        def loop(p, xm, v):
            op = natgrad.ggn_operator(problem.apply_fn, p, xm, problem.family)
            return jax.lax.fori_loop(0, k, lambda _, u: jax.tree.map(
                lambda a: a / (1e-30 + jnp.abs(a).max()), op(u)), v)
        return loop

    t10, t30 = (timed(products(k), params, xm, params) for k in (10, 30))
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
    vectors = timed(jax.jit(lambda b: natgrad.solvers.cg(
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
        forward = timed(jax.jit(loss), params, x, t)
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


#: kfac-jax's sparsest curvature updates: one per inversion (it refuses a curvature update period
#: above its inverse update period, 5 here), the step timed "without" them beside the default.
SPARSE_CURVATURE_UPDATE = 5


def kfac_step_seconds(problem, value, a, curvature_update_period=1, steps=10):
    """Mean seconds of kfac-jax's step (grid value `value`) over `steps` steps after 6 warm-up
    steps (its compiled variants: damping and inverse updates every 5), on the problem's
    minibatch stream."""
    init, step = kfac(problem, value, a, curvature_update_period)
    params, state = copy_tree(problem.params), init(copy_tree(problem.params))
    stream = batches(problem.x.shape[0], problem.batch["kfac"], problem.seed)
    for t in range(6):
        params, state, _ = step(params, state, next(stream), t)
    jax.block_until_ready(params)
    start = time.perf_counter()
    for t in range(6, 6 + steps):
        params, state, _ = step(params, state, next(stream), t)
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / steps


def report_kfac(problem, best_runs, a):
    """kfac-jax's step at its best grid value, with its curvature update every step and every 5th
    (`SPARSE_CURVATURE_UPDATE`), timed in this process beside the natural-gradient cost split;
    the curvature update's own cost follows from the two (4 of 5 updates saved)."""
    if (problem.name, "kfac") not in best_runs:
        return
    value, _, rec = best_runs[problem.name, "kfac"]
    every = kfac_step_seconds(problem, value, a)
    sparse = kfac_step_seconds(problem, value, a, SPARSE_CURVATURE_UPDATE)
    update = (every - sparse) * SPARSE_CURVATURE_UPDATE / (SPARSE_CURVATURE_UPDATE - 1)
    print(f"# cost {problem.name} kfac ({label(value)}): step {every * 1e3:.1f} ms with its "
          f"curvature update every step, {sparse * 1e3:.1f} ms with it every "
          f"{SPARSE_CURVATURE_UPDATE}th (one curvature update {update * 1e3:.1f} ms, the step "
          f"without it {(every - update) * 1e3:.1f} ms); race step {rec['step_s'] * 1e3:.1f} ms",
          file=sys.stderr)
