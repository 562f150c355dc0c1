"""Names and dtype kinds of every feature table column, in one place.

The Feast definitions import ``FEATURE_SCHEMA`` / ``FEATURE_COLUMNS`` to declare
fields, and the writer casts each column to its kind, so the declaration and the
Parquet files cannot drift apart. Kinds: ``float`` (float64, NaN = unknown),
``int`` (int64, never missing: counts and flags whose zero is true), ``string``
(categorical labels kept as text for LightGBM to treat as categories; null = unknown).
"""

from __future__ import annotations

ENTITY = "customer_id"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
KEY_COLUMNS = [ENTITY, EVENT_TIMESTAMP, CREATED_TIMESTAMP]

DRIVERS = ("support", "reliability", "price", "delivery")

_O = {
    "segment": "string",
    "region": "string",
    "plan": "string",
    "contract": "string",
    "tenure_days": "float",   # NaN when the export has no signup date
    "email_opt_out": "float",  # CRM consent as of the export: 1 opted out, 0 not, NaN unknown
    "phone_opt_out": "float",
    "days_to_renewal": "float",
    "monthly_charge": "float",
    "price_change_90d_pct": "float",
    "discount_90d": "float",
    "late_payments_90d": "int",
    "days_late_max_90d": "float",
    "usage_last_month": "float",
    "usage_30d_trend": "float",
    "usage_90d_trend": "float",
    "usage_drop_ratio": "float",
    "usage_vs_usual": "float",
    "usage_prev_vs_usual": "float",
    "active_days_last_month": "float",
    "sessions_last_month": "float",
    "tickets_30d": "int",
    "tickets_90d": "int",
    "tickets_unresolved_90d": "int",
    "tickets_open_now": "int",
    "mean_resolution_days_90d": "float",
    "max_resolution_days_90d": "float",
    "technical_tickets_90d": "int",
    "outage_tickets_90d": "int",
    "billing_tickets_90d": "int",
    "orders_90d": "int",
    "failed_orders_90d": "int",
    "actions_90d": "int",
    "days_since_last_action": "float",
}

_X = {
    "last_nps": "float",
    "last_csat": "float",
    "last_effort": "float",
    "nps_trend": "float",
    "mean_nps_365d": "float",
    "min_nps_365d": "float",
    "last_touchpoint": "string",
    "days_since_last_survey_answer": "float",
    "days_since_last_invitation": "float",
    "invitations_365d": "int",
    "responses_365d": "int",
    "response_rate_365d": "float",
    "ever_responded": "int",
    "complaints_90d": "int",
    "complaint_max_severity_90d": "int",   # 0 = no complaint (severities are 1-3)
    "comments_180d": "int",
    "sentiment_90d": "float",
    "sentiment_180d": "float",
    **{f"topic_{d}_180d": "float" for d in DRIVERS},
}

_FUSED = {
    "detractor_with_open_ticket": "float",
    "promoter_with_usage_drop": "float",
    "nps_trend_minus_usage_trend": "float",
    "sentiment_x_usage_trend": "float",
    "complaint_and_price_rise": "float",
    "silent_with_tickets": "int",
    "negative_comment_with_unresolved": "float",
    "price_topic_x_price_change": "float",
    "reliability_topic_x_outage_tickets": "float",
    "support_topic_x_unresolved": "float",
}

FEATURE_SCHEMA: dict[str, dict[str, str]] = {
    "customer_o": _O,
    "customer_x": _X,
    "customer_fused": _FUSED,
}
FEATURE_COLUMNS: dict[str, list[str]] = {t: list(cols) for t, cols in FEATURE_SCHEMA.items()}

LABEL_SCHEMA: dict[str, dict[str, str]] = {
    "churn_labels": {"churned_within_horizon": "int"},
    "nps_labels": {"nps": "int", "invitation_id": "string", "touchpoint": "string",
                   "survey_id": "string"},
}

#: The optional view of the company's own customer columns (a mapping's ``attributes:``):
#: its features are named ``attr_<attribute>``, so they never collide with the features
#: above, and their kinds come from the attribute schema file, not from this module.
ATTRIBUTE_VIEW = "customer_attributes"
ATTRIBUTE_PREFIX = "attr_"
#: Feature kind of each attribute kind: dates become an age in days, booleans 0/1.
ATTRIBUTE_KINDS = {"numeric": "float", "boolean": "float", "date": "float",
                   "categorical": "string"}


#: The optional view of the company's own event tables (a mapping's ``events:``): counts,
#: sums and means of each measure per window, named ``evt_<event>_...``; their kinds and
#: labels come from the event schema file (``features.transforms.event_tables``).
EVENT_VIEW = "customer_events"
EVENT_PREFIX = "evt_"
#: The folder (under staged, clean and quarantine) holding one table per event kind and
#: the schema file naming their measures and labels.
EVENT_DIR = "events"
EVENT_SCHEMA_FILE = "schema.json"


def is_attribute(name: str) -> bool:
    """Whether a feature (or one-hot column) is one of the company's own: an attribute, or
    an aggregate of its own event tables (both are named in reasons by their label)."""
    return name.startswith((ATTRIBUTE_PREFIX, EVENT_PREFIX))
