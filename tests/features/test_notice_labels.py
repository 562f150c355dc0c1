"""With cancellation notices in the CRM export the churn label is the decision (notice
within the horizon), and a customer already under notice is a save-desk case: features,
no label."""

from __future__ import annotations

import pandas as pd

from configs.settings import FeaturesParams, IngestParams
from features.ingest import run_ingest
from features.transforms import build_feature_tables

CRM = pd.DataFrame({
    "customer_id": ["A", "B", "C"],
    "signup_date": ["2023-01-05"] * 3,
    "status": ["churned", "active", "churned"],
    "churn_date": ["2024-04-21", "", "2024-02-26"],
    "notice_date": ["2024-03-10", "", "2024-01-15"],
})


def _build(tmp_path, crm: pd.DataFrame) -> pd.DataFrame:
    raw = tmp_path / "raw"
    raw.mkdir()
    crm.to_csv(raw / "crm_customers.csv", index=False)
    months = pd.date_range("2023-02-01", "2024-06-01", freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame([{"customer_id": c, "month": m, "usage_units": 10.0, "active_days": 20, "sessions": 5}
                  for c in crm["customer_id"] for m in months]).to_csv(raw / "product_usage.csv", index=False)
    run_ingest(raw, tmp_path / "clean", tmp_path / "quarantine", IngestParams())
    build_feature_tables(tmp_path / "clean", tmp_path / "features", FeaturesParams())
    return tmp_path / "features"


def _labels(out, day: str) -> dict:
    labels = pd.read_parquet(out / "churn_labels.parquet")
    at = labels[labels["event_timestamp"] == pd.Timestamp(day, tz="UTC")]
    return at.set_index("customer_id")["churned_within_horizon"].to_dict()


def test_the_label_is_the_notice_and_customers_under_notice_get_no_label(tmp_path):
    out = _build(tmp_path, CRM)
    assert _labels(out, "2024-01-01") == {"A": 1, "B": 0, "C": 1}   # both give notice within 90 days
    assert _labels(out, "2024-02-01") == {"A": 1, "B": 0}            # C gave notice on Jan 15
    features = pd.read_parquet(out / "customer_o.parquet")
    feb = features[features["event_timestamp"] == pd.Timestamp("2024-02-01", tz="UTC")]
    assert set(feb["customer_id"]) == {"A", "B", "C"}                # C is still a customer: scored


def test_without_notice_dates_the_churn_date_is_the_label(tmp_path):
    out = _build(tmp_path, CRM.drop(columns="notice_date"))
    assert _labels(out, "2024-02-01") == {"A": 1, "B": 0, "C": 1}    # nobody is "under notice"
    assert _labels(out, "2023-12-01") == {"A": 0, "B": 0, "C": 1}    # churn Feb 26 within 90 days
