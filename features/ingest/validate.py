"""Row-level validation driven by the pandera schemas.

The checks are the ones declared in :mod:`features.ingest.schemas`; they are
evaluated here one by one on the typed frame (``Check.__call__`` is vectorized)
instead of through ``schema.validate(lazy=True)``. That gives a boolean mask per
check directly (no failure-case frame to map back to rows) and is faster: on a
5M-row invoice table pandera's lazy validation of the already typed frame took
9.8 s, coercion + every check + the per-row reasons here 6.2 s. As in pandera,
nulls pass a column's checks; the ``nullable`` flag alone decides whether a null
is a failure.

Primary keys: among the rows that pass every other check, the first occurrence
of a key is kept and the later ones are quarantined (``duplicate key``). A row
that fails another check does not claim its key.

Event times after the export (the CRM's ``observed_until``, else the time of ingest)
are quarantined: a clock or export error, not something that happened.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow

from features.ingest.coerce import coerce_frame
from features.ingest.reasons import Reasons
from features.ingest.schemas import primary_key


def check_passes(check: pa.Check, obj: pd.Series | pd.DataFrame) -> np.ndarray:
    """Boolean pass mask of one pandera check; nulls (dropped by pandera) pass."""
    out = check(obj).check_output
    if isinstance(out, pd.DataFrame):
        out = out.all(axis=1)
    out = out.reindex(obj.index).astype("boolean").fillna(True)
    return out.to_numpy(dtype=bool)


def column_failures(
    typed: pd.DataFrame,
    schema: pa.DataFrameSchema,
    reasons: Reasons,
    unparseable: dict[str, np.ndarray],
) -> None:
    """Null and value checks of every contract column."""
    for name, col in schema.columns.items():
        values = typed[name]
        present = values.notna().to_numpy()
        if not col.nullable:
            # unparseable values are already reported and also null now: not twice
            reasons.add(~present & ~unparseable[name], f"{name}: must not be null")
        for check in col.checks:
            reasons.add(present & ~check_passes(check, values), f"{name}: {check.error}")


def frame_failures(typed: pd.DataFrame, schema: pa.DataFrameSchema, reasons: Reasons) -> None:
    """Cross-column rules (their ``error`` already names the column)."""
    for check in schema.checks:
        reasons.add(~check_passes(check, typed), check.error)


def claimed_earlier(rows: pd.DataFrame, earlier: pyarrow.Table) -> np.ndarray:
    """Rows whose key is among the ``earlier`` keys (an Arrow hash join, no pandas copy)."""
    keys = pyarrow.Table.from_pandas(rows, preserve_index=False).select(earlier.column_names)
    keys = keys.cast(earlier.schema.remove_metadata())
    keys = keys.append_column("_row", pyarrow.array(np.arange(len(rows), dtype=np.int64)))
    hits = keys.join(earlier, keys=earlier.column_names, join_type="left semi")
    out = np.zeros(len(rows), dtype=bool)
    out[hits["_row"].to_numpy()] = True
    return out


def duplicate_failures(typed: pd.DataFrame, schema: pa.DataFrameSchema, reasons: Reasons,
                       earlier: pyarrow.Table | None = None) -> None:
    """Later occurrences of a primary key among the otherwise valid rows; ``earlier``: the
    keys the rows before these claimed (an incremental ingest's new rows come after them)."""
    key = primary_key(schema)
    if not key:
        return
    candidates = ~reasons.failed & typed[key].notna().all(axis=1).to_numpy()
    rows = typed.loc[candidates, key]
    later = rows.duplicated(keep="first").to_numpy()
    if earlier is not None and earlier.num_rows and len(rows):
        later |= claimed_earlier(rows, earlier)
    dup = np.zeros(len(typed), dtype=bool)
    dup[candidates] = later
    reasons.add(dup, f"{'+'.join(key)}: duplicate key (first occurrence kept)")


# when something happened (a term end date or a churn date may lie ahead; these may not)
EVENT_TIMES = ("signup_date", "invoice_date", "month", "opened_at", "closed_at", "received_at",
               "ordered_at", "sent_at", "responded_at", "assigned_at")


def export_end(observed_until: pd.Series | None, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The end of the export (UTC, exclusive): the day after the latest ``observed_until``,
    or the time of ingest when the export does not say."""
    latest = observed_until.max() if observed_until is not None else pd.NaT
    if pd.isna(latest):
        return pd.Timestamp.now(tz="UTC") if now is None else now
    return pd.Timestamp(latest).normalize().tz_localize("UTC") + pd.Timedelta(days=1)


def future_failures(typed: pd.DataFrame, until: pd.Timestamp, reasons: Reasons) -> None:
    """Event dates after the export day, event timestamps at or after ``until``."""
    last_day = (until - pd.Timedelta(microseconds=1)).tz_convert("UTC").tz_localize(None)
    label = last_day.date().isoformat()
    for name in (c for c in EVENT_TIMES if c in typed.columns):
        values = typed[name]
        if getattr(values.dtype, "tz", None) is not None:
            late = values >= until
        else:
            late = values > last_day.normalize()
        reasons.add(late.fillna(False).to_numpy(dtype=bool),
                    f"{name}: after the export date ({label})")


def validate_rows(raw: pd.DataFrame, schema: pa.DataFrameSchema,
                  until: pd.Timestamp | None = None,
                  earlier_keys: pyarrow.Table | None = None) -> tuple[pd.DataFrame, Reasons]:
    """Typed contract columns of ``raw`` and the reasons of every failing row; ``until``:
    the end of the export (see :func:`export_end`); ``earlier_keys``: see
    :func:`duplicate_failures`."""
    reasons = Reasons(len(raw))
    typed, unparseable = coerce_frame(raw, schema, reasons)
    column_failures(typed, schema, reasons, unparseable)
    frame_failures(typed, schema, reasons)
    if until is not None:
        future_failures(typed, until, reasons)
    duplicate_failures(typed, schema, reasons, earlier_keys)
    return typed, reasons
