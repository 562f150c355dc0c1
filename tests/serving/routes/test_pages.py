"""The reps' page over HTTP (server-rendered): sign-in cookie, the list, escaping, outcome forms."""

from __future__ import annotations

from tests.serving.conftest import COMMENT, owner


def _sign_in(client, token: str):
    return client.post("/login", content=f"token={token}", follow_redirects=False,
                       headers={"content-type": "application/x-www-form-urlencoded"})


def test_sign_in_sets_an_httponly_cookie_and_goes_to_the_list(client, tokens):
    r = _sign_in(client, tokens["R002"])
    assert r.status_code == 303 and r.headers["location"] == "/reps/R002"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert cookie.startswith("cem_session=") and tokens["R002"].lower() not in cookie
    page = client.get("/reps/R002")
    assert page.status_code == 200 and "Actions for R002" in page.text


def test_a_wrong_token_is_refused(client):
    r = _sign_in(client, "guess")
    assert r.status_code == 401 and "Unknown token" in r.text


def test_without_a_cookie_the_page_sends_to_sign_in(client):
    r = client.get("/reps/R001", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_another_reps_page_is_forbidden(client, tokens):
    _sign_in(client, tokens["R001"])
    assert client.get("/reps/R002").status_code == 403


def test_the_list_shows_risk_nps_reasons_and_the_action(client, runs, tokens):
    rep = owner(runs.latest, "C0000001")
    _sign_in(client, tokens[rep])
    html = client.get(f"/reps/{rep}?page=1").text
    first_plan = runs.latest.actions.query("rep_id == @rep and not control_group").sort_values("rank").iloc[0]
    assert f"Customer {first_plan['customer_id']}" in html
    assert first_plan["action_label"] in html and "risk" in html and "Predicted NPS" in html
    assert "Support friction" in html                       # a reason in plain words
    assert "Expected value" in html or "expected value" in html


def test_the_escaped_comment_reaches_the_page(client, runs, tokens):
    """C0000001 carries the markup comment; an alert puts it on page one of its rep's list."""
    rep = owner(runs.latest, "C0000001")
    client.post("/v1/events", json={"type": "survey", "customer_id": "C0000001", "nps": 1,
                                    "comment": "<b>bold</b> & <script>x()</script>"},
                headers={"Authorization": f"Bearer {tokens['manager']}"})
    _sign_in(client, tokens[rep])
    html = client.get(f"/reps/{rep}").text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html and COMMENT not in html
    assert "<script>" not in html


def test_recording_an_outcome_from_the_page(client, runs, tokens):
    plan = runs.latest.actions
    row = plan[~plan["control_group"]].sort_values("rank").iloc[0]
    _sign_in(client, tokens[row["rep_id"]])
    form = (f"customer_id={row['customer_id']}&action_id={row['action_id']}&status=declined"
            "&decline_reason=already+switched&customer_response=too+late&page=1&position=1")
    r = client.post(f"/reps/{row['rep_id']}/outcomes", content=form, follow_redirects=False,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and "saved=1" in r.headers["location"]
    html = client.get(r.headers["location"]).text
    assert "Outcome saved." in html and "Recorded: Declined" in html and "already switched" in html


def test_a_bad_outcome_form_says_which_field(client, runs, tokens):
    plan = runs.latest.actions
    row = plan[~plan["control_group"]].iloc[0]
    _sign_in(client, tokens[row["rep_id"]])
    form = f"customer_id={row['customer_id']}&action_id={row['action_id']}&status=declined&page=1"
    r = client.post(f"/reps/{row['rep_id']}/outcomes", content=form,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "decline_reason is required" in r.text


def test_a_manager_sees_the_reps_index(client, tokens):
    r = _sign_in(client, tokens["manager"])
    assert r.headers["location"] == "/reps"
    html = client.get("/reps").text
    assert all(f'href="/reps/{rep}"' in html for rep in ("R001", "R002", "R003"))
