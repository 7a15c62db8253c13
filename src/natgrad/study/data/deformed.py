"""A fixed set of NISTP-deformed samples of given source images, as many as asked.

Sample j of a set deforms source image `j mod n` (of the n given) with the PRNG key
`fold_in(key, j)`, so the sources are used in turn (each `count // n` or one more times) and the set
is a pure function of (images, count, key, preset, c_max). Occluders (preset `p07`) are taken from
the same images, so a set reads no image outside the ones it is given: sets made from disjoint
sources share no source image at all.

As in the stream (`natgrad.study.data.stream`), every set is computed in chunks of one fixed shape
(the last one padded), so a sample's bits do not depend on how many are asked for.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study.data import nistp
from natgrad.study.data.types import DataError

CHUNK = 512


@functools.partial(jax.jit, static_argnames=("preset", "c_max"))
def _deform_chunk(images, key, indices, *, preset, c_max):
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
    return nistp.deform(images[indices % images.shape[0]], keys, preset, c_max, bank=images)


def source_of(count, n):
    """The source image index of each of `count` samples drawn from `n` sources (j mod n)."""
    return np.arange(count, dtype=np.int64) % n


def deformed_samples(images, count, key, *, preset="pnist07", c_max=nistp.C_MAX, chunk=CHUNK):
    """`count` deformed samples (count, S, S) float32 of `images` (n, S, S) in [0, 1]: sample j is
    image `j mod n` deformed with key `fold_in(key, j)`. Its labels are `labels[source_of(count,
    n)]` for a caller that has them."""
    images = np.asarray(images, np.float32)
    if preset not in nistp.PRESETS:
        raise DataError(f"unknown NISTP preset {preset!r} (one of {', '.join(nistp.PRESETS)})")
    if count and not len(images):
        raise DataError(f"{count} deformed samples asked of no source image")
    if count >= 2**32:
        raise DataError(f"{count} deformed samples: at most 2**32 - 1 per set")
    out = np.empty((count,) + images.shape[1:], np.float32)
    if not count:
        return out
    device_images = jnp.asarray(images)
    for start in range(0, count, chunk):
        indices = np.arange(start, start + chunk, dtype=np.int64) % count  # pad: repeat the first
        x = _deform_chunk(device_images, key, jnp.asarray(indices.astype(np.uint32)),
                          preset=preset, c_max=float(c_max))
        stop = min(start + chunk, count)
        out[start:stop] = np.asarray(x[:stop - start])
    return out
