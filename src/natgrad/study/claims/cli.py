"""`natgrad-study claims table ...`: the claims table (CSV and Markdown) from the stored results."""
from __future__ import annotations

import argparse
import json
import os


def _table(args):
    from natgrad.study import stores
    from natgrad.study.claims import table

    results = json.loads(args.results)
    df = table.claims_table(results, json.loads(args.settings))
    stores.write_text(df.to_csv(index=False), args.csv)
    made = next((path for paths in results.values() for path in paths.values()
                 if not path.endswith(".csv")), None)
    provenance = _provenance(stores.open_results(made) if made else None)
    stores.write_text(table.markdown(df, provenance), args.md)


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
    p.add_argument("--results", required=True,
                   help="{experiment: {claims input: path}} as JSON (natgrad.study.registry.claims_results)")
    p.add_argument("--settings", default="{}", help="{experiment: its config section} as JSON")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.set_defaults(func=_table)
    args = parser.parse_args(argv)
    args.func(args)
