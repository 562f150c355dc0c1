"""Session worlds shared across test packages: a small world carried through ingest,
features and Feast (``model_world``), and the same world with every model trained and
registered (``trained_world``), so model, scoring and service tests train once."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from configs.settings import load_settings
from features.ingest import run_ingest
from features.services import CHURN_SERVICE, NPS_SERVICE
from features.store import apply_definitions, feature_store, training_frame
from features.transforms import build_feature_tables
from tests.conftest import make_world


@pytest.fixture(scope="session")
def model_world(tmp_path_factory) -> SimpleNamespace:
    """4,000 customers over 24 months: settings, Feast store and the two training frames."""
    root = make_world(tmp_path_factory.mktemp("mworld"), customers=4000, months=24, seed=21)
    settings = load_settings(data_dir=root)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    store = feature_store(settings)
    apply_definitions(store, settings)
    churn_labels = pd.read_parquet(settings.feature_dir / "churn_labels.parquet")
    nps_labels = pd.read_parquet(settings.feature_dir / "nps_labels.parquet")
    return SimpleNamespace(
        root=root, settings=settings, store=store,
        churn=training_frame(store, churn_labels, CHURN_SERVICE),
        nps=training_frame(store, nps_labels, NPS_SERVICE),
    )


@pytest.fixture(scope="session")
def trained_world(model_world) -> SimpleNamespace:
    """``model_world`` with the churn, NPS and uplift models trained, logged and registered."""
    from models.churn.train import train_and_log_churn
    from models.nps.train import train_and_log_nps
    from models.uplift.train import train_and_log_uplift

    settings = model_world.settings
    # On a world this small the evidence supports almost no action at a profit, and the
    # chosen learner (the average effect per action) plans next to nothing. Scoring and
    # service tests need a plan to carry through, so the uplift model is the T-learner here,
    # without the evidence gate (which, rightly, shows no action to pay on so small a log).
    uplift = settings.train.uplift.model_copy(update={"learner": "t", "seed": settings.train.seed,
                                                      "evidence_quantile": None})
    return SimpleNamespace(**vars(model_world), runs={
        "churn": train_and_log_churn(settings), "nps": train_and_log_nps(settings),
        "uplift": train_and_log_uplift(settings, uplift)})
