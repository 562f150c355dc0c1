"""The rules a team would plan by instead of the model: risk-ranked and random.

Rules only (no hidden effects): the product plans its comparison slices with them
(docs/prescribe.md#impact-slices) and the policy evaluation values them with the world's
hidden effects (``models.prescribe.evaluate``). Each returns candidates in which only one
action per customer is eligible, valued at the rule's priority, for ``arbitrate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.prescribe.keyed import Keys, with_columns


def _single_action(candidates: pd.DataFrame, keys: Keys, rank: np.ndarray,
                   priority: np.ndarray) -> pd.DataFrame:
    """Candidates where only each customer's eligible row of lowest ``rank`` stays eligible,
    valued at ``priority``. Customers are found by position (``Keys``), not by sorting ids."""
    eligible = candidates["eligible"].to_numpy(bool)
    best = np.full(len(keys.customers), np.inf)
    np.minimum.at(best, keys.row[eligible], rank[eligible])
    return with_columns(candidates, eligible=eligible & (rank == best[keys.row]), expected_value=priority)


def risk_ranked_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    """Priority P(churn) x value at risk; action = the eligible one with the best mean
    estimated effect over all customers (no per-customer uplift)."""
    keys = Keys.of(candidates)
    mean_effect = pd.Series(candidates["uplift"].to_numpy(np.float64)).groupby(keys.col).mean()
    order = np.full(len(keys.actions), np.inf)
    order[mean_effect.sort_values().index.to_numpy()] = np.arange(len(mean_effect))
    priority = (candidates["p_churn"] * candidates["value_at_risk"]).to_numpy() + 1e-9
    return _single_action(candidates, keys, order[keys.col], priority)


def random_candidates(candidates: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Random priority, one random eligible action per customer."""
    rng = np.random.default_rng(seed)
    keys = Keys.of(candidates)
    eligible = candidates["eligible"].to_numpy(bool)
    draw = np.full(len(candidates), np.inf)
    draw[eligible] = rng.random(int(eligible.sum()))       # the eligible rows' draws, in row order
    per_customer = rng.random(len(keys.customers)) + 1e-9  # customers in first-seen order
    return _single_action(candidates, keys, draw, per_customer[keys.row])
