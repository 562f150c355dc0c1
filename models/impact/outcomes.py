"""Realized outcomes of the planned rows: what became of each scoring run's plan.

Only what a company records is used: the plans in the serving database, the CRM's
notice and churn dates and the interventions log (delivered actions and the randomized
hold-outs), all as ingested under ``settings.clean_dir``: what any company has.

A planned row is ``delivered`` or ``held_out`` when the log has it (a log row belongs to
the latest complete run dated on or before its assignment whose plan gives that customer
the same action and group); a treated row absent from the log was not delivered (over a
rep's capacity, or not allowed) and a hold-out absent from it was never eligible.
Design: docs/prescribe.md#impact-report
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, inspect, select

PLAN_COLUMNS = ("run_id", "customer_id", "rep_id", "rank", "action_id", "cost", "control_group")
OPTIONAL = ("arm", "assignment_probability")   # newer plans: the arm and the design probability
DELIVERED, HELD_OUT, NOT_LOGGED = "delivered", "held_out", "not_logged"
PRODUCT_PREFIX = "product_"   # log strata of the product's planned rows (the programme's have others)


def _day(values) -> pd.Series:
    out = pd.to_datetime(pd.Series(values), utc=True, errors="coerce")
    return out.dt.tz_localize(None).dt.as_unit("us")


def complete_runs(engine: Engine) -> pd.DataFrame:
    """The complete scoring runs, oldest first, with their cycle number (1, 2, ...)."""
    from serving.db.schema import COMPLETE, scoring_runs

    with engine.connect() as conn:
        rows = conn.execute(select(scoring_runs.c.run_id, scoring_runs.c.as_of)
                            .where(scoring_runs.c.status == COMPLETE)).all()
    runs = pd.DataFrame(rows, columns=["run_id", "as_of"])
    runs["as_of"] = _day(runs["as_of"])
    runs = runs.sort_values(["as_of", "run_id"], ignore_index=True)
    runs["cycle"] = np.arange(1, len(runs) + 1)
    return runs


def planned_rows(engine: Engine) -> pd.DataFrame:
    """Every complete run's plan with its date; ``arm`` "policy" and the probability NaN when
    the database predates those columns."""
    from serving.db.schema import action_plan

    with engine.connect() as conn:
        present = {c["name"] for c in inspect(conn).get_columns("action_plan")}
        names = [*PLAN_COLUMNS, *(c for c in OPTIONAL if c in present)]
        table = action_plan if all(n in action_plan.c for n in names) else None
        if table is None:   # columns added to the database before this code's schema knows them
            from sqlalchemy import column
            from sqlalchemy import table as sql_table

            table = sql_table("action_plan", *(column(n) for n in names))
        rows = conn.execute(select(*(table.c[n] for n in names))).all()
    plan = pd.DataFrame(rows, columns=names)
    if "arm" not in plan:
        plan["arm"] = "policy"
    plan["arm"] = plan["arm"].fillna("policy").astype(str)
    plan["plan_probability"] = pd.to_numeric(plan.pop("assignment_probability"), errors="coerce") \
        if "assignment_probability" in plan else np.nan
    plan["control_group"] = plan["control_group"].astype(bool)
    plan["cost"] = pd.to_numeric(plan["cost"], errors="coerce").fillna(0.0)
    runs = complete_runs(engine)
    plan = plan.merge(runs, on="run_id", how="inner")
    for col in ("customer_id", "rep_id", "action_id"):
        plan[col] = plan[col].astype(str)
    return plan.sort_values(["cycle", "rank", "customer_id"], kind="stable", ignore_index=True)


def decision_dates(customers: pd.DataFrame) -> pd.Series:
    """The day each customer decided to leave: the notice date, else the churn date (by id)."""
    ids = customers["customer_id"].astype(str)
    churn = _day(customers["churn_date"]) if "churn_date" in customers else pd.Series(pd.NaT, index=ids.index)
    notice = _day(customers["notice_date"]) if "notice_date" in customers else churn
    decided = notice.where(notice.notna(), churn)
    return pd.Series(decided.to_numpy(), index=ids.to_numpy())


def match_log(plan: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """Each plan row with its log row (``status``, ``assigned_at``, the log's probability)."""
    out = plan.copy()
    out["status"] = NOT_LOGGED
    out["assigned_at"] = pd.NaT
    out["log_probability"] = np.nan
    if log is None or log.empty:
        return out
    if "stratum" in log:   # the product's own rows (``product_<arm>``) when the log marks them
        mine = log["stratum"].astype(str).str.startswith(PRODUCT_PREFIX)
        log = log[mine] if mine.any() else log
    lg = pd.DataFrame({
        "customer_id": log["customer_id"].astype(str).to_numpy(),
        "action_id": log["action"].astype(str).to_numpy(),
        "control_group": log["control_group"].astype(bool).to_numpy(),
        "assigned_at": _day(log["assigned_at"]).to_numpy(),
        "log_probability": pd.to_numeric(log["assignment_probability"], errors="coerce").to_numpy()
        if "assignment_probability" in log else np.nan,
    }).dropna(subset=["assigned_at"]).sort_values("assigned_at", kind="stable")
    runs = plan[["run_id", "as_of"]].drop_duplicates().assign(as_of=lambda f: _day(f["as_of"]))
    runs = runs.sort_values("as_of", kind="stable")
    # the run in force when the row was assigned: the latest dated on or before its day
    lg["day"] = lg["assigned_at"].dt.floor("D")
    lg = pd.merge_asof(lg, runs.rename(columns={"as_of": "run_as_of"}), left_on="day",
                       right_on="run_as_of", direction="backward").dropna(subset=["run_id"])
    keys = ["run_id", "customer_id", "action_id", "control_group"]
    lg = lg.drop_duplicates(keys, keep="first")
    merged = out.drop(columns=["assigned_at", "log_probability"]).merge(
        lg[[*keys, "assigned_at", "log_probability"]], on=keys, how="left")
    logged = merged["assigned_at"].notna()
    merged["status"] = np.where(~logged, NOT_LOGGED,
                                np.where(merged["control_group"], HELD_OUT, DELIVERED))
    return merged


def like_with_like(rows: pd.DataFrame) -> np.ndarray:
    """Rows of the treated-vs-hold-out comparison: delivered rows, and hold-outs ranked within
    what their rep delivered.

    Hold-outs are drawn before capacity, deliveries stop at each rep's capacity in rank order,
    so hold-outs ranked below a rep's last delivered row have no delivered counterpart (their
    treated twins went over capacity). Cutting both groups at the rank of the rep's last
    delivered row keeps two random halves of the same planned rows: the estimate is the effect
    of the actions as delivered (per protocol), which is what the plan's value depends on.
    """
    delivered = rows["status"] == DELIVERED
    cut = rows[delivered].groupby(["run_id", "rep_id"])["rank"].max().rename("cut")
    cutoff = rows[["run_id", "rep_id"]].merge(cut, left_on=["run_id", "rep_id"], right_index=True,
                                              how="left")["cut"].to_numpy()
    held = (rows["status"] == HELD_OUT).to_numpy() & (rows["rank"].to_numpy() <= cutoff)
    return delivered.to_numpy() | held


def label(rows: pd.DataFrame, decided: pd.Series, horizon_days: int,
          data_end: pd.Timestamp) -> pd.DataFrame:
    """``start`` (assignment day, else the plan date), ``churned`` within the horizon,
    ``matured`` (the window ended by ``data_end``) and ``gone`` (decided before the start).

    ``churned`` is NaN on pending rows: a window still open says nothing yet.
    """
    out = rows.copy()
    start = out["assigned_at"].where(out["assigned_at"].notna(), out["as_of"]).dt.floor("D")
    when = pd.Series(out["customer_id"].map(decided).to_numpy(), index=out.index)
    when = _day(when)
    end = start + pd.Timedelta(days=horizon_days)
    out["start"] = start
    out["gone"] = (when < start).to_numpy()
    out["matured"] = (end <= pd.Timestamp(data_end)).to_numpy()
    churned = (when.notna() & (when >= start) & (when < end)).astype(float)
    out["churned"] = churned.where(out["matured"], np.nan)
    return out


def outcome_rows(plan: pd.DataFrame, log: pd.DataFrame | None, customers: pd.DataFrame,
                 horizon_days: int, data_end: pd.Timestamp) -> pd.DataFrame:
    """The planned rows with status, comparison flag, probability and realized churn label.

    ``probability``: the plan's design probability when recorded, else the log's, else NaN
    (then the estimators use plain means).
    """
    rows = match_log(plan, log)
    rows["compare"] = like_with_like(rows)
    rows["probability"] = rows["plan_probability"].where(rows["plan_probability"].notna(),
                                                         rows["log_probability"])
    return label(rows, decision_dates(customers), horizon_days, data_end)
