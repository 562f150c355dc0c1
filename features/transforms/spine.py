"""Snapshot dates and the spine: which customers get a feature row at which instant.

A snapshot is a UTC midnight at a month start. A customer is in the spine at a
snapshot when their account is open then: signed up before it and not churned
before it (``signup_date < snapshot`` and ``churn_date`` empty or ``>= snapshot``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import month_start, ns


def snapshot_dates(start, end, every_months: int, first_after_months: int) -> pd.DatetimeIndex:
    """Month starts from ``start + first_after_months`` to ``end`` inclusive, every n months.

    ``start`` is floored to its month start; the first months are skipped so that
    the earliest snapshot already has ``first_after_months`` of history behind it.
    """
    if every_months < 1 or first_after_months < 0:
        raise ValueError("every_months must be >= 1 and first_after_months >= 0")
    first = month_start(start) + pd.DateOffset(months=first_after_months)
    end = pd.Timestamp(end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    dates = pd.date_range(first, end, freq=pd.DateOffset(months=every_months), tz="UTC")
    return pd.DatetimeIndex(dates[dates <= end]).as_unit("ns")


def open_mask(customers: pd.DataFrame, snapshot: pd.Timestamp) -> np.ndarray:
    """Per customer code, whether the account is open at ``snapshot``."""
    t = snapshot.value
    signup = ns(customers["signup_date"])
    churn = customers["churn_date"]
    churn_ns = np.where(churn.isna().to_numpy(), np.iinfo(np.int64).max, ns(churn))
    return (signup < t) & (churn_ns >= t)


def build_spine(customers: pd.DataFrame, snapshots: pd.DatetimeIndex) -> pd.DataFrame:
    """(customer_id, event_timestamp) for every open account at every snapshot."""
    parts = []
    for snap in snapshots:          # one vectorised pass per snapshot (tens, not rows)
        ids = customers["customer_id"].to_numpy()[open_mask(customers, snap)]
        parts.append(pd.DataFrame({"customer_id": ids, "event_timestamp": snap}))
    if not parts:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object),
                             "event_timestamp": pd.Series(dtype="datetime64[ns, UTC]")})
    return pd.concat(parts, ignore_index=True)
