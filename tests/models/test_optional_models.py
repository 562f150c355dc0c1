"""Data without surveys or a randomized programme still gets scored: the churn model alone,
no predicted NPS, no planned action on a guess, and each reason said plainly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import bundle as bundle_module
from models import registry
from models.bundle import load_champions
from models.nps.data import nps_support
from models.scoring import score_customers
from models.uplift.data import uplift_support
from serving.batch import active_customers, feature_rows, latest_snapshot


def test_a_model_never_trained_is_named_with_what_to_do(tmp_path, trained_world):
    from configs.settings import load_settings
    from models.tracking_store import TrackingStoreUnavailable

    settings = load_settings(data_dir=tmp_path)      # nothing trained: no tracking database
    with pytest.raises(TrackingStoreUnavailable, match="not found: run `cem train`"):
        registry.load_alias("nps", settings)
    assert not (tmp_path / "mlflow").exists()          # reading never creates the database
    never = "no 'absent' model with alias 'champion'.*cem train"
    with pytest.raises(registry.ModelNotRegistered, match=never):
        registry.load_alias("absent", trained_world.settings)
    assert registry.champion_versions(trained_world.settings, ("absent",)) == {}


def test_the_churn_model_is_required_the_others_optional(monkeypatch, trained_world):
    real = registry.load_alias

    def only_churn(name, settings, alias=registry.CHAMPION):
        if name != "churn":
            raise registry.ModelNotRegistered(name)
        return real(name, settings, alias)

    monkeypatch.setattr(bundle_module.registry, "load_alias", only_churn)
    bundle = load_champions(trained_world.settings)
    assert bundle.nps is None and bundle.uplift is None and set(bundle.versions) == {"churn"}
    assert bundle.features == list(bundle.churn.spec.features)

    def nothing(name, settings, alias=registry.CHAMPION):
        raise registry.ModelNotRegistered(f"no {name!r}")

    monkeypatch.setattr(bundle_module.registry, "load_alias", nothing)
    with pytest.raises(registry.ModelNotRegistered, match="churn"):
        load_champions(trained_world.settings)


@pytest.fixture(scope="module")
def churn_only(trained_world):
    full = load_champions(trained_world.settings)
    settings = trained_world.settings
    as_of = latest_snapshot(settings)
    features = feature_rows(settings, active_customers(settings.clean_dir, as_of).head(400), as_of,
                            full.feature_service)
    bundle = bundle_module.ModelBundle(churn=full.churn, nps=None, uplift=None, catalogue=full.catalogue,
                                       versions={"churn": full.versions["churn"]})
    return full, bundle, features, as_of


def test_scoring_without_nps_and_uplift_models(churn_only, trained_world):
    full, bundle, features, as_of = churn_only
    alone = score_customers(features, bundle, trained_world.settings, as_of, explain=False)
    both = score_customers(features, full, trained_world.settings, as_of, explain=False)
    np.testing.assert_array_equal(alone.customers["churn_probability"], both.customers["churn_probability"])
    assert alone.customers["predicted_nps"].isna().all()
    assert alone.customers[["p_detractor", "p_passive", "p_promoter"]].isna().all().all()
    # no measured effect: no action is worth its cost, so nothing is recommended
    assert (alone.candidates["expected_value"] <= 0).all()
    assert alone.customers["recommended_action"].isna().all()
    assert alone.customers["churn_risk_tier"].notna().all()


def test_nps_support_says_why_the_model_cannot_be_trained(tmp_path, trained_world):
    assert nps_support(trained_world.settings.clean_dir) is None
    assert nps_support(tmp_path) == "no survey_invitations table in the data"
    inv = pd.read_parquet(trained_world.settings.clean_dir / "survey_invitations.parquet")
    resp = pd.read_parquet(trained_world.settings.clean_dir / "survey_responses.parquet")
    inv.head(0).to_parquet(tmp_path / "survey_invitations.parquet")
    resp.head(0).to_parquet(tmp_path / "survey_responses.parquet")
    assert nps_support(tmp_path) == "no survey invitations in the data"
    support_only = inv[inv["touchpoint"] != "relationship"]
    support_only.to_parquet(tmp_path / "survey_invitations.parquet")
    resp.to_parquet(tmp_path / "survey_responses.parquet")
    assert nps_support(tmp_path) is None          # transactional only: validated on the last months
    resp[~resp["invitation_id"].isin(support_only["invitation_id"])].to_parquet(
        tmp_path / "survey_responses.parquet")
    assert nps_support(tmp_path) == "no NPS answers linked to an invitation (satisfaction scale nps)"


def test_uplift_support_needs_a_randomized_hold_out(tmp_path, trained_world):
    assert uplift_support(trained_world.settings.clean_dir) is None
    assert uplift_support(tmp_path) == "no interventions in the data (no retention programme log)"
    log = pd.read_parquet(trained_world.settings.clean_dir / "interventions.parquet")
    log[~log["control_group"].astype(bool)].to_parquet(tmp_path / "interventions.parquet")
    assert "no randomized hold-out" in uplift_support(tmp_path)
    # hold-outs recorded by earlier scoring runs count as randomized evidence
    recorded = log[log["control_group"].astype(bool)].head(5)
    assert uplift_support(tmp_path, recorded) is None
