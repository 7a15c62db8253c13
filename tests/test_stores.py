"""Stores open cleanly and say what made them; checkpoints are never loaded when damaged."""
import json
import warnings

import numpy as np
import pytest
import xarray as xr

from natgrad.study import checkpoints, open_results, stores


def small_dataset():
    ds = xr.Dataset({"error": (("optimizer", "segment"), np.arange(6.0).reshape(2, 3))},
                    coords={"optimizer": np.array(["msgd", "ng"], object), "segment": [0, 1, 2]})
    return stores.annotate(ds, {"error": ("test error", "%")})


def test_store_opens_without_warnings_and_selects_one_label(tmp_path):
    path = tmp_path / "s.zarr"
    stores.write_zarr(small_dataset(), path, config={"lr": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(path)
        again = open_results(f"{path}.done")
    assert ds["error"].sel(optimizer="ng").dims == ("segment",)
    np.testing.assert_array_equal(ds["error"].sel(optimizer="ng").values, [3.0, 4.0, 5.0])
    assert float(ds["error"].sel(optimizer="msgd", segment=2)) == 2.0
    assert again["error"].attrs == {"long_name": "test error", "units": "%"}
    assert json.loads(ds.attrs["config"]) == {"lr": 1}
    versions = json.loads(ds.attrs["package_versions"])
    assert {"natgrad", "jax", "kfac-jax", "optax"} <= set(versions)
    assert ds.attrs["git_dirty"] in ("true", "false", "unknown") and ds.attrs["git_commit"]


def test_a_variable_without_units_is_refused(tmp_path):
    ds = small_dataset()
    ds["other"] = (("optimizer", "segment"), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="other"):
        stores.write_zarr(ds, tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def tree():
    return {"w": np.arange(4.0, dtype=np.float32), "b": np.ones((2, 2), np.float32)}


def test_checkpoint_round_trip_and_other_settings(tmp_path):
    path = tmp_path / "c.npz"
    checkpoints.save(path, "abc", 7, tree(), {"rows": np.eye(2)})
    step, restored, extra = checkpoints.load(path, "abc", tree(), pytest.fail)
    assert step == 7
    np.testing.assert_array_equal(restored["w"], tree()["w"])
    np.testing.assert_array_equal(extra["rows"], np.eye(2))
    assert checkpoints.load(path, "other settings", tree(), pytest.fail) is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_checkpoint_falls_back_to_the_previous_one_with_a_warning(tmp_path, damage):
    path = tmp_path / "c.npz"
    checkpoints.save(path, "abc", 4, tree(), {})
    later = {k: v + 1 for k, v in tree().items()}
    checkpoints.save(path, "abc", 8, later, {})
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    else:  # one flipped bit inside an array: only the checksum sees it
        start = data.index(np.float32(2.0).tobytes())
        path.write_bytes(data[:start] + bytes([data[start] ^ 1]) + data[start + 1:])
    warned = []
    step, restored, _ = checkpoints.load(path, "abc", tree(), warned.append)
    assert step == 4 and len(warned) == 1 and str(path) in warned[0]
    np.testing.assert_array_equal(restored["w"], tree()["w"])
    # both damaged: a fresh start, never garbage
    (tmp_path / "c.npz.prev").write_bytes(b"not a checkpoint")
    assert checkpoints.load(path, "abc", tree(), warned.append) is None
    assert len(warned) == 3
