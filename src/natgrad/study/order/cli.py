"""`python -m natgrad.study order {data,train,aggregate,plot,scaling} ...`: what the workflow's order
rules call."""
from __future__ import annotations

import argparse
import json
import sys


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def data(args):
    from natgrad.study.order import problem as problem_lib

    problem_lib.write_data_sets(json.loads(args.config), json.loads(args.datasets),
                                {"train": args.train, "heldout": args.heldout,
                                 "validation": args.validation})


def _problem(job_cfg, args, max_segment):
    from natgrad.study.order import problem as problem_lib

    if args.compile_cache:
        from natgrad.study.compile_cache import enable_compile_cache

        enable_compile_cache(args.compile_cache)
    return problem_lib.load_problem(job_cfg, {"train": args.train, "heldout": args.heldout,
                                              "validation": args.validation},
                                    max_segment=max_segment)


def train(args):
    from natgrad.study import stores
    from natgrad.study.order import train as train_lib

    job_cfg = json.loads(args.job)
    if len(args.out) != len(args.resamples):
        sys.exit("order train: one --out per --resamples value")
    extra = {"vmapped": int(args.vmapped)}
    prob = _problem(job_cfg, args, args.segment)
    results = train_lib.run_jobs(job_cfg, prob, args.segment, args.resamples, args.seed,
                                 vmapped=args.vmapped, checkpoint=args.checkpoint,
                                 checkpoint_every=args.checkpoint_every, log=_log)
    for res, out in zip(results, args.out):
        stores.write_zarr(train_lib.to_dataset(res, job_cfg, args.segment, args.seed, extra),
                          out, config=job_cfg)
        _log(f"wrote {out}: final validation error {100 * res['validation_error'][-1]:.2f} %; "
             f"first chunk (with compilation) {res['first_chunk_seconds']:.1f} s, then "
             f"{1e3 * res['seconds_per_step']:.2f} ms/step")
    if args.checkpoint is not None:
        from natgrad.study import checkpoints

        for r in args.resamples:
            checkpoints.remove(f"{args.checkpoint}.r{r}")
        checkpoints.remove(args.checkpoint)


def aggregate(args):
    from natgrad.study import stores
    from natgrad.study.order import aggregate as agg

    config = json.loads(args.config)
    ds = agg.aggregate(args.runs)
    stores.write_zarr(ds, args.out, config=config)
    stores.write_text(agg.summary_table(ds), args.table)
    stores.write_text(levels_table(ds).to_csv(index=False, float_format="%.6g"), args.levels)
    _log(ds["variance"].to_dataframe().dropna().to_string())


def levels_table(ds):
    """The matched levels of NG against MSGD in an aggregated store (no rows without both)."""
    import pandas as pd

    from natgrad.study.order import frontier

    msgd, ng = frontier.store_methods(ds)
    levels = frontier.store_levels(ds, ng, msgd) if msgd and ng else []
    return pd.DataFrame(frontier.level_rows(levels), columns=list(frontier.LEVEL_COLUMNS))


def plot(args):
    from natgrad.study import stores
    from natgrad.study.order import plots

    ds = stores.open_results(args.store)
    style = json.loads(args.style)
    plots.plot_variance(ds, args.variance, style)
    plots.plot_frontier(ds, args.frontier, style)
    plots.plot_validation(ds, args.validation, style)


def scaling(args):
    from natgrad.study import stores
    from natgrad.study.order import plots
    from natgrad.study.order import scaling as scaling_lib

    df = scaling_lib.table([stores.open_results(path) for path in args.stores])
    stores.write_text(df.to_csv(index=False, float_format="%.6g"), args.csv)
    plots.plot_scaling(df, args.figure, json.loads(args.style))
    _log(df.to_string())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="natgrad-study order")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="the train part, held-out and validation sets as stores")
    p.add_argument("--config", required=True, help="the data keys of order: as JSON (spec.data_config)")
    p.add_argument("--datasets", required=True, help="the datasets: mapping as JSON")
    for part in ("train", "heldout", "validation"):
        p.add_argument(f"--{part}", required=True, help=f"{part} store to write")
    p.set_defaults(func=data)

    p = sub.add_parser("train", help="one training job (or the vmapped resamples of a segment)")
    p.add_argument("--job", required=True, help="the job's settings as JSON (spec.job_config)")
    p.add_argument("--train", required=True, help="train-part store (order data)")
    p.add_argument("--segment", type=int, required=True)
    p.add_argument("--resamples", type=int, nargs="+", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", nargs="+", required=True, help="one Zarr store per resample")
    p.add_argument("--heldout", required=True, help="held-out set store (order data)")
    p.add_argument("--validation", required=True, help="validation set store (order data)")
    p.add_argument("--vmapped", action="store_true", help="the resamples as one vmapped program")
    p.add_argument("--checkpoint", help="checkpoint file (resumed when present)")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--compile-cache", help="folder of JAX's persistent compilation cache")
    p.set_defaults(func=train)

    p = sub.add_parser("aggregate", help="all runs into one store, and the variance")
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--config", required=True, help="the order config as JSON (for the attrs)")
    p.add_argument("--out", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--levels", required=True, help="matched levels CSV (frontier.level_rows)")
    p.set_defaults(func=aggregate)

    p = sub.add_parser("plot", help="figure 3 and the validation curves from the aggregated store")
    p.add_argument("--store", required=True)
    p.add_argument("--variance", required=True, help="figure 3: variance per segment")
    p.add_argument("--frontier", required=True, help="variance against final validation error")
    p.add_argument("--validation", required=True, help="validation-error curves")
    p.add_argument("--style", default="{}", help="plot settings as JSON")
    p.set_defaults(func=plot)

    p = sub.add_parser("scaling", help="the matched-level ratios of stores at several lengths")
    p.add_argument("--stores", nargs="+", required=True, help="aggregated order stores")
    p.add_argument("--csv", required=True)
    p.add_argument("--figure", required=True)
    p.add_argument("--style", default="{}", help="plot settings as JSON")
    p.set_defaults(func=scaling)

    args = parser.parse_args(argv)
    args.func(args)
