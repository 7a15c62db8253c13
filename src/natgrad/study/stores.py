"""Atomic Zarr stores with provenance: a store is either complete on disk or absent.

Every store is written to a temporary sibling directory and renamed into place, so a job killed
mid-write leaves no half-written store under the final name. Stores are Zarr format 2 with
consolidated metadata, string labels as fixed-width unicode (so `.sel(method="ng")` selects one
label), and the provenance of `natgrad.study.provenance` in their attributes: plain
`xarray.open_zarr(path)` opens them with no warning.
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from natgrad.study.provenance import provenance_attrs


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


def _fixed_width_strings(dataset):
    """String coordinates as fixed-width unicode: Zarr stores them with a stable dtype."""
    import numpy as np

    for name in list(dataset.coords):
        values = dataset[name].values
        if values.dtype.kind in "OUT" or str(values.dtype).startswith("StringDType"):
            dataset = dataset.assign_coords({name: (dataset[name].dims,
                                                    np.array([str(v) for v in values.ravel()])
                                                    .reshape(values.shape))})
    return dataset


def annotate(dataset, variables):
    """Set CF `long_name` and `units` from `variables` = {name: (long_name, units)}."""
    for name, (long_name, units) in variables.items():
        if name in dataset.variables:
            dataset[name].attrs.update(long_name=long_name, units=units)
    return dataset


def write_zarr(dataset, path, config=None):
    """Write an xarray Dataset as a Zarr store at `path`, atomically, with provenance (the code,
    the packages and `config`, the settings that made it)."""
    missing = [name for name in dataset.data_vars
               if not {"long_name", "units"} <= set(dataset[name].attrs)]
    if missing:
        raise ValueError(f"{path}: variables {missing} lack CF long_name/units (stores.annotate)")
    dataset = _fixed_width_strings(dataset)
    dataset.attrs.update(provenance_attrs(config))
    with atomic_path(path) as tmp:
        dataset.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)


def open_results(path):
    """A stored result (any `.zarr` under results/, or its `.done` marker) as an xarray Dataset,
    lazily: `open_results("results/order/order.zarr").variance.sel(method="ng")`. Its attributes
    say what made it: `config` (JSON), `git_commit`, `git_dirty`, `package_versions` (JSON)."""
    import xarray as xr

    path = str(path)
    return xr.open_zarr(path[: -len(".done")] if path.endswith(".done") else path,
                        consolidated=True)


def write_text(text, path):
    """Write a text file (CSV, JSON) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
