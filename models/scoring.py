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
from models.bundle import ModelBundle
from models.explain import reason_codes
from models.frame import FrameSpec, numeric_column
from models.nps.boosters import DEFAULT_TOUCHPOINT
from models.nps.scale import bundle_scale
from models.prescribe import candidate_actions
from models.prescribe.tags import assign_tags
from models.prescribe.value import catalogue_features, value_at_risk_array

SCORE_COLUMNS = [
    "customer_id",
    "rep_id",
    "churn_probability",
    "churn_risk_tier",
    "predicted_nps",
    "nps_class",
    "p_detractor",
    "p_passive",
    "p_promoter",
    "last_nps",
    "relationship_stage",
    "value_at_risk",
    "reasons",
    "recommended_action",
    "expected_value",
]
REASONS_SHOWN = 3


@dataclass
class ScoreResult:
    customers: pd.DataFrame  # SCORE_COLUMNS, one row per input customer, input order
    candidates: pd.DataFrame  # (customer, action) pairs: models.prescribe.value.CANDIDATE_COLUMNS
    tags: pd.DataFrame  # models.prescribe.tags.TAG_COLUMNS (hysteresis state)
    tag_events: pd.DataFrame


def check_features(features: pd.DataFrame, bundle: ModelBundle) -> None:
    """A clear error naming the first missing column, before any model sees the frame."""
    missing = [c for c in ["customer_id", *bundle.features] if c not in features.columns]
    if missing:
        raise ValueError(
            f"feature rows lack column {missing[0]!r} "
            f"({len(missing)} missing; FeatureService {bundle.feature_service})"
        )
    if features["customer_id"].duplicated().any():
        dup = features.loc[features["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise ValueError(f"customer_id {dup!r} appears more than once")


def model_inputs(frame: pd.DataFrame, bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray | None]:
    """The churn and NPS models' input arrays from one pass over the frame.

    Their columns overlap almost entirely, so the union is encoded once and each model's
    columns are cut out of it (a model whose string column is encoded differently gets
    its own pass). The uplift model encodes its own input (``models.uplift.model``).
    """
    churn, nps = bundle.churn, bundle.nps
    if nps is None:
        return churn.encode(frame), None
    joint = FrameSpec.joint([churn.spec, nps.spec])
    x = joint.array(frame, fill={"touchpoint": DEFAULT_TOUCHPOINT})
    x_churn, x_nps = joint.take(x, churn.spec), joint.take(x, nps.spec)
    return (
        churn.encode(frame) if x_churn is None else x_churn,
        nps.encode(frame) if x_nps is None else x_nps,
    )


def uplift_effects(frame: pd.DataFrame, bundle: ModelBundle,
                   quantile: float) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Each action's effect per customer and, when the model has a posterior, the effect at
    ``quantile`` (the safe rule's bound). An action the log does not show to pay (the
    uplift model's evidence gate) counts as having no measured effect, like every action
    without an uplift model: it is never planned on an estimate alone."""
    if bundle.uplift is None:
        return no_effects(frame, bundle), None
    if hasattr(bundle.uplift, "effects_with_bound"):
        effects, bound = bundle.uplift.effects_with_bound(frame, quantile)
    else:
        effects, bound = bundle.uplift.effects(frame), None
    unshown = [a for a in effects.columns if a not in shown_actions(bundle)]
    if unshown:
        effects = effects.assign(**dict.fromkeys(unshown, 0.0))
        bound = None if bound is None else bound.assign(**dict.fromkeys(unshown, 0.0))
    return effects, bound


def shown_actions(bundle: ModelBundle) -> list[str]:
    """The actions with measured value: those the uplift model's evidence shows to pay."""
    uplift = bundle.uplift
    if uplift is None:
        return []
    return uplift.shown_actions() if hasattr(uplift, "shown_actions") else list(uplift.actions)


def no_effects(frame: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    """Without an uplift model no action has a measured effect: every effect is zero, so
    no action's expected value covers its cost and nothing is planned on a guess."""
    return pd.DataFrame(0.0, index=frame.index, columns=bundle.catalogue.ids)


def reasons_json(bundle: ModelBundle, features: pd.DataFrame, x: np.ndarray | None = None) -> list[str]:
    """Each row's top churn-risk reasons in plain words, as the JSON the database stores.

    ``x``: the rows' churn input array when the caller has it (``model_inputs``).
    """
    if features.empty:
        return []
    churn = bundle.churn
    contrib = churn.contributions(features) if x is None else churn.contributions_x(x)
    rows = reason_codes(contrib, list(churn.spec.features), features, top=REASONS_SHOWN,
                        attributes=churn.spec.attributes)
    return [
        json.dumps(
            [
                {
                    "concept": r.concept,
                    "label": r.label,
                    "sentence": r.sentence,
                    "impact": round(float(r.impact), 4),
                }
                for r in reasons
            ]
        )
        for reasons in rows
    ]


def best_actions(candidates: pd.DataFrame, min_value: float) -> pd.DataFrame:
    """Per customer the eligible action of highest expected value above ``min_value``
    (before contact policy and capacity: arbitration decides what is planned)."""
    ok = candidates[candidates["eligible"] & (candidates["expected_value"] > max(min_value, 0.0))]
    top = ok.sort_values(["customer_id", "expected_value"], ascending=[True, False], kind="stable")
    top = top.drop_duplicates("customer_id")
    return top.set_index("customer_id")[["action_id", "expected_value"]]


def best_of(
    value: np.ndarray, eligible: np.ndarray, ids: list[str], min_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """``best_actions`` on the (customers x actions) arrays of a customer-major candidate list:
    per row the action id (object, NaN if none) and its expected value (NaN if none).

    The first action in catalogue order wins a tie, as the stable sort there keeps it.
    """
    ok = eligible & (value > max(min_value, 0.0))
    has = ok.any(axis=1)
    if not value.shape[1]:
        return np.full(len(value), np.nan, dtype=object), np.full(len(value), np.nan)
    pick = np.argmax(np.where(ok, value, -np.inf), axis=1)
    names = np.asarray([*ids, np.nan], dtype=object)
    return names[np.where(has, pick, -1)], np.where(has, value[np.arange(len(value)), pick], np.nan)


def candidate_basis(
    frame: pd.DataFrame, bundle: ModelBundle, rep: np.ndarray, p_churn: np.ndarray, value: np.ndarray
) -> pd.DataFrame:
    """What ``candidate_actions`` reads: ids, scores and the columns the catalogue's rules test
    (not a copy of every feature: a million-row batch would copy them all)."""
    rules = sorted(c for c in catalogue_features(bundle.catalogue) if c in frame.columns)
    data = {c: frame[c] for c in ["customer_id", *rules]}
    scores = {"rep_id": rep, "p_churn": p_churn, "value_at_risk": value}
    return pd.DataFrame({**data, **scores}, index=frame.index, copy=False)  # read only, then dropped


def score_customers(
    features: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    as_of: date,
    *,
    explain: bool | np.ndarray = True,
    previous_tags: pd.DataFrame | None = None,
    run_id: str = "adhoc",
) -> ScoreResult:
    """Score customers as of ``as_of`` (one row each: customer_id, optional rep_id, features).

    ``explain``: reasons for every row (True), none (False) or a boolean mask of rows.
    ``previous_tags``: the last run's tags, for hysteresis (None: plain thresholds).
    """
    check_features(features, bundle)
    frame = features.reset_index(drop=True)
    n = len(frame)
    x_churn, x_nps = model_inputs(frame, bundle)
    p_churn = bundle.churn.predict_x(x_churn)
    nps = np.full((n, 4), np.nan) if bundle.nps is None else bundle.nps.predict_x(x_nps)
    ids = frame["customer_id"].to_numpy()
    rep = frame["rep_id"].to_numpy() if "rep_id" in frame else np.full(n, None, dtype=object)
    last_nps = numeric_column(frame["last_nps"])
    var = value_at_risk_array(frame, settings.prescribe)
    effects, pessimistic = uplift_effects(frame, bundle, settings.prescribe.value_quantile)
    basis = candidate_basis(frame, bundle, rep, p_churn, var)
    candidates = candidate_actions(basis, effects, bundle.catalogue, pessimistic)
    k = len(bundle.catalogue)
    plannable = candidates["eligible"].to_numpy()
    if "expected_value_low" in candidates:
        plannable = plannable & (candidates["expected_value_low"].to_numpy() > 0)
    action, value = best_of(
        candidates["expected_value"].to_numpy().reshape(n, k),
        plannable.reshape(n, k),
        bundle.catalogue.ids,
        settings.prescribe.min_expected_value,
    )
    tag_input = pd.DataFrame(
        {
            "customer_id": ids,
            "p_churn": p_churn,
            "nps_pred": nps[:, 0],
            "last_nps": last_nps,
            "last_csat": numeric_column(frame["last_csat"]) if "last_csat" in frame else np.full(n, np.nan),
            "tenure_days": frame["tenure_days"],
            "usage_drop_ratio": frame["usage_drop_ratio"],
            "days_since_last_survey_answer": frame["days_since_last_survey_answer"],
        },
        copy=False,  # read only by assign_tags
    )
    tags, events = assign_tags(tag_input, previous_tags, settings.tags, as_of, run_id,
                               scale=bundle_scale(bundle))
    mask = np.full(n, bool(explain)) if np.ndim(explain) == 0 else np.asarray(explain, bool)
    reasons = np.full(n, None, dtype=object)
    if mask.any():
        rows = np.flatnonzero(mask)
        sub = frame if len(rows) == n else frame.iloc[rows]
        reasons[rows] = reasons_json(bundle, sub, x_churn if len(rows) == n else x_churn[rows])
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "rep_id": rep,
            "churn_probability": p_churn,
            "churn_risk_tier": tags["churn_risk_tier"].to_numpy(),
            "predicted_nps": nps[:, 0],
            "nps_class": tags["nps_class"].to_numpy(),
            "p_detractor": nps[:, 1],
            "p_passive": nps[:, 2],
            "p_promoter": nps[:, 3],
            "last_nps": last_nps,
            "relationship_stage": tags["relationship_stage"].to_numpy(),
            "value_at_risk": var,
            "reasons": reasons,
            "recommended_action": action,
            "expected_value": value,
        }
    )  # keys in SCORE_COLUMNS order
    return ScoreResult(customers=customers, candidates=candidates, tags=tags, tag_events=events)
