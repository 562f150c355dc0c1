"""Serving fixtures: a database with two hand-made scoring runs, tokens, and an app whose
models, scoring function and online store are small fakes (the real path has its own tests)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from configs.settings import load_settings
from features.services import CHURN_SERVICE
from features.transforms.schema import ENTITY
from serving.app import create_app
from serving.auth import issue_tokens
from serving.caches.online import OnlineRow
from serving.db.schema import engine_for
from serving.db.write import write_scoring_run
from tests.serving.factory import make_run

COMMENT = "<script>alert('x')</script> support never called back"
DAY1, DAY2 = date(2025, 1, 6), date(2025, 1, 13)
FEATURES = ["tenure_days", "monthly_charge", "tickets_open_now", "usage_last_month", "contract"]


class FakeOnline:
    """An online store of a few customers, with the reader's interface."""

    def __init__(self, rows: dict[str, dict]):
        self.data, self.columns, self.reads = rows, [ENTITY, *FEATURES], 0

    def rows(self, ids):
        self.reads += 1
        return [({ENTITY: c, **self.data[c]} if c in self.data else None) for c in ids]

    def read(self, ids):
        return [None if row is None else OnlineRow.of(row) for row in self.rows(ids)]

    def frame(self, ids):
        return pd.DataFrame([r for r in self.rows(ids) if r], columns=self.columns)

    def value(self, cid, feature):
        return self.data.get(cid, {}).get(feature)


def fake_bundle(version: str = "3") -> SimpleNamespace:
    return SimpleNamespace(versions={"churn": version, "nps": "2", "uplift": "1"},
                           feature_service=CHURN_SERVICE)


def fake_score(features: pd.DataFrame, bundle, settings, as_of) -> SimpleNamespace:
    """Deterministic stand-in for models.scoring.score_customers (customer_scores columns)."""
    p = (features["tickets_open_now"].fillna(0) * 0.2 + 0.1).clip(0, 0.99) * (
        int(bundle.versions["churn"]) / 3
    )
    out = pd.DataFrame(
        {
            "customer_id": features[ENTITY],
            "rep_id": "R001",
            "churn_probability": p.clip(0, 1),
            "churn_risk_tier": "high",
            "predicted_nps": 5.5,
            "nps_class": "detractor",
            "p_detractor": 0.6,
            "p_passive": 0.3,
            "p_promoter": 0.1,
            "last_nps": None,
            "relationship_stage": "at_risk",
            "value_at_risk": features["monthly_charge"] * 7.2,
            "reasons": [
                [
                    {
                        "concept": "support",
                        "label": "Support friction",
                        "impact": 0.7,
                        "sentence": "1 ticket open now",
                    }
                ]
            ]
            * len(features),
            "recommended_action": "service_recovery_call",
            "expected_value": 12.0,
            "latest_comment": None,
            "alert": None,
        }
    )
    return SimpleNamespace(customers=out)


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def runs(settings):
    """Two complete runs (the second is the latest); a comment with markup on the first customer."""
    engine = engine_for(settings)
    first = write_scoring_run(engine, make_run(DAY1, seed=1))
    second = write_scoring_run(engine, make_run(DAY2, seed=2, comment=COMMENT))
    return SimpleNamespace(
        engine=engine, first=first, second=second, latest=make_run(DAY2, seed=2, comment=COMMENT)
    )


@pytest.fixture
def tokens(runs):
    return issue_tokens(runs.engine, ["R001", "R002", "R003"])


@pytest.fixture
def online():
    return FakeOnline(
        {
            "C0000001": {
                "tenure_days": 400,
                "monthly_charge": 50.0,
                "tickets_open_now": 2,
                "usage_last_month": 40.0,
                "contract": "annual",
            },
            "C0000002": {
                "tenure_days": 90,
                "monthly_charge": 20.0,
                "tickets_open_now": 0,
                "usage_last_month": 10.0,
                "contract": "monthly",
            },
        }
    )


@pytest.fixture
def app(settings, runs, tokens, online):
    state = SimpleNamespace(bundle=fake_bundle(), fail=False)

    def loader():
        if state.fail:
            raise ConnectionError("registry unreachable")
        return state.bundle

    app = create_app(
        settings, model_loader=loader, score_fn=fake_score, online=lambda s, service: online, refresh=False
    )
    app.state.models.refresh()
    app.state.fake = state
    return app


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def owner(run, customer_id: str) -> str:
    return run.customers.set_index("customer_id").loc[customer_id, "rep_id"]
