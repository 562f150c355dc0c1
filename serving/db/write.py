"""Write side of the serving database: one scoring run at a time, visible all at once.

``write_scoring_run`` creates the run's partitions (``customer_scores__<run>``, ...),
loads them and the run's rows of the shared tables under status ``writing`` (in
chunks, each its own short transaction, so the service's own writes interleave),
indexes the partitions, then flips the run to ``complete`` in one short transaction
that also points the views at it and marks the run it replaces (same ``as_of``)
``replaced``. Readers only read complete runs, so they never see a half-written one;
the replaced run is dropped afterwards, so re-running a date leaves the same tables.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date

import pandas as pd
from sqlalchemy import Engine, Table, and_, delete, insert, select, update

from serving.db.bulk import CHUNK_ROWS, bulk_insert
from serving.db.frames import LINEAGE, RunMeta, ScoringRun, run_frames, utcnow
from serving.db.schema import (
    COMPLETE,
    DEFAULT_ARM,
    PRUNED_KINDS,
    REPLACED,
    RUN_KINDS,
    SHARED_RUN_TABLES,
    WRITING,
    action_outcomes,
    action_plan,
    alerts,
    create_partition,
    drop_partitions,
    engine_for,
    index_partition,
    make_engine,
    partition,
    scoring_runs,
    sync_views,
)

__all__ = [
    "RunMeta",
    "ScoringRun",
    "engine_for",
    "make_engine",
    "write_scoring_run",
    "read_previous_tags",
    "export_outcomes",
    "latest_complete_run",
    "utcnow",
    "KEEP_SCORED_RUNS",
]

log = logging.getLogger(__name__)
KEEP_SCORED_RUNS = 4  # customer_scores/customer_tags partitions kept for the latest N complete runs
OUTCOME_TO_CONTRACT = {"done": "accepted", "declined": "declined", "no_answer": "no_answer"}
SHARED = {t.name: t for t in SHARED_RUN_TABLES}


def new_run_id(as_of: date) -> str:
    """Sortable by date, unique, and a safe SQL identifier suffix."""
    return f"r{as_of:%Y%m%d}_{uuid.uuid4().hex[:12]}"


def _run_row(as_of: date, meta: RunMeta, run_id: str) -> dict:
    return {
        "run_id": run_id,
        "as_of": as_of,
        "status": WRITING,
        "started_at": utcnow(),
        **meta.lineage(),
        "params": json.dumps(meta.params, sort_keys=True, default=str),
    }


def _runs_with_status(engine: Engine, *statuses: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(scoring_runs.c.run_id).where(scoring_runs.c.status.in_(statuses)))
        return [r.run_id for r in rows]


def _complete_runs(conn) -> list[str]:
    """Complete runs, newest first."""
    query = (
        select(scoring_runs.c.run_id)
        .where(scoring_runs.c.status == COMPLETE)
        .order_by(scoring_runs.c.as_of.desc(), scoring_runs.c.finished_at.desc())
    )
    return list(conn.execute(query).scalars())


def _delete_runs(engine: Engine, run_ids: list[str]) -> None:
    """Remove runs that are not (or no longer) visible: their partitions and shared rows."""
    for run_id in run_ids:
        with engine.begin() as conn:
            drop_partitions(conn, run_id)
            for table in SHARED_RUN_TABLES:
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(scoring_runs).where(scoring_runs.c.run_id == run_id))


def _load(engine: Engine, run_id: str, frames: dict[str, pd.DataFrame], meta: RunMeta) -> dict[str, int]:
    """Create and fill the run's partitions and shared rows; index the partitions once loaded."""
    with engine.begin() as conn:
        for kind in RUN_KINDS:
            create_partition(conn, kind, run_id, meta.lineage())
    counts = {}
    for name, frame in frames.items():
        table = partition(name, run_id) if name in RUN_KINDS else SHARED[name]
        counts[name] = _insert_chunks(engine, table, frame)
    with engine.begin() as conn:
        for kind in RUN_KINDS:
            index_partition(conn, kind, run_id)
    return counts


def _insert_chunks(engine: Engine, table: Table, frame: pd.DataFrame) -> int:
    """One short transaction per chunk: the service's own writes (outcomes) never wait long.

    The rows stay invisible until the flip whatever the number of transactions, because
    readers only read complete runs.
    """
    for start in range(0, len(frame), CHUNK_ROWS):
        with engine.begin() as conn:
            bulk_insert(conn, table, frame.iloc[start : start + CHUNK_ROWS])
    return len(frame)


def _carry_over(conn, old_ids: list[str], run_id: str) -> None:
    """Outcomes and alert resolutions recorded against a replaced run now point at its replacement."""
    if not old_ids:
        return
    conn.execute(update(action_outcomes).where(action_outcomes.c.run_id.in_(old_ids)).values(run_id=run_id))
    resolved = conn.execute(
        select(alerts.c.customer_id, alerts.c.kind, alerts.c.resolved_at).where(
            and_(alerts.c.run_id.in_(old_ids), alerts.c.resolved_at.is_not(None))
        )
    ).all()
    for r in resolved:
        conn.execute(
            update(alerts)
            .where(
                and_(
                    alerts.c.run_id == run_id, alerts.c.customer_id == r.customer_id, alerts.c.kind == r.kind
                )
            )
            .values(resolved_at=r.resolved_at)
        )


def _flip(engine: Engine, run_id: str, as_of: date, counts: dict) -> None:
    """The moment a run becomes visible: one short transaction."""
    with engine.begin() as conn:
        same_day = and_(scoring_runs.c.as_of == as_of, scoring_runs.c.status == COMPLETE)
        old_ids = list(conn.execute(select(scoring_runs.c.run_id).where(same_day)).scalars())
        _carry_over(conn, old_ids, run_id)
        conn.execute(update(scoring_runs).where(same_day).values(status=REPLACED))
        conn.execute(
            update(scoring_runs)
            .where(scoring_runs.c.run_id == run_id)
            .values(status=COMPLETE, finished_at=utcnow(), counts=json.dumps(counts, sort_keys=True))
        )
        sync_views(conn, _complete_runs(conn))


def _prune(engine: Engine, keep: int = KEEP_SCORED_RUNS) -> None:
    """Per-customer partitions of old runs go; their plans, tag events and alerts stay (small, needed)."""
    with engine.begin() as conn:
        runs = _complete_runs(conn)
        old = runs[keep:]
        if not old:
            return
        sync_views(conn, runs, exclude={f"{k}__{r}" for r in old for k in PRUNED_KINDS})
        for run_id in old:
            drop_partitions(conn, run_id, PRUNED_KINDS)


def start_run(engine: Engine, run_id: str, as_of: date, meta: RunMeta) -> None:
    """The run's row under status ``writing`` (invisible to readers), after removing the
    leftovers of crashed or abandoned writes."""
    _delete_runs(engine, _runs_with_status(engine, WRITING, REPLACED))
    with engine.begin() as conn:
        conn.execute(insert(scoring_runs).values(**_run_row(as_of, meta, run_id)))


def write_scoring_run(engine: Engine, run: ScoringRun) -> str:
    """Write a complete scoring run and make it visible at once; returns its run id.

    A run whose per-customer rows the cluster's workers already wrote (``run.pending``) is
    finished instead: serving.db.partitioned_write.
    """
    if run.pending is not None:
        from serving.db.partitioned_write import finish_run  # it builds on this module

        return finish_run(engine, run, run.pending)
    run_id = new_run_id(run.as_of)
    frames = run_frames(run, run_id)
    start_run(engine, run_id, run.as_of, run.meta)  # leftovers of a crashed write go first
    try:
        counts = _load(engine, run_id, frames, run.meta)
    except BaseException:
        _delete_runs(engine, [run_id])
        raise
    _flip(engine, run_id, run.as_of, counts)
    _delete_runs(engine, _runs_with_status(engine, REPLACED))
    _prune(engine)
    log.info("scoring run %s as of %s complete: %s", run_id, run.as_of, counts)
    return run_id


# ------------------------------------------------------------------ reads for the batch side


def latest_complete_run(conn, before: date | None = None):
    """The newest complete run (optionally strictly before a date), or None."""
    query = select(scoring_runs).where(scoring_runs.c.status == COMPLETE)
    if before is not None:
        query = query.where(scoring_runs.c.as_of < before)
    query = query.order_by(scoring_runs.c.as_of.desc(), scoring_runs.c.finished_at.desc()).limit(1)
    return conn.execute(query).first()


def read_previous_tags(engine: Engine, before: date) -> pd.DataFrame | None:
    """Tags of the latest complete run strictly before ``before`` (None if there is none)."""
    with engine.connect() as conn:
        run = latest_complete_run(conn, before)
        if run is None:
            return None
        table = partition("customer_tags", run.run_id)
        cols = [c for c in table.columns if c.name not in ("run_id", *LINEAGE)]
        rows = conn.execute(select(*cols)).all()
    frame = pd.DataFrame(rows, columns=[c.name for c in cols])
    state = frame.pop("state")
    if state.notna().any():
        extra = pd.DataFrame([json.loads(s) if s else {} for s in state], index=frame.index)
        frame = pd.concat([frame, extra], axis=1)
    frame.attrs["run_id"], frame.attrs["as_of"] = run.run_id, run.as_of
    return frame


def export_outcomes(engine: Engine) -> pd.DataFrame:
    """Recorded outcomes and randomized hold-outs of planned actions, as the interventions contract.

    A hold-out row (``control_group``) is exported as ``holdout`` with cost 0; a delivered
    action as its latest recorded outcome (done -> accepted). Planned actions with no
    recorded outcome are left out: whether they were delivered is unknown.
    """
    recorded_q = select(
        action_outcomes.c.run_id,
        action_outcomes.c.customer_id,
        action_outcomes.c.action_id,
        action_outcomes.c.status,
    ).order_by(action_outcomes.c.outcome_id)
    plan_q = (
        select(
            action_plan.c.run_id,
            action_plan.c.customer_id,
            action_plan.c.action_id,
            action_plan.c.rep_id,
            action_plan.c.cost,
            action_plan.c.control_group,
            scoring_runs.c.as_of,
            action_plan.c.arm,
            action_plan.c.assignment_probability,
        )
        .join(scoring_runs, scoring_runs.c.run_id == action_plan.c.run_id)
        .where(scoring_runs.c.status == COMPLETE)
    )
    with engine.connect() as conn:
        planned = pd.DataFrame(
            conn.execute(plan_q).all(),
            columns=["run_id", "customer_id", "action", "rep_id", "cost", "control_group", "as_of",
                     "arm", "assignment_probability"],
        )
        recorded = pd.DataFrame(
            conn.execute(recorded_q).all(), columns=["run_id", "customer_id", "action", "status"]
        )
    recorded = recorded.drop_duplicates(["run_id", "customer_id", "action"], keep="last")
    merged = planned.merge(recorded, on=["run_id", "customer_id", "action"], how="left")
    merged["control_group"] = merged["control_group"].astype(bool)
    out = merged[merged["control_group"] | merged["status"].notna()].copy()
    out["outcome"] = out["status"].map(OUTCOME_TO_CONTRACT).where(~out["control_group"], "holdout")
    out["cost"] = out["cost"].fillna(0.0).where(~out["control_group"], 0.0).astype(float)
    out["assigned_at"] = pd.to_datetime(out["as_of"])
    out["intervention_id"] = "plan-" + out["assigned_at"].dt.strftime("%Y%m%d") + "-" + out["customer_id"]
    out["stratum"] = "product_" + out["arm"].fillna(DEFAULT_ARM).astype(str)   # older runs: the policy
    out["assignment_probability"] = pd.to_numeric(out["assignment_probability"], errors="coerce")
    columns = [
        "intervention_id",
        "customer_id",
        "action",
        "assigned_at",
        "rep_id",
        "cost",
        "control_group",
        "outcome",
        "stratum",
        "assignment_probability",
    ]
    return out[columns].sort_values(["assigned_at", "intervention_id"]).reset_index(drop=True)
