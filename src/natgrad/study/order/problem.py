"""The order experiment's data: its split of the source, the stores the data rule writes, and the
training problem a run reads from them.

`write_data_sets` (the data rule) splits the source named by `order.dataset` once, by
`order.data_seed`, into disjoint train / held-out / validation parts (`heldout_fraction`,
`validation_fraction` of the source; the train part takes the rest), each fitted to `image_size`,
and writes three stores: the clean train part the training stream deforms, and `heldout_size` /
`validation_size` deformed samples of the other two parts (so no source image of theirs is ever
seen in training). `load_problem` (every training job) reads those stores and nothing else.

The compiled training program reads the stream through `sample(data, positions, segment,
resample)`, which replaces segment `segment` by resample `resample`'s fresh samples exactly as
`Stream.replace_segment(segment, resample)` does; `segment` and `resample` are traced, so every job
of a method runs one compiled program and the resamples of a segment can be vmapped. A run of seed
s reads `Problem.data_for_seed(s)`: its stream and resamples are drawn from the data seed and s.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from natgrad.study import stores
from natgrad.study.data import Source, load_source, make_stream, partition
from natgrad.study.data.stream import take_samples
from natgrad.study.order import spec as spec_lib

#: Length of the replaced-segment table of the compiled sampler: segments 0 .. 63 are replaced by
#: one and the same program (a larger table only for longer studies).
TABLE_SIZE = 64
PARTS = ("train", "heldout", "validation")


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """The data of the experiment as a run sees it.

    sample: jittable `sample(data, positions, segment, resample) -> (x (B, D) float32, y (B,) int32)`:
        the samples at run positions `positions` (B,) of the stream whose segment `segment` (a
        traced int32) holds resample `resample`'s fresh samples (`resample` may be traced).
    data: the arrays `sample` reads (a pytree), passed to the compiled program as arguments (never
        baked into it as constants).
    x_validation, y_validation: the validation set (for the validation-error curve).
    x_heldout: the held-out inputs whose output probabilities a run stores at the end.
    num_classes: outputs of the network.
    """

    sample: Callable
    data: object
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_heldout: np.ndarray
    num_classes: int

    def data_for_seed(self, seed):
        """The arrays `sample` reads in a run of seed `seed`: the stream's key folded with the
        seed, so that each seed draws its own stream and its own resamples (what the interval
        over seeds should cover); the held-out and validation sets are the same for every seed."""
        import jax

        return {**self.data, "key": jax.random.fold_in(self.data["key"], int(seed))}


def split_source(source, cfg):
    """`{train, heldout, validation}` parts of `source`, disjoint, by `cfg["data_seed"]`, fitted
    to `cfg["image_size"]`."""
    parts = partition(source, {"heldout": float(cfg["heldout_fraction"]),
                               "validation": float(cfg["validation_fraction"]), "train": None},
                      seed=cfg["data_seed"])
    return {part: parts[part].resized(int(cfg["image_size"])) for part in PARTS}


def deformed_set(part_source, cfg, seed, size, part, batch=4096):
    """An xarray Dataset of `size` deformed samples of `part_source` from stream `seed`."""

    stream = make_stream(part_source, seed=seed, preset=cfg["preset"], c_max=cfg["c_max"],
                         image_size=cfg["image_size"])
    images = np.empty((size, cfg["image_size"], cfg["image_size"]), np.float32)
    labels = np.empty((size,), np.int32)
    for start in range(0, size, batch):
        x, y = stream.batch(start, min(batch, size - start))
        images[start:start + len(y)] = np.asarray(x)
        labels[start:start + len(y)] = np.asarray(y)
    return _images_dataset(images, labels, part_source, cfg, part,
                           {"seed": int(seed), "source_examples": int(len(part_source))})


def _images_dataset(images, labels, source, cfg, part, extra):
    import xarray as xr

    ds = xr.Dataset(
        {"images": (("sample", "row", "col"), images), "labels": (("sample",), labels)},
        coords={"sample": np.arange(len(labels), dtype=np.int64)},
        attrs={"part": part, "source": cfg["dataset"], "preset": cfg["preset"],
               "c_max": float(cfg["c_max"]), "image_size": int(cfg["image_size"]),
               "data_seed": int(cfg["data_seed"]), "classes": list(source.classes), **extra})
    return stores.annotate(ds, {"images": ("pixel intensities in [0, 1]", "1"),
                                "labels": ("class index into attrs['classes']", "1")})


def write_data_sets(cfg, datasets, paths):
    """The data rule: split the source once and write the stores `paths` = {train, heldout,
    validation} (see the module docstring)."""
    source = load_source(cfg["dataset"], datasets, seed=cfg["data_seed"])
    parts = split_source(source, cfg)
    seeds = spec_lib.stream_seeds(cfg["data_seed"])
    train = parts["train"]
    stores.write_zarr(_images_dataset(train.images, train.labels, train, cfg, "train",
                                      {"deformed": 0}), paths["train"], config=cfg)
    for part, size in (("heldout", cfg["heldout_size"]), ("validation", cfg["validation_size"])):
        stores.write_zarr(deformed_set(parts[part], cfg, seeds[part], int(size), part),
                          paths[part], config=cfg)


def read_set(path):
    """A data store as (images (N, S, S) float32, labels (N,) int32, attrs)."""
    ds = stores.open_results(path)
    return ds["images"].values, ds["labels"].values, dict(ds.attrs)


def load_problem(job_cfg, paths, max_segment=TABLE_SIZE - 1):
    """The `Problem` of a training job from the data rule's stores `paths` = {train, heldout,
    validation}."""
    import jax.numpy as jnp

    images, labels, attrs = read_set(paths["train"])
    train = Source(attrs["source"], images, labels, tuple(attrs["classes"]))
    stream = make_stream(train, seed=spec_lib.stream_seeds(job_cfg["data_seed"])["train"],
                         preset=job_cfg["preset"], c_max=job_cfg["c_max"],
                         image_size=job_cfg["image_size"], segment_size=job_cfg["segment_size"])
    preset, c_max, seg_size = stream.preset, stream.c_max, stream.segment_size
    data = {"images": stream.device_images, "labels": stream.device_labels, "key": stream.base_key}
    table_size = max(TABLE_SIZE, 1 << int(max_segment).bit_length())

    def sample(data, positions, segment, resample):
        table = jnp.full((table_size,), -1, jnp.int32).at[segment].set(resample)
        x, y = take_samples(data["images"], data["labels"], data["key"], table,
                            positions.astype(jnp.uint32), preset=preset, c_max=c_max,
                            segment_size=seg_size)
        return x.reshape(x.shape[0], -1), y.astype(jnp.int32)

    xv, yv, _ = read_set(paths["validation"])
    xh, _, _ = read_set(paths["heldout"])
    return Problem(sample=sample, data=data,
                   x_validation=np.asarray(xv, np.float32).reshape(len(xv), -1),
                   y_validation=np.asarray(yv, np.int32),
                   x_heldout=np.asarray(xh, np.float32).reshape(len(xh), -1),
                   num_classes=stream.num_classes)
