"""Read side of the serving database, for the API and the reps' page.

Each reader runs in one transaction (a snapshot on SQLite, REPEATABLE READ on
PostgreSQL), so everything it returns comes from the same complete scoring run.
Hold-out (``control_group``) actions never leave this module for a rep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, Engine, and_, func, or_, select
from sqlalchemy.exc import DBAPIError

from serving.db.schema import (
    TEMPLATE,
    action_outcomes,
    action_plan,
    alerts,
    customer_changes,
    partition,
    partition_name,
    scoring_runs,
)
from serving.db.write import latest_complete_run


@dataclass
class RunInfo:
    run_id: str
    as_of: date
    finished_at: datetime | None
    model_versions: dict
    feature_service: str
    data_version: str


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


@dataclass
class ActionPage:
    run: RunInfo | None
    items: list[dict] = field(default_factory=list)
    total: int = 0


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
    )


def current_run(engine: Engine) -> RunInfo | None:
    """The latest complete scoring run."""
    with snapshot(engine) as conn:
        return run_info(latest_complete_run(conn))


def scores_table(run_id: str):
    """The run's customer_scores partition."""
    return partition("customer_scores", run_id)


def _reasons(text: str | None) -> list[dict]:
    return json.loads(text) if text else []


def _open_alerts(run_id: str | None):
    """Alerts still open: event alerts, and scoring alerts of the current run only."""
    current = alerts.c.run_id == run_id if run_id else alerts.c.run_id.is_(None)
    return and_(alerts.c.resolved_at.is_(None), or_(alerts.c.source == "event", current))


def _alerts_of(conn: Connection, run_id: str | None, *where) -> list[dict]:
    rows = (
        conn.execute(
            select(alerts)
            .where(_open_alerts(run_id), *where)
            .order_by(alerts.c.raised_at.desc(), alerts.c.alert_id.desc())
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _last_outcomes(conn: Connection, customer_ids: list[str]) -> dict[str, dict]:
    if not customer_ids:
        return {}
    rows = (
        conn.execute(
            select(action_outcomes)
            .where(action_outcomes.c.customer_id.in_(customer_ids))
            .order_by(action_outcomes.c.outcome_id)
        )
        .mappings()
        .all()
    )
    return {r["customer_id"]: dict(r) for r in rows}


def _the_run(conn: Connection, run: RunInfo | None) -> RunInfo | None:
    """The run a caller already knows (the service caches it briefly), else the latest complete one."""
    return run if run is not None else run_info(latest_complete_run(conn))


def owner_of(engine: Engine, customer_id: str, run: RunInfo | None = None) -> tuple[bool, str | None]:
    """Whether the latest run scored this customer, and the rep who owns them."""
    with snapshot(engine) as conn:
        run = _the_run(conn, run)
        if run is None:
            return False, None
        scores = scores_table(run.run_id)
        row = conn.execute(select(scores.c.rep_id).where(scores.c.customer_id == customer_id)).first()
    return (row is not None, row.rep_id if row else None)


SCORE_COLUMNS = [c.name for c in partition("customer_scores", TEMPLATE).columns]
PLAN_COLUMNS = [c.name for c in action_plan.columns]
ALERT_COLUMNS = [c.name for c in alerts.columns]
OUTCOME_COLUMNS = [c.name for c in action_outcomes.columns]


def _names(prefix: str, columns: list[str]) -> str:
    return ", ".join(f'{prefix}."{c}"' for c in columns)


def _fetch(conn: Connection, sql: str, params: tuple) -> list[tuple]:
    """Driver-level query inside the connection's transaction (the hot path: no result metadata
    to build); the SQL is written with ``?``, which psycopg spells ``%s``."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _in(n: int) -> str:
    return "= ?" if n == 1 else f"IN ({', '.join('?' * n)})"


def _scores_and_plans(conn: Connection, run_id: str, ids: list[str]) -> dict[str, tuple[dict, dict | None]]:
    """Each customer's score row and plan row in one statement (driver SQL: this is the hot path,
    and building SQLAlchemy statements per request costs more than running them)."""
    table = partition_name("customer_scores", run_id)
    sql = (
        f'SELECT {_names("s", SCORE_COLUMNS)}, {_names("p", PLAN_COLUMNS)} FROM "{table}" s '
        "LEFT JOIN action_plan p ON p.run_id = ? AND p.customer_id = s.customer_id "
        f"WHERE s.customer_id {_in(len(ids))}"
    )
    found = {}
    for row in _fetch(conn, sql, (run_id, *ids)):
        score = dict(zip(SCORE_COLUMNS, row[: len(SCORE_COLUMNS)], strict=True))
        plan = dict(zip(PLAN_COLUMNS, row[len(SCORE_COLUMNS) :], strict=True))
        found[score["customer_id"]] = score, (plan if plan["action_id"] is not None else None)
    return found


def _open_alerts_of(conn: Connection, run_id: str, ids: list[str]) -> dict[str, list[dict]]:
    """Each customer's open alerts, newest first."""
    sql = (
        f"SELECT {_names('a', ALERT_COLUMNS)} FROM alerts a WHERE a.customer_id {_in(len(ids))} "
        "AND a.resolved_at IS NULL AND (a.source = 'event' OR a.run_id = ?) "
        "ORDER BY a.raised_at DESC, a.alert_id DESC"
    )
    found: dict[str, list[dict]] = {}
    for row in _fetch(conn, sql, (*ids, run_id)):
        alert = dict(zip(ALERT_COLUMNS, row, strict=True))
        found.setdefault(alert["customer_id"], []).append(alert)
    return found


def _last_outcome_of(conn: Connection, ids: list[str]) -> dict[str, dict]:
    """Each customer's latest outcome."""
    if len(ids) == 1:  # the hot path: one row, by the index
        where, order = "= ?", "ORDER BY o.outcome_id DESC LIMIT 1"
    else:
        where, order = _in(len(ids)), "ORDER BY o.outcome_id"
    sql = f"SELECT {_names('o', OUTCOME_COLUMNS)} FROM action_outcomes o WHERE o.customer_id {where} {order}"
    rows = (dict(zip(OUTCOME_COLUMNS, row, strict=True)) for row in _fetch(conn, sql, tuple(ids)))
    return {row["customer_id"]: row for row in rows}  # ascending: the latest wins


def _views(conn: Connection, run: RunInfo, ids: list[str]) -> list[dict]:
    found = _scores_and_plans(conn, run.run_id, ids)
    if not found:
        return []
    known = [c for c in ids if c in found]
    alerts_of, outcomes = _open_alerts_of(conn, run.run_id, known), _last_outcome_of(conn, known)
    views = []
    for customer_id in known:
        view, plan = found[customer_id]
        view["reasons"] = _reasons(view["reasons"])
        view["plan"] = plan
        view["open_alerts"] = alerts_of.get(customer_id, [])
        view["last_outcome"] = outcomes.get(customer_id)
        view["run"] = run
        views.append(view)
    return views


def customer_view(engine: Engine, customer_id: str, run: RunInfo | None = None) -> dict | None:
    """A customer's row of the latest complete run with its plan, open alerts and last outcome."""
    with snapshot(engine) as conn:
        run = _the_run(conn, run)
        found = _views(conn, run, [customer_id]) if run else []
    return found[0] if found else None


def customer_views(engine: Engine, customer_ids: list[str], run: RunInfo) -> list[dict]:
    """``customer_view`` of many customers of ``run`` in one snapshot (the view cache's warm-up);
    customers the run did not score are left out."""
    with snapshot(engine) as conn:
        return _views(conn, run, customer_ids) if customer_ids else []


def _resolved_since(conn: Connection, rep_id: str, since: datetime | None) -> list[dict]:
    """Alerts of the rep resolved since the run became visible (their customers stay on the list)."""
    if since is None:
        return []
    rows = (
        conn.execute(
            select(alerts)
            .where(alerts.c.rep_id == rep_id, alerts.c.resolved_at >= since)
            .order_by(alerts.c.resolved_at.desc())
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _merge_alerts(plan: list[dict], open_alerts: list[dict], resolved: list[dict]) -> list[dict]:
    """Open alerts first (newest first), then customers whose alert this run's outcomes resolved
    and who have no planned action, then planned actions by rank (each customer once)."""
    planned = {p["customer_id"]: p for p in plan}
    items, seen = [], set()
    for a in open_alerts:
        if a["customer_id"] not in seen:
            seen.add(a["customer_id"])
            items.append({**planned.get(a["customer_id"], {"customer_id": a["customer_id"]}), "alert": a})
    for a in resolved:
        if a["customer_id"] not in seen and a["customer_id"] not in planned:
            seen.add(a["customer_id"])
            items.append({"customer_id": a["customer_id"], "alert": a})
    items += [{**p, "alert": None} for p in plan if p["customer_id"] not in seen]
    return items


def _scores_of(conn: Connection, run_id: str, customer_ids: list[str]) -> dict[str, dict]:
    if not customer_ids:
        return {}
    scores = scores_table(run_id)
    rows = conn.execute(select(scores).where(scores.c.customer_id.in_(customer_ids)))
    return {r.customer_id: dict(r._mapping) for r in rows}


def _present(item: dict, score: dict, outcome: dict | None, held_out: bool, position: int) -> dict:
    """One list row; an alert on a hold-out customer shows the alert but never the held-out action."""
    if held_out:
        item = {"customer_id": item["customer_id"], "alert": item["alert"]}
    return {
        **item,
        "position": position,
        "score": score,
        "reasons": _reasons(score.get("reasons")),
        "last_outcome": outcome,
    }


def rep_actions(engine: Engine, rep_id: str, page: int, size: int, run: RunInfo | None = None) -> ActionPage:
    """The rep's list for the latest run: open alerts first with their reason, then by rank; no hold-outs."""
    with snapshot(engine) as conn:
        run = _the_run(conn, run)
        if run is None:
            return ActionPage(None)
        plan = (
            conn.execute(
                select(action_plan)
                .where(
                    action_plan.c.run_id == run.run_id,
                    action_plan.c.rep_id == rep_id,
                    action_plan.c.control_group.is_(False),
                )
                .order_by(action_plan.c.rank)
            )
            .mappings()
            .all()
        )
        held_out = set(
            conn.execute(
                select(action_plan.c.customer_id).where(
                    action_plan.c.run_id == run.run_id,
                    action_plan.c.rep_id == rep_id,
                    action_plan.c.control_group.is_(True),
                )
            ).scalars()
        )
        items = _merge_alerts(
            [dict(p) for p in plan],
            _alerts_of(conn, run.run_id, alerts.c.rep_id == rep_id),
            _resolved_since(conn, rep_id, run.finished_at),
        )
        total = len(items)
        start = (page - 1) * size
        items = items[start : start + size]
        ids = [i["customer_id"] for i in items]
        scores, outcomes = _scores_of(conn, run.run_id, ids), _last_outcomes(conn, ids)
    items = [
        _present(
            item,
            scores.get(item["customer_id"], {}),
            outcomes.get(item["customer_id"]),
            item["customer_id"] in held_out,
            start + n + 1,
        )
        for n, item in enumerate(items)
    ]
    return ActionPage(run, items, total)


def rep_ids(engine: Engine) -> list[str]:
    """Reps owning customers in the latest complete run."""
    with snapshot(engine) as conn:
        run = latest_complete_run(conn)
        if run is None:
            return []
        scores = scores_table(run.run_id)
        rows = conn.execute(select(scores.c.rep_id).where(scores.c.rep_id.is_not(None)).distinct())
        return sorted(r.rep_id for r in rows)


def run_customers(engine: Engine, run_id: str, limit: int) -> list[str]:
    """Up to ``limit`` customer ids scored by a run."""
    with snapshot(engine) as conn:
        scores = scores_table(run_id)
        return list(conn.execute(select(scores.c.customer_id).limit(limit)).scalars())


def run_age_seconds(engine: Engine, now: datetime) -> float | None:
    """Seconds since the latest complete run finished (None: no run yet)."""
    with snapshot(engine) as conn:
        finished = conn.execute(
            select(func.max(scoring_runs.c.finished_at)).where(scoring_runs.c.status == "complete")
        ).scalar()
    return None if finished is None else (now - finished).total_seconds()


def changes_after(engine: Engine, seq: int) -> list[tuple[int, str]]:
    """(seq, customer_id) of the customers whose alerts or outcomes changed after ``seq``."""
    with snapshot(engine) as conn:
        rows = conn.execute(
            select(customer_changes.c.seq, customer_changes.c.customer_id)
            .where(customer_changes.c.seq > seq)
            .order_by(customer_changes.c.seq)
        )
        return [(r.seq, r.customer_id) for r in rows]
