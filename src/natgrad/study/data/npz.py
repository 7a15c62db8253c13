"""`.npz` sources: arrays `x` (N, H, W) or (N, H, W, 1), any dtype, and `y` (N,)."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from natgrad.study.data.checks import check_labelled
from natgrad.study.data.types import DataError, Source


def read_npz_source(path, *, name="npz", x_key="x", y_key="y", classes=None):
    """A Source from an `.npz` file holding images under `x_key` and labels under `y_key`."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in (x_key, y_key) if k not in archive.files]
            if missing:
                raise DataError(f"{path}: no array named {', '.join(map(repr, missing))} "
                                f"(arrays: {', '.join(archive.files) or 'none'})")
            x, y = archive[x_key], archive[y_key]
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such file") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: cannot read as .npz ({err}); truncated or not an npz file?") from err
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(f"{path}: `{x_key}` must be (N, H, W) or (N, H, W, 1), got {x.shape}")
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    images, labels, names = check_labelled(x, y, classes, path)
    return Source(name, images, labels, names)
