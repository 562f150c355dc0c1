"""A company's export, mapped by a YAML file alone, goes through every `cem` step: the
committed samples of IBM Telco and the e-commerce churn set (one observation window, no
surveys, no tickets, no interventions) reach scores, reasons and a reps' list; an event table
of the company's own reaches the churn model, and the missing tables' features do not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from configs.settings import load_settings
from features.services import CHURN_SERVICE
from features.sources.mapping import load_mapping
from features.store import feature_store, service_features
from features.transforms.present import absent_features
from features.transforms.schema import is_attribute
from models.bundle import load_champions
from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {"ibm_telco": ROOT / "tests/fixtures/ibm_telco_sample",
           "ecommerce": ROOT / "tests/fixtures/ecommerce_sample"}
runner = CliRunner()


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def mapped(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEM_TRAIN__SEARCH__TRIALS", "4")          # a small sample: a short search
        data = tmp_path_factory.mktemp(request.param) / "data"
        mapping = ROOT / "configs" / "sources" / f"{request.param}.yaml"
        outputs = {}
        for step in (["ingest", "--source", str(SAMPLES[request.param]), "--mapping", str(mapping)],
                     ["features"], ["train"], ["score"], ["tokens"]):
            result = runner.invoke(app, [*step, "--data-dir", str(data)])
            assert result.exit_code == 0, f"cem {step[0]}: {result.output}"
            outputs[step[0]] = result.output
        yield request.param, data, outputs


@pytest.mark.slow
def test_every_step_runs_and_says_what_the_data_supports(mapped):
    _, data, out = mapped
    assert "churn model (risk per customer): yes" in out["ingest"]
    assert "customer-grouped 5-fold cross-validation" in out["train"]
    assert "predicted-NPS model skipped" in out["train"] and "uplift models skipped" in out["train"]
    assert "no uplift model" in out["score"]
    report = json.loads((data / "clean" / "ingest_report.json").read_text())
    for name, table in report["tables"].items():
        assert table["rows_in"] == table["rows_kept"] + table["rows_quarantined"], name


@pytest.mark.slow
def test_active_customers_get_scores_reasons_and_a_list(mapped):
    _, data, _ = mapped
    crm = pd.read_parquet(data / "clean" / "crm_customers.parquet")
    engine = create_engine(f"sqlite:///{data / 'serving' / 'serving.db'}")
    with engine.connect() as conn:
        run = conn.execute(text("select run_id from scoring_runs where status = 'complete'")).scalar_one()
        scores = pd.read_sql(text(f"select * from customer_scores__{run}"), conn)
        alerts = pd.read_sql(text("select * from alerts where run_id = :r"), conn, params={"r": run})
    assert len(scores) == int((crm["status"] == "active").sum())
    assert scores["churn_probability"].between(0, 1).all() and scores["predicted_nps"].isna().all()
    assert scores["recommended_action"].isna().all()            # no measured effect, no action
    assert set(alerts["kind"]) == {"high_risk"} and set(alerts["rep_id"]) == {"unassigned"}
    listed = scores.set_index("customer_id").loc[alerts["customer_id"], "churn_probability"]
    assert listed.min() >= scores["churn_probability"].quantile(0.8)   # the riskiest are listed
    tokens = json.loads((data / "serving" / "tokens.json").read_text())
    assert set(tokens) == {"manager", "unassigned"}


@pytest.mark.slow
def test_the_company_columns_drive_the_model(mapped):
    name, _, out = mapped
    flat = " ".join(out["train"].split())              # rich wraps long lines
    drivers = flat.split("churn key drivers:")[1].split("predicted-NPS")[0]
    spec = load_mapping(ROOT / "configs" / "sources" / f"{name}.yaml")
    labels = [a.label for a in spec.attributes.values()]
    named = [label for label in labels if label in drivers]
    assert named, drivers      # the mapping's own labels name the key drivers


EVENTS = ROOT / "tests/fixtures/ecommerce_events"


@pytest.fixture(scope="module")
def with_events(tmp_path_factory):
    """The e-commerce sample plus a synthetic app-sessions table, mapped under ``events:``."""
    root = tmp_path_factory.mktemp("ecommerce_events")
    source = root / "source"
    shutil.copytree(SAMPLES["ecommerce"], source)
    shutil.copy(EVENTS / "app_sessions.csv", source)
    mapping = yaml.safe_load((ROOT / "configs/sources/ecommerce.yaml").read_text())
    mapping["files"]["sessions"] = {"path": "app_sessions.csv", "key": "customer"}
    mapping["events"] = {"app_sessions": {
        "file": "sessions", "label": "App sessions",
        "timestamp": {"column": "started_at", "date_format": "%d/%m/%Y %H:%M"},
        "measures": {"minutes": {"column": "duration_min", "label": "Minutes in the app"},
                     "crashes": {"column": "crash_count", "label": "App crashes"}}}}
    (root / "mapping.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    data = root / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEM_TRAIN__SEARCH__TRIALS", "4")
        for step in (["ingest", "--source", str(source), "--mapping", str(root / "mapping.yaml")],
                     ["features"], ["train"]):
            result = runner.invoke(app, [*step, "--data-dir", str(data)])
            assert result.exit_code == 0, f"cem {step[0]}: {result.output}"
        yield load_settings(data_dir=data)


@pytest.mark.slow
def test_an_event_table_reaches_the_churn_model(with_events):
    report = json.loads((with_events.clean_dir / "ingest_report.json").read_text())
    sessions = report["tables"]["events/app_sessions"]
    assert sessions["rows_in"] == sessions["rows_kept"] == 1221
    features = load_champions(with_events).churn.spec.features
    assert "evt_app_sessions_crashes_sum_365d" in features
    assert "attr_tenure_months" in features


@pytest.mark.slow
def test_missing_tables_have_no_features(with_events):
    served = service_features(feature_store(with_events), CHURN_SERVICE)
    gone = absent_features(["support_tickets", "orders", "product_usage", "billing_invoices",
                            "survey_invitations", "survey_responses", "complaints",
                            "interventions"])
    assert not set(gone) & set(served)
    assert [f for f in served if not is_attribute(f)] == ["segment", "region", "tenure_days"]
    assert not set(gone) & set(load_champions(with_events).churn.spec.features)
