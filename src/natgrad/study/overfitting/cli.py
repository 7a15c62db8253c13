"""`natgrad-study overfitting <command>`: what the workflow's overfitting rules run.

- `train`: one (method, seeds) job (several seeds only for a vmappable first-order method);
  writes each seed's learning curves as a Zarr store (a tuned method takes its settings from its
  tune record, `--tuned`).
- `tune`: a tuned method's record (the choice and every point's validation errors) from its pilot
  runs; `tune-table`: the records of one experiment as one CSV.
- `aggregate`: the jobs' stores of one experiment into one Dataset store.
- `table`: table 1 (CSV and an HTML page for the report) from the experiments' aggregated stores.
- `plot`: figures 2/4 (against updates, against wall-clock) from an aggregated store.
"""
from __future__ import annotations

import argparse
import json
import sys


def _train(args):
    from natgrad.study import stores
    from natgrad.study.overfitting import loop

    if args.compile_cache:
        from natgrad.study.compile_cache import enable_compile_cache

        enable_compile_cache(args.compile_cache)
    spec = json.loads(args.spec)
    hyper = spec["methods"][args.method]
    if "tune" in hyper:
        if not args.tuned:
            sys.exit(f"{args.method} is tuned (overfitting.tune.{hyper['tune']['method']}): pass "
                     "its tune record with --tuned")
        from natgrad.study.overfitting import tune

        with open(args.tuned) as f:
            spec["methods"][args.method] = tune.merged(hyper, json.load(f))
    if len(args.out) != len(args.seeds):
        sys.exit(f"{len(args.seeds)} seeds but {len(args.out)} --out stores: one store per seed")
    datas = [loop.load_data(spec, json.loads(args.datasets), seed) for seed in args.seeds]
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.verbose else None
    runs = loop.train_seeds(spec, args.method, args.seeds, datas, log=log,
                            checkpoint=args.checkpoint)
    for ds, data, out in zip(runs, datas, args.out):
        ds.attrs.update({"experiment": args.experiment, "dataset": spec["dataset"],
                         "split_sizes": json.dumps(data.sizes())})
        stores.write_zarr(ds, out, config=spec)
    if args.checkpoint:
        from natgrad.study import checkpoints

        checkpoints.remove(args.checkpoint)


def _tune(args):
    import numpy as np

    from natgrad.study import stores
    from natgrad.study.overfitting import aggregate, tune

    spec = json.loads(args.tune)
    runs = {}
    for path in args.runs:
        ds = stores.open_results(path).load()
        hyper = json.loads(ds.attrs["config"])["methods"][args.method]
        runs[json.dumps({k: hyper[k] for k in spec["grid"]}, sort_keys=True),
             int(ds.attrs["seed"])] = ds
    pilots = aggregate.combine(runs)
    at = aggregate.reported(pilots, spec["reported_at"])
    cells = [(json.dumps(p, sort_keys=True), s) for p in tune.points(spec["grid"])
             for s in spec["seeds"]]

    def grid_of(values):  # points × seeds, in grid order
        return np.array([values.sel(optimizer=k, seed=s).item() for k, s in cells],
                        np.float64).reshape(-1, len(spec["seeds"]))

    rec = tune.record(args.experiment, args.method, spec, grid_of(at["valid_error"]),
                      grid_of(at["train_ce"]), grid_of(pilots["train_ce"].max("point")),
                      grid_of(pilots["diverged"]).astype(bool))
    stores.write_text(json.dumps(rec, indent=1) + "\n", args.out)


def _tune_table(args):
    import pandas as pd

    from natgrad.study import stores
    from natgrad.study.overfitting import tune

    rows = []
    for path in args.records:
        with open(path) as f:
            rows += tune.rows(json.load(f))
    stores.write_text(pd.DataFrame(rows).to_csv(index=False, float_format="%.6g"), args.csv)


def _aggregate(args):
    from natgrad.study import stores
    from natgrad.study.overfitting import aggregate

    runs = {}
    for path in args.runs:
        ds = stores.open_results(path).load()
        runs[(ds.attrs["method"], int(ds.attrs["seed"]))] = ds
    out = aggregate.combine(runs)
    out.attrs["experiment"] = args.experiment
    out.attrs["reported_at"] = args.reported_at
    stores.write_zarr(out, args.out, config=aggregate.experiment_spec(runs))


def _table(args):
    import pandas as pd

    from natgrad.study import stores
    from natgrad.study.overfitting import aggregate

    frames = []
    for path in args.runs:
        ds = stores.open_results(path)
        frames.append(aggregate.table(ds, experiment=ds.attrs["experiment"]))
    df = pd.concat(frames, ignore_index=True)
    stores.write_text(df.to_csv(index=False, float_format="%.6g"), args.csv)
    stores.write_text(aggregate.table_html(df), args.html)


def _plot(args):
    from natgrad.study import stores
    from natgrad.study.overfitting import plots

    ds = stores.open_results(args.runs)
    title = args.title or ds.attrs.get("experiment")
    plots.save_curves(ds, args.updates, x="updates", title=title)
    plots.save_curves(ds, args.wallclock, x="wallclock", title=title)


def parser():
    p = argparse.ArgumentParser(prog="natgrad-study overfitting", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one method with one seed (or a first-order method's "
                       "seeds, vmapped)")
    t.add_argument("--experiment", required=True)
    t.add_argument("--spec", required=True, help="the job's spec, JSON (spec.job_spec)")
    t.add_argument("--datasets", required=True, help="the config's datasets: section, JSON")
    t.add_argument("--method", required=True)
    t.add_argument("--seeds", type=int, nargs="+", required=True)
    t.add_argument("--out", nargs="+", required=True, help="the Zarr store of each seed")
    t.add_argument("--checkpoint", help="checkpoint file (resumed when it holds this job's state)")
    t.add_argument("--compile-cache", help="JAX persistent compilation cache directory (shared "
                   "by the jobs: the seeds of one method compile the same programs)")
    t.add_argument("--tuned", help="the tune record of a tuned method (results/tune/...json)")
    t.add_argument("--verbose", action="store_true")
    t.set_defaults(func=_train)

    tu = sub.add_parser("tune", help="a tuned method's choice from its pilot runs")
    tu.add_argument("--experiment", required=True)
    tu.add_argument("--method", required=True)
    tu.add_argument("--tune", required=True, help="the method's `tune` entry (grid, seeds), JSON")
    tu.add_argument("--runs", nargs="+", required=True, help="the pilot runs' stores")
    tu.add_argument("--out", required=True, help="the tune record (JSON) to write")
    tu.set_defaults(func=_tune)

    tt = sub.add_parser("tune-table", help="the tune records of one experiment as one CSV")
    tt.add_argument("--records", nargs="+", required=True)
    tt.add_argument("--csv", required=True)
    tt.set_defaults(func=_tune_table)

    a = sub.add_parser("aggregate", help="combine the runs of one experiment")
    a.add_argument("--experiment", required=True)
    a.add_argument("--runs", nargs="+", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--reported-at", required=True, choices=("early_stopped", "final"),
                   help="the evaluation table 1 and the claims read (overfitting.reported_at)")
    a.set_defaults(func=_aggregate)

    tb = sub.add_parser("table", help="table 1 from the experiments' aggregated stores")
    tb.add_argument("--runs", nargs="+", required=True, help="one aggregated store per experiment")
    tb.add_argument("--csv", required=True)
    tb.add_argument("--html", required=True)
    tb.set_defaults(func=_table)

    pl = sub.add_parser("plot", help="figures 2/4 from an aggregated store")
    pl.add_argument("--runs", required=True)
    pl.add_argument("--updates", required=True, help="figure against updates (PNG/PDF)")
    pl.add_argument("--wallclock", required=True, help="figure against wall-clock seconds")
    pl.add_argument("--title")
    pl.set_defaults(func=_plot)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    args.func(args)
