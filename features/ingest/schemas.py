"""The data contract (docs/data_contract.md) declared as pandera schemas, one per clean table.

Each schema gives the dtype of every column after coercion, its nullability and row checks
(whose ``error`` becomes the quarantine ``_reason``), the primary key and the cross-column
rules. Design and dtype convention: docs/features.md#clean-tables
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
import pyarrow

TIMESTAMP_DTYPE = pd.DatetimeTZDtype("us", "UTC")
#: text while processing (written to Parquet as plain strings, read back as object)
STRING = pd.StringDtype("pyarrow")
DATE_DTYPE = "datetime64[us]"

SEGMENTS = ("consumer", "small_business", "enterprise")
CUSTOMER_STATUS = ("active", "churned")
PLANS = ("basic", "standard", "premium")
CONTRACTS = ("month_to_month", "one_year", "two_year")
TICKET_CATEGORIES = ("billing", "technical", "outage", "account", "delivery")
TICKET_STATUS = ("resolved", "unresolved", "open")
TICKET_CHANNELS = ("phone", "email", "chat")
CONTACT_TYPES = ("email", "phone")
ORDER_STATUS = ("delivered", "failed", "cancelled")
TOUCHPOINTS = ("relationship", "support", "purchase")
SURVEY_CHANNELS = ("email", "sms", "app")
ACTIONS = (
    "service_recovery_call",
    "discount_offer",
    "plan_upgrade",
    "apology_credit",
    "proactive_tech_check",
)
OUTCOMES = ("accepted", "declined", "no_answer", "complaint_after_contact", "holdout")

_DTYPES = {
    ("str", False): str,
    ("str", True): str,
    ("date", False): DATE_DTYPE,
    ("date", True): DATE_DTYPE,
    ("timestamp", False): TIMESTAMP_DTYPE,
    ("timestamp", True): TIMESTAMP_DTYPE,
    ("int", False): "int64",
    ("int", True): "Int64",
    ("float", False): "float64",
    ("float", True): "float64",
    ("bool", False): "bool",
    ("bool", True): "boolean",
}


def _col(kind: str, *checks: pa.Check, nullable: bool = False, unique: bool = False) -> pa.Column:
    """A contract column: dtype from its kind, the kind kept in metadata for coercion."""
    return pa.Column(
        _DTYPES[(kind, nullable)],
        checks=list(checks),
        nullable=nullable,
        unique=unique,
        metadata={"kind": kind},
    )


def one_of(values: Iterable[str]) -> pa.Check:
    values = tuple(values)
    return pa.Check.isin(values, error="must be one of " + ", ".join(values))


def between(low: int, high: int) -> pa.Check:
    return pa.Check.in_range(low, high, error=f"must be between {low} and {high}")


def non_negative() -> pa.Check:
    return pa.Check.ge(0, error="must be >= 0")


def _not_before(later: str, earlier: str) -> pa.Check:
    """Frame check: ``later`` is null, ``earlier`` is null or ``later >= earlier``."""

    def check(df: pd.DataFrame) -> pd.Series:
        a, b = df[later], df[earlier]
        return (a.isna() | b.isna() | (a >= b)).astype(bool)

    return pa.Check(check, name=f"{later}>={earlier}", error=f"{later}: before {earlier}")


def _churn_date_required() -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series:
        return ((df["status"] != "churned") | df["churn_date"].notna()).astype(bool)

    return pa.Check(
        check, name="churn_date_required", error="churn_date: required when status is churned"
    )


def _first_of_month(column: str) -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series:
        return (df[column].isna() | (df[column].dt.day == 1)).astype(bool)

    return pa.Check(check, name="first_of_month", error=f"{column}: not the first day of a month")


#: The answer columns of a survey response; each answer carries at least one of them.
SURVEY_SCORES = ("nps", "csat", "effort")


def _one_score() -> pa.Check:
    """Frame check: a survey response answers at least one scored question."""

    def check(df: pd.DataFrame) -> pd.Series:
        return df[list(SURVEY_SCORES)].notna().any(axis=1).astype(bool)

    return pa.Check(check, name="one_score",
                    error="nps, csat, effort: no score (a response needs at least one)")


def _schema(name: str, columns: dict, checks=(), unique=None) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        columns, checks=list(checks), unique=unique, name=name, strict=False, ordered=False
    )


CRM_CUSTOMERS = _schema(
    "crm_customers",
    {
        "customer_id": _col("str", unique=True),
        "signup_date": _col("date", nullable=True),
        "segment": _col("str", one_of(SEGMENTS), nullable=True),
        "region": _col("str", nullable=True),
        "rep_id": _col("str", nullable=True),  # empty: unassigned
        "email": _col("str", nullable=True),
        "phone": _col("str", nullable=True),
        "app_id": _col("str", nullable=True),
        "status": _col("str", one_of(CUSTOMER_STATUS)),
        "churn_date": _col("date", nullable=True),
        "observed_until": _col("date", nullable=True),   # export date: end of the status window
        "notice_date": _col("date", nullable=True),      # the customer gave notice to cancel
        "email_opt_out": _col("bool", nullable=True),    # no marketing e-mail
        "phone_opt_out": _col("bool", nullable=True),    # do not call
    },
    checks=[_churn_date_required(), _not_before("churn_date", "signup_date"),
            _not_before("notice_date", "signup_date"), _not_before("churn_date", "notice_date")],
)

BILLING_INVOICES = _schema(
    "billing_invoices",
    {
        "invoice_id": _col("str", unique=True),
        "customer_id": _col("str"),
        "invoice_date": _col("date"),
        "plan": _col("str", one_of(PLANS)),
        "contract": _col("str", one_of(CONTRACTS)),
        "contract_end_date": _col("date", nullable=True),
        "list_price": _col("float", non_negative()),
        "price_change_pct": _col("float"),
        "discount": _col("float", non_negative()),
        "amount": _col("float", non_negative()),
        "days_late": _col("int", non_negative()),
    },
)

PRODUCT_USAGE = _schema(
    "product_usage",
    {
        "customer_id": _col("str"),
        "month": _col("date"),
        "usage_units": _col("float", non_negative()),
        "active_days": _col("int", between(0, 31)),
        "sessions": _col("int", non_negative()),
    },
    checks=[_first_of_month("month")],
    unique=["customer_id", "month"],
)

SUPPORT_TICKETS = _schema(
    "support_tickets",
    {
        "ticket_id": _col("str", unique=True),
        "customer_id": _col("str"),
        "opened_at": _col("timestamp"),
        "closed_at": _col("timestamp", nullable=True),
        "category": _col("str", one_of(TICKET_CATEGORIES)),
        "status": _col("str", one_of(TICKET_STATUS)),
        "channel": _col("str", one_of(TICKET_CHANNELS)),
    },
    checks=[_not_before("closed_at", "opened_at")],
)

COMPLAINTS = _schema(
    "complaints",
    {
        "complaint_id": _col("str", unique=True),
        "received_at": _col("timestamp"),
        "contact_type": _col("str", one_of(CONTACT_TYPES)),
        "contact": _col("str"),
        "category": _col("str"),
        "severity": _col("int", between(1, 3)),
    },
)

ORDERS = _schema(
    "orders",
    {
        "order_id": _col("str", unique=True),
        "customer_id": _col("str"),
        "ordered_at": _col("timestamp"),
        "amount": _col("float", non_negative()),
        "status": _col("str", one_of(ORDER_STATUS)),
    },
)

SURVEY_INVITATIONS = _schema(
    "survey_invitations",
    {
        "invitation_id": _col("str", unique=True),
        "customer_id": _col("str"),
        "survey_id": _col("str"),
        "touchpoint": _col("str", one_of(TOUCHPOINTS)),
        "channel": _col("str", one_of(SURVEY_CHANNELS)),
        "sent_at": _col("timestamp"),
        "trigger_id": _col("str", nullable=True),
    },
)

SURVEY_RESPONSES = _schema(
    "survey_responses",
    {
        "response_id": _col("str", unique=True),
        "survey_id": _col("str"),
        "channel": _col("str", one_of(SURVEY_CHANNELS)),
        "respondent": _col("str"),
        "responded_at": _col("timestamp"),
        "nps": _col("int", between(0, 10), nullable=True),
        "csat": _col("int", between(1, 5), nullable=True),
        "effort": _col("int", between(1, 7), nullable=True),
        "comment": _col("str", nullable=True),
    },
    checks=[_one_score()],
)

INTERVENTIONS = _schema(
    "interventions",
    {
        "intervention_id": _col("str", unique=True),
        "customer_id": _col("str"),
        "action": _col("str", one_of(ACTIONS)),
        "assigned_at": _col("timestamp"),
        "rep_id": _col("str"),
        "cost": _col("float", non_negative()),
        "control_group": _col("bool"),
        "outcome": _col("str", one_of(OUTCOMES)),
        "stratum": _col("str", nullable=True),           # the programme's targeting stratum
        "assignment_probability": _col(                  # P(this assignment | stratum)
            "float", pa.Check.in_range(0, 1, include_min=False, error="must be in (0, 1]"),
            nullable=True),
    },
)

#: Every contract table, in processing order (customers first: the others refer to them;
#: invitations before responses: responses are linked to invitations).
SCHEMAS: dict[str, pa.DataFrameSchema] = {
    s.name: s
    for s in (
        CRM_CUSTOMERS,
        BILLING_INVOICES,
        PRODUCT_USAGE,
        SUPPORT_TICKETS,
        COMPLAINTS,
        ORDERS,
        SURVEY_INVITATIONS,
        SURVEY_RESPONSES,
        INTERVENTIONS,
    )
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)

#: Columns the identity resolution adds to a clean table.
RESOLVED_COLUMNS: dict[str, dict[str, pa.Column]] = {
    "complaints": {"customer_id": _col("str")},
    "survey_responses": {"customer_id": _col("str"), "invitation_id": _col("str")},
}


def arrow_strings(values: pd.Series) -> pyarrow.ChunkedArray:
    """The Arrow array behind a text column (zero-copy for ``string[pyarrow]``)."""
    arr = pyarrow.array(values.astype(STRING))
    return arr if isinstance(arr, pyarrow.ChunkedArray) else pyarrow.chunked_array([arr])


def column_kind(schema: pa.DataFrameSchema, column: str) -> str:
    return schema.columns[column].metadata["kind"]


def primary_key(schema: pa.DataFrameSchema) -> list[str]:
    """The unique key of a table: a ``unique`` column or the schema-level ``unique`` list."""
    if schema.unique:
        return list(schema.unique)
    return [name for name, col in schema.columns.items() if col.unique]


def with_known_customers(schema: pa.DataFrameSchema, known) -> pa.DataFrameSchema:
    """Add the foreign-key check ``customer_id`` known in ``crm_customers``; ``known``: a
    ``features.ingest.known.KnownCustomers`` (every clean id in-process, a bucket at a time
    on a cluster)."""

    def check(values: pd.Series) -> pd.Series:
        return pd.Series(known.contains(values), index=values.index)

    known_check = pa.Check(
        check,
        name="known_customer",
        error="unknown customer (not in crm_customers)",
    )
    col = schema.columns["customer_id"]
    return schema.update_column("customer_id", checks=[*col.checks, known_check])


def clean_schema(table: str) -> pa.DataFrameSchema:
    """Schema of the clean output table, including identity-resolution columns."""
    schema = SCHEMAS[table]
    extra = RESOLVED_COLUMNS.get(table)
    return schema.add_columns(extra) if extra else schema
