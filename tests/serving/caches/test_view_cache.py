"""The customer view served from memory: bytes equal to the models' JSON, the latest run only,
the same access rules, writes seen at once here and within a poll from other processes, and
the memory bound."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from serving import views
from serving.app import create_app, warm_if_needed
from serving.caches.online import OnlineRow
from serving.caches.view_cache import ViewCache
from serving.db import events as db_events
from serving.db import read as db_read
from serving.db.schema import customer_changes, engine_for
from serving.db.write import utcnow, write_scoring_run
from serving.schemas import CustomerView, Lineage
from tests.serving.conftest import FakeOnline, auth, fake_bundle, fake_score, owner
from tests.serving.factory import make_run

DAY3 = date(2025, 1, 20)


def _planned(runs, control: bool):
    plan = runs.latest.actions
    return plan[plan["control_group"] == control].iloc[0]


def _get(client, cid: str, token: str, query: str = ""):
    return client.get(f"/v1/customers/{cid}{query}", headers=auth(token))


# ------------------------------------------------------------------ bytes


def _reference_fresh(record: dict, bundle, as_of: date, stored: dict | None) -> bytes:
    """What the fresh view is, built as models (the service splices cached bytes instead)."""
    if stored and not views._text(record.get("rep_id")):
        record = {**record, "rep_id": stored.get("rep_id")}
    lineage = Lineage(as_of=as_of, model_versions={k: str(v) for k, v in bundle.versions.items()},
                      feature_service=bundle.feature_service)
    context = views.stored_view(stored, show_plan=True) if stored else None
    return CustomerView(
        **views.customer_score(record).model_dump(), fresh=True,
        latest_comment=context.latest_comment if context else None,
        open_alerts=context.open_alerts if context else [],
        last_outcome=context.last_outcome if context else None, lineage=lineage,
    ).model_dump_json().encode()


@pytest.mark.parametrize("cid", ["C0000001", 'C"x,"rep_id":null,"y', "Cé\\u00e9"])
@pytest.mark.parametrize("scorer_rep", [None, "", "R009"])
def test_fresh_bytes_equal_the_models_json(runs, cid, scorer_rep):
    engine, bundle = runs.engine, fake_bundle()
    planned = _planned(runs, control=False)["customer_id"]
    db_events.raise_alert(engine, planned, "R001", "detractor", "Detractor: NPS 2", "<b>slow</b>")
    stored_rows = [db_read.customer_view(engine, c) for c in ("C0000001", planned)]
    record = {**fake_score_row(cid), "rep_id": scorer_rep}
    lineage = views.lineage_json(tuple(bundle.versions.items()), bundle.feature_service, date(2025, 1, 13))
    for stored in [None, *stored_rows]:
        entry = views.stored_entry(stored) if stored else None
        got = views.fresh_body(views.fresh_score(record), entry, lineage)
        assert got == _reference_fresh(record, bundle, date(2025, 1, 13), stored)
        json.loads(got)


def fake_score_row(cid: str) -> dict:
    frame = FakeOnline({cid: {"tenure_days": 1, "monthly_charge": 10.0, "tickets_open_now": 1,
                              "usage_last_month": 1.0, "contract": "annual"}}).frame([cid])
    return fake_score(frame, fake_bundle(), None, None).customers.iloc[0].to_dict()


def test_stored_bytes_equal_the_models_json_for_manager_and_rep(runs):
    held = _planned(runs, control=True)["customer_id"]
    for cid in ("C0000001", held):
        row = db_read.customer_view(runs.engine, cid)
        entry = views.stored_entry(row)
        assert entry.body == views.stored_view(row, show_plan=True).model_dump_json().encode()
        assert entry.rep_body == views.stored_view(row, show_plan=False).model_dump_json().encode()
    assert json.loads(entry.rep_body)["recommended_action"] is None          # the held-out one
    assert json.loads(entry.body)["recommended_action"] is not None


# ------------------------------------------------------------------ through the API


def test_a_view_is_read_from_the_database_once(app, client, tokens, monkeypatch):
    first = _get(client, "C0000001", tokens["manager"])
    monkeypatch.setattr(db_read, "customer_view", lambda *a, **k: pytest.fail("read again"))
    again = _get(client, "C0000001", tokens["manager"])
    assert again.status_code == 200 and again.content == first.content
    assert app.state.services.views.hits >= 1


def test_a_new_run_replaces_every_cached_view(app, client, runs, tokens):
    before = _get(client, "C0000001", tokens["manager"]).json()
    assert before["lineage"]["run_id"] == runs.second
    third = make_run(DAY3, seed=3)
    run_id = write_scoring_run(runs.engine, third)
    app.state.services.runs.invalidate()                  # the service re-reads the latest run each second
    after = _get(client, "C0000001", tokens["manager"]).json()
    expected = third.customers.set_index("customer_id").loc["C0000001", "churn_probability"]
    assert after["lineage"]["run_id"] == run_id and after["churn_probability"] == expected
    assert before["churn_probability"] != expected
    assert app.state.services.views.run_id == run_id and len(app.state.services.views) == 1


def test_access_rules_hold_whoever_filled_the_cache(client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    other = next(r for r in ("R001", "R002", "R003") if r != rep)
    assert _get(client, "C0000001", tokens["manager"]).status_code == 200          # fills the cache
    assert _get(client, "C0000001", tokens[other]).status_code == 404
    assert _get(client, "C0000001", tokens[other], "?fresh=true").status_code == 404
    assert _get(client, "C0000001", tokens[rep]).status_code == 200
    assert client.get("/v1/customers/C0000001").status_code == 401
    for token in (tokens["manager"], tokens[rep]):
        assert _get(client, "NOPE", token).status_code == 404
    held = _planned(runs, control=True)
    rep_first = _get(client, held["customer_id"], tokens[held["rep_id"]]).json()   # the rep fills it
    manager = _get(client, held["customer_id"], tokens["manager"]).json()
    assert rep_first["recommended_action"] is None
    assert manager["recommended_action"]["action_id"] == held["action_id"]


def test_the_reps_page_session_still_signs_in_to_the_api(client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    client.post("/login", content=f"token={tokens[rep]}", follow_redirects=False,
                headers={"content-type": "application/x-www-form-urlencoded"})
    assert client.get("/v1/customers/C0000001").status_code == 200


def test_outcomes_and_events_of_this_process_show_at_once(client, runs, tokens, online):
    planned = _planned(runs, control=False)
    cid, head = planned["customer_id"], auth(tokens["manager"])
    online.data[cid] = online.data["C0000002"]
    assert _get(client, cid, tokens["manager"]).json()["open_alerts"] == []        # cached now
    client.post("/v1/events", json={"type": "survey", "customer_id": cid, "nps": 1}, headers=head)
    assert [a["kind"] for a in _get(client, cid, tokens["manager"]).json()["open_alerts"]] == ["detractor"]
    fresh = _get(client, cid, tokens["manager"], "?fresh=true").json()
    assert [a["kind"] for a in fresh["open_alerts"]] == ["detractor"]
    done = {"customer_id": cid, "action_id": planned["action_id"], "status": "done"}
    assert client.post("/v1/outcomes", json=done, headers=auth(tokens[planned["rep_id"]])).status_code == 201
    view = _get(client, cid, tokens["manager"]).json()
    assert view["open_alerts"] == [] and view["last_outcome"]["status"] == "done"
    assert _get(client, cid, tokens["manager"], "?fresh=true").json()["last_outcome"]["status"] == "done"


def test_writes_of_another_process_show_after_the_poll(app, client, runs, tokens):
    planned = _planned(runs, control=False)
    cid, cache = planned["customer_id"], app.state.services.views
    cache.poll_seconds = 3600                                    # polled once, at the first request
    assert _get(client, cid, tokens["manager"]).json()["last_outcome"] is None
    other = db_events.Outcome(cid, planned["action_id"], "no_answer")
    db_events.record_outcome(runs.engine, other, rep_id=planned["rep_id"], recorded_by="elsewhere")
    assert _get(client, cid, tokens["manager"]).json()["last_outcome"] is None     # not polled yet
    cache.poll_seconds = 0
    assert _get(client, cid, tokens["manager"]).json()["last_outcome"]["recorded_by"] == "elsewhere"
    db_events.raise_alert(runs.engine, cid, planned["rep_id"], "detractor", "first answer")
    assert _get(client, cid, tokens["manager"]).json()["open_alerts"][0]["reason"] == "first answer"
    db_events.raise_alert(runs.engine, cid, planned["rep_id"], "detractor", "second answer")  # in place
    assert _get(client, cid, tokens["manager"]).json()["open_alerts"][0]["reason"] == "second answer"


def test_the_cache_keeps_at_most_view_cache_size_customers(settings, runs, tokens, online):
    small = settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"view_cache_size": 3})})
    app = create_app(small, model_loader=fake_bundle, score_fn=fake_score, online=lambda s, n: online,
                     refresh=False)
    ids = [f"C{i:07d}" for i in range(1, 7)]
    with TestClient(app) as client:
        for cid in ids:
            assert _get(client, cid, tokens["manager"]).status_code == 200
        cache = app.state.services.views
        assert len(cache) == 3 and list(cache._data) == ids[-3:]                  # least recent out
        assert _get(client, ids[0], tokens["manager"]).status_code == 200         # read again, kept
        assert len(cache) == 3 and list(cache._data) == [*ids[-2:], ids[0]]


# ------------------------------------------------------------------ the cache alone


def test_a_fill_that_read_before_a_write_is_not_kept():
    cache = ViewCache(size=10)
    entry = views.StoredView("R001", b"{}", b"{}", b"")
    assert cache.get("r1", "C1") is None
    generation = cache.generation
    cache.forget("C1")                                  # a write landed while the view was read
    cache.put("r1", "C1", entry, generation)
    assert cache.get("r1", "C1") is None
    cache.put("r1", "C1", entry, cache.generation)
    assert cache.get("r1", "C1") is entry
    assert cache.get("r2", "C1") is None and len(cache) == 0    # another run: nothing of r1 is served


def test_a_change_committed_out_of_order_is_still_seen(settings):
    engine = engine_for(settings)
    cache = ViewCache(size=10)
    entry = views.StoredView(None, b"{}", b"{}", b"")

    def changed(seq: int, cid: str) -> None:
        with engine.begin() as conn:
            conn.execute(insert(customer_changes).values(seq=seq, customer_id=cid, changed_at=utcnow()))

    def fill(*cids):
        cache.get("r1", cids[0])
        for cid in cids:
            cache.put("r1", cid, entry, cache.generation)

    changed(5, "C5")
    changed(7, "C7")
    cache.poll(engine, now=0)
    fill("C5", "C6", "C7")
    changed(6, "C6")                                     # took a lower number, committed later
    cache.poll(engine, now=0.5)                          # not due yet
    assert cache.get("r1", "C6") is entry
    cache.poll(engine, now=2)
    assert cache.get("r1", "C6") is None
    assert cache.get("r1", "C5") is entry and cache.get("r1", "C7") is entry   # seen before: kept


# ------------------------------------------------------------------ fresh scores as bytes


class CountingOnline(FakeOnline):
    """Counts decodes: a fresh cache hit must decode no feature values."""

    decoded = 0

    def read(self, ids):
        def row(r):
            def decode():
                CountingOnline.decoded += 1
                return r
            return OnlineRow(r["customer_id"], hash(tuple(r.items())), decode)

        return [None if r is None else row(r) for r in self.rows(ids)]


def test_fresh_cache_holds_bytes_within_its_size_and_a_hit_decodes_nothing(settings, runs, tokens, online):
    online = CountingOnline(online.data)
    small = settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"fresh_cache_size": 1})})
    app = create_app(small, model_loader=fake_bundle, score_fn=fake_score, online=lambda s, n: online,
                     refresh=False)
    app.state.models.refresh()
    fresh = app.state.fresh
    warm_if_needed(app.state.services, freeze=False)
    assert fresh.warmed.customers == 1                   # the warm-up scores at most fresh_cache_size
    fresh.warm(["C0000001", "C0000002"], date(2025, 1, 13))
    assert fresh.warmed.customers == 2 and len(fresh.cache) == 1                  # bounded
    (score,) = fresh.cache._data.values()
    assert isinstance(score, views.FreshScore) and json.loads(score.body)["customer_id"] == "C0000002"
    with TestClient(app) as client:
        before = CountingOnline.decoded
        body = _get(client, "C0000002", tokens["manager"], "?fresh=true").json()
        assert body["fresh"] is True and CountingOnline.decoded == before       # answered from bytes
        _get(client, "C0000001", tokens["manager"], "?fresh=true")              # a miss: decoded, scored
        assert CountingOnline.decoded == before + 1 and len(fresh.cache) == 1


# ------------------------------------------------------------------ settings and OpenAPI


@pytest.mark.parametrize("ratio, raised", [(0.5, True), (0.3, False)])
def test_the_event_usage_rule_is_the_scoring_runs_setting(settings, runs, tokens, online, ratio, raised):
    tuned = settings.model_copy(update={"prescribe": settings.prescribe.model_copy(
        update={"alert_usage_ratio": ratio})})
    app = create_app(tuned, model_loader=fake_bundle, score_fn=fake_score, online=lambda s, n: online,
                     refresh=False)
    app.state.models.refresh()
    with TestClient(app) as client:                      # online usage_last_month = 10: 4 is 40 % of it
        r = client.post("/v1/events", json={"type": "usage", "customer_id": "C0000002", "month": "2025-01-01",
                                            "usage_units": 4.0}, headers=auth(tokens["manager"])).json()
    assert r["alert_raised"] is raised


def test_openapi_still_documents_the_customer_view(client):
    op = client.get("/openapi.json").json()["paths"]["/v1/customers/{customer_id}"]["get"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CustomerView")
    assert {p["name"] for p in op["parameters"]} == {"customer_id", "fresh"}


def test_change_rows_older_than_a_day_are_dropped_by_the_next_write(runs):
    two_days_ago = utcnow() - timedelta(days=2)
    with runs.engine.begin() as conn:
        conn.execute(insert(customer_changes).values(customer_id="OLD", changed_at=two_days_ago))
    db_events.raise_alert(runs.engine, "C0000001", "R001", "detractor", "NPS 1")
    with runs.engine.connect() as conn:
        assert conn.execute(select(customer_changes.c.customer_id)).scalars().all() == ["C0000001"]


# ------------------------------------------------------------------ the fast path ahead of FastAPI


def test_the_plain_forms_take_the_fast_path_and_the_rest_go_to_fastapi(client, tokens, monkeypatch):
    from serving.routes import fast_path

    taken = []
    real = fast_path.customer_body
    monkeypatch.setattr(fast_path, "customer_body", lambda *a: taken.append(a[1:]) or real(*a))
    for query in ("", "?fresh=true", "?fresh=false"):
        assert _get(client, "C0000001", tokens["manager"], query).status_code == 200
    assert taken == [("C0000001", False), ("C0000001", True), ("C0000001", False)]
    assert _get(client, "C0000001", tokens["manager"], "?fresh=1").json()["fresh"] is True
    bad = _get(client, "C0000001", tokens["manager"], "?fresh=maybe")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "fresh"]
    assert len(taken) == 3                                   # those two went through FastAPI


def test_the_fast_path_answers_exactly_as_fastapi_does(app, client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    other = next(r for r in ("R001", "R002", "R003") if r != rep)
    cases = [("C0000001", tokens["manager"]), ("C0000001", tokens[rep]), ("C0000001", tokens[other]),
             ("NOPE", tokens["manager"]), ("NOPE", tokens[rep]), ("C0000001", "not-a-token")]
    for fast, slow in (("", "?fresh=0"), ("?fresh=true", "?fresh=True")):   # the second of each: FastAPI
        for cid, token in cases:
            a, b = _get(client, cid, token, fast), _get(client, cid, token, slow)
            assert (a.status_code, a.content, a.headers.get("www-authenticate")) == (
                b.status_code, b.content, b.headers.get("www-authenticate")), (cid, fast)
        a, b = client.get(f"/v1/customers/C0000001{fast}"), client.get(f"/v1/customers/C0000001{slow}")
        assert a.status_code == b.status_code == 401 and a.content == b.content
    app.state.models.bundle = None
    a, b = (_get(client, "C0000001", tokens["manager"], q) for q in ("?fresh=true", "?fresh=True"))
    assert a.status_code == b.status_code == 503 and a.content == b.content


def test_fast_path_requests_are_counted_under_the_route_template(client, tokens):
    _get(client, "C0000001", tokens["manager"])
    text = client.get("/metrics").text
    assert 'route="/v1/customers/{customer_id}",status="200"' in text and "C0000001" not in text


# ------------------------------------------------------------------ the warm-up


def test_the_warm_up_fills_every_view_with_the_bytes_a_lookup_gives(app, client, runs, tokens, monkeypatch):
    planned, held = _planned(runs, control=False), _planned(runs, control=True)
    head = auth(tokens["manager"])
    client.post("/v1/events", json={"type": "survey", "customer_id": held["customer_id"], "nps": 2,
                                    "comment": "late"}, headers=head)
    done = {"customer_id": planned["customer_id"], "action_id": planned["action_id"], "status": "done"}
    client.post("/v1/outcomes", json=done, headers=auth(tokens[planned["rep_id"]]))
    services = app.state.services
    warm_if_needed(services, freeze=False)
    cache, ids = services.views, runs.latest.customers["customer_id"].tolist()
    assert cache.warmed_run == runs.second and len(cache) == len(ids) == 60
    for cid in ids:
        expected = views.stored_entry(db_read.customer_view(runs.engine, cid))
        assert cache.get(runs.second, cid) == expected, cid
    monkeypatch.setattr(db_read, "customer_view", lambda *a, **k: pytest.fail("read again"))
    body = _get(client, held["customer_id"], tokens[held["rep_id"]]).json()
    assert body["recommended_action"] is None and body["open_alerts"][0]["comment"] == "late"
    assert services.views.warm(runs.engine, services.runs) == 0            # once per run


def test_the_warm_up_keeps_to_the_size_and_skips_a_chunk_a_write_raced(app, runs, monkeypatch):
    runs_cache, cache = app.state.services.runs, ViewCache(size=25)
    real, calls = db_read.customer_views, []

    def read_while_a_write_lands(engine, ids, run):
        rows = real(engine, ids, run)
        calls.append(ids)
        if len(calls) == 1:
            cache.forget("C0000999")                       # any write: the chunk read may be stale
        return rows

    monkeypatch.setattr(db_read, "customer_views", read_while_a_write_lands)
    assert cache.warm(runs.engine, runs_cache, chunk=10) == 15        # 25 customers, the first 10 dropped
    assert len(cache) == 15 and all(cache.get(runs.second, c) is None for c in calls[0])
    assert cache.warmed_run == runs.second
    third = write_scoring_run(runs.engine, make_run(DAY3, seed=3))
    runs_cache.invalidate()
    assert cache.warm(runs.engine, runs_cache, chunk=10) == 25 and cache.warmed_run == third
    assert len(cache) == 25 and cache.run_id == third                 # the old run's views gone
