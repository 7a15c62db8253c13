"""The toy autoencoder of section 4 (figure 1): derivatives, metrics, KL, paths and the CLI outputs."""
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml

from natgrad.study import config, registry
from natgrad.study.toy import cli, paths
from natgrad.study.toy.model import METHODS, Autoencoder

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "inputs": {"distribution": "normal", "n": 16, "seed": 1},
    "steps": 30,
    "starts": [{"name": "1", "b": -3.0, "w": 3.5}, {"name": "3", "b": 3.0, "w": -1.0}],
    "figure": {"starts": ["1", "3"], "kl_steps": [0, 3], "kl_max_half_width": 3.0, "kl_grid": 31,
               "dpi": 40},
    "grid": {"b": [-4.0, 4.0], "w": [-4.0, 4.0], "n": 41},
}


def _raw_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _resolved_toy(toy):
    """The resolved `toy:` section of the study config with its `toy:` replaced by `toy`."""
    return registry.resolve({**_raw_config(), "toy": toy})["toy"]


@pytest.fixture(scope="module")
def cfg():
    """The study's `toy:` section, resolved, with SMALL's inputs, steps, starts, figure and grid."""
    return _resolved_toy({**_raw_config()["toy"], **SMALL})


@pytest.fixture
def problem(x64, cfg):
    return Autoencoder.from_config(cfg)


def _fd_grad(f, theta, eps=1e-6):
    out = []
    for k in range(theta.size):
        e = jnp.zeros_like(theta).at[k].set(eps)
        out.append((f(theta + e) - f(theta - e)) / (2 * eps))
    return jnp.stack(out, axis=-1)


def test_gradient_and_hessian_match_finite_differences(problem):
    theta = jnp.array([0.3, -1.2])
    np.testing.assert_allclose(problem.gradient(theta), _fd_grad(problem.error, theta), rtol=1e-7)
    np.testing.assert_allclose(problem.hessian(theta), _fd_grad(problem.gradient, theta), rtol=1e-6, atol=1e-8)


def test_reconstruction_reads_the_formula_literally(problem):
    b, w, x = 0.4, -1.3, 0.7
    expected_error = (x - w / (1 + np.exp(-(w * x + b))) + b) ** 2
    y = problem.reconstruct(jnp.array([b, w]), x)
    np.testing.assert_allclose((x - y) ** 2, expected_error, rtol=1e-12)


def test_fisher_closed_form_and_definition(problem):
    """G = E_x[J_yᵀ J_y]/β² with J_y in closed form, and = E_x E_t[score scoreᵀ] (2-point rule, exact)."""
    theta = jnp.array([0.5, 1.5])
    b, w = theta
    x = problem.inputs
    s = jax.nn.sigmoid(w * x + b)
    ds = s * (1 - s)
    jac = jnp.stack([w * ds + problem.output_bias_sign, s + w * x * ds], axis=1)  # ∂y/∂(b, w)
    closed = jac.T @ jac / (x.size * problem.output_variance)
    np.testing.assert_allclose(problem.fisher(theta), closed, rtol=1e-12)
    # score of log N(t | y, β²) is (t − y) J / β²; t = y ± β reproduces E_t exactly.
    beta = np.sqrt(problem.output_variance)
    score_outer = sum(0.5 * (sgn * beta) ** 2 / beta**4 * jac.T @ jac for sgn in (-1, 1)) / x.size
    np.testing.assert_allclose(problem.fisher(theta), score_outer, rtol=1e-12)


def test_fisher_is_gauss_newton_of_the_error(problem):
    """With β² = 1/2 the metric is the Gauss-Newton matrix of the error, 2 E[J_yᵀ J_y] (eq. 16)."""
    theta = jnp.array([-0.7, 2.0])
    jac = problem.output_jacobian(theta)
    np.testing.assert_allclose(problem.fisher(theta), 2 * jac.T @ jac / jac.shape[0], rtol=1e-12)


def test_covariance_uncentred_and_centred(problem):
    theta = jnp.array([1.0, -2.0])
    grads = np.stack([_fd_grad(lambda t, x=x: (x - problem.reconstruct(t, x)) ** 2, theta)
                      for x in problem.inputs])
    u = grads.T @ grads / len(grads)
    np.testing.assert_allclose(problem.covariance(theta), u, rtol=1e-6)
    c = u - np.outer(grads.mean(0), grads.mean(0))
    np.testing.assert_allclose(problem.covariance(theta, centred=True), c, rtol=1e-6, atol=1e-10)
    # the mean per-example gradient is the error's gradient
    np.testing.assert_allclose(grads.mean(0), problem.gradient(theta), rtol=1e-6)


@pytest.mark.parametrize("direction", [[1.0, 0.0], [0.0, 1.0], [0.6, -0.8]])
def test_kl_second_order_matches_fisher(problem, direction):
    """2 KL(p_θ ‖ p_{θ+εd}) / (ε² dᵀGd) → 1 as ε → 0."""
    theta = jnp.array([0.8, -1.5])
    d = jnp.asarray(direction)
    quad = d @ problem.fisher(theta) @ d
    ratios = [float(2 * problem.kl(theta, eps * d) / (eps**2 * quad)) for eps in (1e-1, 1e-2, 1e-3)]
    errors = [abs(r - 1) for r in ratios]
    assert errors[-1] < 1e-4
    assert errors[2] < errors[1] < errors[0]


def test_kl_surface_minimum_at_origin(x64, cfg):
    d = np.linspace(-1, 1, 41)
    kl = paths.kl_surface(cfg, [0.5, 2.0], d, d)
    i, j = np.unravel_index(np.argmin(kl), kl.shape)
    assert (d[i], d[j]) == (0.0, 0.0)
    assert kl.min() == 0.0 and (kl >= 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_paths_decrease_the_error(problem, cfg, method):
    start = jnp.array([-3.0, 3.5])
    thetas = problem.path(method, start, cfg["methods"][method], 30)
    errs = np.asarray(jax.vmap(problem.error)(thetas))
    assert thetas.shape == (31, 2)
    assert np.isfinite(errs).all()
    assert errs[-1] < 0.5 * errs[0]


@pytest.mark.parametrize("methods_from", ["config.yaml", "schema defaults"])
def test_steps_follow_appendix_8_4(problem, cfg, methods_from):
    if methods_from == "schema defaults":
        cfg = _resolved_toy({key: value for key, value in cfg.items() if key != "methods"})
    theta = jnp.array([0.2, 1.1])
    g = problem.gradient(theta)
    eye = jnp.eye(2)
    expected = {
        "gd": -0.1 * g,
        "newton": -jnp.linalg.solve(problem.hessian(theta) + eye, g),
        "amari": -0.5 * jnp.linalg.solve(problem.fisher(theta) + 0.01 * eye, g),
        "covariance": -jnp.linalg.solve(problem.covariance(theta) + eye, g),
    }
    for m in METHODS:
        np.testing.assert_allclose(problem.step(m, theta, cfg["methods"][m]), expected[m], rtol=1e-12)


def test_old_learning_rate_key_is_refused():
    toy = {**SMALL, "methods": {"gd": {"lr": 0.1}}}
    with pytest.raises(config.ConfigError, match="learning_rate"):
        _resolved_toy(toy)


def test_cli_writes_paths_points_and_figures(tmp_path, cfg):
    p, k = tmp_path / "paths.csv", tmp_path / "kl_points.csv"
    fig, allfig = tmp_path / "figure1.png", tmp_path / "paths_all.png"
    cli.main(["paths", "--config", json.dumps(cfg), "--paths", str(p), "--kl-points", str(k)])
    cli.main(["figure", "--config", json.dumps(cfg), "--paths", str(p), "--kl-points", str(k),
              "--figure", str(fig), "--all-starts", str(allfig)])
    table = pd.read_csv(p, dtype={"start": str})
    assert set(table["method"]) == set(METHODS)
    assert len(table) == 2 * 4 * 31
    for (_, _), g in table.groupby(["start", "method"]):
        assert g["error"].iloc[-1] < g["error"].iloc[0]
    points = pd.read_csv(k)
    assert sorted(points["label"].unique()) == [1, 2, 3, 4]
    assert len(points) == 16
    # small steps: the KL of the step is close to its quadratic form ½ΔᵀGΔ
    small = points[points["quad"] < 1e-2]
    np.testing.assert_allclose(small["kl"], small["quad"], rtol=0.1)
    for f in (fig, allfig):
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
