"""Figure 3's frontier verdict across scale: the NG/MSGD variance ratio at matched validation error
(the C4 rule of `natgrad.study.order.frontier`) for the order experiment run at several stream
lengths, as one table (`results/scaling/order.csv`).

Two kinds of rows (`level_kind`): `msgd_rate`, at each MSGD grid point's own final validation
error (the claims' levels; they fall as the stream lengthens), and `common_error`, at whole-percent
validation errors that every length's frontiers span (the span's midpoint when it holds no whole
percent: `frontier.common_errors`), both methods interpolated, so the ratio can be read against
length at equal fit."""
from __future__ import annotations


from natgrad.study.order import frontier

COLUMNS = ("stream_length", "level_kind") + frontier.LEVEL_COLUMNS
MSGD_RATE, COMMON_ERROR = "msgd_rate", "common_error"


def methods(store):
    """(MSGD's name, NG's name) of an aggregated store; raises ValueError when one is missing."""
    msgd, ng = frontier.store_methods(store)
    if msgd is None or ng is None:
        raise ValueError("the order store needs an MSGD and a natural-gradient method")
    return msgd, ng


def rows(store, common=()):
    """The table's rows of one aggregated store: every (segment, MSGD grid point) level, then every
    (segment, validation error of `common`) level."""
    msgd, ng = methods(store)
    length = int(store["online_samples"])
    kinds = ((MSGD_RATE, frontier.store_levels(store, ng, msgd)),
             (COMMON_ERROR, frontier.error_levels(store, ng, msgd, common)))
    return [{"stream_length": length, "level_kind": kind, **row}
            for kind, levels in kinds for row in frontier.level_rows(levels)]


def table(stores):
    """The scaling table (a DataFrame with `COLUMNS`) of several aggregated order stores."""
    import pandas as pd

    for store in stores:
        methods(store)
    common = frontier.common_errors(stores)
    df = pd.DataFrame([r for store in stores for r in rows(store, common)], columns=list(COLUMNS))
    parts = [df[df["level_kind"] == kind].sort_values([by, "segment", "stream_length"])
             for kind, by in ((MSGD_RATE, "matched_level"), (COMMON_ERROR, "matched_error"))]
    return pd.concat(parts, ignore_index=True)
