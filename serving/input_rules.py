"""What the API accepts in posted values, read from the data contract (``features/ingest/schemas.py``).

A value the contract would quarantine in an export is refused at the door too (422
naming the field): a reading of ``Infinity`` units or a charge of ``1e309`` would
otherwise reach the alerts and the page ("100 % below the recent average of inf"),
and a date in the future would pin an alert to the top of a rep's list. Ranges and
allowed values are the contract's own checks, read here, never restated.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from features.ingest.schemas import SCHEMAS
from features.transforms.schema import ENTITY, is_attribute

CLOCK_SKEW = timedelta(minutes=5)  # a sender's clock may run this far ahead of ours

# Each feature that carries a contract column's values, and that column (table, column).
FEATURE_SOURCES = {
    "segment": ("crm_customers", "segment"),
    "plan": ("billing_invoices", "plan"),
    "contract": ("billing_invoices", "contract"),
    "monthly_charge": ("billing_invoices", "amount"),
    "discount_90d": ("billing_invoices", "discount"),
    "days_late_max_90d": ("billing_invoices", "days_late"),
    "usage_last_month": ("product_usage", "usage_units"),
    "active_days_last_month": ("product_usage", "active_days"),
    "sessions_last_month": ("product_usage", "sessions"),
    "last_nps": ("survey_responses", "nps"),
    "mean_nps_365d": ("survey_responses", "nps"),
    "min_nps_365d": ("survey_responses", "nps"),
    "last_csat": ("survey_responses", "csat"),
    "last_effort": ("survey_responses", "effort"),
    "last_touchpoint": ("survey_invitations", "touchpoint"),
    "complaint_max_severity_90d": ("complaints", "severity"),
}
ZERO_MEANS_NONE = {"complaint_max_severity_90d"}  # 0: no complaint (severities start at 1)
# Ages in days: a signup or event after the snapshot is refused by the contract's date order.
AGES = ("tenure_days",)
AGE_PREFIX = "days_since_"


def contract_bounds(table: str, column: str) -> tuple[float | None, float | None]:
    """(lowest, highest) value the contract's checks allow in a column (None: no bound)."""
    low = high = None
    for check in SCHEMAS[table].columns[column].checks:
        low = check.statistics.get("min_value", low)
        high = check.statistics.get("max_value", high)
    return low, high


def contract_values(table: str, column: str) -> tuple[str, ...] | None:
    """The values the contract allows in a categorical column (None: free text)."""
    for check in SCHEMAS[table].columns[column].checks:
        if "allowed_values" in check.statistics:
            return tuple(check.statistics["allowed_values"])
    return None


def feature_bounds(name: str, kind: str) -> tuple[float | None, float | None]:
    low, high = contract_bounds(*FEATURE_SOURCES[name]) if name in FEATURE_SOURCES else (None, None)
    if name in ZERO_MEANS_NONE or kind == "int" or name in AGES or name.startswith(AGE_PREFIX):
        low = 0 if low is None else min(low, 0)  # counts, flags and ages (features/transforms/schema.py)
    return low, high


def value_error(name: str, value, kind: str) -> str | None:
    """Why a posted feature value breaks the contract, or None (null always passes: unknown)."""
    if value is None or isinstance(value, bool) or is_attribute(name):
        return None
    if isinstance(value, str):
        allowed = contract_values(*FEATURE_SOURCES[name]) if name in FEATURE_SOURCES else None
        if allowed is not None and value not in allowed:
            return f"feature {name} must be one of {', '.join(allowed)}"
        return None
    if not isinstance(value, int | float):
        return None  # a type error, reported by the type check
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float (10**400)
        finite = False
    if not finite:
        return f"feature {name} must be a finite number"
    low, high = feature_bounds(name, kind)
    if (low is not None and value < low) or (high is not None and value > high):
        return f"feature {name} must be between {low} and {high}" if high is not None else (
            f"feature {name} must be >= {low}"
        )
    return None


def feature_row_errors(rows: list[dict], kinds: dict[str, str]) -> list[dict]:
    """Contract errors of posted feature rows (types already checked), each naming ``rows.i.field``."""
    errors = []
    for i, row in enumerate(rows):
        for name, value in row.items():
            msg = None if name == ENTITY else value_error(name, value, kinds.get(name, "float"))
            if msg:
                errors.append({"loc": ["body", "rows", i, name], "msg": msg, "type": "value_error"})
        if len(errors) >= 50:
            break
    return errors


def not_in_future(when: datetime | None) -> datetime | None:
    """``when`` unless it is later than now (naive means UTC), beyond the clock-skew allowance."""
    if when is None:
        return None
    try:
        utc = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except OverflowError:  # year 1 at +14:00 is before year 1 in UTC
        raise ValueError("is out of the range of dates") from None
    if utc > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return when


def day_not_in_future(day: date | None) -> date | None:
    """``day`` unless it starts after today (UTC, with the clock-skew allowance)."""
    if day is not None and day > (datetime.now(UTC) + CLOCK_SKEW).date():
        raise ValueError("must not be in the future")
    return day
