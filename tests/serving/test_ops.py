"""Health, readiness, metrics, champion hot reload and the registry-down fallback (fake loader)."""

from __future__ import annotations

import time

from serving.caches.model_cache import ModelCache
from tests.serving.conftest import auth, fake_bundle


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready_with_database_and_models(client, runs):
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ready"
    assert body["database"]["latest_run"] == runs.second and body["database"]["as_of"] == "2025-01-13"
    assert body["models"]["versions"] == {"churn": "3", "nps": "2", "uplift": "1"}


def test_not_ready_without_models(app, client):
    app.state.models.bundle = None
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"


def test_registry_down_keeps_serving_the_last_models_and_says_degraded(app, client, tokens):
    app.state.fake.fail = True
    assert app.state.models.refresh() is False
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "degraded"
    assert body["models"]["loaded"] is True and body["models"]["registry_reachable"] is False
    assert "registry unreachable" in body["models"]["error"]
    fresh = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"]))
    assert fresh.status_code == 200 and fresh.json()["lineage"]["model_versions"]["churn"] == "3"
    app.state.fake.fail = False                         # the registry is back
    app.state.models.refresh()
    assert client.get("/readyz").json()["status"] == "ready"


def test_a_new_champion_is_picked_up_without_restart(app, client, tokens):
    before = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    app.state.fake.bundle = fake_bundle(version="6")    # registry: champion moved to version 6
    assert app.state.models.refresh() is True
    after = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    assert before["lineage"]["model_versions"]["churn"] == "3"
    assert after["lineage"]["model_versions"]["churn"] == "6"
    assert after["churn_probability"] == 2 * before["churn_probability"]   # the fake model scales by version


def test_background_refresh_swaps_models_on_its_own():
    state = {"version": "1", "calls": 0}

    def loader():
        state["calls"] += 1
        return fake_bundle(state["version"])

    cache = ModelCache(loader)
    cache.start(every_seconds=0.05)
    try:
        _wait(lambda: cache.versions.get("churn") == "1")
        state["version"] = "2"
        _wait(lambda: cache.versions.get("churn") == "2")
    finally:
        cache.stop()
    calls = state["calls"]
    time.sleep(0.2)
    assert state["calls"] == calls                      # stopped means stopped


def test_a_probe_avoids_reloading_an_unchanged_champion():
    loads = []
    cache = ModelCache(lambda: loads.append(1) or fake_bundle("3"),
                       probe=lambda: {"churn": "3", "nps": "2", "uplift": "1"})
    assert cache.refresh() is True and cache.refresh() is False and cache.refresh() is False
    assert len(loads) == 1


def _sample(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_metrics_count_routes_by_template_with_model_versions_and_run_age(client, tokens):
    ok = 'cem_http_requests_total{method="GET",route="/v1/customers/{customer_id}",status="200"}'
    missing = 'cem_http_requests_total{method="GET",route="/v1/customers/{customer_id}",status="404"}'
    before = client.get("/metrics").text
    client.get("/v1/customers/C0000001", headers=auth(tokens["manager"]))
    client.get("/v1/customers/NOPE", headers=auth(tokens["manager"]))
    text = client.get("/metrics").text
    assert _sample(text, ok) - _sample(before, ok) == 1
    assert _sample(text, missing) - _sample(before, missing) == 1
    assert "C0000001" not in text and "NOPE" not in text
    assert 'cem_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text
    assert 'cem_model_version{model="churn"} 3.0' in text
    assert "cem_models_loaded 1.0" in text
    assert _sample(text, "cem_scoring_run_age_seconds ") > 0


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_warm_up_fills_the_fresh_cache_and_requests_hit_it(app, client, tokens, monkeypatch):
    from serving.app import warm_if_needed

    fresh = app.state.fresh
    warm_if_needed(app.state.services, freeze=False)
    ready = client.get("/readyz").json()["fresh_cache"]
    assert ready["finished"] and ready["customers"] == 2 and ready["as_of"] == "2025-01-13"   # 2 online
    calls = []
    monkeypatch.setattr(fresh, "_scored", lambda *a: calls.append(a) or None)   # scoring now would show
    body = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    assert body["churn_probability"] == 0.5 and calls == []
    warm_if_needed(app.state.services, freeze=False)  # nothing changed: no second warm-up
    assert fresh.warmed is not None and calls == []


def test_a_failed_warm_up_is_reported_and_fresh_still_answers(app, client, tokens, monkeypatch):
    from serving.app import warm_if_needed

    fresh = app.state.fresh
    real = fresh._scored

    def batch_fails(frame, bundle, as_of):
        if len(frame) > 1:
            raise MemoryError("batch too big")
        return real(frame, bundle, as_of)

    monkeypatch.setattr(fresh, "_scored", batch_fails)
    warm_if_needed(app.state.services, freeze=False)
    assert "MemoryError: batch too big" in client.get("/readyz").json()["fresh_cache"]["error"]
    r = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"]))
    assert r.status_code == 200 and r.json()["churn_probability"] == 0.5


def _registry_gone():
    raise FileNotFoundError("MLflow tracking database /data/mlflow/mlflow.db not found")


def test_a_start_without_registry_serves_the_local_copy_and_says_degraded(app, caplog):
    from serving.app import readiness

    state = {"loader": _registry_gone}
    cache = ModelCache(lambda: state["loader"](), fallback=lambda: fake_bundle("2"))
    with caplog.at_level("WARNING"):
        assert cache.refresh() is True
    body, code = readiness(app.state.engine, cache, app.state.fresh, app.state.services.views)
    assert code == 200 and body.status == "degraded" and body.models.source == "local_copy"
    assert body.models.versions["churn"] == "2" and "mlflow.db not found" in body.models.error
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "local copy" in said[0] and "'churn': '2'" in said[0]
    assert cache.refresh() is False and "local copy" in cache.status().error   # still the copy, still said
    state["loader"] = lambda: fake_bundle("2")                                  # the registry is back
    assert cache.refresh() is True and cache.status().source == "registry"
    body, code = readiness(app.state.engine, cache, app.state.fresh, app.state.services.views)
    assert code == 200 and body.status == "ready" and body.models.error is None


def test_no_registry_and_no_local_copy_is_not_ready_and_claims_no_models(app, caplog):
    from serving.app import readiness

    def no_copy():
        raise FileNotFoundError("no local copy of the champions at /data/serving/champions/bundle.joblib")

    cache = ModelCache(_registry_gone, fallback=no_copy)
    with caplog.at_level("WARNING"):
        assert cache.refresh() is False
    body, code = readiness(app.state.engine, cache, app.state.fresh, app.state.services.views)
    assert code == 503 and body.status == "not_ready" and body.models.loaded is False
    assert "mlflow.db not found" in body.models.error and "bundle.joblib" in body.models.error
    assert not any("serving the last loaded" in r.getMessage() for r in caplog.records)
