"""Training labels: churn within a horizon after each snapshot, and answered NPS.

Churn: a spine row (customer open at snapshot S) is labelled 1 when the customer's
decision to leave falls in ``[S, S + horizon]``: the cancellation notice when the CRM
export has ``notice_date``, else ``churn_date`` (dates, both ends included: an account
that closes on the snapshot day is open at the snapshot and leaves within the
horizon). Censoring: churn is observed only for dates before ``as_of`` (the end
of the history), so a snapshot whose horizon is not entirely observed
(``S + horizon >= as_of``) gets no churn labels at all; keeping it would label
every late leaver 0. A customer already under notice at S is a save-desk case, not a
prediction: no label row (their features are still written, for scoring).

NPS: one row per kept survey response that carries an NPS answer (a CSAT-only
response has none), at its ``responded_at``. The point-in-time
join (feature rows at or before ``responded_at``) therefore never sees the answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import NS_PER_DAY, ns


def horizon_observed(snapshot: pd.Timestamp, horizon_days: int, as_of: pd.Timestamp) -> bool:
    """Whether every churn date in the snapshot's horizon lies before ``as_of``."""
    return snapshot + pd.Timedelta(days=horizon_days) < as_of


def churned_within(churn_date: pd.Series, snapshot: pd.Timestamp, horizon_days: int) -> np.ndarray:
    """1 where the churn date is in [snapshot, snapshot + horizon], else 0 (int64)."""
    never = np.iinfo(np.int64).max
    churn = np.where(churn_date.isna().to_numpy(), never,
                     ns(churn_date.fillna(pd.Timestamp(0, tz="UTC"))))
    t = snapshot.value
    return ((churn >= t) & (churn <= t + horizon_days * NS_PER_DAY)).astype(np.int64)


def nps_labels(responses: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """customer_id, event_timestamp (= responded_at), nps, invitation_id, touchpoint, survey_id."""
    nps = pd.to_numeric(responses["nps"], errors="coerce")
    kept = responses[(responses["responded_at"] < as_of) & nps.notna()].reset_index(drop=True)
    out = pd.DataFrame({
        "customer_id": kept["customer_id"].astype(str),
        "event_timestamp": kept["responded_at"],            # already datetime64[ns, UTC]
        "nps": kept["nps"].astype(np.int64),
        "invitation_id": kept["invitation_id"].astype(object),
        "touchpoint": kept["touchpoint"].astype(object),
        "survey_id": kept["survey_id"].astype(object),
    })
    return out.sort_values(["event_timestamp", "customer_id"], kind="stable",
                           ignore_index=True)


def decision_dates(churn_date: pd.Series, notice_date: pd.Series | None) -> pd.Series:
    """The day each leaver decided: their cancellation notice, else their churn date."""
    if notice_date is None:
        return churn_date
    notice = pd.to_datetime(notice_date, utc=True).dt.as_unit("ns").reset_index(drop=True)
    churn = pd.to_datetime(churn_date, utc=True).dt.as_unit("ns").reset_index(drop=True)
    return notice.where(notice.notna(), churn).set_axis(churn_date.index)


def under_notice(notice_date: pd.Series | None, snapshot: pd.Timestamp) -> np.ndarray:
    """Per customer, whether they gave notice before ``snapshot`` (False without notice dates)."""
    if notice_date is None:
        return np.zeros(0, bool)
    notice = pd.to_datetime(notice_date, utc=True)
    return (notice < snapshot).fillna(False).to_numpy(bool)
