"""Data sources: embedded sources, the IDX and npz readers on files written here, and bad files."""
import gzip
import itertools
import subprocess
import sys

import numpy as np
import pytest

from natgrad.study.data import DataError, dataset_spec, load_source, partition
from natgrad.study.data.idx import read_idx, read_idx_source, write_idx
from natgrad.study.data.npz import read_npz_source
from natgrad.study.data.types import fit_images
from natgrad.study.order.problem import split_source


def _images(n=12, h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _check(source, n, shape):
    assert source.images.shape == (n,) + shape
    assert source.images.dtype == np.float32 and source.labels.dtype == np.int32
    assert 0.0 <= source.images.min() and source.images.max() <= 1.0
    assert 0 <= source.labels.min() and source.labels.max() < source.num_classes


def test_embedded_sources():
    mnist = load_source("mnist5k", seed=1)                    # embedded: needs no entry
    _check(mnist, 5000, (28, 28))
    assert np.bincount(mnist.labels).tolist() == [500] * 10
    assert len(set(mnist.labels[:50].tolist())) > 5            # shuffled, not sorted by class
    again = load_source("mnist5k", {"mnist5k": {"format": "mnist5k"}}, seed=1)
    assert np.array_equal(again.labels, mnist.labels)
    digits = load_source("digits", image_size=32)
    _check(digits, 1797, (32, 32))
    datasets = {"fonts": {"format": "fonts", "fonts": ["DejaVuSans.ttf", "cmr10.ttf"]},
                "digits": {"format": "digits"}}
    fonts = load_source("fonts", datasets)
    _check(fonts, 124, (32, 32))
    assert fonts.num_classes == 62 and fonts.classes[10] == "A" and fonts.classes[36] == "a"
    assert dataset_spec("fonts", datasets) == datasets["fonts"]
    assert dataset_spec("mnist5k", datasets) == {"format": "mnist5k"}
    with pytest.raises(DataError, match="'mine' is not declared"):
        load_source("mine", datasets)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip_any_size(tmp_path, suffix):
    x, y = _images(h=20, w=24)
    write_idx(tmp_path / f"x{suffix}", x)
    write_idx(tmp_path / f"y{suffix}", y)
    if suffix:
        assert (tmp_path / f"x{suffix}").read_bytes()[:2] == b"\x1f\x8b"
    source = read_idx_source(tmp_path / f"x{suffix}", tmp_path / f"y{suffix}")
    _check(source, 12, (20, 24))
    assert np.allclose(source.images, x / 255.0)
    transposed = read_idx_source(tmp_path / f"x{suffix}", tmp_path / f"y{suffix}", transpose=True)
    assert transposed.images.shape == (12, 24, 20)
    assert np.array_equal(transposed.images[3], source.images[3].T)
    via_config = load_source("mine", {"mine": {"format": "idx", "images": str(tmp_path / f"x{suffix}"),
                                               "labels": str(tmp_path / f"y{suffix}")}},
                             image_size=32)
    _check(via_config, 12, (32, 32))


def test_idx_float_and_emnist_classes(tmp_path):
    x = np.random.default_rng(0).random((5, 9, 9)).astype(np.float32) * 3
    write_idx(tmp_path / "x", x)
    write_idx(tmp_path / "y", np.array([0, 61, 5, 10, 3], np.uint8))
    source = read_idx_source(tmp_path / "x", tmp_path / "y")
    assert source.num_classes == 62
    assert source.images.max() <= 1.0


def _bad(tmp_path, name, payload, gz=False):
    path = tmp_path / name
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _error(fn, *args, match, path, **kw):
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert str(path) in message, message
    assert match in message, message


def test_idx_bad_files(tmp_path):
    x, y = _images()
    write_idx(tmp_path / "x", x)
    write_idx(tmp_path / "y", y)
    good = (tmp_path / "x").read_bytes()
    bad = _bad(tmp_path, "magic", b"\x08\x03" + good[2:])
    _error(read_idx, bad, match="wrong magic number", path=bad)
    cut = _bad(tmp_path, "cut.gz", good[:-100], gz=True)
    _error(read_idx, cut, match="truncated", path=cut)
    stub = _bad(tmp_path, "stub", good[:3])
    _error(read_idx, stub, match="truncated", path=stub)
    broken_gz = tmp_path / "broken.gz"
    write_idx(broken_gz, x)
    broken_gz.write_bytes(broken_gz.read_bytes()[:40])
    _error(read_idx, broken_gz, match="truncated", path=broken_gz)
    write_idx(tmp_path / "y_short", y[:-1])
    _error(read_idx_source, tmp_path / "x", tmp_path / "y_short", match="length mismatch",
           path=tmp_path / "y_short")
    write_idx(tmp_path / "y_big", np.where(np.arange(12) == 4, 99, y).astype(np.uint8))
    _error(read_idx_source, tmp_path / "x", tmp_path / "y_big", match="labels out of range",
           path=tmp_path / "y_big")
    write_idx(tmp_path / "y_nine", np.full(12, 9, np.uint8))
    _error(read_idx_source, tmp_path / "x", tmp_path / "y_nine", classes=5,
           match="labels out of range", path=tmp_path / "y_nine")
    nan = np.random.default_rng(1).random((4, 6, 6)).astype(np.float32)
    nan[2, 3, 3] = np.nan
    write_idx(tmp_path / "x_nan", nan)
    write_idx(tmp_path / "y4", np.zeros(4, np.uint8))
    _error(read_idx_source, tmp_path / "x_nan", tmp_path / "y4", match="NaN pixels",
           path=tmp_path / "x_nan")
    _error(read_idx, tmp_path / "missing", match="no such file", path=tmp_path / "missing")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float64, np.float32, bool])
def test_npz_any_dtype_and_channel_axis(tmp_path, dtype):
    rng = np.random.default_rng(0)
    x = (rng.random((7, 16, 12, 1)) * (300 if dtype == np.uint16 else 200)).astype(dtype)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(7) % 3)
    source = read_npz_source(path)
    _check(source, 7, (16, 12))


def test_npz_bad_files(tmp_path):
    x = np.random.default_rng(0).random((6, 10, 10)).astype(np.float32)
    p = tmp_path / "mismatch.npz"
    np.savez(p, x=x, y=np.zeros(5, int))
    _error(read_npz_source, p, match="length mismatch", path=p)
    p = tmp_path / "range.npz"
    np.savez(p, x=x, y=np.array([0, 1, 2, 3, 4, -1]))
    _error(read_npz_source, p, match="labels out of range", path=p)
    p = tmp_path / "range2.npz"
    np.savez(p, x=x, y=np.array([0, 1, 2, 3, 4, 5]))
    _error(read_npz_source, p, classes=3, match="labels out of range", path=p)
    p = tmp_path / "nan.npz"
    bad = x.copy()
    bad[1, 2, 3] = np.nan
    np.savez(p, x=bad, y=np.zeros(6, int))
    _error(read_npz_source, p, match="NaN pixels", path=p)
    p = tmp_path / "cut.npz"
    np.savez(tmp_path / "full.npz", x=x, y=np.zeros(6, int))
    p.write_bytes((tmp_path / "full.npz").read_bytes()[:300])
    _error(read_npz_source, p, match="cannot read", path=p)
    p = tmp_path / "names.npz"
    np.savez(p, images=x, y=np.zeros(6, int))
    _error(read_npz_source, p, match="no array named 'x'", path=p)
    p = tmp_path / "shape.npz"
    np.savez(p, x=x[:, :, :, None].repeat(3, -1), y=np.zeros(6, int))
    _error(read_npz_source, p, match="(N, H, W)", path=p)


def test_fit_images_pads_or_resizes():
    assert fit_images(np.ones((2, 28, 28)), 32).shape == (2, 32, 32)
    small = fit_images(np.ones((2, 8, 8)), 32)
    assert small.shape == (2, 32, 32) and small[:, 16, 16].min() > 0.9 and small[:, 0, 0].max() == 0
    big = fit_images(np.ones((1, 64, 40)), 32)
    assert big.shape == (1, 32, 32) and big.max() <= 1.0


def test_partition_and_order_splits_are_disjoint():
    source = load_source("digits")
    parts = partition(source, {"a": 100, "b": 0.1, "rest": None}, seed=3)
    assert [len(p) for p in parts.values()] == [100, 180, 1797 - 280]
    cfg = {"heldout_fraction": 0.1, "validation_fraction": 0.2, "data_seed": 1, "image_size": 32}
    splits = split_source(source, cfg)
    assert [len(splits[p]) for p in ("train", "heldout", "validation")] == [1797 - 180 - 359, 180, 359]
    sets = [set(map(bytes, splits[p].images.reshape(len(splits[p]), -1)))
            for p in ("train", "heldout", "validation")]
    assert sum(len(s) for s in sets) == len(set().union(*sets))       # no image in two parts
    assert splits["train"].images.shape[1:] == (32, 32)
    again = split_source(source, cfg)
    assert np.array_equal(again["heldout"].images, splits["heldout"].images)
    other = split_source(source, {**cfg, "data_seed": 2})
    assert not np.array_equal(other["heldout"].labels, splits["heldout"].labels)


MODULES = ("types", "checks", "fonts", "idx", "npz", "sources")


@pytest.mark.parametrize("first", MODULES)
def test_data_modules_import_alone_without_cycle(first):
    """Each reader module imports first in a fresh interpreter, then all others in two orders."""
    rest = [m for m in MODULES if m != first]
    orders = [[first, *rest], [first, *reversed(rest)]]
    code = "; ".join(f"import natgrad.study.data.{m}" for m in itertools.chain(*orders))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
