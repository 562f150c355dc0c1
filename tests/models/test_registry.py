"""MLflow tracking and the registry's champion gate, on a throw-away SQLite store."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.settings import load_settings
from features.services import CHURN_SERVICE, NPS_SERVICE
from models.registry import data_version, load_alias, log_model_run


@dataclass
class Doubler:
    factor: float

    def predict(self, frame: pd.DataFrame):
        return frame["x"].to_numpy() * self.factor


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings(data_dir=tmp_path_factory.mktemp("mlflow-data"))


def _log(settings, factor: float, auc: float, name: str = "churn"):
    return log_model_run(
        settings, experiment_name="churn", registered_name=name, model=Doubler(factor),
        params={"factor": factor, "lgbm": {"num_leaves": 8}}, metrics={"valid_roc_auc": auc},
        tags={"feature_service": CHURN_SERVICE, "data_version": "md5:test"},
        input_example=pd.DataFrame({"x": [1.0, 2.0]}), gate_metric="valid_roc_auc",
    )


def test_champion_moves_only_when_the_new_version_is_better(settings):
    first = _log(settings, 1.0, auc=0.70)
    assert first.gate["decision"] == "champion"
    worse = _log(settings, 2.0, auc=0.65)
    assert worse.gate == worse.gate | {"decision": "challenger", "champion_version": first.version}
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("churn", "champion").version) == first.version
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == worse.version
    better = _log(settings, 3.0, auc=0.75)
    assert better.gate["decision"] == "champion"
    model, version = load_alias("churn", settings)
    assert version == better.version and model.predict(pd.DataFrame({"x": [2.0]}))[0] == 6.0


def test_error_metric_gate_promotes_the_lower_value(settings):
    def log(factor: float, mae: float):
        return log_model_run(
            settings, experiment_name="nps", registered_name="nps-gate", model=Doubler(factor),
            params={"factor": factor}, metrics={"valid_mae": mae},
            tags={"feature_service": NPS_SERVICE, "data_version": "md5:test"},
            input_example=pd.DataFrame({"x": [1.0]}), gate_metric="valid_mae", higher_is_better=False)

    assert log(1.0, mae=1.3).gate["decision"] == "champion"
    assert log(2.0, mae=1.4).gate["decision"] == "challenger"
    assert log(3.0, mae=1.2).gate["decision"] == "champion"
    assert load_alias("nps-gate", settings)[0].factor == 3.0


def test_runs_carry_params_metrics_lineage_and_the_gate(settings):
    logged = _log(settings, 4.0, auc=0.5)
    run = MlflowClient().get_run(logged.run_id)
    assert run.data.params["lgbm.num_leaves"] == "8"
    assert run.data.metrics["valid_roc_auc"] == 0.5
    assert run.data.tags["feature_service"] == CHURN_SERVICE
    assert run.data.tags["gate.decision"] == "challenger"
    assert settings.tracking_uri.startswith("sqlite:///")
    assert mlflow.get_experiment_by_name("churn").artifact_location.startswith(
        (settings.mlflow_dir / "artifacts").resolve().as_uri())


def test_logged_model_loads_as_pyfunc_with_a_signature(settings):
    logged = _log(settings, 5.0, auc=0.1)
    pyfunc = mlflow.pyfunc.load_model(f"models:/churn/{logged.version}")
    assert list(pyfunc.predict(pd.DataFrame({"x": [1.0]}))) == [5.0]
    assert pyfunc.metadata.signature is not None


def test_data_version_changes_with_the_feature_tables(settings):
    settings.feature_dir.mkdir(parents=True, exist_ok=True)
    (settings.feature_dir / "customer_o.parquet").write_bytes(b"one")
    first = data_version(settings)
    (settings.feature_dir / "customer_o.parquet").write_bytes(b"two")
    assert data_version(settings) != first and first.startswith("md5:")


def test_a_training_that_fails_part_way_moves_no_champion(settings):
    from models.registry import CANDIDATE, one_training, write_metrics

    def log(factor: float, auc: float):
        return _log(settings, factor, auc, name="atomic-gate")

    first = log(1.0, auc=0.70)
    write_metrics(settings, "churn", {"auc": 0.70})
    metrics = settings.data_dir / "metrics" / "train.json"
    before = metrics.read_bytes()
    with pytest.raises(RuntimeError, match="the NPS step failed"), one_training(settings):
        better = log(2.0, auc=0.80)
        write_metrics(settings, "churn", {"auc": 0.80})
        raise RuntimeError("the NPS step failed")
    assert better.gate["decision"] == "champion"                       # it won, but the run did not finish
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("atomic-gate", "champion").version) == first.version
    assert str(client.get_model_version_by_alias("atomic-gate", CANDIDATE).version) == better.version
    assert metrics.read_bytes() == before
    with one_training(settings):
        best = log(3.0, auc=0.90)
    assert load_alias("atomic-gate", settings)[0].factor == 3.0 and best.version != first.version
    with pytest.raises(MlflowException):                               # the candidate alias is gone
        client.get_model_version_by_alias("atomic-gate", CANDIDATE)
