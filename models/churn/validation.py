"""How a churn run is validated: out of time when the export's history allows it, else by
customer-grouped cross-validation.

Most company exports are one observation window (customers as of a date, and who left
after it): every churn falls after every training snapshot, so an out-of-time split
leaves a single class on one side. Then the churn model is validated by K folds of
customers (every snapshot of a customer in one fold), and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.split import out_of_time_split, snapshot_dates

OUT_OF_TIME, CUSTOMER_CV = "out_of_time", "customer_cv"


@dataclass(frozen=True)
class Validation:
    """The chosen scheme; ``reason`` says why when it is not out of time."""

    kind: str
    reason: str = ""
    train: pd.DataFrame | None = None     # out of time: the purged training period
    valid: pd.DataFrame | None = None     # out of time: the latest snapshots


def choose_validation(frame: pd.DataFrame, label: str, valid_share: float,
                      horizon_days: int) -> Validation:
    """Out of time when both sides hold churners and stayers, customer CV otherwise."""
    if frame[label].nunique() < 2:
        raise ValueError(f"every labelled snapshot has {label} = {frame[label].iloc[0]} (no churner "
                         "observed within the horizon): when churn is recorded after the last events, "
                         "build the features with `cem features --as-of <export date>`")
    dates = snapshot_dates(frame)
    if len(dates) < 2:
        return Validation(CUSTOMER_CV, f"one snapshot date ({dates[0].date()}): "
                                       "no later period to validate on")
    try:
        train, valid = out_of_time_split(frame, valid_share, horizon_days)
    except ValueError as err:
        return Validation(CUSTOMER_CV, f"no out-of-time split: {err}")
    for name, part in (("training", train), ("validation", valid)):
        classes = part[label].nunique()
        if classes < 2:
            return Validation(CUSTOMER_CV, f"the out-of-time {name} period "
                                           f"({len(part):,} rows) holds a single class: churn is "
                                           "observed in one window only")
    return Validation(OUT_OF_TIME, "", train, valid)


def customer_folds(frame: pd.DataFrame, folds: int, seed: int) -> list[pd.Series]:
    """Boolean masks of ``folds`` customer-grouped validation folds (every row in one fold)."""
    ids = frame["customer_id"].astype(str)
    customers = pd.Series(ids.unique())
    if len(customers) < folds:
        raise ValueError(f"{len(customers)} customers cannot fill {folds} cross-validation folds")
    order = customers.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    fold_of = pd.Series(order.index % folds, index=order.to_numpy())
    where = ids.map(fold_of)
    return [(where == k).to_numpy() for k in range(folds)]
