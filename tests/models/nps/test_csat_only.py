"""A company that asks CSAT only: the export ingests, features build, the satisfaction model
trains on 1-5 and the company's mean CSAT counts every invitee.

The simulated world answers NPS; its CSAT-only twin answers ``to_csat(nps)`` on every
response and has no NPS column. The world's hidden would-be answers (``true_nps``) turn
into would-be CSAT the same way, so the company figure has a known truth to cover.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from configs.settings import load_settings
from features.ingest import run_ingest
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from models.nps.data import (
    load_invitation_frame,
    load_scale,
    nps_support,
    relationship_waves,
    with_features,
)
from models.nps.evaluate import load_survey_truth
from models.nps.model import company_nps, fit_nps_model
from models.nps.scale import CSAT, NPS, model_scale
from models.nps.train import train_and_log_nps
from models.prescribe.tags import assign_tags
from pipelines.flows import train_nps_task
from tests.conftest import make_world


def to_csat(nps) -> np.ndarray:
    """A 0-10 answer as the 1-5 answer the same customer would give (monotone)."""
    s = np.asarray(nps, dtype=np.float64)
    return 1 + (s >= 5) + (s >= 7) + (s >= 8) + (s >= 9)


@pytest.fixture(scope="module")
def csat_world(tmp_path_factory) -> SimpleNamespace:
    """2,500 customers over 24 months whose survey tool exports CSAT only, trained."""
    root = make_world(tmp_path_factory.mktemp("csat"), customers=2500, months=24, seed=5)
    path = root / "raw" / "survey_responses.parquet"
    resp = pd.read_parquet(path)
    resp.assign(csat=to_csat(resp["nps"]).astype(np.int64)).drop(columns=["nps"]).to_parquet(path)
    settings = load_settings(data_dir=root)
    settings = settings.model_copy(update={"train": settings.train.model_copy(
        update={"bootstrap_samples": 200})})
    report = run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    apply_definitions(feature_store(settings), settings)
    return SimpleNamespace(root=root, settings=settings, report=report, raw=resp,
                           run=train_and_log_nps(settings))


def test_a_csat_only_export_ingests_and_builds_csat_features(csat_world):
    clean = pd.read_parquet(csat_world.settings.clean_dir / "survey_responses.parquet")
    assert len(clean) > 0.95 * len(csat_world.raw)      # no answer lost for lack of an NPS
    assert clean["nps"].isna().all() and clean["csat"].between(1, 5).all()
    x = pd.read_parquet(csat_world.settings.feature_dir / "customer_x.parquet")
    assert x["last_nps"].isna().all() and x["mean_nps_365d"].isna().all()
    assert x["last_csat"].notna().mean() > 0.05 and x["last_csat"].dropna().between(1, 5).all()
    labels = pd.read_parquet(csat_world.settings.feature_dir / "nps_labels.parquet")
    assert labels.empty                                   # no NPS answer to label


def test_the_scale_is_chosen_from_the_data_and_may_be_forced(csat_world):
    clean = csat_world.settings.clean_dir
    assert load_scale(clean) is CSAT and load_scale(clean, "nps") is NPS
    assert nps_support(clean) is None
    assert nps_support(clean, "nps") == ("no NPS answers linked to an invitation "
                                         "(satisfaction scale nps)")


def test_the_model_trains_on_1_to_5(csat_world):
    run = csat_world.run
    assert run["satisfaction_scale"] == "csat"
    assert "company mean CSAT (everyone)" in run["headline"]
    assert 0 < run["valid"]["respondent_mae"] < 1.5        # on a 1-5 scale
    client = MlflowClient(tracking_uri=csat_world.settings.tracking_uri)
    logged = client.get_run(run["run_id"]).data
    assert logged.params["satisfaction_scale"] == "csat"
    assert "latest_wave_csat" in logged.metrics and "latest_wave_nps" not in logged.metrics


def test_company_mean_csat_covers_the_truth(csat_world):
    """The latest wave's mean CSAT of every invitee, against the CSAT the world's invitees
    would have given: inside the interval, and closer than the respondents-only mean."""
    frame = load_invitation_frame(csat_world.settings.clean_dir)
    wave = frame[frame["survey_id"] == relationship_waves(frame)[-1]]
    truth = load_survey_truth(csat_world.settings.truth_dir).set_index("invitation_id")
    true_mean = float(to_csat(wave["invitation_id"].map(truth["true_nps"])).mean())
    c = csat_world.run["company_nps"]
    assert c["scale"] == "csat" and 1 <= c["low"] <= c["csat"] <= c["high"] <= 5
    assert c["low"] <= true_mean <= c["high"]
    assert abs(c["csat"] - true_mean) < abs(c["respondents_csat"] - true_mean)
    assert 0 <= c["dissatisfied"] <= 1 and 0 <= c["satisfied"] <= 1


def test_relationship_waves_only_train(csat_world):
    settings = csat_world.settings
    frame = with_features(feature_store(settings), load_invitation_frame(settings.clean_dir))
    waves = frame[frame["touchpoint"] == "relationship"]
    model = fit_nps_model(waves, settings.train, corrected=True)
    latest = waves[waves["survey_id"] == relationship_waves(waves)[-1]]
    res = company_nps(model, latest, samples=50)
    assert model.scale is CSAT and 1 <= res.low <= res.nps <= res.high <= 5


def test_too_little_data_and_no_surveys_are_skipped_with_a_reason(csat_world, tmp_path):
    """Transactional surveys only train (validated on the last months: see
    test_transactional_only); too few answers or no surveys at all skip with a reason."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(csat_world.settings.clean_dir, load_settings(data_dir=data).clean_dir)
    clean = load_settings(data_dir=data).clean_dir
    inv = pd.read_parquet(clean / "survey_invitations.parquet")
    resp = pd.read_parquet(clean / "survey_responses.parquet")
    latest = relationship_waves(load_invitation_frame(clean))[-1]
    resp[resp["survey_id"] != latest].to_parquet(clean / "survey_responses.parquet")
    assert train_nps_task.fn(data) == {"skipped": (
        f"the latest relationship wave {latest} has no CSAT answers to validate on")}
    resp.to_parquet(clean / "survey_responses.parquet")
    inv[inv["touchpoint"] != "relationship"].to_parquet(clean / "survey_invitations.parquet")
    assert nps_support(clean) is None                     # transactional only: trains
    txn = resp[resp["invitation_id"].isin(inv.loc[inv["touchpoint"] != "relationship", "invitation_id"])]
    txn.sort_values("responded_at").head(10).to_parquet(clean / "survey_responses.parquet")
    why = train_nps_task.fn(data)["skipped"]
    assert why.startswith("0 CSAT answers in the validation period (last 3 months of "
                          "transactional surveys") and why.endswith("the model needs at least 20")
    for table in ("survey_invitations", "survey_responses"):
        (clean / f"{table}.parquet").unlink()
    assert train_nps_task.fn(data) == {"skipped": "no survey_invitations table in the data"}


def test_csat_predictions_are_tagged_by_csat_classes(csat_world):
    """The model's expected 1-5 answer against the NPS thresholds made every customer a
    detractor; on its own scale the tag matches the model's most likely class."""
    settings = csat_world.settings
    frame = with_features(feature_store(settings), load_invitation_frame(settings.clean_dir))
    wave = frame[frame["survey_id"] == relationship_waves(frame)[-1]].drop_duplicates("customer_id")
    model = fit_nps_model(frame[frame["touchpoint"] == "relationship"], settings.train, corrected=False)
    pred = model.predict(wave)
    current = pd.DataFrame({"customer_id": wave["customer_id"].to_numpy(),
                            "nps_pred": pred["nps_pred"].to_numpy()})
    day = pd.Timestamp("2026-01-01", tz="UTC")
    as_nps, _ = assign_tags(current, None, settings.tags, day, "r")
    tags, _ = assign_tags(current, None, settings.tags, day, "r", scale=model_scale(model))
    assert (as_nps["nps_class"] == "detractor").all()            # what a 1-5 score gave before
    assert set(tags["nps_class"]) <= set(CSAT.classes) and tags["nps_class"].nunique() >= 2
    likely = np.asarray(CSAT.classes)[pred[["p_detractor", "p_passive", "p_promoter"]].to_numpy().argmax(1)]
    assert (tags["nps_class"].to_numpy() == likely).mean() > 0.7
