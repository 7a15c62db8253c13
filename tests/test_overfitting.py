"""The overfitting study's pieces on tiny data: the split, every method, the models, the table."""
import json
from pathlib import Path

import numpy as np
import pytest

from natgrad.study import config, kinds, methods, registry
from natgrad.study.overfitting import aggregate, loop, spec as spec_lib, split

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 120, "unlabeled": 200, "valid": 40, "test": 40}


def with_defaults(hyper_by_method):
    """Hyper-parameters as the one resolver fills them in (the schema's defaults)."""
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"].update(methods=list(hyper_by_method), hyper=hyper_by_method)
    return registry.resolve(raw)["overfitting"]["hyper"]


HYPER = with_defaults({
    "msgd": {"updates": 40, "batch_size": 30, "learning_rate": 0.5},
    "adam": {"updates": 40, "batch_size": 30, "learning_rate": 0.01},
    "ng_unlabeled": {"updates": 6, "batch_size": 60, "metric_batch_size": 60,
                     "learning_rate": 1.0, "damping": 1.0, "adapt_damping": True, "max_iters": 10},
    "ng_batch_plus_unlabeled": {"updates": 6, "batch_size": 60, "metric_batch_size": 30,
                                "learning_rate": 1.0, "damping": 1.0, "adapt_damping": True,
                                "max_iters": 10},
    "ng_different_batch": {"updates": 6, "batch_size": 60, "metric_batch_size": 60,
                           "learning_rate": 0.5, "damping": 0.1, "max_iters": 10},
    "ng_same_batch": {"updates": 6, "batch_size": 60, "learning_rate": 0.5, "damping": 0.1,
                      "max_iters": 10, "solver": "cg"},
    "covariance": {"updates": 6, "batch_size": 60, "learning_rate": 0.5, "damping": 0.1,
                   "max_iters": 10},
    "kfac": {"updates": 6, "batch_size": 60, "damping": 1.0},
})


def tiny_images(n=400, side=6, classes=3, seed=0):
    """Learnable images: each class a fixed random pattern plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(0, 1, (classes, side, side))
    y = rng.integers(0, classes, n).astype(np.int32)
    x = np.clip(patterns[y] + 0.3 * rng.normal(size=(n, side, side)), 0, 1).astype(np.float32)
    return x, y


def tiny_spec(methods_=("msgd",), model=None, evaluations=3):
    return {"dataset": "tiny", "split": SIZES, "seeds": [0],
            "model": model or {"kind": "mlp", "hidden": [8], "activation": "tanh"},
            "evaluations": evaluations, "schedule": "linear",
            "methods": {m: HYPER[m] for m in methods_}}


# ---- methods -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_data():
    x, y = tiny_images()
    return split.restrict(x, y, SIZES, seed=0)


@pytest.mark.parametrize("method", kinds.KINDS)
def test_each_method_lowers_the_training_loss(tiny_data, method):
    ds = loop.train(tiny_spec((method,)), method, 0, tiny_data)
    ce = ds["train_ce"].values
    assert np.all(np.isfinite(ce))
    assert ce[-1] < 0.9 * ce[0], ce
    assert ds["update"].values[-1] == HYPER[method]["updates"]
    assert np.all(np.diff(ds["wall_time"].values) >= 0)
    assert ds.sizes["update"] == 4  # update 0 and 3 evaluations


def test_learning_rate_schedule_decays_after_start():
    sched = methods.learning_rate_schedule({"learning_rate": 1.0, "decay_start": 200,
                                            "decay_scale": 20})
    assert float(sched(0)) == 1.0 and float(sched(200)) == 1.0
    assert float(sched(220)) == pytest.approx(0.5)


# ---- table 1's other rows: the convnets on tiny IDX and npz files ------------------------------

def test_mnist_convnet_on_tiny_idx_files(tmp_path):
    from natgrad.study.data import idx

    x, y = tiny_images(n=400, side=12)
    idx.write_idx(tmp_path / "images.idx", (x * 255).astype(np.uint8))
    idx.write_idx(tmp_path / "labels.idx", y.astype(np.uint8))
    datasets = {"mnist": {"format": "idx", "images": str(tmp_path / "images.idx"),
                          "labels": str(tmp_path / "labels.idx")}}
    spec = tiny_spec(("ng_different_batch",), evaluations=1,
                     model={"kind": "mnist_convnet", "features": [2, 3], "kernels": [3, 3],
                            "pool": [2, 1], "hidden": [8]})
    spec["dataset"] = "mnist"
    spec["methods"]["ng_different_batch"] = {**HYPER["ng_different_batch"], "updates": 3,
                                             "metric_batch_size": 30, "damping": 0.5,
                                             "solver": "cg", "max_iters": 3}
    data = loop.load_data(spec, datasets, seed=0)
    assert data.input_shape == (12, 12)
    ds = loop.train(spec, "ng_different_batch", 0, data)
    assert ds["train_ce"].values[-1] < ds["train_ce"].values[0]


def test_tfd_convnet_on_a_tiny_npz_file(tmp_path):
    x, y = tiny_images(n=400, side=10, classes=7)
    np.savez(tmp_path / "tfd.npz", x=x, y=y)
    datasets = {"tfd": {"format": "npz", "path": str(tmp_path / "tfd.npz"), "classes": 7}}
    spec = tiny_spec(("ng_unlabeled",), evaluations=1,
                     model={"kind": "tfd_convnet", "features": [3], "kernels": [4], "pool": [2],
                            "hidden": [8, 6]})
    spec["dataset"] = "tfd"
    spec["methods"]["ng_unlabeled"] = {**HYPER["ng_unlabeled"], "updates": 3,
                                       "metric_batch_size": 30, "learning_rate": 0.5,
                                       "solver": "cg", "max_iters": 3}
    data = loop.load_data(spec, datasets, seed=0)
    assert data.num_classes == 7
    ds = loop.train(spec, "ng_unlabeled", 0, data)
    assert ds["train_ce"].values[-1] < ds["train_ce"].values[0]


# ---- specs, aggregation, table -----------------------------------------------------------------

def test_extras_are_off_by_default_and_inherit_the_section():
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"].update(
        dataset="mnist5k", methods=["msgd", "adam"], seeds=[0, 1],
        hyper={"msgd": HYPER["msgd"], "adam": HYPER["adam"]},
        tune=None, equal_settings=None,
        extra={"mnist_convnet": {"dataset": "mnist"},
               "tfd": {"enabled": True, "dataset": "tfd", "methods": ["msgd"],
                       "hyper": {"msgd": {"updates": 3, "batch_size": 2, "learning_rate": 0.1}}}})
    section = registry.resolve(raw)["overfitting"]
    exps = spec_lib.experiments(section)
    assert list(exps) == ["restricted_mnist", "tfd"]
    assert exps["restricted_mnist"]["methods"]["msgd"]["learning_rate"] == 0.5
    assert exps["tfd"]["methods"]["msgd"]["updates"] == 3
    assert exps["tfd"]["seeds"] == [0, 1]
    # a job's spec holds only the keys its kind reads
    job = spec_lib.job_spec(section, "restricted_mnist", "msgd")
    assert set(job["methods"]["msgd"]) == {"updates", "batch_size", "learning_rate", "momentum",
                                           "decay_scale"}
    raw["overfitting"]["methods"] = ["kfac"]
    with pytest.raises(config.ConfigError, match="overfitting.hyper.kfac"):
        registry.resolve(raw)


def test_old_key_names_are_refused_naming_the_new_one():
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"]["hyper"]["msgd"]["lr"] = 0.5
    with pytest.raises(config.ConfigError, match="overfitting.hyper.msgd.lr.*learning_rate"):
        registry.resolve(raw)


def test_evaluation_points_include_zero_and_the_last_update():
    spec = {"evaluations": 3, "schedule": "linear",
            "methods": {"m": {"updates": 40}, "e": {"updates": 10, "eval_every": 4}}}
    assert spec_lib.eval_points(spec, "m") == [0, 13, 27, 40]
    assert spec_lib.eval_points(spec, "e") == [0, 4, 8, 10]


def test_log_schedule_is_dense_early_and_shared_by_equal_updates():
    spec = {"evaluations": 4, "schedule": "log",
            "methods": {"a": {"updates": 10000}, "b": {"updates": 10000}, "c": {"updates": 3}}}
    # 10000 ** (i / 4): 1, 10, 100, 1000, 10000, and update 0
    assert spec_lib.eval_points(spec, "a") == [0, 1, 10, 100, 1000, 10000]
    assert spec_lib.eval_points(spec, "b") == spec_lib.eval_points(spec, "a")
    # 3 updates, at most 3 evaluations: 3 ** (0, 1/3, 2/3, 1) rounds to 1, 1, 2, 3
    assert spec_lib.eval_points(spec, "c") == [0, 1, 2, 3]


def test_table_has_the_public_columns(tiny_data):
    spec = tiny_spec(("msgd", "adam"))
    runs = {(m, s): loop.train(spec, m, s, tiny_data) for m in ("msgd", "adam") for s in (0, 1)}
    ds = aggregate.combine(runs)
    assert dict(ds.sizes) == {"optimizer": 2, "seed": 2, "point": 4}
    # each method's identity is a coordinate, read without the config's JSON
    assert list(ds["kind"].values) == ["msgd", "adam"]
    assert list(ds["role"].values) == ["first_order", "first_order"]
    assert list(ds["learning_rate"].values) == [spec["methods"][m]["learning_rate"]
                                                for m in ("msgd", "adam")]
    df = aggregate.table(ds)
    assert list(df.columns[:6]) == ["experiment", "method", "train_ce_mean", "train_ce_std",
                                    "test_error_mean", "test_error_std"]
    assert list(df["method"]) == ["msgd", "adam"]
    assert df.loc[0, "paper_test_error"] == 5.22 and np.isnan(df.loc[1, "paper_test_error"])
    html = aggregate.table_html(df)
    assert "KL" not in html and "MSGD" in html
    json.dumps(df.to_dict())


def test_step_rejection_keeps_a_too_long_step_from_raising_the_loss(tiny_data):
    """NG-same-batch at learning rate 100: the paper's rule applies every step and leaves its start;
    with `reject` no evaluation ends above the start and the rejected steps are counted."""
    def run(reject):
        hyper = {**HYPER["ng_same_batch"], "learning_rate": 100.0, "reject": reject}
        spec = {**tiny_spec(("ng_same_batch",)), "methods": {"ng_same_batch": hyper}}
        return loop.train(spec, "ng_same_batch", 0, tiny_data)

    paper, guarded = run(False), run(True)
    assert loop.diverged(paper["train_ce"].values) and paper["rejected"].values[-1] == 0
    assert not loop.diverged(guarded["train_ce"].values)
    assert 0 < guarded["rejected"].values[-1] <= HYPER["ng_same_batch"]["updates"]
    assert guarded.attrs["diverged"] == 0 and paper.attrs["diverged"] == 1


def test_the_natural_gradient_methods_of_an_experiment_share_one_step_rule():
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"]["hyper"]["ng_same_batch"]["reject"] = False
    with pytest.raises(config.ConfigError, match=r"differ in `reject` .*ng_same_batch: False"):
        registry.resolve(raw)
    raw["overfitting"]["reported_at"] = "early_stopped"
    raw["overfitting"]["split"]["valid"] = 0
    raw["overfitting"]["hyper"]["ng_same_batch"]["reject"] = True
    with pytest.raises(config.ConfigError, match="overfitting.reported_at is early_stopped"):
        registry.resolve(raw)


@pytest.mark.parametrize("method", ["msgd", "adam"])
def test_vmapped_seeds_follow_the_runs_of_one_seed_each(method, tmp_path):
    """Two seeds (each its own split) as one vmapped program end where two single runs end, to
    float rounding; each run's wall time is its share of the group's; a resumed group ends as an
    uninterrupted one."""
    x, y = tiny_images()
    datas = [split.restrict(x, y, SIZES, seed=s) for s in (0, 1)]
    spec = tiny_spec((method,))
    group = loop.train_seeds(spec, method, [0, 1], datas)
    for s, run in zip((0, 1), group):
        single = loop.train(spec, method, s, datas[s])
        assert run.attrs["seed"] == s and run.attrs["vmapped_seeds"] == 2
        for key in ("train_ce", "valid_error", "test_error"):
            np.testing.assert_allclose(run[key].values, single[key].values, rtol=1e-4, atol=1e-5)
    ckpt = tmp_path / "group.npz"
    loop.train_seeds(spec, method, [0, 1], datas, checkpoint=str(ckpt))  # leaves the last but one
    messages = []
    resumed = loop.train_seeds(spec, method, [0, 1], datas, log=messages.append,
                               checkpoint=str(ckpt))
    assert any("resumed" in m for m in messages)
    for full, again in zip(group, resumed):
        np.testing.assert_array_equal(full["train_ce"].values, again["train_ce"].values)
        np.testing.assert_array_equal(full["test_error"].values, again["test_error"].values)
    with pytest.raises(ValueError, match="one seed per job"):
        from natgrad.study.overfitting.runner import VmappedRunner
        VmappedRunner("ng_same_batch", HYPER["ng_same_batch"], None, datas)


@pytest.mark.parametrize("ce, expected", [
    ([2.3, 1.0, 0.5, 0.01], False),
    ([2.3, 2.3, 1.0], False),  # level with its start is not above it
    ([2.3, 1.0, 177.0, 1e-5], True),  # blew up and came back: still diverged
    ([2.3, 2.4, 1.0], True),
    ([2.3, 1.0, np.nan], True),
    ([2.3, np.inf, 1.0], True),
])
def test_a_run_diverged_when_its_training_loss_ever_rose_above_its_start(ce, expected):
    assert loop.diverged(ce) is expected


def test_combined_runs_record_divergence_and_the_early_stopped_evaluation(tiny_data):
    """A hand-edited pair of runs: seed 1's curve rises above its start once; its lowest validation
    error is at its second evaluation, tied with a later one (the first is kept, as the paper's
    code keeps a point only when it improves)."""
    spec = tiny_spec(("msgd",))
    runs = {("msgd", s): loop.train(spec, "msgd", s, tiny_data) for s in (0, 1)}
    run = runs["msgd", 1]
    run["train_ce"][2] = run["train_ce"][0] + 1.0
    run["valid_error"][:] = [90.0, 10.0, 20.0, 10.0]
    ds = aggregate.combine(runs)
    assert ds["diverged"].values.tolist() == [[False, True]]
    stopped = aggregate.early_stopped(ds).isel(optimizer=0, seed=1)
    assert int(stopped["update"]) == int(run["update"][1])
    assert float(stopped["test_error"]) == float(run["test_error"][1])
    final = aggregate.final(ds).isel(optimizer=0, seed=1)
    assert int(final["update"]) == HYPER["msgd"]["updates"]
    df = aggregate.table(ds)
    assert df.loc[0, "diverged_runs"] == 1
    assert df.loc[0, "early_stopped_test_error_mean"] == pytest.approx(float(np.mean(
        [aggregate.early_stopped(ds)["test_error"].isel(optimizer=0, seed=s) for s in (0, 1)])))


@pytest.mark.parametrize("method", ["ng_unlabeled", "kfac"])
def test_a_run_resumes_from_its_checkpoint_bit_exact(tiny_data, method, tmp_path):
    """The checkpoint left after the last evaluation but one resumes to the same numbers; a damaged
    one is refused with a warning naming it, and the previous one is used."""
    spec = tiny_spec((method,))
    ckpt = tmp_path / "run.npz"
    full = loop.train(spec, method, 0, tiny_data, checkpoint=str(ckpt))
    assert ckpt.exists() and (tmp_path / "run.npz.prev").exists()
    messages = []
    resumed = loop.train(spec, method, 0, tiny_data, log=messages.append, checkpoint=str(ckpt))
    assert any("resumed" in m for m in messages)
    for var in ("train_ce", "test_error", "valid_ce"):
        np.testing.assert_array_equal(resumed[var].values, full[var].values, err_msg=var)
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # a copy cut short
    messages = []
    again = loop.train(spec, method, 0, tiny_data, log=messages.append, checkpoint=str(ckpt))
    assert any("damaged" in m and str(ckpt) in m for m in messages)
    np.testing.assert_array_equal(again["train_ce"].values, full["train_ce"].values)
