"""The timed race: one run of a method and grid value on the update clock (compiled and warmed up
first, evaluations off the clock), the best of a grid, the median of repeats, and the untimed loss
after a count of updates (see `bench_time_to_target.py`'s docstring)."""
from __future__ import annotations

import math
import statistics
import sys
import time

import jax

from race_methods import GRIDS, LOSS_AFTER, label, method
from race_problems import batches, copy_tree, full_loss, problems


def run(problem, name, value, a):
    """Train one method with one grid value: (time to target or None, record)."""
    init, step = method(name, problem, value, a)
    evaluate = full_loss(problem)
    batch = problem.batch[name]
    # compile and warm up on copies (K-FAC compiles a second variant at its damping update)
    t0 = time.perf_counter()
    params, state = copy_tree(problem.params), init(copy_tree(problem.params))
    for t, idx in zip(range(6), batches(problem.x.shape[0], batch, problem.seed)):
        params, state, _ = step(params, state, idx, t)
    jax.block_until_ready((params, evaluate(params)))
    compile_s = time.perf_counter() - t0

    params, state = copy_tree(problem.params), init(copy_tree(problem.params))
    clock, next_eval, reached, iterations, t = 0.0, 0.0, None, [], 0
    losses = []
    for idx in batches(problem.x.shape[0], batch, problem.seed):
        if clock >= next_eval:
            loss = float(evaluate(params))
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
    evaluate = full_loss(problem)
    params, state = copy_tree(problem.params), init(copy_tree(problem.params))
    out = []
    for t, idx in zip(range(max(counts)), batches(problem.x.shape[0], problem.batch[name],
                                                   problem.seed)):
        params, state, _ = step(params, state, idx, t)
        if t + 1 in counts:
            out.append(float(evaluate(params)))
    return out


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
