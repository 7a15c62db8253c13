"""The natural-gradient step, its damping and its optax form."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import damping as dmp
from natgrad import families
from natgrad.models import MLP

N, D, H, O = 8, 3, 5, 3


def _mlp_problem(seed=0, n=N):
    """A tiny MLP classification problem; numpy-drawn arrays (cheaper than flax init eagerly)."""
    model = MLP(hidden=(H,), outputs=O)
    rng = np.random.default_rng(seed)
    dtype = jnp.zeros(()).dtype  # float64 under the x64 fixture
    x = jnp.asarray(rng.standard_normal((n, D)), dtype)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape) / np.sqrt(s.shape[0]), dtype), shapes)
    y = jnp.asarray(rng.integers(0, O, n))
    x_unlabeled = jnp.asarray(rng.standard_normal((2 * n, D)), dtype)
    return model.apply, params, x, y, x_unlabeled


# --- damping -------------------------------------------------------------------------------


def test_levenberg_marquardt_rule():
    rule = dmp.LevenbergMarquardt(initial=2.0, minimum=0.5, maximum=2.5)
    lam = rule.init()
    assert float(lam) == 2.0
    assert float(rule.update(lam, 0.1)) == pytest.approx(2.5)  # 3.0, clipped to the maximum
    assert float(rule.update(jnp.float32(1.0), 0.1)) == pytest.approx(1.5)
    assert float(rule.update(jnp.float32(1.0), 0.9)) == pytest.approx(2 / 3)
    assert float(rule.update(jnp.float32(1.0), 0.5)) == pytest.approx(1.0)
    assert float(rule.update(jnp.float32(0.6), 0.9)) == pytest.approx(0.5)  # clipped to the minimum
    assert float(rule.update(jnp.float32(1.0), jnp.nan)) == pytest.approx(1.5)  # failed step
    assert float(dmp.Constant(0.3).update(dmp.Constant(0.3).init(), 0.0)) == pytest.approx(0.3)
    assert jax.jit(rule.update)(jnp.float32(1.0), 0.1) == pytest.approx(1.5)


def _quadratic_problem():
    """Linear model + Gaussian NLL: L is quadratic and its Hessian is the Fisher, so the exact
    natural-gradient step with learning rate η has ρ = 1 − η/2 exactly."""
    kx, kw, kt = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (20, 4))
    t = jax.random.normal(kt, (20, 2))
    params = {"w": jax.random.normal(kw, (4, 2)), "b": jnp.zeros(2)}
    apply_fn = lambda p, xx: xx @ p["w"] + p["b"]  # noqa: E731
    return apply_fn, params, x, t


@pytest.mark.parametrize("eta, direction", [(1.8, "up"), (1.0, "same"), (0.2, "down")])
def test_levenberg_marquardt_moves_the_right_way_on_a_quadratic(x64, eta, direction):
    apply_fn, params, x, t = _quadratic_problem()
    rule = dmp.LevenbergMarquardt(initial=1e-9, minimum=1e-12, maximum=1e3)
    state = natgrad.natural_gradient_init(params, rule)
    step = jax.jit(functools.partial(
        natgrad.natural_gradient_step, apply_fn, family=families.Gaussian(1.0), damping=rule,
        solver="cg", max_iters=50, rtol=1e-12))
    _, state, info = step(params, state, (x, t), (x,), learning_rate=eta)
    assert float(info.rho) == pytest.approx(1 - eta / 2, rel=1e-5)
    ratio = float(state.damping) / 1e-9
    expected = {"up": 1.5, "same": 1.0, "down": 2 / 3}[direction]
    assert ratio == pytest.approx(expected, rel=1e-5)


# --- the step ------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _dense_metric(kind, apply_fn, params, x, y, family):
    flat, unravel = ravel_pytree(params)
    if kind == "hessian":
        return jax.hessian(lambda p: jnp.mean(family.nll(apply_fn(unravel(p), x), y)))(flat)
    if kind == "fisher":
        jr = jax.jacobian(lambda p: apply_fn(unravel(p), x))(flat)
        r = apply_fn(params, x)
        s = jax.vmap(jax.nn.softmax)(r)
        f = jax.vmap(lambda si: jnp.diag(si) - jnp.outer(si, si))(s)
        return jnp.einsum("nop,noq,nqr->pr", jr, f, jr) / x.shape[0]
    g = jax.jacobian(lambda p: family.nll(apply_fn(unravel(p), x), y))(flat)
    if kind == "covariance":
        g = g - g.mean(0)
    return g.T @ g / x.shape[0]


@pytest.mark.parametrize(
    "metric, shared, solver",
    [("fisher", True, "cg"), ("fisher", False, "minres_qlp"), ("empirical_fisher", True, "cg"),
     ("covariance", False, "cg"), ("hessian", True, "minres_qlp")],
)
def test_step_equals_dense_damped_solve(x64, metric, shared, solver):
    """θ_new = θ − η (M + λI)⁻¹ g with M materialised, for every metric, with the metric batch
    the gradient batch itself (shared linearization) or a copy of it (separate forward)."""
    family = families.Categorical()
    apply_fn, params, x, y, _ = _mlp_problem()
    m = _dense_metric(metric, apply_fn, params, x, y, family)
    # the Hessian may be indefinite: damp it enough for CG
    lam, eta = 0.5 + max(0.0, -float(jnp.linalg.eigvalsh(m)[0])), 0.3
    state = natgrad.natural_gradient_init(params, dmp.Constant(lam))
    metric_batch = (x, y) if shared else (x + 0.0, y + 0)

    @jax.jit
    def step(params, state, x, y, metric_batch):
        # inside jit the same tracer reaches both batches when shared (one linearization)
        return natgrad.natural_gradient_step(
            apply_fn, params, state, (x, y), (x, y) if shared else metric_batch, family=family,
            learning_rate=eta, damping=dmp.Constant(lam), metric=metric, solver=solver,
            max_iters=200, rtol=1e-12)

    new, state2, info = step(params, state, x, y, metric_batch)
    flat, _ = ravel_pytree(params)
    g = jax.grad(lambda p: jnp.mean(family.nll(apply_fn(p, x), y)))(params)
    g = ravel_pytree(g)[0]
    expected = flat - eta * jnp.linalg.solve(m + lam * jnp.eye(flat.size), g)
    got = ravel_pytree(new)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert int(info.flag) == natgrad.solvers.CONVERGED
    assert float(info.damping) == pytest.approx(lam)
    assert float(info.grad_norm) == pytest.approx(float(jnp.linalg.norm(g)))
    assert float(info.step_norm) == pytest.approx(float(jnp.linalg.norm(got - flat)))
    assert np.isnan(float(info.rho))  # constant damping: ρ not computed
    assert int(state2.count) == 1


def test_unlabeled_metric_batch(x64):
    """The Fisher integrates the targets out: inputs alone (unlabeled) are a valid metric batch."""
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()
    state = natgrad.natural_gradient_init(params, 0.1)
    kw = dict(learning_rate=0.5, damping=0.1, max_iters=10)
    step = jax.jit(functools.partial(natgrad.natural_gradient_step, apply_fn, family=family, **kw))
    a, _, _ = step(params, state, (x, y), (xu,))
    b, _, _ = step(params, state, (x, y), xu)
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="targets"):
        natgrad.natural_gradient_step(apply_fn, params, state, (x, y), (xu,), family=family,
                                      metric="empirical_fisher", **kw)


def test_step_is_jittable_and_reports():
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()
    rule = dmp.LevenbergMarquardt(initial=1.0)
    step = jax.jit(functools.partial(natgrad.natural_gradient_step, apply_fn, family=family,
                                     damping=rule, max_iters=5, rtol=0.0))
    state = natgrad.natural_gradient_init(params, rule)

    def run(params, state, lr):
        return step(params, state, (x, y), (xu,), learning_rate=lr)

    new, state, info = jax.jit(run)(params, state, 0.5)
    assert int(info.iterations) == 5 and int(info.flag) == natgrad.solvers.MAX_ITERS
    assert np.isfinite(float(info.rho)) and float(info.loss) > 0
    assert float(info.relative_residual) > 0
    assert float(state.damping) != 1.0 or 0.25 <= float(info.rho) <= 0.75
    # the state round-trips through a lax loop (fixed dtypes and shapes)
    def body(_, carry):
        p, s = carry
        p, s, _ = step(p, s, (x, y), (xu,), learning_rate=0.5)
        return p, s

    jax.lax.fori_loop(0, 2, body, (params, natgrad.natural_gradient_init(params, rule)))


# --- the optax transformations -------------------------------------------------------------


def _loss(apply_fn, family, x, y):
    return lambda p: jnp.mean(family.nll(apply_fn(p, x), y))


@pytest.mark.parametrize("metric_inputs", ["unlabeled", "shared"])
def test_chain_clip_natural_gradient_schedule_matches_hand_written_step(x64, metric_inputs):
    """clip_by_global_norm → scale_by_natural_gradient → schedule, jitted, against numpy: clip g,
    solve (G + λI) x = g_clipped with G materialised, θ ← θ − schedule(count)·x."""
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()
    xm = xu if metric_inputs == "unlabeled" else x
    lam, clip = 0.05, 0.05
    schedule = optax.exponential_decay(0.8, transition_steps=1, decay_rate=0.5)  # of an int32 count
    tx = optax.chain(
        optax.clip_by_global_norm(clip),
        natgrad.scale_by_natural_gradient(apply_fn, family, damping=lam, max_iters=200, rtol=1e-13),
        optax.scale_by_learning_rate(schedule))
    loss_fn = _loss(apply_fn, family, x, y)

    @jax.jit
    def step(p, s):
        updates, s = tx.update(jax.grad(loss_fn)(p), s, p, metric_batch=(xm,), grad_batch=(x, y))
        return optax.apply_updates(p, updates), s

    p, s = params, tx.init(params)
    flat, unravel = ravel_pytree(params)
    for k in range(3):
        p, s = step(p, s)
        g = np.asarray(ravel_pytree(jax.grad(loss_fn)(unravel(flat)))[0])
        assert np.linalg.norm(g) > clip  # the clip is active
        g_clipped = g * clip / np.linalg.norm(g)
        m = np.asarray(_dense_metric("fisher", apply_fn, unravel(flat), xm, None, family))
        flat = flat - float(schedule(jnp.int32(k))) * np.linalg.solve(m + lam * np.eye(flat.size), g_clipped)
        np.testing.assert_allclose(ravel_pytree(p)[0], flat, rtol=1e-9, atol=1e-12)
    info = s[1].info
    assert int(info.flag) == natgrad.solvers.CONVERGED and float(info.damping) == lam
    assert float(info.grad_norm) == pytest.approx(clip)  # the transformation saw clipped updates
    assert np.isfinite(float(info.loss)) == (metric_inputs == "shared")  # free with the shared path


def test_levenberg_marquardt_rho_uses_the_applied_update(x64):
    """With a scale chained after the transformation, ρ of step t (evaluated at call t+1 on that
    call's batch) uses the applied update d = θ_{t+1} − θ_t, and λ follows the rule before each
    solve; checked against the dense quadratic (linear model, Gaussian: L is its own model)."""
    apply_fn, params, x, t = _quadratic_problem()
    family = families.Gaussian(1.0)
    rule = dmp.LevenbergMarquardt(initial=1e-3, minimum=1e-9, maximum=1e3)
    lr = optax.piecewise_constant_schedule(0.6, {3: 1 / 6})  # applied: ×3 → 1.8, then 0.5
    tx = optax.chain(
        natgrad.scale_by_natural_gradient(apply_fn, family, damping=rule, max_iters=50, rtol=1e-13),
        optax.scale_by_learning_rate(lr), optax.scale(3.0))
    batches = [(x[i::2], t[i::2]) for i in (0, 1)]  # two alternating gradient batches

    @jax.jit
    def step(p, s, xb, tb):
        g = jax.grad(_loss(apply_fn, family, xb, tb))(p)
        updates, s = tx.update(g, s, p, grad_batch=(xb, tb))
        return optax.apply_updates(p, updates), s

    flat, unravel = ravel_pytree(params)
    flat_loss = [jax.jit(lambda f, b=b: _loss(apply_fn, family, *b)(unravel(f))) for b in batches]
    p, s, lam, prev, factors = params, tx.init(params), rule.initial, None, []
    for k in range(7):
        f = flat_loss[k % 2]
        p, s = step(p, s, *batches[k % 2])
        info = s[0].info
        if prev is None:
            assert np.isnan(float(info.rho))
        else:
            d = flat - prev
            rho = float((f(flat) - f(prev)) / jnp.dot(jax.grad(f)(prev), d))
            np.testing.assert_allclose(float(info.rho), rho, rtol=1e-8)
            new = float(rule.update(jnp.float64(lam), rho))
            factors.append(round(new / lam, 6))
            lam = new
        assert float(info.damping) == pytest.approx(lam, rel=1e-12)
        a = jax.hessian(f)(flat)
        direction = np.linalg.solve(a + lam * np.eye(flat.size), jax.grad(f)(flat))
        prev, flat = flat, flat - 3.0 * float(lr(jnp.int32(k))) * direction
        np.testing.assert_allclose(ravel_pytree(p)[0], flat, rtol=1e-9, atol=1e-12)
    assert 1.5 in factors and round(2 / 3, 6) in factors, factors  # λ went up and came down


@pytest.mark.parametrize("damping", [dmp.Constant(0.3), dmp.LevenbergMarquardt(initial=0.3)])
def test_natural_gradient_chain_equals_plain_step(x64, damping):
    """`natural_gradient` + `optax.apply_updates` gives `natural_gradient_step`'s parameters (−η·ng)
    and, with the gradient batch fixed, the same λ: ρ evaluated one call later sees the same
    update; the plain step's λ after step t is the transformation's λ at call t+1."""
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()
    schedule = optax.linear_schedule(0.9, 0.3, 4)
    kw = dict(damping=damping, metric="fisher", solver="cg", max_iters=7, rtol=1e-6)
    tx = natgrad.natural_gradient(apply_fn, family, schedule, **kw)
    plain = jax.jit(functools.partial(natgrad.natural_gradient_step, apply_fn, family=family, **kw))

    @jax.jit
    def with_optax(p, s):
        grads = jax.grad(_loss(apply_fn, family, x, y))(p)
        updates, s = tx.update(grads, s, p, metric_batch=(xu,), grad_batch=(x, y))
        return optax.apply_updates(p, updates), s

    p_plain, s_plain = params, natgrad.natural_gradient_init(params, damping)
    p_optax, s_optax = params, tx.init(params)
    for k in range(4):
        lam_next = s_plain.damping  # the λ the plain step uses now
        p_plain, s_plain, info = plain(p_plain, s_plain, (x, y), (xu,), learning_rate=schedule(jnp.int32(k)))
        p_optax, s_optax = with_optax(p_optax, s_optax)
        np.testing.assert_allclose(ravel_pytree(p_optax)[0], ravel_pytree(p_plain)[0],
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(s_optax[0].info.damping, lam_next, rtol=1e-12)
        assert float(s_optax[0].info.iterations) == float(info.iterations)
    assert int(s_optax[0].count) == 4
    assert (s_optax[0].previous_params is None) == isinstance(damping, dmp.Constant)


def test_transformation_state_runs_through_a_scan():
    """A fixed state structure from `init(params)`: the chain runs inside `jax.lax.scan`."""
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()
    tx = natgrad.natural_gradient(apply_fn, family, 0.5, damping=dmp.LevenbergMarquardt(1.0),
                                  max_iters=5)

    def body(carry, _):
        p, s = carry
        updates, s = tx.update(jax.grad(_loss(apply_fn, family, x, y))(p), s, p,
                               metric_batch=xu, grad_batch=(x, y))
        return (optax.apply_updates(p, updates), s), s[0].info.rho

    (_, s), rhos = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=3))(params)
    assert np.isnan(float(rhos[0])) and np.all(np.isfinite(np.asarray(rhos[1:])))
    assert int(s[0].count) == 3


def test_natural_gradient_beats_gradient_descent_on_badly_scaled_problem(x64):
    """Softmax regression on inputs whose features span four orders of magnitude: 15 natural
    gradient steps reach a lower loss than 15 gradient steps at the best of many learning rates."""
    kx, kw, kp = jax.random.split(jax.random.PRNGKey(4), 3)
    n, d, o = 200, 4, 3
    scales = jnp.asarray([100.0, 1.0, 0.1, 0.01])
    z = jax.random.normal(kx, (n, d))
    labels = jnp.argmax(z @ jax.random.normal(kw, (d, o)), axis=-1)
    x = z * scales  # the information is equally in every feature; the scaling hides it
    apply_fn = lambda p, xx: xx @ p["w"] + p["b"]  # noqa: E731
    params = {"w": jnp.zeros((d, o)), "b": jnp.zeros(o)}
    family = families.Categorical()
    loss_fn = lambda p: jnp.mean(family.nll(apply_fn(p, x), labels))  # noqa: E731
    steps = 15

    @jax.jit
    def gd(lr):
        def body(_, p):
            return jax.tree_util.tree_map(lambda a, g: a - lr * g, p, jax.grad(loss_fn)(p))

        return loss_fn(jax.lax.fori_loop(0, steps, body, params))

    best_gd = min(float(gd(lr)) for lr in 10.0 ** np.arange(-6, 1))
    assert np.isfinite(best_gd)
    step = functools.partial(natgrad.natural_gradient_step, apply_fn, family=family,
                             learning_rate=1.0, damping=1e-4, max_iters=50, rtol=1e-8)

    @jax.jit
    def ng_run(p):
        def body(_, carry):
            p, s = carry
            p, s, _ = step(p, s, (x, labels), (x,))
            return p, s

        p, _ = jax.lax.fori_loop(0, steps, body, (p, natgrad.natural_gradient_init(p, 1e-4)))
        return loss_fn(p)

    ng = float(ng_run(params))
    assert ng < 0.5 * best_gd, (ng, best_gd)


@pytest.mark.parametrize("shared, forwards", [(True, 1), (False, 2)])
def test_forward_passes_per_step(shared, forwards):
    """With constant damping a step runs the model forward once when the metric batch is the
    gradient batch (the gradient comes from the metric's linearization), twice otherwise, and
    never inside the solver loop; ρ (Levenberg-Marquardt) adds one forward at θ_new."""
    family = families.Categorical()
    apply_fn, params, x, y, xu = _mlp_problem()

    def step(params, x, y, xu, rule):
        state = natgrad.natural_gradient_init(params, rule)
        return natgrad.natural_gradient_step(
            apply_fn, params, state, (x, y), (x,) if shared else (xu,), family=family,
            learning_rate=0.1, damping=rule, max_iters=20)

    for rule, extra in ((dmp.Constant(1.0), 0), (dmp.LevenbergMarquardt(1.0), 1)):
        jaxpr = str(jax.make_jaxpr(functools.partial(step, rule=rule))(params, x, y, xu))
        assert jaxpr.count("tanh") == forwards + extra
