"""Read the clean tables once, at one boundary, into compact typed frames.

Everything downstream relies on three normalisations made here: every customer
reference becomes an integer ``code`` (the row of ``crm_customers``), so windows
are array operations instead of string joins; every timestamp and date becomes
tz-aware UTC ``datetime64[ns, UTC]`` (naive values are taken as UTC, dates as UTC
midnight), so comparisons against a snapshot are unambiguous; low-cardinality text
becomes categorical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

NS_PER_DAY = 86_400 * 10**9

COLUMNS = {
    "crm_customers": ["customer_id", "signup_date", "churn_date", "segment", "region"],
    "billing_invoices": ["customer_id", "invoice_date", "plan", "contract", "contract_end_date",
                         "list_price", "price_change_pct", "discount", "days_late"],
    "product_usage": ["customer_id", "month", "usage_units", "active_days", "sessions"],
    "support_tickets": ["customer_id", "opened_at", "closed_at", "category", "status"],
    "complaints": ["customer_id", "received_at", "severity"],
    "orders": ["customer_id", "ordered_at", "status"],
    "survey_invitations": ["invitation_id", "customer_id", "touchpoint", "sent_at"],
    "survey_responses": ["response_id", "customer_id", "invitation_id", "survey_id",
                         "responded_at", "nps", "csat", "effort", "comment"],
    "interventions": ["customer_id", "assigned_at", "action", "control_group", "outcome"],
}
#: Optional crm columns: channel consent as the CRM holds it at export time (not dated).
CONSENT_COLUMNS = ("email_opt_out", "phone_opt_out")
DATES = {"signup_date", "churn_date", "invoice_date", "contract_end_date", "month"}
TIMES = {"opened_at", "closed_at", "received_at", "ordered_at", "sent_at", "responded_at",
         "assigned_at", "answered_at"}
CATEGORIES = {"segment", "region", "plan", "contract", "category", "status", "touchpoint",
              "action", "outcome"}
NUMBERS = {"list_price": pa.float64(), "price_change_pct": pa.float64(), "discount": pa.float64(),
           "days_late": pa.int64(), "usage_units": pa.float64(), "active_days": pa.int64(),
           "sessions": pa.int64(), "severity": pa.int64(), "nps": pa.int64(), "csat": pa.int64(),
           "effort": pa.int64(), "control_group": pa.bool_()}
KEEP_TEXT = {"response_id", "customer_id", "invitation_id", "survey_id", "comment"}
# When each table's rows happen; product_usage rows describe a whole month.
ACTIVITY = {"billing_invoices": "invoice_date", "product_usage": "month",
            "support_tickets": "opened_at", "complaints": "received_at", "orders": "ordered_at",
            "survey_invitations": "sent_at", "survey_responses": "responded_at",
            "interventions": "assigned_at"}


def to_utc(values) -> pd.Series:
    """The one timestamp normaliser: naive -> UTC, aware -> UTC, dates/strings parsed; ns unit."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.to_datetime(series, utc=True).dt.as_unit("ns")


def ns(series: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of a normalised column (NaT must be filtered first)."""
    return series.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).view("int64")


@dataclass
class Clean:
    """The clean tables, keyed by customer code; ``customers`` row i has code i."""

    customers: pd.DataFrame
    tables: dict[str, pd.DataFrame]

    @property
    def n(self) -> int:
        return len(self.customers)


def load_clean(clean_dir: Path) -> Clean:
    """Read the clean tables with only the columns the features use."""
    path = Path(clean_dir) / "crm_customers.parquet"
    names = pq.read_schema(path).names
    consent = [c for c in CONSENT_COLUMNS if c in names]
    crm = pq.read_table(path, columns=COLUMNS["crm_customers"] + consent)
    ids = crm["customer_id"].combine_chunks()
    customers = _to_frame(crm, keep_ids=True)
    raw = {}
    for name, cols in COLUMNS.items():
        if name == "crm_customers":
            continue
        tab = read_table(Path(clean_dir), name, cols)
        code = pc.index_in(tab["customer_id"], value_set=ids)
        raw[name] = tab.append_column("code", code).filter(pc.is_valid(code))
    raw["survey_invitations"], raw["survey_responses"] = _link_surveys(
        raw["survey_invitations"], raw["survey_responses"])
    tables = {name: _to_frame(tab, keep_ids=name == "survey_responses")
              for name, tab in raw.items()}
    return Clean(customers, tables)


def crm_extra(clean_dir: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The crm columns the window needs that the feature reader does not load (when present)."""
    path = Path(clean_dir) / "crm_customers.parquet"
    present = [c for c in columns if c in pq.read_schema(path).names]
    return pq.read_table(path, columns=present).to_pandas() if present else pd.DataFrame()


def read_table(clean_dir: Path, name: str, columns: list[str]) -> pa.Table:
    """One clean table; an optional table that was not exported reads as no rows.

    The rows are only indexed: the features of a missing table are left out of the feature
    tables (``features.transforms.present``), so its zeros never reach a model.
    """
    path = clean_dir / f"{name}.parquet"
    if not path.is_file():
        return pa.table({c: pa.array([], _arrow_type(c)) for c in columns})
    return pq.read_table(path, columns=columns)


def _arrow_type(column: str) -> pa.DataType:
    """The clean Parquet type of a column read here (docs/features.md#clean-tables), for an
    absent table; kept here rather than imported so the transforms do not load ingest."""
    if column in DATES:
        return pa.timestamp("us")
    if column in TIMES:
        return pa.timestamp("us", tz="UTC")
    if column in NUMBERS:
        return NUMBERS[column]
    return pa.string()


def _link_surveys(inv: pa.Table, resp: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Invitations gain ``answered_at`` (first response); responses gain ``touchpoint``.

    Done on Arrow arrays so that millions of invitation ids never become Python strings.
    """
    pos = pc.index_in(resp["invitation_id"], value_set=inv["invitation_id"].combine_chunks())
    resp = resp.append_column("touchpoint", pc.take(inv["touchpoint"], pos))
    known = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    at = ns(to_utc(resp["responded_at"].to_pandas()))[known]
    first = np.full(inv.num_rows, np.iinfo(np.int64).max)
    np.minimum.at(first, pos.to_numpy(zero_copy_only=False)[known].astype(np.int64), at)
    answered = pa.array(first.view("datetime64[ns]"), pa.timestamp("ns", "UTC"),
                        mask=first == np.iinfo(np.int64).max)
    return inv.drop_columns(["invitation_id"]).append_column("answered_at", answered), resp


def _to_frame(tab: pa.Table, keep_ids: bool) -> pd.DataFrame:
    """Arrow table -> pandas with normalised times, categorical labels, int32 codes."""
    if not keep_ids and "customer_id" in tab.column_names:
        tab = tab.drop_columns(["customer_id"])
    for name in tab.column_names:
        if name in CATEGORIES:
            idx = tab.column_names.index(name)
            tab = tab.set_column(idx, name, pc.dictionary_encode(tab[name]))
    df = tab.to_pandas(date_as_object=False)
    for col in df.columns:
        if col in DATES:
            df[col] = to_utc(df[col]).dt.floor("D")
        elif col in TIMES:
            df[col] = to_utc(df[col])
    if "code" in df:
        df["code"] = df["code"].astype(np.int32)
    return df


def history_bounds(clean: Clean) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first month start, month start after the latest event): the observed history."""
    firsts, lasts = [], []
    for name, col in ACTIVITY.items():
        times = clean.tables[name][col].dropna()
        if len(times):
            firsts.append(times.min())
            lasts.append(times.max())
    if not lasts:
        raise ValueError("the clean tables hold no events: cannot place snapshots")
    start = month_start(min(firsts))
    end = month_start(max(lasts)) + pd.DateOffset(months=1)
    return start, end


def month_start(ts: pd.Timestamp) -> pd.Timestamp:
    """The first instant (UTC midnight) of the month holding ``ts``."""
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize().replace(day=1)
