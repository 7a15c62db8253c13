"""Trace-time errors that name the mistake: the argument and the shape expected."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import natgrad
from natgrad import families

N, D, O = 8, 3, 4


def _problem():
    """A linear model with O outputs (no flax: the checks are about shapes, not the model)."""
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal((D, O)), jnp.float32),
              "b": jnp.zeros(O, jnp.float32)}
    x = jnp.asarray(rng.standard_normal((N, D)), jnp.float32)
    y = jnp.asarray(rng.integers(0, O, N), jnp.int32)
    return (lambda p, xx: xx @ p["w"] + p["b"]), params, x, y


def _step(grad_batch, metric_batch=None, family=families.Categorical(), params=None,
          metric="fisher", jit=False):
    apply_fn, p, _, _ = _problem()
    p = p if params is None else params
    step = functools.partial(natgrad.natural_gradient_step, apply_fn, family=family,
                             learning_rate=0.1, damping=0.1, metric=metric, max_iters=2)
    state = natgrad.natural_gradient_init(p, 0.1) if params is None else None
    if jit:
        return jax.jit(step)(p, state, grad_batch, metric_batch)
    return step(p, state, grad_batch, metric_batch)


def test_categorical_nll_refuses_column_labels():
    r = jnp.zeros((N, O))
    with pytest.raises(ValueError, match=r"targets are integer labels of shape \(8, 1\).*"
                                         r"\(8,\) integer labels or \(8, 4\) one-hot"):
        families.Categorical().nll(r, jnp.zeros((N, 1), jnp.int32))


@pytest.mark.parametrize("jit", [False, True])
def test_column_labels_name_grad_batch(jit):
    _, _, x, y = _problem()
    with pytest.raises(ValueError, match=r"grad_batch targets are integer labels of shape \(8, 1\)"):
        _step((x, y[:, None]), jit=jit)


def test_float_labels_are_refused():
    _, _, x, y = _problem()
    with pytest.raises(TypeError, match=r"grad_batch targets of shape \(8,\) .* must be integers"):
        _step((x, y.astype(jnp.float32)))


def test_one_hot_of_the_wrong_width():
    _, _, x, y = _problem()
    with pytest.raises(ValueError, match=r"grad_batch targets have shape \(8, 5\), but the model "
                                         r"has 4 outputs"):
        _step((x, jax.nn.one_hot(y, O + 1)))
    _step((x, jax.nn.one_hot(y, O)))  # the right width passes


def test_targets_of_another_batch_size():
    _, _, x, y = _problem()
    with pytest.raises(ValueError, match=r"grad_batch targets have batch size 7 but its inputs "
                                         r"have 8"):
        _step((x, y[:-1]))


def test_metric_batch_with_another_feature_size():
    _, _, x, y = _problem()
    with pytest.raises(ValueError, match=r"metric_batch inputs have feature shape \(2,\) but "
                                         r"grad_batch inputs have \(3,\)"):
        _step((x, y), (x[:, :2],))


def test_metric_batch_targets_are_checked():
    _, _, x, y = _problem()
    with pytest.raises(ValueError, match=r"metric_batch targets are integer labels of shape"):
        _step((x, y), (x + 1, y[:, None]), metric="empirical_fisher")
    with pytest.raises(ValueError, match=r"metric_batch targets have batch size 4"):
        _step((x, y), (x, y[:4]), metric="empirical_fisher")


@pytest.mark.parametrize("family", [families.Gaussian(1.0), families.Bernoulli()])
def test_family_that_does_not_match_the_output_width(family):
    _, _, x, _ = _problem()
    name = type(family).__name__
    with pytest.raises(ValueError, match=rf"grad_batch targets have shape \(8, 3\) but {name} "
                                         r"needs them shaped like the model's outputs, \(8, 4\)"):
        _step((x, jnp.zeros((N, O - 1))), family=family)


def test_integer_params_are_refused():
    _, params, x, y = _problem()
    int_params = dict(params, b=jnp.zeros(O, jnp.int32))
    with pytest.raises(TypeError, match=r"params\['b'\] has dtype int32"):
        natgrad.natural_gradient_init(int_params)
    with pytest.raises(TypeError, match=r"params\['b'\] has dtype int32"):
        _step((x, y), params=int_params)


def test_grad_batch_must_be_a_pair():
    _, _, x, _ = _problem()
    with pytest.raises(ValueError, match=r"grad_batch must be an \(inputs, targets\) pair"):
        _step((x,))


def test_the_transformation_checks_too():
    apply_fn, params, x, y = _problem()
    tx = natgrad.natural_gradient(apply_fn, families.Categorical(), 0.1, damping=0.1)
    state = tx.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    update = jax.jit(tx.update)
    with pytest.raises(ValueError, match=r"metric_batch inputs have feature shape \(2,\)"):
        update(grads, state, params, metric_batch=x[:, :2], grad_batch=(x, y))
    with pytest.raises(ValueError, match=r"grad_batch targets are integer labels of shape \(8, 1\)"):
        update(grads, state, params, metric_batch=x, grad_batch=(x, y[:, None]))
    with pytest.raises(ValueError, match=r"updates\['w'\] has shape \(4, 3\)"):
        update(dict(grads, w=grads["w"].T), state, params, metric_batch=x)
    with pytest.raises(ValueError, match=r"needs metric_batch"):
        update(grads, state, params)
    updates, _ = update(grads, state, params, metric_batch=x)
    assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(params)
    assert isinstance(optax.apply_updates(params, updates), dict)
