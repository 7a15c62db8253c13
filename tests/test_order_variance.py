"""Figure 3's variance on hand-built runs: identical resamples give 0, a known spread its known
value (the unbiased variance across resamples, averaged over held-out samples, classes and seeds)."""
import json

import numpy as np
import pytest

from natgrad.study import stores
from natgrad.study.order import aggregate, train

SAMPLES, CLASSES, RESAMPLES = 4, 3, 3


def run_store(path, method, seed, segment, resample, probabilities, learning_rate=0.1):
    result = {"resample": resample, "probabilities": probabilities.astype(np.float32),
              "eval_steps": np.array([0, 2]), "validation_error": np.array([0.5, 0.4], np.float32),
              **{k: np.zeros(2, np.float32) for k in train.DIAGNOSTICS},
              "seconds": 1.0, "steps_run": 2, "first_chunk_seconds": 0.5, "seconds_per_step": 0.1}
    job = {"method": method, "batch_size": 16, "online_samples": 256,
           "hyper": {"kind": "msgd" if method == "msgd" else "ng_same_batch",
                     "learning_rate": learning_rate}}
    ds = train.to_dataset(result, job, segment, seed)
    stores.write_zarr(ds, path, config=job)
    return path


def uniform():
    return np.full((SAMPLES, CLASSES), 1.0 / CLASSES)


@pytest.fixture
def runs(tmp_path):
    """msgd: identical outputs for every resample; ng: probability h·r moved from class 0 to
    class 1 of sample 0 in resample r (r = 0, 1, 2), on seeds 0 and 1 with h = 0.1 and 0.2."""
    paths = []
    steps = {0: 0.1, 1: 0.2}
    for seed, h in steps.items():
        for segment in (0, 1):
            for r in range(RESAMPLES):
                p = uniform()
                paths.append(run_store(tmp_path / f"msgd-{seed}-{segment}-{r}.zarr", "msgd", seed,
                                       segment, r, p))
                q = uniform()
                q[0, 0] += h * r
                q[0, 1] -= h * r
                paths.append(run_store(tmp_path / f"ng-{seed}-{segment}-{r}.zarr", "ng", seed,
                                       segment, r, q))
    return [str(p) for p in paths], steps


def test_identical_resamples_give_zero_and_a_known_spread_its_value(runs):
    paths, steps = runs
    ds = aggregate.aggregate(paths)
    assert np.all(ds["variance_per_seed"].sel(optimizer="msgd").values == 0)
    # values 0, h, 2h: unbiased variance h²; two of the SAMPLES × CLASSES entries move
    for seed, h in steps.items():
        expected = 2 * h**2 / (SAMPLES * CLASSES)
        np.testing.assert_allclose(ds["variance_per_seed"].sel(optimizer="ng", seed=seed).values,
                                   expected, rtol=1e-5)
    np.testing.assert_allclose(ds["variance"].sel(optimizer="ng").values,
                               np.mean([2 * h**2 / (SAMPLES * CLASSES) for h in steps.values()]),
                               rtol=1e-5)
    assert json.loads(ds.attrs["job_configs"])["ng"]["0.1"]["hyper"]["kind"] == "ng_same_batch"
    # each method's identity is a coordinate, the runs' shared sizes scalar ones
    assert list(ds["kind"].values) == ["msgd", "ng_same_batch"]
    assert list(ds["role"].values) == ["first_order", "natural_gradient"]
    assert int(ds["batch_size"]) == 16 and int(ds["online_samples"]) == 256


def test_each_method_fills_its_own_learning_rates_and_nan_marks_the_others(runs, tmp_path):
    paths, steps = runs
    # NG also ran at rate 0.3 with twice the spread: variance 4 h², MSGD has no 0.3 runs
    for seed, h in steps.items():
        for segment in (0, 1):
            for r in range(RESAMPLES):
                q = uniform()
                q[0, 0] += 2 * h * r
                q[0, 1] -= 2 * h * r
                paths.append(str(run_store(tmp_path / f"ng3-{seed}-{segment}-{r}.zarr", "ng", seed,
                                           segment, r, q, learning_rate=0.3)))
    ds = aggregate.aggregate(paths)
    assert list(ds["learning_rate"].values) == [0.1, 0.3]
    assert ds["variance_per_seed"].dims == ("optimizer", "learning_rate", "seed", "segment")
    assert np.all(np.isnan(ds["variance_per_seed"].sel(optimizer="msgd", learning_rate=0.3)))
    for seed, h in steps.items():
        np.testing.assert_allclose(
            ds["variance_per_seed"].sel(optimizer="ng", learning_rate=0.3, seed=seed).values,
            8 * h**2 / (SAMPLES * CLASSES), rtol=1e-5)
    # the final validation error (in %) is each run's last evaluation, averaged over resamples
    np.testing.assert_allclose(ds["final_validation_error"].sel(optimizer="ng").values, 40.0,
                               rtol=1e-6)
    rows = aggregate.summary_table(ds).splitlines()
    assert rows[0].startswith("method,learning_rate,segment,variance")
    assert len(rows) == 1 + 3 * 2  # (msgd 0.1, ng 0.1, ng 0.3) × 2 segments, numbered from 1


def test_runs_that_do_not_fill_the_grid_are_refused(runs):
    paths, _ = runs
    with pytest.raises(ValueError, match="do not fill its grid"):
        aggregate.aggregate(paths[:-1])
