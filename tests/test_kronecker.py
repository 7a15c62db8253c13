"""natgrad.preconditioners.kronecker: the K-FAC preconditioner against references written here,
in float64 (the `x64` fixture): factors from hand-written forward and backward passes (numpy), the
dense Kronecker-factored inverse from `np.kron`, the damped Fisher materialised from
`natgrad.ggn_operator` and solved with `np.linalg.solve`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import families, solvers
from natgrad.preconditioners.kronecker import KroneckerFactors, KroneckerState
from natgrad.models import MLP, ConvNet

FAMILY = families.Categorical()
N, D, H, K = 12, 5, 4, 3
LAM = 0.05


def _mlp(seed=0, n=N, d=D, h=H, k=K, scales=None):
    """MLP d-h-k (tanh), float64 params (a flax variables dict) and an (n, d) batch."""
    model = MLP(hidden=(h,), outputs=k, activation="tanh")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * (1.0 if scales is None else scales)
    params = model.init(jax.random.PRNGKey(seed), jnp.asarray(x))
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.7, jnp.float64), params)
    return model.apply, params, jnp.asarray(x, jnp.float64)


def _weights(params):
    p = params["params"]
    return [(np.asarray(p[f"Dense_{i}"]["kernel"]), np.asarray(p[f"Dense_{i}"]["bias"]))
            for i in range(2)]


def _softmax(r):
    e = np.exp(r - r.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _hand_factors(params, x, targets=None):
    """[(A, G)] per layer by hand: A = mean ããᵀ; G exact, mean_i J_iᵀ F_i J_i with F_i the softmax
    Fisher, or, given sampled targets t (samples × n), mean_i mean_j g_ij g_ijᵀ from the
    hand-written backward pass of nll(r_i, t_ij)."""
    (w1, b1), (w2, b2) = _weights(params)
    x = np.asarray(x)
    h = np.tanh(x @ w1 + b1)
    y = _softmax(h @ w2 + b2)
    n = x.shape[0]
    ones = np.ones((n, 1))
    a1, a2 = np.hstack([x, ones]), np.hstack([h, ones])
    factors_a = [a1.T @ a1 / n, a2.T @ a2 / n]
    if targets is None:
        fisher = np.stack([np.diag(yi) - np.outer(yi, yi) for yi in y])  # (n, K, K)
        j1 = w2.T[None] * (1 - h**2)[:, None, :]  # ∂r/∂s1 = W2ᵀ diag(1 − h²)
        g2 = fisher.mean(0)
        g1 = np.einsum("nki,nkl,nlj->ij", j1, fisher, j1) / n
        return [(factors_a[0], g1), (factors_a[1], g2)]
    samples = targets.shape[0]
    d2 = y[None] - np.eye(y.shape[1])[targets]  # ∂nll/∂r, (samples, n, K)
    d1 = (d2 @ w2.T) * (1 - h**2)[None]
    gs = [np.einsum("mni,mnj->ij", d, d) / (n * samples) for d in (d1, d2)]
    return [(factors_a[0], gs[0]), (factors_a[1], gs[1])]


def _damped_inverse_by_hand(a, g, lam):
    pi = np.sqrt((np.trace(a) / len(a)) / (np.trace(g) / len(g)))
    return (np.linalg.inv(a + pi * np.sqrt(lam) * np.eye(len(a))),
            np.linalg.inv(g + np.sqrt(lam) / pi * np.eye(len(g))))


def _blocks(tree):
    """The layers' stacked [kernel; bias] blocks, each vectorised row by row, concatenated."""
    p = tree["params"]
    return np.concatenate([np.vstack([np.asarray(p[f"Dense_{i}"]["kernel"]),
                                      np.asarray(p[f"Dense_{i}"]["bias"])[None]]).ravel()
                           for i in range(2)])


def _random_like(tree, seed):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), tree)


def _refreshed(kf, apply_fn, params, x, lam=LAM, family=FAMILY):
    state = kf.init(params)
    return jax.jit(lambda s, p, xx, l: kf.refresh(s, apply_fn, p, xx, None, family, l))(
        state, params, x, lam)


# ---------------------------------------------------------------------------------------------
# factors and the applied inverse


def test_exact_factors_match_hand_computation(x64):
    apply_fn, params, x = _mlp()
    state = _refreshed(KroneckerFactors(estimator="exact", decay=0.0), apply_fn, params, x)
    for i, (a, g) in enumerate(_hand_factors(params, x)):
        got_a, got_g = state.factors[f"params/Dense_{i}"]
        np.testing.assert_allclose(got_a, a, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got_g, g, rtol=1e-10, atol=1e-14)


def test_sampled_factors_match_hand_backward_pass(x64):
    """The documented key scheme: the state's key splits into (next, k); sample j draws
    t_j ~ softmax(r) with fold_in(k, j)."""
    apply_fn, params, x = _mlp(seed=1)
    kf = KroneckerFactors(samples=3, decay=0.0, seed=7)
    state = _refreshed(kf, apply_fn, params, x)
    _, k = jax.random.split(jax.random.PRNGKey(7))
    r = apply_fn(params, x)
    targets = np.stack([np.asarray(jax.random.categorical(jax.random.fold_in(k, j), r))
                        for j in range(3)])
    for i, (a, g) in enumerate(_hand_factors(params, x, targets)):
        got_a, got_g = state.factors[f"params/Dense_{i}"]
        np.testing.assert_allclose(got_a, a, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got_g, g, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("estimator", ["exact", "sampled"])
def test_inverse_equals_dense_kronecker_inverse(x64, estimator):
    """M⁻¹ v = blockdiag(kron((A + π√λ)⁻¹, (G + √λ/π)⁻¹)) vec_row([W; b]) per layer."""
    apply_fn, params, x = _mlp(seed=2)
    kf = KroneckerFactors(estimator=estimator, decay=0.0)
    state = _refreshed(kf, apply_fn, params, x)
    # the dense inverse from the state's factors (checked against hand factors above) ...
    blocks = [np.kron(*_damped_inverse_by_hand(*map(np.asarray, state.factors[f"params/Dense_{i}"]),
                                               LAM)) for i in range(2)]
    dense = np.block([[blocks[0], np.zeros((len(blocks[0]), len(blocks[1])))],
                      [np.zeros((len(blocks[1]), len(blocks[0]))), blocks[1]]])
    v = _random_like(params, 3)
    np.testing.assert_allclose(_blocks(kf.inverse(state)(v)), dense @ _blocks(v), rtol=1e-10)
    if estimator == "exact":  # ... and from the hand factors
        hand = [np.kron(*_damped_inverse_by_hand(a, g, LAM)) for a, g in _hand_factors(params, x)]
        w = _blocks(v)
        cut = len(hand[0])
        np.testing.assert_allclose(_blocks(kf.inverse(state)(v)),
                                   np.concatenate([hand[0] @ w[:cut], hand[1] @ w[cut:]]),
                                   rtol=1e-10)


class _Tempered(nn.Module):
    """An MLP whose outputs are multiplied by a learned temperature: a parameter in no layer."""

    @nn.compact
    def __call__(self, x):
        t = self.param("temperature", nn.initializers.ones, ())
        return MLP(hidden=(H,), outputs=K)(x) * t


def test_parameters_outside_layers_get_mean_curvature_plus_damping(x64):
    model = _Tempered()
    x = jnp.asarray(np.random.default_rng(4).standard_normal((N, D)))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64),
                                    model.init(jax.random.PRNGKey(0), x))
    kf = KroneckerFactors(estimator="exact", decay=0.0)
    state = _refreshed(kf, model.apply, params, x)
    means = [np.trace(a) / len(a) * np.trace(g) / len(g) for a, g in state.factors.values()]
    c = np.mean(means) + LAM
    v = _random_like(params, 5)
    out = kf.inverse(state)(v)
    np.testing.assert_allclose(out["params"]["temperature"], v["params"]["temperature"] / c,
                               rtol=1e-12)


def test_zero_damping_gives_finite_spd_inverse(x64):
    """λ = 0 with fewer examples than inputs (A singular): the floor keeps M⁻¹ finite and SPD."""
    apply_fn, params, x = _mlp(seed=6, n=3, d=8)
    state = _refreshed(KroneckerFactors(estimator="exact", decay=0.0), apply_fn, params, x, 0.0)
    for a_inv, g_inv in state.inverses.values():
        for m in (np.asarray(a_inv), np.asarray(g_inv)):
            assert np.all(np.isfinite(m))
            np.testing.assert_allclose(m, m.T)
            assert np.linalg.eigvalsh(m).min() > 0


def test_conv_factors_match_hand_patches_and_backward(x64):
    """A conv layer (3×3 VALID, 1 → 2 channels, 6×6 images): A = (1/n) Σ_i Σ_t ã ãᵀ over the
    patches cut out by hand, G = (1/(nT)) Σ_i Σ_t J_itᵀ F_i J_it with J_it = ∂r_i/∂s_it."""
    model = ConvNet(features=(2,), kernels=(3,), pool=(1,), hidden=(4,), outputs=K)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 6, 6))
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.5, jnp.float64),
        model.init(jax.random.PRNGKey(0), jnp.asarray(x)))
    state = _refreshed(KroneckerFactors(estimator="exact", decay=0.0), model.apply, params,
                       jnp.asarray(x))
    kernel = np.asarray(params["params"]["Conv_0"]["kernel"])  # (3, 3, 1, 2)
    patches = np.array([[np.append(x[i, r:r + 3, c:c + 3].ravel(), 1.0)
                         for r in range(4) for c in range(4)] for i in range(4)])  # (n, T, 10)
    a = np.einsum("nti,ntj->ij", patches, patches) / 4
    p = params["params"]

    def head(s):  # the network after the conv's pre-activations s (4, 4, 2) of one example
        h = jnp.tanh(s).reshape(-1)
        h = jnp.tanh(h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]

    s = patches @ np.vstack([kernel.reshape(9, 2), np.asarray(p["Conv_0"]["bias"])[None]])
    s = s.reshape(4, 4, 4, 2)
    jac = np.asarray(jax.jit(jax.vmap(jax.jacfwd(head)))(jnp.asarray(s))).reshape(4, K, 16, 2)
    y = _softmax(np.asarray(jax.vmap(head)(jnp.asarray(s))))
    fisher = np.stack([np.diag(yi) - np.outer(yi, yi) for yi in y])
    g = np.einsum("nkti,nkl,nltj->ij", jac, fisher, jac) / (4 * 16)
    got_a, got_g = state.factors["params/Conv_0"]
    np.testing.assert_allclose(got_a, a, rtol=1e-12)
    np.testing.assert_allclose(got_g, g, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# preconditioned solves on the materialised Fisher


def _dense_fisher(apply_fn, params, x):
    flat, unravel = ravel_pytree(params)
    matvec = natgrad.ggn_operator(apply_fn, params, x, FAMILY)
    fisher = jax.jit(jax.jacfwd(lambda f: ravel_pytree(matvec(unravel(f)))[0]))(
        jnp.zeros_like(flat))
    return matvec, np.asarray(fisher), unravel


@pytest.mark.parametrize("solver", [solvers.cg, solvers.minres_qlp], ids=["cg", "minres_qlp"])
def test_preconditioned_solvers_reach_dense_solution(x64, solver):
    apply_fn, params, x = _mlp(seed=9)
    matvec, fisher, unravel = _dense_fisher(apply_fn, params, x)
    b = np.random.default_rng(10).standard_normal(len(fisher))
    kf = KroneckerFactors(decay=0.0)
    state = _refreshed(kf, apply_fn, params, x)
    sol, info = jax.jit(lambda bb: solver(matvec, unravel(bb), damping=LAM, max_iters=300,
                                          rtol=1e-11, preconditioner=kf.inverse(state)))(b)
    assert int(info.flag) == solvers.CONVERGED
    want = np.linalg.solve(fisher + LAM * np.eye(len(b)), b)
    np.testing.assert_allclose(ravel_pytree(sol)[0], want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("solver", [solvers.cg, solvers.minres_qlp], ids=["cg", "minres_qlp"])
def test_preconditioning_takes_fewer_iterations_when_ill_conditioned(x64, solver):
    """Unnormalised inputs, on scales 10⁻² … 10², with first-layer weights scaled inversely (the
    pre-activations stay O(1)): the damped Fisher's condition number is 5.5·10⁷ at λ = 10⁻⁴, the
    preconditioned one 1.4·10⁴ (K-FAC's A absorbs the input scales). Both solves must converge
    to rtol 1e-6, the preconditioned one in strictly fewer iterations (measured: CG 541 → 206,
    MINRES-QLP 670 → 179)."""
    lam, scales = 1e-4, np.logspace(-2, 2, 8)
    apply_fn, params, x = _mlp(seed=11, n=40, d=8, h=6, k=4, scales=scales)
    dense0 = params["params"]["Dense_0"]
    dense0["kernel"] = dense0["kernel"] / jnp.asarray(scales)[:, None]
    matvec, fisher, unravel = _dense_fisher(apply_fn, params, x)
    b = unravel(jnp.asarray(np.random.default_rng(12).standard_normal(len(fisher))))
    state = _refreshed(KroneckerFactors(estimator="exact", decay=0.0), apply_fn, params, x, lam)
    run = jax.jit(lambda pre: solver(matvec, b, damping=lam, max_iters=2000, rtol=1e-6,
                                     preconditioner=pre))
    _, plain = run(None)
    _, pre = jax.jit(lambda s: solver(matvec, b, damping=lam, max_iters=2000, rtol=1e-6,
                                      preconditioner=KroneckerFactors().inverse(s)))(state)
    assert int(plain.flag) == int(pre.flag) == solvers.CONVERGED
    assert int(pre.iterations) < int(plain.iterations), (int(pre.iterations),
                                                         int(plain.iterations))


# ---------------------------------------------------------------------------------------------
# refresh schedule, averaging, jit and scan, settings


def test_every_k_changes_inverses_only_on_refresh_calls(x64):
    apply_fn, params, x = _mlp(seed=13)
    kf = KroneckerFactors(every=3)
    refresh = jax.jit(lambda s, p, xx, lam: kf.refresh(s, apply_fn, p, xx, None, FAMILY, lam))
    state = kf.init(params)
    rng = np.random.default_rng(14)
    for call in range(7):
        p = jax.tree_util.tree_map(lambda a: a + 0.1 * rng.standard_normal(a.shape), params)
        xx = x + 0.1 * rng.standard_normal(x.shape)
        new = refresh(state, p, xx, LAM * (call + 1))  # λ differs at every call
        pairs = zip(jax.tree_util.tree_leaves(new.inverses),
                    jax.tree_util.tree_leaves(state.inverses))
        changed = [not np.array_equal(a, b) for a, b in pairs]
        assert all(changed) if call % 3 == 0 else not any(changed), call
        assert int(new.count) == call + 1
        assert not np.array_equal(new.key, state.key)
        state = new


def test_decay_averages_factors_over_refreshes(x64):
    apply_fn, params, x = _mlp(seed=15)
    kf = KroneckerFactors(estimator="exact", decay=0.6)
    batches = [x, 2 * x, x[::-1] ** 2]
    key = jax.random.PRNGKey(0)
    single = [kf.batch_factors(apply_fn, params, b, FAMILY, key) for b in batches]
    state = kf.init(params)
    for b in batches:
        state = kf.refresh(state, apply_fn, params, b, None, FAMILY, LAM)
    # weights min(0.6, 1 − 1/k): 0, 0.5, 0.6
    for name in state.factors:
        for f in range(2):
            want = 0.5 * single[0][name][f] + 0.5 * single[1][name][f]
            want = 0.6 * want + 0.4 * single[2][name][f]
            np.testing.assert_allclose(state.factors[name][f], want, rtol=1e-12)


def test_cadences_and_per_step_decay_match_numpy_reference(x64):
    """Statistics every 2 calls with decay 0.8 per step (0.64 per accumulation, capped at 1 − 1/k),
    inverses every 3 calls: the factors equal the numpy EMA of hand-computed per-layer A and G,
    and the inverses, recomputed at calls 0 and 3 only, the hand-damped inverses of the factors
    as they stand then, with that call's λ."""
    apply_fn, params, x = _mlp(seed=18)
    kf = KroneckerFactors(estimator="exact", decay=0.8, statistics_every=2, every=3)
    refresh = jax.jit(lambda s, p, xx, lam: kf.refresh(s, apply_fn, p, xx, None, FAMILY, lam))
    rng = np.random.default_rng(19)
    state, ema, k = kf.init(params), None, 0
    for call in range(6):
        p = jax.tree_util.tree_map(lambda a: a + 0.2 * rng.standard_normal(a.shape), params)
        xx = x + 0.3 * rng.standard_normal(x.shape)
        new = refresh(state, p, xx, LAM * (call + 1))
        if call % 2 == 0:
            k += 1
            w = min(0.8 ** 2, 1 - 1 / k)
            hand = _hand_factors(p, xx)
            ema = hand if ema is None else [(w * a0 + (1 - w) * a, w * g0 + (1 - w) * g)
                                            for (a0, g0), (a, g) in zip(ema, hand)]
        for i, (a, g) in enumerate(ema):
            got_a, got_g = new.factors[f"params/Dense_{i}"]
            np.testing.assert_allclose(got_a, a, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(got_g, g, rtol=1e-10, atol=1e-12)
            if call % 3 == 0:
                want = _damped_inverse_by_hand(a, g, LAM * (call + 1))
                for got, ref in zip(new.inverses[f"params/Dense_{i}"], want):
                    np.testing.assert_allclose(got, ref, rtol=1e-8)
            else:
                for got, old in zip(new.inverses[f"params/Dense_{i}"],
                                    state.inverses[f"params/Dense_{i}"]):
                    np.testing.assert_array_equal(got, old)
        state = new


def test_jit_and_scan_training_loop_matches_python_loop(x64):
    """The state carried through `lax.scan`: refresh every 2 steps, one preconditioned CG solve and
    an update per step, equal to the same steps in a Python loop."""
    apply_fn, params, x = _mlp(seed=16)
    y = jnp.asarray(np.random.default_rng(17).integers(0, K, N))
    kf = KroneckerFactors(every=2)
    loss = natgrad.mean_nll(apply_fn, x, y, FAMILY)

    def step(carry, _):
        p, s = carry
        s = kf.refresh(s, apply_fn, p, x, y, FAMILY, LAM)
        d, _ = solvers.cg(natgrad.ggn_operator(apply_fn, p, x, FAMILY), jax.grad(loss)(p),
                          damping=LAM, max_iters=3, rtol=0.0, preconditioner=kf.inverse(s))
        return (jax.tree_util.tree_map(lambda a, b: a - 0.5 * b, p, d), s), loss(p)

    (p_scan, s_scan), losses = jax.jit(lambda c: jax.lax.scan(step, c, None, length=5))(
        (params, kf.init(params)))
    carry, one = (params, kf.init(params)), jax.jit(step)
    for _ in range(5):
        carry, _ = one(carry, None)
    for a, b in zip(jax.tree_util.tree_leaves((p_scan, s_scan)), jax.tree_util.tree_leaves(carry)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert isinstance(s_scan, KroneckerState) and int(s_scan.count) == 5
    assert float(losses[-1]) < float(losses[0])


def test_is_a_preconditioner_also_importable_from_its_old_path():
    import natgrad.kronecker

    assert isinstance(KroneckerFactors(), natgrad.preconditioners.Preconditioner)
    assert natgrad.kronecker.KroneckerFactors is KroneckerFactors
    assert natgrad.kronecker.KroneckerState is KroneckerState


def test_hashable_and_static():
    kf = KroneckerFactors(every=4, samples=2)
    assert hash(kf) == hash(KroneckerFactors(every=4, samples=2))
    f = jax.jit(lambda k, v: v * k.every, static_argnums=0)
    assert float(f(kf, 1.0)) == 4.0


@pytest.mark.parametrize("field,value", [("every", 0), ("every", 2.5), ("every", True),
                                         ("statistics_every", 0),
                                         ("samples", 0), ("decay", 1.0), ("decay", -0.1),
                                         ("decay", "0.9"), ("seed", -1), ("estimator", "mc")])
def test_impossible_values_rejected(field, value):
    with pytest.raises(ValueError, match=f"{field} .*{value!r}".replace("(", r"\(")):
        KroneckerFactors(**{field: value})

