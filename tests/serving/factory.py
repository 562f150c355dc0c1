"""Hand-made scoring runs for serving tests: small, deterministic, every column filled."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from features.services import CHURN_SERVICE
from serving.db.write import RunMeta, ScoringRun

META = RunMeta(
    model_versions={"churn": "3", "nps": "2", "uplift": "1"},
    feature_service=CHURN_SERVICE,
    data_version="md5:test",
    params={"budget": None},
)
TIERS = np.array(["low", "medium", "high"])
STAGES = np.array(["onboarding", "growing", "loyal", "at-risk", "lapsing"])
CLASSES = np.array(["detractor", "passive", "promoter"])
ACTIONS = [
    ("service_recovery_call", "Service recovery call", "phone", 40.0),
    ("discount_offer", "Discount offer", "email", 25.0),
    ("apology_credit", "Apology credit", "email", 10.0),
]


def customer_ids(n: int) -> list[str]:
    return [f"C{i:07d}" for i in range(1, n + 1)]


def customers_frame(n: int, reps: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = customer_ids(n)
    p = rng.uniform(0.01, 0.9, n).round(4)
    nps = rng.uniform(-1, 10, n).round(2)
    probs = rng.dirichlet([1, 1, 1], n).round(4)
    reasons = [
        json.dumps(
            [
                {
                    "concept": "support",
                    "label": "Support friction",
                    "impact": 0.8,
                    "sentence": f"{i % 4 + 1} tickets unresolved in the last 90 days",
                },
                {
                    "concept": "price",
                    "label": "Price",
                    "impact": 0.3,
                    "sentence": "price up 12 % in the last 90 days",
                },
            ]
        )
        for i in range(n)
    ]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "rep_id": [f"R{i % reps + 1:03d}" for i in range(n)],
            "churn_probability": p,
            "churn_risk_tier": TIERS[np.digitize(p, [0.2, 0.5])],
            "predicted_nps": nps,
            "nps_class": CLASSES[np.digitize(nps, [6.5, 8.5])],
            "p_detractor": probs[:, 0],
            "p_passive": probs[:, 1],
            "p_promoter": probs[:, 2],
            "last_nps": np.where(rng.uniform(size=n) < 0.3, rng.integers(0, 11, n), np.nan),
            "relationship_stage": STAGES[rng.integers(0, len(STAGES), n)],
            "value_at_risk": rng.uniform(100, 2000, n).round(2),
            "reasons": reasons,
            "recommended_action": None,
            "expected_value": np.nan,
            "latest_comment": None,
            "alert": None,
        }
    )


def actions_frame(customers: pd.DataFrame, share: float, seed: int, control_every: int = 5) -> pd.DataFrame:
    """Plan an action for the riskiest ``share`` of customers, ranked per rep; every k-th held out."""
    top = customers.nlargest(max(1, int(len(customers) * share)), "churn_probability").copy()
    top["rank"] = top.groupby("rep_id")["churn_probability"].rank(ascending=False, method="first").astype(int)
    pick = np.arange(len(top)) % len(ACTIONS)
    top["action_id"] = [ACTIONS[i][0] for i in pick]
    top["action_label"] = [ACTIONS[i][1] for i in pick]
    top["channel"] = [ACTIONS[i][2] for i in pick]
    top["cost"] = [ACTIONS[i][3] for i in pick]
    top["uplift"] = 0.05
    top["p_churn"] = top["churn_probability"]
    top["expected_value"] = (top["p_churn"] * top["uplift"] * top["value_at_risk"] - top["cost"]).round(2)
    top["why"] = "support friction: a recovery call addresses unresolved tickets"
    top["control_group"] = np.arange(len(top)) % control_every == control_every - 1
    return top[
        [
            "rep_id",
            "rank",
            "customer_id",
            "action_id",
            "action_label",
            "channel",
            "expected_value",
            "p_churn",
            "uplift",
            "cost",
            "why",
            "control_group",
        ]
    ].reset_index(drop=True)


def make_run(
    as_of: date,
    customers: int = 60,
    reps: int = 3,
    seed: int = 0,
    share: float = 0.5,
    comment: str | None = None,
    alert_customer: str | None = None,
) -> ScoringRun:
    """A run with customers, a plan (with hold-outs), tags, tag events and one scoring alert."""
    cust = customers_frame(customers, reps, seed)
    plan = actions_frame(cust, share, seed)
    cust = cust.merge(
        plan[["customer_id", "action_id", "expected_value"]],
        on="customer_id",
        how="left",
        suffixes=("", "_plan"),
    )
    cust["recommended_action"] = cust.pop("action_id")
    cust["expected_value"] = cust.pop("expected_value_plan")
    if comment is not None:
        cust.loc[0, "latest_comment"] = comment
    tags = cust[["customer_id", "relationship_stage", "churn_risk_tier", "nps_class"]].assign(
        p_churn=cust["churn_probability"],
        nps_score=cust["predicted_nps"],
        nps_source="predicted",
        usage_drop_ratio=0.9,
        tenure_days=400.0,
        streak=1,
    )
    events = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].iloc[:5],
            "tag": "churn_risk_tier",
            "old_value": "low",
            "new_value": cust["churn_risk_tier"].iloc[:5],
            "cause": "churn probability crossed the tier band",
        }
    )
    alert_customer = alert_customer or cust["customer_id"].iloc[-1]
    owner = cust.loc[cust["customer_id"] == alert_customer, "rep_id"].iloc[0]
    cust.loc[cust["customer_id"] == alert_customer, "alert"] = "usage fell 60 % last month"
    alerts = pd.DataFrame(
        {
            "customer_id": [alert_customer],
            "rep_id": [owner],
            "kind": ["usage_drop"],
            "reason": ["usage fell 60 % last month"],
        }
    )
    return ScoringRun(
        as_of=as_of, meta=META, customers=cust, actions=plan, tags=tags, tag_events=events, alerts=alerts
    )
