"""The NISTP pipeline: per-sample parameters from per-sample keys, then the modules in order on the
batch, consecutive geometric modules fused into one sampling grid."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from natgrad.study.data.nistp.sampling import bilinear, grid, materialize, nearest


def _module_table():
    from natgrad.study.data.nistp import MODULES, ORDER, PRESETS

    return MODULES, ORDER, PRESETS


def draw_parameters(module, index, keys, c_max, size, bank_size, complexity=None, force=False):
    """Per-sample (c, applied, params) of `module` from each sample's key (vmapped)."""

    def one(key):
        key = jax.random.fold_in(key, index)
        k_c, k_on, k_p = jax.random.split(key, 3)
        c = (jax.random.uniform(k_c, (), maxval=1.0) * c_max if complexity is None
             else jnp.asarray(complexity, jnp.float32))
        on = jnp.bool_(True) if (force or module.prob >= 1.0) else jax.random.uniform(k_on, ()) < module.prob
        return c, on, module.draw(k_p, c, size, bank_size)

    return jax.vmap(one)(keys)


def _flush(images, pending):
    """Apply the pending geometric modules (in order) as one sampling grid."""
    if not pending:
        return images
    ys, xs = grid(images.shape[-1])
    ys = jnp.broadcast_to(ys, images.shape)
    xs = jnp.broadcast_to(xs, images.shape)
    integer = all(m.integer for m, _, _ in pending)
    for module, on, params in reversed(pending):       # the last module reads the output grid
        ny, nx = module.coords(params, ys, xs)
        if module.prob < 1.0:
            ny = jnp.where(on[:, None, None], ny, ys)
            nx = jnp.where(on[:, None, None], nx, xs)
        ys, xs = ny, nx
    return nearest(images, ys, xs) if integer else bilinear(images, ys, xs)


def _fusable(pending, module):
    if not pending:
        return True
    last = pending[-1][0]
    if last.grid_only or last.apply is not None:
        return False
    return all(m.integer for m, _, _ in pending) == module.integer


def run(images, keys, names, *, c_max=0.7, bank=None, complexity=None, force=False):
    modules, order, _ = _module_table()
    images = jnp.asarray(images, jnp.float32)
    size = images.shape[-1]
    bank_size = 0 if bank is None else bank.shape[0]
    ctx = {"bank": bank}
    pending = []
    computed = False          # images is the output of a module (not yet in memory)

    def barrier(x):
        return materialize(x) if computed else x

    for name in names:
        module = modules[name]
        _, on, params = draw_parameters(module, order.index(name), keys, c_max, size, bank_size,
                              complexity, force)
        if module.coords is not None:
            if not _fusable(pending, module):
                images, pending, computed = _flush(barrier(images), pending), [], True
            pending.append((module, on, params))
        if module.apply is not None:
            if pending:
                images, pending, computed = _flush(barrier(images), pending), [], True
            if module.many_reads:
                images, computed = barrier(images), False
            new = module.apply(images, params, ctx)
            images = new if module.prob >= 1.0 and not force else jnp.where(on[:, None, None], new, images)
            # in memory after every pixel module: long fused chains of them measured slower
            images, computed = materialize(images), False
    if pending:
        images = _flush(barrier(images), pending)
    return jnp.clip(images, 0.0, 1.0)


def deform(images, keys, preset="pnist07", c_max=0.7, *, bank=None):
    """Deform `images` (B, S, S) in [0, 1] with the modules of `preset` ("pnist07", "p07" or a list
    of module names); `keys` (B, 2) are the samples' PRNG keys; `bank` (M, S, S), optional, is the
    material occluders are taken from (default: each image's own mirror image)."""
    _, _, presets = _module_table()
    names = presets[preset] if isinstance(preset, str) else tuple(preset)
    return run(images, keys, names, c_max=c_max, bank=bank)


def apply_module(name, images, keys, complexity, *, bank=None):
    """One module alone, always applied, at a fixed complexity (for the sheet and the tests)."""
    return run(images, keys, (name,), c_max=complexity, bank=bank, complexity=complexity, force=True)
