"""Experiments: Thompson shares over action x driver-stratum cells, random draws with known
probabilities, a standing hold-out, and the plan's own budget, consent, contact and capacity rules."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from configs.settings import PROJECT_ROOT, PrescribeParams
from models.prescribe.actions import load_catalogue
from models.prescribe.experiments import (
    Budget,
    deliverable,
    plan_experiments,
    spread,
    thompson_shares,
)
from models.uplift.driver import DriverArm

CATALOGUE = load_catalogue(PROJECT_ROOT / "configs" / "actions.yaml")
PARAMS = PrescribeParams()
RISK = -1.0          # every customer's prior churn log-odds (P about 0.27)


def driver_arm(tau0: float, slope: float, sd: float) -> DriverArm:
    """One driver feature ``f`` (standardized as it is); effect logit tau0 + slope x f."""
    return DriverArm(drivers=["f"], index=np.array([0]), center=np.array([0.0]), scale=np.array([1.0]),
                     mean=np.array([0.0, 0.0, tau0, slope]), cov=np.diag([1e-6, 1e-6, sd**2, sd**2]),
                     prior_sd=0.1, rows=500, treated=250)


def fake_uplift(arms: dict[str, DriverArm]) -> SimpleNamespace:
    return SimpleNamespace(
        arms={a: SimpleNamespace(driver=d) for a, d in arms.items()},
        spec=SimpleNamespace(array=lambda frame: frame[["f"]].to_numpy(np.float64)),
        risk=SimpleNamespace(logit_x=lambda x: np.full(len(x), RISK)))


def world(n: int = 400, reps: int = 4, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Candidates where each customer may get exactly one action (the first half apology_credit,
    the second plan_upgrade: cells never share a customer), features and contact history."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:05d}" for i in range(n)]
    action = np.where(np.arange(n) < n // 2, "apology_credit", "plan_upgrade")
    cost = pd.Series({a.id: a.cost for a in CATALOGUE})
    minutes = pd.Series({a.id: a.handling_minutes for a in CATALOGUE})
    candidates = pd.DataFrame({
        "customer_id": ids, "rep_id": [f"R{i % reps}" for i in range(n)], "action_id": action,
        "p_churn": 0.3, "uplift": 0.0, "value_at_risk": 600.0,
        "cost": cost.loc[action].to_numpy(), "handling_minutes": minutes.loc[action].to_numpy(),
        "expected_value": -1.0, "eligible": True})
    features = pd.DataFrame({"customer_id": ids, "f": rng.normal(size=n)})
    contacts = pd.DataFrame({"customer_id": ids, "days_since_last_action": np.nan,
                             "days_since_last_invitation": np.nan, "contacts_7d": 0.0})
    return candidates, features, contacts


def money(amount: float, candidates: pd.DataFrame, minutes: float = 1e9) -> Budget:
    reps = pd.Series(minutes, index=sorted(candidates["rep_id"].unique()))
    return Budget("cost", amount, reps, CATALOGUE.max_per_cycle())


ARMS = {"apology_credit": driver_arm(-0.6, -0.3, 0.4), "plan_upgrade": driver_arm(0.0, 0.0, 0.3)}


def test_thompson_shares_favour_cells_more_likely_best_and_positive():
    rng = np.random.default_rng(0)
    draws = np.vstack([rng.normal(m, 10.0, 4000) for m in (-8.0, 0.0, 8.0)])
    shares = thompson_shares(draws)
    assert shares[2] > shares[1] > shares[0] and shares.sum() <= 1.0
    sure_loss = np.vstack([rng.normal(-50, 1, 4000), rng.normal(-60, 1, 4000)])
    assert thompson_shares(sure_loss).sum() == 0          # nothing could pay: nothing spent
    whole = thompson_shares(sure_loss, whole=True)        # experiment_spend: whole
    assert whole.sum() == 1 and whole[0] == 1             # all of it, on the likely best cell
    # a cell that pays for sure but little takes its share only when the other is unlikely to beat it
    assert thompson_shares(np.vstack([np.full(4000, 1.0), rng.normal(0, 10, 4000)]))[0] == \
        pytest.approx(0.54, abs=0.03)


def test_spread_is_proportional_within_caps_and_exact():
    out = spread(10, np.array([50, 30, 20]), np.array([100, 100, 1]))
    assert out.sum() == 10 and out[2] == 1 and out[0] >= out[1]
    assert spread(5, np.array([3, 3]), np.array([1, 1])).sum() == 2


def test_recorded_probabilities_match_assignment_frequencies_over_seeds():
    candidates, features, contacts = world()
    uplift = fake_uplift(ARMS)
    seeds = range(200)
    treated = pd.Series(0.0, index=candidates["customer_id"])
    held = treated.copy()
    p_treated, p_held = treated.copy(), treated.copy()
    for seed in seeds:
        exp = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, uplift, features,
                               money(600.0, candidates), seed)
        pool = exp.pool.set_index("customer_id")
        p_treated = p_treated.add(pool["p_treated"], fill_value=0.0)
        p_held = p_held.add(pool["p_held_out"], fill_value=0.0)
        rows = exp.actions.set_index("customer_id")
        recorded = np.where(rows["control_group"], pool.loc[rows.index, "p_held_out"],
                            pool.loc[rows.index, "p_treated"])
        assert np.allclose(rows["assignment_probability"], recorded)
        assert rows["assignment_probability"].between(0, 1, inclusive="right").all()
        treated = treated.add(pd.Series(1.0, index=rows.index[~rows["control_group"]]), fill_value=0.0)
        held = held.add(pd.Series(1.0, index=rows.index[rows["control_group"]]), fill_value=0.0)
    n = len(seeds)
    cells = features.set_index("customer_id")["f"].ge(1.0).astype(str) + candidates.set_index(
        "customer_id")["action_id"]
    for freq, prob in ((treated, p_treated), (held, p_held)):
        by_cell = pd.DataFrame({"freq": freq / n, "prob": prob / n}).groupby(cells).mean()
        assert (by_cell["prob"] > 0).any()
        assert np.allclose(by_cell["freq"], by_cell["prob"], atol=0.01), by_cell
    per_customer = (treated / n - p_treated / n).abs()
    assert per_customer.max() < 0.12          # a binomial's spread over 200 seeds, not a bias


def test_budget_share_holdout_and_rep_time_are_respected():
    candidates, features, contacts = world(n=2000, reps=5)
    uplift = fake_uplift(ARMS)
    exp = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, uplift, features,
                           money(900.0, candidates, minutes=60.0), seed=3)
    rows = exp.actions
    treated = rows[~rows["control_group"]]
    assert 0 < treated["cost"].sum() <= 900.0
    assert (treated.groupby("rep_id")["handling_minutes"].sum() <= 60.0).all()
    assert rows["customer_id"].is_unique
    cells = exp.cells[exp.cells["treated"] > 0]
    assert (cells["held_out"] >= PARAMS.holdout_share * (cells["treated"] + cells["held_out"])).all()
    held_share = rows.groupby("action_id")["control_group"].mean()   # a standing hold-out per action
    assert (held_share >= PARAMS.holdout_share).all()
    assert (rows["arm"] == "experiment").all() and rows["expected_value"].isna().all()
    assert (rows["effect_low"] <= rows["uplift"]).all() and (rows["uplift"] <= rows["effect_high"]).all()


def test_shares_follow_the_posterior_probability_of_positive_value():
    candidates, features, contacts = world(n=1000)
    strong = {"apology_credit": driver_arm(-1.0, 0.0, 0.2), "plan_upgrade": driver_arm(0.5, 0.0, 0.2)}
    exp = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, fake_uplift(strong), features,
                           money(1500.0, candidates), seed=1)
    share = exp.cells.groupby("action_id")["share"].sum()
    assert share["apology_credit"] > 0.9 and share.get("plan_upgrade", 0.0) < 0.05
    assert set(exp.actions["action_id"]) == {"apology_credit"}
    worse = {a: driver_arm(2.0, 0.0, 0.05) for a in ARMS}      # surely harmful: no experiment
    none = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, fake_uplift(worse), features,
                            money(1500.0, candidates), seed=1)
    assert none.actions.empty and none.cells["share"].sum() == 0


def test_consent_contact_policy_and_weekly_cap_apply_to_experiments():
    candidates, features, contacts = world(n=600)
    blocked = candidates["customer_id"].isin([f"C{i:05d}" for i in range(0, 600, 3)])
    candidates = candidates.assign(eligible=~blocked.to_numpy())     # e.g. opted out of the channel
    recent = contacts["customer_id"].isin([f"C{i:05d}" for i in range(1, 600, 3)])
    contacts = contacts.assign(days_since_last_action=np.where(recent, 3.0, np.nan),
                               contacts_7d=np.where(np.arange(600) % 7 == 0, 1.0, 0.0))
    ok = deliverable(candidates, contacts, CATALOGUE, PARAMS)
    assert not ok[blocked.to_numpy()].any() and not ok[recent.to_numpy()].any()
    assert not ok[(contacts["contacts_7d"] >= PARAMS.max_contacts_per_week).to_numpy()].any()
    for seed in range(5):
        exp = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, fake_uplift(ARMS), features,
                               money(3000.0, candidates), seed)
        assert len(exp.actions) and set(exp.actions["customer_id"]) <= set(candidates["customer_id"][ok])


def test_no_posterior_no_experiment_and_runs_are_reproducible():
    candidates, features, contacts = world()
    bare = SimpleNamespace(arms={a: SimpleNamespace(driver=None) for a in ARMS})
    assert plan_experiments(candidates, contacts, CATALOGUE, PARAMS, bare, features,
                            money(600.0, candidates), 0).actions.empty
    assert plan_experiments(candidates, contacts, CATALOGUE, PARAMS, None, features,
                            money(600.0, candidates), 0).actions.empty
    one = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, fake_uplift(ARMS), features,
                           money(600.0, candidates), 7).actions
    two = plan_experiments(candidates, contacts, CATALOGUE, PARAMS, fake_uplift(ARMS), features,
                           money(600.0, candidates), 7).actions
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.parametrize("controls", [0.0, 1.0, 4.0])
def test_each_treated_customer_gets_its_hold_outs_from_the_same_reps(controls):
    candidates, features, contacts = world(n=4000, reps=5)
    params = PARAMS.model_copy(update={"experiment_controls": controls})
    exp = plan_experiments(candidates, contacts, CATALOGUE, params, fake_uplift(ARMS), features,
                           money(600.0, candidates), seed=5)
    rows, ratio = exp.actions, max(controls, PARAMS.holdout_share / (1 - PARAMS.holdout_share))
    by = rows.groupby(["action_id", "rep_id"])["control_group"].agg(["sum", "size"])
    treated, held = by["size"] - by["sum"], by["sum"]
    assert treated.sum() > 0
    assert (held == np.ceil(ratio * treated - 1e-9)).all()    # per rep: the pool is large enough
    pool = exp.pool.groupby(["action_id", "stratum", "rep_id"])
    assert (pool["drawn"].sum() <= pool.size()).all()
    assert (exp.pool["p_treated"] <= 1 / (1 + ratio) + 1e-9).all()


def test_a_small_pool_treats_fewer_rather_than_lose_its_hold_outs():
    candidates, features, contacts = world(n=40, reps=2)
    params = PARAMS.model_copy(update={"experiment_controls": 4.0})
    exp = plan_experiments(candidates, contacts, CATALOGUE, params, fake_uplift(ARMS), features,
                           money(1e6, candidates), seed=1)
    rows = exp.actions
    assert len(rows) and rows["control_group"].sum() >= 4 * (~rows["control_group"]).sum()


def test_the_plan_does_not_depend_on_how_many_customers_are_encoded_at_once(monkeypatch):
    """The drivers are encoded a block of customers at a time (memory at scale); a wide model
    matrix whose driver is not its first column, in blocks of 7 or whole, plans the same rows."""
    import dataclasses

    from models.prescribe import drivers, experiments

    candidates, features, contacts = world(n=400, reps=4)
    features = features.assign(g=np.arange(len(features)) % 5, h=1.0)
    wide = {a: dataclasses.replace(d, index=np.array([2])) for a, d in ARMS.items()}
    risk = SimpleNamespace(logit_x=lambda x: RISK + 0.01 * x[:, 0])     # reads a non-driver column
    uplift = SimpleNamespace(arms={a: SimpleNamespace(driver=d) for a, d in wide.items()},
                             spec=SimpleNamespace(array=lambda frame: frame[["g", "h", "f"]].to_numpy(
                                 np.float64)), risk=risk)

    def plan():
        return plan_experiments(candidates, contacts, CATALOGUE, PARAMS, uplift, features,
                                money(600.0, candidates), seed=3)

    whole = plan()
    monkeypatch.setattr(experiments, "BLOCK", 7)
    monkeypatch.setattr(experiments, "EFFECT_BLOCK", 13)
    monkeypatch.setattr(drivers, "ENCODE_BLOCK", 11)
    blocks = plan()
    assert len(whole.actions)
    pd.testing.assert_frame_equal(whole.actions, blocks.actions)
    pd.testing.assert_frame_equal(whole.pool, blocks.pool)


def test_a_row_mask_plans_what_the_masked_copy_plans():
    """``rows`` (the customers the model's plan left alone) spares the book's candidates a
    copy; it must plan exactly what that copy would: same rows, cells and design
    probabilities. Customers here have several actions, one without an arm, in no catalogue
    order (the pool is ordered by action, candidate order within one)."""
    candidates, features, contacts = world(n=300, reps=3)
    other = candidates.assign(
        action_id=np.where(candidates["action_id"].eq("apology_credit"), "plan_upgrade", "apology_credit"))
    third = candidates.assign(action_id="callback_offer" if "callback_offer" in CATALOGUE.ids
                              else CATALOGUE.ids[-1])
    both = pd.concat([other, candidates, third]).sort_values("customer_id", kind="stable")
    both = both.drop_duplicates(["customer_id", "action_id"]).reset_index(drop=True)
    for a in CATALOGUE:
        both.loc[both["action_id"] == a.id, ["cost", "handling_minutes"]] = [a.cost, a.handling_minutes]
    mask = ~both["customer_id"].str[-1].isin(["3", "7"]).to_numpy()     # whole customers out

    def plan(frame, rows=None):
        return plan_experiments(frame, contacts, CATALOGUE, PARAMS, fake_uplift(ARMS), features,
                                money(2_000.0, both), seed=5, rows=rows)

    masked, copied = plan(both, mask), plan(both[mask])
    assert len(masked.actions) and not masked.actions["customer_id"].str[-1].isin(["3", "7"]).any()
    pd.testing.assert_frame_equal(masked.actions, copied.actions)
    pd.testing.assert_frame_equal(masked.cells, copied.cells)
    pd.testing.assert_frame_equal(masked.pool, copied.pool)
    assert masked.pool["action_id"].map(CATALOGUE.ids.index).is_monotonic_increasing
