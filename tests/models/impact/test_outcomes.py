"""Planned rows joined with realized outcomes: log matching, the capacity cut, pending windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import text

from configs.settings import load_settings
from models.impact.outcomes import DELIVERED, HELD_OUT, NOT_LOGGED, outcome_rows, planned_rows
from models.impact.report import PENDING, build_report, effect_table
from serving.db.schema import engine_for, make_engine
from tests.models.impact.world_loop import write_run

JAN, FEB = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")


def _plan(run_id, as_of, cycle, rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "rep_id", "rank", "action_id", "control_group"])
    return frame.assign(run_id=run_id, as_of=as_of, cycle=cycle, cost=10.0, arm="policy",
                        plan_probability=np.nan)


def _log(rows):
    return pd.DataFrame(rows, columns=["customer_id", "action", "control_group", "assigned_at"]).assign(
        assigned_at=lambda f: pd.to_datetime(f["assigned_at"], utc=True))


def test_log_rows_match_their_run_and_hold_outs_are_cut_at_the_reps_last_delivery():
    plan = _plan("r1", JAN, 1, [
        ("C1", "R1", 1, "discount_offer", False),
        ("C2", "R1", 2, "discount_offer", True),
        ("C3", "R1", 3, "discount_offer", False),   # delivered: the rep's last
        ("C4", "R1", 4, "discount_offer", True),    # held out below the cut: no treated twin
        ("C5", "R1", 5, "discount_offer", False),   # over capacity: not in the log
        ("C6", "R2", 1, "plan_upgrade", True),      # a rep who delivered nothing
    ])
    log = _log([("C1", "discount_offer", False, "2025-01-01 09:00"),
                ("C2", "discount_offer", True, "2025-01-01 09:00"),
                ("C3", "discount_offer", False, "2025-01-01 10:00"),
                ("C4", "discount_offer", True, "2025-01-01 10:00"),
                ("C6", "plan_upgrade", True, "2025-01-01 10:00"),
                ("C1", "discount_offer", False, "2024-12-01 10:00")])   # before the run: not its row
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(1, 7)],
                              "notice_date": [None, "2025-02-10", None, None, None, None],
                              "churn_date": [None, "2025-03-24", None, None, None, None]})
    rows = outcome_rows(plan, log, customers, 150, pd.Timestamp("2025-07-01")).set_index("customer_id")
    assert rows["status"].to_dict() == {"C1": DELIVERED, "C2": HELD_OUT, "C3": DELIVERED,
                                        "C4": HELD_OUT, "C5": NOT_LOGGED, "C6": HELD_OUT}
    assert rows["compare"].to_dict() == {"C1": True, "C2": True, "C3": True, "C4": False,
                                         "C5": False, "C6": False}
    assert rows.loc["C2", "churned"] == 1 and rows.loc["C1", "churned"] == 0
    assert rows["matured"].all()


def test_pending_rows_have_no_label_and_are_not_counted():
    plan = pd.concat([_plan("r1", JAN, 1, [(f"A{i}", "R1", i, "apology_credit", i % 2 == 0)
                                           for i in range(200)]),
                      _plan("r2", FEB, 2, [(f"B{i}", "R1", i, "apology_credit", i % 2 == 0)
                                           for i in range(200)])])
    log = _log([(c, "apology_credit", g, d + " 08:00") for c, g, d in zip(
        plan["customer_id"], plan["control_group"], plan["as_of"].dt.strftime("%Y-%m-%d"), strict=True)])
    rng = np.random.default_rng(0)
    notice = np.where(rng.random(len(plan)) < 0.2, "2025-03-01", None)
    customers = pd.DataFrame({"customer_id": plan["customer_id"], "notice_date": notice})
    end = JAN + pd.Timedelta(days=150)          # r1's window just over, r2's not
    rows = outcome_rows(plan, log, customers, 150, end)
    r2 = rows[rows["run_id"] == "r2"]
    assert not r2["matured"].any() and r2["churned"].isna().all()
    table = effect_table(rows)
    cycle2 = table[(table["scope"] == "cycle") & (table["cycle"] == 2)]
    assert list(cycle2["status"]) == [PENDING] and int(cycle2["pending_rows"].iloc[0]) == 200
    cum = table[(table["scope"] == "cumulative") & (table["action"] == "all")].iloc[0]
    assert cum["n_treated"] + cum["n_control"] == 200          # r1 only


def test_a_database_without_arm_columns_is_read_as_the_policy_with_unknown_probabilities(tmp_path):
    """A serving database of an older release: action_plan has no arm nor probability."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}", create=False)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE scoring_runs (run_id TEXT PRIMARY KEY, as_of DATE, status TEXT)"))
        conn.execute(text("CREATE TABLE action_plan (run_id TEXT, customer_id TEXT, rep_id TEXT, "
                          "rank INTEGER, action_id TEXT, cost FLOAT, control_group BOOLEAN)"))
        conn.execute(text("INSERT INTO scoring_runs VALUES ('r1', '2025-01-01', 'complete')"))
        conn.execute(text("INSERT INTO action_plan VALUES ('r1', 'C1', 'R1', 1, 'discount_offer', 30, 0),"
                          " ('r1', 'C2', 'R1', 2, 'discount_offer', 30, 1)"))
    rows = planned_rows(engine)
    assert list(rows["arm"]) == ["policy", "policy"] and rows["plan_probability"].isna().all()
    assert list(rows["control_group"]) == [False, True] and (rows["as_of"] == JAN).all()


def test_arms_and_probabilities_are_read_when_recorded(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    engine = engine_for(settings)
    plan = pd.DataFrame({"customer_id": ["C1", "C2"], "rep_id": "R1", "rank": [1, 2],
                         "action_id": "discount_offer", "control_group": [False, True], "cost": 30.0,
                         "arm": "experiment", "assignment_probability": [0.5, 0.5]})
    write_run(engine, "r1", JAN.date(), plan)
    rows = planned_rows(engine)
    assert list(rows["arm"]) == ["experiment"] * 2 and (rows["plan_probability"] == 0.5).all()


def test_report_needs_a_scoring_run(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    try:
        build_report(settings, engine_for(settings))
    except LookupError as err:
        assert "cem score" in str(err)
    else:
        raise AssertionError("no LookupError")


def test_the_programmes_own_rows_do_not_stand_in_for_the_plans():
    """When the log marks the product's rows (``product_<arm>``), a programme row for the same
    customer and action is not taken for the plan's delivery."""
    plan = _plan("r1", JAN, 1, [("C1", "R1", 1, "discount_offer", False),
                                ("C2", "R1", 2, "discount_offer", False)])
    log = _log([("C1", "discount_offer", False, "2025-01-01 09:00"),
                ("C2", "discount_offer", False, "2025-01-01 09:00")]).assign(
        stratum=["product_policy", "price_rise"])
    customers = pd.DataFrame({"customer_id": ["C1", "C2"], "notice_date": [None, None]})
    rows = outcome_rows(plan, log, customers, 150, pd.Timestamp("2025-07-01"))
    assert list(rows["status"]) == [DELIVERED, NOT_LOGGED]
