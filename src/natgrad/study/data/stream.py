"""The NISTP stream: an endless sequence of deformed samples in which sample i is a pure function of
(stream seed, i).

Sample i picks a source image and deforms it with PRNG key `fold_in(PRNGKey(seed), i)`, so it is the
same whether made alone, in a batch of 512 or inside any segment. The order-robustness experiment
cuts the stream into segments of `segment_size` samples; `replace_segment(k, resample_seed)` gives a
stream whose segment k holds fresh samples (keys from `resample_seed`) while every other sample is
bit-identical to this stream's.

Every request is computed in chunks of `chunk` samples (the last one padded) by one compiled
function of fixed shape: XLA may simplify a computation differently for different batch shapes
(a batch of one most of all), which would change the last bits of a sample with the size of the
batch it is made in; with one shape, sample i's bits cannot depend on its company.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study.data import nistp
from natgrad.study.data.types import DataError

RESAMPLE_TAG = 0x5E6D
SOURCE_TAG = 1000          # above the module indices 0..12 used by nistp


@functools.partial(jax.jit, static_argnames=("preset", "c_max", "segment_size"))
def take_samples(images, labels, base_key, replaced, indices, *, preset, c_max, segment_size):
    """Deformed samples `indices` (B,) uint32 of the stream over `images`/`labels`."""
    indices = indices.astype(jnp.uint32)
    fresh = jax.random.fold_in(base_key, RESAMPLE_TAG)

    def key_of(i):
        key = jax.random.fold_in(base_key, i)
        if segment_size is None:
            return key
        seg = (i // jnp.uint32(segment_size)).astype(jnp.int32)
        seed = replaced[jnp.clip(seg, 0, replaced.shape[0] - 1)]
        hit = (seg < replaced.shape[0]) & (seed >= 0)
        alt = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(fresh, seg), seed), i)
        return jnp.where(hit, alt, key)

    keys = jax.vmap(key_of)(indices)
    pick = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, SOURCE_TAG), (), 0,
                                                 images.shape[0]))(keys)
    x = nistp.deform(images[pick], keys, preset, c_max, bank=images)
    return x, labels[pick]


class Stream:
    """Deformed samples of `source` (a Source already at the stream's image size).

    `take(indices)` and `batch(start, size)` return (images (B, S, S) float32 in [0, 1],
    labels (B,) int32) as JAX arrays on the default device. Callers that jit their own loop around
    `take_samples` use `device_images`, `device_labels` and `base_key` directly.
    """

    def __init__(self, source, seed, *, preset="pnist07", c_max=nistp.C_MAX, segment_size=None,
                 replaced=None, chunk=512):
        if preset not in nistp.PRESETS:
            raise DataError(f"unknown NISTP preset {preset!r} (one of {', '.join(nistp.PRESETS)})")
        self.source = source
        self.seed = int(seed)
        self.preset = preset
        self.c_max = float(c_max)
        self.segment_size = None if segment_size is None else int(segment_size)
        self.replaced = dict(replaced or {})
        self.chunk = int(chunk)
        self.device_images = jnp.asarray(source.images)
        self.device_labels = jnp.asarray(source.labels)
        self.base_key = jax.random.PRNGKey(self.seed)

    @property
    def image_size(self):
        return self.source.images.shape[-1]

    @property
    def num_classes(self):
        return self.source.num_classes

    def _replaced_table(self):
        if not self.replaced:
            return jnp.full((1,), -1, jnp.int32)
        n = max(self.replaced) + 1
        table = np.full((1 << (n - 1).bit_length(),), -1, np.int32)      # power of 2: few recompiles
        for seg, seed in self.replaced.items():
            table[seg] = seed
        return jnp.asarray(table)

    def take(self, indices):
        """Samples `indices` (any non-negative integers below 2**32, in any order)."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= 2**32):
            raise DataError("stream indices must be in [0, 2**32)")
        n = len(indices)
        padded = np.resize(indices, -(-max(n, 1) // self.chunk) * self.chunk).astype(np.uint32)
        table = self._replaced_table()
        xs, ys = [], []
        for start in range(0, len(padded), self.chunk):
            x, y = take_samples(self.device_images, self.device_labels, self.base_key, table,
                         jnp.asarray(padded[start:start + self.chunk]), preset=self.preset,
                         c_max=self.c_max, segment_size=self.segment_size)
            xs.append(x)
            ys.append(y)
        x, y = (xs[0], ys[0]) if len(xs) == 1 else (jnp.concatenate(xs), jnp.concatenate(ys))
        return x[:n], y[:n]

    def batch(self, start, size):
        """Samples start .. start+size-1."""
        return self.take(np.arange(start, start + size, dtype=np.int64))

    def batches(self, start, stop, batch_size):
        """Consecutive batches covering samples start .. stop-1 (the last one may be shorter)."""
        for s in range(start, stop, batch_size):
            yield self.batch(s, min(batch_size, stop - s))

    def segment_range(self, segment):
        if self.segment_size is None:
            raise DataError("this stream has no segments (segment_size is None)")
        return segment * self.segment_size, (segment + 1) * self.segment_size

    def replace_segment(self, segment, resample_seed):
        """A stream equal to this one except segment `segment`, which holds fresh samples drawn
        from `resample_seed` (>= 0); other segments stay bit-identical."""
        if self.segment_size is None:
            raise DataError("replace_segment needs a stream made with segment_size")
        if segment < 0 or resample_seed < 0:
            raise DataError("segment and resample_seed must be >= 0")
        return Stream(self.source, self.seed, preset=self.preset, c_max=self.c_max,
                      segment_size=self.segment_size, chunk=self.chunk,
                      replaced={**self.replaced, int(segment): int(resample_seed)})


def make_stream(source, *, seed, preset="pnist07", c_max=nistp.C_MAX, image_size=32,
                segment_size=None, replaced=None, chunk=512):
    """A Stream over `source` fitted to `image_size` (see `sources.fit_images`)."""
    return Stream(source.resized(image_size), seed, preset=preset, c_max=c_max,
                  segment_size=segment_size, replaced=replaced, chunk=chunk)
