"""Step control (`natgrad.step_control`): ρ against the quadratic model, the exact-quadratic step
size and momentum, step rejection, and the damping rule a state was made for. References: the
dense Fisher of a tiny MLP (materialised from per-example Jacobians and the softmax's r-space
Fisher, not from natgrad's operator), the 2×2 minimiser solved by numpy, and a linear-Gaussian
model whose loss is exactly its quadratic model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import damping as dmp
from natgrad import families
from natgrad.economics import PAPER, SolverEconomics
from natgrad.models import MLP

N, D, H, O = 12, 3, 4, 3


def _mlp(seed=0):
    model = MLP(hidden=(H,), outputs=O)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((N, D)))
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape) / np.sqrt(s.shape[0])), shapes)
    y = jnp.asarray(rng.integers(0, O, N))
    return model.apply, params, x, y


def _dense_fisher(apply_fn, params, x):
    """(1/n) Σ_i J_iᵀ (diag p_i − p_i p_iᵀ) J_i, J_i the Jacobian of example i's logits."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda f: apply_fn(unravel(f), x))(flat)  # (n, O, P)
    p = jax.nn.softmax(apply_fn(params, x))
    fr = jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)
    return np.asarray(jnp.einsum("nap,nab,nbq->pq", jac, fr, jac) / x.shape[0])


def _loss(apply_fn, x, y):
    return lambda p: float(jnp.mean(families.Categorical().nll(apply_fn(p, x), y)))


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


@pytest.mark.parametrize("solver, preconditioned", [("cg", False), ("minres_qlp", False),
                                                    ("cg", True), ("minres_qlp", True)])
@pytest.mark.parametrize("learning_rate", [0.7, "adaptive"])
def test_quadratic_rho_is_actual_over_the_dense_damped_model(x64, solver, preconditioned,
                                                             learning_rate):
    """CG's model value from its residual (free), MINRES-QLP's from one product, with and
    without K-FAC's Kronecker factors as the preconditioner."""
    from natgrad.kronecker import KroneckerFactors

    apply_fn, params, x, y = _mlp()
    lam = 0.3
    economics = SolverEconomics(max_iters=3, damping=lam,
                                preconditioner=KroneckerFactors() if preconditioned else None)
    ng = natgrad.NaturalGradient(apply_fn, families.Categorical(), learning_rate=learning_rate,
                                 rho="quadratic", economics=economics, solver=solver,
                                 compute_rho=True)
    new, _, info = ng.step(params, ng.init(params), (x, y))
    delta = _flat(new) - _flat(params)
    g = np.asarray(ravel_pytree(jax.grad(lambda p: jnp.mean(
        families.Categorical().nll(apply_fn(p, x), y)))(params))[0])
    a = _dense_fisher(apply_fn, params, x) + lam * np.eye(len(g))
    model = g @ delta + 0.5 * delta @ a @ delta
    assert model < 0
    actual = _loss(apply_fn, x, y)(new) - _loss(apply_fn, x, y)(params)
    np.testing.assert_allclose(float(info.rho), actual / model, rtol=1e-8)


def _linear_gaussian():
    """Linear model + Gaussian NLL: L(θ) equals its quadratic model with M = the Fisher = the
    Hessian, so ρ against the undamped quadratic model is 1 for every step."""
    kx, kw, kt = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (20, 4))
    t = jax.random.normal(kt, (20, 2))
    params = {"w": jax.random.normal(kw, (4, 2)), "b": jnp.zeros(2)}
    return (lambda p, xx: xx @ p["w"] + p["b"]), params, x, t


@pytest.mark.parametrize("learning_rate", [0.4, 1.0, 1.7, "adaptive"])
def test_quadratic_rho_is_one_on_an_exact_quadratic(x64, learning_rate):
    apply_fn, params, x, t = _linear_gaussian()
    ng = natgrad.NaturalGradient(apply_fn, families.Gaussian(), learning_rate=learning_rate,
                                 rho="quadratic", economics=PAPER, damping=0.0, max_iters=2,
                                 compute_rho=True)
    state = ng.init(params)
    for _ in range(3):  # truncated solves: the model is still exact along any step
        params, state, info = ng.step(params, state, (x, t))
        np.testing.assert_allclose(float(info.rho), 1.0, rtol=1e-9)


@pytest.mark.parametrize("solver", ["cg", "minres_qlp"])
def test_adaptive_rate_and_momentum_are_the_dense_2x2_minimiser(x64, solver):
    """A truncated solve (1 iteration), so ng is not the model's minimiser and δ₀ helps: α, μ
    must be the numpy solution of the 2×2 model over span{−ng, δ₀} with the dense Fisher."""
    apply_fn, params, x, y = _mlp(1)
    lam = 0.2
    fam = families.Categorical()
    economics = SolverEconomics(max_iters=1, damping=lam, warm_start=0.5)  # carries ng
    ng = natgrad.NaturalGradient(apply_fn, fam, learning_rate="adaptive", momentum=True,
                                 economics=economics, solver=solver)
    state = ng.init(params)
    params, state, first = ng.step(params, state, (x, y))
    assert float(first.momentum) == 0.0  # no previous update yet: α alone
    previous = _flat(state.update)
    new, state, info = ng.step(params, state, (x, y))

    g = np.asarray(ravel_pytree(jax.grad(lambda p: jnp.mean(fam.nll(apply_fn(p, x), y)))(
        params))[0])
    a = _dense_fisher(apply_fn, params, x) + lam * np.eye(len(g))
    basis = np.stack([-_flat(state.direction), previous], axis=1)
    alpha, mu = np.linalg.solve(basis.T @ a @ basis, -basis.T @ g)
    assert abs(mu) > 1e-3  # the previous update matters here
    np.testing.assert_allclose([float(info.learning_rate), float(info.momentum)], [alpha, mu],
                               rtol=1e-7)
    np.testing.assert_allclose(_flat(new), _flat(params) + basis @ [alpha, mu], rtol=1e-7,
                               atol=1e-12)
    np.testing.assert_allclose(_flat(state.update), basis @ [alpha, mu], rtol=1e-7, atol=1e-12)


def test_a_loss_raising_step_is_rejected(x64):
    apply_fn, params, x, y = _mlp(2)
    rule = dmp.LevenbergMarquardt(initial=1e-3)
    settings = dict(learning_rate=200.0, economics=PAPER, damping=rule)
    unguarded = natgrad.NaturalGradient(apply_fn, families.Categorical(), reject=False,
                                        **settings)
    raised, _, _ = unguarded.step(params, unguarded.init(params), (x, y))
    loss = _loss(apply_fn, x, y)
    assert loss(raised) > loss(params)  # the step, applied, raises the loss

    ng = natgrad.NaturalGradient(apply_fn, families.Categorical(), reject=True, **settings)
    new, state, info = jax.jit(ng.step)(params, ng.init(params), (x, y))
    assert int(info.rejected) == 1
    np.testing.assert_array_equal(_flat(new), _flat(params))  # θ unchanged, bit for bit
    assert float(state.damping) == pytest.approx(1.5e-3)  # λ raised by the rule
    assert float(info.rho) < 0  # reported as measured


def test_an_improving_step_is_applied(x64):
    apply_fn, params, x, y = _mlp(2)
    ng = natgrad.NaturalGradient(apply_fn, families.Categorical(), learning_rate=0.5,
                                 economics=PAPER, damping=dmp.LevenbergMarquardt(1.0), reject=True)
    new, _, info = ng.step(params, ng.init(params), (x, y))
    assert int(info.rejected) == 0
    assert _loss(apply_fn, x, y)(new) < _loss(apply_fn, x, y)(params)


def test_a_state_made_for_another_damping_rule_is_refused():
    apply_fn, params, x, y = _mlp()
    state = natgrad.natural_gradient_init(params, 0.0)  # constant λ = 0
    with pytest.raises(ValueError, match=r"made for damping 'Constant'.*LevenbergMarquardt"):
        natgrad.natural_gradient_step(apply_fn, params, state, (x, y),
                                      family=families.Categorical(), learning_rate=1.0,
                                      damping=dmp.LevenbergMarquardt(1.0))
    lm = natgrad.natural_gradient_init(params, dmp.LevenbergMarquardt(1.0))
    with pytest.raises(ValueError, match="made for damping LevenbergMarquardt"):
        natgrad.natural_gradient_step(apply_fn, params, lm, (x, y), family=families.Categorical(),
                                      learning_rate=1.0, damping=dmp.LevenbergMarquardt(2.0))


@pytest.mark.parametrize("face, setting", [
    ("optax", {"learning_rate": "adaptive"}),
    ("scale_by", {"learning_rate": 0.5, "reject": True}),
    ("scale_by", {"learning_rate": 0.5, "rho": "quadratic"}),
    ("scale_by", {"momentum": True}),
])
def test_the_optax_faces_refuse_what_needs_the_applied_update(face, setting):
    apply_fn, _, _, _ = _mlp()
    ng = natgrad.NaturalGradient(apply_fn, families.Categorical(), **setting)
    message = "needs a fixed learning_rate" if face == "optax" else "takes rho='first_order'"
    with pytest.raises(ValueError, match=message):
        getattr(ng, face)()


def test_the_transformation_of_the_default_settings_keeps_its_state_structure():
    """The defaults (adaptive rate: momentum for `step`) must not give the transformation a
    state that changes shape after an update (`lax.scan` needs a fixed carry)."""
    apply_fn, params, x, y = _mlp()
    fam = families.Categorical()
    transformation = natgrad.NaturalGradient(apply_fn, fam).scale_by()
    state = transformation.init(params)
    grads = jax.grad(lambda p: jnp.mean(fam.nll(apply_fn(p, x), y)))(params)
    _, new_state = transformation.update(grads, state, params, grad_batch=(x, y))
    assert (jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state))


def test_a_state_made_without_momentum_is_refused_by_a_momentum_step():
    apply_fn, params, x, y = _mlp()
    rule = dmp.LevenbergMarquardt(1.0)
    state = natgrad.natural_gradient_init(params, rule)
    with pytest.raises(ValueError, match="momentum=True but the state was made without"):
        natgrad.natural_gradient_step(apply_fn, params, state, (x, y),
                                      family=families.Categorical(), learning_rate="adaptive",
                                      momentum=True, damping=rule)


def test_the_defaults_resolve_from_the_learning_rate():
    apply_fn, _, _, _ = _mlp()
    fam = families.Categorical()
    adaptive = natgrad.NaturalGradient(apply_fn, fam)
    fixed = natgrad.NaturalGradient(apply_fn, fam, learning_rate=0.5)
    assert (adaptive.with_momentum, adaptive.rho_model, adaptive.rejects) == (
        True, "quadratic", True)
    assert (fixed.with_momentum, fixed.rho_model, fixed.rejects) == (False, "first_order", True)
    no_rho = natgrad.NaturalGradient(apply_fn, fam, learning_rate=0.5, damping=0.1,
                                     compute_rho=False)
    assert not no_rho.rejects and not no_rho.needs_rho


@pytest.mark.parametrize("bad, message", [
    ({"rho": "second_order"}, "rho must be one of"),
    ({"learning_rate": "auto"}, "learning_rate must be"),
    ({"momentum": True, "learning_rate": 0.5}, "momentum=True needs learning_rate='adaptive'"),
    ({"reject": True, "compute_rho": False}, "rejection needs ρ"),
    ({"rho": "quadratic", "learning_rate": 2.0}, "every step would score"),
])
def test_impossible_step_control_is_refused(bad, message):
    apply_fn, _, _, _ = _mlp()
    settings = {"economics": PAPER, **bad}
    with pytest.raises((ValueError, TypeError), match=message):
        natgrad.NaturalGradient(apply_fn, families.Categorical(), **settings)


def test_damping_adapted_every_k_steps_follows_the_hand_built_sequence():
    """LevenbergMarquardt(every=3) adapts after steps 2, 5, 8 (counted from 0, kfac-jax's
    (t + 1) % k == 0) by the ρ of that step alone; the ρ of the other steps is ignored."""
    rule = dmp.LevenbergMarquardt(initial=1.0, every=3)
    rhos = [0.9, 0.1, 0.9, 0.1, 0.5, 0.1, 0.9, np.nan, 0.9]
    expected = [1.0, 1.0, 2 / 3, 2 / 3, 2 / 3, 1.0, 1.0, 1.0, 2 / 3]  # after each step
    lam = rule.init().astype(jnp.float32)
    for t, (rho, want) in enumerate(zip(rhos, expected)):
        lam = jax.jit(dmp.next_damping, static_argnums=0)(rule, lam, jnp.float32(rho), t)
        assert float(lam) == pytest.approx(want, rel=1e-6), t
    assert [bool(dmp.adapts(rule, t)) for t in range(6)] == [False, False, True] * 2
    with pytest.raises(ValueError, match=r"LevenbergMarquardt.every\) must be an integer >= 1"):
        dmp.LevenbergMarquardt(every=0)


def test_rho_measured_only_where_the_damping_adapts(x64):
    """Without rejection, a rule adapting every 3 steps has ρ measured (eq. 30, against an
    independent evaluation of the loss and the gradient) at steps 2 and 5 only, NaN elsewhere, and
    λ changes only after them; the forward pass at θ + δ sits in a `cond` (skipped, not masked)."""
    apply_fn, params, x, y = _mlp()
    rule = dmp.LevenbergMarquardt(initial=1.0, every=3)
    ng = natgrad.NaturalGradient(apply_fn, families.Categorical(), learning_rate=0.5,
                                 economics=PAPER, damping=rule, max_iters=5, reject=False)
    step = jax.jit(ng.step)
    loss = _loss(apply_fn, x, y)
    grad = jax.grad(lambda p: jnp.mean(families.Categorical().nll(apply_fn(p, x), y)))
    state, lam = ng.init(params), 1.0
    for t in range(6):
        new, state, info = step(params, state, (x, y))
        assert float(info.damping) == pytest.approx(lam)
        if t % 3 == 2:
            rho = (loss(new) - loss(params)) / float(_flat(grad(params)) @ (_flat(new) - _flat(params)))
            assert float(info.rho) == pytest.approx(rho, rel=1e-8)
            lam *= 1.5 if rho < 0.25 else (2 / 3 if rho > 0.75 else 1.0)
        else:
            assert np.isnan(float(info.rho))
        assert float(state.damping) == pytest.approx(lam)
        params = new
    jaxpr = jax.make_jaxpr(ng.step)(params, state, (x, y))
    conds = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
    assert any("tanh" in str(branch) for e in conds for branch in e.params["branches"])
