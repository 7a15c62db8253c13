"""Every face of the library trains from its defaults on minibatches (docs/training_loop.md's
table of defaults): none defaults to λ = 0, and the faces that cannot reject keep λ ≥ 0.1."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import natgrad
from natgrad.damping import LevenbergMarquardt
from natgrad.state import DampingTag

FAMILY = natgrad.families.Categorical()
STEPS, BATCH = 40, 128


def _apply(params, x):
    (w1, b1), (w2, b2) = params
    return jnp.tanh(x @ w1 + b1) @ w2 + b2


def _problem():
    """512 inputs labelled by a random teacher network (a problem a 16-32-4 MLP can fit), a
    student from another key, and the minibatch order."""
    kx, kt, ks = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(kx, (512, 16))

    def layers(key, scale):
        k1, k2 = jax.random.split(key)
        return [(scale * jax.random.normal(k1, (16, 32)) / 4.0, jnp.zeros(32)),
                (scale * jax.random.normal(k2, (32, 4)) / np.sqrt(32), jnp.zeros(4))]

    y = jnp.argmax(_apply(layers(kt, 3.0), x), axis=-1)
    order = np.random.default_rng(0).permutation(np.tile(np.arange(512), STEPS * BATCH // 512))
    return layers(ks, 1.0), x, y, jnp.asarray(order.reshape(STEPS, BATCH))


def _plain_step(p, s, xb, yb):
    return natgrad.natural_gradient_step(_apply, p, s, (xb, yb), family=FAMILY,
                                         learning_rate=0.5)[:2]


def _chain(transform):
    def step(p, s, xb, yb):
        grads = jax.grad(natgrad.mean_nll(_apply, xb, yb, FAMILY))(p)
        updates, s = transform.update(grads, s, p, grad_batch=(xb, yb))
        return optax.apply_updates(p, updates), s
    return transform.init, step


def _face(name):
    """(init(params) -> state, step(params, state, x, y) -> (params, state)) of a face, each from
    its defaults (a learning rate of 0.5 where one is required)."""
    if name == "NaturalGradient.step":
        ng = natgrad.NaturalGradient(_apply, FAMILY)
        return ng.init, lambda p, s, xb, yb: ng.step(p, s, (xb, yb))[:2]
    if name == "NaturalGradient.optax":
        return _chain(natgrad.NaturalGradient(_apply, FAMILY, learning_rate=0.5).optax())
    if name == "NaturalGradient.scale_by":
        return _chain(optax.chain(natgrad.NaturalGradient(_apply, FAMILY).scale_by(),
                                  optax.scale(-0.5)))
    if name == "natural_gradient_step":
        return natgrad.natural_gradient_init, _plain_step
    if name == "natural_gradient":
        return _chain(natgrad.natural_gradient(_apply, FAMILY, 0.5))
    return _chain(optax.chain(natgrad.scale_by_natural_gradient(_apply, FAMILY),
                              optax.scale(-0.5)))


@pytest.mark.parametrize("name", ["NaturalGradient.step", "NaturalGradient.optax",
                                  "NaturalGradient.scale_by", "natural_gradient_step",
                                  "natural_gradient", "scale_by_natural_gradient"])
def test_every_face_trains_on_minibatches_from_its_defaults(name):
    params, x, y, order = _problem()
    init, step = _face(name)
    full = natgrad.mean_nll(_apply, x, y, FAMILY)

    @jax.jit
    def train(params):
        def body(carry, i):
            return step(*carry, x[i], y[i]), None
        (params, _), _ = jax.lax.scan(body, (params, init(params)), order)
        return params

    start, end = float(full(params)), float(full(train(params)))
    assert np.isfinite(end) and end < 0.5 * start, (name, start, end)


def test_the_plain_faces_default_to_the_floored_levenberg_marquardt_rule():
    """The documented defaults: the economics' damping, never λ = 0."""
    params, *_ = _problem()
    assert natgrad.economics.PAPER.damping == LevenbergMarquardt(1.0, minimum=0.1)
    state = natgrad.natural_gradient_init(params)
    assert float(state.damping) == 1.0
    assert state.rule == DampingTag.of(natgrad.economics.SAFE_DAMPING)
