"""`natgrad-study equivalence <command>`: what the workflow's section-7 rules run.

- `table`: the differences between the extended Gauss-Newton matrix and the Fisher, and between a
  Hessian-free step and a natural-gradient step, one row per family (CSV, and an HTML page for the
  report); exits non-zero, writing nothing, when a difference exceeds the config's tolerance.
"""
from __future__ import annotations

import argparse
import json
import sys


def _table(args):
    from natgrad.study import stores
    from natgrad.study.equivalence import compute

    config = json.loads(args.config)
    df = compute.table(config)
    print(df.to_string(), file=sys.stderr)
    compute.check(df, float(config["tolerance"]))
    stores.write_text(df.to_csv(index=False, float_format="%.6e"), args.out)
    stores.write_text(compute.table_html(df), args.html)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="natgrad-study equivalence", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="the section-7 differences (CSV); fails above the tolerance")
    t.add_argument("--config", required=True, help="the resolved equivalence config section as JSON")
    t.add_argument("--out", required=True, help="output CSV, one row per family")
    t.add_argument("--html", required=True, help="output HTML page for the report")
    t.set_defaults(func=_table)
    args = parser.parse_args(argv)
    args.func(args)
