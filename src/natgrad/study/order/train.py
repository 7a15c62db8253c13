"""One online training run of the order-robustness experiment, resumable and bit-reproducible.

A run is a jitted `chunk` of `eval_every` steps (a `lax.scan`), called again and again: the
stream positions of step t are [t·B, (t+1)·B), a pure function of t, so a run restarted from a
checkpoint taken between two chunks calls the same compiled programs on the same inputs and ends
with exactly the numbers of an uninterrupted run.

A `natgrad.study.order.problem.Problem` holds what a run needs from the data (a jittable sampler
over the stream, the validation and held-out sets); the training code never reads files, so the
tests drive it with a synthetic stream. The methods come from `natgrad.study.methods`.

Several resamples of one segment can run as one vmapped program (`run_jobs(..., vmapped=True)`):
the carry gets a leading resample axis and the sampler takes the resample as a traced integer.
Each resample keeps its own numbers, equal to a separate run's up to float32 rounding (XLA
compiles the batched program differently, e.g. a reduction may sum in another order).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study import checkpoints, stores
from natgrad.study.checked import NonFiniteError, checked, raise_failed
from natgrad.study.provenance import settings_digest
from natgrad.study.methods import Batch, StepRecord, build_method
from natgrad.study.model import build_model
from natgrad.study.order import spec as spec_lib

DIAGNOSTICS = StepRecord._fields


class Interrupted(RuntimeError):
    """Raised by `run_jobs(stop_after=...)` to simulate a job killed right after a checkpoint."""


def init_params(model, seed, input_dim):
    return model.init(jax.random.PRNGKey(seed), jnp.zeros((1, input_dim), jnp.float32))


# ---- compiled pieces -----------------------------------------------------------------------------

def make_chunk(method, sample, job_cfg):
    """`chunk(carry, data, t0, segment, resample, length) -> (carry, diagnostics per step)`.

    Only `length` is static: every job of a method (any segment, any resample) runs the same compiled
    program, which the persistent compilation cache then compiles once for the whole study.
    """
    b = job_cfg["batch_size"]

    def chunk(carry, data, t0, segment, resample, length):
        def body(carry, t):
            params, state = carry
            positions = t * b + jnp.arange(b)
            x, y = sample(data, positions, segment, resample)
            params, state, record = method.update(params, state, Batch(x, y), t)
            return (params, state), record._asdict()

        return jax.lax.scan(body, carry, t0 + jnp.arange(length))

    return chunk


def make_eval(apply, batch_size):
    """`errors(params, x, y)` and `probabilities(params, x)`, batch by batch (fixed batch shapes)."""

    @jax.jit
    def _batch_probs(params, x):
        return jax.nn.softmax(apply(params, x), axis=-1)

    def probabilities(params, x):
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            pad = batch_size - len(xb)
            if pad:
                xb = np.concatenate([xb, np.zeros((pad,) + xb.shape[1:], xb.dtype)])
            out.append(np.asarray(_batch_probs(params, xb))[:batch_size - pad])
        return np.concatenate(out) if out else np.zeros((0,), np.float32)

    def error(params, x, y):
        return float(np.mean(np.argmax(probabilities(params, x), -1) != y))

    return error, probabilities


# ---- a run ---------------------------------------------------------------------------------------

_COMPILED = {}


def _compiled(job_cfg, problem, vmapped):
    """The model, the method and the jitted functions of a (settings, problem, vmapped) triple,
    built once per process so that runs of the same settings share their compiled programs."""
    key = (settings_digest(job_cfg), id(problem), bool(vmapped))
    if key not in _COMPILED:
        model = build_model(job_cfg["model"], problem.num_classes)
        hyper = job_cfg["hyper"]
        method = build_method(hyper["kind"], hyper, model.apply, checks=not vmapped)
        chunk = make_chunk(method, problem.sample, job_cfg)
        # vmapped resamples run unchecked (see `checked`); the host's finiteness check remains
        chunk_fn = checked(chunk, static_argnames="length",
                           in_axes=(0, None, None, None, 0) if vmapped else None)
        error, probabilities = make_eval(model.apply, job_cfg.get("eval_batch_size", 4096))
        _COMPILED[key] = (problem, model, method, chunk_fn, error, probabilities)
    return _COMPILED[key][1:]


def run_jobs(job_cfg, problem, segment, resamples, seed, *, vmapped=False, checkpoint=None,
             checkpoint_every=None, stop_after=None, log=print):
    """Train the runs (segment, r, seed) for r in `resamples`; returns one result dict per resample.

    vmapped: run the resamples as one vmapped program (otherwise one after the other).
    checkpoint: path of the checkpoint file (None: no checkpoints); resumed when it exists and was
        made by the same settings; removed when the runs end.
    checkpoint_every: steps between checkpoints, rounded up to whole `eval_every` chunks.
    stop_after: for tests, raise `Interrupted` after the first checkpoint at or past this step.
    """
    resamples = list(resamples)
    if not vmapped and len(resamples) != 1:
        return [r for res in resamples for r in run_jobs(
            job_cfg, problem, segment, [res], seed, vmapped=False, checkpoint=None
            if checkpoint is None else f"{checkpoint}.r{res}", checkpoint_every=checkpoint_every,
            stop_after=stop_after, log=log)]
    run = _Run(job_cfg, problem, segment, resamples, seed, vmapped)
    step, carry, history = run.start(checkpoint, log)
    carry, timing = run.train(step, carry, history, checkpoint, checkpoint_every, stop_after, log)
    return run.results(carry, history, timing)


class _Run:
    """One call of `run_jobs`: the compiled pieces, the initial carry and the bookkeeping."""

    def __init__(self, job_cfg, problem, segment, resamples, seed, vmapped):
        self.job_cfg, self.problem, self.segment = job_cfg, problem, segment
        self.resamples, self.vmapped = resamples, vmapped
        self.names = [spec_lib.describe(job_cfg, segment, r, seed) for r in resamples]
        self.fingerprint = settings_digest({"job": job_cfg, "segment": segment,
                                                 "resamples": resamples, "seed": seed,
                                                 "vmapped": vmapped})
        self.n_steps = spec_lib.num_steps(job_cfg)
        self.every = job_cfg["eval_every"]
        self.eval_steps = list(range(0, self.n_steps, self.every)) + [self.n_steps]
        (model, method, self.chunk_fn, self.error,
         self.probabilities) = _compiled(job_cfg, problem, vmapped)
        params = init_params(model, seed, problem.x_validation.shape[1])
        carry = (params, method.init(params))
        self.r_arr = jnp.asarray(resamples, jnp.int32)
        if vmapped:
            carry = jax.tree_util.tree_map(
                lambda a: jnp.broadcast_to(a, (len(resamples),) + a.shape), carry)
        self.carry0 = carry
        self.data = problem.data_for_seed(seed)

    def member(self, carry, i):
        return jax.tree_util.tree_map(lambda a: a[i], carry) if self.vmapped else carry

    def validation_errors(self, carry):
        p = self.problem
        return [self.error(self.member(carry, i)[0], p.x_validation, p.y_validation)
                for i in range(len(self.resamples))]

    def start(self, checkpoint, log):
        """(step, carry, history): from the checkpoint when it is this run's, else from step 0."""
        resumed = None if checkpoint is None else checkpoints.load(checkpoint, self.fingerprint,
                                                                   self.carry0, log)
        if resumed is not None:
            log(f"resumed from {checkpoint} at step {resumed[0]}/{self.n_steps}")
            return resumed
        shape = (len(self.resamples),)
        history = {"validation_error": np.full(shape + (len(self.eval_steps),), np.nan, np.float32)}
        history.update({k: np.zeros(shape + (self.n_steps,), np.int32 if k in (
            "solver_iterations", "solver_flag", "rejected") else np.float32) for k in DIAGNOSTICS})
        history["validation_error"][:, 0] = self.validation_errors(self.carry0)
        return 0, self.carry0, history

    def train(self, step, carry, history, checkpoint, checkpoint_every, stop_after, log):
        """Chunks of `eval_every` steps until the end, checkpointing between chunks; the carry and
        the timing (compilation is in the first chunk of this process)."""
        ckpt_chunks = max(1, -(-(checkpoint_every or self.n_steps) // self.every))
        shape = (len(self.resamples),)
        t_start, steps_run = time.perf_counter(), 0
        first_chunk_seconds, t_steady, steady_steps = 0.0, None, 0
        chunks_done = step // self.every
        while step < self.n_steps:
            length = min(self.every, self.n_steps - step)
            error, (carry, diag) = self.chunk_fn(carry, self.data, jnp.int32(step),
                                                 jnp.int32(self.segment),
                                                 self.r_arr if self.vmapped else self.r_arr[0],
                                                 length=length)
            raise_failed(error, f"steps {step}-{step + length} of {'; '.join(self.names)}")
            diag = {k: np.asarray(v).reshape(shape + (length,)) for k, v in diag.items()}
            _check_finite(carry, diag, self.vmapped, self.names, step + length)
            for k, v in diag.items():
                history[k][:, step:step + length] = v
            step += length
            steps_run += length
            chunks_done += 1
            if steps_run == length:  # the first chunk of this process: compilation included
                first_chunk_seconds = time.perf_counter() - t_start
                t_steady, steady_steps = time.perf_counter(), 0
            else:
                steady_steps += length
            errors = self.validation_errors(carry)
            history["validation_error"][:, self.eval_steps.index(step)] = errors
            log(f"step {step}/{self.n_steps} validation error "
                f"{np.array2string(np.asarray(errors, np.float32), precision=4)}")
            if checkpoint is not None and step < self.n_steps and chunks_done % ckpt_chunks == 0:
                checkpoints.save(checkpoint, self.fingerprint, step, carry, history)
                if stop_after is not None and step >= stop_after:
                    raise Interrupted(f"stopped after the checkpoint at step {step}")
        steady = (time.perf_counter() - t_steady) / steady_steps if steady_steps else float("nan")
        return carry, {"seconds": time.perf_counter() - t_start, "steps_run": steps_run,
                       "first_chunk_seconds": first_chunk_seconds, "seconds_per_step": steady}

    def results(self, carry, history, timing):
        out = []
        for i, r in enumerate(self.resamples):
            probs = self.probabilities(self.member(carry, i)[0], self.problem.x_heldout)
            if not np.all(np.isfinite(probs)):
                raise NonFiniteError(f"{self.names[i]}: non-finite held-out outputs at the end "
                                     "of training")
            out.append({"resample": r, "probabilities": probs.astype(np.float32),
                        "eval_steps": np.asarray(self.eval_steps, np.int64),
                        **{k: history[k][i] for k in ("validation_error",) + DIAGNOSTICS},
                        **timing})
        return out


def _check_finite(carry, diag, vmapped, names, step):
    leaves = jax.tree_util.tree_leaves(carry[0])
    n = len(names)
    bad = np.zeros(n, bool)
    for leaf in leaves:
        a = np.asarray(leaf).reshape((n, -1) if vmapped else (1, -1))
        bad |= ~np.all(np.isfinite(a), axis=1)
    bad |= ~np.all(np.isfinite(diag["loss"]), axis=1)
    if bad.any():
        which = "; ".join(nm for nm, b in zip(names, bad) if b)
        raise NonFiniteError(f"non-finite parameters or loss by step {step} in {which}: "
                             "the run is stopped and nothing is written")


#: long_name and units of the variables of a run's store (CF conventions).
VARIABLES = {
    "probabilities": ("held-out softmax outputs after the whole online run", "1"),
    "validation_error": ("validation error after eval_step steps", "%"),
    "loss": ("minibatch cross-entropy before each step", "nats"),
    "solver_iterations": ("Krylov iterations per step (0 for first-order methods)", "1"),
    "relative_residual": ("solver relative residual per step (NaN for first-order methods)", "1"),
    "damping": ("damping λ per step (NaN for first-order methods)", "1"),
    "solver_flag": ("solver exit flag per step (-1 for first-order methods)", "1"),
    "rejected": ("1 where the step was rejected, not applied (natural gradient with reject)", "1"),
}


def to_dataset(result, job_cfg, segment, seed, extra_attrs=None):
    """One run's result as an xarray Dataset (the per-job Zarr store); the store's `config`
    attribute (`stores.write_zarr`) is the job's settings."""
    import xarray as xr

    ds = xr.Dataset(
        {
            "probabilities": (("sample", "class"), result["probabilities"]),
            "validation_error": (("eval",), np.float32(100) * result["validation_error"]),
            **{k: (("step",), result[k]) for k in DIAGNOSTICS},
        },
        coords={
            "sample": np.arange(result["probabilities"].shape[0]),
            "class": np.arange(result["probabilities"].shape[1]),
            "eval_step": (("eval",), result["eval_steps"]),
            "step": np.arange(len(result["loss"])),
        },
        attrs={
            "experiment": "order",
            "method": job_cfg["method"],
            "kind": job_cfg["hyper"]["kind"],
            "segment": int(segment),
            "resample": int(result["resample"]),
            "seed": int(seed),
            "learning_rate": float(job_cfg["hyper"]["learning_rate"]),
            "train_seconds": float(result["seconds"]),
            "steps_timed": int(result["steps_run"]),
            "first_chunk_seconds": float(result["first_chunk_seconds"]),
            "seconds_per_step": float(result["seconds_per_step"]),
            "device": str(jax.devices()[0].platform),
            **(extra_attrs or {}),
        },
    )
    ds["eval_step"].attrs.update(long_name="training steps before the evaluation", units="1")
    return stores.annotate(ds, VARIABLES)
