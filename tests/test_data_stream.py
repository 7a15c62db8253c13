"""The NISTP stream: sample i is a pure function of (seed, i); segment replacement is local."""
import numpy as np
import pytest

from natgrad.study.data import load_source, make_stream
from natgrad.study.order.problem import split_source
from natgrad.study.order.spec import stream_seeds

CHUNK = 64


@pytest.fixture(scope="module")
def source():
    return load_source("digits")


@pytest.mark.parametrize("preset", ["pnist07", "p07"])
def test_sample_alone_in_batch_and_in_segment(source, preset):
    stream = make_stream(source, seed=5, preset=preset, segment_size=50, chunk=CHUNK)
    x, y = stream.batch(0, 200)
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == (200, 32, 32) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0 and 0 <= y.min() and y.max() < 10
    for i in (0, 13, 63, 64, 150, 199):
        xi, yi = stream.take([i])
        assert np.array_equal(np.asarray(xi)[0], x[i]), i
        assert int(yi[0]) == y[i]
    lo, hi = stream.segment_range(2)
    xs, _ = stream.batch(lo, hi - lo)
    assert np.array_equal(np.asarray(xs), x[lo:hi])
    shuffled = np.random.default_rng(0).permutation(200)
    xp, _ = stream.take(shuffled)
    assert np.array_equal(np.asarray(xp), x[shuffled])
    again = make_stream(source, seed=5, preset=preset, segment_size=50, chunk=CHUNK)
    assert np.array_equal(np.asarray(again.batch(0, 200)[0]), x)
    other = make_stream(source, seed=6, preset=preset, segment_size=50, chunk=CHUNK)
    assert not np.array_equal(np.asarray(other.batch(0, 200)[0]), x)


def test_batch_of_512_matches_alone(source):
    stream = make_stream(source, seed=1, chunk=512)
    x, _ = stream.batch(1000, 512)
    for i in (0, 255, 511):
        assert np.array_equal(np.asarray(stream.take([1000 + i])[0])[0], np.asarray(x)[i])


def test_segment_replacement_is_local(source):
    stream = make_stream(source, seed=2, segment_size=40, chunk=CHUNK)
    x = np.asarray(stream.batch(0, 200)[0])
    replaced = stream.replace_segment(1, 0)
    xr = np.asarray(replaced.batch(0, 200)[0])
    seg = np.arange(200) // 40
    assert np.array_equal(xr[seg != 1], x[seg != 1])
    assert all(not np.array_equal(xr[i], x[i]) for i in np.nonzero(seg == 1)[0])
    other = np.asarray(stream.replace_segment(1, 1).batch(0, 200)[0])
    assert np.array_equal(other[seg != 1], x[seg != 1])
    assert not np.array_equal(other[seg == 1], xr[seg == 1])
    both = np.asarray(replaced.replace_segment(3, 0).batch(0, 200)[0])
    assert np.array_equal(both[seg == 1], xr[seg == 1])
    assert np.array_equal(both[(seg != 1) & (seg != 3)], x[(seg != 1) & (seg != 3)])


def test_order_streams_draw_from_disjoint_parts(source):
    splits = split_source(source, {"heldout_fraction": 0.1, "validation_fraction": 0.1,
                                   "data_seed": 0, "image_size": 32})
    seeds = stream_seeds(0)
    assert len(set(seeds.values())) == 3 and stream_seeds(0) == seeds
    assert not set(seeds.values()) & set(stream_seeds(1).values())
    train = make_stream(splits["train"], seed=seeds["train"], chunk=CHUNK)
    held = make_stream(splits["heldout"], seed=seeds["heldout"], chunk=CHUNK)
    assert train.source is not held.source
    x, y = held.batch(0, 64)
    assert x.shape == (64, 32, 32) and len(splits["heldout"]) + len(splits["train"]) + \
        len(splits["validation"]) == len(source)
