"""What a scoring run hands to the serving database, and its validation at that edge.

Frames use the column names of the tables (``serving.db.schema``); a missing required
column, a duplicate customer or an impossible probability stops the write with the
frame and column named; columns the database does not keep are logged and left out.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Table

from serving.db.schema import ALERT_KINDS, TEMPLATE, action_plan, alerts, partition

log = logging.getLogger(__name__)
LINEAGE = ("model_versions", "feature_service", "data_version")
TAG_COLUMNS = {c.name for c in partition("customer_tags", TEMPLATE).columns} - {"run_id", "state", *LINEAGE}


def utcnow() -> datetime:
    """Naive UTC: what the DateTime columns hold on every backend."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RunMeta:
    """Lineage written on every row of a run."""

    model_versions: dict[str, str]
    feature_service: str
    data_version: str
    params: dict = field(default_factory=dict)

    def lineage(self) -> dict[str, str]:
        return {
            "model_versions": self.versions_json(),
            "feature_service": self.feature_service,
            "data_version": self.data_version,
        }

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
    pending: object | None = None   # the run the cluster's workers already wrote its customers'
                                    # rows into (serving.db.partitioned_write.PendingRun): finished


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
    """Validated frames per table. Partitions get run id and lineage from their column defaults;
    the shared tables (plan, alerts) get them here."""
    skip = {"run_id", *LINEAGE}
    customers = _conform(run.customers, partition("customer_scores", TEMPLATE), "customers", skip)
    _check_unique(customers, "customer_id", "customers")
    _check_range(customers, "churn_probability", "customers", 0.0, 1.0)
    if "reasons" in customers:
        customers["reasons"] = _reasons_json(customers["reasons"])
    frames = {"customer_scores": customers}
    if run.actions is not None:
        actions = _conform(run.actions, action_plan, "actions", skip)
        _check_unique(actions, "customer_id", "actions")
        frames["action_plan"] = _with_lineage(actions, run_id, run.meta)
    if run.tags is not None:
        tags = _conform(run.tags, partition("customer_tags", TEMPLATE), "tags", skip | {"state"})
        _check_unique(tags, "customer_id", "tags")
        state = _tag_state(run.tags.drop(columns=[*LINEAGE, "run_id"], errors="ignore"))
        frames["customer_tags"] = tags if state is None else tags.assign(state=state.to_numpy())
    if run.tag_events is not None:
        events = run.tag_events
        if "changed_at" not in events:
            events = events.assign(changed_at=_as_of_stamp(run.as_of))
        frames["tag_events"] = _conform(events, partition("tag_events", TEMPLATE), "tag_events", skip)
    if run.alerts is not None:
        raised = run.alerts
        if "raised_at" not in raised:
            raised = raised.assign(raised_at=_as_of_stamp(run.as_of))
        raised = _conform(raised.assign(source="scoring"), alerts, "alerts", skip | {"resolved_at"})
        unknown = sorted(set(raised["kind"]) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(f"scoring run: frame 'alerts' column kind has unknown value(s) {unknown}; "
                             f"expected one of {list(ALERT_KINDS)}")
        frames["alerts"] = raised.assign(run_id=run_id)
    return frames
