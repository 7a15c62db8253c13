"""`natgrad.NaturalGradient`, the one settings object: init and step agree, impossible values are
refused with one line naming them, run-time checks catch broken data, and the optax faces work
with optax's own wrappers (inject_hyperparams, MultiSteps, apply_if_finite, named_chain) under
`jit` and `lax.scan`. References: the damped solve with a materialised Fisher."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify
from jax.flatten_util import ravel_pytree

import natgrad
from natgrad import damping as dmp
from natgrad import families
from natgrad.economics import PAPER, RECOMMENDED, SolverEconomics

FAMILY = families.Categorical()
N, D, H, K = 12, 3, 4, 3


def _apply(params, x):
    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    dtype = jnp.zeros(()).dtype
    params = {"w1": rng.standard_normal((D, H)) / np.sqrt(D), "b1": rng.standard_normal(H) * 0.1,
              "w2": rng.standard_normal((H, K)) / np.sqrt(H), "b2": np.zeros(K)}
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    x = jnp.asarray(rng.standard_normal((N, D)), dtype)
    y = jnp.asarray(rng.integers(0, K, N), jnp.int32)
    return params, x, y


def _dense_direction(params, x, y, lam, grads=None):
    """(F + λI)⁻¹ g with the Fisher materialised from the Jacobian (independent of natgrad)."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jacobian(lambda p: _apply(unravel(p), x))(flat)
    s = jax.nn.softmax(_apply(params, x))
    f_r = jax.vmap(lambda si: jnp.diag(si) - jnp.outer(si, si))(s)
    fisher = np.asarray(jnp.einsum("nop,noq,nqr->pr", jac, f_r, jac)) / x.shape[0]
    if grads is None:
        grads = jax.grad(lambda p: jnp.mean(FAMILY.nll(_apply(p, x), y)))(params)
    g = np.asarray(ravel_pytree(grads)[0])
    return np.linalg.solve(fisher + lam * np.eye(g.size), g)


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def _exact(**kw):
    """Settings that solve to convergence, so a step is the dense reference's."""
    return natgrad.NaturalGradient(_apply, FAMILY, economics=PAPER, max_iters=200, rtol=1e-12,
                                   **kw)


# --- one object: init and step agree ------------------------------------------------------


def test_settings_make_the_state_and_the_step_with_one_damping(x64):
    params, x, y = _problem()
    ng = _exact(learning_rate=0.5, damping=dmp.LevenbergMarquardt(0.3))
    state = ng.init(params)
    assert float(state.damping) == pytest.approx(0.3)
    new, state, info = jax.jit(ng.step)(params, state, (x, y))
    assert float(info.damping) == pytest.approx(0.3)
    np.testing.assert_allclose(_flat(params) - _flat(new),
                               0.5 * _dense_direction(params, x, y, 0.3), rtol=1e-8, atol=1e-12)


def test_a_constant_damping_is_the_rules_even_from_a_state_made_without_it(x64):
    """The plain function's two damping arguments cannot disagree for a constant: the solve uses
    the step's rule (a state made with another constant, λ = 0, used to be solved undamped)."""
    params, x, y = _problem()
    state = natgrad.natural_gradient_init(params, 0.0)
    new, _, info = natgrad.natural_gradient_step(
        _apply, params, state, (x, y), family=FAMILY, learning_rate=1.0, damping=0.7,
        max_iters=200, rtol=1e-12)
    assert float(info.damping) == pytest.approx(0.7)
    np.testing.assert_allclose(_flat(params) - _flat(new), _dense_direction(params, x, y, 0.7),
                               rtol=1e-8, atol=1e-12)


def test_settings_are_hashable_and_static_under_jit():
    ng = natgrad.NaturalGradient(_apply, FAMILY, learning_rate=0.1)
    assert hash(ng) == hash(natgrad.NaturalGradient(_apply, FAMILY, learning_rate=0.1))
    params, x, y = _problem()

    @functools.partial(jax.jit, static_argnums=0)
    def run(settings, p, s):
        return settings.step(p, s, (x, y))

    _, state, _ = run(ng, params, ng.init(params))
    assert int(state.count) == 1


def test_the_economics_give_the_defaults_and_explicit_arguments_override():
    ng = natgrad.NaturalGradient(_apply, FAMILY)
    assert ng.economics is RECOMMENDED
    assert ng.iterations == 5 and ng.rule == dmp.LevenbergMarquardt(1.0)
    custom = natgrad.NaturalGradient(_apply, FAMILY, max_iters=12, damping=0.5)
    assert custom.iterations == 12 and custom.rule == dmp.Constant(0.5)
    assert PAPER.max_iters == 20 and PAPER.damping == dmp.LevenbergMarquardt(1.0, minimum=0.1)


def test_schedule_learning_rate_follows_the_step_count(x64):
    params, x, y = _problem()
    ng = _exact(learning_rate=lambda count: 0.5 / (1.0 + count), damping=0.2)
    state = ng.init(params)
    p1, state, info1 = ng.step(params, state, (x, y))
    p2, _, info2 = ng.step(p1, state, (x, y))
    assert float(info1.step_norm) == pytest.approx(
        0.5 * np.linalg.norm(_dense_direction(params, x, y, 0.2)), rel=1e-8)
    assert float(info2.step_norm) == pytest.approx(
        0.25 * np.linalg.norm(_dense_direction(p1, x, y, 0.2)), rel=1e-8)


# --- impossible values, refused at construction with one line -----------------------------


@pytest.mark.parametrize("make, name", [
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, max_iters=0), "max_iters"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, max_iters=-3), "max_iters"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, max_iters=2.5), "max_iters"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, rtol=-1.0), "rtol"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, rtol=float("nan")), "rtol"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, damping=-0.1), "value"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, damping=float("inf")), "value"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, learning_rate=-0.5), "learning_rate"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, learning_rate=float("nan")),
     "learning_rate"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, metric="fischer"), "fischer"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, solver="gmres"), "gmres"),
    (lambda: natgrad.NaturalGradient(_apply, FAMILY, compute_rho=False), "compute_rho"),
    (lambda: dmp.Constant(-1.0), "value"),
    (lambda: dmp.LevenbergMarquardt(initial=-2.0), "initial"),
    (lambda: dmp.LevenbergMarquardt(initial=float("nan")), "initial"),
    (lambda: dmp.LevenbergMarquardt(minimum=2.0, maximum=1.0), "maximum"),
    (lambda: dmp.LevenbergMarquardt(decrease=1.5), "decrease"),
    (lambda: SolverEconomics(max_iters=0), "max_iters"),
    (lambda: SolverEconomics(metric_fraction=0.0), "metric_fraction"),
    (lambda: SolverEconomics(metric_fraction=1.5), "metric_fraction"),
    (lambda: SolverEconomics(warm_start=-0.1), "warm_start"),
    (lambda: SolverEconomics(warm_start=1.5), "warm_start"),
])
def test_impossible_values_are_refused_with_one_line_naming_them(make, name):
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert name in message and "\n" not in message


def test_the_plain_step_refuses_them_too_and_takes_the_family_by_keyword():
    params, x, y = _problem()
    state = natgrad.natural_gradient_init(params)
    with pytest.raises(ValueError, match="max_iters"):
        natgrad.natural_gradient_step(_apply, params, state, (x, y), family=FAMILY,
                                      learning_rate=0.1, max_iters=0)
    with pytest.raises(TypeError):  # family given positionally, where the metric batch goes
        natgrad.natural_gradient_step(_apply, params, state, (x, y), None, FAMILY,
                                      learning_rate=0.1)
    with pytest.raises(TypeError, match="family="):
        natgrad.natural_gradient_step(_apply, params, state, (x, y), FAMILY, learning_rate=0.1)


# --- run-time checks (checkify), opt-in ----------------------------------------------------


def _checked_step(checks):
    ng = natgrad.NaturalGradient(_apply, FAMILY, learning_rate=0.5, checks=checks)
    return ng, checkify.checkify(jax.jit(ng.step))


@pytest.mark.parametrize("broken, message", [
    ("nan_inputs", "grad_batch inputs contain NaN or inf"),
    ("labels_out_of_range", "grad_batch targets are out of range for Categorical"),
    ("nan_metric_inputs", "metric_batch inputs contain NaN or inf"),
])
def test_checks_name_broken_data(broken, message):
    params, x, y = _problem()
    u = x
    if broken == "nan_inputs":
        x = x.at[3, 1].set(jnp.nan)
    elif broken == "labels_out_of_range":
        y = y.at[0].set(K + 11)
    else:
        u = u.at[0, 0].set(jnp.inf)
    ng, step = _checked_step(True)
    error, _ = step(params, ng.init(params), (x, y), (u,))
    assert message in error.get()
    with pytest.raises(checkify.JaxRuntimeError, match=message):
        error.throw()


def test_checks_pass_clean_data_and_cost_nothing_when_off():
    params, x, y = _problem()
    ng, step = _checked_step(True)
    error, (new, _, _) = step(params, ng.init(params), (x, y), None)
    assert error.get() is None
    off, _ = _checked_step(False)
    plain = jax.jit(off.step)(params, off.init(params), (x, y))[0]
    np.testing.assert_array_equal(_flat(new), _flat(plain))
    # off, no check is traced; on, the step's checks need checkify
    assert " check[" not in str(jax.make_jaxpr(off.step)(params, off.init(params), (x, y)))
    with pytest.raises(ValueError, match="checkify"):
        jax.jit(ng.step)(params, ng.init(params), (x, y))


def test_a_state_made_for_another_damping_rule_is_refused_before_it_runs():
    """A Levenberg-Marquardt step from a state made with constant λ = 0 is refused
    when traced, naming both rules; the state made for the step's rule runs and passes the
    run-time checks."""
    params, x, y = _problem()
    step = checkify.checkify(jax.jit(lambda p, s: natgrad.natural_gradient_step(
        _apply, p, s, (x, y), family=FAMILY, learning_rate=0.1,
        damping=dmp.LevenbergMarquardt(1.0), checks=True)))
    with pytest.raises(ValueError, match="made for damping 'Constant'.*LevenbergMarquardt"):
        step(params, natgrad.natural_gradient_init(params, 0.0))
    error, _ = step(params, natgrad.natural_gradient_init(params, dmp.LevenbergMarquardt(1.0)))
    assert error.get() is None


def test_checks_catch_a_negative_injected_damping():
    params, x, y = _problem()
    tx = optax.inject_hyperparams(natgrad.natural_gradient, static_args="apply_fn")(
        _apply, FAMILY, learning_rate=0.1, damping=0.1, checks=True)
    state = tx.init(params)
    state.hyperparams["damping"] = jnp.asarray(-1.0, jnp.float32)
    grads = jax.grad(lambda p: jnp.mean(FAMILY.nll(_apply(p, x), y)))(params)
    update = checkify.checkify(jax.jit(functools.partial(tx.update, metric_batch=(x,))))
    error, _ = update(grads, state, params)
    assert "damping must be finite and >= 0" in error.get()


# --- optax interop -----------------------------------------------------------------------


def _grads(params, x, y):
    return jax.grad(lambda p: jnp.mean(FAMILY.nll(_apply(p, x), y)))(params)


def test_inject_hyperparams_over_the_learning_rate_and_the_damping(x64):
    """The one line of docs/training_loop.md; a changed hyper-parameter acts at the next call."""
    params, x, y = _problem()
    tx = optax.inject_hyperparams(natgrad.natural_gradient, static_args="apply_fn")(
        _apply, FAMILY, learning_rate=0.5, damping=0.2, max_iters=200, rtol=1e-12)
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, metric_batch=(x,)))
    u1, state = update(_grads(params, x, y), state, params)
    np.testing.assert_allclose(-_flat(u1), 0.5 * _dense_direction(params, x, y, 0.2),
                               rtol=1e-8, atol=1e-12)
    state.hyperparams["learning_rate"] = jnp.asarray(0.25)
    state.hyperparams["damping"] = jnp.asarray(0.9)
    u2, state = update(_grads(params, x, y), state, params)
    np.testing.assert_allclose(-_flat(u2), 0.25 * _dense_direction(params, x, y, 0.9),
                               rtol=1e-8, atol=1e-12)
    assert float(state.inner_state[0].info.damping) == pytest.approx(0.9)


def _scan_steps(tx, params, batches, **extra):
    """Training with `tx` inside one jitted `lax.scan` over the given batches."""
    def body(carry, batch):
        p, s = carry
        bx, by = batch
        u, s = tx.update(_grads(p, bx, by), s, p, metric_batch=(bx,), grad_batch=(bx, by),
                         **extra)
        return (optax.apply_updates(p, u), s), _flat_jnp(p)

    return jax.jit(lambda p, b: jax.lax.scan(body, (p, tx.init(p)), b))(params, batches)


def _flat_jnp(tree):
    return ravel_pytree(tree)[0]


def test_multisteps_accumulates_then_takes_one_natural_gradient_step(x64):
    params, x, y = _problem()
    halves = (jnp.stack([x[:6], x[6:]]), jnp.stack([y[:6], y[6:]]))
    tx = optax.MultiSteps(natgrad.natural_gradient(_apply, FAMILY, 1.0, damping=0.3,
                                                   max_iters=200, rtol=1e-12), every_k_schedule=2)
    ((new, _), trail) = _scan_steps(tx, params, halves)
    np.testing.assert_array_equal(np.asarray(trail[1]), _flat(params))  # no step after one
    mean_grad = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, _grads(params, x[:6], y[:6]),
                                       _grads(params, x[6:], y[6:]))
    # the metric of the call that steps: the second half's inputs
    expected = _dense_direction(params, x[6:], y[6:], 0.3, grads=mean_grad)
    # optax's MultiSteps accumulates the gradients in float32: a float32 tolerance
    np.testing.assert_allclose(_flat(params) - _flat(new), expected, rtol=1e-5, atol=1e-7)


def test_apply_if_finite_skips_a_non_finite_gradient(x64):
    params, x, y = _problem()
    tx = optax.apply_if_finite(natgrad.natural_gradient(_apply, FAMILY, 1.0, damping=0.3,
                                                        max_iters=200, rtol=1e-12), 3)
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, metric_batch=(x,)))
    bad = jax.tree_util.tree_map(lambda a: a * jnp.nan, _grads(params, x, y))
    u, state = update(bad, state, params)
    assert not np.any(_flat(u)) and int(state.notfinite_count) == 1
    u, state = update(_grads(params, x, y), state, params)
    np.testing.assert_allclose(-_flat(u), _dense_direction(params, x, y, 0.3), rtol=1e-8,
                               atol=1e-12)


def test_named_chain_with_clipping_under_scan(x64):
    params, x, y = _problem()
    tx = optax.named_chain(("clip", optax.clip_by_global_norm(0.05)),
                           ("natural_gradient", natgrad.scale_by_natural_gradient(
                               _apply, FAMILY, damping=0.3, max_iters=200, rtol=1e-12)),
                           ("rate", optax.scale_by_learning_rate(0.5)))
    batches = (jnp.stack([x, x]), jnp.stack([y, y]))
    ((new, state), trail) = _scan_steps(tx, params, batches)
    assert int(state["natural_gradient"].count) == 2
    p1 = jax.tree_util.tree_map(jnp.asarray, ravel_pytree(params)[1](np.asarray(trail[1])))
    g = _grads(p1, x, y)
    clipped = jax.tree_util.tree_map(
        lambda a: a * min(1.0, 0.05 / float(optax.global_norm(g))), g)
    np.testing.assert_allclose(_flat(p1) - _flat(new),
                               0.5 * _dense_direction(p1, x, y, 0.3, grads=clipped),
                               rtol=1e-8, atol=1e-12)
    assert math.isfinite(float(state["natural_gradient"].info.grad_norm))
