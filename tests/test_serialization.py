"""Every state the library makes round-trips through flax.serialization and orbax, and a run
saved halfway resumes bit for bit (the reference: the same run without the save)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import natgrad
from natgrad.economics import PAPER, RECOMMENDED
from natgrad.preconditioners import MartensDiagonal

serialization = pytest.importorskip("flax.serialization")
models = pytest.importorskip("natgrad.models")
kronecker = pytest.importorskip("natgrad.preconditioners.kronecker")

FAMILY = natgrad.families.Categorical()
MODEL = models.MLP(hidden=(6,), outputs=3)


def _problem():
    kx, ky, kp = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, (24, 5))
    y = jax.random.randint(ky, (24,), 0, 3)
    return MODEL.init(kp, x[:1]), x, y


def _plain(settings):
    ng = natgrad.NaturalGradient(MODEL.apply, FAMILY, **settings)
    return ng.init, jax.jit(lambda p, s, b: ng.step(p, s, b)[:2])


def _chain(transform):
    @jax.jit
    def step(p, s, batch):
        grads = jax.grad(natgrad.mean_nll(MODEL.apply, *batch, FAMILY))(p)
        updates, s = transform.update(grads, s, p, grad_batch=batch)
        return optax.apply_updates(p, updates), s
    return transform.init, step


def _functional():
    step = jax.jit(lambda p, s, b: natgrad.natural_gradient_step(
        MODEL.apply, p, s, b, family=FAMILY, learning_rate=0.5)[:2])
    return natgrad.natural_gradient_init, step


FACES = {
    "recommended": lambda: _plain({}),
    "kronecker": lambda: _plain({"economics": dataclasses.replace(
        RECOMMENDED, preconditioner=kronecker.KroneckerFactors())}),
    "martens": lambda: _plain({"learning_rate": 0.5, "economics": dataclasses.replace(
        PAPER, preconditioner=MartensDiagonal())}),
    "natural_gradient_step": _functional,
    "natural_gradient": lambda: _chain(natgrad.natural_gradient(MODEL.apply, FAMILY, 0.5)),
}


def _assert_identical(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.asarray(u).dtype == np.asarray(v).dtype
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("face", FACES)
def test_a_run_saved_with_flax_serialization_resumes_bit_for_bit(face):
    init, step = FACES[face]()
    params, x, y = _problem()
    straight = (params, init(params))
    for _ in range(4):
        straight = step(*straight, (x, y))
    half = (params, init(params))
    for _ in range(2):
        half = step(*half, (x, y))
    target = (params, init(params))  # the structure a new process makes
    resumed = serialization.from_bytes(target, serialization.to_bytes(half))
    _assert_identical(resumed, half)
    for _ in range(2):
        resumed = step(*resumed, (x, y))
    _assert_identical(resumed, straight)


def test_orbax_restores_the_states_as_they_were_saved(tmp_path):
    """A plain step's state (with a warm start and momentum) and an optax chain's: the same
    structures the flax test covers for every face (orbax is slower: two suffice)."""
    ocp = pytest.importorskip("orbax.checkpoint")
    params, x, y = _problem()
    checkpointer = ocp.StandardCheckpointer()
    for name in ("kronecker", "natural_gradient"):
        init, step = FACES[name]()
        saved = step(params, init(params), (x, y))
        checkpointer.save(tmp_path / name, saved)
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(tmp_path / name, (params, init(params)))
        _assert_identical(restored, saved)
        _assert_identical(step(*restored, (x, y)), step(*saved, (x, y)))
