"""The real fresh path on the trained small world: champions from MLflow (``load_champions``),
features from the Feast online store, the batch job's scoring function. Checks that the
service's fast online read and its warmed cache give Feast's answer and the function's
answer, that a new champion is picked up and that a dead registry leaves the models served."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from features.services import CHURN_SERVICE
from features.store import feature_store, materialize_latest, online_features
from models import registry
from models.bundle import MODEL_NAMES, load_champions
from models.registry import champion_versions
from models.scoring import score_customers
from serving import views
from serving.app import create_app
from serving.auth import issue_tokens
from serving.batch import run_batch_scoring
from serving.caches.online import OnlineFeatures
from serving.db.read import run_customers
from serving.db.schema import engine_for
from tests.servers import free_port
from tests.serving.conftest import auth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(trained_world, tmp_path_factory):
    """The trained world with its online store filled and a scoring run in a serving DB of our own."""
    base = trained_world.settings
    db = tmp_path_factory.mktemp("fresh") / "serving.db"
    settings = base.model_copy(update={"serving": base.serving.model_copy(
        update={"database_url": f"sqlite:///{db}", "model_refresh_seconds": 3600})})
    store = feature_store(settings)
    materialize_latest(store, datetime.now(UTC))
    summary = run_batch_scoring(settings)
    engine = engine_for(settings)
    tokens = issue_tokens(engine, ["unused-rep"])
    customers = run_customers(engine, summary["run_id"], 100_000)
    return SimpleNamespace(settings=settings, store=store, summary=summary, engine=engine, tokens=tokens,
                           customers=customers)


def test_fast_online_read_equals_feasts_answer(served):
    ids = served.customers[:300] + ["NOT-A-CUSTOMER"]
    feast = online_features(served.store, ids, CHURN_SERVICE)
    online = OnlineFeatures(served.store, CHURN_SERVICE)
    assert online._sqlite is not None          # the direct SQLite read, not Feast's per view
    ours = online.frame(ids)
    known = feast[feast["customer_id"].isin(ours["customer_id"])].reset_index(drop=True)[ours.columns]
    assert len(ours) == len(known) == 300 and "NOT-A-CUSTOMER" not in set(ours["customer_id"])
    pd.testing.assert_frame_equal(known, ours, check_dtype=False)


def _same(a, b, where: str = "") -> None:
    """Equal JSON, floats to 1e-9 (a warm-up batch and a one-row call may round differently)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert np.isclose(a, b, rtol=1e-9, atol=1e-12), where
    else:
        assert a == b, where


def test_warmed_cache_equals_scoring_feasts_rows_one_by_one(served):
    """What ?fresh=true answers from the cache is what the scoring function gives on Feast's row."""
    settings, bundle = served.settings, load_champions(served.settings)
    app = create_app(settings, model_loader=lambda: bundle, refresh=False)
    app.state.models.refresh()
    fresh = app.state.fresh
    as_of = pd.Timestamp(served.summary["as_of"]).date()
    sample = served.customers[:40]
    state = fresh.warm(sample, as_of)
    assert state.finished and state.customers == len(sample)
    feast_rows = online_features(served.store, sample, bundle.feature_service)
    for cid in sample[:12]:
        direct = score_customers(feast_rows[feast_rows["customer_id"] == cid], bundle, settings, as_of)
        hits = fresh.cache.hits
        cached, _ = fresh.customer(cid, as_of)
        assert fresh.cache.hits == hits + 1                  # answered from the warmed cache
        expected = views.customer_score(direct.customers.iloc[0].to_dict()).model_dump(mode="json")
        _same(json.loads(cached.body), expected)
        assert expected["tags"]["churn_risk_tier"] and expected["churn_probability"] > 0


def test_fresh_endpoint_agrees_with_the_batch_run_on_unchanged_features(served):
    settings = served.settings
    app = create_app(settings, refresh=False)                 # the real loader: MLflow champions
    app.state.models.refresh()
    assert app.state.models.status().loaded
    with TestClient(app) as client:
        for cid in served.customers[:5]:
            stored = client.get(f"/v1/customers/{cid}", headers=auth(served.tokens["manager"])).json()
            head = auth(served.tokens["manager"])
            fresh = client.get(f"/v1/customers/{cid}?fresh=true", headers=head).json()
            assert fresh["fresh"] is True and fresh["rep_id"] == stored["rep_id"]
            assert fresh["lineage"]["model_versions"] == stored["lineage"]["model_versions"]
            assert fresh["churn_probability"] == pytest.approx(stored["churn_probability"], rel=1e-6)
            assert fresh["predicted_nps"] == pytest.approx(stored["predicted_nps"], rel=1e-6)


def test_new_champion_is_picked_up_and_a_dead_registry_keeps_the_models(served, monkeypatch):
    settings = served.settings
    holder = {"settings": settings}
    app = create_app(settings, model_loader=lambda: load_champions(holder["settings"]),
                     model_probe=lambda: champion_versions(holder["settings"], MODEL_NAMES), refresh=False)
    models = app.state.models
    assert models.refresh() and models.versions["churn"]
    assert models.refresh() is False                      # the probe: same versions, nothing reloaded
    registry.configure(settings)
    client = MlflowClient()
    current = client.get_model_version_by_alias("churn", registry.CHAMPION)
    copy = client.create_model_version("churn", current.source, run_id=current.run_id)
    try:
        client.set_registered_model_alias("churn", registry.CHAMPION, copy.version)
        assert models.refresh() is True                   # a new champion, no restart
        assert models.versions["churn"] == str(copy.version)
        with TestClient(app) as http:
            cid = served.customers[0]
            body = http.get(f"/v1/customers/{cid}?fresh=true", headers=auth(served.tokens["manager"])).json()
            assert body["lineage"]["model_versions"]["churn"] == str(copy.version)
            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
            holder["settings"] = settings.model_copy(
                update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})   # nobody listens
            assert models.refresh() is False
            ready = http.get("/readyz").json()
            assert ready["status"] == "degraded" and ready["models"]["registry_reachable"] is False
            assert ready["models"]["versions"]["churn"] == str(copy.version)
            again = http.get(f"/v1/customers/{cid}?fresh=true", headers=auth(served.tokens["manager"]))
            assert again.status_code == 200 and again.json()["churn_probability"] == body["churn_probability"]
    finally:
        registry.configure(settings)
        client = MlflowClient()
        client.set_registered_model_alias("churn", registry.CHAMPION, current.version)
        client.delete_model_version("churn", copy.version)    # the session's registry as it was
