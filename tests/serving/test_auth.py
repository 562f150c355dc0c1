"""Tokens that expire and rotate, the reps' page session, and the one 404 for unknown and foreign ids."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update
from typer.testing import CliRunner

from pipelines.cli import app as cli
from serving.auth import hash_token, rotate_token
from serving.db.schema import reps, web_sessions
from serving.db.write import utcnow
from tests.serving.conftest import auth, owner

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _sign_in(client, token: str):
    return client.post("/login", content=f"token={token}", headers=FORM, follow_redirects=False)


def _expire(engine, rep_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(reps).where(reps.c.rep_id == rep_id).values(expires_at=utcnow() - timedelta(1)))


def _other(runs, customer_id: str) -> tuple[str, str]:
    rep = owner(runs.latest, customer_id)
    return rep, next(r for r in ("R001", "R002", "R003") if r != rep)


# ------------------------------------------------------------------ one 404 for unknown and foreign


def test_another_reps_customer_gets_the_very_answer_of_an_unknown_id(client, runs, tokens):
    _, other = _other(runs, "C0000001")
    head = auth(tokens[other])
    for query in ("", "?fresh=true", "?fresh=false&x=1"):  # the fast path and FastAPI's route
        foreign = client.get(f"/v1/customers/C0000001{query}", headers=head)
        unknown = client.get(f"/v1/customers/C9999999{query}", headers=head)
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.content == unknown.content
    outcome = {"action_id": "service_recovery_call", "status": "done"}
    foreign = client.post("/v1/outcomes", json=outcome | {"customer_id": "C0000001"}, headers=head)
    unknown = client.post("/v1/outcomes", json=outcome | {"customer_id": "C9999999"}, headers=head)
    assert foreign.status_code == unknown.status_code == 404 and foreign.content == unknown.content


def test_the_page_answers_an_outcome_for_a_foreign_customer_as_for_an_unknown_one(client, runs, tokens):
    _, other = _other(runs, "C0000001")
    _sign_in(client, tokens[other])
    pages = [
        client.post(f"/reps/{other}/outcomes", headers=FORM,
                    content=f"customer_id={cid}&action_id=service_recovery_call&status=done&page=1")
        for cid in ("C0000001", "C9999999")
    ]
    assert [p.status_code for p in pages] == [404, 404] and pages[0].text == pages[1].text


# ------------------------------------------------------------------ expiry and rotation


def test_an_expired_token_is_401_saying_so(app, client, runs, tokens):
    _expire(runs.engine, "R001")
    app.state.services.principals.clear()
    r = client.get("/v1/reps/R001/actions", headers=auth(tokens["R001"]))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    r = client.get("/v1/customers/C0000001", headers=auth(tokens["R001"]))  # the fast path too
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert client.get("/v1/reps/R002/actions", headers=auth(tokens["R002"])).status_code == 200
    page = _sign_in(client, tokens["R001"])
    assert page.status_code == 401 and "expired" in page.text


def test_rotating_a_token_revokes_the_old_one_and_its_sessions(app, client, runs, tokens):
    _sign_in(client, tokens["R002"])
    assert client.get("/reps/R002").status_code == 200
    new = rotate_token(runs.engine, "R002", expires_in_days=1)
    app.state.services.principals.clear()  # the service re-reads a token within seconds
    assert client.get("/v1/reps/R002/actions", headers=auth(tokens["R002"])).status_code == 401
    assert client.get("/v1/reps/R002/actions", headers=auth(new)).status_code == 200
    assert client.get("/reps/R002", follow_redirects=False).status_code == 303   # signed out
    assert client.get("/v1/reps/R001/actions", headers=auth(tokens["R001"])).status_code == 200


def test_cem_tokens_sets_an_expiry_and_rotates_one_rep(settings, runs):
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    result = runner.invoke(cli, ["tokens", "--expires-in", "2", *data])
    assert result.exit_code == 0, result.output
    path = settings.serving_dir / "tokens.json"
    first = json.loads(path.read_text())
    with runs.engine.connect() as conn:
        rows = {r.rep_id: r for r in conn.execute(select(reps))}
    assert set(rows) == set(first) and all(r.token_hash == hash_token(first[k]) for k, r in rows.items())
    left = rows["R001"].expires_at - utcnow()
    assert timedelta(days=1, hours=23) < left <= timedelta(days=2)
    result = runner.invoke(cli, ["tokens", "--rep", "R001", "--expires-in", "0", *data])
    assert result.exit_code == 0, result.output
    second = json.loads(path.read_text())
    assert second["R001"] != first["R001"] and second["R002"] == first["R002"]
    with runs.engine.connect() as conn:
        rows = {r.rep_id: r for r in conn.execute(select(reps))}
    assert rows["R001"].token_hash == hash_token(second["R001"]) and rows["R001"].expires_at is None
    result = runner.invoke(cli, ["tokens", "--rep", "R999", *data])
    assert result.exit_code == 2 and "R999" in result.output


# ------------------------------------------------------------------ the page's session


def test_the_session_cookie_is_not_the_token_and_ends_on_sign_out(client, runs, tokens):
    r = _sign_in(client, tokens["R002"])
    cookie = r.headers["set-cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value and value != tokens["R002"] and tokens["R002"] not in cookie
    assert "Max-Age=43200" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    with runs.engine.connect() as conn:
        stored = conn.execute(select(web_sessions.c.session_hash)).scalars().all()
    assert stored == [hash_token(value)]                       # only its hash is kept
    client.post("/logout", follow_redirects=False)
    client.cookies.set("cem_session", value)                    # a copied cookie no longer works
    assert client.get("/reps/R002", follow_redirects=False).status_code == 303
    assert client.get("/v1/reps/R002/actions").status_code == 401


def test_the_cookie_is_secure_when_served_over_https(settings, runs, tokens, online):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from tests.serving.conftest import fake_bundle, fake_score

    https = settings.model_copy(update={"serving": settings.serving.model_copy(update={"https": True})})
    app = create_app(https, model_loader=fake_bundle, score_fn=fake_score,
                     online=lambda s, service: online, refresh=False)
    with TestClient(app, base_url="https://testserver") as client:
        r = _sign_in(client, tokens["R001"])
        assert "Secure" in r.headers["set-cookie"]
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_an_expired_session_sends_to_sign_in(client, runs, tokens):
    _sign_in(client, tokens["R003"])
    with runs.engine.begin() as conn:
        conn.execute(update(web_sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    client.app.state.services.principals.clear()
    assert client.get("/reps/R003", follow_redirects=False).status_code == 303
    r = client.get("/v1/reps/R003/actions")
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_tokens_issued_on_a_database_made_before_expiry_existed(tmp_path):
    from sqlalchemy import Column, DateTime, MetaData, String, Table

    from serving.auth import issue_tokens, principal_for
    from serving.db.schema import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Table("reps", MetaData(), Column("rep_id", String(64), primary_key=True),
                Column("role", String(16)), Column("token_hash", String(64)), Column("created_at", DateTime))
    bare = make_engine(url, create=False)
    old.create(bare)
    engine = make_engine(url)                                  # the other tables are created as usual
    issued = issue_tokens(engine, ["R001"], expires_in_days=1)
    assert principal_for(engine, issued["R001"]).expires_at > utcnow()
