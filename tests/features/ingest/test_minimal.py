"""The minimal contract: only crm_customers (customer_id + status or churn_date) is required;
a missing optional table or column is reported, not an error, and no row is lost to it."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from configs.settings import FeaturesParams, IngestParams
from features.ingest import SourceContractError, run_ingest
from features.ingest.coverage import coverage_lines
from features.transforms import build_feature_tables
from features.transforms.inputs import COLUMNS, load_clean, read_table
from tests.features.ingest.conftest import write_world

OPTIONAL = ("orders", "survey_invitations", "survey_responses", "interventions")


def run(frames, tmp_path, fmt="csv"):
    src = write_world(frames, tmp_path / "src", fmt)
    return run_ingest(src, tmp_path / "clean", tmp_path / "q", IngestParams())


def test_missing_optional_tables_are_reported_and_leave_no_files(world, fmt, tmp_path):
    for table in OPTIONAL:
        del world[table]
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "orders.parquet").write_bytes(b"stale")   # from an earlier run
    report = run(world, tmp_path, fmt)
    assert report.missing_tables == list(OPTIONAL)
    assert list(report.tables) == [t for t in world]
    for t in report.tables.values():
        assert t.rows_in == t.rows_kept + t.rows_quarantined
    for table in OPTIONAL:
        assert not (tmp_path / "clean" / f"{table}.parquet").exists()
        assert not (tmp_path / "q" / f"{table}.parquet").exists()
    assert report.to_dict()["missing_tables"] == list(OPTIONAL)


def test_responses_without_invitations_are_quarantined_not_failing(world, tmp_path):
    del world["survey_invitations"]
    report = run(world, tmp_path)
    responses = report.tables["survey_responses"]
    assert responses.rows_kept == 0 and responses.rows_quarantined == 4
    assert "survey_id: no invitation" in next(iter(responses.reasons))


def test_crm_customers_is_required(world, tmp_path):
    del world["crm_customers"]
    with pytest.raises(SourceContractError, match="missing source table 'crm_customers'"):
        run(world, tmp_path)
    assert not (tmp_path / "clean").exists()


def test_crm_needs_a_status_or_a_churn_date(world, tmp_path):
    world = {"crm_customers": world["crm_customers"].drop(columns=["status", "churn_date"])}
    with pytest.raises(SourceContractError) as err:
        run(world, tmp_path)
    assert f"{tmp_path / 'src' / 'crm_customers.csv'}: needs a status or a churn_date column" in str(
        err.value)


def test_minimal_crm_keeps_every_customer(tmp_path):
    crm = pd.DataFrame({"customer_id": ["C1", "C2", "C3"],
                        "signup_date": ["2023-01-01", None, "2023-03-01"],
                        "status": ["active", "churned", "churned"]})
    report = run({"crm_customers": crm}, tmp_path)
    t = report.tables["crm_customers"]
    assert (t.rows_in, t.rows_kept, t.rows_quarantined) == (3, 3, 0)   # no churn dates exported
    clean = pd.read_parquet(tmp_path / "clean" / "crm_customers.parquet")
    assert clean["signup_date"].isna().tolist() == [False, True, False]
    assert clean[["segment", "region", "rep_id", "churn_date"]].isna().all().all()


def test_status_is_derived_from_churn_dates_when_absent(tmp_path):
    crm = pd.DataFrame({"customer_id": ["C1", "C2"], "churn_date": [None, "2024-02-01"]})
    run({"crm_customers": crm}, tmp_path)
    clean = pd.read_parquet(tmp_path / "clean" / "crm_customers.parquet")
    assert clean["status"].tolist() == ["active", "churned"]


def test_churned_without_date_still_quarantined_when_the_export_has_churn_dates(world, tmp_path):
    crm = world["crm_customers"].astype(object)
    crm.loc[0, "status"] = "churned"                      # C1: churned, churn_date empty
    report = run({"crm_customers": crm}, tmp_path)
    assert report.tables["crm_customers"].reasons == {
        "churn_date: required when status is churned": 1}


def test_coverage_says_what_missing_tables_cost():
    lines = coverage_lines(["crm_customers", "billing_invoices"], ["survey_invitations",
                                                                   "survey_responses",
                                                                   "interventions"])
    text = "\n".join(lines)
    assert "tables found: crm_customers, billing_invoices" in text
    assert "predicted-satisfaction model (NPS of non-respondents): skipped" in text
    assert "no survey tables: the predicted-satisfaction model is skipped" in text
    assert "no interventions: no uplift model, reps' lists ranked by risk x value" in text
    assert "churn model (risk per customer): yes" in text


def test_feature_inputs_read_a_missing_table_as_empty(world, tmp_path):
    for table in OPTIONAL:
        del world[table]
    run(world, tmp_path)
    clean = load_clean(tmp_path / "clean")
    assert clean.n == 4
    for table in OPTIONAL:
        assert clean.tables[table].empty, table
    assert "answered_at" in clean.tables["survey_invitations"].columns
    rows = build_feature_tables(tmp_path / "clean", tmp_path / "features",
                                FeaturesParams(first_snapshot_after_months=1))
    assert rows["customer_fused"] > 0 and rows["nps_labels"] == 0


def test_absent_tables_read_with_the_clean_types(world, tmp_path):
    run(world, tmp_path)
    for name, columns in COLUMNS.items():
        empty = read_table(tmp_path / "nowhere", name, columns)
        clean = pq.read_schema(tmp_path / "clean" / f"{name}.parquet")
        assert empty.num_rows == 0
        for col in columns:
            assert empty.schema.field(col).type == clean.field(col).type, (name, col)
