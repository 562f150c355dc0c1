"""``build_feature_tables``: clean tables in, feature and label tables (Parquet) out.

The loop runs over snapshots (tens), never over rows: for each snapshot every
feature is one array over all customers, the open accounts are selected, and
the rows are appended to each table as one row group, so memory stays bounded by
one snapshot whatever the number of snapshots. Parquet encoding of one snapshot
runs on a second thread while the next snapshot is computed (Arrow releases the
GIL); at most one snapshot waits to be written.

``created_timestamp`` is the build's ``as_of``: the same inputs give the same files,
and a rebuild over a longer history supersedes older rows for the same key in Feast.

Given the previous tables (``previous``), a build computes only the snapshots they do not
have, when nothing they were built from has changed (``features.transforms.incremental``):
a month of new exports costs one snapshot, not the whole history.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import FeaturesParams

from .attributes import Attributes, publish_schema
from .event_tables import EventTables, publish_event_schema
from .experience import Experience
from .fused import fused_features
from .incremental import OWN_TABLES, copy_rows, input_digest, manifest, plan_reuse, write_manifest
from .inputs import crm_extra, history_bounds, load_clean
from .labels import churned_within, decision_dates, horizon_observed, nps_labels, under_notice
from .operations import Operations
from .present import missing_tables, present_schema, publish_absent
from .schema import (
    ATTRIBUTE_VIEW,
    CREATED_TIMESTAMP,
    ENTITY,
    EVENT_TIMESTAMP,
    EVENT_VIEW,
    FEATURE_SCHEMA,
    LABEL_SCHEMA,
)
from .spine import open_mask, snapshot_dates
from .window import observation_window

TS_NS = pa.timestamp("ns", tz="UTC")
TS = pa.timestamp("us", tz="UTC")  # what Feast's DuckDB materialization can cast
ARROW_KIND = {"float": pa.float64(), "int": pa.int64(), "string": pa.string()}
ROW = "__crm_row"   # a bucket part's column: the customer's row in crm (the in-process order)
ROW_GROUP_ROWS = 1 << 20   # a snapshot's rows per row group at most (pyarrow's default, named)


class TableWriter:
    """Appends each snapshot to ``<out_dir>/<name>.parquet`` in row groups of ``group_rows``
    (``ROW_GROUP_ROWS``: one per snapshot up to 1,048,576 customers); ``groups``: how many
    row groups each write made (an empty snapshot makes one, empty)."""

    def __init__(self, path: Path, kinds: dict[str, str], created: pd.Timestamp | None,
                 group_rows: int | None = None):
        fields = [pa.field(ENTITY, pa.string()), pa.field(EVENT_TIMESTAMP, TS)]
        if created is not None:
            fields.append(pa.field(CREATED_TIMESTAMP, TS))
        fields += [pa.field(c, ARROW_KIND[k]) for c, k in kinds.items()]
        self.schema, self.created, self.rows = pa.schema(fields), created, 0
        self.group_rows, self.groups = group_rows or ROW_GROUP_ROWS, []
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, ids: pa.Array, stamps: pa.Array, columns: dict) -> None:
        arrays = [ids, stamps.cast(TS)]
        if self.created is not None:
            created = pa.array(np.full(len(ids), self.created.value), pa.int64()).cast(TS_NS)
            arrays.append(created.cast(TS))
        for field in list(self.schema)[len(arrays):]:
            arrays.append(_arrow(columns[field.name], field.type))
        self._put(pa.Table.from_arrays(arrays, schema=self.schema))

    def append(self, table: pa.Table) -> None:
        """Rows already in this table's layout (a previous build's, reused as they are)."""
        self._put(table.cast(self.schema))

    def _put(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=self.group_rows)
        self.rows += table.num_rows
        self.groups.append(max(1, -(-table.num_rows // self.group_rows)))

    def close(self) -> int:
        self.writer.close()
        return self.rows


def _arrow(values, kind: pa.DataType) -> pa.Array:
    """One column in its declared type (categoricals become plain strings)."""
    if isinstance(values, pd.Categorical):
        return pa.array(values).cast(kind)
    if pa.types.is_integer(kind):
        return pa.array(np.asarray(values, np.int64))
    if pa.types.is_floating(kind):       # NaN is written as a Parquet null
        return pa.array(np.asarray(values, np.float64), from_pandas=True)
    return pa.array(values, kind)


def _as_utc(as_of: date | datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(as_of)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).as_unit("ns")


def build_feature_tables(clean_dir: Path, out_dir: Path, params: FeaturesParams,
                         as_of: date | None = None, previous: Path | None = None) -> dict[str, int]:
    """Write customer_o, customer_x, customer_fused, churn_labels, nps_labels (and
    customer_attributes / customer_events when the export maps attributes / event tables);
    rows per table. The features of a table the export lacks are left out
    (``features.transforms.present``).

    ``as_of`` is the end of the observed history (exclusive); by default the month
    start after the latest event in the clean tables. Snapshots run from
    ``first_snapshot_after_months`` after the first month to ``as_of`` inclusive. An
    export that is one observation window (no events, or churners without a churn date)
    gets one snapshot instead, at the end of the export day: ``features.transforms.window``.
    ``previous``: the folder of the last build, whose unchanged snapshots are reused.
    """
    clean = load_clean(Path(clean_dir))
    extra = crm_extra(Path(clean_dir), ("status", "observed_until", "notice_date"))
    if "notice_date" in extra:
        clean.customers["notice_date"] = extra["notice_date"].to_numpy()
    window = observation_window(clean, extra, as_of)
    if window is None:
        start, end = history_bounds(clean)
        as_of_ts = end if as_of is None else _as_utc(as_of)
        snapshots = snapshot_dates(start, as_of_ts, params.snapshot_every_months,
                                   params.first_snapshot_after_months)
    else:                                 # one observation window (docs/features.md)
        clean.customers["churn_date"] = window.churn_date
        as_of_ts, snapshots = window.as_of, window.snapshots
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = nps_labels(clean.tables["survey_responses"], as_of_ts)
    labels[EVENT_TIMESTAMP] = labels[EVENT_TIMESTAMP].dt.as_unit("us")
    labels.to_parquet(out_dir / "nps_labels.parquet", index=False)
    schema = present_schema(publish_absent(missing_tables(Path(clean_dir)), out_dir))
    attributes = Attributes.load(Path(clean_dir))    # the export's own columns, if mapped
    event_tables = EventTables.load(Path(clean_dir), clean.customers["customer_id"])
    whole = ("one observation window" if window is not None else
             OWN_TABLES if attributes is not None or event_tables is not None else None)
    settings = params.model_dump(mode="json")
    reuse = plan_reuse(previous, clean, snapshots, settings, schema, whole)
    digest = input_digest(clean, snapshots[-1]) if whole is None and len(snapshots) else None
    ops, exp = Operations(clean), Experience(clean)
    clean.tables.clear()                      # indexed copies live on; free the frames
    for name in set(FEATURE_SCHEMA) - set(schema):    # a view the export has no data for
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
    writers = {name: TableWriter(out_dir / f"{name}.parquet", kinds, as_of_ts)
               for name, kinds in schema.items()}
    writers["churn_labels"] = TableWriter(out_dir / "churn_labels.parquet",
                                          LABEL_SCHEMA["churn_labels"], None)
    publish_schema(None if attributes is None else attributes.schema, Path(clean_dir), out_dir)
    if attributes is not None:
        writers[ATTRIBUTE_VIEW] = TableWriter(out_dir / f"{ATTRIBUTE_VIEW}.parquet",
                                              attributes.kinds, as_of_ts)
    publish_event_schema(None if event_tables is None else event_tables.schema, out_dir)
    if event_tables is not None:
        writers[EVENT_VIEW] = TableWriter(out_dir / f"{EVENT_VIEW}.parquet", event_tables.kinds,
                                          as_of_ts)
    ids_all = pa.array(clean.customers["customer_id"].astype(str).to_numpy(), pa.string())
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for name in schema if reuse is not None else ():
                copy_rows(reuse, name, writers[name])
            for snap in snapshots:
                labelled = (snap == window.export if window is not None
                            else horizon_observed(snap, params.churn_horizon_days, as_of_ts))
                reused = reuse is not None and snap <= reuse.cut
                batch = _snapshot_rows(snap, clean, ops, exp, ids_all, params, labelled,
                                       {} if reused else schema)
                if attributes is not None:        # same spine rows as the other views
                    batch[ATTRIBUTE_VIEW] = attributes.rows(batch["customer_o"], snap)
                if event_tables is not None:
                    batch[EVENT_VIEW] = event_tables.rows(batch["customer_o"], snap)
                if pending is not None:
                    pending.result()
                pending = pool.submit(_write_batch, writers, batch)
            if pending is not None:
                pending.result()
        finally:
            rows = {name: w.close() for name, w in writers.items()}
    if digest is not None:
        write_manifest(out_dir, manifest(snapshots, settings, schema, digest, reuse))
    rows["nps_labels"] = len(labels)
    return rows


def _snapshot_rows(snap, clean, ops, exp, ids_all, params, labelled: bool,
                   schema: dict[str, dict[str, str]], rows: np.ndarray | None = None) -> dict:
    """Features of every open account at one snapshot, and their churn labels, per table
    (``schema``: the views and features the export supports). ``rows``: each customer's row
    in the whole crm table, added as column ``ROW`` (a bucket's part, ``parallel``)."""
    idx = np.flatnonzero(open_mask(clean.customers, snap))
    batch = {}
    if schema:                  # empty for a reused snapshot: its labels only
        ids = ids_all.take(pa.array(idx))
        stamps = pa.array(np.full(len(idx), snap.value), pa.int64()).cast(TS_NS)
        o, x = ops.at(snap), exp.at(snap)
        tables = {"customer_o": o, "customer_x": x, "customer_fused": fused_features(o, x)}
        batch = {name: (ids, stamps, {c: cols[c][idx] for c in schema[name]}
                        | ({} if rows is None else {ROW: rows[idx]}))
                 for name, cols in tables.items() if name in schema}
    if labelled:
        notice = clean.customers.get("notice_date")
        decided = decision_dates(clean.customers["churn_date"], notice)
        label = churned_within(decided, snap, params.churn_horizon_days)
        saved = under_notice(notice, snap)
        keep = idx[~saved[idx]] if len(saved) else idx      # under notice: save desk, no label
        kept_stamps = pa.array(np.full(len(keep), snap.value), pa.int64()).cast(TS_NS)
        batch["churn_labels"] = (ids_all.take(pa.array(keep)), kept_stamps,
                                 {"churned_within_horizon": label[keep]}
                                 | ({} if rows is None else {ROW: rows[keep]}))
    return batch


def _write_batch(writers: dict[str, TableWriter], batch: dict) -> None:
    for name, (ids, stamps, columns) in batch.items():
        writers[name].write(ids, stamps, columns)
