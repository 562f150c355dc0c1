"""The minimal contract: which tables and columns a source must have, and what is optional.

Only ``crm_customers`` is required, with ``customer_id`` and a ``status`` or a
``churn_date`` column; every other table may be absent (reported, not an error), and a
present table may leave out the columns listed in :data:`OPTIONAL_COLUMNS` (read as
empty). Design: docs/data_contract.md#the-minimal-contract
"""

from __future__ import annotations

import pandas as pd

from features.ingest.schemas import (
    DATE_DTYPE,
    SCHEMAS,
    STRING,
    SURVEY_SCORES,
    TIMESTAMP_DTYPE,
    clean_schema,
    column_kind,
)

REQUIRED_TABLES = ("crm_customers",)
#: Columns a present source table may leave out; an absent one is read as empty (null).
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_customers": ("signup_date", "segment", "region", "rep_id", "email", "phone", "app_id",
                      "status", "churn_date", "observed_until", "notice_date", "email_opt_out",
                      "phone_opt_out"),
    "survey_responses": SURVEY_SCORES,
    "interventions": ("stratum", "assignment_probability"),
}
#: At least one column of each group must be present in the table.
ONE_OF: dict[str, tuple[str, ...]] = {"crm_customers": ("status", "churn_date"),
                                      "survey_responses": SURVEY_SCORES}


def required_columns(table: str) -> list[str]:
    """The columns a present source table must have."""
    optional = OPTIONAL_COLUMNS.get(table, ())
    return [c for c in SCHEMAS[table].columns if c not in optional]


def one_of_problem(table: str, columns: tuple[str, ...]) -> str | None:
    """Why the table lacks every column of its one-of group, or None."""
    group = ONE_OF.get(table, ())
    if group and not set(group) & set(columns):
        if len(group) == 2:
            return f"needs a {' or a '.join(group)} column"
        return f"needs at least one of the columns {', '.join(group)}"
    return None


def complete_columns(raw: pd.DataFrame, table: str) -> pd.DataFrame:
    """``raw`` with every absent optional column added as empty; a status derived when absent.

    Without a ``status`` column a customer with a churn date is ``churned``, else ``active``.
    """
    absent = [c for c in OPTIONAL_COLUMNS.get(table, ()) if c not in raw.columns]
    if not absent:
        return raw
    filled = raw.assign(**{c: pd.Series(pd.NA, index=raw.index, dtype=STRING) for c in absent})
    if table == "crm_customers" and "status" in absent:
        churned = filled["churn_date"].notna() & filled["churn_date"].astype(STRING).ne("")
        filled["status"] = pd.Series(["active"] * len(raw), index=raw.index, dtype=STRING).where(
            ~churned.fillna(False).astype(bool), "churned")
    return filled


def has_churn_dates(columns) -> bool:
    """Whether the CRM export carries churn dates (then a churned customer needs one)."""
    return "churn_date" in columns


def empty_clean(table: str) -> pd.DataFrame:
    """No rows, the columns and dtypes of the clean ``table`` (what an absent table reads as)."""
    schema = clean_schema(table)
    return pd.DataFrame({
        name: pd.Series([], dtype=_EMPTY_DTYPES[(column_kind(schema, name), col.nullable)])
        for name, col in schema.columns.items()
    })


_EMPTY_DTYPES = {
    **{("str", n): STRING for n in (False, True)},
    **{("date", n): DATE_DTYPE for n in (False, True)},
    **{("timestamp", n): TIMESTAMP_DTYPE for n in (False, True)},
    **{("float", n): "float64" for n in (False, True)},
    ("int", False): "int64", ("int", True): "Int64", ("bool", False): "bool",
    ("bool", True): "boolean",
}
