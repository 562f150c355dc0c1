"""Who was in each comparison slice at each scoring run, what they cost and whether they left.

The slices (``models.prescribe.slices``) are sticky random shares of customers, so every
customer open at a run's date belongs to one; comparing their realized churn measures what
each way of planning is worth against doing nothing. A run whose plan includes a customer of
the ``no_action`` slice did not apply the slices (an older plan): it is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.impact.outcomes import DELIVERED, _day, decision_dates
from models.prescribe.slices import impact_slices


def charges_at(invoices: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.Series:
    """Each customer's monthly charge: the list price of the latest invoice before ``as_of``
    (the ``monthly_charge`` feature's rule), by customer id."""
    if invoices is None or invoices.empty:
        return pd.Series(dtype=float)
    inv = invoices[_day(invoices["invoice_date"]).to_numpy() < np.datetime64(as_of)]
    return inv.groupby(inv["customer_id"].astype(str), sort=False)["list_price"].last()


def open_customers(customers: pd.DataFrame, decided: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Ids of the customers who could be planned on ``as_of``: signed up, not gone nor under notice."""
    ids = customers["customer_id"].astype(str)
    signup = (_day(customers["signup_date"]) if "signup_date" in customers
              else pd.Series(pd.NaT, index=ids.index))
    when = _day(pd.Series(ids.map(decided).to_numpy(), index=ids.index))
    ok = (signup.isna() | (signup < as_of)) & (when.isna() | (when >= as_of))
    return ids[ok.to_numpy()]


def slice_rows(outcomes: pd.DataFrame, customers: pd.DataFrame, invoices: pd.DataFrame | None,
               share: float, horizon_days: int, data_end: pd.Timestamp, value_per_charge: float
               ) -> pd.DataFrame:
    """One row per (run, open customer): cycle, slice, churned (NaN while pending), value at
    risk, the cost of the actions delivered to them under that run, and ``applied``.

    ``value_per_charge`` is margin_rate x value_months (``models.prescribe.value``).
    """
    decided = decision_dates(customers)
    every = customers["customer_id"].astype(str)
    slice_of = pd.Series(impact_slices(every.to_numpy(), share), index=every.to_numpy())  # sticky
    runs = outcomes[["run_id", "as_of", "cycle"]].drop_duplicates("run_id").sort_values("cycle")
    parts = []
    for run in runs.itertuples(index=False):
        ids = open_customers(customers, decided, run.as_of)
        mine = outcomes[outcomes["run_id"] == run.run_id]
        slices = slice_of.reindex(ids.to_numpy()).to_numpy()
        applied = share > 0 and not np.isin(ids.to_numpy()[slices == "no_action"],
                                            mine["customer_id"].to_numpy()).any()
        cost = mine[mine["status"] == DELIVERED].groupby("customer_id")["cost"].sum()
        when = _day(pd.Series(ids.map(decided).to_numpy()))
        end = run.as_of + pd.Timedelta(days=horizon_days)
        matured = end <= pd.Timestamp(data_end)
        churned = (when.notna() & (when >= run.as_of) & (when < end)).astype(float).to_numpy()
        charge = ids.map(charges_at(invoices, run.as_of)).astype(float).fillna(0.0).clip(lower=0)
        parts.append(pd.DataFrame({
            "run_id": run.run_id, "as_of": run.as_of, "cycle": run.cycle,
            "customer_id": ids.to_numpy(), "slice": slices,
            "churned": churned if matured else np.nan, "matured": matured, "applied": applied,
            "value_at_risk": value_per_charge * charge.to_numpy(),
            "cost": ids.map(cost).astype(float).fillna(0.0).to_numpy(),
        }))
    if not parts:
        return pd.DataFrame(columns=["run_id", "as_of", "cycle", "customer_id", "slice", "churned",
                                     "matured", "applied", "value_at_risk", "cost"])
    return pd.concat(parts, ignore_index=True)
