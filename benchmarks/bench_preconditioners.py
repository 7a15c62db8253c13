"""Krylov iterations and per-step cost of the natural-gradient solve with no preconditioner,
Martens' diagonal and Kronecker factors, on the restricted-MNIST and autoencoder metrics.

Problems, data, initialisation and minibatches are bench_time_to_target.py's (imported from it):
restricted MNIST (MLP 784-256-10, tanh, softmax) and the deep autoencoder 784-1000-500-250-30 with
its mirror decoder (logistic units, Bernoulli output). Each is taken at two points: its initial
parameters (`init`) and the parameters after `--steps` steps of `ng` (the recommended economics
at the first value of its learning-rate grid: `trained`). At each point the system is the one
`ng`'s next step solves, (M + λI) x = g/‖g‖ from x = 0: g the gradient on the next minibatch, M
the Fisher on its first tenth (RECOMMENDED's metric fraction), λ the Levenberg-Marquardt damping
of that point (1 at the start) and a hundredth of it (where the metric's conditioning matters).

Preconditioners, each built on the metric's rows at that λ:

- `none`;
- `martens`: `natgrad.preconditioners.MartensDiagonal()`, (D + λ)^0.75 from per-example gradients;
- `kron`: `natgrad.preconditioners.kronecker.KroneckerFactors(decay=0)`, K-FAC's damped A ⊗ G per
  layer from this batch (one target per example sampled from the model), on the networks' flax view
  (`bench_time_to_target.flax_problem`: the same layers as flax `nn.Dense`).

Reported per point, λ and preconditioner: CG and MINRES-QLP iterations to rtol 1e-2 and 1e-3 on
the true residual's norm (null: not reached in `--max-iters`), and the quadratic model
φ(x) = ½xᵀ(M + λI)x − bᵀx after 2 and 5 CG iterations (lower is better: what a truncated solve
gains for the step; the residual's norm weighs the stiff directions, φ the error in the
(M + λI)-norm). Per point: the cost of the gradient, the linearization, one metric product
(marginal) and CG's vector work per iteration (plain, and preconditioned by a diagonal standing
for the application), each preconditioner's build (one refresh) and application, and a step's
cost of one Krylov iteration with it (product + application + vector work), and a step's
estimate with CG to rtol 1e-3 at the LM damping: gradient + linearization + build + iterations ×
that (null where CG did not reach 1e-3). The machine (lscpu's model name, vector width, cores) is
printed first; the last line is one JSON object `{"machine": ..., "restricted_mnist": {"init":
{"lm": {"damping": λ, "none": {"cg": {"0.01": it, "0.001": it}, "minres_qlp": {...}, "cg_phi":
{"2": φ, "5": φ}}, "martens": ..., "kron": ...}, "lm/100": ..., "cost_ms": {...}}, "trained":
...}, "autoencoder": ...}`.

    python benchmarks/bench_preconditioners.py           # 1000-example batches, 50 steps, cap 300
    python benchmarks/bench_preconditioners.py --quick   # smaller batches, 20 steps, cap 40 (~4 min)
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_time_to_target  # noqa: E402
from race_costs import cost_split, preconditioner_costs, timed  # noqa: E402
from race_methods import GRIDS, method  # noqa: E402
from race_problems import (as_flax, batches, copy_tree, flax_problem, loss_fn,  # noqa: E402
                           problems)

import natgrad  # noqa: E402
from natgrad import solvers  # noqa: E402
from natgrad.curvature import leading_rows  # noqa: E402
from natgrad.economics import RECOMMENDED, SolverEconomics  # noqa: E402
from natgrad.preconditioners.kronecker import KroneckerFactors  # noqa: E402
from natgrad.preconditioners import MartensDiagonal  # noqa: E402

PRECONDITIONERS = {"none": None, "martens": MartensDiagonal(),
                   "kron": KroneckerFactors(decay=0.0)}
SOLVERS = {"cg": solvers.cg, "minres_qlp": solvers.minres_qlp}
RTOLS = (1e-2, 1e-3)
# λ at each point: the Levenberg-Marquardt damping there, and a hundredth of it (the small
# damping where the metric's conditioning, and so the preconditioner, matters)
DAMPINGS = (("lm", 1.0), ("lm/100", 0.01))
PHI_ITERATIONS = (2, 5)  # CG iterations after which the quadratic model φ is reported


def machine() -> str:
    """lscpu's model name, the widest vector extension and the core count."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    model = fields.get("Model name", "unknown CPU").strip()
    flags = fields.get("Flags", "").split()
    width = ("AVX-512 (512-bit)" if "avx512f" in flags else "AVX2 (256-bit)" if "avx2" in flags
             else "SSE (128-bit)")
    return f"{model}, {width}, {os.cpu_count()} cores ({jax.default_backend()})"


def points(problem, a):
    """[(name, params, λ)]: the initial parameters and those after `a.steps` steps of `ng`."""
    lr = GRIDS[problem.name]["ng"][0]
    init, step = method("ng", problem, lr, a)
    params, state = copy_tree(problem.params), init(copy_tree(problem.params))
    start = (copy_tree(problem.params), float(state.damping))
    stream = batches(problem.x.shape[0], problem.batch["ng"], a.seed)
    for t, idx in zip(range(a.steps), stream):
        params, state, _ = step(params, state, idx, t)
    return [("init", *start), ("trained", params, float(state.damping))], next(stream)


def _solver_runs(view):
    """A jitted solve from x = 0 with one preconditioner (static, built inside at λ): iterations,
    flag and the quadratic model φ(x) = ½xᵀ(M + λI)x − bᵀx at the end (rtol, max_iters traced)."""
    @functools.partial(jax.jit, static_argnames=("pc", "solver"))
    def run(params, b, xm, tm, lam, rtol, max_iters, *, pc, solver):
        matvec = natgrad.ggn_operator(view.apply_fn, params, xm, view.family)
        options = {}
        if pc is not None:
            state = pc.refresh(pc.init(params), view.apply_fn, params, xm, tm, view.family, lam)
            options["preconditioner"] = pc.inverse(state)
        x, info = SOLVERS[solver](matvec, b, damping=lam, max_iters=max_iters, rtol=rtol,
                                  **options)
        curved = natgrad.pytree.axpy(lam, x, matvec(x))
        phi = 0.5 * natgrad.pytree.vdot(x, curved) - natgrad.pytree.vdot(b, x)
        return info.iterations, info.flag, phi

    return run


def _vectors_per_iteration(params, k=10):
    """CG's vector work per iteration (seconds), plain and preconditioned: CG for k iterations on
    a diagonal operator (one vector pass per product), the preconditioned one with a diagonal
    M⁻¹ standing for the application (whose own cost is timed apart)."""
    diag = jax.tree.map(lambda p: 1.0 + jnp.abs(p), params)

    def op(v):
        return jax.tree.map(jnp.multiply, diag, v)

    plain = timed(jax.jit(lambda b: solvers.cg(op, b, max_iters=k, rtol=0.0)[0]), params)
    pre = timed(jax.jit(lambda b: solvers.cg(op, b, max_iters=k, rtol=0.0,
                                                  preconditioner=diag)[0]), params)
    return plain / k, pre / k


def measure(problem, a):
    view = flax_problem(problem)
    run = _solver_runs(view)
    loss = loss_fn(view)
    result = {}
    at, idx = points(problem, a)
    x, t = problem.x[idx], problem.t[idx]
    xm, tm = leading_rows((x, t), RECOMMENDED.metric_fraction)
    for point, params, lm in at:
        params = as_flax(params)
        g = jax.grad(loss)(params, x, t)
        b = natgrad.pytree.scale(1.0 / natgrad.pytree.norm(g), g)
        result[point] = {}
        for label, factor in DAMPINGS:
            lam = lm * factor
            entry = {"damping": lam}
            for name, pc in PRECONDITIONERS.items():
                entry[name] = {}
                for solver in SOLVERS:
                    entry[name][solver] = {}
                    its = 0
                    for rtol in RTOLS:  # a tighter rtol is not tried once a looser one failed
                        if its is not None:
                            its, flag, _ = run(params, b, xm, tm, lam, rtol, a.max_iters, pc=pc,
                                               solver=solver)
                            its = int(its) if int(flag) == solvers.CONVERGED else None
                        entry[name][solver][f"{rtol:g}"] = its
                entry[name]["cg_phi"] = {
                    str(k): float(run(params, b, xm, tm, lam, 0.0, k, pc=pc, solver="cg")[2])
                    for k in PHI_ITERATIONS}
            result[point][label] = entry
        result[point]["cost_ms"] = costs(view, params, x.shape[0], xm, tm, lm,
                                         result[point]["lm"])
        print(f"# {problem.name} {point} done", file=sys.stderr, flush=True)
    return result


def costs(view, params, batch, xm, tm, lam, iterations):
    """Milliseconds: the shared parts of a step (gradient, linearization, one metric product, CG's
    vector work per iteration), each preconditioner's build and application, and a step's
    estimate with CG to rtol 1e-3 (`iterations`: the point's entry at the LM damping)."""
    shared = cost_split(view, params, SolverEconomics(
        metric_fraction=RECOMMENDED.metric_fraction), 1, batch)
    plain, pre = _vectors_per_iteration(params)
    out = {"gradient": shared["gradient"], "linearize": shared["linearize"],
           "product": shared["per_product"], "vectors_per_iteration": plain,
           "preconditioned_vectors_per_iteration": pre}
    for name, pc in PRECONDITIONERS.items():
        build = apply = 0.0
        if pc is not None:
            statistics_s, inversion_s, apply = preconditioner_costs(view, params, pc, (xm, tm),
                                                                    lam)
            build = statistics_s + inversion_s
        its = iterations[name]["cg"][f"{RTOLS[-1]:g}"]
        iteration = shared["per_product"] + apply + (plain if pc is None else pre)
        step = (None if its is None else
                shared["gradient"] + shared["linearize"] + build + its * iteration)
        out[name] = {"build": build, "apply": apply, "iteration": iteration,
                     "step_to_1e-3": step}
    return jax.tree.map(lambda v: None if v is None else round(v * 1e3, 3), out,
                        is_leaf=lambda v: v is None)


def table(results):
    head = (f"{'problem':17s} {'point':8s} {'λ':>9s} {'precond':8s} {'CG 1e-2':>7s} "
            f"{'CG 1e-3':>7s} {'MR 1e-2':>7s} {'MR 1e-3':>7s} {'φ(x_2)':>9s} {'φ(x_5)':>9s} "
            f"{'build':>8s} {'apply':>7s} {'per it':>7s} {'step@1e-3':>9s}  (ms)")
    lines = [head]
    for problem, res in results.items():
        for point, entry in res.items():
            cost = entry["cost_ms"]
            for label, _ in DAMPINGS:
                e = entry[label]
                for name in PRECONDITIONERS:
                    its = [e[name][s][f"{r:g}"] for s in SOLVERS for r in RTOLS]
                    phi = [e[name]["cg_phi"][str(k)] for k in PHI_ITERATIONS]
                    c = cost[name]
                    lines.append(
                        f"{problem:17s} {point:8s} {e['damping']:9.3g} {name:8s} "
                        + " ".join(f"{'-' if i is None else i:>7}" for i in its)
                        + "".join(f" {v:9.4g}" for v in phi)
                        + f" {c['build']:8.1f} {c['apply']:7.2f} {c['iteration']:7.2f} "
                        + ("        -" if c["step_to_1e-3"] is None
                           else f"{c['step_to_1e-3']:9.1f}"))
            lines.append(
                f"# {problem} {point}: gradient {cost['gradient']:.1f} ms, linearization "
                f"{cost['linearize']:.1f} ms, one metric product {cost['product']:.2f} ms, CG "
                f"vector work {cost['vectors_per_iteration']:.2f} ms/iteration "
                f"({cost['preconditioned_vectors_per_iteration']:.2f} preconditioned)")
    return "\n".join(lines)


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="bench_time_to_target's --quick problems, 20 steps, at most 40 iterations")
    p.add_argument("--steps", type=int, default=None, help="ng steps to the `trained` point")
    p.add_argument("--max-iters", type=int, default=None, help="iteration cap of each solve")
    p.add_argument("--problems", nargs="+", default=["restricted_mnist", "autoencoder"])
    a, rest = p.parse_known_args(argv)
    problem_args = bench_time_to_target.arguments((["--quick"] if a.quick else []) + rest)
    for key, value in vars(a).items():
        setattr(problem_args, key, value)
    if problem_args.steps is None:
        problem_args.steps = 20 if a.quick else 50
    if problem_args.max_iters is None:
        problem_args.max_iters = 40 if a.quick else 300
    return problem_args


def main(argv=None):
    a = arguments(argv)
    where = machine()
    print(f"# machine: {where}; the cores may be shared with other jobs", flush=True)
    results = {}
    for problem in problems(a):
        if problem.name in a.problems:
            results[problem.name] = measure(problem, a)
    print(table(results))
    print(json.dumps({"machine": where, "quick": a.quick, "steps": a.steps,
                      "max_iters": a.max_iters, **results}))
    return results


if __name__ == "__main__":
    main()
