"""What the API refuses: values the data contract would quarantine, non-finite numbers, future dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from features.ingest.schemas import CONTRACTS
from serving.input_rules import contract_bounds, contract_values, feature_bounds
from tests.serving.conftest import auth


def _row(**changes) -> dict:
    return {"customer_id": "X1", "tenure_days": 100, "monthly_charge": 30.0, "tickets_open_now": 1,
            "usage_last_month": 5.0, "contract": "one_year"} | changes


def _score(client, tokens, body):
    return client.post("/v1/score", json=body, headers=auth(tokens["manager"]))


def _raw(client, tokens, path: str, text: str):
    """Python's JSON reader takes Infinity, NaN and 1e309 (inf): post them as text."""
    headers = {**auth(tokens["manager"]), "content-type": "application/json"}
    return client.post(path, content=text, headers=headers)


def test_the_rules_are_the_contracts_own():
    assert contract_bounds("survey_responses", "nps") == (0, 10)
    assert contract_values("billing_invoices", "contract") == CONTRACTS
    assert feature_bounds("tenure_days", "float") == (0, None)
    assert feature_bounds("active_days_last_month", "float") == (0, 31)
    assert feature_bounds("complaint_max_severity_90d", "int") == (0, 3)    # 0: no complaint
    assert feature_bounds("price_change_90d_pct", "float") == (None, None)  # may fall


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("tenure_days", -5, ">= 0"),
        ("contract", "lifetime", "one of month_to_month"),
        ("tickets_open_now", -1, ">= 0"),
    ],
)
def test_a_feature_row_outside_the_contract_is_422_naming_row_and_field(client, tokens, field, value, says):
    r = _score(client, tokens, {"rows": [_row(), _row(customer_id="X2", **{field: value})]})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, field] and says in error["msg"]
    assert f"rows.1.{field}" in r.json()["message"]


@pytest.mark.parametrize("number", ["1e309", "Infinity", "-Infinity", "NaN"])
def test_non_finite_numbers_are_refused_everywhere(client, tokens, number):
    row = f'{{"customer_id": "X1", "tenure_days": 100, "monthly_charge": {number}, "tickets_open_now": 1, ' \
          '"usage_last_month": 5.0, "contract": "one_year"}'
    r = _raw(client, tokens, "/v1/score", f'{{"rows": [{row}]}}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "rows", 0, "monthly_charge"]
    assert "finite" in r.json()["detail"][0]["msg"]
    usage = f'{{"type": "usage", "customer_id": "C0000001", "month": "2025-01-01", "usage_units": {number}}}'
    r = _raw(client, tokens, "/v1/events", usage)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "usage_units"


def test_a_valid_row_still_scores(client, tokens):
    assert _score(client, tokens, {"rows": [_row(tenure_days=0, contract=None)]}).status_code == 200


def test_events_dated_in_the_future_are_refused(client, tokens):
    head = auth(tokens["manager"])
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    survey = {"type": "survey", "customer_id": "C0000001", "nps": 2}
    r = client.post("/v1/events", json=survey | {"answered_at": "2099-01-01T00:00:00"}, headers=head)
    assert r.status_code == 422 and "answered_at" in r.json()["message"] and "future" in r.json()["message"]
    assert client.post("/v1/events", json=survey | {"answered_at": later}, headers=head).status_code == 422
    skew = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()          # a clock slightly ahead
    assert client.post("/v1/events", json=survey | {"answered_at": skew}, headers=head).status_code == 200
    next_month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    usage = {"type": "usage", "customer_id": "C0000001", "usage_units": 3.0}
    r = client.post("/v1/events", json=usage | {"month": next_month.isoformat()}, headers=head)
    assert r.status_code == 422 and "month" in r.json()["message"]
    r = client.post("/v1/events", json=usage | {"month": "2025-01-15"}, headers=head)
    assert r.status_code == 422 and "first day of a month" in r.json()["message"]
    r = client.post("/v1/score", json={"as_of": "2099-01-01", "rows": [_row()]}, headers=head)
    assert r.status_code == 422 and "as_of" in r.json()["message"]


def test_survey_and_usage_ranges(client, tokens):
    head = auth(tokens["manager"])
    for nps in (-1, 11):
        survey = {"type": "survey", "customer_id": "C0000001", "nps": nps}
        r = client.post("/v1/events", json=survey, headers=head)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "nps"
    usage = {"type": "usage", "customer_id": "C0000001", "month": "2025-01-01", "usage_units": -3}
    r = client.post("/v1/events", json=usage, headers=head)
    assert r.status_code == 422 and "usage_units" in r.json()["message"]
