"""Section 7: Hessian-free's extended Gauss-Newton matrix is the natural gradient's Fisher.

For each matching pair (linear + squared error = Gaussian, sigmoid + cross-entropy = Bernoulli,
softmax + cross-entropy = Categorical), on a small random MLP in float64, we materialise

- ``ggn``: the extended Gauss-Newton matrix of eq. 14, G_N = (1/n) Σ_i J_rᵀ ∇²_r ℓ(r_i, t_i) J_r, with
  the loss Hessian in r taken by ``jax.hessian`` of the NLL at each example's *own* target;
- ``fisher_y``: the natural-gradient metric in y-space, eq. 9/24 (J_yᵀ J_y / std²), eq. 10/26
  (J_yᵀ diag(1/(y(1−y))) J_y) and eq. 11/28 (Σ_k (1/y_k) ∂y_kᵀ ∂y_k), with J_y = ∂σ(r)/∂θ by
  ``jax.jacobian``;
- ``fisher_score``: the definition, E_x E_{t~p(t|x)}[∇_θ log p ∇_θ log pᵀ] (eq. 8), the expectation
  over t exact: enumeration of the 2^o binary vectors (Bernoulli) or of the o classes (Categorical);
  for the Gaussian the 2^o points t = r ± std (coordinate-wise), which reproduce the mean and
  covariance of N(r, std²I) exactly, and the score is linear in t;
- ``library``: the library's ``natgrad.ggn_operator`` applied to the unit vectors;

and compare two steps on the same batch with the same damping λ and learning rate η:

- ``hf``: a Hessian-free step, −η (G_N + λI)⁻¹ g, with the products G_N v = J_rᵀ (∇²_r ℓ) J_r v made
  matrix-free from ``jax.hessian`` of the loss in r and solved by ``natgrad.solvers.cg``;
- ``ng``: ``natgrad.natural_gradient_step`` with ``metric="fisher"`` (the family's r-space Fisher,
  the same CG).

Differences: ``max_abs_diff = max |A − B|`` and ``max_rel_diff = max |A − B| / max |B|`` (relative to
the largest entry of the reference, so near-zero entries cannot inflate it).
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import families as fam
from natgrad.solvers import cg

FAMILIES = ("gaussian", "bernoulli", "categorical")
PAIRS = {
    "gaussian": "linear output + squared error",
    "bernoulli": "sigmoid output + cross-entropy",
    "categorical": "softmax output + cross-entropy",
}
ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "softplus": jax.nn.softplus,
               "linear": lambda z: z}

def make_family(name):
    return {"gaussian": fam.Gaussian(1.0), "bernoulli": fam.Bernoulli(),
            "categorical": fam.Categorical()}[name]


def make_problem(cfg, family_name, seed_offset=0):
    """A random MLP (params dict), its apply_fn (pre-activations r), inputs and targets."""
    key = jax.random.PRNGKey(int(cfg["seed"]) + 1000 * seed_offset)
    sizes = [int(cfg["inputs"]), *[int(h) for h in cfg["hidden"]], int(cfg["outputs"])]
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, kw, kb = jax.random.split(key, 3)
        params[f"W{i}"] = jax.random.normal(kw, (a, b), jnp.float64) / np.sqrt(a)
        params[f"b{i}"] = 0.5 * jax.random.normal(kb, (b,), jnp.float64)
    act = ACTIVATIONS[cfg["activation"]]
    n_layers = len(sizes) - 1

    def apply_fn(p, x):
        h = x
        for i in range(n_layers):
            h = h @ p[f"W{i}"] + p[f"b{i}"]
            if i < n_layers - 1:
                h = act(h)
        return h

    key, kx, kt = jax.random.split(key, 3)
    n, o = int(cfg["batch_size"]), int(cfg["outputs"])
    x = jax.random.normal(kx, (n, sizes[0]), jnp.float64)
    if family_name == "gaussian":
        t = jax.random.normal(kt, (n, o), jnp.float64)
    elif family_name == "bernoulli":
        t = jax.random.bernoulli(kt, 0.5, (n, o)).astype(jnp.float64)
    else:
        t = jax.random.randint(kt, (n,), 0, o)
    return params, apply_fn, x, t


def _jacobian_rows(fn, flat):
    """∂fn(θ)/∂θ for fn: R^P → R^(n, o), as an array (n, o, P)."""
    return jax.jacobian(fn)(flat)


def materialised(cfg, family_name):
    """The four materialised P×P matrices (ggn, fisher_y, fisher_score, library) for one family."""
    family = make_family(family_name)
    params, apply_fn, x, t = make_problem(cfg, family_name)
    flat, unravel = ravel_pytree(params)
    n, o = x.shape[0], int(cfg["outputs"])

    def compute(flat):
        def r_of(theta):
            return apply_fn(unravel(theta), x)

        r = r_of(flat)
        jr = _jacobian_rows(r_of, flat)  # (n, o, P)

        # Extended Gauss-Newton (eq. 14): the loss Hessian in r at each example's own target.
        def example_nll(ri, ti):
            return family.nll(ri[None], ti[None])[0]

        h_r = jax.vmap(jax.hessian(example_nll))(r, t)  # (n, o, o)
        ggn = jnp.einsum("nip,nij,njq->pq", jr, h_r, jr) / n

        # Fisher in y-space (eq. 9/24, 10/26, 11/28).
        jy = _jacobian_rows(lambda th: family.mean(r_of(th)), flat)
        y = family.mean(r)
        if family_name == "gaussian":
            weight = jnp.ones_like(y) / family.std**2
        elif family_name == "bernoulli":
            weight = 1.0 / (y * (1.0 - y))
        else:
            weight = 1.0 / y
        fisher_y = jnp.einsum("nip,ni,niq->pq", jy, weight, jy) / n

        # The definition: E_x E_t[score scoreᵀ] with the expectation over t exact.
        def score(theta, xi, ti):
            return -jax.grad(lambda th: family.nll(apply_fn(unravel(th), xi[None]), ti[None])[0])(theta)

        if family_name == "categorical":
            cands = jnp.broadcast_to(jnp.arange(o), (n, o))  # (n, K) class labels
            probs = y  # (n, K)
        elif family_name == "bernoulli":
            combos = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=o)), jnp.float64)  # (K, o)
            cands = jnp.broadcast_to(combos, (n, *combos.shape))
            probs = jnp.prod(jnp.where(combos[None] == 1.0, y[:, None], 1.0 - y[:, None]), axis=-1)
        else:
            signs = jnp.asarray(list(itertools.product([-1.0, 1.0], repeat=o)), jnp.float64)  # (K, o)
            cands = r[:, None] + family.std * signs[None]
            probs = jnp.full(cands.shape[:2], 1.0 / signs.shape[0])
        scores = jax.vmap(lambda xi, ti_k: jax.vmap(lambda ti: score(flat, xi, ti))(ti_k))(x, cands)
        fisher_score = jnp.einsum("nk,nkp,nkq->pq", probs, scores, scores) / n

        # The library's operator, materialised column by column.
        matvec = natgrad.ggn_operator(apply_fn, unravel(flat), x, family)
        cols = jax.vmap(lambda e: ravel_pytree(matvec(unravel(e)))[0])(jnp.eye(flat.size))
        library = cols.T
        return {"ggn": ggn, "fisher_y": fisher_y, "fisher_score": fisher_score, "library": library}

    return jax.jit(compute)(flat)


def steps(cfg, family_name):
    """The Hessian-free step (GN from the loss Hessian in r, CG) and natgrad's natural-gradient step."""
    family = make_family(family_name)
    params, apply_fn, x, t = make_problem(cfg, family_name)
    lam, eta = float(cfg["damping"]), float(cfg["learning_rate"])
    max_iters, rtol = int(cfg["cg"]["max_iters"]), float(cfg["cg"]["rtol"])
    n = x.shape[0]

    state = natgrad.natural_gradient_init(params, lam)
    # λ as float64 (the state may hold it as float32; the comparison is at the 1e-10 level).
    state = state._replace(damping=jnp.asarray(lam, jnp.float64))

    def both(params, state):
        def loss(p):
            return jnp.mean(family.nll(apply_fn(p, x), t))

        g = jax.grad(loss)(params)
        r, jvp_fn = jax.linearize(lambda p: apply_fn(p, x), params)
        vjp_fn = jax.linear_transpose(jvp_fn, params)

        def example_nll(ri, ti):
            return family.nll(ri[None], ti[None])[0]

        h_r = jax.vmap(jax.hessian(example_nll))(r, t)

        def gn_matvec(v):
            u = jvp_fn(v)
            (out,) = vjp_fn(jnp.einsum("nij,nj->ni", h_r, u) / n)
            return out

        direction, hf_info = cg(gn_matvec, g, damping=lam, max_iters=max_iters, rtol=rtol)
        hf_params = jax.tree_util.tree_map(lambda p, d: p - eta * d, params, direction)

        ng_params, _, ng_info = natgrad.natural_gradient_step(
            apply_fn, params, state, (x, t), None, family=family, learning_rate=eta, damping=lam,
            metric="fisher", solver="cg", max_iters=max_iters, rtol=rtol)
        return hf_params, hf_info, ng_params, ng_info

    hf_params, hf_info, ng_params, ng_info = jax.jit(both)(params, state)
    hf_step = ravel_pytree(hf_params)[0] - ravel_pytree(params)[0]
    ng_step = ravel_pytree(ng_params)[0] - ravel_pytree(params)[0]
    return hf_step, ng_step, {"hf_iterations": int(hf_info.iterations),
                              "ng_iterations": int(ng_info.iterations),
                              "hf_relative_residual": float(hf_info.relative_residual),
                              "ng_relative_residual": float(ng_info.relative_residual)}


def _diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    abs_diff = float(np.max(np.abs(a - b)))
    return abs_diff, abs_diff / float(np.max(np.abs(b)))


def table(cfg):
    """One row per family: the differences (columns *_diff) and the sizes that produced them."""
    rows = []
    with jax.enable_x64(True):
        for name in cfg["families"]:
            mats = materialised(cfg, name)
            hf_step, ng_step, info = steps(cfg, name)
            ggn = mats["ggn"]
            flat_size = ggn.shape[0]
            # The exact damped step with the materialised GN (reference for both solver runs).
            params, apply_fn, x, t = make_problem(cfg, name)
            family = make_family(name)
            g = ravel_pytree(jax.grad(lambda p: jnp.mean(family.nll(apply_fn(p, x), t)))(params))[0]
            exact = -float(cfg["learning_rate"]) * np.linalg.solve(
                np.asarray(ggn) + float(cfg["damping"]) * np.eye(flat_size), np.asarray(g))
            row = {"family": name, "pair": PAIRS[name], "parameters": int(flat_size),
                   "batch_size": int(cfg["batch_size"]), "outputs": int(cfg["outputs"])}
            for label, other in (("fisher_y", mats["fisher_y"]), ("fisher_score", mats["fisher_score"]),
                                 ("library_ggn", mats["library"])):
                a, r = _diff(other, ggn)
                row[f"ggn_vs_{label}_max_abs_diff"] = a
                row[f"ggn_vs_{label}_max_rel_diff"] = r
            a, r = _diff(ng_step, hf_step)
            row["hf_vs_ng_step_max_abs_diff"] = a
            row["hf_vs_ng_step_max_rel_diff"] = r
            a, r = _diff(hf_step, exact)
            row["hf_step_vs_exact_max_abs_diff"] = a
            row["hf_step_vs_exact_max_rel_diff"] = r
            row["ggn_max_abs"] = float(np.max(np.abs(np.asarray(ggn))))
            row["step_norm"] = float(np.linalg.norm(np.asarray(hf_step)))
            row.update(info)
            rows.append(row)
    return pd.DataFrame(rows)


def diff_columns(df):
    return [c for c in df.columns if "diff" in c]


def check(df, tolerance):
    """Raise if any difference exceeds `tolerance` (the run must fail loudly)."""
    cols = diff_columns(df)
    values = df[cols].to_numpy(dtype=float)
    bad = ~(values <= tolerance)  # NaN counts as a failure
    if bad.any():
        lines = [f"{df['family'].iloc[i]}: {cols[j]} = {values[i, j]:.3e}" for i, j in zip(*np.nonzero(bad))]
        raise RuntimeError(
            f"section 7 equivalence: differences above {tolerance:g}:\n  " + "\n  ".join(lines))


def table_html(df):
    """The table as a small standalone HTML page for the report."""
    cols = ["family", "pair", "parameters", *diff_columns(df)]
    body = df[cols].to_html(index=False, float_format=lambda v: f"{v:.2e}", border=0)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Section 7: GN = Fisher</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        " td,th{padding:3px 8px;border-bottom:1px solid #ccc;text-align:right}</style></head><body>"
        "<h3>Extended Gauss-Newton vs Fisher, Hessian-free step vs natural-gradient step (float64)</h3>"
        + body + "</body></html>\n"
    )
