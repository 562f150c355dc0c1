"""Broken requests to the scoring service, one small case each.

Each case posts what a client (or an attacker) might really send to the real app over a small
database, and asserts the status code, a message naming the field, that no table the request
could touch changed (outcomes, alerts, usage readings, change log) and that the answer holds no
traceback or internal path.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from serving.db.events import FOLLOW_UP
from serving.db.schema import action_outcomes, alerts, customer_changes, usage_readings
from serving.routes.forms import NO_STATUS
from tests.serving.conftest import auth, owner

TABLES = (action_outcomes, alerts, usage_readings, customer_changes)
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
LEAKS = ("Traceback", 'File "', "site-packages", "/work/", ".py\"", "sqlalchemy", "pydantic_core")
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
NUMBERS = ("NaN", "Infinity", "-Infinity", "1e309")


# ------------------------------------------------------------------ helpers


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


@pytest.fixture
def unchanged(runs):
    """Asserts after the case that no table a request could write to gained or lost a row."""
    before = counts(runs.engine)
    yield
    assert counts(runs.engine) == before


def clean(r) -> str:
    """The response text, after checking it leaks nothing of the code that produced it."""
    leaked = [s for s in LEAKS if s in r.text]
    assert leaked == [], (r.status_code, r.text[:500])
    return r.text


def refused(r, code: int, *names: str) -> str:
    """The response is ``code``, names every field in ``names`` and leaks nothing; returns its message."""
    assert r.status_code == code, r.text[:500]
    body = r.json()
    message = body.get("message") or str(body.get("detail"))
    assert all(n in message for n in names), message
    clean(r)
    return message


def row(**changes) -> dict:
    return {"customer_id": "X1", "tenure_days": 100, "monthly_charge": 30.0, "tickets_open_now": 1,
            "usage_last_month": 5.0, "contract": "one_year"} | changes


def planned(runs, rep: str) -> tuple[str, str]:
    """(customer, action) of the first action shown to ``rep`` (not held out)."""
    plan = runs.latest.actions.query("rep_id == @rep and not control_group").sort_values("rank")
    return plan["customer_id"].iloc[0], plan["action_id"].iloc[0]


def post_text(client, token: str | None, path: str, text: str, content_type: str = "application/json"):
    headers = {"content-type": content_type, **(auth(token) if token else {})}
    return client.post(path, content=text, headers=headers)


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("number", NUMBERS)
def test_a_non_finite_feature_value_is_refused_naming_row_and_field(client, tokens, unchanged, number):
    text = json.dumps({"rows": [row()]}).replace("30.0", number)
    refused(post_text(client, tokens["manager"], "/v1/score", text), 422, "rows.0.monthly_charge", "finite")


@pytest.mark.parametrize("number", NUMBERS)
def test_a_non_finite_usage_reading_writes_nothing(client, tokens, unchanged, number):
    text = f'{{"type": "usage", "customer_id": "C0000001", "month": "2025-01-01", "usage_units": {number}}}'
    refused(post_text(client, tokens["manager"], "/v1/events", text), 422, "usage_units")


@pytest.mark.parametrize(("field", "value"), [("tenure_days", -1), ("monthly_charge", -0.01),
                                              ("tickets_open_now", -2)])
def test_negative_tenure_charge_or_count_is_refused(client, tokens, unchanged, field, value):
    r = client.post("/v1/score", json={"rows": [row(**{field: value})]}, headers=auth(tokens["manager"]))
    refused(r, 422, f"rows.0.{field}", ">= 0")


def test_a_negative_usage_reading_writes_nothing(client, tokens, unchanged):
    usage = {"type": "usage", "customer_id": "C0000001", "month": "2025-01-01", "usage_units": -3}
    refused(client.post("/v1/events", json=usage, headers=auth(tokens["manager"])), 422, "usage_units")


@pytest.mark.parametrize("nps", [-1, 11])
def test_a_score_outside_the_survey_scale_raises_no_alert(client, tokens, unchanged, nps):
    survey = {"type": "survey", "customer_id": "C0000001", "nps": nps, "comment": "bad"}
    refused(client.post("/v1/events", json=survey, headers=auth(tokens["manager"])), 422, "nps")


def test_an_integer_too_large_for_a_float_is_refused_not_a_500(client, tokens, unchanged):
    text = json.dumps({"rows": [row()]}).replace('"tenure_days": 100', '"tenure_days": 1' + "0" * 400)
    refused(post_text(client, tokens["manager"], "/v1/score", text), 422, "rows.0.tenure_days", "finite")


# ------------------------------------------------------------------ categories, dates, types, fields


def test_an_unknown_contract_category_is_refused_listing_the_allowed_ones(client, tokens, unchanged):
    r = client.post("/v1/score", json={"rows": [row(contract="lifetime")]}, headers=auth(tokens["manager"]))
    refused(r, 422, "rows.0.contract", "one of")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "survey", "customer_id": "C0000001", "nps": 0, "answered_at": "2099-01-01T00:00:00"},
         "answered_at"),
        ({"type": "usage", "customer_id": "C0000001", "month": "2099-01-01", "usage_units": 0.0}, "month"),
    ],
)
def test_an_event_pinned_in_2099_is_refused_and_raises_no_alert(client, tokens, unchanged, body, field):
    refused(client.post("/v1/events", json=body, headers=auth(tokens["manager"])), 422, field, "future")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_beyond_the_calendar_in_utc_is_refused_not_a_500(client, tokens, unchanged, when):
    survey = {"type": "survey", "customer_id": "C0000001", "nps": 0, "answered_at": when}
    r = client.post("/v1/events", json=survey, headers=auth(tokens["manager"]))
    refused(r, 422, "answered_at", "range")


def test_a_reading_for_the_first_month_of_the_calendar_is_kept_not_a_500(client, runs, tokens):
    usage = {"type": "usage", "customer_id": "C0000001", "month": "0001-01-01", "usage_units": 100.0}
    before = counts(runs.engine)
    r = client.post("/v1/events", json=usage, headers=auth(tokens["manager"]))
    assert r.status_code == 200 and not r.json()["alert_raised"], r.text
    assert counts(runs.engine)["usage_readings"] == before["usage_readings"] + 1


def test_a_scoring_date_in_2099_is_refused(client, tokens):
    body = {"as_of": "2099-01-01", "rows": [row()]}
    r = client.post("/v1/score", json=body, headers=auth(tokens["manager"]))
    refused(r, 422, "as_of", "future")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/events", {"type": "survey", "customer_id": "C0000001", "nps": "very low"}, "nps"),
        ("/v1/events", {"type": "usage", "customer_id": "C0000001", "month": "January",
                        "usage_units": 1.0}, "month"),
        ("/v1/events", {"type": "survey", "customer_id": ["C0000001"], "nps": 1}, "customer_id"),
        ("/v1/outcomes", {"customer_id": "C0000001", "action_id": FOLLOW_UP, "status": 1}, "status"),
        ("/v1/score", {"rows": "all of them"}, "rows"),
        ("/v1/score", {"rows": [row(tenure_days="long")]}, "rows.0.tenure_days"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_it(client, tokens, unchanged, path, body, field):
    refused(client.post(path, json=body, headers=auth(tokens["manager"])), 422, field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/outcomes", {"customer_id": "C0000001", "action_id": FOLLOW_UP}, "status"),
        ("/v1/outcomes", {"action_id": FOLLOW_UP, "status": "done"}, "customer_id"),
        ("/v1/events", {"type": "survey", "customer_id": "C0000001"}, "nps"),
        ("/v1/events", {"customer_id": "C0000001", "nps": 1}, "type"),
        ("/v1/score", {}, "rows"),
        ("/v1/score", {"rows": [{k: v for k, v in row().items() if k != "contract"}]}, "rows.0.contract"),
    ],
)
def test_a_missing_required_field_is_named(client, tokens, unchanged, path, body, field):
    refused(client.post(path, json=body, headers=auth(tokens["manager"])), 422, field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/outcomes", {"customer_id": "C0000001", "action_id": FOLLOW_UP, "status": "done",
                          "recorded_by": "R009"}, "recorded_by"),
        ("/v1/events", {"type": "survey", "customer_id": "C0000001", "nps": 1, "rep_id": "R009"}, "rep_id"),
        ("/v1/score", {"rows": [row()], "model_version": "1"}, "model_version"),
        ("/v1/score", {"rows": [row(shoe_size=42)]}, "rows.0.shoe_size"),
    ],
)
def test_an_unknown_field_is_refused_not_ignored(client, tokens, unchanged, path, body, field):
    refused(client.post(path, json=body, headers=auth(tokens["manager"])), 422, field)


def test_a_declined_outcome_needs_its_reason_and_free_text_has_a_length(client, runs, tokens, unchanged):
    cid, action = planned(runs, "R001")
    head = auth(tokens["R001"])
    base = {"customer_id": cid, "action_id": action}
    r = client.post("/v1/outcomes", json=base | {"status": "declined"}, headers=head)
    refused(r, 422, "decline_reason")
    long = base | {"status": "done", "customer_response": "x" * 2001}
    refused(client.post("/v1/outcomes", json=long, headers=head), 422, "customer_response", "2000")


# ------------------------------------------------------------------ bodies


def test_an_oversized_body_is_413_before_authentication(client, app, unchanged):
    limit = app.state.services.settings.serving.max_body_bytes
    text = '{"type": "survey", "customer_id": "C0000001", "nps": 1, "comment": "' + "x" * limit + '"}'
    for headers in ({}, auth("not-a-token")):                   # no token, a wrong token: 413, not 401
        r = client.post("/v1/events", content=text, headers={**JSON, **headers})
        refused(r, 413, "max_body_bytes")


def test_an_oversized_body_is_413_for_a_signed_in_caller_too(client, app, tokens, unchanged):
    limit = app.state.services.settings.serving.max_body_bytes
    text = '{"type": "survey", "customer_id": "C0000001", "nps": 1, "comment": "' + "x" * limit + '"}'
    refused(post_text(client, tokens["manager"], "/v1/events", text), 413, "max_body_bytes")

    def chunks():                                              # no Content-Length: counted as it streams
        yield text[:1000].encode()
        for _ in range(limit // 65536 + 1):
            yield b"x" * 65536

    r = client.post("/v1/outcomes", content=chunks(), headers={**JSON, **auth(tokens["R001"])})
    refused(r, 413, "max_body_bytes")


def test_more_rows_than_a_batch_may_hold_is_413_naming_the_setting(client, app, tokens):
    limit = app.state.services.settings.serving.max_batch_rows
    r = client.post("/v1/score", json={"rows": [row()] * (limit + 1)}, headers=auth(tokens["manager"]))
    refused(r, 413, "max_batch_rows")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"type": "survey", "customer_id": "C0000001", "nps": 1',
         "body: not valid JSON (error at character 54)"),
        ("{'type': 'survey'}", "body: not valid JSON (error at character 1)"),
        ("", "body: a JSON object is required"),
        ("null", "body: a JSON object is required"),
        ("[1, 2]", "body: must be a JSON object"),
    ],
)
def test_malformed_json_is_422_saying_where_it_breaks(client, tokens, unchanged, text, says):
    refused(post_text(client, tokens["manager"], "/v1/events", text), 422, says)


@pytest.mark.parametrize("content_type",
                         ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_json_body_sent_as_another_content_type_is_refused_naming_it(client, tokens, unchanged,
                                                                        content_type):
    text = json.dumps({"customer_id": "C0000001", "action_id": FOLLOW_UP, "status": "done"})
    r = post_text(client, tokens["R001"], "/v1/outcomes", text, content_type)
    refused(r, 422, "body: must be a JSON object sent as Content-Type: application/json", content_type)


# ------------------------------------------------------------------ who and what


def test_no_token_or_a_wrong_token_is_401_and_writes_nothing(client, runs, unchanged):
    cid, action = planned(runs, "R001")
    body = {"customer_id": cid, "action_id": action, "status": "done"}
    for headers in ({}, auth("not-a-token"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = client.post("/v1/outcomes", json=body, headers=headers)
        assert r.status_code == 401, r.text
        clean(r)


def test_an_outcome_for_another_reps_customer_is_the_unknown_ids_404(client, runs, tokens, unchanged):
    cid, action = planned(runs, "R001")
    assert owner(runs.latest, cid) == "R001"
    head = auth(tokens["R002"])
    foreign = client.post("/v1/outcomes", json={"customer_id": cid, "action_id": action, "status": "done"},
                          headers=head)
    unknown = client.post("/v1/outcomes", json={"customer_id": "C9999999", "action_id": action,
                                                "status": "done"}, headers=head)
    assert foreign.status_code == unknown.status_code == 404 and foreign.text == unknown.text
    clean(foreign)


def test_an_outcome_with_an_unknown_action_is_422_naming_action_id(client, runs, tokens, unchanged):
    cid, _ = planned(runs, "R001")
    body = {"customer_id": cid, "action_id": "free_holiday", "status": "done"}
    r = client.post("/v1/outcomes", json=body, headers=auth(tokens["R001"]))
    refused(r, 422, "action_id", "free_holiday")


def test_an_event_for_an_unknown_customer_is_404_and_stores_no_reading(client, tokens, unchanged):
    usage = {"type": "usage", "customer_id": "C9999999", "month": "2025-01-01", "usage_units": 1.0}
    r = client.post("/v1/events", json=usage, headers=auth(tokens["manager"]))
    assert r.status_code == 404
    clean(r)


def test_a_rep_may_not_post_events_or_score(client, tokens, unchanged):
    survey = {"type": "survey", "customer_id": "C0000001", "nps": 0}
    assert client.post("/v1/events", json=survey, headers=auth(tokens["R001"])).status_code == 403
    assert client.post("/v1/score", json={"rows": [row()]}, headers=auth(tokens["R001"])).status_code == 403


# ------------------------------------------------------------------ the page's forms


def _sign_in(client, token: str) -> None:
    r = client.post("/login", content=f"token={token}", headers=FORM, follow_redirects=False)
    assert r.status_code == 303


def test_a_form_without_an_outcome_shows_the_pages_message_and_writes_nothing(client, runs, tokens,
                                                                               unchanged):
    cid, action = planned(runs, "R001")
    _sign_in(client, tokens["R001"])
    for path, form in ((f"/customers/{cid}/outcomes", f"action_id={action}&status="),
                       ("/reps/R001/outcomes", f"customer_id={cid}&action_id={action}&page=1&position=1")):
        r = client.post(path, content=form, headers=FORM)
        assert r.status_code == 422 and NO_STATUS in clean(r), path
        assert '<option value="" selected>' in r.text                  # still no outcome chosen for them


def test_a_form_with_a_broken_field_names_it_on_the_page(client, runs, tokens, unchanged):
    cid, action = planned(runs, "R001")
    _sign_in(client, tokens["R001"])
    r = client.post(f"/customers/{cid}/outcomes", content=f"action_id={action}&status=declined", headers=FORM)
    assert r.status_code == 422 and "decline_reason" in clean(r)
    r = client.post(f"/customers/{cid}/outcomes", content="action_id=free_holiday&status=done", headers=FORM)
    assert r.status_code == 422 and "action_id" in clean(r)
    r = client.post(f"/customers/{cid}/outcomes", content=f"action_id={action}&status=maybe", headers=FORM)
    assert r.status_code == 422 and "status" in clean(r)
    r = client.post(f"/customers/{cid}/outcomes", content=b"action_id=\xff\xfe&status=done", headers=FORM)
    assert r.status_code == 422 and "action_id" in clean(r)         # bytes that are not UTF-8


def test_script_in_free_text_is_stored_as_sent_and_shown_escaped(client, runs, tokens):
    cid, action = planned(runs, "R001")
    body = {"customer_id": cid, "action_id": action, "status": "declined", "decline_reason": XSS,
            "customer_response": XSS}
    r = client.post("/v1/outcomes", json=body, headers=auth(tokens["R001"]))
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert r.json()["customer_response"] == XSS                       # JSON: data, never markup
    with runs.engine.connect() as conn:
        columns = action_outcomes.c.decline_reason, action_outcomes.c.customer_response
        stored = conn.execute(select(*columns)).one()
    assert tuple(stored) == (XSS, XSS)                                # kept as sent (escaped when shown)
    survey = {"type": "survey", "customer_id": cid, "nps": 0, "comment": XSS}
    assert client.post("/v1/events", json=survey, headers=auth(tokens["manager"])).status_code == 200
    _sign_in(client, tokens["R001"])
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    for path in (f"/customers/{cid}", "/reps/R001"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert escaped in html, path
