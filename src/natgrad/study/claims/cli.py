"""`natgrad-study claims table ...`: the claims table (CSV and Markdown) from the stored results."""
from __future__ import annotations

import argparse
import json
import os


def _table(args):
    import pandas as pd

    from natgrad.study import stores
    from natgrad.study.claims import table

    def store(path):
        return stores.open_results(path) if path else None

    restricted_mnist, order = store(args.restricted_mnist), store(args.order)
    df = table.claims_table(
        restricted_mnist=restricted_mnist, order=order,
        toy_paths=pd.read_csv(args.toy_paths, dtype={"start": str}) if args.toy_paths else None,
        toy_config=json.loads(args.toy_config) if args.toy_config else None,
        equivalence=pd.read_csv(args.equivalence) if args.equivalence else None,
        tfd=store(args.tfd), table1=dict(_named_store(arg) for arg in args.table1))
    stores.write_text(df.to_csv(index=False), args.csv)
    provenance = _provenance(restricted_mnist if restricted_mnist is not None else order)
    stores.write_text(table.markdown(df, provenance), args.md)


def _named_store(arg):
    """`NAME=PATH` -> (NAME, the store at PATH)."""
    from natgrad.study import stores

    name, sep, path = arg.partition("=")
    if not (sep and name and path):
        raise SystemExit(f"--table1 {arg!r}: expected NAME=STORE")
    return name, stores.open_results(path)


def _provenance(ds):
    """One line: the commit that made the results (from a store), the date, the machine."""
    import datetime
    import platform

    made = "" if ds is None else (f"results made by natgrad {ds.attrs.get('natgrad_version')} at "
                                  f"commit {str(ds.attrs.get('git_commit'))[:10]} (dirty: "
                                  f"{ds.attrs.get('git_dirty')}); ")
    return (f"{made}table written {datetime.date.today().isoformat()} on {platform.node()} "
            f"({_cpu_model()}, {os.cpu_count()} CPUs, {platform.machine()}).")


def _cpu_model():
    """The CPU's model name (Linux), else the platform's processor string."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="natgrad-study claims")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("table", help="claims.csv and claims.md from the aggregated results")
    p.add_argument("--restricted-mnist", help="restricted MNIST's combined store (runs.zarr)")
    p.add_argument("--order", help="the order experiment's store (order.zarr)")
    p.add_argument("--toy-paths", help="the toy experiment's paths.csv")
    p.add_argument("--toy-config", help="the toy: section as JSON (its grid locates the minima)")
    p.add_argument("--equivalence", help="the section-7 table.csv")
    p.add_argument("--tfd", help="TFD's combined store, when the TFD row is declared")
    p.add_argument("--table1", action="append", default=[], metavar="NAME=STORE",
                   help="another table-1 experiment's combined store, C1-C3 decided on it too "
                        "(repeatable)")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.set_defaults(func=_table)
    args = parser.parse_args(argv)
    args.func(args)
