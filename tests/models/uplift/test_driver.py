"""Driver-based uplift with uncertainty: intervals that cover the true effects at their
level on worlds with known effects, and a decision rule that never plans an action whose
net value's lower bound is not positive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from configs.settings import PrescribeParams
from models.prescribe.actions import load_catalogue
from models.prescribe.arbitration import arbitrate
from models.prescribe.value import candidate_actions
from models.uplift.driver import bounds, fit_driver_arm, upper

NAMES = ["d1", "d2", "d3", "n1", "n2"]


def known_world(seed: int, n: int = 20000):
    """Randomized treatment; churn logit = risk offset + drivers, effect varying with d1, d2."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    x = np.column_stack([d, rng.normal(size=(n, 2))])
    r = rng.normal(-2.0, 0.6, n)
    t = (rng.random(n) < 0.5).astype(float)
    z0 = r + 0.1 + d @ np.array([0.3, 0.0, -0.2])
    z1 = z0 - 0.25 + d @ np.array([-0.3, 0.15, 0.0])
    y = (rng.random(n) < expit(np.where(t == 1, z1, z0))).astype(float)
    return x, r, t, y, expit(z1) - expit(z0)


def test_90_percent_intervals_cover_the_true_effects_of_85_to_95_percent_of_customers():
    coverage, corr = [], []
    for seed in range(10):
        x, r, t, y, true = known_world(seed)
        arm = fit_driver_arm(x, NAMES, ["d1", "d2", "d3"], t, y, r)
        mean, sd = arm.effect(x, r)
        lo, hi = bounds(mean, sd, 0.9)
        coverage.append(np.mean((true >= lo) & (true <= hi)))
        corr.append(np.corrcoef(mean, true)[0, 1])
    print(f"\ncoverage per world {np.round(coverage, 3)}, mean {np.mean(coverage):.3f}")
    assert 0.85 <= np.mean(coverage) <= 0.95
    assert np.min(corr) > 0.9          # the drivers carry the heterogeneity


def test_only_the_actions_driver_features_enter_and_missing_values_count_as_average():
    x, r, t, y, _ = known_world(0, n=4000)
    x[:50, 0] = np.nan
    arm = fit_driver_arm(x, NAMES, ["d1", "n2", "not_a_feature"], t, y, r)
    assert sorted(arm.drivers) == ["d1", "n2"]
    mean, sd = arm.effect(x, r)
    assert np.isfinite(mean).all() and (sd > 0).all()


def test_without_drivers_the_effect_is_the_actions_average_on_the_risk_scale():
    x, r, t, y, true = known_world(1, n=8000)
    arm = fit_driver_arm(x, NAMES, [], t, y, r)
    mean, _ = arm.effect(x, r)
    assert arm.drivers == [] and mean.mean() == pytest.approx(true.mean(), abs=0.01)


def test_the_pessimistic_effect_is_the_upper_quantile():
    assert upper(np.array([-0.05]), np.array([0.02]), 0.9)[0] == pytest.approx(-0.05 + 1.2816 * 0.02, 1e-3)


def test_the_safe_rule_never_plans_a_negative_lower_bound():
    cat = load_catalogue("configs/actions.yaml")
    rng = np.random.default_rng(5)
    n = 600
    customers = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "rep_id": rng.choice(["r1", "r2"], n),
        "p_churn": rng.uniform(0, 0.5, n), "value_at_risk": rng.uniform(200, 4000, n),
        "plan": rng.choice(["basic", "standard"], n),
        **{f: rng.poisson(0.8, n) for f in ("tickets_90d", "complaints_90d", "failed_orders_90d",
                                            "technical_tickets_90d", "outage_tickets_90d")},
        "discount_90d": 0.0, "usage_30d_trend": rng.normal(0, 0.3, n)})
    mean = pd.DataFrame(rng.normal(-0.04, 0.04, (n, len(cat))), columns=cat.ids)
    sd = pd.DataFrame(rng.uniform(0.0, 0.06, (n, len(cat))), columns=cat.ids)
    pessimistic = mean + 1.2816 * sd
    contacts = pd.DataFrame({"customer_id": customers.customer_id, "days_since_last_action": np.nan,
                             "days_since_last_invitation": np.nan, "contacts_7d": 0})
    params = PrescribeParams(rep_minutes_per_day=1e6, budget=None)
    point = arbitrate(candidate_actions(customers, mean, cat), contacts, cat, params)
    safe_candidates = candidate_actions(customers, mean, cat, pessimistic)
    safe = arbitrate(safe_candidates, contacts, cat, params)
    low = safe_candidates.set_index(["customer_id", safe_candidates["action_id"].astype(str)])
    chosen = low.loc[list(zip(safe.actions["customer_id"], safe.actions["action_id"], strict=True))]
    assert len(safe.actions) > 0 and (chosen["expected_value_low"] > 0).all()
    assert (chosen["expected_value"] >= chosen["expected_value_low"]).all()
    assert len(safe.actions) < len(point.actions)      # the point rule also plans uncertain ones


def test_the_driver_learner_on_the_programme_log(model_world):
    import pickle

    from models.uplift.model import fit_uplift
    from models.uplift.train import action_drivers, load_uplift_frame

    settings = model_world.settings
    frame, features, _ = load_uplift_frame(settings, model_world.store)
    drivers = action_drivers(settings, features)
    assert "tickets_unresolved_90d" in drivers["service_recovery_call"]
    assert "monthly_charge" in drivers["discount_offer"] and "tenure_days" not in drivers["discount_offer"]
    model = pickle.loads(pickle.dumps(fit_uplift(frame, features, "driver", settings.train.uplift,
                                                 drivers=drivers)))
    rows = frame.head(400)
    effects, worst = model.effects_with_bound(rows, 0.9)
    assert effects.notna().any().all() and effects.isna().equals(worst.isna())
    assert (worst.fillna(0) >= effects.fillna(0)).all().all()
    for action, arm in model.arms.items():
        assert set(arm.driver.drivers) <= set(drivers[action]) and arm.driver.treated > 0


def test_the_why_states_the_value_and_its_lower_bound():
    from models.prescribe.rationale import action_why

    cat = load_catalogue("configs/actions.yaml")
    actions = pd.DataFrame({"action_id": ["discount_offer"], "p_churn": [0.3], "uplift": [-0.1],
                            "expected_value": [120.0], "cost": [45.0], "expected_value_low": [35.0]})
    why = action_why(actions, pd.Series([None]), cat)[0]
    assert "from 30 % to 20 %" in why and "at least" in why and "35" in why
    assert "at least" not in action_why(actions.drop(columns="expected_value_low"), pd.Series([None]), cat)[0]
