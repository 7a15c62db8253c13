"""`natgrad-study toy <command>`: what the workflow's toy rules run (paper section 4, figure 1).

- `paths`: the four methods' paths from every start (CSV) and, at the figure's KL points on the
  natural-gradient path, each method's proposed step (CSV).
- `figure`: figure 1 (error contours + paths, KL surfaces + steps) and a panel per start (PNG).

The config is the study config's `toy:` section, passed as one JSON argument.
"""
from __future__ import annotations

import argparse
import json


def _paths(args):
    from natgrad.study import stores
    from natgrad.study.toy import paths

    config = json.loads(args.config)
    table = paths.compute_paths(config)
    points = paths.kl_points(config, table)
    stores.write_text(table.to_csv(index=False, float_format="%.17g"), args.paths)
    stores.write_text(points.to_csv(index=False, float_format="%.17g"), args.kl_points)


def _figure(args):
    import pandas as pd

    from natgrad.study.toy import figure

    config = json.loads(args.config)
    table = pd.read_csv(args.paths, dtype={"start": str})
    points = pd.read_csv(args.kl_points, dtype={"start": str})
    figure.figure1(config, table, points, args.figure)
    if args.all_starts:
        figure.all_starts_figure(config, table, args.all_starts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="natgrad-study toy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("paths", help="paths of the four methods (CSV) and the KL points (CSV)")
    p.add_argument("--config", required=True, help="the resolved toy config section as JSON")
    p.add_argument("--paths", required=True, help="output CSV: start, method, step, b, w, error")
    p.add_argument("--kl-points", required=True, help="output CSV: each method's step at the KL points")
    p.set_defaults(func=_paths)

    f = sub.add_parser("figure", help="figure 1 (PNG) and the all-starts figure (PNG)")
    f.add_argument("--config", required=True, help="the resolved toy config section as JSON")
    f.add_argument("--paths", required=True)
    f.add_argument("--kl-points", required=True)
    f.add_argument("--figure", required=True, help="output PNG: the paper's figure 1")
    f.add_argument("--all-starts", help="output PNG: one panel per starting point")
    f.set_defaults(func=_figure)

    args = parser.parse_args(argv)
    args.func(args)
