"""NISTP modules and presets: shapes, dtype, range, determinism, and each module's effect."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from natgrad.study.data import load_source, nistp

N = 16


@pytest.fixture(scope="module")
def batch():
    source = load_source("mnist5k", seed=0, image_size=32)
    images = jnp.asarray(source.images[:N])
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(jnp.arange(N))
    return images, keys, jnp.asarray(source.images[N:N + 32])


def test_thirteen_modules_in_order():
    assert nistp.ORDER == ("slant", "thickness", "affine", "elastic", "motion_blur_pinch",
                           "scratches", "occlusion", "pixel_permutation", "gaussian_noise",
                           "background", "salt_pepper", "gaussian_smudge", "contrast")
    assert nistp.PRESETS["pnist07"] == ("slant", "thickness", "affine", "elastic")
    assert nistp.PRESETS["p07"] == nistp.ORDER
    probs = {n: nistp.MODULES[n].prob for n in nistp.ORDER}
    assert probs["scratches"] == 0.15 and probs["occlusion"] == 0.4
    assert probs["pixel_permutation"] == 0.2 and probs["gaussian_noise"] == 0.3
    assert probs["salt_pepper"] == 0.25 and probs["gaussian_smudge"] == 0.25


@pytest.mark.parametrize("name", nistp.ORDER)
def test_each_module_changes_images(batch, name):
    images, keys, bank = batch
    f = jax.jit(lambda x, k, c: nistp.apply_module(name, x, k, c, bank=bank))
    out = f(images, keys, jnp.float32(0.5))
    assert out.shape == images.shape and out.dtype == jnp.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    changed = np.abs(np.asarray(out) - np.asarray(images)).reshape(N, -1).max(axis=1)
    assert (changed > 1e-3).sum() >= N // 2, f"{name} changed only {(changed > 1e-3).sum()} of {N}"
    assert float(jnp.abs(out - images).mean()) > 1e-3
    zero = f(images, keys, jnp.float32(0.0))
    if name in ("slant", "thickness", "affine", "elastic", "pixel_permutation", "gaussian_noise",
                "salt_pepper", "background"):
        assert np.allclose(np.asarray(zero), np.asarray(images), atol=1e-5), name


@pytest.mark.parametrize("preset", ["pnist07", "p07"])
def test_presets_deterministic_and_in_range(batch, preset):
    images, keys, bank = batch
    f = jax.jit(lambda x, k: nistp.deform(x, k, preset, 0.7, bank=bank))
    a, b = np.asarray(f(images, keys)), np.asarray(f(images, keys))
    assert a.shape == (N, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    other = np.asarray(f(images, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)))
    assert not np.array_equal(a, other)
    # a sample depends on its own key only: reversing the batch reverses the result
    rev = np.asarray(f(images[::-1], keys[::-1]))
    assert np.allclose(rev[::-1], a, atol=1e-6)


def test_c_max_zero_leaves_pnist07_identity(batch):
    images, keys, _ = batch
    out = jax.jit(lambda x, k: nistp.deform(x, k, "pnist07", 0.0))(images, keys)
    assert np.allclose(np.asarray(out), np.asarray(images), atol=1e-5)


def test_other_sizes(batch):
    images, keys, _ = batch
    small = images[:, 4:28, 4:28]
    out = jax.jit(lambda x, k: nistp.deform(x, k, "pnist07", 0.7))(small, keys)
    assert out.shape == (N, 24, 24) and float(out.max()) <= 1.0
