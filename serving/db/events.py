"""What the service writes: action outcomes, event alerts and usage readings.

Outcomes and event alerts outlive scoring runs; recording an outcome for a customer
resolves the customer's open alerts (the rep has acted on them). Each such write also
lists the customer in ``customer_changes``, in the same transaction, so every service
process drops its in-memory view of them (``serving.caches.view_cache``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from serving.alerts import baseline_months
from serving.db.runs import snapshot
from serving.db.schema import (
    action_outcomes,
    action_plan,
    alerts,
    customer_changes,
    partition,
    usage_readings,
)
from serving.db.write import latest_complete_run, utcnow

FOLLOW_UP = "alert_follow_up"  # the outcome of following up an alert on a customer with no planned action
CHANGES_KEPT = timedelta(days=1)  # services read customer_changes every second; older rows go


class UnknownAction(ValueError):
    """The action was neither planned for nor recommended to the customer in the latest run."""


@dataclass
class Outcome:
    customer_id: str
    action_id: str
    status: str
    decline_reason: str | None = None
    customer_response: str | None = None


def _action_run(conn, run_id: str, customer_id: str, action_id: str) -> bool:
    """Whether the run planned (not held out) or recommended this action, or it follows up an open alert."""
    if action_id == FOLLOW_UP:
        return (
            conn.execute(
                select(alerts.c.alert_id).where(
                    alerts.c.customer_id == customer_id,
                    alerts.c.resolved_at.is_(None),
                    (alerts.c.source == "event") | (alerts.c.run_id == run_id),
                )
            ).first()
            is not None
        )
    plan = conn.execute(
        select(action_plan.c.action_id, action_plan.c.control_group).where(
            action_plan.c.run_id == run_id, action_plan.c.customer_id == customer_id
        )
    ).first()
    if plan is not None:  # a held-out customer gets no action: the control stays untouched
        return plan.action_id == action_id and not plan.control_group
    scores = partition("customer_scores", run_id)
    recommended = conn.execute(
        select(scores.c.recommended_action).where(scores.c.customer_id == customer_id)
    ).scalar()
    return recommended == action_id


def record_outcome(engine: Engine, outcome: Outcome, rep_id: str, recorded_by: str) -> dict:
    """Store an outcome against the latest run's action and resolve the customer's open alerts."""
    now = utcnow()
    with engine.begin() as conn:
        run = latest_complete_run(conn)
        if run is None or not _action_run(conn, run.run_id, outcome.customer_id, outcome.action_id):
            raise UnknownAction(
                f"action_id '{outcome.action_id}' is not an action of this customer in the latest scoring run"
            )
        row = {
            "customer_id": outcome.customer_id,
            "rep_id": rep_id,
            "action_id": outcome.action_id,
            "run_id": run.run_id,
            "status": outcome.status,
            "decline_reason": outcome.decline_reason,
            "customer_response": outcome.customer_response,
            "recorded_at": now,
            "recorded_by": recorded_by,
        }
        outcome_id = conn.execute(insert(action_outcomes).values(**row)).inserted_primary_key[0]
        resolved = conn.execute(
            update(alerts)
            .where(and_(alerts.c.customer_id == outcome.customer_id, alerts.c.resolved_at.is_(None)))
            .values(resolved_at=now)
        ).rowcount
        note_change(conn, outcome.customer_id, now)
    return {**row, "outcome_id": outcome_id, "alerts_resolved": resolved}


def raise_alert(
    engine: Engine,
    customer_id: str,
    rep_id: str | None,
    kind: str,
    reason: str,
    comment: str | None = None,
    raised_at: datetime | None = None,
) -> int:
    """One open event alert per customer and kind: a newer event updates it; returns its id."""
    raised_at = raised_at or utcnow()
    values = {"reason": reason, "comment": comment, "raised_at": raised_at, "rep_id": rep_id}
    with engine.begin() as conn:
        existing = conn.execute(
            select(alerts.c.alert_id).where(
                alerts.c.customer_id == customer_id,
                alerts.c.kind == kind,
                alerts.c.source == "event",
                alerts.c.resolved_at.is_(None),
            )
        ).scalar()
        note_change(conn, customer_id, utcnow())
        if existing is not None:
            conn.execute(update(alerts).where(alerts.c.alert_id == existing).values(**values))
            return existing
        return conn.execute(
            insert(alerts).values(customer_id=customer_id, kind=kind, source="event", **values)
        ).inserted_primary_key[0]


def note_change(conn: Connection, customer_id: str, now: datetime) -> None:
    """List the customer as changed (inside the writer's transaction); drop rows nobody needs now."""
    conn.execute(insert(customer_changes).values(customer_id=customer_id, changed_at=now))
    conn.execute(delete(customer_changes).where(customer_changes.c.changed_at < now - CHANGES_KEPT))


def store_usage(engine: Engine, customer_id: str, month: date, units: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(usage_readings).values(
                customer_id=customer_id, month=month, usage_units=units, recorded_at=utcnow()
            )
        )


def usage_baseline(engine: Engine, customer_id: str, month: date) -> float | None:
    """Mean monthly usage over the months before ``month`` from posted readings (None: no readings)."""
    first, last = baseline_months(month)
    with snapshot(engine) as conn:
        per_month = (
            select(usage_readings.c.month, func.max(usage_readings.c.reading_id).label("latest"))
            .where(usage_readings.c.customer_id == customer_id, usage_readings.c.month.between(first, last))
            .group_by(usage_readings.c.month)
            .subquery()
        )
        values = (
            conn.execute(
                select(usage_readings.c.usage_units).join(
                    per_month, usage_readings.c.reading_id == per_month.c.latest
                )
            )
            .scalars()
            .all()
        )
    return sum(values) / len(values) if values else None
