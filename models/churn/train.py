"""Training runs: get the training set from Feast, train, explain, log and register.

Thin glue over the model modules (churn, nps, explain, drivers, plots) and the
registry; the Prefect train flow and `cem train` call these two functions.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.services import CHURN_SERVICE
from features.store import feature_store, service_features, training_frame
from models import registry
from models.churn.metrics import lift_table
from models.churn.model import train_churn
from models.churn.plots import calibration_figure, lift_figure, roc_figure
from models.drivers import driver_figure, key_drivers

log = logging.getLogger(__name__)
SHAP_ROWS = 5000   # rows explained for the population key drivers (TreeSHAP is the slow part)


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def explain_sample(model, frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Contributions of a sample of validation rows, for the population key drivers."""
    sample = frame.sample(n=min(SHAP_ROWS, len(frame)), random_state=seed)
    return sample, model.contributions(sample)


def training_rows(frame: pd.DataFrame, split: dict) -> pd.DataFrame:
    """The rows the models learnt from: snapshots up to the last one of the training parts."""
    last = max(pd.Timestamp(split[part]["last"], tz="UTC") for part in ("fit", "stop", "calib"))
    return frame[frame["event_timestamp"] <= last]


def train_and_log_churn(settings: Settings, client=None) -> dict:
    """Train the churn model and its baseline, log both, register and gate the model.

    ``client``: a Dask client when ``cluster.address`` is set: the final boosters are then
    fitted on its workers unless ``train.cluster_fit`` is ``local`` (the choice is logged as
    the run's ``cluster_fit`` parameter; docs/cluster.md#training-on-the-cluster).
    """
    from models.churn.distributed import churn_fitter

    fitter = churn_fitter(settings.train, client)
    log.info("churn: final boosters fitted %s", "on the Dask cluster" if fitter.name == "dask"
             else "in this process")
    store = feature_store(settings)
    labels = pd.read_parquet(settings.feature_dir / "churn_labels.parquet")
    frame = training_frame(store, labels, CHURN_SERVICE)
    features = service_features(store, CHURN_SERVICE)
    result = train_churn(frame, features, settings.train, settings.features.churn_horizon_days,
                         fitter=fitter)
    valid = frame[frame["event_timestamp"] >= pd.Timestamp(result.split["valid"]["first"], tz="UTC")]
    sample, contribs = explain_sample(result.model, valid, settings.train.seed)
    drivers = key_drivers(contribs, result.model.spec.features, result.model.spec.attributes)
    tags = {"feature_service": CHURN_SERVICE, "data_version": registry.data_version(settings)}
    metrics = _prefixed(result.metrics["lightgbm"], "valid_") | _prefixed(
        result.metrics["baseline"], "baseline_valid_")
    scheme = result.split["scheme"]
    named = ("out-of-time validation" if scheme["kind"] == "out_of_time"
             else f"customer {scheme['folds']}-fold CV")
    figures = {"roc": roc_figure(result.predictions, named),
               "calibration": calibration_figure(result.predictions, scheme=named),
               "lift": lift_figure(result.predictions, scheme=named),
               "shap_key_drivers": driver_figure(drivers, "Churn: key drivers (mean |SHAP|)")}
    y, p = result.predictions["lightgbm"]
    logged = registry.log_model_run(
        settings, experiment_name="churn", registered_name="churn", model=result.model,
        params={**result.params, "best_iteration": result.best_iteration, "split": result.split},
        metrics=metrics, tags=tags | {"model_type": "lightgbm"},
        input_example=sample[features].head(5), figures=figures,
        tables={"key_drivers": drivers, "lift": lift_table(y, p)},
        gate_metric="valid_roc_auc",
        datasets={"training": training_rows(frame, result.split), "validation": valid},
    )
    registry.log_trials(settings, logged.run_id, result.trials, "inner_auc")
    registry.log_metrics_run(settings, experiment_name="churn", run_name="logistic-baseline",
                             metrics=_prefixed(result.metrics["baseline"], "valid_"),
                             tags=tags | {"model_type": "logistic_regression_baseline"})
    summary = {"lightgbm": result.metrics["lightgbm"], "baseline": result.metrics["baseline"],
               "version": logged.version, "gate": logged.gate, "run_id": logged.run_id,
               "key_drivers": drivers.head(5)[["label", "share"]].to_dict("records"),
               "validation": result.split["scheme"]}
    registry.write_metrics(settings, "churn", {k: summary[k] for k in ("lightgbm", "baseline")})
    return summary
