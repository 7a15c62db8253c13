"""Data sets are checked from their headers before any job: missing or damaged files, and splits
that do not fit, are refused in one line naming the config key and the data set's size."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from natgrad.study import config, registry
from natgrad.study.data import DataError
from natgrad.study.data.idx import write_idx
from natgrad.study.data.inspect import dataset_files, source_size

ROOT = Path(__file__).resolve().parents[1]


def idx_pair(tmp_path, n=1200, side=8, zipped=True):
    rng = np.random.default_rng(0)
    paths = {}
    for name, array in (("images", rng.integers(0, 255, (n, side, side), dtype=np.uint8)),
                        ("labels", rng.integers(0, 10, n, dtype=np.uint8))):
        raw = tmp_path / f"{name}.idx"
        write_idx(raw, array)
        if zipped:
            with open(raw, "rb") as f, gzip.open(f"{raw}.gz", "wb") as g:
                g.write(f.read())
            raw = Path(f"{raw}.gz")
        paths[name] = str(raw)
    return paths


@pytest.mark.parametrize("zipped", [True, False])
def test_sizes_come_from_the_headers(tmp_path, zipped):
    paths = idx_pair(tmp_path, zipped=zipped)
    datasets = {"mine": {"format": "idx", **paths}}
    assert source_size("mine", datasets) == 1200
    assert dataset_files("mine", datasets) == {"datasets.mine.images": paths["images"],
                                               "datasets.mine.labels": paths["labels"]}
    assert source_size("digits", {}) == 1797 and dataset_files("digits", {}) == {}
    np.savez(tmp_path / "t.npz", x=np.zeros((30, 4, 4)), y=np.zeros(30, int))
    assert source_size("t", {"t": {"format": "npz", "path": str(tmp_path / "t.npz")}}) == 30


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated"), ("magic", "wrong magic number"), ("missing", "no such file")])
def test_damaged_idx_files_are_named(tmp_path, damage, message):
    paths = idx_pair(tmp_path)
    path = Path(paths["images"])
    if damage == "truncate":
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    elif damage == "magic":
        raw = bytearray(gzip.decompress(path.read_bytes()))
        raw[2] = 0x42
        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.unlink()
    with pytest.raises(DataError, match=message):
        source_size("mine", {"mine": {"format": "idx", **paths}})


def test_npz_without_its_arrays_is_named(tmp_path):
    np.savez(tmp_path / "t.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(DataError, match="no array named 'x', 'y'"):
        source_size("t", {"t": {"format": "npz", "path": str(tmp_path / "t.npz")}})


def resolved(**overfitting):
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"].update(overfitting)
    return registry.resolve(raw)


def test_default_config_fits_a_thousand_example_data_set(tmp_path):
    cfg = resolved(dataset="mine")
    cfg["datasets"]["mine"] = {"format": "idx", **idx_pair(tmp_path, n=1000)}
    registry.check_data(cfg)  # fractions: no error


def test_a_split_that_does_not_fit_names_the_key_the_data_set_and_its_size():
    cfg = resolved(dataset="digits", split={"train": 500, "unlabeled": 2500, "valid": 1000,
                                            "test": 1000})
    with pytest.raises(config.ConfigError,
                       match=r"overfitting.split does not fit dataset digits \(1797 examples\)"):
        registry.check_data(cfg)


def test_a_missing_file_names_the_key(tmp_path):
    cfg = resolved(dataset="mine")
    cfg["datasets"]["mine"] = {"format": "idx", "images": str(tmp_path / "nope.gz"),
                               "labels": str(tmp_path / "nope2.gz")}
    with pytest.raises(config.ConfigError, match="overfitting.dataset = 'mine'.*nope.gz: no such"):
        registry.check_data(cfg)
