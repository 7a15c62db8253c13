"""Restricted data sets: a fixed split, by seed, of one labelled source into four disjoint parts.

- `train`: a small labelled training set (inputs and labels);
- `unlabeled`: a pool of inputs whose labels are dropped here and never returned, so no method can
  read them (the metric of `ng_unlabeled` integrates the targets out, paper eq. 8);
- `valid` and `test`: labelled held-out sets.

The split is a pure function of (number of examples, sizes, seed): the same seed gives the same four
index sets on any machine, whatever method is trained on them.

A deformed split (`deform:`, `restrict_deformed`) splits the *source images* into four disjoint
parts the same way (sizes `deform.sources`) and fills each part with `sizes[part]` NISTP-deformed
samples of its own sources only (`natgrad.study.data.deformed`): every part has the same
distribution, a deformed image of a random source digit, no source image is shared between parts,
and the pool can be far larger than the source it is made from.
"""
from __future__ import annotations

import dataclasses

import numpy as np

PARTS = ("train", "unlabeled", "valid", "test")
DEFORM_TAG = 0xDEF0  # the deformation keys' branch of a seed


@dataclasses.dataclass(frozen=True)
class RestrictedData:
    """The four parts of a restricted data set, as float32 inputs and int32 labels.

    `x_unlabeled` has no labels beside it: the pool's labels are not kept.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_unlabeled: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    def sizes(self):
        return {"train": len(self.x_train), "unlabeled": len(self.x_unlabeled),
                "valid": len(self.x_valid), "test": len(self.x_test)}


def split_counts(n, sizes):
    """The number of examples of each of `PARTS` in a source of `n`: a size in (0, 1) is a fraction
    of `n`, a whole number a count; `unlabeled` None or -1 takes every example the others leave.
    Raises ValueError when the parts do not fit."""
    def count(size):
        return int(round(size * n)) if isinstance(size, float) and 0 < size < 1 else int(size)

    sizes = {part: sizes.get(part, 0) for part in PARTS}
    counts = {p: count(sizes[p]) for p in PARTS if p != "unlabeled"}
    rest = sizes["unlabeled"] in (None, -1)
    counts["unlabeled"] = n - sum(counts.values()) if rest else count(sizes["unlabeled"])
    counts = {p: counts[p] for p in PARTS}
    if any(c < 0 for c in counts.values()) or sum(counts.values()) > n:
        raise ValueError(f"split {counts} needs {sum(max(c, 0) for c in counts.values())} "
                         f"examples, more than the {n} of the data set")
    if counts["train"] < 1 or counts["test"] < 1:
        raise ValueError(f"split {counts} leaves no training or no test example (of {n})")
    return counts


def split_indices(n, sizes, seed):
    """Disjoint index arrays for each of `PARTS` (sizes as `split_counts`), drawn by one
    permutation of `range(n)`."""
    counts = split_counts(n, sizes)
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1A])).permutation(n)
    out, start = {}, 0
    for part in PARTS:
        out[part] = np.sort(order[start:start + counts[part]])
        start += counts[part]
    return out


def restrict(x, y, sizes, seed, num_classes=None):
    """Split labelled arrays `(x, y)` into a `RestrictedData`; `y` is never indexed for the pool."""
    x = np.asarray(x)
    n = len(x)
    idx = split_indices(n, sizes, seed)
    x = x.astype(np.float32, copy=False)

    def labels(part):
        return np.asarray(y[idx[part]]).astype(np.int32)

    if num_classes is None:  # from the labelled parts only: the pool's labels stay unread
        num_classes = 1 + max(int(labels(p).max(initial=0)) for p in ("train", "valid", "test"))

    return RestrictedData(
        x_train=x[idx["train"]], y_train=labels("train"),
        x_unlabeled=x[idx["unlabeled"]],
        x_valid=x[idx["valid"]], y_valid=labels("valid"),
        x_test=x[idx["test"]], y_test=labels("test"),
        num_classes=int(num_classes),
    )


def restrict_source(source, sizes, deform, seed):
    """The restricted data of a labelled `Source` for `seed`: `restrict`, or `restrict_deformed`
    of its images fitted to `deform["image_size"]` when `deform` is set."""
    if not deform:
        return restrict(source.images, source.labels, sizes, seed, num_classes=source.num_classes)
    source = source.resized(deform["image_size"])
    return restrict_deformed(source.images, source.labels, sizes, deform, seed, source.num_classes)


def deformed_counts(n, sizes, deform):
    """`(sources, samples)`: the source images (of `n`) and the deformed samples of each of `PARTS`
    in a deformed split: `deform["sources"]` as `split_counts` reads sizes, `sizes` whole sample
    counts. Raises ValueError naming the part when the sources do not fit the data set or a part's
    samples and sources do not match (samples without a source, sources no sample uses)."""
    try:
        sources = split_counts(n, deform["sources"])
    except ValueError as err:
        raise ValueError(f"deform.sources: {err}") from None
    samples = {}
    for part in PARTS:
        size = sizes.get(part, 0)
        if isinstance(size, float) or size is None or size < 0:
            raise ValueError(f"split.{part} = {size}: a deformed split takes a whole number of "
                             "samples per part (no fraction, no -1)")
        samples[part] = int(size)
        if samples[part] and not sources[part]:
            raise ValueError(f"split.{part} asks {samples[part]} deformed samples of no source "
                             f"image (deform.sources.{part} is 0)")
        if sources[part] > samples[part]:
            raise ValueError(f"deform.sources.{part} = {sources[part]} source images, more than "
                             f"the {samples[part]} samples of split.{part}: some would never be used")
    return sources, samples


def restrict_deformed(images, labels, sizes, deform, seed, num_classes):
    """A `RestrictedData` of NISTP-deformed samples (see the module's docstring): the source images
    `images` (already at the deformation's size) are split by `split_indices(n, deform["sources"],
    seed)`, and part p's `sizes[p]` samples deform its sources only, keys from (seed, p). The
    pool's labels are never indexed."""
    import jax

    from natgrad.study.data.deformed import deformed_samples, source_of

    sources, samples = deformed_counts(len(images), sizes, deform)
    idx = split_indices(len(images), deform["sources"], seed)
    base = jax.random.fold_in(jax.random.PRNGKey(seed), DEFORM_TAG)
    x, y = {}, {}
    for i, part in enumerate(PARTS):
        x[part] = deformed_samples(images[idx[part]], samples[part], jax.random.fold_in(base, i),
                                   preset=deform["preset"], c_max=deform["c_max"])
        if part != "unlabeled":
            picked = idx[part][source_of(samples[part], sources[part])]
            y[part] = np.asarray(labels[picked]).astype(np.int32)
    return RestrictedData(
        x_train=x["train"], y_train=y["train"], x_unlabeled=x["unlabeled"],
        x_valid=x["valid"], y_valid=y["valid"], x_test=x["test"], y_test=y["test"],
        num_classes=int(num_classes))
