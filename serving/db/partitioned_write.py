"""A scoring run written per customer bucket: workers load their rows, the client makes it visible.

Only on PostgreSQL (``workers_write``), which takes writes from several processes at once;
on SQLite the client writes the whole run as before. ``open_run`` (client) inserts the run
under status ``writing`` and creates its empty partitions; each bucket's worker loads its
customers' scores, tags and tag events into them in one transaction (``write_bucket``: COPY,
so a worker that fails or dies leaves none of its rows, and a retried task starts clean);
``finish_run`` (client, through ``write_scoring_run``) checks every row is in, writes the
plan and alerts, sets the arbitration's columns of the customers it changed, indexes the
partitions and flips the run to ``complete`` in one transaction. Readers read complete runs
only, so the run appears at once; a run never finished is removed by the next write.
Design: docs/cluster.md#batch-scoring-on-the-cluster
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Column, Engine, MetaData, Table, func, select, update

from serving.db import write
from serving.db.bulk import bulk_insert
from serving.db.frames import RunMeta, ScoringRun, run_frames
from serving.db.schema import RUN_KINDS, WRITING, create_partition, index_partition, partition, scoring_runs

ARBITRATED = ("recommended_action", "expected_value", "reasons", "alert")   # set after arbitration


@dataclass(frozen=True, eq=False)
class PendingRun:
    """An open run the workers wrote (``url``: where to), and the customers whose
    arbitration columns (``ARBITRATED``) the client still has to set."""

    url: str
    run_id: str
    meta: RunMeta
    changed: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    written: dict = field(default_factory=dict)   # rows per partition the buckets say they wrote

    def __repr__(self) -> str:   # never the URL: it may hold a password
        return f"PendingRun({self.run_id}, {len(self.changed)} changed)"


def workers_write(url: str) -> bool:
    """Whether buckets write their own rows: PostgreSQL only (SQLite has one writer at a time,
    and a file shared by several hosts is not safe)."""
    return url.startswith("postgresql")


def open_run(engine: Engine, as_of: date, meta: RunMeta) -> PendingRun:
    """The run's row (status ``writing``) and its empty partitions, for the workers to fill."""
    run_id = write.new_run_id(as_of)
    write.start_run(engine, run_id, as_of, meta)
    try:
        with engine.begin() as conn:
            for kind in RUN_KINDS:
                create_partition(conn, kind, run_id, meta.lineage())
    except BaseException:
        discard_run(engine, run_id)
        raise
    return PendingRun(engine.url.render_as_string(hide_password=False), run_id, meta)


def discard_run(engine: Engine, run_id: str) -> None:
    """Remove a run that will not be finished: its partitions, shared rows and run row."""
    write._delete_runs(engine, [run_id])


def abandon_run(run: PendingRun) -> None:
    """``discard_run`` from the client when scoring failed after the run was opened."""
    engine = write.make_engine(run.url, create=False)
    try:
        discard_run(engine, run.run_id)
    finally:
        engine.dispose()


def bucket_frames(run: PendingRun, as_of: date, customers: pd.DataFrame, tags: pd.DataFrame,
                  tag_events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The bucket's rows of the three partitions, validated as the client's write does."""
    frames = run_frames(ScoringRun(as_of, run.meta, customers, tags=tags, tag_events=tag_events),
                        run.run_id)
    return {kind: frames[kind] for kind in RUN_KINDS}


def write_bucket(run: PendingRun, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Load one bucket's rows into the open run's partitions, all in one transaction (on a
    worker; a failure leaves none of them); returns rows per partition."""
    engine = write.make_engine(run.url, create=False)
    try:
        with engine.begin() as conn:
            return {kind: bulk_insert(conn, partition(kind, run.run_id), frame)
                    for kind, frame in frames.items()}
    finally:
        engine.dispose()


def _check_open(engine: Engine, run: PendingRun, meta: RunMeta) -> None:
    with engine.connect() as conn:
        row = conn.execute(select(scoring_runs).where(scoring_runs.c.run_id == run.run_id)).first()
    if row is None or row.status != WRITING:
        state = "gone (removed as a leftover by another write?)" if row is None else row.status
        raise RuntimeError(f"scoring run {run.run_id}: expected an open run written by the workers, "
                           f"found it {state}")
    if meta.lineage() != {k: getattr(row, k) for k in meta.lineage()}:
        raise RuntimeError(f"scoring run {run.run_id}: the workers wrote it with other models or "
                           "data than the run being finished")


def expected_counts(frames: dict[str, pd.DataFrame], written: dict) -> dict[str, int]:
    """Rows each partition must hold: one score and one tag row per customer the client
    holds; the tag events the buckets reported writing (the client does not gather them:
    at scale they are the largest of a run's frames), else the client's own frame's."""
    customers = len(frames["customer_scores"])
    want = {kind: len(frames.get(kind, ())) for kind in RUN_KINDS}
    if written:
        want |= {"customer_tags": customers, "tag_events": int(written.get("tag_events", 0))}
    return want


def _check_counts(engine: Engine, run_id: str, want: dict[str, int]) -> None:
    """Every bucket's rows are in, once: the workers' rows against what the run must hold."""
    with engine.connect() as conn:
        have = {kind: conn.execute(select(func.count()).select_from(partition(kind, run_id))).scalar()
                for kind in RUN_KINDS}
    if have != want:
        raise RuntimeError(f"scoring run {run_id}: the workers wrote {have} rows, the run has {want}")


def _set_arbitrated(engine: Engine, run_id: str, scores: pd.DataFrame, changed: np.ndarray) -> int:
    """The arbitration's columns of the ``changed`` customers: a COPY into a temporary table,
    then one UPDATE ... FROM on the partition's customer_id index."""
    rows = scores.loc[scores["customer_id"].isin(changed),
                      ["customer_id", *[c for c in ARBITRATED if c in scores]]]
    if rows.empty:
        return 0
    target = partition("customer_scores", run_id)
    temp = Table(f"arbitrated_{run_id}", MetaData(), *[Column(c, target.c[c].type) for c in rows])
    columns = ", ".join(f'"{c}"' for c in rows)
    sets = ", ".join(f'"{c}" = t."{c}"' for c in rows.columns[1:])
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TEMPORARY TABLE "{temp.name}" ON COMMIT DROP AS '
                             f'SELECT {columns} FROM "{target.name}" WITH NO DATA')
        bulk_insert(conn, temp, rows)
        conn.exec_driver_sql(f'UPDATE "{target.name}" AS p SET {sets} FROM "{temp.name}" AS t '
                             'WHERE p."customer_id" = t."customer_id"')
    return len(rows)


def finish_run(engine: Engine, run: ScoringRun, pending: PendingRun) -> str:
    """Complete the run the workers wrote: what arbitration produced, then the one flip."""
    run_id = pending.run_id
    try:
        _check_open(engine, pending, run.meta)
        frames = run_frames(run, run_id)
        want = expected_counts(frames, pending.written)
        _check_counts(engine, run_id, want)
        with engine.begin() as conn:
            conn.execute(update(scoring_runs).where(scoring_runs.c.run_id == run_id).values(
                params=json.dumps(run.meta.params, sort_keys=True, default=str)))
        for name in write.SHARED:
            if name in frames:
                write._insert_chunks(engine, write.SHARED[name], frames[name])
        with engine.begin() as conn:   # the unique index also refuses a customer written twice
            for kind in RUN_KINDS:
                index_partition(conn, kind, run_id)
        _set_arbitrated(engine, run_id, frames["customer_scores"], pending.changed)
    except BaseException:
        discard_run(engine, run_id)
        raise
    write._flip(engine, run_id, run.as_of, {name: len(frame) for name, frame in frames.items()} | want)
    write._delete_runs(engine, write._runs_with_status(engine, write.REPLACED))
    write._prune(engine)
    write.log.info("scoring run %s as of %s complete (written per bucket)", run_id, run.as_of)
    return run_id
