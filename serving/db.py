"""Write side of the serving database: one scoring run at a time, visible all at once.

``write_scoring_run`` writes a run's rows under status ``writing`` (in chunks, each its
own short transaction, so the service's own writes interleave), then flips it to
``complete`` (and the run it replaces, same ``as_of``, to ``replaced``) in one short
transaction. Readers always read the latest complete run, so they never see a
half-written one; re-running a date replaces that date's rows (tag events and scoring
alerts included), so the end state is the same.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Engine, Table, and_, delete, insert, select, update

from serving.db_bulk import CHUNK_ROWS, bulk_insert
from serving.db_schema import (
    COMPLETE,
    REPLACED,
    RUN_TABLES,
    WRITING,
    action_outcomes,
    action_plan,
    alerts,
    customer_scores,
    customer_tags,
    engine_for,
    make_engine,
    scoring_runs,
    tag_events,
)

__all__ = [
    "RunMeta",
    "ScoringRun",
    "engine_for",
    "make_engine",
    "write_scoring_run",
    "read_previous_tags",
    "export_outcomes",
    "KEEP_SCORED_RUNS",
]

log = logging.getLogger(__name__)
LINEAGE = ("model_versions", "feature_service", "data_version")
KEEP_SCORED_RUNS = 4  # customer_scores/customer_tags kept for the latest N complete runs
TAG_COLUMNS = {c.name for c in customer_tags.columns} - {"run_id", "state", *LINEAGE}
OUTCOME_TO_CONTRACT = {"done": "accepted", "declined": "declined", "no_answer": "no_answer"}


@dataclass
class RunMeta:
    """Lineage written on every row of a run."""

    model_versions: dict[str, str]
    feature_service: str
    data_version: str
    params: dict = field(default_factory=dict)

    def versions_json(self) -> str:
        return json.dumps({k: str(v) for k, v in self.model_versions.items()}, sort_keys=True)


@dataclass
class ScoringRun:
    """Everything one batch scoring run writes; frames use the table column names (see db_schema)."""

    as_of: date
    meta: RunMeta
    customers: pd.DataFrame
    actions: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    tag_events: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None


def utcnow() -> datetime:
    """Naive UTC: what the DateTime columns hold on every backend."""
    return datetime.now(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ frame validation


def _conform(frame: pd.DataFrame, table: Table, name: str, skip: set[str]) -> pd.DataFrame:
    """The frame's columns that belong to ``table``; a missing required column stops the run."""
    allowed = [c for c in table.columns if c.name not in skip and c.autoincrement is not True]
    required = [c.name for c in allowed if not c.nullable]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"scoring run: frame '{name}' lacks required column(s) {missing}")
    extra = sorted(set(frame.columns) - {c.name for c in table.columns})
    if extra:
        log.info("scoring run: frame '%s' columns not stored: %s", name, extra)
    out = frame[[c.name for c in allowed if c.name in frame.columns]].copy()
    nulls = [c for c in required if out[c].isna().any()]
    if nulls:
        raise ValueError(f"scoring run: frame '{name}' has missing values in required column(s) {nulls}")
    return out


def _check_unique(frame: pd.DataFrame, key: str, name: str) -> None:
    dup = frame[key].duplicated()
    if dup.any():
        raise ValueError(f"scoring run: frame '{name}' has {int(dup.sum())} duplicate {key} value(s)")


def _check_range(frame: pd.DataFrame, column: str, name: str, low: float, high: float) -> None:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.notna() & ((values < low) | (values > high))
    if bad.any():
        raise ValueError(f"scoring run: frame '{name}' column {column} outside [{low}, {high}]")


def _reasons_json(values: pd.Series) -> pd.Series:
    """Reasons as JSON text: lists of dicts (or Reason objects) are encoded, strings kept."""

    def encode(v):
        if v is None or isinstance(v, str) or (isinstance(v, float) and pd.isna(v)):
            return v
        return json.dumps([_reason_dict(r) for r in v])

    return values.map(encode)


def _reason_dict(r) -> dict:
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k, None)
    return {
        "concept": get("concept"),
        "label": get("label"),
        "sentence": get("sentence"),
        "impact": None if get("impact") is None else round(float(get("impact")), 4),
    }


def _with_lineage(frame: pd.DataFrame, run_id: str, meta: RunMeta) -> pd.DataFrame:
    return frame.assign(
        run_id=run_id,
        model_versions=meta.versions_json(),
        feature_service=meta.feature_service,
        data_version=meta.data_version,
    )


def _tag_state(tags: pd.DataFrame) -> pd.Series | None:
    """Columns the tagger keeps beyond the declared ones, as one JSON object per row."""
    extra = [c for c in tags.columns if c not in TAG_COLUMNS]
    if not extra:
        return None
    return pd.Series(
        tags[extra].to_json(orient="records", lines=True, date_format="iso").splitlines(), index=tags.index
    )


def _as_of_stamp(as_of: date) -> pd.Timestamp:
    return pd.Timestamp(as_of)


def run_frames(run: ScoringRun, run_id: str) -> dict[str, pd.DataFrame]:
    """Validated frames per table, lineage and run id added."""
    skip = {"run_id", *LINEAGE}
    customers = _conform(run.customers, customer_scores, "customers", skip)
    _check_unique(customers, "customer_id", "customers")
    _check_range(customers, "churn_probability", "customers", 0.0, 1.0)
    if "reasons" in customers:
        customers["reasons"] = _reasons_json(customers["reasons"])
    frames = {"customer_scores": customers}
    if run.actions is not None:
        actions = _conform(run.actions, action_plan, "actions", skip)
        _check_unique(actions, "customer_id", "actions")
        frames["action_plan"] = actions
    if run.tags is not None:
        tags = _conform(run.tags, customer_tags, "tags", skip | {"state"})
        _check_unique(tags, "customer_id", "tags")
        state = _tag_state(run.tags.drop(columns=[*LINEAGE, "run_id"], errors="ignore"))
        frames["customer_tags"] = tags if state is None else tags.assign(state=state.to_numpy())
    if run.tag_events is not None:
        events = run.tag_events
        if "changed_at" not in events:
            events = events.assign(changed_at=_as_of_stamp(run.as_of))
        frames["tag_events"] = _conform(events, tag_events, "tag_events", skip)
    if run.alerts is not None:
        raised = run.alerts
        if "raised_at" not in raised:
            raised = raised.assign(raised_at=_as_of_stamp(run.as_of))
        raised = _conform(raised.assign(source="scoring"), alerts, "alerts", skip | {"resolved_at"})
        frames["alerts"] = raised
    lineage_tables = {t.name for t in RUN_TABLES}
    return {
        name: (_with_lineage(f, run_id, run.meta) if name in lineage_tables else f.assign(run_id=run_id))
        for name, f in frames.items()
    }


# ------------------------------------------------------------------ the write


def _run_row(run: ScoringRun, run_id: str) -> dict:
    meta = run.meta
    return {
        "run_id": run_id,
        "as_of": run.as_of,
        "status": WRITING,
        "started_at": utcnow(),
        "model_versions": meta.versions_json(),
        "feature_service": meta.feature_service,
        "data_version": meta.data_version,
        "params": json.dumps(meta.params, sort_keys=True, default=str),
    }


def _delete_runs(engine: Engine, run_ids: list[str]) -> None:
    """Remove every row of the given runs (one transaction per run keeps locks short)."""
    for run_id in run_ids:
        with engine.begin() as conn:
            for table in (*RUN_TABLES, alerts):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(scoring_runs).where(scoring_runs.c.run_id == run_id))


def _insert_chunks(engine: Engine, table: Table, frame: pd.DataFrame) -> int:
    """One short transaction per chunk: the service's own writes (outcomes) never wait long.

    The rows stay invisible until the flip whatever the number of transactions, because
    readers only read complete runs.
    """
    for start in range(0, len(frame), CHUNK_ROWS):
        with engine.begin() as conn:
            bulk_insert(conn, table, frame.iloc[start : start + CHUNK_ROWS])
    return len(frame)


def _runs_with_status(engine: Engine, *statuses: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(scoring_runs.c.run_id).where(scoring_runs.c.status.in_(statuses)))
        return [r.run_id for r in rows]


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
        old_ids = conn.execute(select(scoring_runs.c.run_id).where(same_day)).scalars().all()
        _carry_over(conn, list(old_ids), run_id)
        conn.execute(update(scoring_runs).where(same_day).values(status=REPLACED))
        conn.execute(
            update(scoring_runs)
            .where(scoring_runs.c.run_id == run_id)
            .values(status=COMPLETE, finished_at=utcnow(), counts=json.dumps(counts, sort_keys=True))
        )


def _prune(engine: Engine, keep: int = KEEP_SCORED_RUNS) -> None:
    """Per-customer rows of old runs go; their plans, tag events and alerts stay (small, and needed)."""
    with engine.begin() as conn:
        old = (
            conn.execute(
                select(scoring_runs.c.run_id)
                .where(scoring_runs.c.status == COMPLETE)
                .order_by(scoring_runs.c.as_of.desc(), scoring_runs.c.finished_at.desc())
                .offset(keep)
            )
            .scalars()
            .all()
        )
        for run_id in old:
            for table in (customer_scores, customer_tags):
                conn.execute(delete(table).where(table.c.run_id == run_id))


def write_scoring_run(engine: Engine, run: ScoringRun) -> str:
    """Write a complete scoring run and make it visible at once; returns its run id."""
    run_id = f"{run.as_of:%Y%m%d}-{uuid.uuid4().hex[:12]}"
    frames = run_frames(run, run_id)
    _delete_runs(engine, _runs_with_status(engine, WRITING, REPLACED))  # leftovers of a crashed write
    with engine.begin() as conn:
        conn.execute(insert(scoring_runs).values(**_run_row(run, run_id)))
    tables = {t.name: t for t in (*RUN_TABLES, alerts)}
    try:
        counts = {name: _insert_chunks(engine, tables[name], frame) for name, frame in frames.items()}
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
        cols = [c for c in customer_tags.columns if c.name not in ("run_id", *LINEAGE)]
        rows = conn.execute(select(*cols).where(customer_tags.c.run_id == run.run_id)).all()
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
    latest = select(
        action_outcomes.c.run_id,
        action_outcomes.c.customer_id,
        action_outcomes.c.action_id,
        action_outcomes.c.status,
        action_outcomes.c.outcome_id,
    ).order_by(action_outcomes.c.outcome_id)
    plan = (
        select(
            action_plan.c.run_id,
            action_plan.c.customer_id,
            action_plan.c.action_id,
            action_plan.c.rep_id,
            action_plan.c.cost,
            action_plan.c.control_group,
            scoring_runs.c.as_of,
        )
        .join(scoring_runs, scoring_runs.c.run_id == action_plan.c.run_id)
        .where(scoring_runs.c.status == COMPLETE)
    )
    with engine.connect() as conn:
        planned = pd.DataFrame(
            conn.execute(plan).all(),
            columns=["run_id", "customer_id", "action", "rep_id", "cost", "control_group", "as_of"],
        )
        recorded = pd.DataFrame(
            conn.execute(latest).all(), columns=["run_id", "customer_id", "action", "status", "outcome_id"]
        )
    recorded = recorded.drop_duplicates(["run_id", "customer_id", "action"], keep="last")
    merged = planned.merge(recorded, on=["run_id", "customer_id", "action"], how="left")
    merged["control_group"] = merged["control_group"].astype(bool)
    keep = merged["control_group"] | merged["status"].notna()
    out = merged[keep].copy()
    out["outcome"] = out["status"].map(OUTCOME_TO_CONTRACT).where(~out["control_group"], "holdout")
    out["cost"] = out["cost"].fillna(0.0).where(~out["control_group"], 0.0).astype(float)
    out["assigned_at"] = pd.to_datetime(out["as_of"])
    out["intervention_id"] = (
        "plan-" + out["assigned_at"].dt.strftime("%Y%m%d") + "-" + out["customer_id"].astype(str)
    )
    columns = [
        "intervention_id",
        "customer_id",
        "action",
        "assigned_at",
        "rep_id",
        "cost",
        "control_group",
        "outcome",
    ]
    return out[columns].sort_values(["assigned_at", "intervention_id"]).reset_index(drop=True)
