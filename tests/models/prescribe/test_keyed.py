"""Candidate rows looked up by integer positions give what string-keyed lookups gave: the
true value of every row, a plan's value (a pair that is no candidate counts 0), the truth as a
customers x actions table, whether the truth's ids come as strings or as categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.frame import categorical_dtype
from models.prescribe.baselines import random_candidates, risk_ranked_candidates
from models.prescribe.evaluate import plan_value, row_effects, true_values
from models.prescribe.keyed import Keys, long_wide, with_columns
from models.prescribe.value import expected_value

ACTIONS = ("call", "discount", "email")


def _world(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:05d}" for i in rng.permutation(n)], dtype=object)
    candidates = pd.DataFrame({
        "customer_id": np.repeat(ids, len(ACTIONS)),
        "action_id": pd.Categorical(np.tile(ACTIONS, n), dtype=categorical_dtype(ACTIONS)),
        "p_churn": rng.uniform(0.05, 0.6, n * len(ACTIONS)),
        "value_at_risk": rng.uniform(100, 900, n * len(ACTIONS)),
        "cost": np.tile([12.0, 30.0, 0.5], n),
    }).sample(frac=1.0, random_state=seed)            # rows in no particular order
    truth = pd.DataFrame({"customer_id": np.repeat(ids, len(ACTIONS)),
                          "action": np.tile(ACTIONS, n),
                          "true_effect_90d": rng.normal(-0.02, 0.03, n * len(ACTIONS))})
    truth = truth.drop(index=rng.choice(len(truth), 50, replace=False))   # some pairs unknown
    truth = pd.concat([truth, pd.DataFrame({"customer_id": ["NOT-A-CANDIDATE"], "action": ["call"],
                                            "true_effect_90d": [-0.5]})], ignore_index=True)
    return candidates, truth.sample(frac=1.0, random_state=seed + 1)


def _string_keyed_values(candidates, truth):
    key = truth.set_index(["customer_id", "action"])["true_effect_90d"]
    idx = pd.MultiIndex.from_arrays([candidates["customer_id"].to_numpy(),
                                     candidates["action_id"].astype(str).to_numpy()])
    effect = key.reindex(idx).to_numpy(np.float64)
    return expected_value(candidates["p_churn"], effect, candidates["value_at_risk"], candidates["cost"])


@pytest.mark.parametrize("categories", [False, True])
def test_true_values_match_the_string_keyed_lookup(categories):
    candidates, truth = _world()
    if categories:        # as read_true_effects reads them: dictionary-encoded columns
        truth = truth.astype({"customer_id": "category", "action": "category"})
    got = true_values(candidates, truth)
    want = _string_keyed_values(candidates, truth.astype({"customer_id": object, "action": object}))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(got).sum() == 50                  # unknown pairs stay unknown


def test_a_plans_value_sums_its_rows_and_counts_a_pair_not_planned_from_as_zero():
    candidates, truth = _world(1)
    true_ev = true_values(candidates, truth)
    rows = candidates.iloc[[0, 5, 9]]
    plan = pd.concat([rows[["customer_id", "action_id"]].astype({"action_id": str}),
                      pd.DataFrame({"customer_id": ["NOBODY"], "action_id": ["call"]})],
                     ignore_index=True).assign(cost=1.0)
    value = plan_value(plan, candidates, true_ev)
    assert value["value"] == pytest.approx(float(np.nansum(true_ev[[0, 5, 9]])))
    assert value["customers"] == 4 and value["cost"] == 4.0
    assert plan_value(plan, candidates, true_ev, Keys.of(candidates)) == value


def test_the_truth_as_a_table_is_the_pivot_and_row_effects_read_it_back():
    candidates, truth = _world(2)
    wide = long_wide(truth.astype({"customer_id": "category", "action": "category"}), "true_effect_90d")
    pivot = truth.pivot_table(index="customer_id", columns="action", values="true_effect_90d")
    pd.testing.assert_frame_equal(wide.sort_index(), pivot, check_names=False)
    effects = row_effects(candidates, wide)
    stacked = wide.stack(future_stack=True).reindex(pd.MultiIndex.from_arrays(
        [candidates["customer_id"].to_numpy(), candidates["action_id"].astype(str).to_numpy()]))
    np.testing.assert_array_equal(effects, stacked.to_numpy())


def test_the_rules_keep_one_eligible_action_per_customer_whatever_the_id_types():
    candidates, _ = _world(3)
    rng = np.random.default_rng(3)
    candidates = candidates.assign(eligible=rng.random(len(candidates)) < 0.6,
                                   uplift=rng.normal(0, 0.02, len(candidates)), expected_value=0.0)
    strings = candidates.astype({"action_id": str})
    mean = candidates.groupby("action_id", observed=True)["uplift"].mean()
    for rule in (risk_ranked_candidates, lambda c: random_candidates(c, 7)):
        out = rule(candidates)
        assert out["eligible"].le(candidates["eligible"]).all()          # never makes one eligible
        kept = out[out["eligible"]]
        assert not kept["customer_id"].duplicated().any()
        assert set(kept["customer_id"]) == set(candidates.loc[candidates["eligible"], "customer_id"])
        pd.testing.assert_frame_equal(rule(strings).drop(columns="action_id"),
                                      out.drop(columns="action_id"))
    best = risk_ranked_candidates(candidates)
    chosen = best[best["eligible"]].set_index("customer_id")["action_id"].astype(str)
    offered = candidates[candidates["eligible"]].groupby("customer_id")["action_id"] \
        .agg(lambda a: min(a.astype(str), key=mean.to_dict().get)).astype(str)
    assert chosen.sort_index().equals(offered.sort_index())


def test_driver_inputs_sent_by_buckets_are_read_back_by_id_and_a_missing_customer_is_named():
    from dataclasses import dataclass
    from types import SimpleNamespace

    from models.prescribe.drivers import DriverInputs, driver_inputs, encode_drivers

    @dataclass
    class Arm:              # the fields of a driver arm that the inputs read
        index: np.ndarray
        mean: np.ndarray

    features = pd.DataFrame({"customer_id": ["A", "B", "C"], "f": [1.0, 2.0, 3.0], "g": [5.0, 6.0, 7.0]})
    arm = Arm(index=np.array([1]), mean=np.array([0.1]))
    uplift = SimpleNamespace(spec=SimpleNamespace(array=lambda f: f[["f", "g"]].to_numpy(np.float64)),
                             risk=SimpleNamespace(logit_x=lambda x: x[:, 0] / 10))
    sent = encode_drivers(uplift, features, np.array(["C", "A"], dtype=object), {"call": arm})
    x, r, _ = driver_inputs(uplift, sent, np.array(["A", "C"], dtype=object), {"call": arm})
    want_x, want_r, _ = driver_inputs(uplift, features, np.array(["A", "C"], dtype=object), {"call": arm})
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(r, want_r)
    assert isinstance(sent, DriverInputs) and x.tolist() == [[5.0], [7.0]]
    with pytest.raises(ValueError, match="no driver inputs for 1 pooled customers"):
        driver_inputs(uplift, sent, np.array(["B"], dtype=object), {"call": arm})


def test_with_columns_leaves_the_frame_as_it_was_and_shares_what_it_keeps():
    """Comparison plans are shallow copies of the book's candidates: the set columns are
    new, the kept ones the same arrays (no copy of the book per plan), and the original is
    never written, not even through a kept column of the same dtype block."""
    frame = pd.DataFrame({"customer_id": ["a", "b"], "expected_value": [1.0, 2.0],
                          "cost": [3.0, 4.0], "eligible": [True, False],
                          "expected_value_low": [0.5, 1.5]})
    before = frame.copy()
    out = with_columns(frame, drop=("expected_value_low", "absent"), expected_value=[9.0, 9.0],
                       eligible=np.array([False, True]))
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == ["customer_id", "expected_value", "cost", "eligible"]
    assert out["expected_value"].tolist() == [9.0, 9.0] and out["eligible"].tolist() == [False, True]
    assert np.shares_memory(out["cost"].to_numpy(), frame["cost"].to_numpy())
    out["cost"] = [0.0, 0.0]                     # writing the copy later still spares the frame
    pd.testing.assert_frame_equal(frame, before)
