"""Checks shared by the file readers: decoded arrays → float32 images in [0, 1], int32 labels, names.

Every check raises `DataError` naming the file (`where`) and the problem.
"""
from __future__ import annotations

import numpy as np

from natgrad.study.data.types import DIGITS, NIST62, DataError


def class_names(classes, labels, where):
    """Class names from a spec's `classes:` (a count, a list of names, or None to infer 10 or 62)."""
    top = int(labels.max()) if labels.size else -1
    if classes is None:
        names = DIGITS if top < 10 else NIST62 if top < 62 else None
        if names is None:
            raise DataError(f"{where}: labels out of range: max label {top} >= 62; declare "
                            f"`classes:` (a count or a list of names) for the dataset")
        return names
    if isinstance(classes, int):
        return NIST62[:classes] if classes <= 62 else tuple(str(i) for i in range(classes))
    return tuple(str(c) for c in classes)


def check_labelled(images, labels, classes, where):
    """Validate decoded arrays and return them as (float32 images in [0, 1], int32 labels, names)."""
    if images.ndim != 3:
        raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, 1), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{where}: labels must be (N,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{where}: images/labels length mismatch: {len(images)} images but "
                        f"{len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{where}: no examples")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DataError(f"{where}: labels must be integers")
        labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{where}: labels out of range: min label {int(labels.min())} < 0")
    names = class_names(classes, labels, where)
    if labels.max() >= len(names):
        raise DataError(f"{where}: labels out of range: max label {int(labels.max())} >= "
                        f"{len(names)} classes")
    return to_unit_float(images, where), labels.astype(np.int32), names


def to_unit_float(images, where):
    """Pixels as float32 in [0, 1]: integers are divided by 255 (or by their max when larger),
    floats already in [0, 1] are kept and other float ranges are scaled by their min and max."""
    if images.dtype == bool:
        return images.astype(np.float32)
    if np.issubdtype(images.dtype, np.integer):
        lo, hi = int(images.min()), int(images.max())
        if lo < 0:
            return ((images.astype(np.float64) - lo) / max(hi - lo, 1)).astype(np.float32)
        return (images.astype(np.float64) / (255 if hi <= 255 else hi)).astype(np.float32)
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"{where}: unsupported pixel dtype {images.dtype}")
    bad = ~np.isfinite(images)
    if bad.any():
        kind = "NaN" if np.isnan(images).any() else "infinite"
        first = np.argwhere(bad)[0]
        raise DataError(f"{where}: {kind} pixels ({int(bad.sum())} of them; first in image "
                        f"{int(first[0])})")
    lo, hi = float(images.min()), float(images.max())
    if lo >= 0.0 and hi <= 1.0:
        return images.astype(np.float32)
    return ((images.astype(np.float64) - lo) / max(hi - lo, 1e-12)).astype(np.float32)
