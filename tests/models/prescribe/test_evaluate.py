"""The feature ceiling of the policy evaluation: cross-fitted, so it never sees a customer's own truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.prescribe.evaluate import ceiling_candidates, ceiling_effects


def _world(n: int, seed: int, signal: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)],
                             "tickets_90d": rng.poisson(1.0, n).astype(float),
                             "monthly_charge": rng.uniform(20, 120, n)})
    noise = rng.normal(0, 0.02, n)
    effect = (-0.03 * features["tickets_90d"].to_numpy() + 0.2 * noise) if signal else noise
    truth = pd.DataFrame({"customer_id": features["customer_id"], "action": "call",
                          "true_effect_90d": effect})
    return features, truth


def test_ceiling_recovers_effects_the_features_explain():
    features, truth = _world(3000, 0, signal=True)
    pred = ceiling_effects(features, ["tickets_90d", "monthly_charge"], truth)
    corr = np.corrcoef(pred["call"].to_numpy(), truth["true_effect_90d"].to_numpy())[0, 1]
    assert corr > 0.9


def test_ceiling_never_uses_a_customers_own_truth():
    # pure noise: a model that saw each customer's own effect would "predict" it
    features, truth = _world(3000, 1, signal=False)
    pred = ceiling_effects(features, ["tickets_90d", "monthly_charge"], truth)
    corr = np.corrcoef(pred["call"].to_numpy(), truth["true_effect_90d"].to_numpy())[0, 1]
    assert abs(corr) < 0.1


def test_ceiling_candidates_value_unknown_effects_as_not_eligible():
    effects = pd.DataFrame({"call": [-0.2, np.nan]}, index=pd.Index(["A", "B"], name="customer_id"))
    candidates = pd.DataFrame({"customer_id": ["A", "B"], "action_id": ["call", "call"],
                               "p_churn": [0.5, 0.5], "uplift": [0.0, 0.0],
                               "value_at_risk": [100.0, 100.0], "cost": [5.0, 5.0],
                               "eligible": [True, True]})
    out = ceiling_candidates(candidates, effects)
    assert out["expected_value"].iloc[0] == 0.2 * 100 - 5
    assert out["eligible"].tolist() == [True, False]
