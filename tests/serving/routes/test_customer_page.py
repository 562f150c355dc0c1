"""The customer's page, the rep's list order and form, and the manager's summary, over HTTP on a
small hand-made run (comment dates, contact channels, alerts of every kind, markup in every
free-text field)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import func, select

from serving.db.events import FOLLOW_UP
from serving.db.schema import action_outcomes, action_plan, alerts, engine_for
from serving.db.write import write_scoring_run
from serving.routes.forms import NO_STATUS
from tests.serving.conftest import DAY2, auth
from tests.serving.factory import make_run

XSS = "<script>alert(1)</script>"
FORM = {"content-type": "application/x-www-form-urlencoded"}
CHANNELS = json.dumps({"call": "ok", "email": "opted_out"})
# R001's alerts (customers 4, 7, 10, 13 belong to R001): kind, customer
ALERTS = [("usage_drop", "C0000004"), ("save_desk", "C0000007"), ("detractor", "C0000010"),
          ("high_risk", "C0000013")]


def _run():
    run = make_run(DAY2, seed=2, comment=f"{XSS} still waiting")
    c = run.customers
    c["latest_comment_at"] = pd.NaT
    c.loc[0, "latest_comment_at"] = pd.Timestamp("2025-01-02 09:30")       # 11 days before the run
    c.loc[3, ["latest_comment", "latest_comment_at"]] = [f"old {XSS}", pd.Timestamp("2023-07-01")]
    c["contact_channels"] = CHANNELS
    c["reasons"] = c["reasons"].str.replace("Support friction", f"Support friction {XSS}")
    run.actions["why"] = f"why {XSS}"
    run.tag_events["cause"] = run.tag_events["cause"] + XSS
    run.actions["action_label"] = run.actions["action_label"] + XSS
    run.alerts = pd.DataFrame({"customer_id": [cid for _, cid in ALERTS], "rep_id": "R001",
                               "kind": [k for k, _ in ALERTS], "reason": [f"{k} {XSS}" for k, _ in ALERTS]})
    return run


@pytest.fixture
def runs(settings):
    """One complete run of 60 customers, three reps (this module's own ``runs``)."""
    engine = engine_for(settings)
    run = _run()
    return SimpleNamespace(engine=engine, second=write_scoring_run(engine, run), latest=run)


def _sign_in(client, token):
    client.post("/login", content=f"token={token}", headers=FORM, follow_redirects=False)


def test_the_customer_page_shows_scores_reasons_comment_date_and_channels(client, runs, tokens):
    _sign_in(client, tokens["R001"])
    r = client.get("/customers/C0000001")
    assert r.status_code == 200
    html = r.text
    assert "Churn risk" in html and "tier" in html and "Predicted NPS" in html and "Value at risk" in html
    assert "Support friction" in html                                   # reasons in plain words
    assert '<time datetime="2025-01-02">2025-01-02</time>' in html       # the comment's date
    assert "No comment in the last" not in html
    assert "Phone</strong>: may be contacted" in html and "E-mail</strong>: opted out" in html
    planned = runs.latest.actions.query("rep_id == 'R001' and not control_group")
    first = planned.sort_values("rank")["customer_id"].iloc[0]
    assert f'href="/customers/{first}"' in client.get("/reps/R001?page=1").text   # linked from the list


def test_the_customer_page_shows_the_tags_history_with_its_causes(client, runs, tokens):
    _sign_in(client, tokens["R001"])
    html = client.get("/customers/C0000001").text
    history = html[html.index("<h2>Tag changes</h2>"):html.index("<h2>Recent planned actions</h2>")]
    assert "churn risk tier" in history and "<td>low</td>" in history
    assert "churn probability crossed the tier band" in history
    assert XSS not in history and "&lt;script&gt;" in history          # the cause is escaped
    other = client.get("/customers/C0000007").text                       # no event for this one
    assert "No tag change recorded." in other


def test_an_old_comment_says_none_recent(client, tokens):
    _sign_in(client, tokens["R001"])
    html = client.get("/customers/C0000004").text
    assert "No comment in the last 90 days." in html and "2023-07-01" in html


def test_every_free_text_field_is_escaped(client, tokens):
    client.post("/v1/events", json={"type": "survey", "customer_id": "C0000001", "nps": 2, "comment": XSS},
                headers=auth(tokens["manager"]))
    _sign_in(client, tokens["R001"])
    form = f"action_id={FOLLOW_UP}&status=declined&decline_reason={XSS}&customer_response={XSS}"
    r = client.post("/customers/C0000001/outcomes", content=form, headers=FORM)
    assert r.status_code == 200 and "Outcome saved." in r.text
    for path in ("/customers/C0000001", "/customers/C0000004", "/customers/C0000007", "/reps/R001"):
        html = client.get(path).text
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_a_foreign_customer_gets_the_unknown_ids_404(client, tokens):
    _sign_in(client, tokens["R002"])
    foreign, unknown = client.get("/customers/C0000001"), client.get("/customers/C9999999")
    assert foreign.status_code == unknown.status_code == 404 and foreign.text == unknown.text
    form = "action_id=alert_follow_up&status=done"
    posted = client.post("/customers/C0000001/outcomes", content=form, headers=FORM)
    assert posted.status_code == 404 and posted.text == unknown.text


def test_the_manager_sees_any_customer_and_signing_in_is_required(client, tokens):
    assert client.get("/customers/C0000001", follow_redirects=False).status_code == 303
    _sign_in(client, tokens["manager"])
    assert client.get("/customers/C0000002").status_code == 200


def test_alerts_come_first_save_desk_then_by_risk_times_value(client, runs, tokens):
    _sign_in(client, tokens["R001"])
    body = client.get("/v1/reps/R001/actions?size=100", headers=auth(tokens["R001"])).json()
    alerted = [i for i in body["items"] if i["alert"]]
    assert [i["customer_id"] for i in alerted][0] == "C0000007"          # the save desk first
    rest = alerted[1:]
    loss = [i["churn_probability"] * i["value_at_risk"] for i in rest]
    assert loss == sorted(loss, reverse=True) and len(rest) == 3
    assert all(i["top_reasons"] for i in alerted)                        # alert rows carry reasons
    planned = [i["rank"] for i in body["items"] if not i["alert"]]
    assert planned == sorted(planned)
    html = client.get("/reps/R001").text                                 # the page in the same order
    order = [html.index(f'data-customer="{i["customer_id"]}"') for i in body["items"][:8]]
    assert order == sorted(order)
    assert 'href="/customers/C0000007"' in html


def test_the_form_has_no_preset_outcome_and_refuses_a_missing_one(client, runs, tokens):
    row = runs.latest.actions.query("rep_id == 'R001' and not control_group").iloc[0]
    _sign_in(client, tokens["R001"])
    html = client.get("/reps/R001").text
    assert '<option value="" selected>Choose…</option>' in html and html.count(" selected>") == html.count(
        '<option value="" selected>')
    form = f"customer_id={row['customer_id']}&action_id={row['action_id']}&status=&page=1&position=1"
    r = client.post("/reps/R001/outcomes", content=form, headers=FORM)
    assert r.status_code == 422 and NO_STATUS in r.text
    with runs.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(action_outcomes)).scalar_one() == 0


def test_following_up_an_alert_is_a_plain_button(client, runs, tokens):
    _sign_in(client, tokens["R001"])
    html = client.get("/customers/C0000007").text
    planned = set(runs.latest.actions["customer_id"])
    assert ("Follow up</button>" in html) == ("C0000007" not in planned)
    follow = next(cid for _, cid in ALERTS if cid not in planned)
    r = client.post(f"/customers/{follow}/outcomes", content=f"action_id={FOLLOW_UP}&status=no_answer",
                    headers=FORM, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Follow-up of an alert" in page and "No answer" in page


def test_the_manager_view_counts_add_up_to_the_database(client, runs, tokens):
    _sign_in(client, tokens["R001"])
    row = runs.latest.actions.query("rep_id == 'R001' and not control_group").iloc[0]
    client.post("/reps/R001/outcomes", headers=FORM,
                content=f"customer_id={row['customer_id']}&action_id={row['action_id']}&status=done")
    _sign_in(client, tokens["manager"])
    html = client.get("/reps?sort=planned&desc=true").text
    with runs.engine.connect() as conn:
        def count(query):
            return dict(conn.execute(query).all())
        shown = (action_plan.c.run_id == runs.second) & action_plan.c.control_group.is_(False)
        planned = count(select(action_plan.c.rep_id, func.count()).where(shown)
                        .group_by(action_plan.c.rep_id))
        value = count(select(action_plan.c.rep_id, func.sum(action_plan.c.expected_value)).where(shown)
                      .group_by(action_plan.c.rep_id))
        open_ = count(select(alerts.c.rep_id, func.count()).where(alerts.c.resolved_at.is_(None))
                      .group_by(alerts.c.rep_id))
        done = count(select(action_outcomes.c.rep_id, func.count()).group_by(action_outcomes.c.rep_id))
    for rep in ("R001", "R002", "R003"):
        cells = html.split(f'<tr data-rep="{rep}">')[1].split("</tr>")[0]
        expected = (planned.get(rep, 0), open_.get(rep, 0), done.get(rep, 0), f"{value.get(rep, 0):,.0f}")
        assert [f'<td class="num">{v}</td>' in cells for v in expected] == [True] * 4, rep
    assert f'<td class="num">{sum(planned.values())}</td>' in html.split("<tfoot>")[1]
    reps = [html.index(f'data-rep="{r}"') for r in sorted(planned, key=lambda r: -planned[r])]
    assert reps == sorted(reps) and done.get("R001") == 1
