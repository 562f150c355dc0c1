"""When an event should alert the owning rep, and the reason the rep reads.

Pure rules, shared by the event endpoint and tests: a survey answer in its scale's lowest
class alerts (NPS 6 or less: a detractor; CSAT 1-2: dissatisfied); a month's usage that
falls to ``prescribe.alert_usage_ratio`` (0.5) or less of the customer's recent monthly
average alerts, the same share the
scoring run's usage-drop alert uses (usage falls in the months before a customer
leaves, docs/world.md).
"""

from __future__ import annotations

from datetime import date

from models.nps.scale import CSAT, NPS, Scale

DETRACTOR_MAX_NPS = NPS.cuts[0] - 1  # NPS 0-6: detractor
USAGE_BASELINE_MONTHS = 3  # the recent average covers this many months before the reading


def low_answer_reason(score: int, scale: Scale = NPS) -> str | None:
    """The alert reason for a survey answer in the scale's lowest class (None otherwise)."""
    if score >= scale.cuts[0]:
        return None
    return (f"{scale.classes[0].capitalize()}: answered the survey with {scale.name.upper()} "
            f"{score} ({scale.low}-{scale.high})")


def detractor_reason(nps: int) -> str | None:
    """The alert reason for an NPS answer, or None when the answer is not a detractor's."""
    return low_answer_reason(nps, NPS)


def survey_reason(nps: int | None, csat: int | None) -> str | None:
    """An answer's alert reason: on NPS when it carries one, else on CSAT."""
    if nps is not None:
        return low_answer_reason(nps, NPS)
    return None if csat is None else low_answer_reason(csat, CSAT)


def usage_drop_reason(units: float, baseline: float | None, month: date, share: float) -> str | None:
    """The alert reason for a usage reading, or None when it is above ``share`` of the baseline."""
    if baseline is None or baseline <= 0 or units > share * baseline:
        return None
    fall = 100 * (1 - units / baseline)
    return (
        f"Usage drop: {units:.1f} units in {month:%B %Y}, {fall:.0f} % below the recent average "
        f"of {baseline:.1f} a month"
    )


def baseline_months(month: date, months: int = USAGE_BASELINE_MONTHS) -> tuple[date, date]:
    """First and last month (inclusive) of the recent average before ``month``."""
    earliest = 12  # January of year 1: a reading dated then has no months before it
    first_index = max(earliest, month.year * 12 + month.month - 1 - months)
    last_index = max(earliest, month.year * 12 + month.month - 2)
    return (date(first_index // 12, first_index % 12 + 1, 1), date(last_index // 12, last_index % 12 + 1, 1))


NOT_MEASURED = "no randomized interventions in the data"
NOT_SHOWN = "the randomized hold-outs do not show any action to pay yet"


def risk_review_reason(p_churn: float, value_at_risk: float, why: str = NOT_MEASURED) -> str:
    """Why a customer is on the list when no action has a measured value (``why``: there is
    no log of randomized actions, or the log does not show any action to pay)."""
    value = ("value at risk unknown (no billing data)" if value_at_risk != value_at_risk
             else f"{value_at_risk:,.0f} of value at risk")
    return (f"High churn risk: {100 * p_churn:.0f} % with {value}. "
            f"No action has a measured value ({why}), "
            "so no action is recommended: review this customer")


def save_desk_reason(notice: date, as_of: date) -> str:
    """Why a customer under notice is on the list: a save-desk call, with no model claim."""
    days = (as_of - notice).days
    return (f"Gave notice on {notice:%d %B %Y} ({days} days ago): a save-desk case. Retention "
            "models do not apply to a decision already taken; no action is planned")
