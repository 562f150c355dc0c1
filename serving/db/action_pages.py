"""A rep's page of the action list: open alerts first (save desk first, then by churn risk x
value at risk), then planned actions by rank; and the manager's per-rep summary.

Read in one snapshot of one complete run; hold-out (``control_group``) actions never
reach a rep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, func, or_, select

from serving.db.read import parse_reasons
from serving.db.runs import RunInfo, scores_table, snapshot, the_run
from serving.db.schema import action_outcomes, action_plan, alerts


@dataclass
class ActionPage:
    run: RunInfo | None
    items: list[dict] = field(default_factory=list)
    total: int = 0


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


def _number(value) -> float:
    return 0.0 if value is None or value != value else float(value)


def alert_order(open_alerts: list[dict], scores: dict[str, dict]) -> list[dict]:
    """Save-desk alerts first (the customer has given notice), then by expected loss: churn risk
    x value at risk (risk alone when the run knows no value); newest first among equals."""
    known = any(_number(s.get("value_at_risk")) > 0 for s in scores.values())

    def key(alert: dict) -> tuple[bool, float]:
        score = scores.get(alert["customer_id"], {})
        value = _number(score.get("value_at_risk")) if known else 1.0
        return alert["kind"] != "save_desk", -_number(score.get("churn_probability")) * value

    return sorted(open_alerts, key=key)


def _merge_alerts(plan: list[dict], open_alerts: list[dict], resolved: list[dict]) -> list[dict]:
    """Open alerts first (in the order given), then customers whose alert this run's outcomes resolved
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
        "reasons": parse_reasons(score.get("reasons")),
        "last_outcome": outcome,
    }


def rep_actions(engine: Engine, rep_id: str, page: int, size: int, run: RunInfo | None = None) -> ActionPage:
    """The rep's list for the latest run: open alerts first with their reason, then by rank; no hold-outs."""
    with snapshot(engine) as conn:
        run = the_run(conn, run)
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
        open_alerts = _alerts_of(conn, run.run_id, alerts.c.rep_id == rep_id)
        alerted = _scores_of(conn, run.run_id, list({a["customer_id"] for a in open_alerts}))
        items = _merge_alerts(
            [dict(p) for p in plan],
            alert_order(open_alerts, alerted),
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


SUMMARY_COLUMNS = ("planned", "alerts", "outcomes", "expected_value")


def _per_rep(conn: Connection, query) -> dict[str, float]:
    return {r[0]: r[1] for r in conn.execute(query)}


def rep_summary(engine: Engine, run: RunInfo | None = None) -> list[dict]:
    """Per rep of the latest run: planned actions shown (hold-outs never count), open alerts,
    outcomes recorded against this run, and the expected value of the actions shown."""
    with snapshot(engine) as conn:
        run = the_run(conn, run)
        if run is None:
            return []
        scores = scores_table(run.run_id)
        owners = select(scores.c.rep_id).where(scores.c.rep_id.is_not(None)).distinct()
        reps = set(conn.execute(owners).scalars())
        shown = and_(action_plan.c.run_id == run.run_id, action_plan.c.control_group.is_(False))
        planned = _per_rep(conn, select(action_plan.c.rep_id, func.count()).where(shown)
                           .group_by(action_plan.c.rep_id))
        value = _per_rep(conn, select(action_plan.c.rep_id, func.sum(action_plan.c.expected_value))
                         .where(shown).group_by(action_plan.c.rep_id))
        open_ = _per_rep(conn, select(alerts.c.rep_id, func.count()).where(_open_alerts(run.run_id))
                         .group_by(alerts.c.rep_id))
        done = _per_rep(conn, select(action_outcomes.c.rep_id, func.count())
                        .where(action_outcomes.c.run_id == run.run_id).group_by(action_outcomes.c.rep_id))
    return [
        {"rep_id": rep, "planned": int(planned.get(rep, 0)), "alerts": int(open_.get(rep, 0)),
         "outcomes": int(done.get(rep, 0)), "expected_value": float(value.get(rep) or 0.0)}
        for rep in sorted(reps | set(planned) | set(done) | {r for r in open_ if r is not None})
    ]
