"""The one scoring function: batch job and service both call ``score_customers``.

Given one row of ``churn_v1`` features per customer and the champion models, it returns
every customer's churn probability, predicted NPS (as a customer who does not answer),
tags, value at risk, reasons and best action, plus the long list of candidate actions
with their expected value that arbitration turns into a plan. Reasons (TreeSHAP) are the
expensive part, so a batch run asks for them only where a rep will read them
(``explain``): tags for everyone, reasons for the customers who get an action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from configs.settings import Settings
from models.explain import reason_codes
from models.prescribe import candidate_actions, value_at_risk
from models.prescribe.tags import assign_tags
from serving.bundle import ModelBundle

SCORE_COLUMNS = ["customer_id", "rep_id", "churn_probability", "churn_risk_tier", "predicted_nps",
                 "nps_class", "p_detractor", "p_passive", "p_promoter", "last_nps",
                 "relationship_stage", "value_at_risk", "reasons", "recommended_action",
                 "expected_value"]
REASONS_SHOWN = 3


@dataclass
class ScoreResult:
    customers: pd.DataFrame     # SCORE_COLUMNS, one row per input customer, input order
    candidates: pd.DataFrame    # (customer, action) pairs: models.prescribe.value.CANDIDATE_COLUMNS
    tags: pd.DataFrame          # models.prescribe.tags.TAG_COLUMNS (hysteresis state)
    tag_events: pd.DataFrame


def check_features(features: pd.DataFrame, bundle: ModelBundle) -> None:
    """A clear error naming the first missing column, before any model sees the frame."""
    missing = [c for c in ["customer_id", *bundle.features] if c not in features.columns]
    if missing:
        raise ValueError(f"feature rows lack column {missing[0]!r} "
                         f"({len(missing)} missing; FeatureService {bundle.feature_service})")
    if features["customer_id"].duplicated().any():
        dup = features.loc[features["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise ValueError(f"customer_id {dup!r} appears more than once")


def reasons_json(bundle: ModelBundle, features: pd.DataFrame) -> list[str]:
    """Each row's top churn-risk reasons in plain words, as the JSON the database stores."""
    if features.empty:
        return []
    contrib = bundle.churn.contributions(features)
    rows = reason_codes(contrib, list(bundle.churn.spec.features), features, top=REASONS_SHOWN)
    return [json.dumps([{"concept": r.concept, "label": r.label, "sentence": r.sentence,
                         "impact": round(float(r.impact), 4)} for r in reasons]) for reasons in rows]


def best_actions(candidates: pd.DataFrame, min_value: float) -> pd.DataFrame:
    """Per customer the eligible action of highest expected value above ``min_value``
    (before contact policy and capacity: arbitration decides what is planned)."""
    ok = candidates[candidates["eligible"] & (candidates["expected_value"] > max(min_value, 0.0))]
    top = ok.sort_values(["customer_id", "expected_value"], ascending=[True, False], kind="stable")
    top = top.drop_duplicates("customer_id")
    return top.set_index("customer_id")[["action_id", "expected_value"]]


def score_customers(features: pd.DataFrame, bundle: ModelBundle, settings: Settings, as_of: date,
                    *, explain: bool | np.ndarray = True, previous_tags: pd.DataFrame | None = None,
                    run_id: str = "adhoc") -> ScoreResult:
    """Score customers as of ``as_of`` (one row each: customer_id, optional rep_id, features).

    ``explain``: reasons for every row (True), none (False) or a boolean mask of rows.
    ``previous_tags``: the last run's tags, for hysteresis (None: plain thresholds).
    """
    check_features(features, bundle)
    frame = features.reset_index(drop=True)
    n = len(frame)
    p_churn = bundle.churn.predict(frame)
    nps = bundle.nps.predict(frame).reset_index(drop=True)
    rep = frame["rep_id"] if "rep_id" in frame else pd.Series([None] * n, dtype=object)
    customers = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(), "rep_id": rep.to_numpy(),
        "churn_probability": p_churn, "predicted_nps": nps["nps_pred"].to_numpy(),
        "p_detractor": nps["p_detractor"].to_numpy(), "p_passive": nps["p_passive"].to_numpy(),
        "p_promoter": nps["p_promoter"].to_numpy(),
        "last_nps": pd.to_numeric(frame["last_nps"], errors="coerce").to_numpy(np.float64),
        "value_at_risk": value_at_risk(frame, settings.prescribe).to_numpy(),
    })
    effects = bundle.uplift.effects(frame)
    basis = frame.assign(rep_id=rep.to_numpy(), p_churn=p_churn,
                         value_at_risk=customers["value_at_risk"].to_numpy())
    candidates = candidate_actions(basis, effects, bundle.catalogue)
    best = best_actions(candidates, settings.prescribe.min_expected_value)
    customers["recommended_action"] = customers["customer_id"].map(best["action_id"]).astype(object)
    customers["expected_value"] = customers["customer_id"].map(best["expected_value"])
    tag_input = pd.DataFrame({
        "customer_id": customers["customer_id"], "p_churn": p_churn, "nps_pred": customers["predicted_nps"],
        "last_nps": customers["last_nps"], "tenure_days": frame["tenure_days"],
        "usage_drop_ratio": frame["usage_drop_ratio"],
        "days_since_last_survey_answer": frame["days_since_last_survey_answer"]})
    tags, events = assign_tags(tag_input, previous_tags, settings.tags, as_of, run_id)
    for col in ("relationship_stage", "churn_risk_tier", "nps_class"):
        customers[col] = tags[col].to_numpy()
    mask = np.full(n, bool(explain)) if np.ndim(explain) == 0 else np.asarray(explain, bool)
    customers["reasons"] = None
    if mask.any():
        customers.loc[mask, "reasons"] = reasons_json(bundle, frame[mask])
    return ScoreResult(customers=customers[SCORE_COLUMNS], candidates=candidates, tags=tags,
                       tag_events=events)
