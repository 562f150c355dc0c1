"""The arbitration's output: the ``Plan``, its planned and skipped frames (one reason per
skipped customer, from ``SKIP_REASONS``) and the plan's summary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.prescribe.actions import Catalogue
from models.prescribe.encoding import Encoded
from models.prescribe.pricing import Prices, Problem, value_bound

SKIP_REASONS = ("not_eligible", "no_positive_value", "contact_policy_recent_action",
                "contact_policy_recent_survey", "weekly_cap", "action_limit", "rep_capacity", "budget")
PLAN_COLUMNS = ["customer_id", "rep_id", "rank_in_rep", "action_id", "action_label", "channel",
                "expected_value", "cost", "handling_minutes", "p_churn", "uplift", "value_at_risk",
                "priority"]
SKIP_COLUMNS = ["customer_id", "rep_id", "reason", "action_id", "expected_value"]


@dataclass
class Plan:
    """Chosen actions (one row per planned customer) and every other customer with a reason."""

    actions: pd.DataFrame
    skipped: pd.DataFrame
    summary: dict = field(default_factory=dict)
    rep_minutes_per_day: float = 240.0


def plan_frame(candidates: pd.DataFrame, catalogue: Catalogue, enc: Encoded, chosen_c: np.ndarray,
               chosen_a: np.ndarray, net: np.ndarray) -> pd.DataFrame:
    """Chosen rows with labels and channel, by rep, each rep's list ranked by expected value
    (ties by customer order); numeric keys only, so a million rows sort in a blink."""
    rows = enc.row[chosen_c, chosen_a]
    ev = candidates["expected_value"].to_numpy(np.float64)[rows]
    rep = enc.rep[chosen_c]                       # rep codes follow sorted rep ids; no rep last
    order = np.lexsort((chosen_c, -ev, rep))
    rows, rep, a = rows[order], rep[order], chosen_a[order]
    start = np.r_[True, rep[1:] != rep[:-1]] if len(rep) else np.zeros(0, dtype=bool)
    first = np.maximum.accumulate(np.where(start, np.arange(len(rep)), 0))
    out = pd.DataFrame({"customer_id": candidates["customer_id"].to_numpy()[rows],
                        "rep_id": candidates["rep_id"].to_numpy()[rows],
                        "rank_in_rep": np.arange(len(rep)) - first + 1,
                        "action_id": np.asarray(catalogue.ids, dtype=object)[a],
                        "action_label": np.asarray([x.label for x in catalogue], dtype=object)[a],
                        "channel": np.asarray([x.channel for x in catalogue], dtype=object)[a]})
    for c in ("expected_value", "cost", "handling_minutes", "p_churn", "uplift", "value_at_risk"):
        out[c] = candidates[c].to_numpy(np.float64)[rows] if c in candidates.columns else np.nan
    out["priority"] = net[chosen_c, chosen_a][order]
    if "expected_value_low" in candidates.columns:   # the safe rule's bound, for the "why"
        out["expected_value_low"] = candidates["expected_value_low"].to_numpy(np.float64)[rows]
        return out[[*PLAN_COLUMNS, "expected_value_low"]]
    return out[PLAN_COLUMNS]


def skipped_frame(candidates, enc: Encoded, ids: list[str], ev, elig, idx: np.ndarray,
                  reason: np.ndarray) -> pd.DataFrame:
    """Unplanned customers with their reason and their best eligible action (if any)."""
    score = np.where(elig[idx], np.nan_to_num(ev[idx], nan=-np.inf), -np.inf)
    best = score.argmax(axis=1) if len(idx) else np.zeros(0, dtype=np.int64)
    has = elig[idx].any(axis=1)
    any_row = enc.row[idx].max(axis=1)          # some candidate row of the customer, for its rep
    return pd.DataFrame({
        "customer_id": enc.customers[idx],
        "rep_id": candidates["rep_id"].to_numpy()[any_row],
        "reason": pd.Categorical.from_codes(reason[idx], categories=list(SKIP_REASONS)),
        "action_id": np.where(has, np.asarray(ids, dtype=object)[best], None),
        "expected_value": np.where(has, ev[idx, best], np.nan),
    }, columns=SKIP_COLUMNS)


def plan_summary(actions: pd.DataFrame, skipped: pd.DataFrame, problem: Problem, prices: Prices, n: int,
                 ids: list[str]) -> dict:
    """Counts by reason, totals, the binding prices and the value bound."""
    counts = skipped["reason"].value_counts()
    return {
        "customers": n,
        "planned": len(actions),
        "skipped": {r: int(counts.get(r, 0)) for r in SKIP_REASONS},
        "expected_value": float(actions["expected_value"].sum()),
        "cost": float(actions["cost"].sum()),
        "handling_minutes": float(actions["handling_minutes"].sum()),
        "budget": None if not np.isfinite(problem.budget) else problem.budget,
        "budget_price": prices.budget,
        "reps_at_capacity_price": int((prices.rep > 0).sum()),
        "action_prices": {a: float(p) for a, p in zip(ids, prices.action, strict=True) if p > 0},
        "value_bound": value_bound(problem, prices),
    }
