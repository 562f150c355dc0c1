"""On a world with known effects answering randomized plans, the measured effect per action
and cycle covers the true mean effect of the delivered actions (hidden truth, read here only)."""

from __future__ import annotations

import pytest

from features.sources.world.evaluate import impact_coverage
from models.impact.report import build_report
from tests.models.impact.world_loop import run_loop


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    settings, engine, end = run_loop(tmp_path_factory.mktemp("impact_world"), customers=16000,
                                     months=9, planned=1200, seed=6)
    return settings, build_report(settings, engine, data_end=end)


@pytest.mark.slow
def test_measured_effects_cover_the_true_effect_of_the_delivered_actions(loop):
    settings, report = loop
    pairs = impact_coverage(report.effects, settings.truth_dir)
    assert len(pairs) >= 20                              # 5 matured cycles x 5 actions
    assert (pairs["n_treated"] == pairs["size"]).all()   # every delivered row is compared
    assert pairs["covered"].mean() >= 0.85, pairs[["cycle", "action", "effect", "lo90", "hi90", "mean"]]


@pytest.mark.slow
def test_recent_cycles_are_pending_and_slices_are_reported(loop):
    _, report = loop
    e = report.effects[report.effects["scope"] == "cycle"]
    assert set(e.loc[e["status"] == "pending", "cycle"]) == {8, 9}   # 90-day decision windows open
    cum = report.slices[report.slices["scope"] == "cumulative"].set_index("slice")
    assert set(cum.index) == {"policy", "risk_ranked", "random"}
    assert (cum["n_control"] > 500).all()
