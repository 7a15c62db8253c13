"""natgrad.solvers: CG and MINRES-QLP against dense references (float64 via the `x64` fixture).

Every matrix is small and seeded; each solve goes through `jax.jit` so the tests also check that
the solvers trace (lax loops, traced damping/rtol, no host round-trips).
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg

from natgrad import solvers
from natgrad.solvers import (ACOND_LIMIT, BREAKDOWN, CONVERGED, FLAG_NAMES, LEAST_SQUARES,
                             MAX_ITERS, NEGATIVE_CURVATURE, PROGRESS, SINGULAR, XNORM_LIMIT,
                             ZERO_RHS, SolverInfo, cg, minres_qlp)

SOLVERS = [cg, minres_qlp]
IDS = ["cg", "minres_qlp"]
# MINRES-QLP with its safeguards off: plain MINRES, the truncation they are measured against.
PLAIN = dict(maxxnorm=np.inf, acondlim=np.inf, trancond=np.inf)


def _sym(eigenvalues, seed):
    """Q diag(eigenvalues) Qᵀ with a seeded random orthogonal Q (exactly symmetric)."""
    rng = np.random.default_rng(seed)
    n = len(eigenvalues)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.asarray(eigenvalues, float)) @ q.T
    return (a + a.T) / 2


_RUNNERS, _TRACES = {}, {}


def _runner(solver):
    """One jitted runner per solver: A, b, damping, rtol, max_iters and the keyword arguments in
    `kw` are all traced, so tests of the same size share one compilation."""
    if solver not in _RUNNERS:
        def run(a, b, damping, rtol, max_iters, kw):
            _TRACES[solver] = _TRACES.get(solver, 0) + 1
            return solver(lambda v: a @ v, b, damping=damping, max_iters=max_iters, rtol=rtol, **kw)

        _RUNNERS[solver] = jax.jit(run)
    return _RUNNERS[solver]


def _solve(solver, a, b, *, damping=0.0, rtol=1e-12, max_iters=200, **kw):
    """Solve with the dense matrix `a` under jit; `kw` goes to the solver (MINRES-QLP's limits)."""
    x, info = _runner(solver)(jnp.asarray(a), jnp.asarray(b), damping, rtol, max_iters, kw)
    return np.asarray(x), info


def _relres(a, b, x, damping=0.0):
    a = np.asarray(a) + damping * np.eye(len(b))
    return np.linalg.norm(b - a @ x) / np.linalg.norm(b)


def _rel_err(x, ref):
    return np.linalg.norm(x - ref) / np.linalg.norm(ref)


# --------------------------------------------------------------------------------------------
# Nonsingular systems.


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_spd_matches_solve(x64, solver):
    rng = np.random.default_rng(0)
    a = _sym(rng.uniform(0.5, 20.0, 30), seed=1)
    b = rng.standard_normal(30)
    x, info = _solve(solver, a, b, rtol=1e-12)
    assert _rel_err(x, np.linalg.solve(a, b)) < 1e-10
    assert int(info.flag) == CONVERGED
    assert 0 < int(info.iterations) < 200
    assert float(info.relative_residual) <= 1e-12
    # The reported residual is the residual of the returned x.
    assert float(info.relative_residual) == pytest.approx(_relres(a, b, x), rel=1e-3, abs=1e-14)


@pytest.mark.parametrize("trancond", [1.0, 30.0, np.inf], ids=["qlp", "transfer", "minres"])
def test_minres_qlp_iterates_match_scipy_minres_ill_conditioned(x64, trancond):
    """cond(A) = 1e8, indefinite: truncated after k steps, MINRES-QLP and scipy's MINRES return the
    same iterate (both minimise ‖b − Ax‖ over the same Krylov space), until rounding (loss of
    orthogonality in Lanczos) separates the two recurrences; whether the steps are QLP ones, MINRES
    ones, or MINRES ones transferred to QLP midway (trancond = 30)."""
    rng = np.random.default_rng(4)
    n = 60
    a = _sym(np.logspace(0, -8, n) * rng.choice([-1.0, 1.0], n), seed=5)
    b = rng.standard_normal(n)
    for k in (1, 3, 6, 10):
        x, info = _solve(minres_qlp, a, b, rtol=0.0, max_iters=k, trancond=trancond)
        x_ref, _ = scipy.sparse.linalg.minres(a, b, rtol=0.0, maxiter=k)
        assert int(info.iterations) == k and int(info.flag) == MAX_ITERS
        assert _rel_err(x, x_ref) < 1e-11, k
        assert float(info.relative_residual) == pytest.approx(_relres(a, b, x_ref), rel=1e-9)


@pytest.mark.parametrize("trancond,true_res", [(1.0, 1e-10), (None, 1e-9)], ids=["qlp", "default"])
def test_minres_qlp_matches_scipy_minres_converged(x64, trancond, true_res):
    """cond(A) = 1e5, indefinite, solved to the end: the same x as scipy's MINRES (run to its
    tightest tolerance) and as the dense solve, to the accuracy cond(A)·eps allows. By default
    (cond < trancond) the steps are MINRES ones, whose true residual stalls higher, like scipy's
    (4e-10); QLP steps throughout reach 1e-11."""
    rng = np.random.default_rng(4)
    n = 60
    a = _sym(np.logspace(0, -5, n) * rng.choice([-1.0, 1.0], n), seed=5)
    b = rng.standard_normal(n)
    kw = {} if trancond is None else dict(trancond=trancond)
    x, info = _solve(minres_qlp, a, b, rtol=1e-12, max_iters=3000, **kw)
    x_ref, scipy_info = scipy.sparse.linalg.minres(a, b, rtol=1e-16, maxiter=3000)
    x_exact = np.linalg.solve(a, b)
    assert scipy_info == 0
    assert int(info.flag) == CONVERGED
    assert _rel_err(x, x_ref) < 1e-9
    assert _rel_err(x, x_exact) < 1e-9
    assert _relres(a, b, x) < true_res  # the recursive residual is 1e-12


# --------------------------------------------------------------------------------------------
# Singular systems: MINRES-QLP's minimum-length solutions.


def _singular(n, rank, spectrum, indefinite, seed):
    """Symmetric A of the given rank (eigenvalues drawn from the list `spectrum`, or uniformly from
    the range (lo, hi)), random signs if indefinite, and b ~ N(0, I): inconsistent."""
    rng = np.random.default_rng(seed)
    eig = np.zeros(n)
    listed = isinstance(spectrum, list)
    eig[:rank] = rng.choice(spectrum, rank) if listed else rng.uniform(*spectrum, rank)
    eig[:rank] *= rng.choice([-1.0, 1.0], rank) if indefinite else 1.0
    return _sym(eig, seed + 500), rng.standard_normal(n)


# Singular inconsistent families, 8 seeds each: (id, n, rank, spectrum, indefinite, rtol, bounds on
# the max and the median relative error to pinv(A) b). Few distinct eigenvalues or a small matrix:
# Lanczos ends cleanly, x† to rounding. Many: the end is gradual, each step past it costs accuracy,
# and the safeguards decide where to stop (maxxnorm, usually). Reference code, median (max) on the
# last five: 8e-6 (2e-5), 2e-6 (1e-5), 8e-7 (3e-6), 1e-6 (4e-6), 5e-6 (2e-5).
INCONSISTENT_FAMILIES = [
    ("30r22-5-values-psd", 30, 22, [1.0, 2.0, 3.0, 4.0, 5.0], False, 1e-10, 1e-8, 1e-8),
    ("30r22-5-values-indef", 30, 22, [1.0, 2.0, 3.0, 4.0, 5.0], True, 1e-10, 1e-8, 1e-8),
    ("12r8-spread-psd", 12, 8, (1.0, 10.0), False, 1e-10, 1e-8, 1e-8),
    ("12r8-spread-indef", 12, 8, (1.0, 10.0), True, 1e-10, 1e-8, 1e-8),
    ("40r32-0.5-5-psd", 40, 32, (0.5, 5.0), False, 1e-12, 1e-4, 1e-5),
    ("60r50-0.1-10-psd", 60, 50, (0.1, 10.0), False, 1e-12, 3e-5, 1e-5),
    ("40r32-0.5-5-indef", 40, 32, (0.5, 5.0), True, 1e-12, 1e-5, 1e-5),
    ("60r50-0.1-10-indef", 60, 50, (0.1, 10.0), True, 1e-12, 1e-5, 1e-5),
    ("80r60-1-100-psd", 80, 60, (1.0, 100.0), False, 1e-12, 2e-4, 3e-5),
]


@pytest.mark.parametrize("case", INCONSISTENT_FAMILIES,
                         ids=[c[0] for c in INCONSISTENT_FAMILIES])
def test_minres_qlp_singular_inconsistent_families_reach_pinv(x64, case):
    _, n, rank, spectrum, indefinite, rtol, worst, median = case
    errors = []
    for seed in range(8):
        a, b = _singular(n, rank, spectrum, indefinite, seed)
        x_dagger = np.linalg.pinv(a) @ b
        x, info = _solve(minres_qlp, a, b, rtol=rtol, max_iters=400)
        assert int(info.flag) in (LEAST_SQUARES, XNORM_LIMIT, ACOND_LIMIT, SINGULAR), seed
        errors.append(_rel_err(x, x_dagger))
        # Never worse than plain MINRES (safeguards off) after the same number of iterations.
        x_plain, _ = _solve(minres_qlp, a, b, rtol=rtol, max_iters=int(info.iterations), **PLAIN)
        assert errors[-1] <= _rel_err(x_plain, x_dagger) * (1 + 1e-9) + 1e-14, seed
        # The reported residual is the returned x's, the least-squares one (nonzero).
        ls_res = _relres(a, b, x_dagger)
        assert ls_res > 0.1
        assert float(info.relative_residual) == pytest.approx(_relres(a, b, x), rel=1e-8)
        assert float(info.relative_residual) == pytest.approx(ls_res, rel=1e-6)
    assert max(errors) <= worst and np.median(errors) <= median, np.array(errors)


@pytest.mark.parametrize("rtol", [1e-4, 1e-6, 1e-8])
@pytest.mark.parametrize("indefinite", [False, True], ids=["psd", "indef"])
def test_minres_qlp_loose_rtol_least_squares_exit_is_pinv(x64, rtol, indefinite):
    """On a loose rtol the least-squares test stops first; the last component is dropped when its
    pivot is below rtol·‖A‖, so x is pinv(A) b to about rtol (the reference keeps the component,
    and its x is then O(‖x†‖) or more away)."""
    for seed in range(4):
        a, b = _singular(40, 32, (0.5, 5.0), indefinite, seed)
        x, info = _solve(minres_qlp, a, b, rtol=rtol, max_iters=400)
        assert int(info.flag) in (LEAST_SQUARES, XNORM_LIMIT)
        assert _rel_err(x, np.linalg.pinv(a) @ b) <= 1e3 * rtol, seed


def test_minres_qlp_inconsistent_diagonal(x64):
    """A = diag(1..5, 0, 0, 0), b = 1: x† = (1, 1/2, …, 1/5, 0, 0, 0), ‖r‖/‖b‖ = √(3/8); Lanczos
    ends exactly, with the limits off and rtol = 0 on a singular T_k (SINGULAR). A b = 0: x† = 0."""
    a = np.diag(np.r_[np.arange(1.0, 6.0), np.zeros(3)])
    for kw, flag in ((dict(rtol=1e-10), LEAST_SQUARES), (dict(rtol=0.0, **PLAIN), SINGULAR)):
        x, info = _solve(minres_qlp, a, np.ones(8), **kw)
        np.testing.assert_allclose(x, np.r_[1.0 / np.arange(1.0, 6.0), np.zeros(3)], atol=1e-12)
        assert int(info.flag) == flag
        assert float(info.relative_residual) == pytest.approx(np.sqrt(3 / 8), rel=1e-10)
    x, info = _solve(minres_qlp, a, np.r_[np.zeros(5), 1.0, 2.0, 3.0], rtol=1e-10)
    np.testing.assert_array_equal(x, np.zeros(8))
    assert int(info.flag) == LEAST_SQUARES
    assert float(info.relative_residual) == pytest.approx(1.0)


def test_minres_qlp_safeguard_flags(x64):
    """Each limit stops the solve with its own flag, x finite, and the reported residual that of
    the returned x; the limits are traced (one compilation). A = diag(1, …, 1e-4), b = 1:
    ‖x†‖ ≈ 1.7e4, cond 1e4."""
    a = np.diag(np.logspace(0, -4, 20))
    b = np.ones(20)
    traces = _TRACES.get(minres_qlp, 0)
    for (maxxnorm, acondlim, trancond), flag in (((100.0, 1e15, 1e7), XNORM_LIMIT),
                                                 ((1e7, 1e2, 1e7), ACOND_LIMIT),
                                                 ((100.0, 1e15, 1.0), XNORM_LIMIT),
                                                 ((1e7, 1e15, 1.0), CONVERGED)):
        x, info = _solve(minres_qlp, a, b, rtol=1e-10, max_iters=100, maxxnorm=maxxnorm,
                         acondlim=acondlim, trancond=trancond)
        assert int(info.flag) == flag
        assert 0 < int(info.iterations) < 100 and np.all(np.isfinite(x))
        assert np.linalg.norm(x) <= maxxnorm
        assert float(info.relative_residual) == pytest.approx(_relres(a, b, x), rel=1e-6, abs=1e-12)
    assert _TRACES[minres_qlp] == traces + 1


@pytest.mark.parametrize("definite", [True, False], ids=["psd", "indefinite"])
@pytest.mark.parametrize("singular", [False, True], ids=["nonsingular", "singular"])
def test_minres_qlp_reported_residual_is_true_residual(x64, definite, singular):
    """Consistent systems, truncated or converged, any phase: the recurrence's relative residual
    agrees with ‖b − (A + λI)x‖/‖b‖ computed from the returned x; converged on a singular system,
    x is the minimum-length solution pinv(A) b."""
    rng = np.random.default_rng(30)
    eig = rng.uniform(0.5, 50.0, 40) * (1.0 if definite else rng.choice([-1.0, 1.0], 40))
    eig[:10] = 0.0 if singular else eig[:10]
    a = _sym(eig, seed=31)
    b = a @ rng.standard_normal(40) if singular else rng.standard_normal(40)
    for damping in (0.0, 0.1):
        for k in (3, 10, 25, 200):
            for kw in ({}, dict(trancond=1.0), dict(trancond=10.0)):
                x, info = _solve(minres_qlp, a, b, damping=damping, max_iters=k, **kw)
                true = _relres(a, b, x, damping)
                assert float(info.relative_residual) == pytest.approx(true, rel=1e-6, abs=1e-13)
        assert int(info.flag) == CONVERGED and true < 1e-11
        x_ref = np.linalg.pinv(a + damping * np.eye(40)) @ b
        assert _rel_err(x, x_ref) < (1e-9 if singular else 1e-10)


def test_cg_min_length_on_psd_singular_consistent(x64):
    """CG from x = 0 stays in range(A) on a consistent PSD system: it too returns pinv(A) b."""
    rng = np.random.default_rng(8)
    eig = np.zeros(30)
    eig[:18] = rng.uniform(1.0, 10.0, 18)
    a = _sym(eig, seed=9)
    b = a @ rng.standard_normal(30)
    x, info = _solve(cg, a, b, rtol=1e-12)
    assert int(info.flag) == CONVERGED
    assert _rel_err(x, np.linalg.pinv(a) @ b) < 1e-9


# --------------------------------------------------------------------------------------------
# Truncation, damping, pytrees, b = 0, flags.


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_truncation_honoured(x64, solver):
    rng = np.random.default_rng(10)
    a = _sym(rng.uniform(0.1, 100.0, 30), seed=11)
    b = rng.standard_normal(30)
    x, info = _solve(solver, a, b, rtol=1e-12, max_iters=5)
    assert int(info.iterations) == 5
    assert int(info.flag) == MAX_ITERS
    relres = float(info.relative_residual)
    assert relres > 1e-12
    assert relres == pytest.approx(_relres(a, b, x), rel=1e-6)
    # more iterations, smaller residual (both minimise a norm of the residual over a growing space)
    _, info10 = _solve(solver, a, b, rtol=1e-12, max_iters=10)
    assert float(info10.relative_residual) < relres


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_loose_rtol_stops_early(x64, solver):
    rng = np.random.default_rng(12)
    a = _sym(rng.uniform(1.0, 100.0, 30), seed=13)
    b = rng.standard_normal(30)
    x, info = _solve(solver, a, b, rtol=1e-2)
    assert int(info.flag) == CONVERGED
    assert float(info.relative_residual) <= 1e-2
    assert _relres(a, b, x) <= 1.01e-2
    _, tight = _solve(solver, a, b, rtol=1e-10)
    assert int(info.iterations) < int(tight.iterations)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_damping_applied(x64, solver):
    rng = np.random.default_rng(14)
    eig = rng.uniform(0.0, 5.0, 30)
    eig[:10] = 0.0  # singular A: only the damping makes the system solvable by CG
    a = _sym(eig, seed=15)
    b = rng.standard_normal(30)
    for lam in (0.3, 2.5):
        x, info = _solve(solver, a, b, damping=lam, rtol=1e-12)
        assert int(info.flag) == CONVERGED
        x_ref = np.linalg.solve(a + lam * np.eye(30), b)
        np.testing.assert_allclose(x, x_ref, rtol=1e-9, atol=1e-11)
        assert _relres(a, b, x, damping=lam) < 1e-11


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_damping_traced_no_retrace(x64, solver):
    """Damping changes every Levenberg-Marquardt step: one compilation serves every value."""
    rng = np.random.default_rng(16)
    a = jnp.asarray(_sym(rng.uniform(1.0, 5.0, 10), seed=17))
    b = jnp.asarray(rng.standard_normal(10))
    traces = []

    @jax.jit
    def run(lam):
        traces.append(None)
        return solver(lambda v: a @ v, b, damping=lam, max_iters=50, rtol=1e-12)

    for lam in (0.1, 0.2, 0.4):
        x, _ = run(jnp.asarray(lam))
        np.testing.assert_allclose(x, np.linalg.solve(a + lam * np.eye(10), b), rtol=1e-9)
    assert len(traces) == 1


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_pytree_rhs(x64, solver):
    """b a dict of arrays of different shapes; A acts on the concatenated vector."""
    rng = np.random.default_rng(18)
    shapes = {"dense": {"kernel": (3, 4), "bias": (4,)}, "out": (5,)}
    b = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s)), shapes,
                               is_leaf=lambda s: isinstance(s, tuple))
    flat_b, unravel = jax.flatten_util.ravel_pytree(b)
    n = flat_b.size
    a = jnp.asarray(_sym(rng.uniform(1.0, 10.0, n), seed=19))

    def matvec(v):
        return unravel(a @ jax.flatten_util.ravel_pytree(v)[0])

    x, info = jax.jit(lambda b: solver(matvec, b, damping=0.5, max_iters=100, rtol=1e-12))(b)
    assert jax.tree_util.tree_structure(x) == jax.tree_util.tree_structure(b)
    assert all(xi.shape == bi.shape and xi.dtype == bi.dtype
               for xi, bi in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(b)))
    x_ref = np.linalg.solve(np.asarray(a) + 0.5 * np.eye(n), np.asarray(flat_b))
    np.testing.assert_allclose(jax.flatten_util.ravel_pytree(x)[0], x_ref, rtol=1e-9, atol=1e-12)
    assert int(info.flag) == CONVERGED


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_zero_rhs(x64, solver):
    a = jnp.asarray(_sym(np.arange(1.0, 6.0), seed=20))
    b = {"w": jnp.zeros((5,)), "b": jnp.zeros((2, 3))}

    def matvec(v):
        return {"w": a @ v["w"], "b": 2.0 * v["b"]}

    x, info = jax.jit(lambda b: solver(matvec, b, damping=1.0))(b)
    assert all(bool(jnp.all(leaf == 0)) for leaf in jax.tree_util.tree_leaves(x))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(x))
    assert int(info.flag) == ZERO_RHS
    assert int(info.iterations) == 0
    assert float(info.relative_residual) == 0.0


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_float32_keeps_dtype(solver):
    rng = np.random.default_rng(21)
    a = jnp.asarray(_sym(rng.uniform(1.0, 10.0, 20), seed=22), jnp.float32)
    b = jnp.asarray(rng.standard_normal(20), jnp.float32)
    x, info = jax.jit(lambda b: solver(lambda v: a @ v, b, damping=0.1, max_iters=100,
                                       rtol=1e-5))(b)
    assert x.dtype == jnp.float32
    assert info.relative_residual.dtype == jnp.float32
    assert int(info.flag) == CONVERGED
    x_ref = np.linalg.solve(np.asarray(a, np.float64) + 0.1 * np.eye(20), np.asarray(b, np.float64))
    assert _rel_err(np.asarray(x, np.float64), x_ref) < 1e-4


def test_cg_negative_curvature_flag(x64):
    a = np.diag([1.0, -2.0, 3.0])
    b = np.array([0.0, 1.0, 0.0])  # pᵀAp < 0 on the very first direction
    x, info = _solve(cg, a, b)
    assert int(info.flag) == NEGATIVE_CURVATURE
    np.testing.assert_array_equal(x, np.zeros(3))
    assert int(info.iterations) == 1


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_non_finite_operator_breakdown(x64, solver):
    b = jnp.ones(4)
    x, info = jax.jit(lambda b: solver(lambda v: v * jnp.nan, b))(b)
    assert int(info.flag) == BREAKDOWN
    assert bool(jnp.all(jnp.isfinite(x)))


def test_solver_info_and_flags_are_documented():
    assert SolverInfo._fields == ("iterations", "relative_residual", "flag", "model")
    flags = [CONVERGED, MAX_ITERS, LEAST_SQUARES, NEGATIVE_CURVATURE, BREAKDOWN, ZERO_RHS,
             XNORM_LIMIT, ACOND_LIMIT, SINGULAR, PROGRESS]
    assert flags == list(range(10)) == sorted(FLAG_NAMES)  # stable numbers: the study records them
    assert all(FLAG_NAMES[f].upper() in solvers.__doc__ for f in flags)
    assert set(solvers.__all__) >= {"cg", "minres_qlp", "SolverInfo", "CONVERGED", "MAX_ITERS"}


# --------------------------------------------------------------------------------------------
# Impossible arguments, and a traced rtol that cannot be refused.


REFUSED = [
    ("max_iters", dict(max_iters=0)),
    ("max_iters", dict(max_iters=-3)),
    ("max_iters", dict(max_iters=2.5)),
    ("rtol", dict(rtol=-1.0)),
    ("rtol", dict(rtol=float("nan"))),
    ("rtol", dict(rtol=jnp.inf)),
    ("damping", dict(damping=-0.5)),
    ("damping", dict(damping=float("nan"))),
    ("damping", dict(damping=-jnp.inf)),
    ("damping", dict(damping=np.float32(-1.0))),
]


@pytest.mark.parametrize("name,kw", REFUSED, ids=[f"{n}={v}" for n, kw in REFUSED
                                                  for v in kw.values()])
@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_impossible_arguments_are_refused(solver, name, kw):
    b = jnp.ones(3)
    with pytest.raises(ValueError, match=name) as error:
        solver(lambda v: v, b, **kw)
    assert "\n" not in str(error.value) and "got" in str(error.value)
    # a concrete value is refused at trace time under jit too
    with pytest.raises(ValueError, match=name):
        jax.jit(lambda b: solver(lambda v: v, b, **kw))(b)


@pytest.mark.parametrize("rtol", [-1.0, -1e-3, np.nan, np.inf])
@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_traced_invalid_rtol_runs_the_rtol_zero_solve(x64, solver, rtol):
    """A traced rtol cannot be refused: a negative or non-finite one acts as 0, so the solve runs
    (before, CG reported CONVERGED after 0 iterations for rtol = −1: tol² = rtol²‖b‖²)."""
    rng = np.random.default_rng(30)
    a = _sym(rng.uniform(0.1, 100.0, 30), seed=31)
    b = rng.standard_normal(30)
    x, info = _solve(solver, a, b, rtol=rtol, max_iters=10)
    x_ref, ref = _solve(solver, a, b, rtol=0.0, max_iters=10)
    assert int(info.flag) == int(ref.flag) == MAX_ITERS
    assert int(info.iterations) == int(ref.iterations) == 10
    np.testing.assert_array_equal(x, x_ref)
    assert float(info.relative_residual) == float(ref.relative_residual) > 0


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_traced_negative_rtol_converges_only_on_a_zero_residual(x64, solver):
    """On a system solved exactly in one iteration the rtol = 0 test holds (‖r‖ = 0): CONVERGED
    is then reported, for the residual test that really passed."""
    x, info = _solve(solver, 2.0 * np.eye(4), np.ones(4), rtol=-1.0, max_iters=10)
    np.testing.assert_array_equal(x, np.full(4, 0.5))
    assert int(info.flag) == CONVERGED and int(info.iterations) == 1
    assert float(info.relative_residual) == 0.0


# --------------------------------------------------------------------------------------------
# CG's loop at the hardware's cost.


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's copy insertion")
@pytest.mark.parametrize("options", ["plain", "x0", "preconditioner"])
def test_cg_loop_copies_no_vector(options):
    """XLA:CPU updates every loop-carried vector in place: inside a computation that makes b (a
    natural-gradient step) the compiled solve copies no parameter-sized array; with b the
    caller's buffer, only r's first value is a copy of it."""
    b = {"w": jnp.ones((300, 200), jnp.float32), "b": jnp.ones((200,), jnp.float32)}
    d = jax.tree_util.tree_map(lambda leaf: leaf + 1.0, b)
    kw = {"x0": dict(x0=d), "preconditioner": dict(preconditioner=d), "plain": {}}[options]

    def solve(b):
        return cg(lambda v: jax.tree_util.tree_map(jnp.multiply, d, v), b, damping=1e-3,
                  max_iters=20, rtol=0.0, **kw)

    def copies(fn):
        hlo = jax.jit(fn).lower(b).compile().as_text()
        return len(re.findall(r"f32\[300,200\]\{[0-9,]*\} copy\(", hlo))

    assert copies(lambda g: solve(jax.tree_util.tree_map(lambda leaf: 0.5 * leaf, g))) == 0
    assert copies(solve) <= 1
