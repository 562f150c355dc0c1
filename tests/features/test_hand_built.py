"""Tiny hand-built tables whose feature values are known by heart."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from configs.settings import FeaturesParams
from features.transforms import build_feature_tables

from .tiny import monthly_invoices, write_tables

S = pd.Timestamp("2024-07-01", tz="UTC")


def _usage(cid, values: dict[str, float]) -> list[dict]:
    return [{"customer_id": cid, "month": m, "usage_units": v} for m, v in values.items()]


def _invoices_a() -> list[dict]:
    rows = monthly_invoices("A", "2024-01-01", 12, contract="one_year",
                            contract_end_date="2024-09-29")
    rows[4]["days_late"] = 5                   # 2024-05-01, paid 05-06: inside the window
    rows[5].update(days_late=40, list_price=40.0, price_change_pct=5.0)  # paid after S
    rows[6].update(contract_end_date="2025-07-01", list_price=99.0)       # dated at S
    return rows


def _surveys() -> dict[str, list[dict]]:
    inv = [("I0", "A", "2023-06-01"), ("I1", "A", "2024-02-01"), ("I2", "A", "2024-05-01"),
           ("I3", "A", "2024-06-28"), ("IN", "N", "2024-04-20"), ("IM", "M", "2024-05-10")]
    resp = [("I0", "A", "2023-06-02", 3, "the price is too expensive"),
            ("I1", "A", "2024-02-03", 9, "great service, very happy"),
            ("I3", "A", "2024-07-02", 1, None),
            ("IN", "N", "2024-05-01 00:00:00", 2, "my order never arrived"),
            ("IM", "M", "2024-05-17 12:00:00", 4, None)]
    return {
        "survey_invitations": [{"invitation_id": i, "customer_id": c, "sent_at": t}
                               for i, c, t in inv],
        "survey_responses": [{"invitation_id": i, "customer_id": c, "responded_at": t,
                              "nps": n, "csat": 4.0, "comment": txt}
                             for i, c, t, n, txt in resp],
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tiny")
    crm = [{"customer_id": "A", "signup_date": "2023-05-01"},
           {"customer_id": "B", "signup_date": "2024-03-15"},
           {"customer_id": "N", "signup_date": "2024-01-15"},
           {"customer_id": "M", "signup_date": "2024-01-15"}]
    tickets = [
        ("2024-06-10", "2024-06-20", "unresolved", "technical"),
        ("2024-06-25", "2024-07-05", "resolved", "outage"),      # open at S
        ("2024-03-01", "2024-03-02", "unresolved", "technical"),  # before the 90-day window
        ("2024-06-30 23:59:59", None, "open", "technical"),
        ("2024-07-01 00:00:00", None, "open", "technical"),       # at S: not seen
    ]
    write_tables(
        root / "clean",
        crm_customers=crm,
        billing_invoices=_invoices_a() + monthly_invoices("B", "2024-04-01", 9),
        product_usage=_usage("A", {"2024-01-01": 100, "2024-02-01": 80, "2024-03-01": 100,
                                   "2024-04-01": 100, "2024-05-01": 100, "2024-06-01": 50,
                                   "2024-07-01": 999})
        + _usage("B", {"2024-04-01": 40, "2024-06-01": 60}),
        support_tickets=[{"customer_id": "A", "opened_at": o, "closed_at": c, "status": s,
                          "category": k} for o, c, s, k in tickets],
        complaints=[{"customer_id": "A", "received_at": "2024-06-15", "severity": 2},
                    {"customer_id": "A", "received_at": "2024-03-01", "severity": 3}],
        interventions=[{"customer_id": "A", "assigned_at": "2024-05-01"},
                       {"customer_id": "A", "assigned_at": "2024-06-01", "control_group": True,
                        "outcome": "holdout", "cost": 0.0},
                       {"customer_id": "A", "assigned_at": "2024-06-15", "outcome": "no_answer"}],
        **_surveys(),
    )
    build_feature_tables(root / "clean", root / "out", FeaturesParams(), as_of=date(2025, 1, 1))
    out = {t: pd.read_parquet(root / "out" / f"{t}.parquet")
           for t in ("customer_o", "customer_x", "customer_fused", "nps_labels")}
    return {t: df.set_index(["customer_id", "event_timestamp"]) if t != "nps_labels" else df
            for t, df in out.items()}


def row(tiny, table, cid, at=S) -> pd.Series:
    return tiny[table].loc[(cid, at)]


def test_usage_trends(tiny):
    a, b = row(tiny, "customer_o", "A"), row(tiny, "customer_o", "B")
    assert a["usage_last_month"] == 50                        # July (at S) is not complete
    assert a["usage_30d_trend"] == pytest.approx(-0.5)
    assert a["usage_90d_trend"] == pytest.approx((250 / 3) / (280 / 3) - 1)
    assert a["usage_drop_ratio"] == pytest.approx(0.5)
    assert b["usage_last_month"] == 60
    assert np.isnan(b["usage_30d_trend"]) and np.isnan(b["usage_90d_trend"])
    assert b["usage_drop_ratio"] == pytest.approx(1.5)


def test_tickets(tiny):
    a = row(tiny, "customer_o", "A")
    assert (a["tickets_90d"], a["tickets_30d"], a["tickets_unresolved_90d"]) == (3, 3, 1)
    assert a["tickets_open_now"] == 2
    assert a["mean_resolution_days_90d"] == pytest.approx(10)
    assert a["max_resolution_days_90d"] == pytest.approx(10)
    assert (a["technical_tickets_90d"], a["outage_tickets_90d"]) == (2, 1)
    assert np.isnan(row(tiny, "customer_o", "B")["mean_resolution_days_90d"])


def test_billing(tiny):
    a, b = row(tiny, "customer_o", "A"), row(tiny, "customer_o", "B")
    assert a["days_to_renewal"] == 90 and np.isnan(b["days_to_renewal"])
    assert a["monthly_charge"] == 40 and a["contract"] == "one_year"
    assert a["price_change_90d_pct"] == 5.0
    assert a["late_payments_90d"] == 1 and a["days_late_max_90d"] == 5   # the 40-day one is unpaid
    assert a["tenure_days"] == (S - pd.Timestamp("2023-05-01", tz="UTC")).days


def test_actions_count_only_delivered_treatments(tiny):
    a = row(tiny, "customer_o", "A")
    assert a["actions_90d"] == 1                     # hold-out and unanswered rows are no action
    assert a["days_since_last_action"] == pytest.approx(61)


def test_survey_engagement_and_scores(tiny):
    a = row(tiny, "customer_x", "A")
    assert (a["last_nps"], a["nps_trend"], a["mean_nps_365d"]) == (9, 6, 9)
    assert (a["invitations_365d"], a["responses_365d"], a["ever_responded"]) == (3, 1, 1)
    assert a["response_rate_365d"] == pytest.approx(1 / 3)  # I3 is answered only after S
    assert a["days_since_last_invitation"] == pytest.approx(3)
    assert a["days_since_last_survey_answer"] == pytest.approx(149)
    assert a["last_csat"] == 4 and np.isnan(a["last_effort"])
    assert (a["complaints_90d"], a["complaint_max_severity_90d"]) == (1, 2)
    assert a["sentiment_180d"] > 0.5 and np.isnan(a["sentiment_90d"])
    assert a["topic_price_180d"] == 0                      # the price comment is a year old
    assert np.isnan(row(tiny, "customer_x", "B")["response_rate_365d"])


def test_fused(tiny):
    f = row(tiny, "customer_fused", "A")
    assert f["promoter_with_usage_drop"] == 1 and f["detractor_with_open_ticket"] == 0
    assert np.isnan(row(tiny, "customer_fused", "B")["detractor_with_open_ticket"])
    assert row(tiny, "customer_fused", "B")["silent_with_tickets"] == 0


@pytest.mark.parametrize("cid", ["N", "M"])
def test_the_only_answer_is_a_label_never_a_feature(tiny, cid):
    labels = tiny["nps_labels"]
    label = labels[labels["customer_id"] == cid].iloc[0]
    snap = pd.Timestamp("2024-05-01", tz="UTC")          # latest snapshot <= responded_at
    assert label["event_timestamp"] >= snap
    x = row(tiny, "customer_x", cid, snap)
    assert np.isnan(x["last_nps"]) and x["ever_responded"] == 0 and x["responses_365d"] == 0
    assert np.isnan(x["sentiment_180d"])
    assert row(tiny, "customer_x", cid, snap + pd.DateOffset(months=1))["last_nps"] == \
        label["nps"]
    n = row(tiny, "customer_x", "N", snap + pd.DateOffset(months=1))
    assert n["topic_delivery_180d"] == 1 and n["sentiment_180d"] < 0
