"""`cem ingest` on broken file exports: a one-line message naming the file (and column),
exit code 2, no traceback, the previous output untouched; or, where rows can be kept,
every bad row quarantined with its reason and rows in = kept + quarantined."""

from __future__ import annotations

import pytest

from tests.badinput import exports as bad
from tests.badinput.conftest import fingerprint, leftovers, quarantined, report

STOPS = [   # (broken export, what the one line must say)
    (bad.latin1_byte_deep_in_a_csv, ["survey_responses.csv", "not utf-8 text at line 2",
                                     "encoding"]),
    (bad.latin1_byte_in_a_header, ["crm_customers.csv", "line 1", "encoding"]),
    (bad.corrupt_parquet_body, ["orders.parquet", "cannot read the parquet file"]),
    (bad.truncated_parquet, ["crm_customers.parquet", "cannot read the parquet file"]),
    (bad.text_named_parquet, ["billing_invoices.parquet", "cannot read the parquet file"]),
    (bad.empty_crm_file, ["crm_customers.csv", "empty file"]),
    (bad.ragged_csv_row, ["support_tickets.csv", "cannot read the csv file", "expected 7"]),
    (bad.unclosed_quote, ["orders.csv", "cannot read the csv file"]),
    (bad.missing_customer_id_column, ["crm_customers.csv", "missing required column(s) "
                                                           "customer_id"]),
    (bad.pipe_delimited_crm, ["crm_customers.csv", "customer_id", "delimiter"]),
    (bad.no_crm_table, ["crm_customers.csv", "missing source table 'crm_customers'"]),
    (bad.optional_table_without_its_key, ["orders.csv", "missing required column(s) "
                                                        "order_id"]),
    (bad.crm_without_status_or_churn_date, ["crm_customers.csv", "status", "churn_date"]),
    (bad.semicolon_csv_missing_a_column, ["crm_customers.csv", "missing required column(s) "
                                                               "customer_id"]),
]


@pytest.mark.parametrize("broken, expected", STOPS, ids=[b.__name__ for b, _ in STOPS])
def test_a_broken_file_stops_ingest_in_one_line_and_writes_nothing(broken, expected, cem,
                                                                   tmp_path):
    before = fingerprint(cem.data_dir)
    broken(tmp_path / "src")
    outcome = cem("ingest", "--source", str(tmp_path / "src"))
    assert outcome.code == 2, outcome.text
    assert "Traceback" not in outcome.text
    said = [line for line in outcome.lines if "ingest stopped" in line or "failed" in line]
    assert len(said) == 1, outcome.text
    for part in expected:
        assert part in said[0].lower(), said[0]
    assert fingerprint(cem.data_dir) == before
    assert leftovers(cem.data_dir) == []


KEEPS = [   # (broken export, table, reason of the quarantined rows, rows quarantined)
    (bad.orders_in_2098, "orders", "ordered_at: after the export date", 1),
    (bad.responses_in_2099, "survey_responses", "responded_at: after the export date", 1),
    (bad.usage_in_2099, "product_usage", "month: after the export date", 1),
    (bad.signup_in_2098, "crm_customers", "signup_date: after the export date", 1),
    (bad.orders_after_observed_until, "orders", "ordered_at: after the export date "
                                                "(2024-06-30)", 1),
    (bad.header_only_orders, "orders", None, 0),
    (bad.semicolon_crm_with_bom, "crm_customers", None, 0),
    (bad.tab_delimited_orders_with_crlf, "orders", None, 0),
    (bad.bom_comma_invoices, "billing_invoices", None, 0),
]


@pytest.mark.parametrize("broken, table, reason, n", KEEPS, ids=[k[0].__name__ for k in KEEPS])
def test_bad_rows_are_quarantined_with_their_reason_and_counted(broken, table, reason, n, cem,
                                                                tmp_path):
    broken(tmp_path / "src")
    outcome = cem("ingest", "--source", str(tmp_path / "src"))
    assert outcome.code == 0, outcome.text
    assert "Traceback" not in outcome.text
    tables = report(cem.data_dir)["tables"]
    for name, t in tables.items():
        assert t["rows_in"] == t["rows_kept"] + t["rows_quarantined"], name
    q = quarantined(cem.data_dir, table)
    assert len(q) == n == tables[table]["rows_quarantined"]
    assert all(r.startswith(reason) for r in q["_reason"]) if reason else q.empty
    if broken is not bad.header_only_orders:
        assert tables[table]["rows_kept"] > 0
    assert leftovers(cem.data_dir) == []


def test_a_header_only_table_is_reported_as_empty(cem, tmp_path):
    bad.header_only_orders(tmp_path / "src")
    outcome = cem("ingest", "--source", str(tmp_path / "src"))
    assert report(cem.data_dir)["empty_tables"] == ["orders"]
    assert any("empty tables" in line and "orders" in line for line in outcome.lines)


def test_a_company_file_in_another_encoding_is_named_with_the_setting(cem, tmp_path):
    before = fingerprint(cem.data_dir)
    bad.cp1252_city(tmp_path / "src")
    outcome = cem("ingest", "--source", str(tmp_path / "src"),
                  "--mapping", str(bad.TELCO_MAPPING))
    assert outcome.code == 2 and "Traceback" not in outcome.text
    said = [line for line in outcome.lines if "ingest stopped" in line]
    assert len(said) == 1, outcome.text
    assert bad.LOCATION in said[0] and "line 2" in said[0] and "encoding:" in said[0]
    assert fingerprint(cem.data_dir) == before and leftovers(cem.data_dir) == []


def test_the_encoding_setting_reads_that_file(cem, tmp_path):
    bad.cp1252_city(tmp_path / "src")
    mapping = bad.mapping_with_encoding(tmp_path / "telco.yaml", "cp1252")
    outcome = cem("ingest", "--source", str(tmp_path / "src"), "--mapping", str(mapping))
    assert outcome.code == 0, outcome.text
    crm = report(cem.data_dir)["tables"]["crm_customers"]
    assert crm["rows_in"] == crm["rows_kept"] + crm["rows_quarantined"] and crm["rows_kept"] > 0


def test_a_company_file_with_semicolons_and_a_bom_is_read(cem, tmp_path):
    bad.semicolon_status_with_bom(tmp_path / "src")
    outcome = cem("ingest", "--source", str(tmp_path / "src"),
                  "--mapping", str(bad.TELCO_MAPPING))
    assert outcome.code == 0, outcome.text
    crm = report(cem.data_dir)["tables"]["crm_customers"]
    assert crm["rows_in"] == crm["rows_kept"] + crm["rows_quarantined"] and crm["rows_kept"] > 0
