"""`natgrad.step_info_of`: the StepInfo of the optax face, wherever optax's wrappers put it."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import natgrad

FAMILY = natgrad.families.Categorical()


def _apply(params, x):
    return x @ params["w"] + params["b"]


def test_step_info_of_finds_the_transformations_info_inside_optax_wrappers():
    kx, ky = jax.random.split(jax.random.key(0))
    x, y = jax.random.normal(kx, (16, 4)), jax.random.randint(ky, (16,), 0, 3)
    params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}
    grads = jax.grad(natgrad.mean_nll(_apply, x, y, FAMILY))(params)
    wrapped = {
        "chain": optax.chain(optax.clip_by_global_norm(10.0),
                             natgrad.natural_gradient(_apply, FAMILY, 0.5, damping=0.1)),
        "injected": optax.inject_hyperparams(natgrad.natural_gradient, static_args="apply_fn")(
            _apply, FAMILY, learning_rate=0.5, damping=0.1),
        "multisteps": optax.MultiSteps(natgrad.natural_gradient(_apply, FAMILY, 0.5, damping=0.1),
                                       every_k_schedule=1),
    }
    for name, tx in wrapped.items():
        _, state = tx.update(grads, tx.init(params), params, grad_batch=(x, y))
        info = natgrad.step_info_of(state)
        assert int(info.iterations) >= 1, name
        # the norm of the gradient the transformation was handed, computed here by hand
        expected = np.sqrt(sum(float(jnp.sum(g * g)) for g in jax.tree_util.tree_leaves(grads)))
        np.testing.assert_allclose(float(info.grad_norm), expected, rtol=1e-5, err_msg=name)
        assert float(info.damping) == pytest.approx(0.1), name
    with pytest.raises(ValueError, match="exactly one natgrad transformation's state.*found 0"):
        natgrad.step_info_of(optax.adam(1e-3).init(params))
