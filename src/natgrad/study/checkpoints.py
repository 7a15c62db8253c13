"""Checkpoints of training jobs: a pytree of arrays plus named arrays, resumed only by the settings
that made them (their `fingerprint`: `natgrad.study.provenance.settings_digest`), never loaded when
damaged.

Each checkpoint is an `.npz` written atomically, with a SHA-256 of its arrays' bytes inside it. The
previous checkpoint is kept as `PATH.prev` until the next one is complete, so a file truncated by a
full disk or a cut copy costs at most one checkpoint interval: `load` verifies the checksum, warns
naming the damaged file and falls back to the previous one, or to a fresh start.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study import stores


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(path, fingerprint, step, tree, extra):
    """Write `tree`'s leaves and the named arrays `extra` at `step`; the last good one → PATH.prev."""
    path = Path(path)
    arrays = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(tree))}
    arrays.update({f"extra_{k}": np.asarray(v) for k, v in extra.items()})
    arrays.update(fingerprint=np.array(fingerprint), step=np.array(step))
    checksum = _digest(arrays)
    if path.exists():
        os.replace(path, f"{path}.prev")
    with stores.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, checksum=np.array(checksum), **arrays)


def _read(path, fingerprint, like):
    """(step, tree, extra) from one file; None when made by other settings; raises when damaged."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "checksum"}
        if str(z["checksum"]) != _digest(arrays):
            raise ValueError("checksum mismatch")
    if str(arrays["fingerprint"]) != fingerprint:
        return None  # made by other settings: start afresh
    treedef = jax.tree_util.tree_structure(like)
    like_leaves = jax.tree_util.tree_leaves(like)
    leaves = [arrays[f"leaf_{i}"] for i in range(len(like_leaves))]
    if any(a.shape != np.shape(b) for a, b in zip(leaves, like_leaves)):
        return None
    tree = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(a, dtype=jnp.asarray(b).dtype) for a, b in zip(leaves, like_leaves)])
    extra = {k[6:]: v for k, v in arrays.items() if k.startswith("extra_")}
    return int(arrays["step"]), tree, extra


def load(path, fingerprint, like, warn):
    """The newest intact checkpoint of these settings as (step, tree, extra), or None.

    `like` gives the tree's structure and dtypes; `warn(message)` is told of every damaged file.
    """
    for candidate in (Path(path), Path(f"{path}.prev")):
        if not candidate.exists():
            continue
        try:
            return _read(candidate, fingerprint, like)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warn(f"warning: checkpoint {candidate} is damaged ({err}); not loaded")
    return None


def remove(path):
    """Delete a job's checkpoints once its results are stored."""
    for candidate in (Path(path), Path(f"{path}.prev")):
        if candidate.exists():
            candidate.unlink()
