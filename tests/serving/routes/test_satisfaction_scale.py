"""A company scored on CSAT (1-5): the stored columns keep their NPS names, every place a
person reads them says the scale (API field, rep's list, customer page)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from models.nps.scale import CSAT
from serving.db.schema import engine_for
from serving.db.write import write_scoring_run
from serving.page_views import satisfaction_label
from tests.serving.conftest import DAY2, auth, fake_bundle
from tests.serving.factory import META, make_run

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _csat_run():
    run = make_run(DAY2, seed=3)
    c = run.customers
    c["predicted_nps"] = np.linspace(1.2, 4.9, len(c)).round(2)
    c["nps_class"] = np.asarray(CSAT.classes, dtype=object)[CSAT.classify(c["predicted_nps"].round())]
    c["last_nps"] = np.nan
    run.tags["nps_class"] = c["nps_class"]
    run.meta = dataclasses.replace(META, params={**META.params, "satisfaction_scale": CSAT.code})
    return run


@pytest.fixture
def runs(settings):
    """One complete run of a CSAT company (this module's own ``runs``)."""
    engine = engine_for(settings)
    run = _csat_run()
    return SimpleNamespace(engine=engine, second=write_scoring_run(engine, run), latest=run)


def test_the_api_names_the_scale_of_a_stored_csat_run(client, runs, tokens):
    row = runs.latest.customers.iloc[-1]
    body = client.get(f"/v1/customers/{row['customer_id']}", headers=auth(tokens["manager"])).json()
    assert body["satisfaction_scale"] == "csat_1_5"
    assert body["predicted_nps"] == pytest.approx(row["predicted_nps"]) and body["predicted_nps"] <= 5
    assert body["tags"]["nps_class"] == "satisfied"
    page = client.get("/v1/reps/R001/actions", headers=auth(tokens["R001"])).json()
    assert page["satisfaction_scale"] == "csat_1_5"


def test_the_reps_pages_say_csat_not_nps(client, runs, tokens):
    client.post("/login", content=f"token={tokens['manager']}", headers=FORM, follow_redirects=False)
    for html in (client.get("/customers/C0000001").text, client.get("/reps/R001").text):
        assert "Predicted CSAT (1-5)" in html and "Predicted NPS" not in html


def test_a_fresh_score_takes_the_champion_models_scale(app, client, runs, tokens):
    app.state.fake.bundle = SimpleNamespace(**vars(fake_bundle("4")), nps=SimpleNamespace(scale=CSAT))
    app.state.models.refresh()
    body = client.get("/v1/customers/C0000001?fresh=true", headers=auth(tokens["manager"])).json()
    assert body["fresh"] is True and body["satisfaction_scale"] == "csat_1_5"


def test_runs_and_bundles_without_a_scale_read_as_nps():
    assert satisfaction_label(None) == "Predicted NPS (0-10)"
    assert satisfaction_label("csat_1_5") == "Predicted CSAT (1-5)"
