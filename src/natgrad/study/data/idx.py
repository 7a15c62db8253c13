"""IDX files (MNIST, EMNIST): gzipped or not, any image size, EMNIST's transposed orientation.

An IDX file is a 4-byte magic number (0, 0, dtype code, number of dimensions), the dimensions as
big-endian uint32, then the data in row-major order, big-endian.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from natgrad.study.data.checks import check_labelled
from natgrad.study.data.types import DataError, Source

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such file") from err
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read ({err}); a truncated or corrupt gzip file?") from err


def read_idx(path):
    """The array stored in one IDX file (gzipped or not)."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated: {len(data)} bytes, not even an IDX header")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in DTYPES or ndim == 0:
        raise DataError(f"{path}: wrong magic number 0x{data[:4].hex()} (an IDX file starts with "
                        f"00 00, a type code in {{08, 09, 0B, 0C, 0D, 0E}} and its number of "
                        f"dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header: {len(data)} bytes for {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise DataError(f"{path}: truncated: {len(data)} bytes, the header {dims} needs {expected}")
    if len(data) > expected:
        raise DataError(f"{path}: {len(data) - expected} bytes after the data the header {dims} "
                        f"describes")
    array = np.frombuffer(data, dtype, count=int(np.prod(dims, dtype=np.int64)), offset=header)
    return array.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_source(images_path, labels_path, *, name="idx", transpose=False, classes=None):
    """A Source from an images IDX file (N, H, W) and a labels IDX file (N,).

    `transpose=True` swaps each image's rows and columns (EMNIST stores its images transposed).
    `classes` is a count or a list of class names; by default 10 digits, or NIST's 62 classes
    0-9A-Za-z when labels go beyond 9 (EMNIST byclass).
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise DataError(f"{images_path}: images must have 3 dimensions (N, H, W), got {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels must have 1 dimension (N,), got {labels.shape}")
    if transpose:
        images = images.transpose(0, 2, 1)
    images, labels, names = check_labelled(np.ascontiguousarray(images), labels,
                                           classes, f"{images_path}, {labels_path}")
    return Source(name, images, labels, names)


def write_idx(path, array):
    """Write `array` as an IDX file (gzipped when `path` ends in .gz); for tests and examples."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}[array.dtype]
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
               + array.astype(np.dtype(DTYPES[code])).tobytes())
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
