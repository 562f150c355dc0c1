"""Point-in-time correctness: a snapshot's features never see events at or after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.transforms import build_feature_tables

CUT = pd.Timestamp("2024-07-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def _read(clean, name):
    return pd.read_parquet(clean / f"{name}.parquet")


def _append(df: pd.DataFrame, rows: dict) -> pd.DataFrame:
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


def _perturb(src, dst, ids: np.ndarray) -> None:
    """Add events at/after CUT for ``ids`` and rewrite existing events dated at/after CUT."""
    dst.mkdir()
    k = len(ids)
    at = [CUT if i % 2 else CUT + 5 * DAY for i in range(k)]
    t = _read(src, "support_tickets")
    later = t["opened_at"] >= CUT
    t.loc[later, "status"] = "unresolved"
    spans = (t["opened_at"] < CUT) & (t["closed_at"] >= CUT)     # open at CUT, closed after
    t.loc[spans, "closed_at"] += 10 * DAY
    t.loc[spans, "status"] = "unresolved"
    t = _append(t, {"ticket_id": [f"TX{i}" for i in range(k)], "customer_id": ids,
                    "opened_at": at, "closed_at": [c + DAY for c in at], "category": "outage",
                    "status": "unresolved", "channel": "phone"})
    inv = _read(src, "survey_invitations")
    inv = _append(inv, {"invitation_id": [f"SX{i}" for i in range(k)], "customer_id": ids,
                        "survey_id": "late-survey", "touchpoint": "support", "channel": "email",
                        "sent_at": CUT, "trigger_id": None})
    r = _read(src, "survey_responses")
    r.loc[r["responded_at"] >= CUT, ["nps", "comment"]] = [0, "awful outage, far too expensive"]
    r = _append(r, {"response_id": [f"RX{i}" for i in range(k)], "customer_id": ids,
                    "invitation_id": [f"SX{i}" for i in range(k)], "survey_id": "late-survey",
                    "channel": "email", "respondent": "x", "responded_at": at, "nps": 0,
                    "csat": 1.0, "effort": 7.0, "comment": "the support never answers"})
    b = _read(src, "billing_invoices")
    dates = pd.to_datetime(b["invoice_date"]).dt.tz_localize("UTC")
    b.loc[dates >= CUT, ["days_late", "list_price"]] = [30, 999.0]
    unpaid = (dates < CUT) & (dates + pd.to_timedelta(b["days_late"], unit="D") >= CUT)
    b.loc[unpaid, "days_late"] += 10            # still settled after CUT
    b = _append(b, {"invoice_id": [f"IX{i}" for i in range(k)], "customer_id": ids,
                    "invoice_date": CUT.date(), "plan": "premium", "contract": "two_year",
                    "contract_end_date": (CUT + 700 * DAY).date(), "list_price": 500.0,
                    "price_change_pct": 50.0, "discount": 9.0, "amount": 1.0, "days_late": 3})
    u = _read(src, "product_usage")
    u.loc[pd.to_datetime(u["month"]).dt.tz_localize("UTC") >= CUT, "usage_units"] = 0.0
    other = {
        "complaints": {"complaint_id": [f"CX{i}" for i in range(k)], "received_at": at,
                       "contact_type": "email", "contact": "x", "category": "price",
                       "severity": 3},
        "orders": {"order_id": [f"OX{i}" for i in range(k)], "ordered_at": at, "amount": 1.0,
                   "status": "failed"},
        "interventions": {"intervention_id": [f"NX{i}" for i in range(k)],
                          "action": "discount_offer", "assigned_at": at, "rep_id": "R0",
                          "cost": 5.0, "control_group": False, "outcome": "accepted"},
    }
    frames = {"support_tickets": t, "survey_invitations": inv, "survey_responses": r,
              "billing_invoices": b, "product_usage": u, "crm_customers": _read(src,
                                                                                  "crm_customers")}
    for name, rows in other.items():
        frames[name] = _append(_read(src, name), {"customer_id": ids, **rows})
    for name, df in frames.items():
        df.to_parquet(dst / f"{name}.parquet")


def test_events_after_a_snapshot_leave_its_rows_byte_identical(feature_world, tmp_path):
    o = feature_world.tables["customer_o"]
    at_cut = o.loc[o["event_timestamp"] == CUT, "customer_id"].to_numpy()
    ids = np.random.default_rng(0).choice(at_cut, 80, replace=False)
    _perturb(feature_world.clean, tmp_path / "clean", ids)
    as_of = feature_world.tables["customer_o"]["event_timestamp"].max().date()
    out = tmp_path / "features"
    build_feature_tables(tmp_path / "clean", out, feature_world.params, as_of=as_of)
    for name in ("customer_o", "customer_x", "customer_fused", "churn_labels"):
        before = pq.read_table(feature_world.out / f"{name}.parquet")
        after = pq.read_table(out / f"{name}.parquet")
        keep = lambda tab: tab.filter(pc.less_equal(tab["event_timestamp"], CUT))  # noqa: E731
        assert keep(before).num_rows > 0
        assert keep(after).equals(keep(before)), name
    # the perturbation is real: the next snapshot does see it
    later = CUT + pd.DateOffset(months=1)
    old, new = (pd.read_parquet(d / "customer_x.parquet") for d in (feature_world.out, out))
    pick = lambda df: df[(df["event_timestamp"] == later) & df["customer_id"].isin(ids)]  # noqa
    assert (pick(new)["last_nps"] == 0).all() and not (pick(old)["last_nps"] == 0).all()


def test_every_nps_label_is_absent_from_its_feature_row(feature_world):
    """For each answer used as a label, the joined feature row only knows earlier answers."""
    x = feature_world.tables["customer_x"]
    x = x.assign(snap=x["event_timestamp"]).sort_values("event_timestamp")
    labels = feature_world.tables["nps_labels"].sort_values("event_timestamp")
    joined = pd.merge_asof(labels, x, on="event_timestamp", by="customer_id",
                           direction="backward", suffixes=("_label", ""))
    joined = joined.dropna(subset=["snap"]).sort_values("snap")   # answers before any snapshot
    assert (joined["snap"] <= joined["event_timestamp"]).all()
    # independently: the customer's latest answer strictly before the joined snapshot
    r = pd.read_parquet(feature_world.clean / "survey_responses.parquet")
    r = r.sort_values("responded_at")[["customer_id", "responded_at", "nps"]]
    r["responded_at"] = r["responded_at"].dt.as_unit("us")
    prev = pd.merge_asof(joined, r.rename(columns={"nps": "nps_prev"}), left_on="snap",
                         right_on="responded_at", by="customer_id", allow_exact_matches=False)
    assert len(prev) > 200 and prev["last_nps"].isna().sum() > 50
    np.testing.assert_array_equal(prev["last_nps"].to_numpy(), prev["nps_prev"].to_numpy(float))
    gap = (prev["snap"] - prev["responded_at"]).dt.total_seconds() / 86_400
    np.testing.assert_allclose(prev["days_since_last_survey_answer"], gap, atol=1e-5)
    assert (prev["days_since_last_survey_answer"].dropna() > 0).all()
