"""Surveys as companies have them: CSAT-only answers, mixed NPS and CSAT answers, no
surveys at all. Each score's features come from the answers that carry it."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from configs.settings import FeaturesParams
from features.transforms import build_feature_tables

from .tiny import monthly_invoices, write_tables

S = pd.Timestamp("2024-07-01", tz="UTC")


def _build(root, **tables) -> dict[str, pd.DataFrame]:
    crm = [{"customer_id": c, "signup_date": "2024-01-01"} for c in ("A", "B", "C")]
    invoices = [r for c in ("A", "B", "C") for r in monthly_invoices(c, "2024-01-01", 10)]
    write_tables(root / "clean", crm_customers=crm, billing_invoices=invoices, **tables)
    build_feature_tables(root / "clean", root / "out", FeaturesParams(), as_of=date(2025, 1, 1))
    x = pd.read_parquet(root / "out" / "customer_x.parquet").set_index(["customer_id", "event_timestamp"])
    return {"x": x, "labels": pd.read_parquet(root / "out" / "nps_labels.parquet")}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """A answers CSAT only; B answers NPS then a CSAT-only survey; C answers effort only."""
    answers = [("IA1", "A", "2024-03-02", None, 2), ("IA2", "A", "2024-05-02", None, 5),
               ("IB1", "B", "2024-03-02", 3, None), ("IB2", "B", "2024-05-02", None, 4)]
    inv = [{"invitation_id": i, "customer_id": c, "sent_at": pd.Timestamp(t) - pd.Timedelta(days=1)}
           for i, c, t, *_ in answers] + [{"invitation_id": "IC1", "customer_id": "C",
                                           "sent_at": "2024-04-01"}]
    resp = [{"invitation_id": i, "customer_id": c, "responded_at": t, "nps": n, "csat": s}
            for i, c, t, n, s in answers]
    resp.append({"invitation_id": "IC1", "customer_id": "C", "responded_at": "2024-04-02",
                 "nps": None, "csat": None, "effort": 6.0})
    return _build(tmp_path_factory.mktemp("mixed"), survey_invitations=inv, survey_responses=resp)


def test_csat_only_answers_give_csat_features_and_no_nps(mixed):
    a = mixed["x"].loc[("A", S)]
    assert a["last_csat"] == 5
    assert np.isnan(a["last_nps"]) and np.isnan(a["mean_nps_365d"]) and np.isnan(a["nps_trend"])
    assert a["responses_365d"] == 2 and a["ever_responded"] == 1


def test_a_later_csat_only_answer_keeps_the_last_nps(mixed):
    b = mixed["x"].loc[("B", S)]
    assert b["last_nps"] == 3 and b["mean_nps_365d"] == 3 and b["min_nps_365d"] == 3
    assert b["last_csat"] == 4 and np.isnan(b["nps_trend"])
    c = mixed["x"].loc[("C", S)]
    assert c["last_effort"] == 6 and np.isnan(c["last_nps"]) and np.isnan(c["last_csat"])


def test_nps_labels_hold_only_nps_answers(mixed):
    assert mixed["labels"]["invitation_id"].tolist() == ["IB1"]
    assert mixed["labels"]["nps"].tolist() == [3]


def test_no_surveys_at_all(tmp_path):
    out = _build(tmp_path)
    a = out["x"].loc[("A", S)]
    assert np.isnan(a["last_nps"]) and np.isnan(a["last_csat"]) and a["responses_365d"] == 0
    assert out["labels"].empty
