"""A tiny hand-built source world (every row valid) and helpers to write it out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import run_ingest

TEMPORAL = ("signup_date", "churn_date", "invoice_date", "contract_end_date", "month",
            "opened_at", "closed_at", "received_at", "ordered_at", "sent_at",
            "responded_at", "assigned_at")


def _frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def base_world() -> dict[str, pd.DataFrame]:
    """Four customers; C3 and C4 share a household phone; every row passes the contract."""
    crm = _frame(
        "customer_id signup_date segment region rep_id email phone app_id status churn_date",
        [
            ("C1", "2023-01-15", "consumer", "north", "R1", " Ann@Example.COM ",
             "+1 (212) 555-0134", "App-One", "active", None),
            ("C2", "2023-02-01", "small_business", "south", "R1", "bob@example.com",
             "212.555.0199", None, "active", None),
            ("C3", "2023-03-01", "enterprise", "east", "R2", None,
             "(646) 555-0100", "app-three", "churned", "2024-05-31"),
            ("C4", "2023-04-01", "consumer", "west", "R2", "dee@example.com",
             "646-555-0100", None, "active", None),
        ],
    )
    invoices = _frame(
        "invoice_id customer_id invoice_date plan contract contract_end_date list_price "
        "price_change_pct discount amount days_late",
        [
            ("INV1", "C1", "2024-01-01", "basic", "month_to_month", None, 20.0, 0.0, 0.0, 20.0, 0),
            ("INV2", "C1", "2024-02-01", "basic", "month_to_month", None, 22.0, 10.0, 2.0, 20.0, 3),
            ("INV3", "C2", "2024-01-01", "premium", "one_year", "2024-12-31", 80.0, 0.0, 0.0,
             80.0, 0),
            ("INV4", "C3", "2024-01-01", "standard", "two_year", "2025-06-30", 40.0, 0.0, 5.0,
             35.0, 12),
        ],
    )
    usage = _frame(
        "customer_id month usage_units active_days sessions",
        [("C1", "2024-01-01", 10.5, 20, 40), ("C1", "2024-02-01", 3.0, 5, 6),
         ("C2", "2024-01-01", 0.0, 0, 0), ("C4", "2024-01-01", 7.25, 31, 90)],
    )
    tickets = _frame(
        "ticket_id customer_id opened_at closed_at category status channel",
        [("T1", "C1", "2024-03-01T09:00:00", "2024-03-01T10:30:00", "billing", "resolved", "phone"),
         ("T2", "C2", "2024-03-05T12:00:00Z", None, "outage", "open", "chat"),
         ("T3", "C4", "2024-03-07T08:00:00+02:00", "2024-03-08T08:00:00+02:00", "technical",
          "unresolved", "email")],
    )
    complaints = _frame(
        "complaint_id received_at contact_type contact category severity",
        [("K1", "2024-04-01T10:00:00", "email", "ANN@example.com", "billing", 2),
         ("K2", "2024-04-02T10:00:00", "phone", "2125550199", "network", 3),
         ("K3", "2024-04-03T10:00:00", "email", "dee@example.com ", "staff", 1)],
    )
    orders = _frame(
        "order_id customer_id ordered_at amount status",
        [("O1", "C1", "2024-02-10T15:00:00", 99.0, "delivered"),
         ("O2", "C4", "2024-02-11T15:00:00", 0.0, "cancelled")],
    )
    invitations = _frame(
        "invitation_id customer_id survey_id touchpoint channel sent_at trigger_id",
        [("I1", "C1", "relationship-2024-06", "relationship", "email", "2024-06-01T08:00:00", None),
         ("I2", "C1", "relationship-2024-06", "relationship", "email", "2024-06-10T08:00:00", None),
         ("I3", "C2", "support-2024-03", "support", "sms", "2024-03-06T08:00:00", "T2"),
         ("I4", "C3", "relationship-2024-06", "relationship", "app", "2024-06-01T08:00:00", None),
         ("I5", "C4", "purchase-2024-02", "purchase", "email", "2024-02-12T08:00:00", "O2")],
    )
    responses = _frame(
        "response_id survey_id channel respondent responded_at nps csat effort comment",
        [("S1", "relationship-2024-06", "email", " ann@EXAMPLE.com", "2024-06-05T09:00:00",
          9, 5, 2, "great"),
         ("S2", "support-2024-03", "sms", "+1 212-555-0199", "2024-03-07T09:00:00",
          3, None, None, None),
         ("S3", "relationship-2024-06", "app", "APP-THREE ", "2024-06-02T09:00:00",
          7, 4, None, "ok"),
         ("S4", "purchase-2024-02", "email", "dee@example.com", "2024-02-13T09:00:00",
          10, 5, 1, None)],
    )
    interventions = _frame(
        "intervention_id customer_id action assigned_at rep_id cost control_group outcome",
        [("A1", "C1", "discount_offer", "2024-05-01T09:00:00", "R1", 15.0, False, "accepted"),
         ("A2", "C2", "service_recovery_call", "2024-05-02T09:00:00", "R1", 0.0, True, "holdout")],
    )
    return {
        "crm_customers": crm,
        "billing_invoices": invoices,
        "product_usage": usage,
        "support_tickets": tickets,
        "complaints": complaints,
        "orders": orders,
        "survey_invitations": invitations,
        "survey_responses": responses,
        "interventions": interventions,
    }


def _typed_for_parquet(df: pd.DataFrame) -> pd.DataFrame:
    """Parquet sources carry real types where every value parses (exercises both paths)."""
    out = df.copy()
    for col in out.columns:
        if col not in TEMPORAL:
            continue
        if not out[col].map(lambda v: v is None or isinstance(v, str)).all():
            continue  # already typed by the test
        parsed = pd.to_datetime(out[col], format="ISO8601", errors="coerce", utc=True)
        if parsed.notna().sum() == out[col].notna().sum():
            is_date = col.endswith("_date") or col == "month"
            out[col] = parsed.dt.tz_localize(None) if is_date else parsed
    for col in ("nps", "csat", "effort", "severity", "days_late", "active_days", "sessions"):
        if col in out.columns:
            numeric = pd.to_numeric(out[col], errors="coerce")
            parsed_all = numeric.notna().sum() == out[col].notna().sum()
            if parsed_all and (numeric.dropna() % 1 == 0).all():
                out[col] = numeric.astype("Int64")
    for col in out.select_dtypes(include="object").columns:  # mixed objects: store as text
        if not out[col].map(type).isin([str, type(None), date]).all():
            out[col] = out[col].map(lambda v: v if v is None or pd.isna(v) else str(v))
    return out


def write_world(frames: dict[str, pd.DataFrame], directory: Path, fmt: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for table, df in frames.items():
        if fmt == "csv":
            df.to_csv(directory / f"{table}.csv", index=False)
        else:
            _typed_for_parquet(df).to_parquet(directory / f"{table}.parquet", index=False)
    return directory


def add_rows(frames: dict, table: str, rows: list[tuple]) -> None:
    df = frames[table]
    extra = pd.DataFrame(rows, columns=df.columns)
    frames[table] = pd.concat([df.astype(object), extra.astype(object)], ignore_index=True)


@pytest.fixture
def world() -> dict[str, pd.DataFrame]:
    return base_world()


@pytest.fixture(params=["parquet", "csv"])
def fmt(request) -> str:
    return request.param


@pytest.fixture
def ingest(tmp_path):
    """Write ``frames`` as ``fmt``, run the ingest; returns (report, clean, quarantine)."""

    def _run(frames, fmt="parquet", **params):
        src = write_world(frames, tmp_path / f"src-{fmt}", fmt)
        clean_dir, q_dir = tmp_path / f"clean-{fmt}", tmp_path / f"quarantine-{fmt}"
        report = run_ingest(src, clean_dir, q_dir, IngestParams(**params))
        clean = {t: pd.read_parquet(clean_dir / f"{t}.parquet") for t in frames}
        quarantine = {t: pd.read_parquet(q_dir / f"{t}.parquet") for t in frames}
        return report, clean, quarantine

    return _run
