"""What the reps' HTML pages show beyond the API's bodies: the predicted satisfaction's name on
its scale, the latest comment with its date and age, the contact channels, the label of an
experiment or comparison action, and the manager's sortable summary. Pure functions."""

from __future__ import annotations

from datetime import date, datetime

from models.nps.scale import scale_from_code
from models.prescribe.arms import ARM_LABELS
from serving.contact import channels_of
from serving.db.schema import DEFAULT_ARM

CHANNEL_LABELS = {"call": "Phone", "email": "E-mail"}
CHANNEL_STATES = {
    "ok": "may be contacted",
    "opted_out": "opted out: do not contact",
    "none": "none on file",
    "unknown": "consent not recorded: do not contact",
}
SUMMARY_SORTS = ("rep_id", "planned", "alerts", "outcomes", "expected_value")


def satisfaction_label(code: str | None) -> str:
    """What the predicted satisfaction is called on the pages, with its range: the stored
    column is ``predicted_nps`` whatever the scale, a rep must not read a 1-5 CSAT as NPS."""
    scale = scale_from_code(code)
    return f"Predicted {scale.title} ({scale.low}-{scale.high})"


def when(value) -> datetime | None:
    """A stored timestamp (the driver may hand back text) as a datetime."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    return datetime.fromisoformat(str(value))


def comment_of(score: dict, as_of: date | None, days: int) -> dict | None:
    """The latest comment, its date and whether it is older than ``days`` before the run's date."""
    text = score.get("latest_comment")
    if not text or not isinstance(text, str):
        return None
    at = when(score.get("latest_comment_at"))
    age = (as_of - at.date()).days if at and as_of else None
    return {"text": text, "at": at, "age_days": age, "stale": age is not None and age > days}


def channels(score: dict) -> list[dict]:
    """The channels the run stored for the customer, each with its state in words."""
    return [
        {"channel": CHANNEL_LABELS.get(name, name), "ok": state == "ok",
         "state": CHANNEL_STATES.get(state, state)}
        for name, state in channels_of(score.get("contact_channels")).items()
    ]


def arm_label(arm) -> str | None:
    """What a rep reads above an action that is not the model's plan: an experiment, or a
    comparison slice's rule (None for the model's plan, and for runs older than arms)."""
    if not arm or not isinstance(arm, str) or arm == DEFAULT_ARM:
        return None
    return ARM_LABELS.get(arm, arm)


def list_rows(raw_items: list[dict], items: list, as_of: date | None, days: int) -> list[dict]:
    """Each list row: the API's item, plus its comment (with date) and channels from the score
    row, and the label of an experiment or comparison action."""
    return [
        {"item": item, "comment": comment_of(raw.get("score") or {}, as_of, days),
         "channels": channels(raw.get("score") or {}),
         "arm_label": arm_label(raw.get("arm")) if raw.get("action_id") else None}
        for raw, item in zip(raw_items, items, strict=True)
    ]


def sort_summary(rows: list[dict], sort: str, descending: bool) -> list[dict]:
    """The manager's rows by one column (ties by rep id); an unknown column sorts by rep id."""
    sort = sort if sort in SUMMARY_SORTS else "rep_id"
    ordered = sorted(rows, key=lambda r: r["rep_id"])
    return sorted(ordered, key=lambda r: r[sort], reverse=descending)
