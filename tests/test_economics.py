"""The natural-gradient step's solver economics (`natgrad.economics`): metric sub-batch, warm
start, Martens' diagonal preconditioner and progress truncation, against dense references in
float64: metrics materialised with `jax.jacobian`/`jax.hessian`, solves with `np.linalg.solve`,
truncated preconditioned CG as the Galerkin solution on a numpy Krylov basis."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import families, solvers
from natgrad.economics import PAPER, RECOMMENDED, SolverEconomics
from natgrad.preconditioners import MartensDiagonal, squared_gradients

N, D, H, O = 10, 3, 4, 3
LAM, ETA = 0.3, 0.7
FAMILY = families.Categorical()


def _apply(p, x):
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"w1": rng.standard_normal((D, H)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(H),
              "w2": rng.standard_normal((H, O)) / np.sqrt(H), "b2": np.zeros(O)}
    params = jax.tree_util.tree_map(jnp.asarray, params)
    x = jnp.asarray(rng.standard_normal((N, D)))
    y = jnp.asarray(rng.integers(0, O, N))
    xu = jnp.asarray(rng.standard_normal((2 * N, D)))
    return params, x, y, xu


def _dense_fisher(params, x):
    """(1/n) Σ J_iᵀ H_r,i J_i with H_r the Hessian of the NLL in r (= the softmax Fisher)."""
    flat, unravel = ravel_pytree(params)
    j = jax.jacobian(lambda p: _apply(unravel(p), x))(flat)  # (n, O, P)
    r = _apply(params, x)
    h = jax.vmap(jax.hessian(lambda ri: FAMILY.nll(ri[None], jnp.zeros(1, int))[0]))(r)
    return np.asarray(jnp.einsum("nop,noq,nqr->pr", j, h, j) / x.shape[0])


def _per_example_gradients(params, x, y):
    """Rows g_i: the Jacobian of the per-example loss vector."""
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.jacobian(lambda p: FAMILY.nll(_apply(unravel(p), x), y))(flat))


def _gradient(params, x, y):
    return np.asarray(ravel_pytree(jax.grad(
        lambda p: jnp.mean(FAMILY.nll(_apply(p, x), y)))(params))[0])


def _step(economics, *, max_iters=200, rtol=1e-12, solver="cg"):
    return jax.jit(functools.partial(
        natgrad.natural_gradient_step, _apply, family=FAMILY, learning_rate=ETA, damping=LAM,
        solver=solver, max_iters=max_iters, rtol=rtol, economics=economics))


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


# --- metric sub-batch ----------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.25, 0.5])
@pytest.mark.parametrize("unlabeled", [False, True], ids=["gradient-batch", "unlabeled-batch"])
def test_metric_fraction_is_the_metric_on_the_leading_rows(x64, fraction, unlabeled):
    params, x, y, xu = _problem()
    source = xu if unlabeled else x
    m = math.ceil(fraction * source.shape[0])
    econ = SolverEconomics(metric_fraction=fraction)
    state = natgrad.natural_gradient_init(params, LAM)
    new, _, info = _step(econ)(params, state, (x, y), xu if unlabeled else None)
    g = _gradient(params, x, y)
    p = g.size
    expected = _flat(params) - ETA * np.linalg.solve(_dense_fisher(params, source[:m])
                                                     + LAM * np.eye(p), g)
    np.testing.assert_allclose(_flat(new), expected, rtol=1e-7, atol=1e-10)
    assert int(info.flag) == solvers.CONVERGED
    # the loss is still the whole gradient batch's
    assert float(info.loss) == pytest.approx(float(jnp.mean(FAMILY.nll(_apply(params, x), y))))


def test_metric_fraction_in_the_optax_transformation(x64):
    params, x, y, xu = _problem()
    tx = natgrad.natural_gradient(_apply, FAMILY, ETA, damping=LAM, max_iters=200, rtol=1e-12,
                                  economics=SolverEconomics(metric_fraction=0.3))
    grads = jax.grad(lambda p: jnp.mean(FAMILY.nll(_apply(p, x), y)))(params)
    updates, _ = tx.update(grads, tx.init(params), params, metric_batch=xu)
    fisher = _dense_fisher(params, xu[:math.ceil(0.3 * xu.shape[0])])
    expected = -ETA * np.linalg.solve(fisher + LAM * np.eye(fisher.shape[0]), _flat(grads))
    np.testing.assert_allclose(_flat(updates), expected, rtol=1e-7, atol=1e-10)


def test_metric_fraction_must_be_a_fraction():
    with pytest.raises(ValueError, match="metric_fraction"):
        SolverEconomics(metric_fraction=0.0)
    with pytest.raises(ValueError, match="warm_start"):
        SolverEconomics(warm_start=1.5)


# --- warm start ----------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["cg", "minres_qlp"])
def test_warm_start_carries_the_direction_and_starts_from_its_decay(x64, solver):
    """Step 1 (converged) leaves ng_1 = (F + λI)⁻¹ g in the state; a step 2 with no iteration
    returns its start, 0.95·ng_1, whatever its own gradient."""
    params, x, y, _ = _problem()
    econ = SolverEconomics(warm_start=0.95)
    state = natgrad.natural_gradient_init(params, LAM, economics=econ)
    assert _flat(state.direction) == pytest.approx(np.zeros(_flat(params).size))
    new, state, _ = _step(econ, solver=solver)(params, state, (x, y), None)
    g = _gradient(params, x, y)
    ng1 = np.linalg.solve(_dense_fisher(params, x) + LAM * np.eye(g.size), g)
    np.testing.assert_allclose(_flat(state.direction), ng1, rtol=1e-7, atol=1e-10)
    no_iteration = jax.jit(lambda p, s, k: natgrad.natural_gradient_step(
        _apply, p, s, (x, y), family=FAMILY, learning_rate=ETA, damping=LAM, solver=solver,
        max_iters=k, rtol=1e-12, economics=econ))  # a traced 0: a concrete one is refused
    newer, _, info = no_iteration(new, state, jnp.int32(0))
    assert int(info.iterations) == 0
    np.testing.assert_allclose(_flat(new) - _flat(newer), ETA * 0.95 * ng1, rtol=1e-9, atol=1e-12)


def test_warm_start_needs_a_state_made_for_it(x64):
    params, x, y, _ = _problem()
    with pytest.raises(ValueError, match="natural_gradient_init"):
        _step(SolverEconomics(warm_start=0.95))(params, natgrad.natural_gradient_init(params, LAM),
                                                (x, y), None)


def test_warm_start_state_runs_through_a_scan(x64):
    """The optax state with a direction has a fixed structure from init: it scans."""
    params, x, y, xu = _problem()
    tx = natgrad.natural_gradient(_apply, FAMILY, 0.5, damping=natgrad.damping.LevenbergMarquardt(),
                                  max_iters=5, economics=RECOMMENDED)

    def body(carry, _):
        p, s = carry
        grads = jax.grad(lambda q: jnp.mean(FAMILY.nll(_apply(q, x), y)))(p)
        updates, s = tx.update(grads, s, p, metric_batch=xu, grad_batch=(x, y))
        return (optax.apply_updates(p, updates), s), s[0].info.iterations

    (_, s), _ = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=3))(params)
    assert int(s[0].count) == 3
    assert np.all(np.isfinite(_flat(s[0].direction))) and np.any(_flat(s[0].direction) != 0)


# --- Martens' diagonal preconditioner ------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 3, 100])
def test_squared_gradients_are_the_mean_squared_per_example_gradients(x64, chunk):
    params, x, y, _ = _problem()
    d = squared_gradients(_apply, params, x, y, FAMILY, chunk=chunk)
    rows = _per_example_gradients(params, x, y)
    np.testing.assert_allclose(_flat(d), np.mean(rows**2, axis=0), rtol=1e-12, atol=1e-15)
    m = MartensDiagonal(exponent=0.75)(_apply, params, x, y, FAMILY, LAM)
    np.testing.assert_allclose(_flat(m), (np.mean(rows**2, axis=0) + LAM) ** 0.75, rtol=1e-12)


def test_martens_diagonal_is_a_preconditioner_whose_inverse_divides_by_its_state(x64):
    params, x, y, _ = _problem()
    martens = MartensDiagonal()
    assert isinstance(martens, natgrad.preconditioners.Preconditioner)
    assert solvers.inverse_preconditioner is natgrad.preconditioners.inverse_preconditioner
    state = martens.refresh(martens.init(params), _apply, params, x, y, FAMILY, LAM)
    v = jax.tree_util.tree_map(jnp.ones_like, params)
    np.testing.assert_array_equal(_flat(martens.inverse(state)(v)), 1 / _flat(state))


def _pcg_iterate(a, b, m_diag, k):
    """The k-th preconditioned CG iterate from 0: Galerkin on K_k(M⁻¹A, M⁻¹b) (numpy)."""
    q = np.zeros((len(b), k))
    v = b / m_diag
    for j in range(k):
        for _ in range(2):
            v = v - q[:, :j] @ (q[:, :j].T @ v)
        q[:, j] = v / np.linalg.norm(v)
        v = (a @ q[:, j]) / m_diag
    return q @ np.linalg.solve(q.T @ a @ q, q.T @ b)


@pytest.mark.parametrize("k", [2, 5, 200])
def test_preconditioned_step_is_the_dense_preconditioned_cg_iterate(x64, k):
    params, x, y, _ = _problem()
    econ = SolverEconomics(preconditioner=MartensDiagonal())
    state = natgrad.natural_gradient_init(params, LAM)
    new, _, info = _step(econ, max_iters=k)(params, state, (x, y), None)
    g = _gradient(params, x, y)
    a = _dense_fisher(params, x) + LAM * np.eye(g.size)
    m_diag = (np.mean(_per_example_gradients(params, x, y) ** 2, axis=0) + LAM) ** 0.75
    gnorm = np.linalg.norm(g)
    ng = gnorm * _pcg_iterate(a, g / gnorm, m_diag, k) if k < 200 else np.linalg.solve(a, g)
    np.testing.assert_allclose(_flat(params) - _flat(new), ETA * ng, rtol=1e-6, atol=1e-10)
    assert int(info.flag) == (solvers.CONVERGED if k == 200 else solvers.MAX_ITERS)


@pytest.mark.parametrize("fraction, rows", [(None, 5), (1.0, N), (0.3, 3)])
def test_preconditioner_fraction_picks_the_preconditioner_rows(x64, fraction, rows):
    """The preconditioner is refreshed on the first ⌈f·n⌉ rows of the gradient batch, f its own
    fraction or, when None, the metric's (0.5 here): Martens' diagonal from the per-example
    gradients of exactly those rows."""
    params, x, y, _ = _problem()
    econ = SolverEconomics(preconditioner=MartensDiagonal(), metric_fraction=0.5,
                           preconditioner_fraction=fraction)
    state = natgrad.natural_gradient_init(params, LAM, economics=econ)
    _, new_state, _ = _step(econ, max_iters=2)(params, state, (x, y), None)
    want = (np.mean(_per_example_gradients(params, x[:rows], y[:rows]) ** 2, axis=0) + LAM) ** 0.75
    np.testing.assert_allclose(_flat(new_state.preconditioner), want, rtol=1e-12)
    with pytest.raises(ValueError, match="preconditioner_fraction"):
        SolverEconomics(preconditioner_fraction=1.5)


def test_preconditioner_in_the_transformation_needs_grad_batch(x64):
    params, x, _, xu = _problem()
    tx = natgrad.scale_by_natural_gradient(
        _apply, FAMILY, damping=LAM, economics=SolverEconomics(preconditioner=MartensDiagonal()))
    with pytest.raises(ValueError, match="grad_batch"):
        tx.update(params, tx.init(params), params, metric_batch=xu)


# --- progress truncation -------------------------------------------------------------------


def test_progress_truncation_in_the_step(x64):
    """Martens' rule stops the step's CG before max_iters once the model stalls; the step then
    is the truncated CG iterate (the solver's own replay test covers the stopping index)."""
    params, x, y, _ = _problem()
    econ = SolverEconomics(progress=solvers.Progress(min_k=2, fraction=0.1, epsilon=1e-3))
    state = natgrad.natural_gradient_init(params, 1e-3)
    step = jax.jit(functools.partial(natgrad.natural_gradient_step, _apply, family=FAMILY,
                                     learning_rate=ETA, damping=1e-3, rtol=1e-14),
                   static_argnames=("max_iters", "economics"))
    _, _, info = step(params, state, (x, y), None, max_iters=100, economics=econ)
    assert int(info.flag) == solvers.PROGRESS and 2 < int(info.iterations) < 100
    k = int(info.iterations)
    _, _, plain = step(params, state, (x, y), None, max_iters=k)
    assert int(plain.flag) == solvers.MAX_ITERS
    assert float(info.relative_residual) == pytest.approx(float(plain.relative_residual))


def test_progress_truncation_needs_cg():
    with pytest.raises(ValueError, match="cg"):
        natgrad.natural_gradient(_apply, FAMILY, 0.1, solver="minres_qlp",
                                 economics=SolverEconomics(progress=solvers.Progress()))


def test_paper_economics_is_the_default():
    assert PAPER == SolverEconomics()
    assert PAPER.warm_start == 0 and PAPER.preconditioner is None and PAPER.progress is None
    assert PAPER.metric_fraction == 1
