"""IBM Telco customer churn ("11.1.3+" edition) -> the nine data-contract tables (CSV).

Turns one quarter seen from its end (7,043 customers) into what a CRM, a billing system and
a usage log would have exported, so ingest and features treat it like any export and the
churn label comes only from the CRM churn dates. Design (time layout, column mapping, what
is not imported): docs/sources.md#ibm-telco-customer-churn
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.ingest.schemas import SCHEMAS

TELCO_FILES = {
    "status": "Telco_customer_churn_status.csv",
    "services": "Telco_customer_churn_services.csv",
    "demographics": "Telco_customer_churn_demographics.csv",
    "location": "Telco_customer_churn_location.csv",
    "population": "Telco_customer_churn_population.csv",
}
KEY = "Customer ID"
#: Outcome columns of the status file: never features, never copied into any table.
OUTCOME_COLUMNS = ("Churn Label", "Churn Value", "Churn Score", "Churn Category", "Churn Reason",
                   "Customer Status")
LABEL_COLUMN = "Churn Value"
QUARTER_MONTHS = 3
PLAN_BY_INTERNET = {"None": "basic", "": "basic", "DSL": "standard", "Cable": "standard",
                    "Fiber Optic": "premium"}
CONTRACTS = {"Month-to-Month": ("month_to_month", 0), "One Year": ("one_year", 12),
             "Two Year": ("two_year", 24)}
STREAMING = ("Streaming TV", "Streaming Movies", "Streaming Music")
NPS_FROM_SATISFACTION = {1: 0, 2: 3, 3: 5, 4: 8, 5: 10}
SURVEY_HOUR = 9          # invitations go out at 09:00 UTC on the first of the month
MAX_ANSWER_HOURS = 14 * 24


def import_ibm_telco(source_dir: Path, out_dir: Path, quarter_start: date = date(2022, 7, 1),
                     seed: int = 0, *, include_satisfaction: bool = False,
                     history_months: int = 12, horizon_days: int = 90) -> dict[str, int]:
    """Write the nine contract tables as ``out_dir/<table>.csv``; rows written per table.

    The mapping: docs/sources.md#mapping. ``quarter_start`` must be a month start;
    ``horizon_days`` bounds the churn dates (keep it the churn horizon of the features).
    """
    q = pd.Timestamp(quarter_start)
    if q.day != 1:
        raise ValueError(f"quarter_start must be the first day of a month, got {quarter_start}")
    if history_months < 1 or horizon_days < 1:
        raise ValueError("history_months and horizon_days must be >= 1")
    telco = read_customers(Path(source_dir))
    churned = read_label(Path(source_dir), telco.index)
    crm = crm_customers(telco, churned, q, seed, horizon_days)
    months = customer_months(telco, q, history_months)
    tables = {
        "crm_customers": crm,
        "billing_invoices": billing_invoices(telco, months),
        "product_usage": product_usage(telco, months),
    }
    if include_satisfaction:
        tables["survey_invitations"], tables["survey_responses"] = satisfaction_survey(
            telco, crm, q, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for table, schema in SCHEMAS.items():
        frame = tables.get(table, pd.DataFrame(columns=list(schema.columns)))
        frame[list(schema.columns)].to_csv(out_dir / f"{table}.csv", index=False)
        rows[table] = len(frame)
    return rows


# --- reading ------------------------------------------------------------------------------

def _read(source_dir: Path, name: str, usecols=None) -> pd.DataFrame:
    """One Telco file as text (empty cells stay ''), indexed by Customer ID."""
    path = source_dir / TELCO_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"IBM Telco file not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=usecols)
    if frame[KEY].duplicated().any():
        raise ValueError(f"{path}: duplicated {KEY}")
    return frame.set_index(KEY)


def read_customers(source_dir: Path) -> pd.DataFrame:
    """Services, location and the non-outcome status columns, one row per customer, by id.

    The outcome columns are not even read here (``usecols``): nothing built from this
    frame can depend on them.
    """
    status_cols = [KEY, "Satisfaction Score"]
    status = _read(source_dir, "status", usecols=status_cols)
    services = _read(source_dir, "services")
    location = _read(source_dir, "location", usecols=[KEY, "State", "Zip Code"])
    missing = status.index.difference(services.index).union(status.index.difference(location.index))
    if len(missing):
        raise ValueError(f"{len(missing)} customers of the status file lack services or location, "
                         f"e.g. {list(missing[:3])}")
    telco = status.join(services.drop(columns=["Count", "Quarter"]), how="left").join(location)
    telco = telco.sort_index()
    telco["tenure"] = pd.to_numeric(telco["Tenure in Months"]).astype(int)
    if (telco["tenure"] < 1).any():
        raise ValueError("Tenure in Months must be >= 1")
    return telco


def read_label(source_dir: Path, ids: pd.Index) -> pd.Series:
    """``Churn Value`` (bool) per customer id: the one outcome column the importer reads."""
    label = _read(source_dir, "status", usecols=[KEY, LABEL_COLUMN])[LABEL_COLUMN]
    bad = ~label.isin(["0", "1"])
    if bad.any():
        raise ValueError(f"{LABEL_COLUMN} must be 0 or 1, got {sorted(label[bad].unique())[:5]}")
    return (label == "1").reindex(ids)


# --- helpers ------------------------------------------------------------------------------

def uniform(ids: pd.Index, salt: str, seed: int) -> np.ndarray:
    """A reproducible U[0, 1) per customer id, independent of row order and of other rows."""
    def one(cid: str) -> float:
        digest = hashlib.blake2b(f"{seed}:{salt}:{cid}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64
    return np.array([one(cid) for cid in ids], dtype=float)


def month_number(ts: pd.Timestamp) -> int:
    return ts.year * 12 + ts.month - 1


def month_dates(numbers: np.ndarray) -> pd.DatetimeIndex:
    """Month numbers (year * 12 + month - 1) -> first day of those months."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return pd.DatetimeIndex((numbers - 1970 * 12).astype("datetime64[M]").astype("datetime64[ns]"))


def ymd(values) -> np.ndarray:
    """Dates as YYYY-MM-DD text."""
    return pd.DatetimeIndex(values).strftime("%Y-%m-%d").to_numpy()


def signup_month(telco: pd.DataFrame, q: pd.Timestamp) -> np.ndarray:
    """Month number of signup: tenure counted back from the end of the quarter."""
    return month_number(q) + QUARTER_MONTHS - telco["tenure"].to_numpy()


def _num(telco: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(telco[column].replace("", "0")).to_numpy(float)


# --- tables -------------------------------------------------------------------------------

def crm_customers(telco: pd.DataFrame, churned: pd.Series, q: pd.Timestamp, seed: int,
                  horizon_days: int) -> pd.DataFrame:
    """One row per customer; churners get a churn date inside the quarter."""
    ids = telco.index
    signup = month_dates(signup_month(telco, q))
    last = min(q + pd.DateOffset(months=QUARTER_MONTHS) - pd.Timedelta(days=1),
               q + pd.Timedelta(days=horizon_days))
    first = np.maximum(signup.to_numpy(), q.to_datetime64())
    span = (last.to_datetime64() - first) // np.timedelta64(1, "D")      # >= 0: signup <= Q + 2 months
    offset = np.floor(uniform(ids, "churn_date", seed) * (span + 1)).astype("timedelta64[D]")
    churn_day = pd.DatetimeIndex(first + offset)
    is_churned = churned.to_numpy(bool)
    zip3 = telco["Zip Code"].str.strip().str[:3]
    rank = np.arange(len(ids))
    return pd.DataFrame({
        "customer_id": ids.to_numpy(),
        "signup_date": ymd(signup),
        "segment": "consumer",
        "region": (telco["State"].str.strip() + " " + zip3 + "xx").to_numpy(),
        "rep_id": ("rep-" + zip3).to_numpy(),
        "email": [f"{cid.lower()}@telco.example" for cid in ids],
        "phone": [f"+1 (555) {r // 10000:03d}-{r % 10000:04d}" for r in rank],
        "app_id": [f"app-{cid.lower()}" for cid in ids],
        "status": np.where(is_churned, "churned", "active"),
        "churn_date": np.where(is_churned, ymd(churn_day), ""),
    })


def customer_months(telco: pd.DataFrame, q: pd.Timestamp, history_months: int) -> pd.DataFrame:
    """(row, month number) for every customer month before the quarter, since signup."""
    start = signup_month(telco, q)
    first = np.maximum(start, month_number(q) - history_months)
    count = np.maximum(month_number(q) - first, 0)
    row = np.repeat(np.arange(len(telco)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return pd.DataFrame({"row": row, "month": first[row] + within, "signup": start[row]})


def billing_invoices(telco: pd.DataFrame, months: pd.DataFrame) -> pd.DataFrame:
    """One invoice per customer month, on the first of the month."""
    row, month = months["row"].to_numpy(), months["month"].to_numpy()
    unknown = ((set(telco["Contract"]) - set(CONTRACTS))
               | (set(telco["Internet Type"]) - set(PLAN_BY_INTERNET)))
    if unknown:
        raise ValueError(f"unexpected Contract / Internet Type values: {sorted(unknown)}")
    contract = telco["Contract"].map(lambda c: CONTRACTS[c][0]).to_numpy()[row]
    term = telco["Contract"].map(lambda c: CONTRACTS[c][1]).to_numpy()[row]
    since = month - months["signup"].to_numpy()
    end = months["signup"].to_numpy() + np.where(term > 0, (since // np.maximum(term, 1) + 1) * term, 0)
    tenure = telco["tenure"].to_numpy(float)
    charge = _num(telco, "Monthly Charge")
    refund = _num(telco, "Total Refunds") / tenure
    extra = _num(telco, "Total Extra Data Charges") / tenure
    amount = charge + _num(telco, "Avg Monthly Long Distance Charges") + extra - refund
    ids = telco.index.to_numpy()[row]
    invoice_day = month_dates(month)
    return pd.DataFrame({
        "invoice_id": [f"BIL-{cid}-{d}" for cid, d in zip(ids, invoice_day.strftime("%Y%m"),
                                                          strict=True)],
        "customer_id": ids,
        "invoice_date": ymd(invoice_day),
        "plan": telco["Internet Type"].map(PLAN_BY_INTERNET).to_numpy()[row],
        "contract": contract,
        "contract_end_date": np.where(term > 0, ymd(month_dates(end)), ""),
        "list_price": charge[row].round(2),
        "price_change_pct": 0.0,
        "discount": refund[row].round(2),
        "amount": np.maximum(amount[row], 0).round(2),
        "days_late": 0,
    })


def product_usage(telco: pd.DataFrame, months: pd.DataFrame) -> pd.DataFrame:
    """One usage row per customer month: GB downloaded and streaming services as sessions."""
    row = months["row"].to_numpy()
    month = month_dates(months["month"].to_numpy())
    streams = sum((telco[c] == "Yes").to_numpy(int) for c in STREAMING)
    return pd.DataFrame({
        "customer_id": telco.index.to_numpy()[row],
        "month": ymd(month),
        "usage_units": _num(telco, "Avg Monthly GB Download")[row],
        "active_days": month.days_in_month.to_numpy(),
        "sessions": streams[row],
    })


def satisfaction_survey(telco: pd.DataFrame, crm: pd.DataFrame, q: pd.Timestamp,
                        seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A relationship survey one month before the quarter, answered by every customer then."""
    sent = q - pd.DateOffset(months=1) + pd.Timedelta(hours=SURVEY_HOUR)
    signup = pd.to_datetime(crm["signup_date"]).to_numpy()
    keep = signup < sent.to_datetime64()
    ids = telco.index[keep]
    score = pd.to_numeric(telco["Satisfaction Score"][keep]).astype(int)
    if not score.between(1, 5).all():
        raise ValueError("Satisfaction Score must be 1-5")
    survey = f"relationship-{sent:%Y-%m}"
    hours = 1 + np.floor(uniform(ids, "answer", seed) * (MAX_ANSWER_HOURS - 1)).astype(int)
    answered = sent + pd.to_timedelta(hours, unit="h")
    invitations = pd.DataFrame({
        "invitation_id": [f"INV-{cid}-{sent:%Y%m}" for cid in ids],
        "customer_id": ids.to_numpy(),
        "survey_id": survey,
        "touchpoint": "relationship",
        "channel": "email",
        "sent_at": sent.strftime("%Y-%m-%dT%H:%M:%S"),
        "trigger_id": "",
    })
    responses = pd.DataFrame({
        "response_id": [f"RSP-{cid}-{sent:%Y%m}" for cid in ids],
        "survey_id": survey,
        "channel": "email",
        "respondent": crm["email"].to_numpy()[keep],
        "responded_at": pd.DatetimeIndex(answered).strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        "nps": score.map(NPS_FROM_SATISFACTION).to_numpy(),
        "csat": score.to_numpy(),
        "effort": "",
        "comment": "",
    })
    return invitations, responses
