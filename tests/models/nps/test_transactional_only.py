"""A company whose surveys are all transactional (support and purchase, no relationship
waves): the model is validated on the last months and the company figure is given per
period.

The session's model world with its relationship invitations and their answers removed
stands for such a company's export; its truth stays out of the copy (the model sees what a
real company would), and the test reads it to check the validation period's interval.
"""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console

from configs.settings import load_settings
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from models.nps.data import (
    MIN_ANSWERS,
    known_at,
    load_invitation_frame,
    nps_support,
    period_labels,
    validation_split,
)
from models.nps.evaluate import load_survey_truth
from models.nps.plots import wave_nps_figure
from models.nps.scale import NPS
from models.nps.train import train_and_log_nps
from pipelines.flows import train_nps_task
from pipelines.report import period_table

VALIDATION = "last 3 months of transactional surveys"


def drop_relationship_waves(clean) -> None:
    """Remove the relationship invitations and the answers to them from clean tables."""
    inv = pd.read_parquet(clean / "survey_invitations.parquet")
    resp = pd.read_parquet(clean / "survey_responses.parquet")
    waves = inv.loc[inv["touchpoint"] == "relationship", "invitation_id"]
    inv[~inv["invitation_id"].isin(waves)].to_parquet(clean / "survey_invitations.parquet")
    resp[~resp["invitation_id"].isin(waves)].to_parquet(clean / "survey_responses.parquet")


@pytest.fixture(scope="module")
def txn_world(model_world, tmp_path_factory) -> SimpleNamespace:
    """The model world's clean export without relationship waves, its features rebuilt,
    trained."""
    data = tmp_path_factory.mktemp("txn") / "data"
    settings = load_settings(data_dir=data)
    shutil.copytree(model_world.settings.clean_dir, settings.clean_dir)
    drop_relationship_waves(settings.clean_dir)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    apply_definitions(feature_store(settings), settings)
    frame = load_invitation_frame(settings.clean_dir)
    fast = settings.model_copy(update={"train": settings.train.model_copy(
        update={"bootstrap_samples": 200})})
    return SimpleNamespace(data=data, settings=settings, frame=frame, run=train_and_log_nps(fast),
                           truth=load_survey_truth(model_world.settings.truth_dir))


def test_the_export_has_transactional_surveys_only(txn_world):
    assert set(txn_world.frame["touchpoint"]) == {"support", "purchase"}
    assert nps_support(txn_world.settings.clean_dir) is None


def test_it_trains_and_validates_on_the_last_months(txn_world):
    run = txn_world.run
    assert "skipped" not in run and run["validation"] == VALIDATION
    assert 0 < run["valid"]["respondent_mae"] < 3 and run["valid"]["respondents"] >= MIN_ANSWERS
    logged = MlflowClient(tracking_uri=txn_world.settings.tracking_uri).get_run(run["run_id"]).data
    assert logged.params["validation"] == VALIDATION
    assert logged.params["latest_wave"] == run["latest_wave"]
    assert "valid_respondent_mae" in logged.metrics and "latest_wave_nps" in logged.metrics


def test_company_nps_per_period_covers_the_validation_period_truth(txn_world):
    """Every invitee falls in one period; the last period is the validation period and
    its interval covers the NPS all its invitees would have given."""
    per = pd.DataFrame(txn_world.run["company_per_period"])
    frame = txn_world.frame
    assert per["invitees"].sum() == len(frame) and per["period"].is_unique
    last = per.iloc[-1]
    assert last["period"] == txn_world.run["latest_wave"]
    assert last["nps"] == pytest.approx(txn_world.run["company_nps"]["nps"])
    valid = validation_split(frame, 3).valid
    assert last["invitees"] == len(valid)
    true = NPS.of_scores(valid["invitation_id"].map(txn_world.truth.set_index("invitation_id")["true_nps"]))
    assert last["low"] <= true <= last["high"]
    assert (per["low"] <= per["nps"]).all() and (per["nps"] <= per["high"]).all()


def test_the_report_and_figure_show_periods(txn_world):
    console = Console(record=True, width=140)
    console.print(period_table(txn_world.run))
    text = console.export_text()
    assert VALIDATION in text and txn_world.run["latest_wave"] in text
    fig = wave_nps_figure(pd.DataFrame(txn_world.run["company_per_period"]))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "period (transactional surveys)"
    assert "per period" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == txn_world.run["latest_wave"]


def _toy_frame() -> pd.DataFrame:
    sent = pd.date_range("2024-01-01", "2024-12-31", freq="D", tz="UTC")
    return pd.DataFrame({"customer_id": [f"C{i % 50}" for i in range(len(sent))],
                         "invitation_id": [f"I{i}" for i in range(len(sent))],
                         "survey_id": "support-2024", "touchpoint": "support",
                         "event_timestamp": sent, "responded": 1,
                         "nps": np.arange(len(sent)) % 11.0, "responded_at": sent + pd.Timedelta(days=1)})


def test_the_validation_period_is_the_last_months_and_nothing_later_is_learnt():
    frame = _toy_frame()
    split = validation_split(frame, 3)
    assert not split.by_waves and split.cutoff == pd.Timestamp("2024-10-01", tz="UTC")
    assert split.valid["event_timestamp"].min() >= split.cutoff
    assert split.label == "2024-10-01 to 2024-12-31"
    before = known_at(frame, split.cutoff)
    assert before["event_timestamp"].max() < split.cutoff
    assert before["responded_at"].max() < split.cutoff        # later answers not yet known
    assert validation_split(frame, 2).label == "2024-11-01 to 2024-12-31"
    labels = period_labels(frame, 3)
    assert labels.nunique() == 4 and labels.iloc[0] == "2024-01-01 to 2024-03-31"


def test_too_few_answers_skip_with_a_reason(txn_world, tmp_path):
    data = tmp_path / "data"
    clean = load_settings(data_dir=data).clean_dir
    shutil.copytree(txn_world.settings.clean_dir, clean)
    resp = pd.read_parquet(clean / "survey_responses.parquet")
    split = validation_split(txn_world.frame, 3)
    late = resp["invitation_id"].isin(split.valid["invitation_id"])
    keep = resp[~late | resp.index.isin(resp[late & resp["nps"].notna()].index[:5])]
    keep.to_parquet(clean / "survey_responses.parquet")
    assert train_nps_task.fn(data) == {"skipped": (
        f"5 NPS answers in the validation period ({VALIDATION}, {split.label}); the model "
        f"needs at least {MIN_ANSWERS}")}
    resp[late | resp.index.isin(resp[~late].index[:3])].to_parquet(clean / "survey_responses.parquet")
    why = train_nps_task.fn(data)["skipped"]
    assert why.endswith(f"before the validation period ({VALIDATION}); the model needs at least "
                        f"{MIN_ANSWERS}") and int(why.split()[0]) < MIN_ANSWERS
