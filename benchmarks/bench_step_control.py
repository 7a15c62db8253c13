"""Step control measured: the paper's rule (fixed η, every step applied, ρ by eq. 30) against
rejection, the quadratic ρ and the exact-quadratic step size and momentum
(`natgrad.step_control`), at equal updates (the training loss, not the clock).

Three measurements, each from the same initial parameters and batches for every variant:

- `mnist_paper`: restricted MNIST (the embedded `mnist5k`, split with the study's `restrict`: the
  same 1,000 labelled digits per seed as the study, a 1,000-input pool, no validation part, 1,000
  test digits) at the paper's NG-unlabeled settings: η = 5,
  Levenberg-Marquardt from 2.0, MINRES-QLP 20 iterations (rtol 1e-4), the whole labelled set as the
  batch, 100 updates, an MLP of `--hidden` tanh units (the study's 500). Per seed: the largest
  training loss, the final one, test error (1,000 digits) and the steps rejected.
- `problems`: bench_time_to_target.py's restricted MNIST and deep autoencoder (its `--quick`
  data), `RECOMMENDED`'s solve, the same minibatch stream; whole-set loss after 20, 40, 60 updates.
- `digits`: scikit-learn's digits, the whole 1,347-row training set as the batch, MLP 64-10,
  `RECOMMENDED`'s solve, 40 steps.

The last line printed is one JSON object {"mnist_paper": {variant: [per seed]}, "problems":
{problem: {variant: {"20": loss, "40": loss, "60": loss}}}, "digits": {variant: final loss}}.

    python benchmarks/bench_step_control.py            # about 20 min on 2 CPU cores
    python benchmarks/bench_step_control.py --quick    # 2 seeds, 100 hidden units (~5 min)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import natgrad
from natgrad.economics import PAPER, RECOMMENDED
from natgrad.models import MLP

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_time_to_target  # noqa: E402
from race_methods import GRIDS  # noqa: E402
from race_problems import problems  # noqa: E402  (the problems, written once there)

#: The step controls compared (NaturalGradient keywords beyond the learning rate).
ADAPTIVE = {"learning_rate": "adaptive", "momentum": True, "rho": "quadratic", "reject": True}
CONTROLS = {
    "paper": {"momentum": False, "rho": "first_order", "reject": False},
    "reject": {"momentum": False, "rho": "first_order", "reject": True},
    "adaptive": {**ADAPTIVE, "momentum": False},
    "adaptive_momentum": ADAPTIVE,
}


def settings(apply_fn, family, control, learning_rate, **solve):
    return natgrad.NaturalGradient(apply_fn, family, **{"learning_rate": learning_rate, **solve,
                                                        **control})


def mnist_paper(seeds, hidden):
    from natgrad.study.data import load_source
    from natgrad.study.overfitting.split import restrict

    family = natgrad.families.Categorical()
    out = {}
    for seed in seeds:
        source = load_source("mnist5k", seed=seed)
        data = restrict(source.images.reshape(len(source.images), -1), source.labels,
                        {"train": 1000, "unlabeled": 1000, "valid": 0, "test": 1000}, seed)
        model = MLP(hidden=(hidden,), outputs=10, activation="tanh")
        params0 = model.init(jax.random.PRNGKey(seed), data.x_train[:1])
        x, y, u = map(jnp.asarray, (data.x_train, data.y_train, data.x_unlabeled))
        loss = jax.jit(lambda p: jnp.mean(family.nll(model.apply(p, x), y)))
        error = jax.jit(lambda p: 100 * jnp.mean(
            jnp.argmax(model.apply(p, data.x_test), -1) != data.y_test))
        for name in ("paper", "reject", "adaptive_momentum"):
            ng = settings(model.apply, family, CONTROLS[name], 5.0, economics=PAPER,
                          damping=natgrad.damping.LevenbergMarquardt(2.0), solver="minres_qlp",
                          max_iters=20)
            step = jax.jit(ng.step)
            params, state, losses, rejected = params0, ng.init(params0), [float(loss(params0))], 0
            for _ in range(100):
                params, state, info = step(params, state, (x, y), (u,))
                losses.append(float(loss(params)))
                rejected += int(info.rejected)
            record = {"seed": seed, "start": losses[0], "largest": max(losses),
                      "final": losses[-1], "test_error": float(error(params)),
                      "rejected": rejected}
            print(f"mnist_paper {name:18s} {json.dumps(record)}", file=sys.stderr)
            out.setdefault(name, []).append(record)
    return out


def problems():
    out = {}
    for problem in problems(bench_time_to_target.arguments(["--quick"])):
        n, batch = problem.x.shape[0], problem.batch["ng"]
        order = np.random.default_rng(0).permutation(n)
        batches = [order[i:i + batch] for i in range(0, n - batch + 1, batch)]
        full = jax.jit(lambda p, problem=problem: jnp.mean(
            problem.family.nll(problem.apply_fn(p, problem.x), problem.t)))
        fixed = GRIDS[problem.name]["ng"][0]  # the best of the last full run
        out[problem.name] = {}
        for name in ("paper", "reject", "adaptive", "adaptive_momentum"):
            ng = settings(problem.apply_fn, problem.family, CONTROLS[name], fixed,
                          economics=RECOMMENDED)
            step = jax.jit(ng.step)
            params, state, losses = problem.params, ng.init(problem.params), {}
            for t in range(60):
                idx = batches[t % len(batches)]
                params, state, _ = step(params, state, (problem.x[idx], problem.t[idx]))
                if t + 1 in (20, 40, 60):
                    losses[str(t + 1)] = float(full(params))
            print(f"problems {problem.name:17s} {name:18s} {json.dumps(losses)}", file=sys.stderr)
            out[problem.name][name] = losses
    return out


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = jnp.asarray(data.data[:1347] / 16.0, jnp.float32)
    y = jnp.asarray(data.target[:1347], jnp.int32)
    model, family = MLP(hidden=(64,), outputs=10), natgrad.families.Categorical()
    full = jax.jit(lambda p: jnp.mean(family.nll(model.apply(p, x), y)))
    params0 = model.init(jax.random.key(0), x[:1])
    out = {}
    for name, rate in [("paper", 0.5), ("paper", 1.0), ("paper", 2.0), ("reject", 2.0),
                       ("adaptive_momentum", None)]:
        ng = settings(model.apply, family, CONTROLS[name], rate, economics=RECOMMENDED)
        step = jax.jit(ng.step)
        params, state = params0, ng.init(params0)
        for _ in range(40):
            params, state, _ = step(params, state, (x, y))
        key = name if rate is None else f"{name}@{rate:g}"
        out[key] = float(full(params))
        print(f"digits {key:22s} final {out[key]:.5f}", file=sys.stderr)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 seeds and 100 hidden units")
    p.add_argument("--hidden", type=int, default=None)
    a = p.parse_args(argv)
    seeds = [0, 1] if a.quick else [0, 1, 2, 3]
    hidden = a.hidden or (100 if a.quick else 500)
    print(f"# backend {jax.default_backend()} ({jax.devices()[0]}); quick={a.quick}",
          file=sys.stderr)
    result = {"mnist_paper": mnist_paper(seeds, hidden), "problems": problems(),
              "digits": digits()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
