"""IBM Telco importer on the committed 300-customer sample: import -> ingest -> features -> Feast.

The label must enter only through the CRM churn dates: no outcome column name or value
reaches a contract table, and shuffling the outcome columns changes nothing but
``crm_customers.status`` / ``churn_date``.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.ingest import TABLES, run_ingest
from features.services import CHURN_SERVICE
from features.sources.ibm_telco import OUTCOME_COLUMNS, TELCO_FILES, import_ibm_telco
from features.store import apply_definitions, feature_store, training_frame
from features.transforms import build_feature_tables

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "ibm_telco_sample"
Q = date(2022, 7, 1)
Q_UTC = pd.Timestamp(Q, tz="UTC")
AS_OF = Q + timedelta(days=100)
HISTORY = 12
NEVER_COPIED = (*OUTCOME_COLUMNS, "CLTV", "Satisfaction Score")


def read_telco(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / TELCO_FILES[name], dtype=str, keep_default_na=False)


def read_out(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in TABLES}


def pipeline(root: Path, source: Path, **kwargs) -> SimpleNamespace:
    """Import, ingest and build features under ``root`` (snapshots from the quarter start)."""
    settings = load_settings(data_dir=root)
    settings = settings.model_copy(update={"features": settings.features.model_copy(
        update={"first_snapshot_after_months": HISTORY})})
    written = import_ibm_telco(source, settings.raw_dir, Q, history_months=HISTORY, **kwargs)
    report = run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    rows = build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features, as_of=AS_OF)
    return SimpleNamespace(settings=settings, written=written, report=report, rows=rows,
                           out=read_out(settings.raw_dir),
                           labels=pd.read_parquet(settings.feature_dir / "churn_labels.parquet"))


@pytest.fixture(scope="module")
def telco(tmp_path_factory) -> SimpleNamespace:
    world = pipeline(tmp_path_factory.mktemp("telco"), SAMPLE)
    status = read_telco(SAMPLE, "status").set_index("Customer ID")
    services = read_telco(SAMPLE, "services").set_index("Customer ID")
    world.churn_value = status["Churn Value"].astype(int)
    world.tenure = services["Tenure in Months"].astype(int)
    world.services = services
    return world


def shuffled_copy(dst: Path, columns: tuple[str, ...], seed: int) -> Path:
    """The sample with each of ``columns`` of the status file permuted independently."""
    shutil.copytree(SAMPLE, dst)
    status = read_telco(SAMPLE, "status")
    rng = np.random.default_rng(seed)
    for col in columns:
        status[col] = status[col].to_numpy()[rng.permutation(len(status))]
    status.to_csv(dst / TELCO_FILES["status"], index=False)
    return dst


def test_ingest_keeps_every_row(telco):
    for table, rep in telco.report.tables.items():
        assert rep.rows_in == telco.written[table] == rep.rows_kept, table
        assert rep.rows_quarantined == 0 and not rep.extra_columns, (table, rep.reasons)


def test_counts_add_up(telco):
    n, w = len(telco.tenure), telco.written
    assert w["crm_customers"] == n == 300
    months = np.clip(telco.tenure - 3, 0, HISTORY).sum()         # months before the quarter
    assert w["billing_invoices"] == w["product_usage"] == months
    for table in ("support_tickets", "complaints", "orders", "survey_invitations",
                  "survey_responses", "interventions"):
        assert w[table] == 0, table
    crm = telco.out["crm_customers"].set_index("customer_id")
    assert (crm["status"] == "churned").sum() == telco.churn_value.sum()
    per_customer = telco.out["billing_invoices"].groupby("customer_id").size()
    expected = np.clip(telco.tenure - 3, 0, HISTORY)
    assert per_customer.reindex(expected.index, fill_value=0).equals(expected)


def test_no_outcome_column_name_or_value_reaches_a_table(telco):
    status = read_telco(SAMPLE, "status")
    text_values = set()
    for col in ("Churn Label", "Churn Category", "Churn Reason", "Customer Status"):
        text_values |= set(status[col]) - {""}
    for table, frame in telco.out.items():
        assert not set(frame.columns) & set(NEVER_COPIED), table
        cells = set(frame.to_numpy().ravel().tolist())
        assert not cells & text_values, (table, cells & text_values)


def test_shuffling_outcome_columns_changes_only_crm_churn(telco, tmp_path):
    shuffled = shuffled_copy(tmp_path / "src", NEVER_COPIED, seed=1)
    import_ibm_telco(shuffled, tmp_path / "out", Q, history_months=HISTORY)
    out = read_out(tmp_path / "out")
    for table in TABLES:
        a, b = telco.out[table], out[table]
        if table == "crm_customers":
            changed = [c for c in a.columns if not a[c].equals(b[c])]
            assert set(changed) == {"status", "churn_date"}
        else:
            pd.testing.assert_frame_equal(a, b, obj=table)
    value = read_telco(shuffled, "status").set_index("Customer ID")["Churn Value"]
    crm = out["crm_customers"].set_index("customer_id")
    assert ((crm["status"] == "churned") == (value.reindex(crm.index) == "1")).all()


def test_shuffling_all_but_churn_value_changes_nothing(telco, tmp_path):
    others = tuple(c for c in NEVER_COPIED if c != "Churn Value")
    import_ibm_telco(shuffled_copy(tmp_path / "src", others, seed=2), tmp_path / "out", Q,
                     history_months=HISTORY)
    for table, frame in read_out(tmp_path / "out").items():
        pd.testing.assert_frame_equal(telco.out[table], frame, obj=table)


def test_churn_dates_inside_the_quarter_and_after_signup(telco):
    crm = telco.out["crm_customers"]
    churned = crm[crm["status"] == "churned"]
    day = pd.to_datetime(churned["churn_date"])
    assert day.notna().all()
    assert (day >= pd.Timestamp(Q)).all() and (day <= pd.Timestamp(Q) + pd.Timedelta(days=90)).all()
    assert (day >= pd.to_datetime(churned["signup_date"])).all()
    assert (crm.loc[crm["status"] == "active", "churn_date"] == "").all()


def test_snapshot_at_quarter_start_holds_the_customers_of_before_the_quarter(telco):
    labels = telco.labels
    assert set(labels["event_timestamp"]) == {Q_UTC}               # the one labelled snapshot
    before = telco.tenure[telco.tenure >= 4].index                 # joined in the quarter: <= 3
    assert sorted(labels["customer_id"]) == sorted(before)
    joined = read_telco(SAMPLE, "status").query("`Customer Status` == 'Joined'")["Customer ID"]
    assert not set(joined) & set(labels["customer_id"])
    got = labels.set_index("customer_id")["churned_within_horizon"]
    assert got.equals(telco.churn_value.reindex(got.index).astype(got.dtype))


def test_training_frame_through_feast(telco):
    settings = telco.settings
    store = feature_store(settings)
    apply_definitions(store, settings)
    frame = training_frame(store, telco.labels, CHURN_SERVICE).set_index("customer_id")
    assert len(frame) == len(telco.labels) == 256
    services = telco.services.reindex(frame.index)
    charge = services["Monthly Charge"].astype(float)
    assert np.allclose(frame["monthly_charge"], charge)
    assert np.allclose(frame["usage_last_month"], services["Avg Monthly GB Download"].astype(float))
    months = services["Tenure in Months"].astype(int) - 3
    signup = [Q_UTC - pd.DateOffset(months=int(m)) for m in months]
    assert (frame["tenure_days"].to_numpy() == [(Q_UTC - s).days for s in signup]).all()
    contract = services["Contract"].map({"Month-to-Month": "month_to_month", "One Year": "one_year",
                                         "Two Year": "two_year"})
    assert frame["contract"].astype(str).equals(contract)
    assert frame["last_csat"].isna().all()                        # satisfaction stays out by default


def test_satisfaction_only_on_request(tmp_path):
    world = pipeline(tmp_path, SAMPLE, include_satisfaction=True)
    for table in ("survey_invitations", "survey_responses"):
        assert world.report.tables[table].rows_quarantined == 0
        assert world.report.tables[table].rows_kept == world.written[table] == 256
    x = pd.read_parquet(world.settings.feature_dir / "customer_x.parquet")
    x = x[x["event_timestamp"] == Q_UTC].set_index("customer_id")
    score = read_telco(SAMPLE, "status").set_index("Customer ID")["Satisfaction Score"].astype(float)
    assert x["last_csat"].equals(score.reindex(x.index).rename("last_csat"))
    assert world.rows["nps_labels"] == 256
