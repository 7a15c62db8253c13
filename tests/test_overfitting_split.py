"""The overfitting study's split on tiny data: disjoint parts of the sizes asked, fixed by the seed,
the pool's labels never read, each metric batch from where its method says."""
import numpy as np
import pytest
from test_overfitting import SIZES, tiny_images, tiny_spec

from natgrad.study.overfitting import loop, split


def test_split_is_disjoint_sized_and_fixed_by_seed():
    a = split.split_indices(500, SIZES, seed=3)
    b = split.split_indices(500, SIZES, seed=3)
    c = split.split_indices(500, SIZES, seed=4)
    for part, size in SIZES.items():
        assert len(a[part]) == size
        np.testing.assert_array_equal(a[part], b[part])
    assert not np.array_equal(a["train"], c["train"])
    union = np.concatenate([a[p] for p in split.PARTS])
    assert len(np.unique(union)) == len(union)
    rest = split.split_indices(500, {**SIZES, "unlabeled": -1}, seed=3)
    assert len(rest["unlabeled"]) == 500 - 200


def test_split_rejects_sizes_that_do_not_fit():
    with pytest.raises(ValueError):
        split.split_indices(100, SIZES, seed=0)


class GuardedLabels:
    """Labels that raise if any unlabeled-pool position is read."""

    def __init__(self, y, forbidden):
        self.y, self.forbidden = y, set(int(i) for i in forbidden)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, idx):
        idx = np.atleast_1d(np.asarray(idx))
        assert not self.forbidden.intersection(idx.tolist()), "an unlabeled-pool label was read"
        return self.y[idx]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole label array was read")


def test_pool_labels_are_never_read_and_scrambling_them_changes_nothing():
    x, y = tiny_images()
    pool = split.split_indices(len(x), SIZES, seed=0)["unlabeled"]
    # 1. a guard: restricting never touches a pool label
    guarded = split.restrict(x, GuardedLabels(y, pool), SIZES, seed=0, num_classes=3)
    assert not hasattr(guarded, "y_unlabeled")
    # 2. the result of the unlabeled-metric method is unchanged, bit for bit, by scrambled pool labels
    scrambled = y.copy()
    scrambled[pool] = np.random.default_rng(1).permutation(scrambled[pool])
    scrambled[pool[:5]] = 99  # even invalid labels
    assert (scrambled[pool] != y[pool]).any()
    spec = tiny_spec(("ng_unlabeled",))
    runs = [loop.train(spec, "ng_unlabeled", 0, split.restrict(x, lab, SIZES, seed=0))
            for lab in (y, scrambled)]
    for var in ("train_ce", "test_error", "valid_error"):
        np.testing.assert_array_equal(runs[0][var].values, runs[1][var].values)


def test_the_pool_inputs_are_used_by_ng_unlabeled_and_by_nothing_else():
    """New pool inputs change an NG-unlabeled run and leave MSGD (and NG on the training set only)
    bit-identical."""
    import dataclasses

    x, y = tiny_images()
    data = split.restrict(x, y, SIZES, seed=0)
    other = dataclasses.replace(data, x_unlabeled=np.random.default_rng(5).uniform(
        0, 1, data.x_unlabeled.shape).astype(np.float32))
    for method, changes in (("ng_unlabeled", True), ("ng_batch_plus_unlabeled", True),
                            ("msgd", False), ("ng_different_batch", False)):
        a, b = (loop.train(tiny_spec((method,)), method, 0, d)["train_ce"].values
                for d in (data, other))
        assert (not np.array_equal(a, b)) is changes, method


def test_each_metric_batch_comes_from_where_its_method_says():
    """Different batch: disjoint from the gradient batch at every step; unlabeled: pool inputs only;
    batch plus unlabeled: the gradient's inputs, then pool inputs."""
    import jax

    from natgrad.study.overfitting.runner import device_data, draw_batch

    x, y = tiny_images()
    data = split.restrict(x, y, SIZES, seed=0)
    arrays = device_data(data)
    rows = {r.tobytes(): i for i, r in enumerate(data.x_train)}
    pool = {r.tobytes() for r in data.x_unlabeled}
    for t in range(50):
        key = jax.random.fold_in(jax.random.key(0), t)
        b = draw_batch("ng_different_batch", {"batch_size": 50, "metric_batch_size": 70},
                       arrays, key)
        grad = {rows[r.tobytes()] for r in np.asarray(b.x)}
        metric = {rows[r.tobytes()] for r in np.asarray(b.metric_x)}
        assert len(grad) == 50 and len(metric) == 70 and not grad & metric
        np.testing.assert_array_equal(np.asarray(b.metric_y),
                                      data.y_train[[rows[r.tobytes()] for r in np.asarray(b.metric_x)]])
        u = draw_batch("ng_unlabeled", {"batch_size": 50, "metric_batch_size": 40}, arrays, key)
        assert u.metric_y is None and len(u.metric_x) == 40
        assert all(r.tobytes() in pool for r in np.asarray(u.metric_x))
        m = draw_batch("ng_batch_plus_unlabeled", {"batch_size": 50, "metric_batch_size": 40},
                       arrays, key)
        np.testing.assert_array_equal(np.asarray(m.metric_x[:50]), np.asarray(m.x))
        assert all(r.tobytes() in pool for r in np.asarray(m.metric_x[50:]))


def test_a_pair_of_minibatches_larger_than_the_training_set_shares_it_in_proportion():
    from natgrad.study.overfitting.runner import disjoint_sizes

    assert disjoint_sizes(1500, 500, 500) == (500, 500)    # fits: as asked
    assert disjoint_sizes(100, 250, 250) == (50, 50)      # the default config on 1,000 examples
    assert disjoint_sizes(100, 300, 100) == (75, 25)
    assert disjoint_sizes(2, 250, 1) == (1, 1)            # each part keeps one example


def test_fractions_fit_any_data_set_and_counts_are_checked():
    assert split.split_counts(5000, {"train": 0.1, "unlabeled": 0.5, "valid": 0.2, "test": 0.2}) \
        == {"train": 500, "unlabeled": 2500, "valid": 1000, "test": 1000}
    assert split.split_counts(1797, {"train": 0.1, "unlabeled": -1, "valid": 0.2, "test": 0.2}) \
        == {"train": 180, "unlabeled": 1797 - 180 - 359 - 359, "valid": 359, "test": 359}
    with pytest.raises(ValueError, match="needs 5000 examples, more than the 1797"):
        split.split_counts(1797, {"train": 500, "unlabeled": 2500, "valid": 1000, "test": 1000})
