"""Atomic Zarr stores with provenance: a store is either complete on disk or absent.

Every store is written to a temporary sibling directory and renamed into place, so a job killed
mid-write leaves no half-written store under the final name.
"""
import contextlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

PROVENANCE_PACKAGES = ("natgrad", "jax", "jaxlib", "flax", "optax", "numpy", "xarray", "zarr")


def package_versions(packages=PROVENANCE_PACKAGES):
    """Versions of the packages that determine the numbers, for a store's attrs."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@contextlib.contextmanager
def atomic_path(final_path):
    """Yield a temporary path beside `final_path`; on success it replaces `final_path` at once."""
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.", suffix=".tmp", dir=final_path.parent))
    target = tmp / final_path.name
    try:
        yield target
        _remove(final_path)
        os.replace(target, final_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_zarr(dataset, path):
    """Write an xarray Dataset as a Zarr store at `path`, atomically."""
    with atomic_path(path) as tmp:
        dataset.to_zarr(tmp, mode="w", consolidated=False)


def open_store(path):
    """A store written by `write_zarr` as an xarray Dataset (lazy), string coordinates as Python
    strings (Zarr returns them in numpy's StringDType, which label selection mishandles)."""
    import warnings

    import numpy as np
    import xarray as xr

    with warnings.catch_warnings():  # snakemake's `.snakemake_timestamp` inside directory outputs
        warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr")
        ds = xr.open_zarr(path, consolidated=False)
    for name in list(ds.coords):
        if ds[name].dtype.kind in "UT" or str(ds[name].dtype).startswith("StringDType"):
            ds = ds.assign_coords({name: np.array([str(v) for v in ds[name].values], object)})
    return ds


def write_text(text, path):
    """Write a text file (CSV, JSON) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
