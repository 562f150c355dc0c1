"""Out-of-time splits with a purge gap for labels that look ``horizon_days`` ahead, and
splits of rows by customer.

A churn label at snapshot S says whether the customer left in [S, S + horizon]. A
random or plain time split would let training labels describe the same weeks as the
validation period (a March price rise seen through the December snapshot's label),
so validation scores would be optimistic. Validation therefore takes the latest
snapshots, and training keeps only snapshots whose whole label window ends before
the first validation snapshot; the snapshots in between are dropped (purged).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def snapshot_dates(frame: pd.DataFrame, time_col: str = "event_timestamp") -> pd.DatetimeIndex:
    """The distinct snapshot timestamps of a frame, oldest first."""
    if time_col not in frame.columns:
        raise KeyError(f"frame has no time column {time_col!r}")
    return pd.DatetimeIndex(pd.Series(frame[time_col]).drop_duplicates()).sort_values()


def purged_cutoff(first_valid: pd.Timestamp, horizon_days: int) -> pd.Timestamp:
    """Training snapshots must be strictly before this: their label window then ends in time."""
    return first_valid - pd.Timedelta(days=horizon_days)


def out_of_time_split(frame: pd.DataFrame, valid_share: float, horizon_days: int,
                      time_col: str = "event_timestamp") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid): the latest ``valid_share`` of snapshot dates validate, purged training.

    The number of validation snapshots is ``ceil(valid_share x snapshots)`` (at least
    one). A training snapshot S is kept only when ``S + horizon_days`` is strictly
    before the first validation snapshot. Raises ValueError when either side is empty.
    """
    if not 0 < valid_share < 1:
        raise ValueError(f"valid_share must be in (0, 1), got {valid_share}")
    dates = snapshot_dates(frame, time_col)
    if len(dates) < 2:
        raise ValueError(f"out-of-time split needs at least 2 snapshot dates, got {len(dates)}")
    n_valid = min(max(1, math.ceil(valid_share * len(dates))), len(dates) - 1)
    first_valid = dates[-n_valid]
    cutoff = purged_cutoff(first_valid, horizon_days)
    times = frame[time_col]
    train = frame[times < cutoff]
    valid = frame[times >= first_valid]
    if train.empty:
        raise ValueError(
            f"no training snapshot left: {len(dates)} snapshot dates, {n_valid} for validation "
            f"from {first_valid.date()}, and a {horizon_days}-day label horizon purges everything "
            f"from {cutoff.date()} on; use more snapshots, a smaller valid_share or horizon")
    return train, valid


def customer_parts(frame: pd.DataFrame, shares: tuple[float, ...], seed: int) -> list[pd.DataFrame]:
    """Rows split by customer into parts of the given customer shares, reproducibly for ``seed``.

    The last part takes the remainder, so every customer lands in exactly one part.
    """
    ids = frame["customer_id"].astype(str)
    customers = np.random.default_rng(seed).permutation(np.sort(ids.unique()))
    bounds = np.rint(np.cumsum(shares)[:-1] * len(customers)).astype(int)
    part_of = pd.Series(0, index=customers)
    for b in bounds:
        part_of.iloc[b:] += 1
    where = ids.map(part_of).to_numpy()
    parts = [frame[where == k] for k in range(len(shares))]
    if any(part.empty for part in parts):
        raise ValueError(f"too few customers ({len(customers)}) to split in shares {shares}")
    return parts
