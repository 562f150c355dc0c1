"""The alerts a scoring run raises, as rows for the serving database: detractor answers and
usage drops of the last cycle, customers under notice (the save desk), and, when no action
has a measured value, each rep's customers of highest expected loss for review. The
reasons' wording lives in :mod:`serving.alerts`, shared with the event endpoint."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from configs.settings import Settings
from models.nps.scale import CSAT, NPS
from serving.alerts import NOT_MEASURED, low_answer_reason, risk_review_reason, save_desk_reason


def scoring_alerts(
    features: pd.DataFrame, customers: pd.DataFrame, settings: Settings, as_of: date
) -> pd.DataFrame:
    """Answers of the last cycle in their scale's lowest class (NPS detractors; CSAT 1-2 when
    the answer carries no NPS) and sharp usage drops, for the owning rep."""
    cycle = settings.prescribe.cycle_days
    nps = features.get("last_nps", pd.Series(np.nan, index=features.index))
    csat = features.get("last_csat", pd.Series(np.nan, index=features.index))
    on_csat = nps.isna() & csat.lt(CSAT.cuts[0])
    recent = features["days_since_last_survey_answer"].le(cycle) & (nps.lt(NPS.cuts[0]) | on_csat)
    drop = features["usage_vs_usual"].le(settings.prescribe.alert_usage_ratio)
    rows = []
    for mask, kind in ((recent, "detractor"), (drop & ~recent, "usage_drop")):
        sel = features[mask.to_numpy()]
        if kind == "detractor":
            reasons = [low_answer_reason(int(n), NPS) if np.isfinite(n) else
                       low_answer_reason(int(c), CSAT)
                       for n, c in zip(nps[mask].to_numpy(float), csat[mask].to_numpy(float),
                                       strict=True)]
        else:
            reasons = [
                f"Usage drop: last month {100 * (1 - v):.0f} % below the usual level for the season"
                for v in sel["usage_vs_usual"]
            ]
        rows.append(alert_rows(sel, kind, reasons, as_of))
    return pd.concat(rows, ignore_index=True)


def alert_rows(customers: pd.DataFrame, kind: str, reasons: list[str], as_of: date) -> pd.DataFrame:
    """Scoring alerts of one kind for ``customers`` (customer_id, rep_id), raised on ``as_of``."""
    return pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy(), "rep_id": customers["rep_id"].to_numpy(),
        "kind": kind, "reason": reasons,
        "raised_at": datetime.combine(as_of, datetime.min.time()), "source": "scoring"})


def risk_review_alerts(customers: pd.DataFrame, per_rep: int, as_of: date,
                       why: str = NOT_MEASURED) -> pd.DataFrame:
    """Without an uplift model: each rep's ``per_rep`` customers of highest expected loss
    (churn probability x value at risk), listed for review with no action claim."""
    value = customers["value_at_risk"]
    known = value.gt(0).any()   # without billing data every value is 0: unknown, rank by risk
    loss = customers["churn_probability"] * (value.fillna(0.0) if known else 1.0)
    customers = customers if known else customers.assign(value_at_risk=np.nan)
    ranked = customers.assign(_loss=loss).sort_values("_loss", ascending=False, kind="stable")
    top = ranked.groupby(ranked["rep_id"].fillna(""), sort=False).head(per_rep)
    return alert_rows(top, "high_risk", [risk_review_reason(p, v, why) for p, v in
                                         zip(top["churn_probability"], top["value_at_risk"], strict=True)],
                      as_of)


def save_desk_alerts(customers: pd.DataFrame, notices: pd.Series, as_of: date) -> pd.DataFrame:
    """One alert per scored customer under notice, for the owning rep's save desk."""
    rows = customers[customers["customer_id"].isin(notices.index)]
    return alert_rows(rows, "save_desk",
                      [save_desk_reason(notices[c].date(), as_of) for c in rows["customer_id"]], as_of)
