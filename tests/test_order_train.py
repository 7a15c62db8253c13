"""The order experiment's training runs, in process on a synthetic stream: resumption after a kill
is bit-exact, vmapped resamples match separate runs, NaN stops the run naming it, and the job
settings hold exactly what a job's numbers depend on."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pathlib import Path

from natgrad.study import config, registry
from natgrad.study.order import problem as order_problem
from natgrad.study.order import spec, train

DIM, CLASSES = 12, 4


def synthetic_problem():
    """A Gaussian-blob stream where sample i is a pure function of (i, the resample of its
    segment), like the NISTP stream's replace_segment."""
    centers = jax.random.normal(jax.random.PRNGKey(0), (CLASSES, DIM))

    def make(keys):
        y = jax.vmap(lambda k: jax.random.randint(k, (), 0, CLASSES))(keys).astype(jnp.int32)
        noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), (DIM,)))(keys)
        return centers[y] + 1.5 * noise, y

    def sample(data, positions, segment, resample):
        seg = positions // data["segment_size"]
        base = jax.vmap(lambda i: jax.random.fold_in(data["key"], i))(positions)
        fresh_key = jax.random.fold_in(data["key"], 10**6 + resample)
        fresh = jax.vmap(lambda i: jax.random.fold_in(fresh_key, i))(positions)
        keys = jnp.where((seg == segment)[:, None], fresh, base)
        return make(keys)

    keys = jax.random.split(jax.random.PRNGKey(7), 96)
    xe, ye = make(keys)
    data = {"key": jax.random.PRNGKey(1), "segment_size": jnp.int32(64)}
    return order_problem.Problem(sample=sample, data=data, x_validation=np.asarray(xe[:64]),
                         y_validation=np.asarray(ye[:64]), x_heldout=np.asarray(xe[64:]),
                         num_classes=CLASSES)


HYPER = {
    "msgd": {"kind": "msgd", "learning_rate": 0.1, "momentum": 0.0},
    "ng": {"kind": "ng_same_batch", "learning_rate": 0.2, "adapt_damping": False, "damping": 3.0, "solver": "minres_qlp",
           "max_iters": 8, "rtol": 1e-4, "reject": False},
}


def job(method, **over):
    cfg = {"dataset": "synthetic", "online_samples": 256, "segment_size": 64, "batch_size": 16,
           "eval_every": 4, "eval_batch_size": 32,
           "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"}, "method": method,
           "hyper": dict(HYPER[method])}
    cfg.update(over)
    return cfg


def quiet(_):
    pass


@pytest.fixture(scope="module")
def problem():
    return synthetic_problem()


KEYS = ("probabilities", "validation_error", "loss", "solver_iterations", "relative_residual",
        "damping", "solver_flag")


@pytest.mark.parametrize("method", ["msgd", "ng"])
def test_killed_run_resumes_bit_exact(problem, method, tmp_path):
    cfg = job(method)
    full = train.run_jobs(cfg, problem, 1, [0], 0, log=quiet)[0]
    ckpt = tmp_path / "run.npz"
    with pytest.raises(train.Interrupted):
        train.run_jobs(cfg, problem, 1, [0], 0, checkpoint=str(ckpt), checkpoint_every=8,
                       stop_after=8, log=quiet)
    assert (tmp_path / "run.npz.r0").exists() or ckpt.exists()
    messages = []
    resumed = train.run_jobs(cfg, problem, 1, [0], 0, checkpoint=str(ckpt), checkpoint_every=8,
                             log=messages.append)[0]
    assert any("resumed" in m for m in messages)
    assert resumed["steps_run"] < full["steps_run"]
    for k in KEYS:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)


def test_checkpoint_of_other_settings_is_ignored(problem, tmp_path):
    ckpt = str(tmp_path / "run.npz")
    with pytest.raises(train.Interrupted):
        train.run_jobs(job("msgd"), problem, 1, [0], 0, checkpoint=ckpt, checkpoint_every=8,
                       stop_after=8, log=quiet)
    other = job("msgd", hyper={**HYPER["msgd"], "learning_rate": 0.05})
    messages = []
    out = train.run_jobs(other, problem, 1, [0], 0, checkpoint=ckpt, log=messages.append)[0]
    assert not any("resumed" in m for m in messages)
    ref = train.run_jobs(other, problem, 1, [0], 0, log=quiet)[0]
    np.testing.assert_array_equal(out["probabilities"], ref["probabilities"])


@pytest.mark.parametrize("method", ["msgd", "ng"])
def test_vmapped_resamples_match_separate_runs(problem, method):
    cfg = job(method)
    separate = train.run_jobs(cfg, problem, 1, [0, 1, 2], 0, log=quiet)
    vmapped = train.run_jobs(cfg, problem, 1, [0, 1, 2], 0, vmapped=True, log=quiet)
    for a, b in zip(separate, vmapped):
        assert a["resample"] == b["resample"]
        # XLA compiles the batched program differently (a reduction may round in another order),
        # so the two agree to float32 rounding rather than bit for bit.
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
        np.testing.assert_array_equal(a["validation_error"], b["validation_error"])
    # the resamples are different runs
    assert not np.array_equal(separate[0]["probabilities"], separate[1]["probabilities"])


def test_same_settings_same_numbers(problem):
    a = train.run_jobs(job("ng"), problem, 0, [1], 3, log=quiet)[0]
    b = train.run_jobs(job("ng"), problem, 0, [1], 3, log=quiet)[0]
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert np.all(a["solver_iterations"] > 0) and np.all(a["damping"] == 3.0)


def test_nan_stops_the_run_naming_the_job(problem, tmp_path):
    def poisoned(data, positions, segment, resample):  # a NaN sample from position 100 on
        x, y = problem.sample(data, positions, segment, resample)
        return jnp.where((positions >= 100)[:, None], jnp.nan, x), y

    bad = dataclasses.replace(problem, sample=poisoned)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(train.NonFiniteError) as err:
        train.run_jobs(job("msgd"), bad, 2, [1], 5, checkpoint=str(ckpt), checkpoint_every=4,
                       log=quiet)
    msg = str(err.value)
    assert "order_train[method=msgd, segment=2, resample=1, seed=5]" in msg
    assert "learning_rate=0.1" in msg and "step 8" in msg
    # the last checkpoint is from before the NaN: nothing non-finite was saved
    with np.load(ckpt) as z:
        assert int(z["step"]) == 4


def test_bad_labels_stop_a_natural_gradient_run_at_the_chunk_naming_the_check(problem, tmp_path):
    """The study runs the step with its run-time checks on: a label outside the classes (which
    would otherwise give a NaN loss while the parameters move) stops the run, naming the check."""
    from natgrad.study.checked import CheckFailedError

    def mislabelled(data, positions, segment, resample):
        x, y = problem.sample(data, positions, segment, resample)
        return x, jnp.where(positions >= 100, CLASSES + 7, y)

    bad = dataclasses.replace(problem, sample=mislabelled)
    with pytest.raises(CheckFailedError) as err:
        train.run_jobs(job("ng"), bad, 2, [1], 5, log=quiet)
    msg = str(err.value)
    assert "steps 4-8 of order_train[method=ng" in msg  # position 100 is in step 6
    assert "grad_batch targets are out of range for Categorical" in msg


ROOT = Path(__file__).resolve().parents[1]


def resolved_order(**over):
    """The `order:` section of config.yaml with `over` applied, through the one resolver."""
    raw = registry.load(ROOT / "config.yaml")
    raw["order"].update({"frontier": None, **over})
    return registry.resolve(raw)["order"]


def test_job_config_holds_only_what_the_numbers_depend_on():
    order = resolved_order(methods={"msgd": HYPER["msgd"], "ng": HYPER["ng"]})
    base = spec.job_config(order, "msgd")
    for change in ({"resamples": 5}, {"segments": 4}, {"seeds": [0, 1]}, {"plot": {"dpi": 300}},
                   {"methods": {**order["methods"], "ng": {**HYPER["ng"], "damping": 1.0}}},
                   {"checkpoint_every": 7}, {"vmap_resamples": True}):
        assert spec.job_config(resolved_order(**{**order, **change}), "msgd") == base, change
    assert spec.job_config(resolved_order(**{**order, "batch_size": 8}), "msgd") != base
    assert spec.job_config(resolved_order(**{**order, "segment_size": 512}), "msgd") != base
    # a method's job holds only the keys its kind reads
    assert set(base["hyper"]) == {"kind", "learning_rate", "momentum", "decay_scale"}


def test_cross_key_checks_name_the_keys():
    with pytest.raises(config.ConfigError, match="order.segments × order.segment_size"):
        resolved_order(segments=7)
    with pytest.raises(config.ConfigError, match="order.online_samples"):
        resolved_order(segments=1, batch_size=8192)
    with pytest.raises(config.ConfigError, match="order.methods.ng.kind"):
        resolved_order(methods={"ng": {"kind": "ng_unlabeled", "learning_rate": 0.1}})
    ng = {k: v for k, v in HYPER["ng"].items() if k != "learning_rate"}
    with pytest.raises(config.ConfigError, match="order.methods.ng.learning_rate is needed"):
        resolved_order(methods={"msgd": HYPER["msgd"], "ng": ng})


def test_seeds_draw_their_own_stream_and_resamples_over_fixed_evaluation_sets(tmp_path):
    """A seed varies the stream and the resamples (so the interval over seeds covers the data's
    variation); the held-out and validation sets, drawn once from the data seed, do not."""
    order = resolved_order(image_size=16, heldout_size=24, validation_size=24,
                           methods={"msgd": HYPER["msgd"], "ng": HYPER["ng"]})
    paths = {part: str(tmp_path / f"{part}.zarr") for part in order_problem.PARTS}
    raw = registry.load(ROOT / "config.yaml")
    order_problem.write_data_sets(order, raw["datasets"], paths)
    problem = order_problem.load_problem(spec.job_config(order, "msgd"), paths)
    positions = jnp.arange(order["segment_size"], 2 * order["segment_size"], 97)

    def draw(seed, resample):
        x, y = problem.sample(problem.data_for_seed(seed), positions, jnp.int32(1), resample)
        return np.asarray(x), np.asarray(y)

    # segment 1's resample 0 and 1 differ within a seed, and each differs between seeds 0 and 1
    assert not np.array_equal(draw(0, 0)[0], draw(0, 1)[0])
    for r in (0, 1):
        assert not np.array_equal(draw(0, r)[0], draw(1, r)[0])
    # the same seed draws the same samples (a run is reproducible)
    np.testing.assert_array_equal(draw(1, 1)[0], draw(1, 1)[0])
    # the unresampled stream differs between seeds too
    outside = jnp.arange(0, order["segment_size"], 97)
    a, b = (np.asarray(problem.sample(problem.data_for_seed(s), outside, jnp.int32(1), 0)[0])
            for s in (0, 1))
    assert not np.array_equal(a, b)
    # what a seed changes is the stream's key alone: the source images and labels are shared
    for s in (0, 1):
        data = problem.data_for_seed(s)
        assert data["images"] is problem.data["images"] and data["labels"] is problem.data["labels"]
    # the held-out and validation sets are stores drawn from the data seed, read alike by every run
    again = order_problem.load_problem(spec.job_config(order, "ng"), paths)
    np.testing.assert_array_equal(problem.x_heldout, again.x_heldout)
    np.testing.assert_array_equal(problem.x_validation, again.x_validation)
