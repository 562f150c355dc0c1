"""Read side of the serving database: customer views (the API's hot path) and run lookups.

Each reader runs in one snapshot of one complete run (``serving.db.runs``); the reps'
action list is in ``serving.db.action_pages``.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, select

from serving.db.runs import RunInfo, scores_table, snapshot, the_run
from serving.db.schema import (
    COMPLETE,
    TEMPLATE,
    action_outcomes,
    action_plan,
    alerts,
    customer_changes,
    partition,
    partition_name,
    scoring_runs,
    tag_events,
)
from serving.db.write import latest_complete_run


def parse_reasons(text: str | None) -> list[dict]:
    return json.loads(text) if text else []


def owner_of(engine: Engine, customer_id: str, run: RunInfo | None = None) -> tuple[bool, str | None]:
    """Whether the latest run scored this customer, and the rep who owns them."""
    with snapshot(engine) as conn:
        run = the_run(conn, run)
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
        view["reasons"] = parse_reasons(view["reasons"])
        view["plan"] = plan
        view["open_alerts"] = alerts_of.get(customer_id, [])
        view["last_outcome"] = outcomes.get(customer_id)
        view["run"] = run
        views.append(view)
    return views


def customer_view(engine: Engine, customer_id: str, run: RunInfo | None = None) -> dict | None:
    """A customer's row of the latest complete run with its plan, open alerts and last outcome."""
    with snapshot(engine) as conn:
        run = the_run(conn, run)
        found = _views(conn, run, [customer_id]) if run else []
    return found[0] if found else None


def customer_views(engine: Engine, customer_ids: list[str], run: RunInfo) -> list[dict]:
    """``customer_view`` of many customers of ``run`` in one snapshot (the view cache's warm-up);
    customers the run did not score are left out."""
    with snapshot(engine) as conn:
        return _views(conn, run, customer_ids) if customer_ids else []


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


def changes_after(engine: Engine, seq: int) -> list[tuple[int, str]]:
    """(seq, customer_id) of the customers whose alerts or outcomes changed after ``seq``."""
    with snapshot(engine) as conn:
        rows = conn.execute(
            select(customer_changes.c.seq, customer_changes.c.customer_id)
            .where(customer_changes.c.seq > seq)
            .order_by(customer_changes.c.seq)
        )
        return [(r.seq, r.customer_id) for r in rows]


def customer_history(engine: Engine, customer_id: str, show_held_out: bool, limit: int = 10) -> dict:
    """A customer's recent outcomes, the actions complete runs planned for them and the changes
    of their tags (with the cause), newest first; held-out actions only for a manager (a rep
    never learns who is in the control group)."""
    planned = (
        select(scoring_runs.c.as_of, action_plan.c.action_id, action_plan.c.action_label,
               action_plan.c.channel, action_plan.c.expected_value, action_plan.c.control_group)
        .join(scoring_runs, scoring_runs.c.run_id == action_plan.c.run_id)
        .where(action_plan.c.customer_id == customer_id, scoring_runs.c.status == COMPLETE)
        .order_by(scoring_runs.c.as_of.desc())
        .limit(limit)
    )
    if not show_held_out:
        planned = planned.where(action_plan.c.control_group.is_(False))
    outcomes = (
        select(action_outcomes).where(action_outcomes.c.customer_id == customer_id)
        .order_by(action_outcomes.c.outcome_id.desc()).limit(limit)
    )
    tags = (
        select(tag_events.c.changed_at, tag_events.c.tag, tag_events.c.old_value,
               tag_events.c.new_value, tag_events.c.cause)
        .where(tag_events.c.customer_id == customer_id)
        .order_by(tag_events.c.changed_at.desc()).limit(limit)
    )
    with snapshot(engine) as conn:
        return {
            "planned": [dict(r) for r in conn.execute(planned).mappings()],
            "outcomes": [dict(r) for r in conn.execute(outcomes).mappings()],
            "tags": [dict(r) for r in conn.execute(tags).mappings()],
        }
