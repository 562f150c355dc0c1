"""The shipped mappings (configs/sources) on their committed samples, through ``run_ingest``.

The label must enter only through ``crm_customers.status``: no outcome column name or value
reaches a table, and shuffling the outcome columns changes nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import TABLES, run_ingest
from features.sources.mapping import load_mapping, stage_mapping

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
TELCO, TELCO_SAMPLE = ROOT / "configs/sources/ibm_telco.yaml", FIXTURES / "ibm_telco_sample"
ECOM, ECOM_SAMPLE = ROOT / "configs/sources/ecommerce.yaml", FIXTURES / "ecommerce_sample"
STATUS_FILE = "Telco_customer_churn_status.csv"
#: Outcome columns, and the survey answer and value estimate that are not mapped either.
TELCO_HIDDEN = ("Churn Label", "Churn Value", "Churn Score", "Churn Category", "Churn Reason",
                "Customer Status", "Satisfaction Score", "CLTV")


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def ingest(mapping: Path, source: Path, root: Path) -> SimpleNamespace:
    """Stage and ingest under ``root``; the staged text and the clean tables."""
    staged = stage_mapping(mapping, source, root / "staged")
    report = run_ingest(root / "staged", root / "clean", root / "quarantine", IngestParams())
    return SimpleNamespace(
        staged_rows=staged, report=report,
        staged={t: read_csv(root / "staged" / f"{t}.csv") for t in staged},
        clean={t: pd.read_parquet(root / "clean" / f"{t}.parquet") for t in report.tables})


@pytest.fixture(scope="module")
def telco(tmp_path_factory) -> SimpleNamespace:
    return ingest(TELCO, TELCO_SAMPLE, tmp_path_factory.mktemp("telco"))


def shuffled(dst: Path, columns: tuple[str, ...], seed: int) -> Path:
    """The Telco sample with each of ``columns`` of the status file permuted independently."""
    shutil.copytree(TELCO_SAMPLE, dst)
    status = read_csv(TELCO_SAMPLE / STATUS_FILE)
    rng = np.random.default_rng(seed)
    for col in columns:
        status[col] = status[col].to_numpy()[rng.permutation(len(status))]
    status.to_csv(dst / STATUS_FILE, index=False)
    return dst


def test_telco_counts_add_up(telco):
    status = read_csv(TELCO_SAMPLE / STATUS_FILE).set_index("Customer ID")
    crm = telco.report.tables["crm_customers"]
    assert telco.staged_rows == {"crm_customers": 300, "customer_attributes": 300}
    assert (crm.rows_in, crm.rows_kept, crm.rows_quarantined) == (300, 300, 0)
    assert telco.report.missing_tables == [t for t in TABLES if t != "crm_customers"]
    clean = telco.clean["crm_customers"].set_index("customer_id")
    churned = (clean["status"] == "churned")
    assert churned.equals((status["Churn Value"] == "1").reindex(clean.index).rename("status"))
    assert churned.sum() == 82 and clean["churn_date"].isna().all()


def test_telco_signup_is_the_export_date_minus_tenure(telco):
    services = read_csv(TELCO_SAMPLE / "Telco_customer_churn_services.csv").set_index("Customer ID")
    clean = telco.clean["crm_customers"].set_index("customer_id")
    tenure = services["Tenure in Months"].astype(int).reindex(clean.index)
    export = pd.Timestamp("2022-09-30")
    want = [export - pd.DateOffset(months=m) for m in tenure]
    assert (clean["signup_date"].to_numpy() == pd.DatetimeIndex(want).to_numpy()).all()


def test_no_outcome_column_name_or_value_reaches_a_table(telco):
    status = read_csv(TELCO_SAMPLE / STATUS_FILE)
    text_values = set()
    for col in ("Churn Label", "Churn Category", "Churn Reason", "Customer Status"):
        text_values |= set(status[col]) - {""}
    for table, frame in {**telco.staged, **telco.clean}.items():
        assert not set(frame.columns) & set(TELCO_HIDDEN), table
        cells = set(frame.astype(str).to_numpy().ravel().tolist())
        assert not cells & text_values, (table, cells & text_values)


def test_shuffling_outcome_columns_changes_only_crm_status(telco, tmp_path):
    out = ingest(TELCO, shuffled(tmp_path / "src", TELCO_HIDDEN, seed=1), tmp_path)
    for table, frame in telco.staged.items():
        other = out.staged[table]
        changed = [c for c in frame.columns if not frame[c].equals(other[c])]
        assert changed == (["status"] if table == "crm_customers" else []), table
    status = read_csv(tmp_path / "src" / STATUS_FILE).set_index("Customer ID")
    crm = out.clean["crm_customers"].set_index("customer_id")
    assert ((crm["status"] == "churned") == (status["Customer Status"] == "Churned")
            .reindex(crm.index)).all()


def test_shuffling_everything_but_the_status_source_changes_nothing(telco, tmp_path):
    others = tuple(c for c in TELCO_HIDDEN if c != "Customer Status")
    out = ingest(TELCO, shuffled(tmp_path / "src", others, seed=2), tmp_path)
    for table, frame in telco.staged.items():
        pd.testing.assert_frame_equal(frame, out.staged[table], obj=table)


def test_ecommerce_keeps_customers_without_tenure(tmp_path):
    raw = read_csv(ECOM_SAMPLE / "ecommerce_churn.csv").set_index("CustomerID")
    out = ingest(ECOM, ECOM_SAMPLE, tmp_path)
    crm_report = out.report.tables["crm_customers"]
    assert (crm_report.rows_in, crm_report.rows_kept, crm_report.rows_quarantined) == (300, 300, 0)
    crm = out.clean["crm_customers"].set_index("customer_id")
    assert crm["signup_date"].isna().sum() == (raw["Tenure"] == "").sum() == 11
    assert (crm["status"] == "churned").sum() == (raw["Churn"] == "1").sum() == 49
    assert set(crm["region"]) == {"city_tier_1", "city_tier_2", "city_tier_3"}
    assert crm["rep_id"].isna().all()                       # no reps in the data: unassigned
    staged = out.staged["crm_customers"]
    assert "Churn" not in staged.columns and set(staged["status"]) == {"churned", "active"}


def test_shipped_mappings_declare_their_outcome_columns():
    assert set(load_mapping(TELCO).never_features) == set(TELCO_HIDDEN[:6])
    assert load_mapping(ECOM).never_features == ["Churn"]
