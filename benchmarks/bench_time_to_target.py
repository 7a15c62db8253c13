"""Wall-clock seconds to a training-loss target: natural gradient (recommended economics and the
paper's protocol) vs MSGD, Adam, K-FAC, Muon and PSGD Kron, on restricted MNIST and on the deep
autoencoder.

The script is the command line; the race lives in four modules beside it: `race_problems.py`
(the problems, networks, losses, minibatch streams), `race_methods.py` (the methods and their
grids, `GRIDS`), `race_clock.py` (the timed runs, best of grid, repeats, the loss table) and
`race_costs.py` (the per-step cost split and kfac-jax's step timed beside it).

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
  inverses every `--kron-every` (5) steps. Its grid is the initial λ, entries
  (λ, "cg", k, "stats", s, "inv", e, "rows", f) that override those flags (`KRON_OVERRIDES`),
  and beside them entries
  `("fixed", η)` with the last round's control around the same factors: a fixed step size η, no
  momentum, ρ against the first-order prediction, 3 warm-started CG iterations, λ from 1 adapted
  every step and floored at 1e-3 (`kron_setup`). Its networks are the same
  dense layers written as flax modules (`DenseStack`, which the preconditioner's method
  interception finds), the parameters relabelled at the step's boundary (`as_flax` /
  `from_flax`: the same arrays);
- `ng_paper`: the paper's protocol: zero start, 20 CG iterations (rtol 1e-4), metric on the whole
  gradient batch, Levenberg-Marquardt damping;
- `msgd` (momentum 0.9) and `adam` (optax), on small minibatches;
- `muon`: `optax.contrib.muon` (Nesterov momentum 0.95, 5 Newton-Schulz steps) on every weight
  matrix but the output layer's, Adam (`adam_learning_rate`) on the output layer and the biases,
  as its authors recommend; its grid holds (Muon's rate, Adam's rate) pairs; small minibatches;
- `psgd_kron`: PSGD Kron (psgd-jax 0.2.8's `kron`, momentum 0.9), its grid (learning rate,
  probability of a preconditioner update per step, or psgd-jax's default schedule) pairs; small
  minibatches (psgd-jax 0.2.9 does not import with optax 0.2.8, distributed-kron 2.0.0 not with
  jax 0.9.1);
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
start's one product per step (the start's residual). Beside it, kfac-jax's step at K-FAC's best
grid value, timed in the same process with its curvature update every step and without it.

Then the loss table: each method at its best grid value, the whole-training-set loss after 20, 40
and 60 updates (`LOSS_AFTER`), median over `--loss-seeds` (3) seeds (data order, initialisation
and minibatch order from seeds `--seed`, `--seed` + 1, …), untimed: a count of updates does not
depend on the machine's load, so these figures compare methods on a shared machine.

The last line printed is one JSON object `{"restricted_mnist": {"ng": s, "ng_kron": s,
"ng_paper": s, "msgd": s, "adam": s, "kfac": s, "muon": s, "psgd_kron": s}, "autoencoder":
{...}}` (seconds, or null if not reached). `--problems` runs the problems in the order given.

    python benchmarks/bench_time_to_target.py           # the full run (about 55 min on 2 CPU cores)
    python benchmarks/bench_time_to_target.py --quick   # smaller budgets, one grid value, one
                                                        # repeat and one seed (~5 min)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from race_clock import best_of_grid, repeated, report_losses  # noqa: E402
from race_costs import report_costs, report_kfac  # noqa: E402
from race_methods import GRIDS  # noqa: E402,F401  (tests/test_recommended.py reads it here)
from race_problems import METHODS, problems  # noqa: E402


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
    p.add_argument("--problems", nargs="+", default=["restricted_mnist", "autoencoder"],
                   choices=["restricted_mnist", "autoencoder"], help="run in the order given")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
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
    by_name = {problem.name: problem for problem in problems(a)}
    for problem in (by_name[name] for name in a.problems):
        print(f"# {problem.name}: {problem.x.shape[0]} examples, target {problem.target}, "
              f"budget {problem.budget} s per run", file=sys.stderr)
        result[problem.name] = {}
        for name in a.methods:
            best = best_of_grid(problem, name, a)
            result[problem.name][name] = repeated(problem, name, best, a)
            best_runs[problem.name, name] = best
        report_costs(problem, best_runs, a)
        report_kfac(problem, best_runs, a)
        report_losses(problem.name, best_runs, a)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
