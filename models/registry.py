"""All MLflow code of the project: tracking, model logging, the registry and its gate.

One experiment per model; every run carries its params, metrics, plots, the
FeatureService name and the data version. A new registered version becomes
``champion`` only if it beats the current champion on the validation metric (the
decision is logged on the run); otherwise it is tagged ``challenger``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.settings import PROJECT_ROOT, SOURCE_NOTE, Settings
from models.legacy import enable_old_names
from models.tracking_store import ARTIFACTS_DIR, check_store, local_artifacts

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
CANDIDATE = "candidate"   # a version that beat its champion, waiting for the whole training
_pending: list[tuple[str, str]] | None = None   # (model, version) inside ``one_training``


class PickledModel(mlflow.pyfunc.PythonModel):
    """Wraps any project model object that has ``predict(frame)``."""

    def load_context(self, context) -> None:
        self.model = load_pickled(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None):
        # the DataFrame hint asks MLflow for no schema inference (same as no hint), and keeps
        # it from warning about a missing hint on every import
        return self.model.predict(model_input)


def load_pickled(path) -> Any:
    """A project model from its joblib file, also when it was pickled under old module names."""
    enable_old_names()
    return joblib.load(path)


@dataclass
class LoggedModel:
    run_id: str
    name: str
    version: str
    gate: dict


def configure(settings: Settings) -> str:
    """Point MLflow at the project's tracking store, created on first use: training only."""
    if settings.mlflow_tracking_uri is None:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return _point_at(settings)


def configure_existing(settings: Settings) -> str:
    """Point MLflow at the tracking store for reading: it must exist with MLflow's tables
    (``tracking_store.TrackingStoreUnavailable`` otherwise), as MLflow would create them."""
    check_store(settings)
    return _point_at(settings)


def _point_at(settings: Settings) -> str:
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return settings.tracking_uri


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI opens runs, not traces


def experiment(name: str, settings: Settings) -> str:
    """Experiment id; artifacts live beside the tracking store, not in the working directory."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.tags.get("mlflow.experimentKind") is None:
            client.set_experiment_tag(found.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        return found.experiment_id
    location = (settings.mlflow_dir / ARTIFACTS_DIR / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


def source_name(settings: Settings) -> str:
    """What the training data is (the ingested export's name): run names and dataset sources."""
    note = settings.clean_dir / SOURCE_NOTE
    name = json.loads(note.read_text()).get("name") if note.is_file() else None
    return name or settings.data_dir.resolve().name


def run_name(settings: Settings, model: str, kind: str) -> str:
    """``churn lightgbm · <source> · <date>``: what a run is, at a glance in the MLflow UI."""
    return f"{model} {kind} · {source_name(settings)} · {datetime.now(UTC):%Y-%m-%d}"


def log_datasets(settings: Settings, datasets: dict[str, pd.DataFrame]) -> None:
    """The training and validation sets as MLflow datasets of the active run (digest, schema,
    rows; the source is the feature store the rows came from)."""
    source = str(settings.feature_dir.resolve())
    for context, frame in datasets.items():
        data = mlflow.data.from_pandas(frame, source=source, name=f"{context} · {source_name(settings)}")
        mlflow.log_input(data, context=context)


def data_version(settings: Settings) -> str:
    """DVC hash of the feature tables when the pipeline runs under DVC, else their content hash."""
    lock = PROJECT_ROOT / "dvc.lock"
    if lock.exists() and settings.data_dir.resolve() == (PROJECT_ROOT / "data").resolve():
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
        for out in stages.get("features", {}).get("outs", []):
            if out.get("path") == "data/features":
                return f"dvc:{out['md5']}"
    digest = hashlib.md5()
    for path in sorted(settings.feature_dir.glob("*.parquet")):
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"md5:{digest.hexdigest()}"


def log_model_run(
    settings: Settings, *, experiment_name: str, registered_name: str, model: Any,
    params: dict, metrics: dict[str, float], tags: dict[str, str], input_example: pd.DataFrame,
    figures: dict | None = None, tables: dict[str, pd.DataFrame] | None = None,
    gate_metric: str, higher_is_better: bool = True,
    datasets: dict[str, pd.DataFrame] | None = None,
) -> LoggedModel:
    """Log one trained model with everything needed to compare it, register it and gate it."""
    configure(settings)
    exp_id = experiment(experiment_name, settings)
    name = run_name(settings, experiment_name, tags.get("model_type", "model"))
    with mlflow.start_run(experiment_id=exp_id, run_name=name) as run, \
            tempfile.TemporaryDirectory() as tmp:
        log_datasets(settings, datasets or {})
        mlflow.log_params(_flat(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.set_tags(tags)
        for name, fig in (figures or {}).items():
            mlflow.log_figure(fig, f"plots/{name}.png")
        for name, table in (tables or {}).items():
            mlflow.log_table(table, f"tables/{name}.json")
        path = Path(tmp) / "model.joblib"
        joblib.dump(model, path)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=PickledModel(), artifacts={"model": str(path)},
            input_example=input_example, registered_model_name=registered_name,
        )
        version = str(info.registered_model_version)
        gate = gate_champion(registered_name, version, gate_metric, higher_is_better)
        mlflow.set_tags({f"gate.{k}": str(v) for k, v in gate.items()})
        mlflow.log_dict(gate, "gate.json")
    return LoggedModel(run.info.run_id, registered_name, version, gate)


def log_metrics_run(settings: Settings, *, experiment_name: str, run_name: str,
                    metrics: dict[str, float], tags: dict[str, str]) -> str:
    """A comparison run without a registered model (e.g. a baseline), beside the model's run."""
    configure(settings)
    with mlflow.start_run(experiment_id=experiment(experiment_name, settings),
                          run_name=f"{run_name} · {source_name(settings)}") as run:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.set_tags(tags)
    return run.info.run_id


def _flat(params: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(value, f"{name}.")
        else:
            out[name] = value if not isinstance(value, list | tuple) else json.dumps(value)
    return out


def _run_metric(client: MlflowClient, name: str, version: str, metric: str) -> float | None:
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.metrics.get(metric)


def gate_champion(name: str, version: str, metric: str, higher_is_better: bool = True) -> dict:
    """Move ``champion`` to ``version`` only if it beats the current champion on ``metric``."""
    client = MlflowClient()
    new = _run_metric(client, name, version, metric)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    old = _run_metric(client, name, current.version, metric) if current else None
    better = old is None or (new is not None and (new > old if higher_is_better else new < old))
    if better and _pending is not None:      # promoted when every model of the run has trained
        _pending.append((name, version))
        client.set_registered_model_alias(name, CANDIDATE, version)
    else:
        client.set_registered_model_alias(name, CHAMPION if better else CHALLENGER, version)
    return {"metric": metric, "higher_is_better": higher_is_better, "candidate_version": version,
            "candidate_value": new, "champion_version": str(current.version) if current else None,
            "champion_value": old, "decision": CHAMPION if better else CHALLENGER}


@contextmanager
def one_training(settings: Settings) -> Iterator[None]:
    """`cem train` as one step: champions move, and the training metrics file is written, only
    when every model of the run has trained. A failure part-way (the NPS step after a new
    churn model) leaves the previous champions serving together and ``train.json`` as it
    was; the versions that would have won keep the ``candidate`` alias for inspection."""
    global _pending
    metrics = settings.data_dir / "metrics" / "train.json"
    before = metrics.read_bytes() if metrics.exists() else None
    _pending = []
    try:
        yield
    except BaseException:
        _pending = None
        if before is None:
            metrics.unlink(missing_ok=True)
        else:
            metrics.write_bytes(before)
        raise
    promoted, _pending = _pending, None
    client = MlflowClient()
    for name, version in promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
        client.delete_registered_model_alias(name, CANDIDATE)


class ModelNotRegistered(LookupError):
    """No version of a model carries the alias (it was never trained on this data)."""


def load_alias(name: str, settings: Settings, alias: str = CHAMPION) -> tuple[Any, str]:
    """The project model object behind ``models:/name@alias`` and its version."""
    configure_existing(settings)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        raise ModelNotRegistered(f"no {name!r} model with alias {alias!r} in {settings.tracking_uri}: "
                                 "run `cem train` first") from err
    folder = model_folder(settings, client, name, str(version.version))
    found = list(folder.rglob("model.joblib"))
    if not found:
        raise FileNotFoundError(f"models:/{name}@{alias} has no model.joblib artifact in {folder}")
    return load_pickled(found[0]), str(version.version)


def model_folder(settings: Settings, client: MlflowClient, name: str, version: str) -> Path:
    """A model version's artifacts, read in place when local (from this data folder's copy
    when ``data/`` was copied or moved), downloaded when remote."""
    uri = client.get_model_version_download_uri(name, version)
    folder = local_artifacts(settings, uri)
    if folder is None:
        return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    if not folder.is_dir():
        raise FileNotFoundError(f"models:/{name}/{version}: artifacts not found at {folder} "
                                f"(nor under {settings.mlflow_dir / ARTIFACTS_DIR}): run `cem train`")
    return folder


def champion_versions(settings: Settings, names: tuple[str, ...]) -> dict[str, str]:
    """The registry's current ``champion`` version of each model, without loading any: the
    scoring service's cheap check every refresh period (milliseconds, against seconds of CPU
    for loading the models)."""
    configure_existing(settings)
    client = MlflowClient()
    versions = {}
    for name in names:
        try:
            versions[name] = str(client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException:
            continue   # a model the data does not support (no surveys, no interventions)
    return versions


def write_metrics(settings: Settings, section: str, metrics: dict, name: str = "train.json") -> None:
    """DVC metrics file (data/metrics/train.json by default), one section per model."""
    path = settings.data_dir / "metrics" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current[section] = metrics
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def log_trials(settings: Settings, parent_run_id: str, trials: pd.DataFrame, metric: str) -> None:
    """A hyperparameter search's trials as child runs of the model's run (MLflow UI: expand the
    run to compare them)."""
    if trials.empty:
        return
    configure(settings)
    exp_id = mlflow.get_run(parent_run_id).info.experiment_id
    with mlflow.start_run(run_id=parent_run_id, experiment_id=exp_id):
        for row in trials.to_dict("records"):
            with mlflow.start_run(run_name=f"trial {row['trial']}", nested=True, experiment_id=exp_id):
                mlflow.log_params({k: v for k, v in row.items() if k not in (metric, "seconds")})
                mlflow.log_metrics({metric: float(row[metric]), "seconds": float(row.get("seconds", 0))})
