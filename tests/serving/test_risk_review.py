"""Without an uplift model the reps' lists still say whom to look at first: each rep's
customers of highest expected loss, with no action claimed."""

from __future__ import annotations

from datetime import date

import pandas as pd

from models.bundle import ModelBundle, load_champions
from serving.batch import latest_snapshot, score_as_of
from serving.db.schema import ALERT_KINDS
from serving.run_alerts import risk_review_alerts


def test_each_rep_gets_their_customers_of_highest_expected_loss():
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "rep_id": ["R1", "R1", "R1", "R2", None],
        "churn_probability": [0.9, 0.5, 0.2, 0.1, 0.4],
        "value_at_risk": [100.0, 1000.0, 5000.0, 10.0, None],
    })
    alerts = risk_review_alerts(customers, per_rep=2, as_of=date(2024, 6, 1))
    assert alerts["customer_id"].tolist() == ["c", "b", "d", "e"]   # 1000, 500 for R1; then R2, none
    assert set(alerts["kind"]) == {"high_risk"} and "high_risk" in ALERT_KINDS
    first = alerts.iloc[0]["reason"]
    assert "20 %" in first and "5,000" in first and "no action is recommended" in first
    assert (alerts["raised_at"] == pd.Timestamp("2024-06-01")).all()


def test_a_run_without_uplift_plans_nothing_and_lists_high_risk_customers(trained_world):
    settings = trained_world.settings
    full = load_champions(settings)
    bundle = ModelBundle(churn=full.churn, nps=full.nps, uplift=None, catalogue=full.catalogue,
                         versions={k: v for k, v in full.versions.items() if k != "uplift"})
    result = score_as_of(settings, bundle, latest_snapshot(settings), None)
    assert result.actions.empty
    review = result.alerts[result.alerts["kind"] == "high_risk"]
    per_rep = review.groupby("rep_id").size()
    assert len(per_rep) > 1 and per_rep.max() == settings.prescribe.risk_review_per_rep
    assert result.summary["models_missing"] == ["uplift"]
    assert review["reason"].str.contains("no randomized interventions in the data").all()


def test_a_run_whose_log_shows_no_action_to_pay_plans_nothing_and_says_why(trained_world):
    import copy

    settings = trained_world.settings
    full = load_champions(settings)
    gated = copy.copy(full.uplift)
    gated.evidence = {a: {"shown": False, "value_lo": -1.0} for a in gated.actions}
    bundle = ModelBundle(churn=full.churn, nps=full.nps, uplift=gated, catalogue=full.catalogue,
                         versions=full.versions)
    result = score_as_of(settings, bundle, latest_snapshot(settings), None)
    # the model plans nothing; experiments (effect not yet known) and comparison slices may run
    assert not result.actions["arm"].eq("policy").any()
    assert result.actions["why"].str.startswith(("Experiment", "Comparison")).all()
    review = result.alerts[result.alerts["kind"] == "high_risk"]
    assert len(review) and review["reason"].str.contains("do not show any action to pay").all()
