"""Cost of natgrad's curvature products and natural-gradient step, relative to one gradient.

For the paper's MLPs 784-500-10 (batch 512) and 784-1500-10 (batch 2500), tanh hidden units,
softmax output (`Categorical`), float32, all in one process, this times

- `grad`: the gradient of the mean NLL (jitted `jax.grad`);
- `ggn`: one Fisher/GGN product inside a solver loop: jitted `lax.fori_loop`s of 10 and 30 products
  from one `natgrad.ggn_operator` linearization each; reported as the marginal cost of a product,
  (T(30) − T(10)) / 20, and also as T(30)/30 (the linearization amortised over the products);
- `bare`: the same loops with a bare linearize-once product written here with JAX alone
  (`jax.linearize` + `jax.linear_transpose`, the softmax Fisher applied inline), the limit a GGN
  product can reach; `ggn_vs_bare_linearize_ratio` is natgrad's marginal product cost over the bare
  one (target ≤ 1.05) and `ggn_vs_bare_amortised_ratio` the same for T(30);
- `hvp`: one Hessian-vector product from scratch (forward-over-reverse, including the forward);
- `ng_step`: a whole jitted `natgrad.natural_gradient_step` with 20 CG iterations (rtol = 0 so all
  20 run), Fisher metric on a separate metric batch of the same size, constant damping (no ρ); with
  `--shared`, also the same step with the metric batch = the gradient batch (one shared
  linearization: the gradient comes from it).

Then, on the deep autoencoder's parameter shapes (784-1000-500-250-30 and the mirrored decoder,
as in `bench_time_to_target.py`: 2.8M float32 in 16 arrays), the cost of CG's loop itself, with a
diagonal operator v ↦ d⊙v (one vector pass) and damping 1e-3, rtol = 0 so that every iteration
runs:

- `cg_iteration_ms`: one iteration, (T(20) − T(5)) / 15 from whole jitted solves;
- `bare_iteration_ms`: the same arithmetic with JAX alone in one jitted function whose vectors are
  donated (updated in place): p = r + βp, q = (d + λ)⊙p, α = rz/pᵀq, x += αp, r −= αq, rᵀr;
- `cg_vector_work_vs_bare_ratio`: their ratio (goal ≤ 1.3): what CG's loop adds to the vector
  passes an iteration needs;
- `cg_fixed_ms`: what a solve costs beyond its iterations, T(1) − one iteration, and
  `cg_page_faults_per_solve` (minor faults of this process per solve, on Linux): on XLA:CPU
  nearly all of that fixed cost is the kernel's first touch of the solve's temporary buffers,
  allocated afresh by every call (above glibc's 32 MiB mmap threshold; glibc's
  `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, set before Python starts, backs them with huge pages).
  `cpu_*`: the same from this process's CPU time.

Every function is compiled and warmed up first; then the repeats are interleaved (one sample of each
function per round, so that load changes hit all of them alike; a sample of a short function
averages back-to-back calls over about 0.25 s) and the median is taken, with `block_until_ready`. The last line printed is a JSON object
`{"mlp784-500-10_b512": {...}, "mlp784-1500-10_b2500": {...}, "cg_loop_autoencoder": {...},
"cg_vector_work_vs_bare_ratio": r}` with `grad_ms`, `ggn_ratio`, `hvp_ratio`, `ng_step_ratio`
(ratios to the gradient), `ggn_vs_bare_linearize_ratio` and a few more keys per model, the keys
above for the CG loop (`--no-cg-loop` skips it).

Usage: `python benchmarks/bench_curvature.py [--repeats 5] [--only mlp784-500-10_b512] [--shared]
[--no-cg-loop]`.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

try:
    import resource
except ImportError:  # not on Windows: no page-fault count
    resource = None

import jax
import jax.numpy as jnp
import numpy as np

import natgrad
from natgrad import families
from natgrad.models import MLP

CONFIGS = {
    "mlp784-500-10_b512": (500, 512),
    "mlp784-1500-10_b2500": (1500, 2500),
}
K = 20  # CG iterations per step
LOOPS = (10, 30)  # products per timed GGN loop; their difference gives the marginal cost
AE_SIZES = (784, 1000, 500, 250, 30, 250, 500, 1000, 784)  # the deep autoencoder's layers
CG_ITERS = (5, 20)  # CG solves timed for the cost of one iteration: (T(20) - T(5)) / 15
CG_DAMPING = 1e-3


def _block(tree):
    jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)
    return tree


def _setup(hidden, batch, seed=0):
    model = MLP(hidden=(hidden,), outputs=10, activation="tanh")
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((batch, 784)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
    xm = jnp.asarray(rng.standard_normal((batch, 784)), jnp.float32)  # a separate metric batch
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), x)
    v = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), params)
    return model.apply, params, x, y, xm, v


def _functions(apply_fn, family):
    def loss(p, x, y):
        return jnp.mean(family.nll(apply_fn(p, x), y))

    grad = jax.jit(jax.grad(loss))

    def ggn_loop(n, operator=functools.partial(natgrad.ggn_operator, apply_fn, family=family)):
        @jax.jit
        def run(p, x, v):
            mv = operator(p, x)

            def body(_, u):
                gu = mv(u)
                # keep the iterate's scale fixed (a solver does comparable vector work)
                nrm = jnp.sqrt(sum(jnp.vdot(a, a) for a in jax.tree_util.tree_leaves(gu)))
                return jax.tree_util.tree_map(lambda a: a / nrm, gu)

            return jax.lax.fori_loop(0, n, body, v)

        return run

    @jax.jit
    def hvp(p, x, y, v):
        return jax.jvp(lambda q: jax.grad(loss)(q, x, y), (p,), (v,))[1]

    rule = natgrad.damping.Constant(1e-3)
    step = functools.partial(natgrad.natural_gradient_step, apply_fn, family=family,
                             learning_rate=0.1, damping=rule, metric="fisher", solver="cg",
                             max_iters=K, rtol=0.0)

    @jax.jit
    def ng_step(p, s, x, y, xm):
        return step(p, s, (x, y), (xm,))

    @jax.jit
    def ng_step_shared(p, s, x, y):
        return step(p, s, (x, y), (x,))

    bare = functools.partial(_bare_ggn_operator, apply_fn)
    loops = [ggn_loop(n) for n in LOOPS] + [ggn_loop(n, bare) for n in LOOPS]
    return grad, loops, hvp, ng_step, ng_step_shared, rule


def _bare_ggn_operator(apply_fn, p, x):
    """The softmax GGN product with JAX alone, linearized once: the reference natgrad's
    `ggn_operator` is held to (`ggn_vs_bare_linearize_ratio`)."""
    r, jvp_fn = jax.linearize(lambda q: apply_fn(q, x), p)
    vjp_fn = jax.linear_transpose(jvp_fn, p)
    y = jax.nn.softmax(r, axis=-1)
    inv_n = 1.0 / r.shape[0]

    def matvec(v):
        yu = y * jvp_fn(v)
        return vjp_fn((yu - y * jnp.sum(yu, axis=-1, keepdims=True)) * inv_n)[0]

    return matvec


def _interleaved(calls, repeats):
    """Seconds per call of each function in `calls` (wall clock, and this process's CPU time),
    `repeats` samples each, interleaved: one sample of every function per round, so that load
    changes hit all of them alike. Each is compiled and warmed up first; a sample of a short
    function averages back-to-back calls over about 0.25 s."""
    number = {}
    for k, f in calls.items():
        _block(f())
        t0 = time.perf_counter()
        _block(f())
        number[k] = max(1, min(50, int(0.25 / max(time.perf_counter() - t0, 1e-6))))
    times = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    for _ in range(repeats):
        for k, f in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(number[k]):
                out = f()
            _block(out)
            times[k].append((time.perf_counter() - t0) / number[k])
            cpu[k].append((time.process_time() - c0) / number[k])
    return times, cpu


def bench(name, hidden, batch, repeats, shared=False):
    family = families.Categorical()
    apply_fn, params, x, y, xm, v = _setup(hidden, batch)
    grad, (ggn_k, ggn_2k, bare_k, bare_2k), hvp, ng_step, ng_step_shared, rule = _functions(
        apply_fn, family)
    state = natgrad.natural_gradient_init(params, rule)
    calls = {
        "grad": lambda: grad(params, x, y),
        "ggn_lo": lambda: ggn_k(params, xm, v),
        "ggn_hi": lambda: ggn_2k(params, xm, v),
        "bare_lo": lambda: bare_k(params, xm, v),
        "bare_hi": lambda: bare_2k(params, xm, v),
        "hvp": lambda: hvp(params, x, y, v),
        "ng_step": lambda: ng_step(params, state, x, y, xm),
    }
    if shared:
        calls["ng_step_shared"] = lambda: ng_step_shared(params, state, x, y)
    times, cpu = _interleaved(calls, repeats)
    med = {k: statistics.median(t) * 1e3 for k, t in times.items()}
    _, _, info = ng_step(params, state, x, y, xm)
    assert int(info.iterations) == K, "all CG iterations must run"
    g = med["grad"]
    ggn_marginal = (med["ggn_hi"] - med["ggn_lo"]) / (LOOPS[1] - LOOPS[0])
    bare_marginal = (med["bare_hi"] - med["bare_lo"]) / (LOOPS[1] - LOOPS[0])
    out = {
        "grad_ms": round(g, 3),
        "ggn_ratio": round(ggn_marginal / g, 4),
        "hvp_ratio": round(med["hvp"] / g, 4),
        "ng_step_ratio": round(med["ng_step"] / g, 4),
        "ggn_amortised_ratio": round(med["ggn_hi"] / LOOPS[1] / g, 4),
        "ggn_vs_bare_linearize_ratio": round(ggn_marginal / bare_marginal, 4),
        "ggn_vs_bare_amortised_ratio": round(med["ggn_hi"] / med["bare_hi"], 4),
        "ggn_ms": round(ggn_marginal, 3),
        "hvp_ms": round(med["hvp"], 3),
        "ng_step_ms": round(med["ng_step"], 3),
        "grad_min_ms": round(min(times["grad"]) * 1e3, 3),
        "ng_step_min_ratio": round(min(times["ng_step"]) / min(times["grad"]), 4),
    }
    # CPU time of this process (all threads): insensitive to other processes sharing the cores
    c = {k: statistics.median(t) for k, t in cpu.items()}
    if c["grad"] > 0:
        out["cpu_ggn_ratio"] = round((c["ggn_hi"] - c["ggn_lo"]) / (LOOPS[1] - LOOPS[0]) / c["grad"], 4)
        out["cpu_hvp_ratio"] = round(c["hvp"] / c["grad"], 4)
        out["cpu_ggn_vs_bare_linearize_ratio"] = round(
            (c["ggn_hi"] - c["ggn_lo"]) / (c["bare_hi"] - c["bare_lo"]), 4)
        out["cpu_ng_step_ratio"] = round(c["ng_step"] / c["grad"], 4)
    if shared:
        out["ng_step_shared_ratio"] = round(med["ng_step_shared"] / g, 4)
    return out


def _page_faults(f, calls=3):
    """Minor page faults of this process per call of `f` (None where `resource` is missing)."""
    if resource is None:
        return None
    _block(f())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        _block(f())
    return round((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls)


def cg_loop(repeats):
    """CG's cost per iteration and per solve on the autoencoder's parameters, against the same
    arithmetic in a bare jitted function (the module docstring lists the keys)."""
    rng = np.random.default_rng(0)
    shapes = [s for n_in, n_out in zip(AE_SIZES[:-1], AE_SIZES[1:]) for s in ((n_in, n_out),
                                                                               (n_out,))]

    def vector():
        return [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in shapes]

    d, b = [1.0 + jnp.abs(v) for v in vector()], vector()

    def solve(k):
        return jax.jit(lambda b: natgrad.solvers.cg(
            lambda v: [di * vi for di, vi in zip(d, v)], b, damping=CG_DAMPING, max_iters=k,
            rtol=0.0))

    def dot(u, v):
        return sum(jnp.sum(ui * vi) for ui, vi in zip(u, v))

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def bare_step(x, r, p, rz, beta):
        """One CG iteration's arithmetic with JAX alone, in place. With rz and β fixed, p tends
        to 2r and α = rz/pᵀq to about 1e-7: the vectors stay bounded over any number of calls."""
        p = [ri + beta * pi for ri, pi in zip(r, p)]
        q = [CG_DAMPING * pi + di * pi for di, pi in zip(d, p)]
        alpha = rz / dot(p, q)
        x = [xi + alpha * pi for xi, pi in zip(x, p)]
        r = [ri - alpha * qi for ri, qi in zip(r, q)]
        return x, r, p, dot(r, r)

    carried = {"xrp": (vector(), vector(), vector())}
    rz, beta = jnp.float32(1.0), jnp.float32(0.5)

    def bare_iteration():
        *xrp, rr = bare_step(*carried["xrp"], rz, beta)
        carried["xrp"] = tuple(xrp)
        return rr

    solves = {k: solve(k) for k in (1,) + CG_ITERS}
    calls = {f"cg{k}": functools.partial(f, b) for k, f in solves.items()}
    calls["bare"] = bare_iteration
    times, cpu = _interleaved(calls, repeats)
    _, info = solves[CG_ITERS[1]](b)
    assert int(info.iterations) == CG_ITERS[1], "all CG iterations must run"
    out = {}
    for label, samples in (("", times), ("cpu_", cpu)):
        med = {k: statistics.median(t) * 1e3 for k, t in samples.items()}
        lo, hi = CG_ITERS
        per_iteration = (med[f"cg{hi}"] - med[f"cg{lo}"]) / (hi - lo)
        out.update({
            f"{label}cg_iteration_ms": round(per_iteration, 3),
            f"{label}bare_iteration_ms": round(med["bare"], 3),
            f"{label}cg_vector_work_vs_bare_ratio": round(per_iteration / med["bare"], 4),
            f"{label}cg_fixed_ms": round(med["cg1"] - per_iteration, 3),
        })
    out["cg_page_faults_per_solve"] = _page_faults(calls["cg1"])
    out["bare_page_faults_per_iteration"] = _page_faults(calls["bare"])
    return out


def _cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), or ''."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), "")
    except OSError:
        return ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--shared", action="store_true",
                   help="also time the step with metric batch = gradient batch")
    p.add_argument("--only", choices=sorted(CONFIGS), action="append")
    p.add_argument("--no-cg-loop", dest="cg_loop", action="store_false",
                   help="skip the CG loop's cost on the autoencoder's parameters")
    args = p.parse_args(argv)
    names = args.only or list(CONFIGS)
    results = {}
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), jax {jax.__version__}, float32, "
          f"median of {args.repeats} interleaved repeats")
    header = f"{'model':<24}{'grad ms':>10}{'GGN/grad':>10}{'GGN amort.':>12}{'HVP/grad':>10}" \
             f"{'step/grad':>11}{'step min':>10}"
    print(header)
    print("-" * len(header))
    for name in names:
        hidden, batch = CONFIGS[name]
        r = bench(name, hidden, batch, args.repeats, args.shared)
        results[name] = r
        print(f"{name:<24}{r['grad_ms']:>10.2f}{r['ggn_ratio']:>10.3f}"
              f"{r['ggn_amortised_ratio']:>12.3f}{r['hvp_ratio']:>10.3f}"
              f"{r['ng_step_ratio']:>11.2f}{r['ng_step_min_ratio']:>10.2f}", flush=True)
        if "cpu_ggn_ratio" in r:
            print(f"{'':<24}{'(CPU time)':>10}{r['cpu_ggn_ratio']:>10.3f}{'':>12}"
                  f"{r['cpu_hvp_ratio']:>10.3f}{r['cpu_ng_step_ratio']:>11.2f}")
        print(f"{'':<24}GGN product / bare linearize-once product: "
              f"{r['ggn_vs_bare_linearize_ratio']:.3f} (T(30): {r['ggn_vs_bare_amortised_ratio']:.3f})")
        if args.shared:
            print(f"{'':<24}step with metric batch = gradient batch: "
                  f"{r['ng_step_shared_ratio']:.2f} gradients")
    print("GGN/grad: marginal cost of one product in a loop, (T(30) - T(10)) / 20; GGN amort.: "
          "T(30)/30 with the linearization; step: 20 CG iterations, separate metric batch, "
          "median (and min/min) over repeats; (CPU time): the same ratios in this process's CPU "
          "seconds, robust to other processes sharing the cores.")
    if args.cg_loop:
        r = results["cg_loop_autoencoder"] = cg_loop(args.repeats)
        results["cg_vector_work_vs_bare_ratio"] = r["cg_vector_work_vs_bare_ratio"]
        print(f"CG loop on the autoencoder's parameters (2.8M float32, diagonal operator; "
              f"{dev.platform}, {_cpu_model() or 'cpu model unknown'}): one iteration "
              f"{r['cg_iteration_ms']:.2f} ms, the bare iteration {r['bare_iteration_ms']:.2f} ms: "
              f"{r['cg_vector_work_vs_bare_ratio']:.3f}x (CPU time "
              f"{r['cpu_cg_vector_work_vs_bare_ratio']:.3f}x); fixed cost per solve "
              f"{r['cg_fixed_ms']:.2f} ms (CPU {r['cpu_cg_fixed_ms']:.2f} ms; "
              f"{r['cg_page_faults_per_solve']} page faults per solve, "
              f"{r['bare_page_faults_per_iteration']} per bare iteration)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
