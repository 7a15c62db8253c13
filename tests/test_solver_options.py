"""natgrad.solvers' economics options: warm start `x0`, `preconditioner` and CG's `progress`
truncation, against dense references (float64 via the `x64` fixture).

The references are independent of the solvers' recurrences: a Krylov basis built in numpy with full
reorthogonalization, CG's iterates as the Galerkin solutions on it (they minimise the A-norm of the
error over the space) and MINRES's as least-squares solutions (they minimise the M⁻¹-norm of the
residual), and `np.linalg.solve` for converged solves.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from natgrad.solvers import (CONVERGED, MAX_ITERS, PROGRESS, ZERO_RHS, Progress, cg,
                             inverse_preconditioner, minres_qlp)

SOLVERS = [cg, minres_qlp]
IDS = ["cg", "minres_qlp"]


def _sym(eigenvalues, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    a = (q * np.asarray(eigenvalues, float)) @ q.T
    return (a + a.T) / 2


def _spd_system(n=30, seed=0, low=0.05, high=50.0):
    rng = np.random.default_rng(seed)
    return _sym(rng.uniform(low, high, n), seed + 1), rng.standard_normal(n)


def _krylov(op, start, k):
    """Orthonormal basis of span{start, op(start), …, op^{k−1}(start)} (numpy, reorthogonalised
    twice)."""
    q = np.zeros((len(start), k))
    v = start / np.linalg.norm(start)
    for j in range(k):
        for _ in range(2):
            v = v - q[:, :j] @ (q[:, :j].T @ v)
        q[:, j] = v / np.linalg.norm(v)
        v = op(q[:, j])
    return q


def _cg_iterate(a, b, k, x0=None, m_inv=None):
    """The k-th (preconditioned) CG iterate: x0 + Galerkin solution on K_k(M⁻¹A, M⁻¹r0)."""
    x0 = np.zeros_like(b) if x0 is None else x0
    m_inv = np.eye(len(b)) if m_inv is None else m_inv
    r0 = b - a @ x0
    q = _krylov(lambda v: m_inv @ (a @ v), m_inv @ r0, k)
    return x0 + q @ np.linalg.solve(q.T @ a @ q, q.T @ r0)


def _minres_iterate(a, b, k, m):
    """The k-th preconditioned MINRES iterate: argmin ‖L⁻¹(b − A x)‖ over K_k(M⁻¹A, M⁻¹b),
    M = LLᵀ."""
    l_inv = np.linalg.inv(np.linalg.cholesky(m))
    m_inv = np.linalg.inv(m)
    q = _krylov(lambda v: m_inv @ (a @ v), m_inv @ b, k)
    y, *_ = np.linalg.lstsq(l_inv @ a @ q, l_inv @ b, rcond=None)
    return q @ y


def _m_norm(r, m):
    return np.sqrt(r @ np.linalg.solve(m, r))


@functools.partial(jax.jit, static_argnames=("solver", "max_iters", "progress", "diagonal"))
def _run(solver, a, b, precond, x0, *, max_iters, rtol=1e-12, progress=None, diagonal=False):
    """A dense solve under jit; `precond` is None, a matrix M⁻¹ (applied as a function) or, with
    `diagonal`, the diagonal of M."""
    if precond is not None and not diagonal:
        m_inv = precond
        precond = lambda v: m_inv @ v  # noqa: E731
    kw = {} if progress is None else {"progress": progress}
    return solver(lambda v: a @ v, b, max_iters=max_iters, rtol=rtol, x0=x0,
                  preconditioner=precond, **kw)


# --------------------------------------------------------------------------------------------
# Warm start.


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_warm_start_converges_to_the_dense_solution(x64, solver):
    a, b = _spd_system(seed=2)
    x0 = np.random.default_rng(3).standard_normal(len(b))
    x, info = _run(solver, a, b, None, x0, max_iters=200)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)
    assert int(info.flag) == CONVERGED
    # the reported residual is relative to ‖b‖, not to the residual of x0: checked on a solve
    # stopped at rtol 1e-6, well above rounding (near 1e-14 the recurrence and the true residual
    # part by their rounding errors, differently on each jax version)
    x, info = _run(solver, a, b, None, x0, max_iters=200, rtol=1e-6)
    r = np.linalg.norm(b - a @ np.asarray(x)) / np.linalg.norm(b)
    assert r <= 1e-6
    assert float(info.relative_residual) == pytest.approx(r, rel=1e-3)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_warm_start_at_the_solution_takes_no_iteration(x64, solver):
    a = np.diag([1.0, 2.0, 4.0, 8.0])  # exact in floating point: A x* = b to the last bit
    x_star = np.array([1.0, -0.5, 0.25, 2.0])
    x, info = _run(solver, a, a @ x_star, None, x_star, max_iters=50)
    assert int(info.iterations) == 0
    assert int(info.flag) == CONVERGED
    np.testing.assert_array_equal(np.asarray(x), x_star)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_warm_start_with_zero_rhs_returns_zero(x64, solver):
    a, _ = _spd_system(n=6, seed=4)
    x, info = _run(solver, a, np.zeros(6), None, np.ones(6), max_iters=50)
    assert int(info.flag) == ZERO_RHS
    np.testing.assert_array_equal(np.asarray(x), np.zeros(6))


def test_truncated_cg_from_x0_is_the_galerkin_iterate(x64):
    a, b = _spd_system(seed=5)
    x0 = np.random.default_rng(6).standard_normal(len(b))
    for k in (1, 3, 6):
        x, info = _run(cg, a, b, None, x0, max_iters=k)
        assert int(info.iterations) == k and int(info.flag) == MAX_ITERS
        np.testing.assert_allclose(np.asarray(x), _cg_iterate(a, b, k, x0), rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------------------------
# Preconditioning.


def _preconditioner(n, seed, diagonal):
    """An SPD M: a positive diagonal, or a dense well-conditioned SPD matrix."""
    rng = np.random.default_rng(seed)
    if diagonal:
        return np.diag(rng.uniform(0.2, 30.0, n))
    return _sym(rng.uniform(0.5, 10.0, n), seed + 1)


def _given(m, diagonal):
    return np.diag(m).copy() if diagonal else np.linalg.inv(m)


@pytest.mark.parametrize("diagonal", [True, False], ids=["diagonal", "function"])
@pytest.mark.parametrize("warm", [False, True], ids=["x0=0", "x0"])
def test_preconditioned_cg_iterates_are_the_galerkin_iterates(x64, diagonal, warm):
    a, b = _spd_system(seed=7)
    m = _preconditioner(len(b), 8, diagonal)
    x0 = np.random.default_rng(9).standard_normal(len(b)) if warm else None
    for k in (1, 4, 8):
        x, info = _run(cg, a, b, _given(m, diagonal), x0, max_iters=k, diagonal=diagonal)
        ref = _cg_iterate(a, b, k, x0, np.linalg.inv(m))
        np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-7, atol=1e-9)
        # the reported residual is the true (unpreconditioned) one of the returned iterate
        r = np.linalg.norm(b - a @ np.asarray(x)) / np.linalg.norm(b)
        assert float(info.relative_residual) == pytest.approx(r, rel=1e-6)
    x, info = _run(cg, a, b, _given(m, diagonal), x0, max_iters=200, diagonal=diagonal)
    assert int(info.flag) == CONVERGED
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)


def test_a_good_preconditioner_saves_iterations(x64):
    """A badly scaled diagonal-dominant system: Jacobi preconditioning cuts CG's iterations."""
    rng = np.random.default_rng(10)
    d = np.logspace(-2, 3, 60)
    a = np.diag(d) + 0.01 * _sym(rng.uniform(0, 1, 60), 11) * np.sqrt(np.outer(d, d))
    b = rng.standard_normal(60)
    _, plain = _run(cg, a, b, None, None, max_iters=500, rtol=1e-8)
    x, pre = _run(cg, a, b, np.diag(a).copy(), None, max_iters=500, rtol=1e-8, diagonal=True)
    assert int(pre.flag) == CONVERGED
    assert int(pre.iterations) < int(plain.iterations) / 2
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-6)


@pytest.mark.parametrize("warm", [False, True], ids=["zero", "x0"])
@pytest.mark.parametrize("max_iters, rtol", [(3, 0.0), (50, 1e-6)], ids=["budget", "rtol"])
def test_cg_applies_the_preconditioner_once_per_iteration(x64, warm, max_iters, rtol):
    """k iterations read k preconditioned residuals z = M⁻¹r (the last residual's is never
    read): M⁻¹ is applied k times, counted at run time, whichever rule stops the loop."""
    a, b = _spd_system(n=12, seed=20)
    m = np.diag(a).copy()
    calls = []

    def inverse(v):
        jax.debug.callback(lambda: calls.append(1))
        return v / jnp.asarray(m)

    x0 = jnp.asarray(np.linspace(-1, 1, len(b))) if warm else None
    x, info = jax.jit(lambda bb: cg(lambda v: jnp.asarray(a) @ v, bb, max_iters=max_iters,
                                    rtol=rtol, x0=x0, preconditioner=inverse))(jnp.asarray(b))
    jax.block_until_ready(x)
    assert int(info.flag) == (MAX_ITERS if rtol == 0 else CONVERGED)
    assert len(calls) == int(info.iterations) > 0


@pytest.mark.parametrize("diagonal", [True, False], ids=["diagonal", "function"])
@pytest.mark.parametrize("indefinite", [False, True], ids=["spd", "indefinite"])
def test_preconditioned_minres_qlp_minimises_the_m_norm_residual(x64, diagonal, indefinite):
    rng = np.random.default_rng(12)
    eig = rng.uniform(0.1, 20.0, 30)
    if indefinite:
        eig[::3] *= -1
    a, b = _sym(eig, 13), rng.standard_normal(30)
    m = _preconditioner(30, 14, diagonal)
    for k in (1, 4, 8):
        x, info = _run(minres_qlp, a, b, _given(m, diagonal), None, max_iters=k, diagonal=diagonal)
        x = np.asarray(x)
        np.testing.assert_allclose(x, _minres_iterate(a, b, k, m), rtol=1e-7, atol=1e-9)
        # rtol and the reported residual are in the M⁻¹-norm
        r = _m_norm(b - a @ x, m) / _m_norm(b, m)
        assert float(info.relative_residual) == pytest.approx(r, rel=1e-6)
    x, info = _run(minres_qlp, a, b, _given(m, diagonal), None, max_iters=200, diagonal=diagonal)
    assert int(info.flag) == CONVERGED
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)


def test_preconditioned_minres_qlp_from_x0(x64):
    a, b = _spd_system(seed=15)
    m = _preconditioner(len(b), 16, True)
    x0 = np.random.default_rng(17).standard_normal(len(b))
    x, info = _run(minres_qlp, a, b, np.diag(m).copy(), x0, max_iters=200, diagonal=True)
    assert int(info.flag) == CONVERGED
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    # rtol is in the M⁻¹-norm and relative to ‖b‖_{M⁻¹}, not to the residual of x0
    x, info = _run(minres_qlp, a, b, np.diag(m).copy(), x0, max_iters=200, rtol=1e-6,
                   diagonal=True)
    r = _m_norm(b - a @ np.asarray(x), m) / _m_norm(b, m)
    assert float(info.relative_residual) <= 1e-6
    assert float(info.relative_residual) == pytest.approx(r, rel=1e-6)


def test_inverse_preconditioner_forms(x64):
    v = {"a": jnp.array([2.0, 6.0]), "b": jnp.array([[3.0]])}
    diag = {"a": jnp.array([2.0, 3.0]), "b": jnp.array([[0.5]])}
    out = inverse_preconditioner(diag)(v)
    np.testing.assert_allclose(out["a"], [1.0, 2.0])
    np.testing.assert_allclose(out["b"], [[6.0]])
    assert inverse_preconditioner(None) is None
    f = lambda u: u  # noqa: E731
    assert inverse_preconditioner(f) is f


# --------------------------------------------------------------------------------------------
# Progress truncation (Martens 2010, §4.4).


def _progress_stop(a, b, rule, max_iters, x0=None):
    """The iteration at which the rule fires, replayed on numpy CG iterates (Galerkin solutions),
    φ(x) = ½xᵀAx − bᵀx; None if it never fires within max_iters."""
    x0 = np.zeros_like(b) if x0 is None else x0
    phi = [0.5 * x0 @ a @ x0 - b @ x0]
    for i in range(1, max_iters + 1):
        x = _cg_iterate(a, b, i, x0)
        phi.append(0.5 * x @ a @ x - b @ x)
        k = max(rule.min_k, int(np.floor(rule.fraction * i)))
        if i > k and phi[i] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * rule.epsilon:
            margin = abs((phi[i] - phi[i - k]) / phi[i] / (k * rule.epsilon) - 1)
            return i, x, margin
    return None, None, None


@pytest.mark.parametrize("warm", [False, True], ids=["x0=0", "x0"])
@pytest.mark.parametrize("rule", [Progress(), Progress(min_k=3, fraction=0.2, epsilon=2e-3)],
                         ids=["martens", "loose"])
def test_progress_truncation_stops_where_the_numpy_replay_does(x64, rule, warm):
    rng = np.random.default_rng(18)
    a = _sym(np.linspace(0.01, 100.0, 80), 19)
    b = rng.standard_normal(80)
    x0 = 0.5 * np.linalg.solve(a, b) + 0.1 * rng.standard_normal(80) if warm else None
    stop, x_ref, margin = _progress_stop(a, b, rule, 60, x0)
    assert stop is not None and margin > 1e-3  # the rule fires well clear of its threshold
    x, info = _run(cg, a, b, None, x0, max_iters=60, progress=rule)
    assert int(info.flag) == PROGRESS
    assert int(info.iterations) == stop
    np.testing.assert_allclose(np.asarray(x), x_ref, rtol=1e-6, atol=1e-8)


def test_progress_truncation_defers_to_rtol_and_max_iters(x64):
    a, b = _spd_system(n=20, seed=20, low=1.0, high=2.0)  # converges in a few iterations
    rule = Progress(min_k=2, fraction=0.1, epsilon=1e-14)
    _, info = _run(cg, a, b, None, None, max_iters=100, rtol=1e-4, progress=rule)
    assert int(info.flag) == CONVERGED
    _, info = _run(cg, a, b, None, None, max_iters=2, progress=rule)
    assert int(info.flag) == MAX_ITERS and int(info.iterations) == 2


def test_progress_needs_a_static_max_iters():
    with pytest.raises(TypeError, match="max_iters"):
        jax.jit(lambda n: cg(lambda v: v, jnp.ones(3), max_iters=n, progress=Progress()))(5)
