"""Batch scoring per customer bucket on a LocalCluster of 2 worker processes gives the
in-process run: the same scores, tags, tag events, plan rows of every arm (experiments and
comparison slices included), alerts and reasons; and `run_batch_scoring` takes the cluster."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from models.bundle import load_champions
from models.prescribe.tags import RISK_TIERS
from models.uplift.driver import DriverArm
from serving.batch import run_batch_scoring, score_as_of
from serving.batch_inputs import latest_snapshot
from serving.cluster_scoring import score_on_cluster

pytestmark = pytest.mark.slow
PLAN = ["customer_id", "action_id", "rank", "control_group", "arm", "assignment_probability"]


def with_experiments(bundle):
    """The trained bundle with a driver posterior on every uplift arm, so that the cycle also
    plans experiments (the small world's T-learner has none)."""
    bundle = copy.deepcopy(bundle)
    spec = bundle.uplift.spec
    col = next(c for c in ("tenure_days", "monthly_charge") if c in spec.features)
    for arm in bundle.uplift.arms.values():
        arm.driver = DriverArm(drivers=[col], index=np.array([spec.features.index(col)]),
                               center=np.array([500.0]), scale=np.array([400.0]),
                               mean=np.array([0.0, 0.1, -0.4, -0.3]), cov=np.diag([1e-4, 1e-4, 0.2, 0.1]),
                               prior_sd=0.1, rows=500, treated=250)
    return bundle


def shifted(tags: pd.DataFrame) -> pd.DataFrame:
    """A previous run's tags: every third customer one risk tier off, some customers new."""
    tiers = list(RISK_TIERS)
    out = tags.copy()
    rows = out.index[::3]
    out.loc[rows, "churn_risk_tier"] = [tiers[(tiers.index(t) + 1) % len(tiers)]
                                        for t in out.loc[rows, "churn_risk_tier"]]
    return out.drop(index=out.index[1::7])


def same_run(a, b) -> None:
    """Every row a run writes, equal (floats within 1e-12)."""
    pd.testing.assert_frame_equal(a.scored.customers, b.scored.customers, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(a.scored.tags, b.scored.tags, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(a.scored.tag_events, b.scored.tag_events)
    pd.testing.assert_frame_equal(a.actions, b.actions, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(a.alerts, b.alerts)
    pd.testing.assert_frame_equal(a.contacts, b.contacts)
    pd.testing.assert_frame_equal(a.candidates, b.candidates, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(a.plan.skipped, b.plan.skipped)
    assert a.summary == b.summary


def test_two_workers_score_plan_and_explain_as_in_process(trained_world, two_worker_client):
    settings = trained_world.settings
    bundle = with_experiments(load_champions(settings))
    as_of = latest_snapshot(settings)
    previous = shifted(score_as_of(settings, bundle, as_of, None).scored.tags)
    here = score_as_of(settings, bundle, as_of, previous)
    there = score_on_cluster(two_worker_client, settings, bundle, as_of, previous)
    arms = set(here.actions["arm"])
    assert {"policy", "experiment"} <= arms and len(here.scored.tag_events)
    assert here.scored.customers["reasons"].notna().sum() > len(here.actions["customer_id"].unique())
    same_run(here, there)
    pd.testing.assert_frame_equal(here.actions[PLAN], there.actions[PLAN])


def test_without_an_uplift_model_the_risk_review_is_the_same(trained_world, two_worker_client):
    settings = trained_world.settings
    bundle = copy.copy(load_champions(settings))
    bundle.uplift = None
    as_of = latest_snapshot(settings)
    here = score_as_of(settings, bundle, as_of, None)
    there = score_on_cluster(two_worker_client, settings, bundle, as_of, None)
    assert here.alerts["kind"].eq("high_risk").any()
    same_run(here, there)


def test_the_run_is_written_from_the_cluster(trained_world, two_worker_client, tmp_path):
    settings = trained_world.settings
    db = settings.serving.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'serving.db'}"})
    settings = settings.model_copy(update={"serving": db})
    here = run_batch_scoring(settings)
    there = run_batch_scoring(settings, client=two_worker_client)
    drop = ("run_id", "generated_at")
    assert {k: v for k, v in here.items() if k not in drop} == \
        {k: v for k, v in there.items() if k not in drop}
