"""The policy evaluation: the feature ceiling is cross-fitted, so it never sees a customer's own
truth; the learner without its gate is valued with the gate's hidden actions restored."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.prescribe.evaluate import ceiling_candidates, ceiling_effects, gated, ungated_candidates


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


class _Gated:
    """An uplift model stand-in whose gate shows ``call`` only: ``email`` has an estimate the
    log has not shown to pay."""

    actions = ["call", "email"]

    def __init__(self, fail: bool = False):
        self.evidence = {"call": {"shown": True}, "email": {"shown": False}}
        self.fail = fail

    def shown_actions(self):
        if self.evidence is None:
            return list(self.actions)
        return [a for a in self.actions if self.evidence[a]["shown"]]

    def effects_with_bound(self, frame, quantile):
        if self.fail:
            raise RuntimeError("scoring failed")
        tickets = frame["tickets_90d"]
        effects = pd.DataFrame({"call": -0.1 * tickets, "email": -0.3 + 0 * tickets})
        return effects, effects + 0.05


def _candidates() -> tuple[pd.DataFrame, pd.DataFrame]:
    features = pd.DataFrame({"customer_id": ["A", "B"], "tickets_90d": [1.0, 2.0]})
    candidates = pd.DataFrame({"customer_id": ["B", "A", "B", "A"],
                               "action_id": ["call", "call", "email", "email"],
                               "p_churn": 0.5, "uplift": 0.0, "value_at_risk": 100.0, "cost": 5.0,
                               "eligible": True})
    return features, candidates


def test_the_ceiling_fitted_on_a_sample_and_predicted_in_blocks_stays_cross_fitted(monkeypatch):
    """At scale the evaluation fits on CEILING_FIT_ROWS customers a half and fetches features
    EVAL_BLOCK customers at a time: every customer still gets a prediction from the other
    half's model (never their own truth), and blocks change nothing."""
    from models.prescribe import evaluate

    names = ["tickets_90d", "monthly_charge"]
    features, truth = _world(3000, 0, signal=True)
    whole = ceiling_effects(features, names, truth)
    asked = []

    def fetch(ids):
        asked.append(len(ids))
        return features.set_index("customer_id").loc[ids].reset_index()

    monkeypatch.setattr(evaluate, "EVAL_BLOCK", 700)
    blocks = ceiling_effects(fetch, names, truth, customers=features["customer_id"].to_numpy())
    assert asked == ([700] * 4 + [200]) * 2     # categories, the fit's matrix (predicted from it)
    pd.testing.assert_frame_equal(whole, blocks)

    monkeypatch.setattr(evaluate, "CEILING_FIT_ROWS", 400)
    asked.clear()
    sampled = ceiling_effects(fetch, names, truth, customers=features["customer_id"].to_numpy())
    assert asked == [700, 100] * 2 + [700] * 4 + [200]      # 400 a half; then every customer
    assert sampled["call"].notna().all()
    assert np.corrcoef(sampled["call"], truth["true_effect_90d"])[0, 1] > 0.85
    noise_features, noise = _world(3000, 1, signal=False)
    pred = ceiling_effects(noise_features, names, noise)
    assert abs(np.corrcoef(pred["call"], noise["true_effect_90d"])[0, 1]) < 0.1


def test_the_learner_without_its_gate_values_the_hidden_actions_and_the_gate_comes_back():
    features, candidates = _candidates()
    model = _Gated()
    bundle = SimpleNamespace(uplift=model, catalogue=SimpleNamespace(ids=["call", "email"]))
    assert gated(bundle) and not gated(SimpleNamespace(uplift=None))
    out = ungated_candidates(candidates, features, bundle, 0.9)
    # each row gets its own customer's and action's effect, the hidden email's included
    assert out["uplift"].tolist() == pytest.approx([-0.2, -0.1, -0.3, -0.3])
    assert out["expected_value"].tolist() == pytest.approx([0.2 * 100 - 5, 0.1 * 100 - 5,
                                                            0.3 * 100 - 5, 0.3 * 100 - 5])
    assert out["expected_value_low"].tolist() == pytest.approx([0.15 * 100 - 5, 0.05 * 100 - 5,
                                                                0.25 * 100 - 5, 0.25 * 100 - 5])
    assert model.shown_actions() == ["call"]        # the shipped model's gate is untouched
    assert bundle.uplift is model
    from models.prescribe import evaluate

    evaluate.EVAL_BLOCK, before = 1, evaluate.EVAL_BLOCK        # a customer at a time
    try:
        one_by_one = ungated_candidates(candidates, features, bundle, 0.9)
    finally:
        evaluate.EVAL_BLOCK = before
    pd.testing.assert_frame_equal(out, one_by_one)


def test_the_shipped_model_keeps_its_gate_when_valuing_fails():
    features, candidates = _candidates()
    model = _Gated(fail=True)
    bundle = SimpleNamespace(uplift=model, catalogue=SimpleNamespace(ids=["call", "email"]))
    with pytest.raises(RuntimeError):
        ungated_candidates(candidates, features, bundle, 0.9)
    assert model.evidence["email"] == {"shown": False}
