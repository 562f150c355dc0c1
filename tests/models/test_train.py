"""A training run end to end: Feast training set -> model -> MLflow run, registry and gate."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from models.registry import load_alias
from models.train import train_and_log_churn


@pytest.fixture(scope="module")
def churn_run(model_world):
    return train_and_log_churn(model_world.settings)


@pytest.mark.slow
def test_churn_run_is_logged_with_everything_needed_to_compare_it(model_world, churn_run):
    run = MlflowClient().get_run(churn_run["run_id"])
    assert run.data.tags["feature_service"] == "churn_v1"
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
