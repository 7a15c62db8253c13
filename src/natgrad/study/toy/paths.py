"""Paths of the four methods from every starting point, and the KL points along the natural-gradient path.

`compute_paths` gives a long table (start, method, step, b, w, error); `kl_points` gives, for the
figure's KL panels, the point on the natural-gradient path and each method's proposed step there.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from natgrad.study.toy.model import METHODS, Autoencoder, with_x64


def start_table(cfg):
    """The starting points as a list of dicts {name, b, w}."""
    starts = []
    for i, s in enumerate(cfg["starts"]):
        starts.append({"name": str(s.get("name", i + 1)), "b": float(s["b"]), "w": float(s["w"])})
    if not starts:
        raise ValueError("toy: at least one starting point is needed (config toy.starts)")
    return starts


@with_x64
def compute_paths(cfg):
    """All methods from all starts: a DataFrame with columns start, method, step, b, w, error."""
    problem = Autoencoder.from_config(cfg)
    error = jax.jit(jax.vmap(problem.error))
    frames = []
    for start in start_table(cfg):
        theta0 = jnp.array([start["b"], start["w"]], dtype=jnp.float64)
        for method in METHODS:
            hyper = cfg["methods"][method]
            run = jax.jit(lambda t, m=method, h=hyper: problem.path(m, t, h, int(cfg["steps"])))
            thetas = run(theta0)
            errs = np.asarray(error(thetas))
            thetas = np.asarray(thetas)
            frames.append(pd.DataFrame({
                "start": start["name"], "method": method, "step": np.arange(thetas.shape[0]),
                "b": thetas[:, 0], "w": thetas[:, 1], "error": errs,
            }))
    return pd.concat(frames, ignore_index=True)


def kl_locations(cfg, paths):
    """The figure's KL points: (label, start, step) for each figure start and each step in kl_steps."""
    fig = cfg["figure"]
    starts = [str(s) for s in fig.get("starts") or [start_table(cfg)[0]["name"]]]
    kl_steps = [int(k) for k in fig["kl_steps"]]
    locations, label = [], 1
    for start in starts:
        if start not in set(paths["start"]):
            raise ValueError(f"toy.figure.starts names {start!r}, which is not in toy.starts")
        for k in kl_steps:
            locations.append((label, start, k))
            label += 1
    return locations


@with_x64
def kl_points(cfg, paths):
    """At each KL location on the natural-gradient path: each method's proposed step.

    Columns: label, start, step, b, w, method, db, dw, kl (KL(p_θ ‖ p_{θ+Δ}) of that step),
    quad (½ Δᵀ G Δ, its quadratic approximation).
    """
    problem = Autoencoder.from_config(cfg)
    rows = []
    for label, start, k in kl_locations(cfg, paths):
        ng = paths[(paths["start"] == start) & (paths["method"] == "amari") & (paths["step"] == k)]
        if ng.empty:
            raise ValueError(f"toy.figure.kl_steps: step {k} is beyond the path's {cfg['steps']} steps")
        theta = jnp.array([ng["b"].iloc[0], ng["w"].iloc[0]], dtype=jnp.float64)
        fisher = problem.fisher(theta)
        for method in METHODS:
            delta = problem.step(method, theta, cfg["methods"][method])
            rows.append({
                "label": label, "start": start, "step": k,
                "b": float(theta[0]), "w": float(theta[1]), "method": method,
                "db": float(delta[0]), "dw": float(delta[1]),
                "kl": float(problem.kl(theta, delta)),
                "quad": float(0.5 * delta @ fisher @ delta),
            })
    return pd.DataFrame(rows)


@with_x64
def error_surface(config, b_values, w_values):
    """The error over a (w, b) grid: array shaped (len(w_values), len(b_values))."""
    problem = Autoencoder.from_config(config)
    bb, ww = np.meshgrid(b_values, w_values)
    thetas = jnp.stack([jnp.asarray(bb.ravel()), jnp.asarray(ww.ravel())], axis=1)
    return np.asarray(jax.jit(jax.vmap(problem.error))(thetas)).reshape(bb.shape)


@with_x64
def kl_surface(config, theta, db_values, dw_values):
    """KL(p_θ ‖ p_{θ+Δ}) over a (Δw, Δb) grid: array shaped (len(dw_values), len(db_values))."""
    problem = Autoencoder.from_config(config)
    theta = jnp.asarray(theta, dtype=jnp.float64)
    bb, ww = np.meshgrid(db_values, dw_values)
    deltas = jnp.stack([jnp.asarray(bb.ravel()), jnp.asarray(ww.ravel())], axis=1)
    kl = jax.jit(jax.vmap(problem.kl, in_axes=(None, 0)))(theta, deltas)
    return np.asarray(kl).reshape(bb.shape)
