"""Which features the exported tables can support: a missing table's features are absent.

An export without tickets (or orders, usage, surveys, ...) says nothing about tickets: a
count of 0 would tell a model "no tickets", a fact, when all we know is "unknown". So when an
optional contract table has no clean file, the features made from it are left out of the
feature tables and of the FeatureServices (a fused feature goes when any of its inputs
goes; a view left without features is not written). The list is published next to the
feature tables; the built-in world has every table and loses nothing.
Design: docs/features.md#missing-tables
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from .fused import FUSED_INPUTS
from .inputs import COLUMNS, CONSENT_COLUMNS
from .schema import FEATURE_SCHEMA

ABSENT_FILE = "absent_features.json"
SURVEYS = ("survey_invitations", "survey_responses")   # responses are linked to invitations
_ANSWERS = ("last_nps", "last_csat", "last_effort", "nps_trend", "mean_nps_365d",
            "min_nps_365d", "last_touchpoint", "days_since_last_survey_answer",
            "responses_365d", "ever_responded", "comments_180d", "sentiment_90d",
            "sentiment_180d", "topic_support_180d", "topic_reliability_180d",
            "topic_price_180d", "topic_delivery_180d")
#: The tables each non-fused feature is made from (a feature not named: crm_customers only).
NEEDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("plan", "contract", "days_to_renewal", "monthly_charge",
                     "price_change_90d_pct", "discount_90d", "late_payments_90d",
                     "days_late_max_90d"), ("billing_invoices",)),
    **dict.fromkeys(("usage_last_month", "usage_30d_trend", "usage_90d_trend",
                     "usage_drop_ratio", "usage_vs_usual", "usage_prev_vs_usual",
                     "active_days_last_month", "sessions_last_month"), ("product_usage",)),
    **dict.fromkeys(("tickets_30d", "tickets_90d", "tickets_unresolved_90d",
                     "tickets_open_now", "mean_resolution_days_90d", "max_resolution_days_90d",
                     "technical_tickets_90d", "outage_tickets_90d", "billing_tickets_90d"),
                    ("support_tickets",)),
    **dict.fromkeys(("orders_90d", "failed_orders_90d"), ("orders",)),
    **dict.fromkeys(("actions_90d", "days_since_last_action"), ("interventions",)),
    **dict.fromkeys(_ANSWERS, SURVEYS),
    **dict.fromkeys(("days_since_last_invitation", "invitations_365d", "response_rate_365d"),
                    SURVEYS),
    **dict.fromkeys(("complaints_90d", "complaint_max_severity_90d"), ("complaints",)),
    **{c: (f"crm_customers.{c}",) for c in CONSENT_COLUMNS},
}


def missing_tables(clean_dir: Path) -> list[str]:
    """The optional contract tables without a clean file (not exported), and the optional
    crm columns the export left out or left empty (named ``crm_customers.<column>``)."""
    missing = [t for t in COLUMNS if t != "crm_customers"
               and not (Path(clean_dir) / f"{t}.parquet").is_file()]
    crm = Path(clean_dir) / "crm_customers.parquet"
    if crm.is_file():
        names = pq.read_schema(crm).names
        present = [c for c in CONSENT_COLUMNS if c in names]
        table = pq.read_table(crm, columns=present) if present else None
        missing += [f"crm_customers.{c}" for c in CONSENT_COLUMNS
                    if c not in present or table[c].null_count == table.num_rows]
    return missing


def absent_features(missing: list[str]) -> list[str]:
    """The features that need one of the ``missing`` tables, in schema order."""
    gone = {f for f, tables in NEEDS.items() if set(tables) & set(missing)}
    gone |= {f for f, inputs in FUSED_INPUTS.items() if set(inputs) & gone}
    return [c for cols in FEATURE_SCHEMA.values() for c in cols if c in gone]


def present_schema(absent: list[str]) -> dict[str, dict[str, str]]:
    """``FEATURE_SCHEMA`` without the absent features; a view left with none is dropped."""
    out = {view: {c: k for c, k in cols.items() if c not in absent}
           for view, cols in FEATURE_SCHEMA.items()}
    return {view: cols for view, cols in out.items() if cols}


def publish_absent(missing: list[str], out_dir: Path) -> list[str]:
    """Write the missing tables and their absent features next to the feature tables."""
    absent = absent_features(missing)
    (Path(out_dir) / ABSENT_FILE).write_text(json.dumps(
        {"missing_tables": missing, "absent_features": absent}, indent=2) + "\n")
    return absent


def read_absent(feature_dir: Path) -> list[str]:
    """The absent features of the built tables ([] when every table was exported)."""
    path = Path(feature_dir) / ABSENT_FILE
    return json.loads(path.read_text())["absent_features"] if path.is_file() else []
