"""Clean outputs (dtypes, schema), the report, its JSON file, the Rich table, the callback."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from rich.table import Table

from configs.settings import IngestParams
from features.ingest import TABLES, TableReport, clean_schema, render_report, run_ingest
from tests.features.ingest.conftest import write_world
from tests.features.ingest.test_validation import seed_bad_rows


@pytest.fixture
def seeded_run(world, tmp_path):
    seed_bad_rows(world)
    src = write_world(world, tmp_path / "src", "csv")
    seen: list[str] = []
    report = run_ingest(src, tmp_path / "clean", tmp_path / "q", IngestParams(), seen.append)
    return report, tmp_path, seen


def test_counts_add_up_for_every_table(seeded_run):
    report, tmp_path, _ = seeded_run
    assert list(report.tables) == list(TABLES)
    for name, t in report.tables.items():
        assert t.rows_in == t.rows_kept + t.rows_quarantined
        assert len(pd.read_parquet(tmp_path / "clean" / f"{name}.parquet")) == t.rows_kept
        assert len(pd.read_parquet(tmp_path / "q" / f"{name}.parquet")) == t.rows_quarantined
    assert report.rows_quarantined == 29


def test_invariant_is_enforced():
    with pytest.raises(AssertionError, match="rows in"):
        TableReport("orders", "orders.csv", rows_in=3, rows_kept=1, rows_quarantined=1)


def test_on_table_is_called_once_per_table_in_order(seeded_run):
    _, _, seen = seeded_run
    assert seen == list(TABLES)


def test_clean_tables_match_the_declared_schema_and_dtypes(seeded_run):
    _, tmp_path, _ = seeded_run
    for name in TABLES:
        df = pd.read_parquet(tmp_path / "clean" / f"{name}.parquet")
        clean_schema(name).validate(df, lazy=True)  # pandera: the contract holds
    tickets = pq.read_schema(tmp_path / "clean" / "support_tickets.parquet")
    assert tickets.field("opened_at").type == pa.timestamp("us", tz="UTC")
    crm = pq.read_schema(tmp_path / "clean" / "crm_customers.parquet")
    assert crm.field("signup_date").type == pa.timestamp("us")
    responses = pd.read_parquet(tmp_path / "clean" / "survey_responses.parquet")
    assert str(responses["nps"].dtype) == "Int64" and str(responses["csat"].dtype) == "Int64"
    assert list(responses.columns)[-2:] == ["customer_id", "invitation_id"]
    interventions = pd.read_parquet(tmp_path / "clean" / "interventions.parquet")
    assert interventions["control_group"].dtype == bool


def test_naive_timestamps_are_utc(seeded_run):
    _, tmp_path, _ = seeded_run
    tickets = pd.read_parquet(tmp_path / "clean" / "support_tickets.parquet").set_index("ticket_id")
    assert tickets.loc["T1", "opened_at"] == pd.Timestamp("2024-03-01T09:00:00", tz="UTC")
    assert tickets.loc["T3", "opened_at"] == pd.Timestamp("2024-03-07T06:00:00", tz="UTC")
    assert pd.isna(tickets.loc["T2", "closed_at"])


def test_report_json(seeded_run):
    report, tmp_path, _ = seeded_run
    data = json.loads((tmp_path / "clean" / "ingest_report.json").read_text())
    assert data == json.loads(json.dumps(report.to_dict()))
    orders = data["tables"]["orders"]
    assert (orders["rows_in"], orders["rows_kept"], orders["rows_quarantined"]) == (3, 2, 1)
    assert orders["reasons"] == {"amount: must be >= 0": 1}
    assert data["identity_match_rate"] == report.identity_match_rate
    assert set(data["identity_match_rate_by_kind"]) == {"email", "phone", "app_id"}
    assert data["extra_columns"]["orders"] == []


def test_rich_table_lists_every_table_and_top_reasons(seeded_run):
    report, _, _ = seeded_run
    table = render_report(report)
    assert isinstance(table, Table) and table.row_count == len(TABLES)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "billing_invoices" in text and "customer_id: unknown customer: 2" in text
    assert "identity match rate" in text
