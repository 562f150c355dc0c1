"""Customer identifiers and comments never reach the logs: in process, and from a real `cem serve`."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.db import events as db_events
from serving.db import read as db_read
from serving.logsafe import MASK, redact_path
from tests.serving.conftest import COMMENT, auth, owner
from tests.serving.live import live_service

SECRET_RESPONSE = "my neighbour Ann says your support is useless"
SECRET_SURVEY = "cancelling after the outage, tell nobody"


def test_access_log_path_is_redacted():
    assert redact_path("/v1/customers/C0000042?fresh=true") == "/v1/customers/{customer_id}"
    assert redact_path("/reps/R001?page=2") == "/reps/R001"


def test_values_of_a_request_are_masked_in_messages_and_tracebacks(app, runs, tokens, caplog, monkeypatch):
    """A library that logged a customer id or a comment, even inside a traceback, logs masks instead."""
    log = logging.getLogger("some.library")
    real_view, real_record = db_read.customer_view, db_events.record_outcome

    def noisy_view(engine, customer_id, run=None):
        try:
            raise LookupError(f"row for {customer_id} is odd")
        except LookupError:
            log.exception("customer %s: view failed", customer_id)
        return real_view(engine, customer_id, run)

    def noisy_record(engine, outcome, **kwargs):
        log.warning("recording %s for %s: %s", outcome.status, outcome.customer_id, outcome.customer_response)
        return real_record(engine, outcome, **kwargs)

    monkeypatch.setattr(db_read, "customer_view", noisy_view)
    monkeypatch.setattr(db_events, "record_outcome", noisy_record)
    plan = runs.latest.actions
    row = plan[~plan["control_group"]].iloc[0]
    caplog.set_level(logging.WARNING, logger="httpx")    # the test's own HTTP client, not the service
    with caplog.at_level(logging.INFO), TestClient(app) as client:
        assert client.get("/v1/customers/C0000001", headers=auth(tokens["manager"])).status_code == 200
        body = {"customer_id": row["customer_id"], "action_id": row["action_id"], "status": "done",
                "customer_response": SECRET_RESPONSE}
        assert client.post("/v1/outcomes", json=body, headers=auth(tokens[row["rep_id"]])).status_code == 201
    text = caplog.text
    assert "view failed" in text and "recording done" in text and MASK in text
    for secret in ("C0000001", row["customer_id"], SECRET_RESPONSE, "row for"):
        if secret == "row for":
            assert f"row for {MASK}" in text                 # the traceback is there, masked
        else:
            assert secret not in text, secret


@pytest.mark.slow
def test_a_real_server_logs_no_customer_ids_or_comments(settings, runs, tokens, tmp_path):
    """uvicorn's access log and the app's own log lines from `cem serve`, captured from the process."""
    log_file = tmp_path / "serve.log"
    plan = runs.latest.actions
    row = plan[~plan["control_group"]].iloc[0]
    rep = owner(runs.latest, "C0000001")
    manager = auth(tokens["manager"])
    env = {"CEM_SERVING__MODEL_REFRESH_SECONDS": "3600"}
    with live_service(settings.data_dir, log_file, env) as base, httpx.Client(base_url=base) as http:
        assert http.get("/v1/customers/C0000001", headers=auth(tokens[rep])).status_code == 200
        assert http.get("/v1/customers/C0000001?fresh=true", headers=manager).status_code in (200, 503)
        assert http.get("/v1/customers/NOPE-C99", headers=manager).status_code == 404
        outcome = {"customer_id": row["customer_id"], "action_id": row["action_id"], "status": "declined",
                   "decline_reason": "price", "customer_response": SECRET_RESPONSE}
        assert http.post("/v1/outcomes", json=outcome, headers=auth(tokens[row["rep_id"]])).status_code == 201
        event = {"type": "survey", "customer_id": "C0000001", "nps": 2, "comment": SECRET_SURVEY}
        assert http.post("/v1/events", json=event, headers=manager).status_code == 200
        bad = {"type": "survey", "customer_id": "C0000001", "nps": 42, "comment": SECRET_SURVEY}
        assert http.post("/v1/events", json=bad, headers=manager).status_code == 422
        http.post("/login", data={"token": tokens[rep]})
        assert http.get(f"/reps/{rep}").status_code == 200
    text = log_file.read_text()
    assert '"GET /v1/customers/{customer_id} HTTP/1.1" 200' in text      # the access log is on
    assert '"POST /v1/outcomes HTTP/1.1" 201' in text
    for secret in ("C0000001", "NOPE-C99", row["customer_id"], SECRET_RESPONSE, SECRET_SURVEY, COMMENT,
                   "fresh=true"):
        assert secret not in text, secret
