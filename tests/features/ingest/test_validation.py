"""Row validation: seeded bad rows land in quarantine with exact counts and reasons."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.features.ingest.conftest import add_rows

NULL = None


def seed_bad_rows(frames: dict) -> dict[str, int]:
    """Append bad rows to every table; returns the expected quarantine count per table."""
    add_rows(frames, "crm_customers", [
        ("", "2023-01-01", "consumer", "north", "R1", NULL, NULL, NULL, "active", NULL),
        ("C1", "2023-01-01", "consumer", "north", "R1", NULL, NULL, NULL, "active", NULL),
        ("C90", "2023-01-01", "gold", "north", "R1", NULL, NULL, NULL, "active", NULL),
        ("C91", "2023-01-01", "consumer", "north", "R1", NULL, NULL, NULL, "churned", NULL),
        ("C92", "2023-01-01", "consumer", "north", "R1", NULL, NULL, NULL, "churned",
         "2022-12-31"),
        ("C93", "2023-02-30", "consumer", "north", "R1", NULL, NULL, NULL, "active", NULL),
    ])
    add_rows(frames, "billing_invoices", [
        ("INV90", "C99", "2024-01-01", "basic", "one_year", NULL, 1.0, 0.0, 0.0, 1.0, 0),
        ("INV91", "C1", "2024-01-01", "basic", "one_year", NULL, -5.0, 0.0, 0.0, 1.0, 0),
        ("INV1", "C1", "2024-01-01", "basic", "one_year", NULL, 1.0, 0.0, 0.0, 1.0, 0),
        ("INV92", "C1", "2024-01-01", "basic", "one_year", NULL, 1.0, 0.0, 0.0, 1.0, "2.5"),
        ("INV93", "C1", "2024-01-01", "basic", "one_year", NULL, 1.0, 0.0, 0.0, "abc", 0),
        ("INV94", "C90", "2024-01-01", "basic", "one_year", NULL, 1.0, 0.0, 0.0, 1.0, 0),
        ("INV95", "C1", "2024-01-01", "gold", "one_year", NULL, -1.0, 0.0, 0.0, 1.0, 0),
    ])
    add_rows(frames, "product_usage", [
        ("C2", "2024-02-01", 1.0, 32, 1),
        ("C2", "2024-03-15", 1.0, 3, 1),
        ("C1", "2024-01-01", 1.0, 3, 1),
    ])
    add_rows(frames, "support_tickets", [
        ("T90", "C1", "2024-03-02T10:00:00", "2024-03-02T09:00:00", "billing", "resolved", "chat"),
        ("T91", "C1", "yesterday", NULL, "billing", "open", "chat"),
        ("T92", "C1", "2024-03-02T10:00:00", NULL, "billing", "pending", "chat"),
    ])
    add_rows(frames, "complaints", [
        ("K90", "2024-04-01T10:00:00", "email", "bob@example.com", "x", 4),
        ("K91", "2024-04-01T10:00:00", "fax", "bob@example.com", "x", 1),
    ])
    add_rows(frames, "orders", [("O90", "C1", "2024-02-10T15:00:00", -1.0, "delivered")])
    add_rows(frames, "survey_invitations", [
        ("I90", "C2", "s-1", "relationship", "fax", "2024-06-01T08:00:00", NULL),
        ("I91", "C2", "s-1", "relationship", "sms", NULL, NULL),
    ])
    add_rows(frames, "survey_responses", [
        ("S90", "support-2024-03", "sms", "2125550199", "2024-03-07T10:00:00", 11, NULL, NULL,
         NULL),
        ("S91", "support-2024-03", "sms", "2125550199", "2024-03-07T10:00:00", NULL, NULL, NULL, NULL),
        ("S92", "support-2024-03", "sms", "2125550199", "2024-03-07T10:00:00", 5, 0, 1, NULL),
    ])
    add_rows(frames, "interventions", [
        ("A90", "C1", "plan_upgrade", "2024-05-01T09:00:00", "R1", 1.0, "maybe", "accepted"),
        ("A91", "C1", "plan_upgrade", "2024-05-01T09:00:00", "R1", 1.0, "true", "lost"),
    ])
    return {"crm_customers": 6, "billing_invoices": 7, "product_usage": 3, "support_tickets": 3,
            "complaints": 2, "orders": 1, "survey_invitations": 2, "survey_responses": 3,
            "interventions": 2}


EXPECTED_REASONS = {
    ("crm_customers", 4): "customer_id: must not be null",
    ("crm_customers", 5): "customer_id: duplicate key (first occurrence kept)",
    ("crm_customers", 6): "segment: must be one of consumer, small_business, enterprise",
    ("crm_customers", 7): "churn_date: required when status is churned",
    ("crm_customers", 8): "churn_date: before signup_date",
    ("crm_customers", 9): "signup_date: not a valid date (YYYY-MM-DD)",
    ("billing_invoices", 4): "customer_id: unknown customer (not in crm_customers)",
    ("billing_invoices", 5): "list_price: must be >= 0",
    ("billing_invoices", 6): "invoice_id: duplicate key (first occurrence kept)",
    ("billing_invoices", 7): "days_late: not an integer",
    ("billing_invoices", 8): "amount: not a finite number",
    ("billing_invoices", 9): "customer_id: unknown customer (not in crm_customers)",
    ("billing_invoices", 10): "plan: must be one of basic, standard, premium; "
                              "list_price: must be >= 0",
    ("product_usage", 4): "active_days: must be between 0 and 31",
    ("product_usage", 5): "month: not the first day of a month",
    ("product_usage", 6): "customer_id+month: duplicate key (first occurrence kept)",
    ("support_tickets", 3): "closed_at: before opened_at",
    ("support_tickets", 4): "opened_at: not a valid ISO 8601 timestamp",
    ("support_tickets", 5): "status: must be one of resolved, unresolved, open",
    ("complaints", 3): "severity: must be between 1 and 3",
    ("complaints", 4): "contact_type: must be one of email, phone",
    ("orders", 2): "amount: must be >= 0",
    ("survey_invitations", 5): "channel: must be one of email, sms, app",
    ("survey_invitations", 6): "sent_at: must not be null",
    ("survey_responses", 4): "nps: must be between 0 and 10",
    ("survey_responses", 5): "nps, csat, effort: no score (a response needs at least one)",
    ("survey_responses", 6): "csat: must be between 1 and 5",
    ("interventions", 2): "control_group: not a boolean (true/false)",
    ("interventions", 3): "outcome: must be one of accepted, declined, no_answer, "
                          "complaint_after_contact, holdout",
}


def test_seeded_bad_rows_are_quarantined_with_exact_counts(world, fmt, ingest):
    rows_in = {t: len(df) for t, df in world.items()}
    expected = seed_bad_rows(world)
    for df in world.values():  # an extra column: the source position of every row
        df["_src_row"] = range(len(df))
    report, clean, quarantine = ingest(world, fmt)
    for table, n_bad in expected.items():
        t = report.tables[table]
        assert t.rows_quarantined == n_bad, (table, quarantine[table]["_reason"].tolist())
        assert t.rows_kept == rows_in[table]
        assert len(quarantine[table]) == n_bad and len(clean[table]) == rows_in[table]
    for (table, row), reason in EXPECTED_REASONS.items():
        q = quarantine[table]
        got = q.loc[q["_src_row"].astype(int) == row, "_reason"]
        assert got.tolist() == [reason], (table, row)


def test_quarantine_keeps_original_values_and_columns(world, fmt, ingest):
    seed_bad_rows(world)
    _, _, quarantine = ingest(world, fmt)
    q = quarantine["crm_customers"]
    assert list(q.columns) == [*world["crm_customers"].columns, "_reason"]
    bad_date = q.loc[q["customer_id"] == "C93", "signup_date"]
    assert bad_date.tolist() == ["2023-02-30"]  # the raw value, not NaT
    assert q.loc[q["customer_id"] == "C1", "segment"].tolist() == ["consumer"]


def test_reason_counts_in_report(world, fmt, ingest):
    seed_bad_rows(world)
    report, _, _ = ingest(world, fmt)
    billing = report.tables["billing_invoices"].reasons
    assert billing["customer_id: unknown customer"] == 2
    assert billing["list_price: must be >= 0"] == 2  # one row has two reasons
    assert sum(billing.values()) == 8
    assert list(billing.values()) == sorted(billing.values(), reverse=True)


def test_first_valid_occurrence_claims_the_key(world, ingest):
    add_rows(world, "orders", [
        ("O3", "C1", "not a time", 5.0, "delivered"),
        ("O3", "C1", "2024-02-12T15:00:00", 5.0, "delivered"),
        ("O3", "C2", "2024-02-13T15:00:00", 6.0, "delivered"),
    ])
    report, clean, quarantine = ingest(world)
    kept = clean["orders"].set_index("order_id")
    assert kept.loc["O3", "customer_id"] == "C1"
    assert kept.loc["O3", "ordered_at"] == pd.Timestamp("2024-02-12T15:00:00", tz="UTC")
    assert sorted(quarantine["orders"]["_reason"]) == [
        "order_id: duplicate key (first occurrence kept)",
        "ordered_at: not a valid ISO 8601 timestamp",
    ]
    assert report.tables["orders"].rows_quarantined == 2


@pytest.mark.parametrize("value, ok", [("2024-03-01T10:00:00+02:00", True), ("2024-13-01", False)])
def test_timestamp_offsets_are_converted_to_utc(world, ingest, value, ok):
    add_rows(world, "orders", [("O9", "C1", value, 5.0, "delivered")])
    _, clean, quarantine = ingest(world, "csv")
    got = clean["orders"].set_index("order_id")
    if ok:
        assert got.loc["O9", "ordered_at"] == pd.Timestamp("2024-03-01T08:00:00", tz="UTC")
    else:
        assert "O9" not in got.index and len(quarantine["orders"]) == 1
