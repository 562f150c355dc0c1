"""What the world's answer to a plan was worth: evaluation only (reads the hidden truth)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

DELIVERY_FILE = "plan_delivery.parquet"   # written by ``step.advance_world``


def delivered_value(truth_dir: Path, month: date) -> dict:
    """True value of the actions delivered in ``month``: the change they cause in the
    expected number of customers who decide to leave within 90 days (negative: kept)."""
    rows = pd.read_parquet(Path(truth_dir) / DELIVERY_FILE,
                           filters=[("month", "==", pd.Timestamp(month).date())])
    delivered = rows[rows["status"] == "delivered"]
    return {"planned": len(rows), "delivered": len(delivered),
            "true_effect_90d": float(delivered["true_effect_90d"].sum()),
            "lost_to_capacity_90d": float(
                rows.loc[rows["status"] == "over_capacity", "true_effect_90d"].sum())}


def delivery_rows(truth_dir: Path, month: date) -> pd.DataFrame:
    """Every planned row of ``month`` as the world answered it: status, control group, true
    effect at assignment (and the plan's arm when the world records it)."""
    return pd.read_parquet(Path(truth_dir) / DELIVERY_FILE,
                           filters=[("month", "==", pd.Timestamp(month).date())])


def true_effects(truth_dir: Path) -> pd.DataFrame:
    """The true mean effect of the delivered actions per (month, action): what the impact
    report's measured effect per cycle and action should cover (as_of, action, mean, size)."""
    rows = pd.read_parquet(Path(truth_dir) / DELIVERY_FILE)
    done = rows[rows["status"] == "delivered"]
    done = done.assign(as_of=pd.to_datetime(done["month"]).dt.tz_localize(None).dt.normalize())
    return done.groupby(["as_of", "action"])["true_effect_90d"].agg(["mean", "size"]).reset_index()


def impact_coverage(effects: pd.DataFrame, truth_dir: Path) -> pd.DataFrame:
    """Per (cycle, action) the impact report measured (``ImpactReport.effects``, status ok):
    its 90 % interval beside the true mean effect of the delivered actions, and ``covered``."""
    cycles = effects[(effects["scope"] == "cycle") & (effects["status"] == "ok")
                     & (effects["action"] != "all")].copy()
    cycles["as_of"] = pd.to_datetime(cycles["as_of"]).dt.tz_localize(None).dt.normalize()
    truth = true_effects(truth_dir).rename(columns={"action": "action_id"})
    pairs = cycles.merge(truth, left_on=["as_of", "action"], right_on=["as_of", "action_id"])
    pairs["covered"] = (pairs["lo90"] <= pairs["mean"]) & (pairs["mean"] <= pairs["hi90"])
    return pairs.drop(columns=["action_id"])


COMPARED = ("oracle", "feature_ceiling", "ungated", "risk_ranked", "random", "do_nothing")


def curve_row(truth_dir: Path, month: date, plan: pd.DataFrame | None,
              comparison: dict | None) -> dict:
    """One point of the learning curve: what the plan delivered in ``month`` was truly worth,
    by arm (exploit = the policy's rows; experiments: their value is their cost), beside the
    plans recorded in ``comparison`` when it was scored (same budget and rules)."""
    from models.prescribe.evaluate import delivered_values

    rows = delivery_rows(truth_dir, month)
    if plan is None or rows.empty:
        rows = rows.iloc[:0]
        plan = pd.DataFrame(columns=["customer_id", "p_churn", "value_at_risk", "cost"])
    valued = delivered_values(rows, plan)
    value = valued.groupby("arm")["true_value"].sum()
    count = valued["arm"].value_counts()
    compared = (comparison or {}).get("values") or {}
    row = {"month": pd.Timestamp(month).date().isoformat(),
           "budget": (comparison or {}).get("budget"),
           "exploit": float(value.get("policy", 0.0)),
           "experiments": float(value.get("experiment", 0.0)),
           "other_arms": float(value.drop(["policy", "experiment"], errors="ignore").sum()),
           "delivered_policy": int(count.get("policy", 0)),
           "delivered_experiment": int(count.get("experiment", 0))}
    row["total"] = row["exploit"] + row["experiments"] + row["other_arms"]
    for name in COMPARED:
        found = compared.get(name)
        row[name] = float("nan") if found is None else float(found)
    ceiling = row["feature_ceiling"]
    row["exploit_share_of_ceiling"] = row["exploit"] / ceiling if ceiling > 0 else float("nan")
    return row
