"""What an action is worth: value at risk, expected value, and the candidate list.

``EV = reduction x value_at_risk - cost`` with ``reduction = -uplift``, bounded by the churn
there is; a harmful action keeps its negative value. Design: docs/prescribe.md#expected-value
"""

from __future__ import annotations

import operator
from functools import lru_cache

import numpy as np
import pandas as pd

from configs.settings import PrescribeParams
from models.frame import categorical_dtype, numeric_column
from models.prescribe.actions import FEATURE_KINDS, Catalogue, Condition, Rule, eligibility, parse_rule

CANDIDATE_COLUMNS = ["customer_id", "rep_id", "action_id", "p_churn", "uplift", "value_at_risk",
                     "cost", "handling_minutes", "expected_value", "eligible"]
SMALL = 64      # up to this many customers, eligibility is evaluated on plain arrays (see small_eligibility)
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


def value_at_risk(features: pd.DataFrame, params: PrescribeParams) -> pd.Series:
    """Margin lost if the customer leaves: margin_rate x monthly_charge x value_months.

    An unknown monthly charge gives 0: no action is worth paying for on a value we do
    not know (the customer still gets tags and scores).
    """
    return pd.Series(value_at_risk_array(features, params), index=features.index, name="value_at_risk")


def value_at_risk_array(features: pd.DataFrame, params: PrescribeParams) -> np.ndarray:
    """``value_at_risk`` as a float64 array (unknown or negative charges count as 0)."""
    charge = numeric_column(features["monthly_charge"])
    charge = np.where(np.isnan(charge), 0.0, charge)
    charge = np.where(charge >= 0.0, charge, 0.0)
    return params.margin_rate * params.value_months * charge


def churn_reduction(p_churn, uplift) -> np.ndarray:
    """Absolute drop in churn probability, -uplift bounded to [-(1 - p), p]; NaN stays NaN."""
    p = np.clip(np.asarray(p_churn, dtype=np.float64), 0.0, 1.0)
    return np.clip(-np.asarray(uplift, dtype=np.float64), p - 1.0, p)


def expected_value(p_churn, uplift, value_at_risk, cost) -> np.ndarray:
    """EV of delivering an action (arrays broadcast): reduction x value - cost.

    Negative effects are kept, so an action that raises churn is worth less than nothing.
    """
    value = np.asarray(value_at_risk, dtype=np.float64)
    return churn_reduction(p_churn, uplift) * value - np.asarray(cost, dtype=np.float64)


def align_effects(customers: pd.DataFrame, effects: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """Uplift per customer (rows of ``customers``) and action (``ids``), shape (n, len(ids)).

    ``effects`` is matched by a ``customer_id`` column or index when it has one, otherwise
    by index with ``customers``; a customer without an estimate gets NaN (never planned).
    """
    missing = [a for a in ids if a not in effects.columns]
    if missing:
        raise ValueError(f"effects: no column for action {missing[0]!r} "
                         f"(the uplift models must estimate every catalogue action)")
    if "customer_id" in effects.columns:
        effects = effects.set_index("customer_id")
    if effects.index.name == "customer_id":
        if effects.index.has_duplicates:
            raise ValueError("effects: duplicate customer_id")
        return effects[ids].reindex(customers["customer_id"].to_numpy()).to_numpy(np.float64)
    if not effects.index.equals(customers.index):
        raise ValueError("effects: index does not match the customers frame and there is no "
                         "customer_id to match on")
    if list(effects.columns) == list(ids):          # already in catalogue order: no column copy
        return effects.to_numpy(np.float64, copy=True)
    return effects[ids].to_numpy(np.float64)


def candidate_actions(customers: pd.DataFrame, effects: pd.DataFrame, catalogue: Catalogue,
                      pessimistic: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every (customer, action) pair with its expected value and eligibility (long format).

    ``customers``: customer_id, rep_id, p_churn, value_at_risk and the features the
    eligibility rules read; ``effects``: one uplift column per action id. Rows are
    customer-major in catalogue order; ``action_id`` is categorical in catalogue order.
    ``pessimistic``: the effects at a high quantile of their posterior, when the model has
    one: ``expected_value_low`` is then the net value's lower bound, which must be positive
    for an action to be planned (the safe decision rule).
    """
    need = [c for c in ("customer_id", "rep_id", "p_churn", "value_at_risk") if c not in customers.columns]
    if need:
        raise ValueError(f"customers: missing column {need[0]!r}")
    if customers["customer_id"].duplicated().any():
        raise ValueError("customers: duplicate customer_id")
    ids, n, k = catalogue.ids, len(customers), len(catalogue)
    uplift = align_effects(customers, effects, ids)
    p = customers["p_churn"].to_numpy(np.float64)[:, None]
    value = customers["value_at_risk"].to_numpy(np.float64)[:, None]
    cost = catalogue.column("cost")[None, :]
    ev = expected_value(p, uplift, value, cost)
    eligible = (small_eligibility(catalogue, customers) if n <= SMALL
                else eligibility(catalogue, customers).to_numpy())
    # every column is a new array: no copy into consolidated blocks (5M pairs in a 1M-customer run)
    return pd.DataFrame({
        "customer_id": np.repeat(customers["customer_id"].to_numpy(), k),
        "rep_id": np.repeat(customers["rep_id"].to_numpy(), k),
        "action_id": pd.Categorical.from_codes(np.tile(np.arange(k), n), dtype=categorical_dtype(tuple(ids))),
        "p_churn": np.repeat(p[:, 0], k),
        "uplift": uplift.ravel(),
        "value_at_risk": np.repeat(value[:, 0], k),
        "cost": np.tile(cost[0], n),
        "handling_minutes": np.tile(catalogue.column("handling_minutes"), n),
        "expected_value": ev.ravel(),
        "eligible": eligible.ravel(),
        **({} if pessimistic is None else {"expected_value_low": expected_value(
            p, align_effects(customers, pessimistic, ids), value, cost).ravel()}),
    }, copy=False)


# --------------------------------------------------------------------------- small frames

@lru_cache(maxsize=512)
def _rule(text: str) -> Rule:
    """A catalogue rule parsed once (``Action.rules`` parses on every access)."""
    return parse_rule(text)


def catalogue_features(catalogue: Catalogue) -> set[str]:
    """Every column the catalogue's eligibility rules read (``Action.features``, parsed once)."""
    return {c.feature for action in catalogue for text in action.eligible_if for c in _rule(text).any_of}


def _condition_mask(cond: Condition, col: pd.Series) -> np.ndarray | None:
    """``Condition.mask`` on one column's numpy values, by the same steps (missing -> False,
    numbers coerced by ``pd.to_numeric``, text compared value by value as Python objects);
    None where only pandas gives the answer (``in`` lists, extension dtypes)."""
    if cond.op in ("in", "not in") or not isinstance(col.dtype, np.dtype):
        return None
    values = col.to_numpy()
    present = ~pd.isna(values)
    compare = _COMPARE[cond.op]
    if FEATURE_KINDS[cond.feature] != "string":
        return present & np.asarray(compare(pd.to_numeric(values, errors="coerce"), cond.value), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    out[present] = [bool(compare(v, cond.value)) for v in values.astype(object)[present]]
    return out


def small_eligibility(catalogue: Catalogue, features: pd.DataFrame) -> np.ndarray:
    """``eligibility(catalogue, features).to_numpy()`` for a few customers, without a pandas
    operation per condition (they cost more than the whole rest of a single-customer
    score). Same errors: a rule on a column the frame lacks is refused by ``eligibility``."""
    if not catalogue_features(catalogue) <= set(features.columns):
        return eligibility(catalogue, features).to_numpy()      # raises, naming the column
    columns: dict[str, pd.Series] = {}
    out = np.ones((len(features), len(catalogue)), dtype=bool)
    for j, action in enumerate(catalogue):
        for text in action.eligible_if:
            held = np.zeros(len(features), dtype=bool)
            for cond in _rule(text).any_of:
                if cond.feature not in columns:
                    columns[cond.feature] = features[cond.feature]
                mask = _condition_mask(cond, columns[cond.feature])
                held |= cond.mask(features) if mask is None else mask
            out[:, j] &= held
    return out
