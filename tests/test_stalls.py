"""Stalls that speak (natgrad.stalls) and the refusals that name the mistake."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import natgrad
from natgrad import stalls

FAMILY = natgrad.families.Categorical()


def _apply(params, x):
    w, b = params
    return x @ w + b


def _problem(n=32):
    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (n, 5))
    y = jax.random.randint(ky, (n,), 0, 3)
    return (jnp.zeros((5, 3)), jnp.zeros(3)), x, y


def _run(step, params, state, batch, steps):
    @jax.jit
    def loop(params, state):
        def body(carry, _):
            p, s, info = step(*carry, batch)
            return (p, s), info
        (p, s), infos = jax.lax.scan(body, (params, state), None, length=steps)
        return infos
    return jax.block_until_ready(loop(params, state))


@pytest.mark.parametrize("bad", ["nan_pixel", "label_out_of_range"])
def test_a_run_of_stalled_steps_is_counted_and_warned_naming_the_causes(bad):
    params, x, y = _problem()
    if bad == "nan_pixel":
        x = x.at[3, 2].set(jnp.nan)
    else:
        y = y.at[0].set(3)  # 3 classes
    ng = natgrad.NaturalGradient(_apply, FAMILY)
    with pytest.warns(stalls.StallWarning, match="non-finite inputs.*outside the family's range"):
        infos = _run(ng.step, params, ng.init(params), (x, y), stalls.STALL_STEPS)
    np.testing.assert_array_equal(infos.stall_run, np.arange(1, stalls.STALL_STEPS + 1))


def test_a_healthy_run_does_not_stall_and_raise_mode_raises():
    params, x, y = _problem()
    ng = natgrad.NaturalGradient(_apply, FAMILY, on_stall="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infos = _run(ng.step, params, ng.init(params), (x, y), 12)
    assert int(infos.stall_run.max()) == 0
    with pytest.raises(Exception, match="StallError|steps in a row stalled"):
        _run(ng.step, params, ng.init(params), (x.at[0, 0].set(jnp.inf), y), 12)


def test_the_optax_face_counts_a_damping_past_the_ceiling():
    """No rejection there: λ raised ×1.5 a call by a loss that never falls (a rate of 0 given
    through the chain) is the stall; the count starts at the first call at λ ≥ 10⁴."""
    params, x, y = _problem()
    tx = optax.chain(natgrad.NaturalGradient(_apply, FAMILY, on_stall=None).scale_by(),
                     optax.scale(0.0))

    def step(p, s, batch):
        grads = jax.grad(natgrad.mean_nll(_apply, *batch, FAMILY))(p)
        updates, s = tx.update(grads, s, p, grad_batch=batch)
        return optax.apply_updates(p, updates), s, s[0].info

    infos = _run(step, params, tx.init(params), (x, y), 30)
    lam, run = np.asarray(infos.damping), np.asarray(infos.stall_run)
    past = lam >= stalls.STALL_DAMPING
    assert past.any() and not past[0]
    first = int(np.argmax(past))
    np.testing.assert_array_equal(run[:first], 0)
    np.testing.assert_array_equal(run[first:], np.arange(1, len(run) - first + 1))


@pytest.mark.parametrize("family, match", [
    ("categorical", "family must be a natgrad.families.Family instance, got 'categorical'"),
    (natgrad.families.Categorical, "family is the class Categorical, not an instance"),
    (None, "an output family is needed"),
])
def test_a_family_that_is_not_an_instance_is_refused_when_made(family, match):
    with pytest.raises(TypeError, match=match):
        natgrad.NaturalGradient(_apply, family)


def test_a_zero_learning_rate_is_refused():
    with pytest.raises(ValueError, match="learning_rate=0 never moves"):
        natgrad.NaturalGradient(_apply, FAMILY, learning_rate=0.0)


def test_a_state_of_another_model_is_refused_naming_it():
    params, x, y = _problem()
    ng = natgrad.NaturalGradient(_apply, FAMILY)
    other = ng.init((jnp.zeros((4, 3)), jnp.zeros(3)))
    with pytest.raises(ValueError, match="state's direction is not shaped like params.*another model"):
        ng.step(params, other, (x, y))
    with pytest.raises(TypeError, match="state must be a NaturalGradientState"):
        ng.step(params, optax.adam(1e-3).init(params), (x, y))
