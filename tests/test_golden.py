"""Golden values of a tiny order run and a tiny overfitting run, held for the next refactor.

A refactor must keep the study's numbers; this test holds two small runs to values stored in
tests/golden/ when the study's redesign was checked bit-identical against the smoke study. XLA's
CPU results differ in the last bits between CPUs of different vector width, so the comparison uses
a tight tolerance rather than bit hashes. Regenerate (only for an intended change of the numbers,
saying why in the commit): `python tests/test_golden.py --regenerate`.
"""
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study import registry
from natgrad.study.order import problem as order_problem
from natgrad.study.order import spec, train
from natgrad.study.overfitting import loop, split

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "tiny_runs.json"
RTOL, ATOL = 2e-4, 1e-6


def blob_problem():
    """A Gaussian-blob stream: sample i a pure function of (i, the resample of its segment)."""
    centers = jax.random.normal(jax.random.PRNGKey(0), (4, 12))

    def make(keys):
        y = jax.vmap(lambda k: jax.random.randint(k, (), 0, 4))(keys).astype(jnp.int32)
        noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), (12,)))(keys)
        return centers[y] + 1.5 * noise, y

    def sample(data, positions, segment, resample):
        seg = positions // 64
        base = jax.vmap(lambda i: jax.random.fold_in(data["key"], i))(positions)
        fresh_key = jax.random.fold_in(data["key"], 10**6 + resample)
        fresh = jax.vmap(lambda i: jax.random.fold_in(fresh_key, i))(positions)
        return make(jnp.where((seg == segment)[:, None], fresh, base))

    xe, ye = make(jax.random.split(jax.random.PRNGKey(7), 96))
    return order_problem.Problem(sample=sample, data={"key": jax.random.PRNGKey(1)},
                                 x_validation=np.asarray(xe[:64]), y_validation=np.asarray(ye[:64]),
                                 x_heldout=np.asarray(xe[64:]), num_classes=4)


def smoke_config():
    return registry.load(ROOT / "config.yaml")


def order_values():
    cfg = smoke_config()["order"]
    cfg.update(online_samples=256, segment_size=64, batch_size=16, eval_every=4,
               eval_batch_size=32, model={"kind": "mlp", "hidden": [8], "activation": "tanh"})
    # a fixed NG rate (the smoke study's frontier is for the workflow)
    cfg["methods"]["ng"] = {**cfg["methods"]["ng"], "learning_rate": 0.3}
    out = {}
    for method in cfg["methods"]:
        res = train.run_jobs(spec.job_config(cfg, method), blob_problem(), 1, [0], 0,
                             log=lambda _: None)[0]
        out[f"order/{method}/loss"] = res["loss"].tolist()
        out[f"order/{method}/probabilities"] = res["probabilities"][:8].ravel().tolist()
    return out


def overfitting_values():
    cfg = smoke_config()["overfitting"]
    rng = np.random.default_rng(0)
    patterns = rng.uniform(0, 1, (3, 6, 6))
    y = rng.integers(0, 3, 400).astype(np.int32)
    x = np.clip(patterns[y] + 0.3 * rng.normal(size=(400, 6, 6)), 0, 1).astype(np.float32)
    sizes = {"train": 120, "unlabeled": 200, "valid": 40, "test": 40}
    data = split.restrict(x, y, sizes, seed=0)
    out = {}
    for method, over in (("msgd", {"updates": 20, "batch_size": 30}),
                         ("ng_different_batch", {"updates": 4, "batch_size": 60,
                                                 "metric_batch_size": 60})):
        spec = {"dataset": "tiny", "split": sizes, "evaluations": 2, "schedule": "linear",
                "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"},
                "methods": {method: {**cfg["hyper"][method], **over}}}
        ds = loop.train(spec, method, 0, data)
        out[f"overfitting/{method}/train_ce"] = ds["train_ce"].values.tolist()
        out[f"overfitting/{method}/test_ce"] = ds["test_ce"].values.tolist()
    return out


def test_tiny_runs_keep_their_golden_values():
    golden = json.loads(GOLDEN.read_text())
    values = {**order_values(), **overfitting_values()}
    assert sorted(values) == sorted(golden)
    for name, expected in golden.items():
        np.testing.assert_allclose(values[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)


if __name__ == "__main__" and sys.argv[1:] == ["--regenerate"]:
    GOLDEN.write_text(json.dumps({**order_values(), **overfitting_values()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
