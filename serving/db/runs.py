"""Which scoring run a reader sees: read snapshots, the latest complete run and its brief cache.

Each reader runs in one transaction (a snapshot on SQLite, REPEATABLE READ on
PostgreSQL), so everything it returns comes from the same complete scoring run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from models.nps.scale import NPS
from serving.db.schema import partition, scoring_runs
from serving.db.write import latest_complete_run


@dataclass
class RunInfo:
    run_id: str
    as_of: date
    finished_at: datetime | None
    model_versions: dict
    feature_service: str
    data_version: str
    satisfaction_scale: str = NPS.code   # the scale of predicted_nps and p_* (models.nps.scale)


class RunCache:
    """The latest complete run, re-read at most every ``ttl`` seconds (one query less per request).

    A reader may thus keep using the previous complete run for up to ``ttl`` after a new
    one becomes visible (never a half-written one). If that run's partitions were dropped
    meanwhile (its date was re-run), the caller invalidates and reads again.
    """

    def __init__(self, ttl: float = 1.0):
        self.ttl, self._run, self._at = ttl, None, -1e9

    def get(self, engine: Engine) -> RunInfo | None:
        now = time.monotonic()
        if self._run is None or now - self._at > self.ttl:
            self._run, self._at = current_run(engine), now
        return self._run

    def invalidate(self) -> None:
        self._run, self._at = None, -1e9


def with_run(engine: Engine, runs: RunCache, read):
    """``read(run)`` with the cached latest run; once more with a fresh lookup if that run's
    partitions are gone (its date was re-run meanwhile)."""
    try:
        return read(runs.get(engine))
    except DBAPIError:
        runs.invalidate()
        return read(runs.get(engine))


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction: every statement inside sees the same committed state."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def run_info(row) -> RunInfo | None:
    if row is None:
        return None
    return RunInfo(
        row.run_id,
        row.as_of,
        row.finished_at,
        json.loads(row.model_versions),
        row.feature_service,
        row.data_version,
        _satisfaction_scale(getattr(row, "params", None)),
    )


def _satisfaction_scale(params: str | None) -> str:
    """The run's satisfaction scale code from its params JSON (NPS for runs that predate it)."""
    try:
        code = json.loads(params).get("satisfaction_scale") if params else None
    except (ValueError, AttributeError):
        code = None
    return code or NPS.code


def current_run(engine: Engine) -> RunInfo | None:
    """The latest complete scoring run."""
    with snapshot(engine) as conn:
        return run_info(latest_complete_run(conn))


def the_run(conn: Connection, run: RunInfo | None) -> RunInfo | None:
    """The run a caller already knows (the service caches it briefly), else the latest complete one."""
    return run if run is not None else run_info(latest_complete_run(conn))


def scores_table(run_id: str):
    """The run's customer_scores partition."""
    return partition("customer_scores", run_id)


def run_age_seconds(engine: Engine, now: datetime) -> float | None:
    """Seconds since the latest complete run finished (None: no run yet)."""
    with snapshot(engine) as conn:
        finished = conn.execute(
            select(func.max(scoring_runs.c.finished_at)).where(scoring_runs.c.status == "complete")
        ).scalar()
    return None if finished is None else (now - finished).total_seconds()
