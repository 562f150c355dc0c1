"""Churn label horizon edges, censoring, the spine and snapshot dates."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from configs.settings import FeaturesParams
from features.transforms import build_feature_tables, snapshot_dates

from .tiny import monthly_invoices, write_tables

S = pd.Timestamp("2024-04-01", tz="UTC")
AS_OF = date(2024, 10, 1)


def _day(offset: int) -> str:
    return (S + pd.Timedelta(days=offset)).date().isoformat()


CUSTOMERS = {            # customer -> (signup, churn_date)
    "at_90": ("2023-01-01", _day(90)),
    "at_91": ("2023-01-01", _day(91)),
    "before": ("2023-01-01", _day(-1)),
    "on_snapshot": ("2023-01-01", _day(0)),
    "next_day": ("2023-01-01", _day(1)),
    "signs_up_at_s": (_day(0), None),
    "stays": ("2023-01-01", None),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("labels")
    crm = [{"customer_id": c, "signup_date": s, "churn_date": d,
            "status": "churned" if d else "active"} for c, (s, d) in CUSTOMERS.items()]
    write_tables(root / "clean", crm_customers=crm,
                 billing_invoices=monthly_invoices("stays", "2024-01-01", 9))
    build_feature_tables(root / "clean", root / "out", FeaturesParams(), as_of=AS_OF)
    return {t: pd.read_parquet(root / "out" / f"{t}.parquet")
            for t in ("customer_o", "churn_labels")}


def test_horizon_edges(built):
    lab = built["churn_labels"]
    at_s = lab[lab["event_timestamp"] == S].set_index("customer_id")["churned_within_horizon"]
    assert at_s["at_90"] == 1 and at_s["at_91"] == 0 and at_s["next_day"] == 1
    assert at_s["on_snapshot"] == 1          # open at S, gone the same day
    assert at_s["stays"] == 0
    assert "before" not in at_s and "signs_up_at_s" not in at_s
    # the 91-day leaver is a positive one month later
    nxt = lab[lab["event_timestamp"] == S + pd.DateOffset(months=1)].set_index("customer_id")
    assert nxt.loc["at_91", "churned_within_horizon"] == 1


def test_spine_follows_open_accounts(built):
    o = built["customer_o"]
    at_s = set(o.loc[o["event_timestamp"] == S, "customer_id"])
    assert at_s == {"at_90", "at_91", "on_snapshot", "next_day", "stays"}
    later = set(o.loc[o["event_timestamp"] == S + pd.DateOffset(months=1), "customer_id"])
    assert later == {"at_90", "at_91", "stays", "signs_up_at_s"}


def test_censored_snapshots_get_no_churn_labels(built):
    """Labels need the whole horizon observed: S + 90 days must fall before as_of."""
    as_of = pd.Timestamp(AS_OF, tz="UTC")
    labelled = set(built["churn_labels"]["event_timestamp"])
    featured = set(built["customer_o"]["event_timestamp"])
    assert max(featured) == as_of                       # features reach the end of history
    assert labelled == {s for s in featured if s + pd.Timedelta(days=90) < as_of}
    assert max(labelled) == pd.Timestamp("2024-07-01", tz="UTC")


def test_snapshot_dates():
    got = snapshot_dates(pd.Timestamp("2024-01-15"), pd.Timestamp("2024-09-01"), 2, 3)
    assert [d.date().isoformat() for d in got] == ["2024-04-01", "2024-06-01", "2024-08-01"]
    assert str(got.tz) == "UTC"
    assert len(snapshot_dates("2024-01-01", "2024-03-01", 1, 3)) == 0
