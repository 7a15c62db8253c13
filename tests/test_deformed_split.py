"""The deformed split (table 1's large-pool data set): parts of NISTP-deformed samples of disjoint
source images, sized as asked, fixed by the seed, the pool's labels never read."""
from pathlib import Path

import jax
import numpy as np
import pytest

from natgrad.study import config, registry
from natgrad.study.data import nistp
from natgrad.study.data.deformed import deformed_samples
from natgrad.study.overfitting import plan, spec as spec_lib, split

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"train": 20, "unlabeled": 30, "valid": 10, "test": 15}
SAMPLES = {"train": 20, "unlabeled": 400, "valid": 25, "test": 150}


def sources(n=100, side=32, seed=0):
    """n distinct random 32 x 32 images and labels: each image identifies its source."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, side, side)).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int32))


def deform(c_max=0.7, preset="pnist07", sources_=SOURCES):
    return {"preset": preset, "c_max": c_max, "image_size": 32, "sources": dict(sources_)}


def nearest_source(samples, images):
    """The index of the source image nearest each sample (exact at c_max 0: the identity)."""
    d = ((samples[:, None] - images[None]) ** 2).sum(axis=(2, 3))
    return d.argmin(axis=1)


# ---- the generator -------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["pnist07", "p07"])
def test_sample_j_deforms_source_j_mod_n_with_its_own_key(preset):
    images, _ = sources(7)
    key = jax.random.PRNGKey(3)
    x = deformed_samples(images, 40, key, preset=preset, chunk=16)
    assert x.shape == (40, 32, 32) and x.dtype == np.float32
    for j in (0, 6, 7, 15, 16, 39):  # the reference: nistp.deform of that one image, that one key
        ref = nistp.deform(images[[j % 7]], jax.random.fold_in(key, j)[None], preset, 0.7,
                           bank=images)
        np.testing.assert_allclose(x[j], np.asarray(ref)[0], atol=1e-5, err_msg=str(j))
    # a sample's bits do not depend on how many are asked for
    np.testing.assert_array_equal(deformed_samples(images, 17, key, preset=preset, chunk=16),
                                  x[:17])
    assert not np.array_equal(deformed_samples(images, 40, jax.random.PRNGKey(4), preset=preset,
                                               chunk=16), x)


def test_sources_are_used_in_turn():
    images, _ = sources(7)
    x = deformed_samples(images, 23, jax.random.PRNGKey(0), c_max=0.0)
    np.testing.assert_array_equal(nearest_source(x, images), np.arange(23) % 7)


# ---- the split -----------------------------------------------------------------------------------

def test_parts_are_sized_and_share_no_source_image():
    images, labels = sources()
    data = split.restrict_deformed(images, labels, SAMPLES, deform(c_max=0.0), seed=2,
                                   num_classes=10)
    assert data.sizes() == SAMPLES
    used = {}
    for part, x in (("train", data.x_train), ("unlabeled", data.x_unlabeled),
                    ("valid", data.x_valid), ("test", data.x_test)):
        near = nearest_source(x, images)
        np.testing.assert_allclose(x, images[near], atol=1e-5)  # c_max 0: every sample a source
        used[part] = set(near.tolist())
        assert len(used[part]) == SOURCES[part], part  # every source of the part, none other
        if part != "unlabeled":
            np.testing.assert_array_equal(getattr(data, f"y_{part}"), labels[near])
    parts = list(used.values())
    assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert sum(map(len, parts)) == sum(SOURCES.values())


def test_the_split_is_fixed_by_the_seed():
    images, labels = sources()
    a, b, c = (split.restrict_deformed(images, labels, SAMPLES, deform(), seed=s, num_classes=10)
               for s in (5, 5, 6))
    for name in ("x_train", "y_train", "x_unlabeled", "x_valid", "y_valid", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(a.x_unlabeled, c.x_unlabeled)
    # deformed, not copies: no sample equals its source
    assert np.abs(a.x_test - images[nearest_source(a.x_test, images)]).max() > 0.1


def test_pool_labels_are_never_read():
    from test_overfitting_split import GuardedLabels

    images, labels = sources()
    pool = split.split_indices(len(images), SOURCES, seed=1)["unlabeled"]
    data = split.restrict_deformed(images, GuardedLabels(labels, pool), SAMPLES, deform(),
                                   seed=1, num_classes=10)
    assert not hasattr(data, "y_unlabeled") and len(data.x_unlabeled) == SAMPLES["unlabeled"]


@pytest.mark.parametrize("sizes, sources_, message", [
    ({**SAMPLES, "unlabeled": 400}, {**SOURCES, "unlabeled": 0},
     "split.unlabeled asks 400 deformed samples of no source image"),
    ({**SAMPLES, "valid": 5}, SOURCES,
     "deform.sources.valid = 10 source images, more than the 5 samples of split.valid"),
    (SAMPLES, {**SOURCES, "unlabeled": 90}, "deform.sources: split .* needs 135 examples, more "
     "than the 100"),
    ({**SAMPLES, "unlabeled": 0.5}, SOURCES, "split.unlabeled = 0.5: a deformed split takes a "
     "whole number"),
])
def test_counts_that_do_not_fit_name_the_part(sizes, sources_, message):
    with pytest.raises(ValueError, match=message):
        split.deformed_counts(100, sizes, {"sources": sources_})


# ---- the config ----------------------------------------------------------------------------------

def large_pool_config(**entry):
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"]["extra"]["large"] = {
        "enabled": True, "dataset": "digits", "split": dict(SAMPLES), "deform": deform(),
        "methods": ["msgd", "ng_unlabeled"], **entry}
    return raw


def test_a_deformed_row_resolves_with_its_own_tune_and_others_inherit_none():
    raw = large_pool_config(tune={"msgd": {"learning_rate": [0.5, 1.0]}}, tune_seeds=[50])
    cfg = registry.resolve(raw)
    registry.check_data(cfg)
    exps = spec_lib.experiments(cfg["overfitting"])
    assert exps["large"]["deform"]["sources"] == SOURCES
    assert exps["large"]["methods"]["msgd"]["tune"]["seeds"] == [50]
    assert "tune" not in exps["large"]["methods"]["ng_unlabeled"]
    assert exps["restricted_mnist"]["deform"] is None
    records = plan.Plan.of(cfg).records
    assert ("large", "msgd") in records and ("large", "ng_unlabeled") not in records
    untuned = spec_lib.experiments(registry.resolve(large_pool_config())["overfitting"])["large"]
    assert not any("tune" in h for h in untuned["methods"].values())


def test_a_deformed_row_that_does_not_fit_is_refused_before_any_job():
    raw = large_pool_config()
    raw["overfitting"]["extra"]["large"]["deform"]["sources"]["unlabeled"] = 2000
    with pytest.raises(config.ConfigError, match=r"overfitting.extra.large.split does not fit "
                       r"dataset digits \(1797 examples\): overfitting.extra.large.deform.sources"):
        registry.check_data(registry.resolve(raw))
    raw = large_pool_config(tune={"covariance": {"learning_rate": [1.0]}})
    with pytest.raises(config.ConfigError, match="overfitting.extra.large: overfitting.tune."
                       "covariance: covariance is not among"):
        registry.resolve(raw)
    raw = large_pool_config()
    raw["overfitting"]["extra"]["large"]["deform"]["preset"] = "nist"
    with pytest.raises(config.ConfigError, match="deform"):
        registry.resolve(raw)


# ---- the claims ----------------------------------------------------------------------------------

def test_c1_to_c3_are_decided_on_each_table1_data_set_and_each_row_names_it():
    import json

    import pandas as pd
    from test_claims import NOISE, overfitting_store

    from natgrad.study.claims import verdict
    from natgrad.study.overfitting.claims import blocks

    main = overfitting_store({"msgd": 5.2 + NOISE, "ng_unlabeled": 4.6 + NOISE}, {})
    main.attrs["config"] = json.dumps({"dataset": "mnist5k", "split": {"train": 0.1},
                                       "deform": None, "methods": {}})
    # the other data set: NG-unlabeled *behind* MSGD, so C1 fails there and holds on the first
    large = overfitting_store({"msgd": 20.0 + NOISE, "ng_unlabeled": 21.0 + NOISE}, {})
    large.attrs["config"] = json.dumps({"dataset": "mnist5k", "deform": deform(c_max=0.35),
                                        "split": {"train": 1000, "unlabeled": 20000,
                                                  "valid": 2000, "test": 10000},
                                        "methods": {}})
    df = pd.DataFrame([r for block in blocks({"restricted_mnist": main, "table1_large": large})
                       for r in block])
    assert list(df["claim_id"]) == ["C1", "C2", "C3"] * 2 + ["C9"]
    c1 = df[df["claim_id"] == "C1"].set_index("dataset")
    assert list(c1.index) == ["restricted_mnist (mnist5k)",
                              "large (mnist5k, pnist07-deformed at c_max 0.35: 1000 labelled, "
                              "20000 pool, 2000 validation, 10000 test samples of disjoint "
                              "source images)"]
    assert list(c1["verdict"]) == [verdict.HOLDS, verdict.FAILS]
    assert c1["claim"].str.startswith(("restricted MNIST:", "large:")).all()


def test_the_claims_table_reads_every_table1_row_that_runs_ng_unlabeled():
    cfg = registry.resolve(large_pool_config())
    assert plan.claims(cfg) == {
        "restricted_mnist": "results/overfitting/restricted_mnist/runs.zarr.done",
        "table1_large": "results/overfitting/large/runs.zarr.done"}
