"""Figure 3's frontier verdict across scale: the NG/MSGD variance ratio at matched validation error
(the C4 rule of `natgrad.study.order.frontier`) for the order experiment run at several stream
lengths, as one table (`results/scaling/order.csv`)."""
from __future__ import annotations

import json
import math

import numpy as np

from natgrad.study.order import frontier
from natgrad.study.statistics import paired

COLUMNS = ("stream_length", "segment", "matched_level", "matched_error", "ratio", "ci_low",
           "ci_high", "n", "bracketed")


def rows(store):
    """The table's rows of one aggregated store: every (segment, MSGD grid point) level with the
    geometric-mean ratio NG/MSGD over seeds and its 95 % interval (NaN when not bracketed)."""
    msgd, ng = frontier.store_methods(store)
    if msgd is None or ng is None:
        raise ValueError("the order store needs an MSGD and a natural-gradient method")
    length = int(json.loads(store.attrs["config"])["online_samples"])
    out = []
    for level in frontier.store_levels(store, ng, msgd):
        c = paired(level.log_variance - level.reference_log_variance) if level.bracketed else None
        out.append({"stream_length": length, "segment": level.segment + 1,
                    "matched_level": level.reference_rate,
                    "matched_error": float(np.mean(level.errors)),
                    "ratio": math.exp(c.mean) if c else math.nan,
                    "ci_low": math.exp(c.low) if c else math.nan,
                    "ci_high": math.exp(c.high) if c else math.nan,
                    "n": c.n if c else 0, "bracketed": level.bracketed})
    return out


def table(stores):
    """The scaling table (a DataFrame with `COLUMNS`) of several aggregated order stores."""
    import pandas as pd

    df = pd.DataFrame([r for store in stores for r in rows(store)], columns=list(COLUMNS))
    return df.sort_values(["matched_level", "segment", "stream_length"], ignore_index=True)
