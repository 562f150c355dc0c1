"""What a batch scoring run reads as of a date: the active customers, their point-in-time
features from Feast, their recent contacts and their latest survey comments."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.store import feature_store, training_frame

DAY = pd.Timedelta(days=1)


def _utc(day: date) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize("UTC")


def latest_snapshot(settings: Settings) -> date:
    """The newest feature snapshot: the default scoring date."""
    table = pd.read_parquet(settings.feature_dir / "customer_o.parquet", columns=["event_timestamp"])
    return table["event_timestamp"].max().date()


def active_customers(clean_dir: Path, as_of: date) -> pd.DataFrame:
    """customer_id, rep_id of the customers signed up and not gone on ``as_of``."""
    crm = pd.read_parquet(
        Path(clean_dir) / "crm_customers.parquet",
        columns=["customer_id", "rep_id", "signup_date", "churn_date"],
    )
    day = pd.Timestamp(as_of)
    open_ = (crm["signup_date"] <= day) & ~(crm["churn_date"] <= day)
    return crm.loc[open_, ["customer_id", "rep_id"]].reset_index(drop=True)


def feature_rows(settings: Settings, customers: pd.DataFrame, as_of: date, service: str) -> pd.DataFrame:
    """The customers' features as known at ``as_of`` (point in time, like training)."""
    entity = customers.assign(event_timestamp=_utc(as_of))
    frame = training_frame(feature_store(settings), entity, service)
    return frame.sort_values("customer_id", kind="stable", ignore_index=True)


def recent_contacts(clean_dir: Path, customers: pd.Series, as_of: date, days: int = 7) -> pd.Series:
    """Retention actions delivered and survey invitations sent in the ``days`` before ``as_of``."""
    start, end = _utc(as_of) - days * DAY, _utc(as_of)
    acts = pd.read_parquet(
        Path(clean_dir) / "interventions.parquet", columns=["customer_id", "assigned_at", "control_group"]
    )
    inv = pd.read_parquet(Path(clean_dir) / "survey_invitations.parquet", columns=["customer_id", "sent_at"])
    hits = pd.concat(
        [
            acts.loc[
                ~acts["control_group"].astype(bool) & acts["assigned_at"].between(start, end, "left"),
                "customer_id",
            ],
            inv.loc[inv["sent_at"].between(start, end, "left"), "customer_id"],
        ]
    )
    return customers.map(hits.value_counts()).fillna(0).astype(np.int64)


def latest_comments(clean_dir: Path, as_of: date) -> pd.Series:
    """Each customer's most recent survey comment before ``as_of`` (for the reps' page)."""
    resp = pd.read_parquet(
        Path(clean_dir) / "survey_responses.parquet", columns=["customer_id", "responded_at", "comment"]
    )
    resp = resp[resp["comment"].notna() & (resp["responded_at"] < _utc(as_of))]
    return (
        resp.sort_values("responded_at")
        .drop_duplicates("customer_id", keep="last")
        .set_index("customer_id")["comment"]
    )
