"""The JSON API: every endpoint, its failure paths and the access rules."""

from __future__ import annotations

import pandas as pd
import pytest

from features.services import CHURN_SERVICE
from tests.serving.conftest import COMMENT, auth, owner


def _planned(runs, control: bool):
    plan = runs.latest.actions
    return plan[plan["control_group"] == control].iloc[0]


# ------------------------------------------------------------------ customer view

def test_customer_view_from_the_latest_run(client, runs, tokens):
    row = runs.latest.customers.set_index("customer_id").loc["C0000001"]
    r = client.get("/v1/customers/C0000001", headers=auth(tokens[row["rep_id"]]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fresh"] is False and body["lineage"]["run_id"] == runs.second
    assert body["lineage"]["model_versions"] == {"churn": "3", "nps": "2", "uplift": "1"}
    assert body["churn_probability"] == row["churn_probability"]
    assert body["tags"] == {"relationship_stage": row["relationship_stage"],
                            "churn_risk_tier": row["churn_risk_tier"], "nps_class": row["nps_class"]}
    assert body["reasons"][0]["label"] == "Support friction" and body["reasons"][0]["sentence"]
    assert body["latest_comment"] == COMMENT


def test_customer_view_shows_the_planned_action_with_expected_value(client, runs, tokens):
    planned = _planned(runs, control=False)
    r = client.get(f"/v1/customers/{planned['customer_id']}", headers=auth(tokens[planned["rep_id"]]))
    action = r.json()["recommended_action"]
    assert action["action_id"] == planned["action_id"] and action["label"] == planned["action_label"]
    assert action["expected_value"] == planned["expected_value"] and action["why"]


def test_a_held_out_action_is_hidden_from_the_rep_but_not_the_manager(client, runs, tokens):
    held = _planned(runs, control=True)
    rep = client.get(f"/v1/customers/{held['customer_id']}", headers=auth(tokens[held["rep_id"]])).json()
    assert rep["recommended_action"] is None
    manager = client.get(f"/v1/customers/{held['customer_id']}", headers=auth(tokens["manager"])).json()
    assert manager["recommended_action"]["action_id"] == held["action_id"]


def test_unknown_customer_is_404(client, tokens):
    assert client.get("/v1/customers/NOPE", headers=auth(tokens["manager"])).status_code == 404
    assert client.get("/v1/customers/NOPE", headers=auth(tokens["R001"])).status_code == 404


def test_fresh_view_recomputes_from_the_online_store(client, runs, tokens, online):
    r = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fresh"] is True and body["lineage"]["run_id"] is None
    assert body["churn_probability"] == 0.5                  # the fake scorer on 2 open tickets
    assert body["value_at_risk"] == 50.0 * 7.2
    assert body["lineage"]["as_of"] == "2025-01-13"           # the latest run's date
    assert body["latest_comment"] == COMMENT                  # stored context joins the fresh score


def test_fresh_view_picks_up_a_changed_feature(client, tokens, online):
    first = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    online.data["C0000001"]["tickets_open_now"] = 0
    second = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    assert first["churn_probability"] == 0.5 and second["churn_probability"] == 0.1


def test_fresh_view_of_a_customer_missing_online_is_404(client, tokens):
    r = client.get("/v1/customers/C0000003?fresh=true", headers=auth(tokens["manager"]))
    assert r.status_code == 404


def test_fresh_view_without_models_is_503(app, client, tokens):
    app.state.models.bundle = None
    r = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"]))
    assert r.status_code == 503 and "not loaded" in r.json()["detail"]


# ------------------------------------------------------------------ access

def test_missing_or_unknown_token_is_401(client):
    assert client.get("/v1/customers/C0000001").status_code == 401
    r = client.get("/v1/customers/C0000001", headers=auth("not-a-token"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_a_rep_cannot_see_another_reps_customer_or_list(client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    other = next(r for r in ("R001", "R002", "R003") if r != rep)
    assert client.get("/v1/customers/C0000001", headers=auth(tokens[other])).status_code == 404
    assert client.get(f"/v1/reps/{rep}/actions", headers=auth(tokens[other])).status_code == 403
    assert client.get(f"/v1/reps/{rep}/actions", headers=auth(tokens[rep])).status_code == 200
    assert client.get(f"/v1/reps/{rep}/actions", headers=auth(tokens["manager"])).status_code == 200


def test_a_rep_cannot_fresh_score_a_customer_outside_their_book(client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    other = next(r for r in ("R001", "R002", "R003") if r != rep)
    assert client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens[other])).status_code == 404


def test_scoring_and_events_need_a_manager_token(client, tokens):
    assert client.post("/v1/score", json={"rows": [{}]}, headers=auth(tokens["R001"])).status_code == 403
    event = {"type": "survey", "customer_id": "C0000001", "nps": 3}
    assert client.post("/v1/events", json=event, headers=auth(tokens["R001"])).status_code == 403


# ------------------------------------------------------------------ rep's list

def test_rep_list_is_ranked_paged_and_has_no_holdouts(client, runs, tokens):
    rep = "R002"
    plan = runs.latest.actions
    visible = plan[(plan["rep_id"] == rep) & ~plan["control_group"]].sort_values("rank")
    alerted = set(runs.latest.alerts.loc[runs.latest.alerts["rep_id"] == rep, "customer_id"])
    r = client.get(f"/v1/reps/{rep}/actions?page=1&size=3", headers=auth(tokens[rep]))
    body = r.json()
    assert body["total"] == len(visible) + len(alerted - set(visible["customer_id"]))
    assert body["pages"] == -(-body["total"] // 3) and len(body["items"]) == 3
    everything = [i for p in range(1, body["pages"] + 1)
                  for i in client.get(f"/v1/reps/{rep}/actions?page={p}&size=3",
                                      headers=auth(tokens[rep])).json()["items"]]
    ids = [i["customer_id"] for i in everything]
    assert len(ids) == len(set(ids)) == body["total"]
    held = set(plan.loc[plan["control_group"], "customer_id"])
    assert not any(i["action"] for i in everything if i["customer_id"] in held)
    ranked = [i["rank"] for i in everything if not i["alert"]]
    assert ranked == sorted(ranked) and ranked == visible["rank"].tolist()[:len(ranked)]
    assert [i["position"] for i in everything] == list(range(1, len(everything) + 1))


def test_rep_list_default_page_size_and_bad_paging(client, tokens, settings):
    body = client.get("/v1/reps/R001/actions", headers=auth(tokens["R001"])).json()
    assert body["size"] == settings.serving.page_size
    r = client.get("/v1/reps/R001/actions?page=0", headers=auth(tokens["R001"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"]


# ------------------------------------------------------------------ outcomes

def test_record_an_outcome_and_see_it_on_the_list(client, runs, tokens):
    planned = _planned(runs, control=False)
    body = {"customer_id": planned["customer_id"], "action_id": planned["action_id"], "status": "declined",
            "decline_reason": "price too high", "customer_response": "call me in spring"}
    r = client.post("/v1/outcomes", json=body, headers=auth(tokens[planned["rep_id"]]))
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["status"] == "declined" and saved["recorded_by"] == planned["rep_id"]
    items = client.get(f"/v1/reps/{planned['rep_id']}/actions?size=100",
                       headers=auth(tokens[planned["rep_id"]])).json()["items"]
    item = next(i for i in items if i["customer_id"] == planned["customer_id"])
    assert item["last_outcome"]["decline_reason"] == "price too high"


def test_outcome_validation_names_the_field(client, runs, tokens):
    planned = _planned(runs, control=False)
    head = auth(tokens[planned["rep_id"]])
    base = {"customer_id": planned["customer_id"], "action_id": planned["action_id"]}
    r = client.post("/v1/outcomes", json={**base, "status": "maybe"}, headers=head)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "status"]
    assert "status" in r.json()["message"]
    r = client.post("/v1/outcomes", json={**base, "status": "declined"}, headers=head)
    assert r.status_code == 422 and "decline_reason" in r.json()["detail"][0]["msg"]
    r = client.post("/v1/outcomes", json={**base, "status": "done", "extra": 1}, headers=head)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "extra"]
    r = client.post("/v1/outcomes", json={**base, "action_id": "free_lunch", "status": "done"}, headers=head)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "action_id"]


def test_outcomes_respect_ownership_and_holdouts(client, runs, tokens):
    planned, held = _planned(runs, control=False), _planned(runs, control=True)
    other = next(r for r in ("R001", "R002", "R003") if r != planned["rep_id"])
    body = {"customer_id": planned["customer_id"], "action_id": planned["action_id"], "status": "done"}
    assert client.post("/v1/outcomes", json=body, headers=auth(tokens[other])).status_code == 404
    held_body = {"customer_id": held["customer_id"], "action_id": held["action_id"], "status": "done"}
    refused = client.post("/v1/outcomes", json=held_body, headers=auth(tokens[held["rep_id"]]))
    assert refused.status_code == 422
    unknown = {"customer_id": "NOPE", "action_id": "x", "status": "done"}
    assert client.post("/v1/outcomes", json=unknown, headers=auth(tokens["manager"])).status_code == 404


# ------------------------------------------------------------------ events and alerts

def test_detractor_answer_puts_the_customer_on_top_with_the_reason(client, runs, tokens):
    plan = runs.latest.actions
    rep = "R003"
    last = plan[(plan["rep_id"] == rep) & ~plan["control_group"]].sort_values("rank").iloc[-1]
    event = {"type": "survey", "customer_id": last["customer_id"], "nps": 2, "comment": "you lost my order"}
    r = client.post("/v1/events", json=event, headers=auth(tokens["manager"]))
    assert r.status_code == 200 and r.json()["alert_raised"] is True
    top = client.get(f"/v1/reps/{rep}/actions", headers=auth(tokens[rep])).json()["items"][0]
    assert top["customer_id"] == last["customer_id"]
    assert "NPS 2" in top["alert"]["reason"] and top["alert"]["comment"] == "you lost my order"
    assert top["action"]["action_id"] == last["action_id"]


def test_a_passive_answer_raises_nothing(client, runs, tokens):
    event = {"type": "survey", "customer_id": "C0000001", "nps": 8}
    r = client.post("/v1/events", json=event, headers=auth(tokens["manager"]))
    assert r.json() == {"customer_id": "C0000001", "alert_raised": False, "alert_id": None, "reason": None}


def test_usage_drop_against_recent_readings_raises_an_alert(client, tokens):
    head = auth(tokens["manager"])
    for month, units in (("2024-10-01", 100.0), ("2024-11-01", 90.0), ("2024-12-01", 110.0)):
        ok = client.post("/v1/events", json={"type": "usage", "customer_id": "C0000005", "month": month,
                                             "usage_units": units}, headers=head).json()
        assert ok["alert_raised"] is False
    r = client.post("/v1/events", json={"type": "usage", "customer_id": "C0000005", "month": "2025-01-01",
                                        "usage_units": 30.0}, headers=head).json()
    assert r["alert_raised"] is True and "70 % below" in r["reason"]


def test_usage_drop_falls_back_to_the_online_store(client, tokens):
    r = client.post("/v1/events", json={"type": "usage", "customer_id": "C0000002", "month": "2025-01-01",
                                        "usage_units": 4.0}, headers=auth(tokens["manager"])).json()
    assert r["alert_raised"] is True and "10.0 a month" in r["reason"]   # online usage_last_month = 10


def test_recording_an_outcome_resolves_the_alert(client, runs, tokens):
    event = {"type": "survey", "customer_id": "C0000001", "nps": 0}
    client.post("/v1/events", json=event, headers=auth(tokens["manager"]))
    rep = owner(runs.latest, "C0000001")
    items = client.get(f"/v1/reps/{rep}/actions?size=100", headers=auth(tokens[rep])).json()["items"]
    alert_item = next(i for i in items if i["customer_id"] == "C0000001")
    assert alert_item["position"] == 1
    action = alert_item["action"]["action_id"] if alert_item["action"] else "alert_follow_up"
    done = {"customer_id": "C0000001", "action_id": action, "status": "no_answer"}
    assert client.post("/v1/outcomes", json=done, headers=auth(tokens[rep])).json()["alerts_resolved"] >= 1
    items = client.get(f"/v1/reps/{rep}/actions?size=100", headers=auth(tokens[rep])).json()["items"]
    after = next((i for i in items if i["customer_id"] == "C0000001"), None)
    if alert_item["action"]:                         # planned: back at its rank, no alert
        assert after["alert"] is None and after["rank"] == alert_item["rank"]
    else:                                            # alert only: stays listed, alert shown resolved
        assert after["alert"]["resolved_at"] is not None
    open_alerts = [i for i in items if i["alert"] and not i["alert"]["resolved_at"]]
    assert "C0000001" not in [i["customer_id"] for i in open_alerts]


@pytest.mark.parametrize(("score", "raised", "words"), [
    ({"csat": 2}, True, "Dissatisfied: answered the survey with CSAT 2 (1-5)"),
    ({"csat": 3}, False, None),
    ({"nps": 8, "csat": 1}, False, None),     # an answer with NPS is read on NPS
])
def test_a_csat_answer_alerts_on_its_own_scale(client, tokens, score, raised, words):
    event = {"type": "survey", "customer_id": "C0000001", **score}
    r = client.post("/v1/events", json=event, headers=auth(tokens["manager"])).json()
    assert r["alert_raised"] is raised and r["reason"] == words


def test_a_survey_event_without_a_score_is_422(client, tokens):
    r = client.post("/v1/events", json={"type": "survey", "customer_id": "C0000001"},
                    headers=auth(tokens["manager"]))
    assert r.status_code == 422 and "needs a score" in r.text
    r = client.post("/v1/events", json={"type": "survey", "customer_id": "C0000001", "csat": 6},
                    headers=auth(tokens["manager"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "csat"


def test_bad_events_are_422_naming_the_field(client, tokens):
    head = auth(tokens["manager"])
    r = client.post("/v1/events", json={"type": "survey", "customer_id": "C0000001", "nps": 11}, headers=head)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "nps"
    r = client.post("/v1/events", json={"type": "weather", "customer_id": "C0000001"}, headers=head)
    assert r.status_code == 422 and "type" in r.json()["message"]
    r = client.post("/v1/events", json={"type": "survey", "customer_id": "NOPE", "nps": 1}, headers=head)
    assert r.status_code == 404


# ------------------------------------------------------------------ batch scoring

def _row(cid: str, tickets: int = 1) -> dict:
    return {"customer_id": cid, "tenure_days": 100, "monthly_charge": 30.0, "tickets_open_now": tickets,
            "usage_last_month": 5.0, "contract": "one_year"}


def test_batch_scoring_uses_the_shared_scoring_function(client, tokens):
    rows = [_row("X1", 1), _row("X2", 3)]
    r = client.post("/v1/score", json={"rows": rows}, headers=auth(tokens["manager"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["customer_id"] for x in body["results"]] == ["X1", "X2"]
    assert [x["churn_probability"] for x in body["results"]] == [0.30000000000000004, 0.7000000000000001]
    assert body["model_versions"]["churn"] == "3" and body["feature_service"] == CHURN_SERVICE


def test_oversized_batch_is_refused_with_the_limit(client, tokens, settings):
    limit = settings.serving.max_batch_rows
    rows = [_row(f"X{i}") for i in range(limit + 1)]
    r = client.post("/v1/score", json={"rows": rows}, headers=auth(tokens["manager"]))
    assert r.status_code == 413 and f"limit of {limit} rows" in r.json()["detail"]


def test_malformed_batch_rows_are_422_naming_row_and_field(client, tokens):
    bad = _row("X1") | {"tenure_days": "long"}
    missing = {k: v for k, v in _row("X2").items() if k != "contract"}
    r = client.post("/v1/score", json={"rows": [bad, missing, _row("X3") | {"shoe_size": 42}]},
                    headers=auth(tokens["manager"]))
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["detail"]]
    assert ["body", "rows", 0, "tenure_days"] in locs and ["body", "rows", 1, "contract"] in locs
    assert ["body", "rows", 2, "shoe_size"] in locs
    assert client.post("/v1/score", json={"rows": []}, headers=auth(tokens["manager"])).status_code == 422


# ------------------------------------------------------------------ OpenAPI

def test_openapi_documents_the_versioned_routes(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/customers/{customer_id}", "/v1/score", "/v1/reps/{rep_id}/actions", "/v1/outcomes",
                 "/v1/events", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert spec["paths"]["/v1/outcomes"]["post"]["summary"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_customer_view_carries_open_alerts_and_the_last_outcome(client, runs, tokens):
    planned = _planned(runs, control=False)
    cid, head = planned["customer_id"], auth(tokens["manager"])
    event = {"type": "survey", "customer_id": cid, "nps": 4, "comment": "slow"}
    client.post("/v1/events", json=event, headers=head)
    view = client.get(f"/v1/customers/{cid}", headers=head).json()
    assert [a["kind"] for a in view["open_alerts"]] == ["detractor"]
    assert view["open_alerts"][0]["comment"] == "slow" and view["last_outcome"] is None
    done = {"customer_id": cid, "action_id": planned["action_id"], "status": "done",
            "customer_response": "ok"}
    client.post("/v1/outcomes", json=done, headers=auth(tokens[planned["rep_id"]]))
    view = client.get(f"/v1/customers/{cid}", headers=head).json()
    assert view["open_alerts"] == [] and view["last_outcome"]["customer_response"] == "ok"
    assert view["last_outcome"]["recorded_at"].startswith(str(pd.Timestamp.now("UTC").year))
