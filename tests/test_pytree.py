"""natgrad.pytree: the solvers' and the optimizer's one inner product, against numpy in float64."""
import jax
import jax.numpy as jnp
import numpy as np

from natgrad import pytree


def _tree(rng, dtype):
    """A params-like pytree: one long leaf (a float32 sequential sum would drift), small ones."""
    shapes = {"w1": (2048, 2048), "b1": (2048,), "head": {"w": (2048, 10), "b": (10,)}}
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.uniform(0.0, 1.0, s), dtype), shapes,
                                  is_leaf=lambda s: isinstance(s, tuple))


def _ravel64(tree):
    return np.concatenate([np.asarray(leaf, np.float64).ravel()
                           for leaf in jax.tree_util.tree_leaves(tree)])


def test_vdot_float32_is_accurate_on_long_leaves():
    """4.2M positive float32 products: a sequential float32 accumulation is off by ~1e-3
    relative here; the inner product stays at float32 rounding of the result."""
    rng = np.random.default_rng(0)
    a, b = _tree(rng, jnp.float32), _tree(rng, jnp.float32)
    got = jax.jit(pytree.vdot)(a, b)
    assert got.dtype == jnp.float32 and got.shape == ()
    ref = _ravel64(a) @ _ravel64(b)
    assert abs(float(got) - ref) / ref < 1e-5


def _complex_tree(rng):
    return {k: jnp.asarray(rng.standard_normal(s) + 1j * rng.standard_normal(s))
            for k, s in (("x", (7,)), ("y", (2, 3)))}


def test_vdot_complex_conjugates_first_argument_and_is_real():
    rng = np.random.default_rng(1)
    a, b = _complex_tree(rng), _complex_tree(rng)
    got = pytree.vdot(a, b)
    ref = sum(np.vdot(np.asarray(a[k]), np.asarray(b[k])) for k in a).real
    assert not jnp.iscomplexobj(got)
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)
    np.testing.assert_allclose(float(pytree.norm(a)), np.sqrt(sum(
        np.sum(np.abs(np.asarray(v)) ** 2) for v in a.values())), rtol=1e-5)
