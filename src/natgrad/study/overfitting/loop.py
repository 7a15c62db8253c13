"""One job of the study: train one method with one seed and record its learning curves.

Every N updates (and at update 0) the job records the training cross-entropy over the *whole*
training set, the validation and test errors (percent misclassified), the steps rejected so far and
the wall-clock seconds the updates took so far (compilation and the evaluations themselves
excluded). The result is an xarray Dataset over the `update` dimension, written by the CLI as one
Zarr store per job; its attribute `diverged` says whether the run ever left its start (`diverged`).
"""
from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study import checkpoints, stores
from natgrad.study.provenance import settings_digest
from natgrad.study.data import load_source
from natgrad.study.methods import FAMILY
from natgrad.study.model import build_model
from natgrad.study.overfitting import spec as spec_lib
from natgrad.study.overfitting.runner import device_data, make_runner
from natgrad.study.overfitting.split import restrict_source

EVAL_CHUNK = 1000


def load_data(spec, datasets, seed):
    """The restricted split of the spec's dataset for `seed` (the one place it is made)."""
    return restrict_source(load_source(spec["dataset"], datasets), spec["split"],
                           spec.get("deform"), seed)


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(model, params, x, y, mask):
    """Per-chunk sums of cross-entropy and of misclassifications (masked rows skipped)."""
    def chunk(_, batch):
        xb, yb, mb = batch
        logits = model.apply(params, xb)
        ce = FAMILY.nll(logits, yb)
        wrong = (jnp.argmax(logits, -1) != yb).astype(jnp.float32)
        return None, (jnp.sum(ce * mb), jnp.sum(wrong * mb))

    _, sums = jax.lax.scan(chunk, None, (x, y, mask))
    return sums


class Evaluator:
    """Whole-set metrics of train, valid and test in one compiled call (the sets are padded into
    chunks of at most `EVAL_CHUNK` rows and stacked)."""

    def __init__(self, model, data, chunk=EVAL_CHUNK):
        self.model = model
        sets = {"train": (data.x_train, data.y_train), "valid": (data.x_valid, data.y_valid),
                "test": (data.x_test, data.y_test)}
        sizes = {k: len(v[0]) for k, v in sets.items()}
        chunk = max(1, min(chunk, max(sizes.values())))
        xs, ys, ms, self.slices, start = [], [], [], {}, 0
        for name, (x, y) in sets.items():
            n = len(x)
            k = -(-n // chunk) if n else 0
            pad = k * chunk - n
            xs.append(np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]))
            ys.append(np.concatenate([y, np.zeros((pad,), y.dtype)]))
            ms.append(np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]))
            self.slices[name] = (start, start + k, n)
            start += k
        shape = lambda a: a.reshape((-1, chunk) + a.shape[1:])  # noqa: E731
        self.x = jnp.asarray(shape(np.concatenate(xs)))
        self.y = jnp.asarray(shape(np.concatenate(ys)))
        self.m = jnp.asarray(shape(np.concatenate(ms)))

    def __call__(self, params):
        ce, wrong = (np.asarray(a, np.float64) for a in
                     _evaluate(self.model, params, self.x, self.y, self.m))
        out = {}
        for name, (a, b, n) in self.slices.items():
            out[name] = ((ce[a:b].sum() / n, 100.0 * wrong[a:b].sum() / n) if n
                         else (np.nan, np.nan))
        return {"train_ce": out["train"][0], "train_error": out["train"][1],
                "valid_error": out["valid"][1], "test_error": out["test"][1],
                "valid_ce": out["valid"][0], "test_ce": out["test"][0]}


#: long_name and units of the variables of a run's store (CF conventions).
VARIABLES = {
    "train_ce": ("cross-entropy on the whole training set", "nats"),
    "valid_ce": ("cross-entropy on the validation set", "nats"),
    "test_ce": ("cross-entropy on the test set", "nats"),
    "train_error": ("training error", "%"),
    "valid_error": ("validation error", "%"),
    "test_error": ("test error", "%"),
    "wall_time": ("seconds of updates so far (compilation and evaluations excluded)", "s"),
    "rejected": ("steps rejected so far (not applied: the loss on their batch did not fall)", "1"),
}
COLUMNS = ("update", "wall_time") + tuple(k for k in VARIABLES if k != "wall_time")


def diverged(train_ce):
    """Whether a run's training cross-entropy (its evaluations in order, the first at update 0)
    ever rose above its initial value or stopped being finite: a run that blew up and came back is
    still one that diverged, whatever its last evaluation says."""
    ce = np.asarray(train_ce, np.float64)
    return bool(np.any(~np.isfinite(ce)) or np.any(ce[1:] > ce[0]))


def train(spec, method, seed, data, log=None, checkpoint=None):
    """Train `method` with `seed` on restricted `data`; the learning curves as an xarray Dataset.

    checkpoint: a file written after every evaluation and resumed when it holds these settings'
    state (the run then ends with exactly the numbers of an uninterrupted one).
    """
    return train_seeds(spec, method, [seed], [data], log, checkpoint)[0]


def train_seeds(spec, method, seeds, datas, log=None, checkpoint=None):
    """Train `method` with each of `seeds` on its own restricted data (`datas`, in order); one
    learning-curve Dataset per seed. Several seeds run as one vmapped program (first-order kinds,
    `runner.VMAPPED_KINDS`): each seed's `wall_time` is then the group's divided by the number of
    seeds (what one run cost) and its attribute `vmapped_seeds` says how many shared the program.
    checkpoint: as `train`'s, for the whole group."""
    log = log or (lambda _: None)
    hyper = dict(spec["methods"][method])
    model = build_model(spec["model"], datas[0].num_classes)
    keys = [jax.random.split(jax.random.key(seed), 3) for seed in seeds]
    # one compiled program, not an eager op-by-op initialisation (seconds for a convnet)
    init = jax.jit(model.init)
    params = [init(k[0], jnp.asarray(d.x_train[:1])) for k, d in zip(keys, datas)]
    runner = make_runner(spec_lib.kind_of(method, hyper), hyper, model,
                         [device_data(d) for d in datas])
    carry = runner.init(params, [k[1] for k in keys])
    k_run = keys[0][2] if len(seeds) == 1 else jnp.stack([k[2] for k in keys])
    evaluators = [Evaluator(model, d) for d in datas]

    def evaluate(carry):
        return [e(p) for e, p in zip(evaluators, runner.params(carry))]

    points = spec_lib.eval_points(spec, method)
    compile_start = time.perf_counter()
    runner.compile(carry, k_run)
    evaluate(carry)
    compile_seconds = time.perf_counter() - compile_start

    identity = {"seed": seeds[0]} if len(seeds) == 1 else {"seeds": list(seeds)}
    fingerprint = settings_digest({"spec": spec, "method": method, **identity, "columns": COLUMNS})
    resumed = None if checkpoint is None else checkpoints.load(checkpoint, fingerprint, carry, log)
    if resumed is None:
        rows = [[{"update": 0, "wall_time": 0.0, "rejected": 0, **m}] for m in evaluate(carry)]
    else:
        _, carry, extra = resumed
        rows = [[dict(zip(COLUMNS, row)) for row in seed_rows] for seed_rows in
                extra["rows"].reshape(len(seeds), -1, len(COLUMNS)).tolist()]
        log(f"resumed from {checkpoint} at update {int(rows[0][-1]['update'])}")
    for a, b in zip(points[len(rows[0]) - 1:-1], points[len(rows[0]):]):
        start = time.perf_counter()
        carry, rejected = runner.run(carry, k_run, a, b - a)
        jax.block_until_ready(carry)
        seconds = (time.perf_counter() - start) / len(seeds)
        for seed, seed_rows, r, metrics in zip(seeds, rows, rejected, evaluate(carry)):
            seed_rows.append({"update": b, "wall_time": seed_rows[-1]["wall_time"] + seconds,
                              "rejected": seed_rows[-1]["rejected"] + int(r), **metrics})
            log(f"{method} seed {seed} update {b}/{points[-1]}: train CE "
                f"{metrics['train_ce']:.4g}, test error {metrics['test_error']:.2f} %, "
                f"{seed_rows[-1]['wall_time']:.1f} s")
        if checkpoint is not None and b < points[-1]:
            checkpoints.save(checkpoint, fingerprint, b, carry, {"rows": np.array(
                [[[r[c] for c in COLUMNS] for r in seed_rows] for seed_rows in rows])})
    method_identity = {"method": method, "kind": spec_lib.kind_of(method, hyper),
                "learning_rate": float(hyper.get("learning_rate", np.nan))}
    return [_curves(seed_rows, method_identity, seed, points[-1], compile_seconds, len(seeds))
            for seed, seed_rows in zip(seeds, rows)]


def _curves(rows, identity, seed, updates, compile_seconds, vmapped_seeds):
    """One seed's learning curves; `identity`: the method's name, kind and learning rate (NaN:
    K-FAC adapts its own)."""
    import xarray as xr

    ds = xr.Dataset(
        {k: ("update", np.array([r[k] for r in rows], np.float64)) for k in VARIABLES},
        coords={"update": np.array([r["update"] for r in rows], np.int64)},
    )
    ds["update"].attrs.update(long_name="updates done", units="1")
    ds.attrs.update({
        **identity, "seed": int(seed), "updates": int(updates),
        "compile_seconds": compile_seconds, "vmapped_seeds": int(vmapped_seeds),
        "diverged": int(diverged(ds["train_ce"].values)),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
    })
    return stores.annotate(ds, VARIABLES)
