"""The types every data reader shares: the labelled `Source`, `DataError`, and image fitting.

Kept apart from the readers (`sources`, `fonts`, `idx`, `npz`) so that they all import it and none
imports another.
"""
from __future__ import annotations

import dataclasses
import string

import numpy as np

DIGITS = tuple(string.digits)
NIST62 = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)


class DataError(ValueError):
    """A data source that cannot be read: the message names the file (or source) and the problem."""


@dataclasses.dataclass(frozen=True, eq=False)
class Source:
    """A labelled image source: `images` (N, H, W) float32 in [0, 1], `labels` (N,) int32 in
    [0, len(classes)), `classes` the class names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple

    def __post_init__(self):
        if self.images.ndim != 3 or len(self.images) != len(self.labels):
            raise DataError(f"{self.name}: images {self.images.shape} and labels "
                            f"{self.labels.shape} do not describe N images (N, H, W) and N labels")

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def image_shape(self):
        return self.images.shape[1:]

    def subset(self, indices, name=None):
        indices = np.asarray(indices)
        return Source(name or self.name, self.images[indices], self.labels[indices], self.classes)

    def resized(self, size):
        """The source with every image fitted to `size` x `size` (see `fit_images`)."""
        if size is None or self.image_shape == (size, size):
            return self
        return Source(self.name, fit_images(self.images, size), self.labels, self.classes)


def fit_images(images, size):
    """Fit (N, H, W) images into `size` x `size`: images already between 3/4 of `size` and `size`
    are padded (centred, with zeros); others are resized, keeping their aspect ratio, so that their
    larger side is 7/8 of `size` (28 of 32, as MNIST inside NIST's 32 x 32), then padded."""
    images = np.asarray(images, np.float32)
    n, h, w = images.shape
    if max(h, w) > size or max(h, w) < 0.75 * size:
        import jax
        import jax.numpy as jnp

        scale = (size * 7 / 8) / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        out = []
        for start in range(0, n, 8192):
            chunk = jnp.asarray(images[start:start + 8192])
            out.append(np.asarray(jax.image.resize(chunk, (len(chunk), nh, nw), "linear",
                                                   antialias=True)))
        images, h, w = np.clip(np.concatenate(out), 0.0, 1.0), nh, nw
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left))).astype(np.float32)
