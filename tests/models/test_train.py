"""A training run end to end: Feast training set -> model -> MLflow run, registry and gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow import MlflowClient

from features.services import CHURN_SERVICE, NPS_SERVICE
from models.registry import load_alias


@pytest.fixture(scope="module")
def churn_run(trained_world):
    return trained_world.runs["churn"]


@pytest.mark.slow
def test_churn_run_is_logged_with_everything_needed_to_compare_it(model_world, churn_run):
    run = MlflowClient().get_run(churn_run["run_id"])
    assert run.data.tags["feature_service"] == CHURN_SERVICE
    assert run.data.tags["data_version"].startswith(("md5:", "dvc:"))
    for name in ("valid_roc_auc", "valid_ece", "valid_brier", "valid_lift_top_decile",
                 "baseline_valid_roc_auc"):
        assert name in run.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/lift.png",
            "plots/shap_key_drivers.png"} <= artifacts
    metrics = json.loads((model_world.settings.data_dir / "metrics" / "train.json").read_text())
    assert metrics["churn"]["lightgbm"]["roc_auc"] == pytest.approx(run.data.metrics["valid_roc_auc"])


@pytest.mark.slow
def test_registered_champion_scores_raw_feature_rows(model_world, churn_run):
    model, version = load_alias("churn", model_world.settings)
    assert version == churn_run["version"]
    rows = model_world.churn.tail(50)
    p = model.predict(rows)
    assert ((p >= 0) & (p <= 1)).all() and len(p) == 50


@pytest.mark.slow
def test_baseline_is_logged_beside_the_model(model_world, churn_run):
    client = MlflowClient()
    exp = client.get_experiment_by_name("churn")
    runs = client.search_runs([exp.experiment_id], "tags.model_type = 'logistic_regression_baseline'")
    assert runs and "valid_roc_auc" in runs[0].data.metrics


@pytest.fixture(scope="module")
def nps_run(trained_world):
    return trained_world.runs["nps"]


@pytest.mark.slow
def test_nps_run_logs_the_corrected_model_gate_and_world_evaluation(model_world, nps_run):
    client = MlflowClient()
    run = client.get_run(nps_run["run_id"])
    assert run.data.tags["feature_service"] == NPS_SERVICE
    assert nps_run["gate"]["metric"] == "valid_respondent_mae"
    assert nps_run["gate"]["higher_is_better"] is False
    for name in ("valid_respondent_mae", "uncorrected_valid_respondent_mae", "latest_wave_nps",
                 "latest_wave_respondents_nps", "model_selection_gamma", "eval_nonresp_mae",
                 "eval_mean_abs_nps_error"):
        assert name in run.data.metrics, name
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/shap_key_drivers.png", "plots/company_nps_per_wave.png",
            "plots/predicted_vs_true_nps.png"} <= plots
    exp = client.get_experiment_by_name("nps")
    plain = client.search_runs([exp.experiment_id], "tags.model_type = 'lightgbm_respondents_only'")
    assert plain and "valid_respondent_mae" in plain[0].data.metrics
    # the company NPS interval holds the estimate; the survey touchpoint is not a customer driver
    c = nps_run["company_nps"]
    assert c["low"] <= c["nps"] <= c["high"]
    assert "Other factors" not in {d["label"] for d in nps_run["key_drivers"]}
    metrics = json.loads((model_world.settings.data_dir / "metrics" / "train.json").read_text())
    assert metrics["nps"]["valid"]["respondent_mae"] == pytest.approx(
        run.data.metrics["valid_respondent_mae"])


@pytest.mark.slow
def test_nps_champion_predicts_every_customer_with_class_probabilities(model_world, nps_run):
    model, version = load_alias("nps", model_world.settings)
    assert version == nps_run["version"]
    pred = model.predict(model_world.churn.tail(40))   # any customer rows, not only invitees
    assert pred["nps_pred"].between(0, 10).all()
    probs = pred[["p_detractor", "p_passive", "p_promoter"]].sum(axis=1)
    assert np.allclose(probs, 1.0)
