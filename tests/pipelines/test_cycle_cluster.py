"""`cem cycle` on a Dask cluster: one month of the loop with the features and scoring on two
worker processes plans what the in-process month plans (the world, ingest and models alike)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from sqlalchemy import select

from configs.settings import load_settings
from features.ingest import run_ingest
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from features.transforms.incremental import MANIFEST
from features.transforms.parallel import build_on_cluster
from models.churn.train import train_and_log_churn
from models.uplift.train import train_and_log_uplift
from pipelines.cycle import PLAN_COLUMNS, latest_plan, latest_run_id, score_cycle
from serving.db.schema import engine_for, partition
from tests.conftest import make_world

# the cycle reads its settings itself: no retraining (a cluster fit is not bit-identical,
# docs/cluster.md#training-on-the-cluster), no feature ceiling (a costly comparison plan)
CYCLE_ENV = {"CEM_TRAIN__SEARCH__TRIALS": "0", "CEM_CYCLE__RETRAIN_EVERY_MONTHS": "0",
             "CEM_CYCLE__BUDGET_SHARE": "0.05", "CEM_CYCLE__CEILING_EVERY_MONTHS": "0"}


@pytest.fixture(scope="module")
def scored_world(tmp_path_factory, two_worker_client):
    """A small world trained and scored at the cycle's budget, copied twice: one copy for the
    in-process month, one for the cluster's, whose feature tables are rebuilt on the cluster
    (the same files, and a manifest of its split, which the cluster's month reuses)."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in CYCLE_ENV.items():
            env.setenv(key, value)
        base = tmp_path_factory.mktemp("cycle_cluster")
        root = make_world(base / "world", customers=1000, months=12, seed=5)
        settings = load_settings(data_dir=root)
        # a world this small shows no action to pay; the T-learner without the gate plans some
        uplift = settings.train.uplift.model_copy(update={"learner": "t", "evidence_quantile": None})
        run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
        build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
        apply_definitions(feature_store(settings), settings)
        train_and_log_churn(settings)
        train_and_log_uplift(settings, uplift)
        score_cycle(settings, ceiling=False)
        copies = {}
        for name in ("here", "there"):
            copies[name] = base / name
            shutil.copytree(root, copies[name])
        there = load_settings(data_dir=copies["there"])
        build_on_cluster(two_worker_client, there.clean_dir, there.feature_dir, there.features)
        yield copies


def _run(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan and the scores of the newest run."""
    settings = load_settings(data_dir=data_dir)
    run_id = latest_run_id(settings)
    scores = partition("customer_scores", run_id)
    with engine_for(settings).connect() as conn:
        frame = pd.DataFrame(conn.execute(select(scores)).mappings().all())
    frame = frame.drop(columns=[c for c in frame if c in ("run_id", "model_versions",
                                                           "feature_service", "data_version")])
    plan = latest_plan(settings)
    return (plan.sort_values("customer_id", ignore_index=True),
            frame.sort_values("customer_id", ignore_index=True))


def test_one_cycle_on_the_cluster_plans_as_in_process(scored_world, two_worker_client,
                                                      monkeypatch):
    from pipelines.cluster import scheduler_address
    from pipelines.cycle_flow import cycle_flow

    for key, value in CYCLE_ENV.items():
        monkeypatch.setenv(key, value)
    here = cycle_flow(scored_world["here"])
    there = cycle_flow(scored_world["there"], scheduler_address(two_worker_client))
    assert not here["retrained"] and here["next_planned"] > 0
    for key in ("month", "next_planned", "true_effect_90d"):
        assert here[key] == there[key], key
    assert json.dumps(here["curve"], sort_keys=True) == json.dumps(there["curve"], sort_keys=True)
    plan_here, scores_here = _run(scored_world["here"])
    plan_there, scores_there = _run(scored_world["there"])
    pd.testing.assert_frame_equal(plan_here[list(PLAN_COLUMNS)], plan_there[list(PLAN_COLUMNS)])
    pd.testing.assert_frame_equal(scores_here, scores_there, rtol=0, atol=1e-12)
    # the features of the cluster's month reused the earlier snapshots, as in-process
    manifests = {name: json.loads((load_settings(data_dir=folder).feature_dir / MANIFEST)
                                  .read_text()) for name, folder in scored_world.items()}
    assert manifests["here"]["new_from"] == manifests["there"]["new_from"] is not None
    assert manifests["there"]["buckets"] == 2 and "buckets" not in manifests["here"]
    # the month's ingest validated the appended rows only, on the workers: the same clean files
    clean = {name: load_settings(data_dir=folder).clean_dir for name, folder in scored_world.items()}
    ingests = {name: json.loads((c / "ingest_manifest.json").read_text()) for name, c in clean.items()}
    assert ingests["here"]["mode"] == ingests["there"]["mode"] == "incremental"
    assert ingests["here"]["rows_validated"] == ingests["there"]["rows_validated"]
    for path in sorted(clean["here"].glob("*.parquet")):
        assert (clean["there"] / path.name).read_bytes() == path.read_bytes(), path.name
