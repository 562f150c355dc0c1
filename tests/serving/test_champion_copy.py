"""Models at start on the trained small world: a copied ``data/`` folder scores with its own
artifacts and keeps a local copy of its champions; a service whose MLflow database is
deleted or damaged serves that copy and says ``degraded``, never an empty registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from configs.settings import load_settings
from features.transforms.schema import ENTITY
from models import registry
from serving.app import create_app
from serving.auth import issue_tokens
from serving.batch import run_batch_scoring
from serving.batch_inputs import active_customers, feature_rows, latest_snapshot
from serving.caches import champion_copy
from serving.db.schema import engine_for
from tests.serving.conftest import auth

pytestmark = pytest.mark.slow


def _copy(source: Path, target: Path, *ignore: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore))
    return target


@pytest.fixture(scope="module")
def moved(trained_world, tmp_path_factory):
    """The trained world's data folder copied, the copy copied again and the first copy removed;
    the second scored once (which keeps its local copy of the champions)."""
    tmp = tmp_path_factory.mktemp("moved")
    first = _copy(trained_world.root, tmp / "first" / "data", "serving")
    data = _copy(first, tmp / "second" / "data")
    shutil.rmtree(first.parent)
    settings = load_settings(data_dir=data)
    read, real = [], registry.load_pickled
    with pytest.MonkeyPatch.context() as patch:   # which model files the registry reads
        patch.setattr(registry, "load_pickled", lambda path: read.append(Path(path)) or real(path))
        summary = run_batch_scoring(settings)
    return settings, summary, read


def test_a_copied_data_folder_scores_with_its_own_artifacts(moved, trained_world):
    settings, summary, read = moved
    assert summary["customers"] > 0
    assert set(summary["model_versions"]) == {"churn", "nps", "uplift"}
    assert len(read) == 3 and all(p.is_relative_to(settings.mlflow_dir) for p in read)
    assert not any(p.is_relative_to(trained_world.root) for p in read)


def test_scoring_keeps_a_local_copy_of_the_champions(moved):
    settings, summary, _ = moved
    manifest = json.loads((settings.champion_copy_dir / champion_copy.MANIFEST_FILE).read_text())
    assert manifest["versions"] == summary["model_versions"]
    bundle = champion_copy.load(settings)
    assert bundle.versions == summary["model_versions"] and bundle.churn is not None
    assert not list(settings.champion_copy_dir.glob(".*.tmp"))     # no temporary file left


def _served(source: Path, target: Path, damage=None, keep_copy: bool = True):
    data = _copy(source, target, *(() if keep_copy else ("champions",)))
    settings = load_settings(data_dir=data)
    db = settings.mlflow_dir / "mlflow.db"
    if damage is None:
        db.unlink()
    else:
        db.write_bytes(damage(db.read_bytes()))
    app = create_app(settings, refresh=False)
    app.state.models.refresh()
    return settings, app, db


def _rows(settings, bundle, n: int = 5) -> list[dict]:
    as_of = latest_snapshot(settings)
    sample = active_customers(settings.clean_dir, as_of).head(n)
    frame = feature_rows(settings, sample, as_of, bundle.feature_service)[[ENTITY, *bundle.features]]
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _check_degraded(settings, app, db, summary) -> None:
    engine = engine_for(settings)
    tokens = issue_tokens(engine, ["unused-rep"])
    with TestClient(app) as http:
        r = http.get("/readyz")
        body = r.json()
        assert r.status_code == 200 and body["status"] == "degraded"
        models = body["models"]
        assert models["source"] == "local_copy" and models["registry_reachable"] is False
        assert models["versions"] == summary["model_versions"] and str(db) in models["error"]
        rows = _rows(settings, app.state.models.bundle)
        scored = http.post("/v1/score", json={"rows": rows}, headers=auth(tokens["manager"]))
        assert scored.status_code == 200, scored.text
        assert scored.json()["model_versions"] == summary["model_versions"]
        assert len(scored.json()["results"]) == len(rows)


def test_a_deleted_mlflow_database_serves_the_local_copy_degraded(moved, tmp_path, caplog):
    settings, summary, _ = moved
    with caplog.at_level("WARNING"):
        served, app, db = _served(settings.data_dir, tmp_path / "data")
    assert not db.exists()                                   # the service created no database
    _check_degraded(served, app, db, summary)
    said = [r.getMessage() for r in caplog.records if "local copy" in r.getMessage()]
    assert len(said) == 1 and str(summary["model_versions"]["churn"]) in said[0]


def test_a_damaged_mlflow_database_serves_the_local_copy_and_is_left_as_it_was(moved, tmp_path):
    settings, summary, _ = moved
    served, app, db = _served(settings.data_dir, tmp_path / "data", damage=lambda b: b"\x00" * 100 + b[100:])
    damaged = db.read_bytes()
    _check_degraded(served, app, db, summary)
    app.state.models.refresh()                               # the periodic check: still untouched
    assert db.read_bytes() == damaged
    assert sorted(p.name for p in db.parent.iterdir() if p.is_file()) == ["mlflow.db"]


def test_no_registry_and_no_local_copy_is_not_ready_with_both_reasons(moved, tmp_path):
    settings, _, _ = moved
    served, app, db = _served(settings.data_dir, tmp_path / "data", keep_copy=False)
    with TestClient(app) as http:
        r = http.get("/readyz")
    error = r.json()["models"]["error"]
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert str(db) in error and str(served.champion_copy_dir / champion_copy.BUNDLE_FILE) in error
