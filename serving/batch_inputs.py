"""What a batch scoring run reads as of a date: the active customers, their point-in-time
features from Feast, their recent contacts, notices and contact consent (latest comments
and contact channels: ``serving.contact``)."""

from __future__ import annotations

import functools
import operator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from configs.settings import Settings
from features.store import feature_store, training_frame
from models.prescribe.consent import CONSENT_COLUMNS

DAY = pd.Timedelta(days=1)


def _utc(day: date) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize("UTC")


def latest_snapshot(settings: Settings) -> date:
    """The newest feature snapshot: the default scoring date."""
    table = pd.read_parquet(settings.feature_dir / "customer_o.parquet", columns=["event_timestamp"])
    return table["event_timestamp"].max().date()


UNASSIGNED = "unassigned"   # the list of customers the export assigns to no rep
ACTIVE_COLUMNS = ["customer_id", "rep_id", "signup_date", "churn_date", "status", "observed_until"]


def active_customers(clean_dir: Path, as_of: date) -> pd.DataFrame:
    """customer_id, rep_id of the customers signed up and not gone on ``as_of``."""
    path = Path(clean_dir) / "crm_customers.parquet"
    crm = pd.read_parquet(path, columns=[c for c in ACTIVE_COLUMNS if c in pq.read_schema(path).names])
    return open_customers(crm, as_of)


def open_customers(crm: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """``active_customers`` of these crm rows (``ACTIVE_COLUMNS`` the export has)."""
    day = pd.Timestamp(as_of)
    gone = crm["churn_date"]
    if "observed_until" in crm and "status" in crm:   # a churner without a date left in the window
        undated = crm["status"].eq("churned") & gone.isna()
        gone = gone.where(~undated, crm["observed_until"] - pd.Timedelta(days=1))
    open_ = ~(crm["signup_date"] > day) & ~(gone <= day)   # an unknown signup counts as signed up
    out = crm.loc[open_, ["customer_id", "rep_id"]].reset_index(drop=True)
    return out.assign(rep_id=out["rep_id"].fillna(UNASSIGNED))


def read_optional(clean_dir: Path, table: str, columns: list[str],
                  window: tuple[str, pd.Timestamp, pd.Timestamp] | None = None,
                  customers: pd.Series | None = None) -> pd.DataFrame:
    """A clean table's columns, or no rows when the export had no such table; ``window``
    (column, start, end): only the rows with start <= column < end; ``customers``: only
    theirs. Both are filtered as the file is read (a scoring bucket then holds a week of
    contacts, or its own customers' rows, not the whole table)."""
    path = Path(clean_dir) / f"{table}.parquet"
    if path.is_file():
        return pd.read_parquet(path, columns=columns, filters=row_filters(window, customers))
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c.endswith("_at") else object)
                         for c in columns})


def row_filters(window: tuple[str, pd.Timestamp, pd.Timestamp] | None = None,
                customers: pd.Series | None = None) -> pc.Expression | None:
    """A ``read_parquet`` filter for a time window (start inclusive) and a set of customers
    (clean customer ids are text: an empty set is still a set of text)."""
    parts = []
    if window is not None:
        parts += [pc.field(window[0]) >= window[1], pc.field(window[0]) < window[2]]
    if customers is not None:
        ids = pa.array(pd.unique(customers.astype(object)), pa.string())
        parts.append(pc.field("customer_id").isin(ids))
    return functools.reduce(operator.and_, parts) if parts else None


def feature_rows(settings: Settings, customers: pd.DataFrame, as_of: date, service: str) -> pd.DataFrame:
    """The customers' features as known at ``as_of`` (point in time, like training)."""
    entity = customers.assign(event_timestamp=_utc(as_of))
    frame = training_frame(feature_store(settings), entity, service)
    return frame.sort_values("customer_id", kind="stable", ignore_index=True)


def recent_contacts(clean_dir: Path, customers: pd.Series, as_of: date, days: int = 7) -> pd.Series:
    """Retention actions delivered and survey invitations sent in the ``days`` before ``as_of``."""
    start, end = _utc(as_of) - days * DAY, _utc(as_of)
    acts = read_optional(clean_dir, "interventions", ["customer_id", "assigned_at", "control_group"],
                         ("assigned_at", start, end))
    inv = read_optional(clean_dir, "survey_invitations", ["customer_id", "sent_at"],
                        ("sent_at", start, end))
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


def contact_consent(clean_dir: Path) -> pd.DataFrame:
    """The CRM's opt-out flags (index customer_id; only the flags the export records, so a
    channel whose consent the company does not record is not checked)."""
    path = Path(clean_dir) / "crm_customers.parquet"
    columns = [c for c in CONSENT_COLUMNS if c in pq.read_schema(path).names]
    return pd.read_parquet(path, columns=["customer_id", *columns]).set_index("customer_id")


def notices_given(clean_dir: Path, as_of: date) -> pd.Series:
    """Notice date of every customer who gave notice by ``as_of`` and has not left yet
    (index customer_id): save-desk cases, not retention targets."""
    path = Path(clean_dir) / "crm_customers.parquet"
    if "notice_date" not in pq.read_schema(path).names:
        return pd.Series(dtype="datetime64[ns]")
    return open_notices(pd.read_parquet(path, columns=["customer_id", "notice_date", "churn_date"]), as_of)


def open_notices(crm: pd.DataFrame, as_of: date) -> pd.Series:
    """``notices_given`` of these crm rows (customer_id, notice_date, churn_date)."""
    day = pd.Timestamp(as_of)
    open_notice = (crm["notice_date"] <= day) & ~(crm["churn_date"] <= day)
    return crm.loc[open_notice].set_index("customer_id")["notice_date"]
