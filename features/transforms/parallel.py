"""``build_on_cluster``: the feature and label tables built per customer bucket on Dask workers.

Customers are independent given the month: every feature row reads only its own customer's
events, except the seasonal usage level (the median usage of all customers each month) and
the snapshots (placed from the first and last event of all tables). So the build runs in
three steps: each bucket reports its event-time bounds and usage values (``summarize``);
the client places the snapshots, one worker takes the medians; then each bucket builds its
customers' rows for every snapshot into a part file (with each row's crm position), and the
parts are merged, one snapshot's row group at a time, in the in-process order (snapshot,
then crm row) into the same ``<table>.parquet`` files as ``build_feature_tables`` writes.
No process loads a whole clean table. Given a previous cluster build, the buckets compute
only the new snapshots when their inputs before its last snapshot are unchanged
(``parallel_reuse``), and the merge copies the previous tables' rows first. What stays
in-process, and why: docs/cluster.md#feature-tables-on-the-cluster
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import FeaturesParams
from features import bucketed

from .attributes import Attributes, attribute_kinds, publish_schema, read_attribute_schema
from .buckets import (
    Bucket,
    Split,
    bucket_count,
    load_bucket,
    read_bucket_frame,
    submit_split,
    summarize_bucket,
)
from .build import (
    ROW,
    ROW_GROUP_ROWS,
    TableWriter,
    _as_utc,
    _snapshot_rows,
    _write_batch,
    build_feature_tables,
)
from .event_tables import EventTables, event_kinds, publish_event_schema, read_event_schema
from .experience import Experience
from .incremental import MANIFEST, OWN_TABLES, Reuse, copy_rows, input_digest, manifest, write_manifest
from .inputs import month_start
from .labels import horizon_observed, nps_labels
from .operations import Operations
from .parallel_reuse import combine, plan_on_cluster
from .present import missing_tables, present_schema, publish_absent
from .schema import (
    ATTRIBUTE_VIEW,
    EVENT_TIMESTAMP,
    EVENT_VIEW,
    FEATURE_SCHEMA,
    LABEL_SCHEMA,
)
from .spine import snapshot_dates

log = logging.getLogger(__name__)
PARTS = ".feature-parts"     # in the output folder while the buckets run
SPLIT = ".feature-split"     # the clean tables once per bucket, while the build runs
PART_GROUP_ROWS = 1 << 14    # a part's row groups: what the merge holds per bucket is a few


@dataclass(frozen=True)
class BucketJob:
    """What one bucket's task needs: where to read and write, and what the client decided."""

    clean_dir: Path
    part_dir: Path
    index: int
    count: int
    snapshots: pd.DatetimeIndex
    as_of: pd.Timestamp
    params: FeaturesParams
    schema: dict[str, dict[str, str]]
    levels: dict[int, float]
    reuse_cut: pd.Timestamp | None = None    # snapshots up to it: labels only (rows reused)
    split: Split | None = None               # the clean tables once per bucket, if split

    @property
    def folder(self) -> Path:
        return self.part_dir / f"bucket_{self.index:05d}"


def build_on_cluster(client, clean_dir: Path, out_dir: Path, params: FeaturesParams,
                     as_of: date | None = None, previous: Path | None = None,
                     buckets: int | None = None) -> dict[str, int]:
    """``build_feature_tables`` on the workers of ``client`` (a ``distributed.Client``):
    the same files, rows, order and dtypes; rows per table. ``buckets``: default
    ``bucket_count``. An export of one observation window is built in-process; the log says
    so. ``previous``: the folder of the last cluster build of as many buckets, whose unchanged
    snapshots are reused (not when the export maps its own attribute or event tables, as
    in-process)."""
    clean_dir, out_dir = Path(clean_dir), Path(out_dir)
    count = buckets or bucket_count(clean_dir, len(client.scheduler_info()["workers"]))
    started = time.perf_counter()
    split, splitting = submit_split(client, clean_dir, count, out_dir / SPLIT)
    try:
        return _build(client, clean_dir, out_dir, params, as_of, previous, count, started,
                      split, splitting)
    finally:
        shutil.rmtree(out_dir / SPLIT, ignore_errors=True)


def _build(client, clean_dir: Path, out_dir: Path, params: FeaturesParams, as_of: date | None,
           previous: Path | None, count: int, started: float, split: Split,
           splitting: list) -> dict[str, int]:
    """``build_on_cluster`` once the clean tables are being split into ``count`` buckets."""
    summaries = [client.submit(summarize_bucket, clean_dir, i, count, split, *splitting,
                               pure=False) for i in range(count)]
    heads = client.gather([client.submit(_head, s, pure=False) for s in summaries])
    if any(h["undated"] for h in heads) or not any(h["bounds"] for h in heads):
        log.info("features: built in-process, not on the cluster (one observation window)")
        return build_feature_tables(clean_dir, out_dir, params, as_of, previous)
    start, end = _history(heads)
    as_of_ts = end if as_of is None else _as_utc(as_of)
    snapshots = snapshot_dates(start, as_of_ts, params.snapshot_every_months,
                               params.first_snapshot_after_months)
    levels = client.submit(usage_levels, *summaries, pure=False).result()
    del summaries                       # the usage values leave the workers' memory
    schema, side = _prepare(clean_dir, out_dir)
    settings = params.model_dump(mode="json")
    whole = OWN_TABLES if side else None
    reuse = plan_on_cluster(client, previous, snapshots, settings, schema, clean_dir, count, split,
                            whole)
    part_dir = out_dir / PARTS
    # each bucket's task loads it and builds it: a worker holds the bucket it builds only
    jobs = [BucketJob(clean_dir, part_dir, i, count, snapshots, as_of_ts, params, schema, levels,
                      None if reuse is None else reuse.cut, split) for i in range(count)]
    placed = time.perf_counter()
    try:
        built_parts = client.gather(client.map(build_bucket, jobs, pure=False))
        digests = [part["digest"] for part in built_parts]
        built = time.perf_counter()
        tables = {**schema, "churn_labels": LABEL_SCHEMA["churn_labels"], **side}
        merged = [client.submit(combine_table, part_dir, count, name, out_dir, kinds,
                                None if name == "churn_labels" else as_of_ts,
                                None if name == "churn_labels" else reuse,
                                [part["groups"][name] for part in built_parts], pure=False)
                  for name, kinds in tables.items()]
        nps = client.submit(combine_nps, part_dir, count, out_dir, pure=False)
        rows = dict(zip(tables, client.gather(merged), strict=True))
        rows["nps_labels"] = nps.result()
    finally:
        shutil.rmtree(part_dir, ignore_errors=True)
    if len(snapshots) and whole is None:
        write_manifest(out_dir, manifest(snapshots, settings, schema, combine(digests), reuse,
                                         buckets=count))
    log.info("features on the cluster: %d buckets; summaries %.1fs, buckets %.1fs, merge %.1fs",
             count, placed - started, built - placed, time.perf_counter() - built)
    return rows


def _head(summary: dict) -> dict:
    """A bucket's summary without its usage values (what the client receives)."""
    return {k: v for k, v in summary.items() if k != "usage"}


def _history(heads: list[dict]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``history_bounds`` over the buckets: first month start, month after the last event."""
    firsts = [lo for h in heads for lo, _ in h["bounds"].values()]
    lasts = [hi for h in heads for _, hi in h["bounds"].values()]
    return month_start(min(firsts)), month_start(max(lasts)) + pd.DateOffset(months=1)


def usage_levels(*summaries: dict) -> dict[int, float]:
    """The population's median usage per month (``operations.seasonally_adjusted``), from
    every bucket's distinct values and their counts (``summarize_bucket``), on one worker."""
    months = sorted({m for s in summaries for m in s["usage"]})
    return {m: median_of_counts(*(np.concatenate(parts) for parts in zip(
        *(s["usage"][m] for s in summaries if m in s["usage"]), strict=True))) for m in months}


def median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the values repeated their counts, exactly (values may repeat across
    buckets): a month's thousands of distinct usage values, not one float per usage row."""
    distinct, where = np.unique(values, return_inverse=True)
    total = np.zeros(len(distinct), np.int64)
    np.add.at(total, where, counts)
    ends = np.cumsum(total)
    n = int(ends[-1])
    low, high = distinct[np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")]
    return float(low if n % 2 else (low + high) / 2)


def _prepare(clean_dir: Path, out_dir: Path) -> tuple[dict[str, dict[str, str]], dict]:
    """What the client writes itself: the absent features, the schemas of the company's own
    views, and no stale view or manifest. The contract views' features, and each own view's
    (``customer_attributes``, ``customer_events``) columns, where the export has them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = present_schema(publish_absent(missing_tables(clean_dir), out_dir))
    for name in set(FEATURE_SCHEMA) - set(schema):      # a view the export has no data for
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
    attributes = (read_attribute_schema(clean_dir)
                  if (clean_dir / f"{ATTRIBUTE_VIEW}.parquet").is_file() else None)
    events = read_event_schema(clean_dir)
    publish_schema(attributes, clean_dir, out_dir)
    publish_event_schema(events, out_dir)
    (out_dir / MANIFEST).unlink(missing_ok=True)         # written once every table is
    side = ({} if attributes is None else {ATTRIBUTE_VIEW: attribute_kinds(attributes)}) | (
        {} if events is None else {EVENT_VIEW: event_kinds(events)})
    return schema, side


def build_bucket(job: BucketJob) -> dict:
    """One bucket's rows of every table into its part folder (row groups of
    ``PART_GROUP_ROWS``, a snapshot at a time; features only for the snapshots after
    ``job.reuse_cut``): rows, row groups per snapshot (``TableWriter.groups``) per table and
    the digest of its inputs before the last snapshot (the manifest's). On a worker."""
    clean, bucket = load_bucket(job.clean_dir, job.index, job.count, job.split)
    digest = input_digest(clean, job.snapshots[-1], bucket.rows) if len(job.snapshots) else None
    job.folder.mkdir(parents=True, exist_ok=True)
    labels = nps_labels(clean.tables["survey_responses"], job.as_of)
    labels[EVENT_TIMESTAMP] = labels[EVENT_TIMESTAMP].dt.as_unit("us")
    labels.to_parquet(job.folder / "nps_labels.parquet", index=False,
                      row_group_size=PART_GROUP_ROWS)     # sorted: a run for combine_nps
    ops, exp = Operations(clean, job.levels), Experience(clean)
    clean.tables.clear()
    writers = {name: TableWriter(job.folder / f"{name}.parquet", {**kinds, ROW: "int"}, job.as_of,
                                 PART_GROUP_ROWS) for name, kinds in job.schema.items()}
    writers["churn_labels"] = TableWriter(job.folder / "churn_labels.parquet",
                                          {**LABEL_SCHEMA["churn_labels"], ROW: "int"}, None,
                                          PART_GROUP_ROWS)
    side = own_views(job, clean.customers["customer_id"], bucket)
    for name, view in side.items():
        writers[name] = TableWriter(job.folder / f"{name}.parquet", {**view.kinds, ROW: "int"},
                                    job.as_of, PART_GROUP_ROWS)
    ids_all = pa.array(clean.customers["customer_id"].astype(str).to_numpy(), pa.string())
    try:
        for snap in job.snapshots:
            labelled = horizon_observed(snap, job.params.churn_horizon_days, job.as_of)
            reused = job.reuse_cut is not None and snap <= job.reuse_cut
            batch = _snapshot_rows(snap, clean, ops, exp, ids_all, job.params, labelled,
                                   {} if reused else job.schema, rows=bucket.rows)
            for name, view in side.items():     # same spine rows, as in-process
                ids, stamps, columns = view.rows(batch["customer_o"], snap)
                batch[name] = (ids, stamps, {**columns, ROW: batch["customer_o"][2][ROW]})
            _write_batch(writers, batch)
    finally:
        rows = {name: w.close() for name, w in writers.items()}
    return {"rows": rows, "digest": digest, "groups": {n: w.groups for n, w in writers.items()}}


def own_views(job: BucketJob, customer_ids: pd.Series, bucket: Bucket) -> dict:
    """The company's own views of the bucket's customers (``customer_attributes``,
    ``customer_events``), read from the split as the in-process build reads whole tables."""
    def read(name: str) -> pd.DataFrame:
        return read_bucket_frame(job.clean_dir, name, bucket, job.split)

    views = {ATTRIBUTE_VIEW: Attributes.load(job.clean_dir, read),
             EVENT_VIEW: EventTables.load(job.clean_dir, customer_ids, read)}
    return {name: view for name, view in views.items() if view is not None}


def combine_table(part_dir: Path, count: int, name: str, out_dir: Path, kinds: dict[str, str],
                  created: pd.Timestamp | None, reuse: Reuse | None,
                  groups: list[list[int]]) -> int:
    """The buckets' parts of one table merged into ``<out_dir>/<name>.parquet``: snapshot by
    snapshot, ordered by crm row as in-process and cut into the same row groups, after the
    ``reuse``d rows of the previous table (``incremental.copy_rows``, as in-process); rows
    written. ``groups``: each bucket's row groups per snapshot (``TableWriter.groups``). A
    worker holds an output row group and a few small row groups of each
    part (``PART_GROUP_ROWS``), not a whole snapshot of every customer. On a worker."""
    parts = [pq.ParquetFile(part_dir / f"bucket_{i:05d}" / f"{name}.parquet", pre_buffer=False)
             for i in range(count)]
    if len({len(g) for g in groups}) != 1:
        raise RuntimeError(f"{name}: the buckets' parts hold different snapshots: "
                           f"{sorted({len(g) for g in groups})}")
    starts = [np.concatenate([[0], np.cumsum(g)]) for g in groups]
    writer = TableWriter(out_dir / f"{name}.parquet", kinds, created)
    try:
        if reuse is not None:
            copy_rows(reuse, name, writer)
        batch = max(1 << 10, PART_GROUP_ROWS // 4)
        for snap in range(len(groups[0])):
            runs = [p.iter_batches(batch_size=batch, row_groups=range(s[snap], s[snap + 1]))
                    for p, s in zip(parts, starts, strict=True)]
            written = 0
            for chunk in bucketed.merge_runs(runs, ROW, ROW_GROUP_ROWS):
                writer.append(chunk.drop_columns([ROW]))
                written += chunk.num_rows
            if not written:                 # an empty snapshot: one empty row group, as in-process
                writer.append(parts[0].schema_arrow.empty_table().drop_columns([ROW]))
    finally:
        rows = writer.close()
    return rows


def combine_nps(part_dir: Path, count: int, out_dir: Path) -> int:
    """The NPS labels of every bucket in the in-process order (time, customer; a customer's
    answers in table order: they are all in one bucket), as ``nps_labels`` sorts them and
    pandas writes them: the buckets' sorted runs merged (``bucketed.merge_runs``) into row
    groups of ``ROW_GROUP_ROWS``, in the parts' unified types. On a worker, holding a row
    group and a batch per bucket."""
    parts = [pq.ParquetFile(part_dir / f"bucket_{i:05d}" / "nps_labels.parquet",
                            pre_buffer=False) for i in range(count)]
    schema = bucketed.merged_schema([p.schema_arrow for p in parts])
    runs = [(batch.cast(schema) for batch in p.iter_batches(batch_size=PART_GROUP_ROWS // 4))
            for p in parts]
    rows = 0
    with pq.ParquetWriter(out_dir / "nps_labels.parquet", schema) as writer:
        for chunk in bucketed.merge_runs(runs, [EVENT_TIMESTAMP, "customer_id"], ROW_GROUP_ROWS,
                                           ties=True):
            writer.write_table(chunk)
            rows += chunk.num_rows
        if not rows:
            writer.write_table(schema.empty_table())
    return rows
