"""Hand-built clean tables: a few rows per table with answers known by heart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

S, D, T = pa.string(), pa.date32(), pa.timestamp("us", tz="UTC")
F, N, B = pa.float64(), pa.int64(), pa.bool_()
SCHEMAS = {
    "crm_customers": {"customer_id": S, "signup_date": D, "segment": S, "region": S,
                      "rep_id": S, "email": S, "phone": S, "app_id": S, "status": S,
                      "churn_date": D},
    "billing_invoices": {"invoice_id": S, "customer_id": S, "invoice_date": D, "plan": S,
                         "contract": S, "contract_end_date": D, "list_price": F,
                         "price_change_pct": F, "discount": F, "amount": F, "days_late": N},
    "product_usage": {"customer_id": S, "month": D, "usage_units": F, "active_days": N,
                      "sessions": N},
    "support_tickets": {"ticket_id": S, "customer_id": S, "opened_at": T, "closed_at": T,
                        "category": S, "status": S, "channel": S},
    "complaints": {"complaint_id": S, "customer_id": S, "received_at": T, "contact_type": S,
                   "contact": S, "category": S, "severity": N},
    "orders": {"order_id": S, "customer_id": S, "ordered_at": T, "amount": F, "status": S},
    "survey_invitations": {"invitation_id": S, "customer_id": S, "survey_id": S,
                           "touchpoint": S, "channel": S, "sent_at": T, "trigger_id": S},
    "survey_responses": {"response_id": S, "customer_id": S, "invitation_id": S,
                         "survey_id": S, "channel": S, "respondent": S, "responded_at": T,
                         "nps": N, "csat": F, "effort": F, "comment": S},
    "interventions": {"intervention_id": S, "customer_id": S, "action": S, "assigned_at": T,
                      "rep_id": S, "cost": F, "control_group": B, "outcome": S},
}
DEFAULTS = {
    "segment": "consumer", "region": "north", "rep_id": "R1", "status": "active",
    "plan": "basic", "contract": "month_to_month", "list_price": 35.0, "price_change_pct": 0.0,
    "discount": 0.0, "amount": 35.0, "days_late": 0, "active_days": 20, "sessions": 10,
    "category": "technical", "channel": "email", "severity": 1, "contact_type": "email",
    "touchpoint": "relationship", "survey_id": "relationship-1", "nps": 8, "cost": 0.0,
    "control_group": False, "outcome": "accepted", "action": "service_recovery_call",
}


def _column(kind: pa.DataType, values: list) -> pa.Array:
    if kind == D:
        values = [None if v is None else pd.Timestamp(v).date() for v in values]
    elif kind == T:
        values = [None if v is None else pd.Timestamp(v, tz="UTC") for v in values]
    return pa.array(values, kind)


def write_tables(clean_dir: Path, **rows: list[dict]) -> Path:
    """Write every clean table; tables not given are empty, missing fields take defaults."""
    clean_dir.mkdir(parents=True, exist_ok=True)
    for table, schema in SCHEMAS.items():
        given = rows.get(table, [])
        cols = {}
        for i, (name, kind) in enumerate(schema.items()):
            # the first column is the table's own id: unique unless given
            values = [r.get(name, f"{table}-{k}" if i == 0 else DEFAULTS.get(name))
                      for k, r in enumerate(given)]
            cols[name] = _column(kind, values)
        pa_table = pa.table(cols, schema=pa.schema(list(schema.items())))
        pq.write_table(pa_table, clean_dir / f"{table}.parquet")
    return clean_dir


def monthly_invoices(customer_id: str, first: str, months: int, **fields) -> list[dict]:
    """One invoice on the first of each month (keeps a tiny world's history non-empty)."""
    dates = pd.date_range(first, periods=months, freq="MS")
    return [{"customer_id": customer_id, "invoice_date": d.date().isoformat(), **fields}
            for d in dates]
