"""The rules a team would plan by instead of the model: risk-ranked and random.

Rules only (no hidden effects): the product plans its comparison slices with them
(docs/prescribe.md#impact-slices) and the policy evaluation values them with the world's
hidden effects (``models.prescribe.evaluate``). Each returns candidates in which only one
action per customer is eligible, valued at the rule's priority, for ``arbitrate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _single_action(candidates: pd.DataFrame, choice: pd.Series, priority: np.ndarray) -> pd.DataFrame:
    """Candidates where only each customer's ``choice`` is eligible, valued at ``priority``."""
    out = candidates.copy()
    chosen = out["customer_id"].map(choice).astype(object) == out["action_id"].astype(str)
    out["eligible"] = out["eligible"].to_numpy() & chosen.to_numpy()
    out["expected_value"] = priority
    return out


def risk_ranked_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    """Priority P(churn) x value at risk; action = the eligible one with the best mean
    estimated effect over all customers (no per-customer uplift)."""
    mean_effect = candidates.groupby("action_id", observed=True)["uplift"].mean()
    order = {a: r for r, a in enumerate(mean_effect.sort_values().index.astype(str))}
    ok = candidates[candidates["eligible"]].assign(
        order=lambda f: f["action_id"].astype(str).map(order))
    choice = ok.sort_values(["customer_id", "order"]).drop_duplicates("customer_id") \
        .set_index("customer_id")["action_id"].astype(str)
    priority = (candidates["p_churn"] * candidates["value_at_risk"]).to_numpy() + 1e-9
    return _single_action(candidates, choice, priority)


def random_candidates(candidates: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Random priority, one random eligible action per customer."""
    rng = np.random.default_rng(seed)
    ok = candidates[candidates["eligible"]].assign(r=lambda f: rng.random(len(f)))
    choice = ok.sort_values(["customer_id", "r"]).drop_duplicates("customer_id") \
        .set_index("customer_id")["action_id"].astype(str)
    per_customer = pd.Series(rng.random(candidates["customer_id"].nunique()) + 1e-9,
                             index=candidates["customer_id"].unique())
    return _single_action(candidates, choice, candidates["customer_id"].map(per_customer).to_numpy())
