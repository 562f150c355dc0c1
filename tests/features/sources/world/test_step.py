"""The world keeps its state and steps month by month, answering a product's plan."""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.sources.world import mechanisms as mech
from features.sources.world.dynamics import WorldState
from features.sources.world.state import load_world, save_world, state_dir
from features.sources.world.step import advance_world
from tests.conftest import make_world

WORLD = {"customers": 1500, "months": 6, "seed": 5, "chunk_customers": 1000}  # two chunks


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_world(tmp_path_factory.mktemp("step"), **WORLD)


def _copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to)
    return to


def _open_customers(world: Path) -> pd.DataFrame:
    crm = pd.read_parquet(world / "raw" / "crm_customers.parquet")
    return crm[crm["status"].eq("active") & crm["notice_date"].isna()]


def _plan(customers: pd.DataFrame, action: str, control_every: int = 0) -> pd.DataFrame:
    n = len(customers)
    control = (np.arange(n) % control_every == 0) if control_every else np.zeros(n, bool)
    return pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(), "action_id": action,
                         "rep_id": customers["rep_id"].to_numpy(), "rank": np.arange(n),
                         "control_group": control})


def _parquet_bytes(world: Path) -> dict[str, bytes]:
    return {p.relative_to(world).as_posix(): p.read_bytes()
            for p in sorted(world.rglob("*.parquet"))}


def _month_rows(world: Path, table: str, column: str, month: str) -> pd.DataFrame:
    frame = pd.read_parquet(world / ("raw" if table == "interventions" else "truth") / f"{table}.parquet")
    return frame[pd.to_datetime(frame[column]).dt.strftime("%Y-%m") == month]


def test_the_saved_state_round_trips(base, tmp_path):
    world = load_world(base / "truth")
    assert world.month == WORLD["months"] and len(world.chunks) == 2
    save_world(tmp_path, world)
    again = load_world(tmp_path)
    for a, b in zip(world.chunks, again.chunks, strict=True):
        for f in fields(WorldState):
            np.testing.assert_array_equal(getattr(a.st, f.name), getattr(b.st, f.name))
        np.testing.assert_array_equal(a.pop.price_sens, b.pop.price_sens)
        assert a.chunk.ids.equals(b.chunk.ids)
        assert a.rng.random() == b.rng.random()           # the random streams carry on alike
    assert world.master.random() == again.master.random()
    assert again.counters == world.counters


def test_stepping_without_a_saved_world_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="cem simulate"):
        advance_world(tmp_path / "truth", tmp_path / "raw", None)


def test_same_seed_and_plan_give_byte_identical_exports(base, tmp_path):
    plan = _plan(_open_customers(base).head(200), "apology_credit", control_every=4)
    a, b = _copy(base, tmp_path / "a"), _copy(base, tmp_path / "b")
    for world in (a, b):
        advance_world(world / "truth", world / "raw", plan, capacity=30)
    assert _parquet_bytes(a) == _parquet_bytes(b)


def test_two_months_at_once_equal_two_single_steps(base, tmp_path):
    once, twice = _copy(base, tmp_path / "once"), _copy(base, tmp_path / "twice")
    advance_world(once / "truth", once / "raw", None, months=2)
    advance_world(twice / "truth", twice / "raw", None)
    advance_world(twice / "truth", twice / "raw", None)
    assert _parquet_bytes(once) == _parquet_bytes(twice)
    assert load_world(once / "truth").month == load_world(twice / "truth").month == WORLD["months"] + 2


def test_a_step_appends_one_month_to_every_monthly_table(base, tmp_path):
    world = _copy(base, tmp_path / "w")
    before = pd.read_parquet(base / "raw" / "product_usage.parquet")
    [step] = advance_world(world / "truth", world / "raw", None)
    after = pd.read_parquet(world / "raw" / "product_usage.parquet")
    pd.testing.assert_frame_equal(after.head(len(before)), before)     # history untouched
    assert set(pd.to_datetime(after["month"].iloc[len(before):]).dt.date) == {step.month}
    effects = pd.read_parquet(world / "truth" / "action_effects.parquet")
    assert pd.to_datetime(effects["as_of"]).dt.strftime("%Y-%m").value_counts().to_dict().keys() == {
        "2024-07", "2024-08"}
    # the product's plan replaces the old programme: no action without a plan
    assert _month_rows(world, "interventions", "assigned_at", "2024-07").empty


def test_the_programme_keeps_running_when_asked(base, tmp_path):
    world = _copy(base, tmp_path / "w")
    advance_world(world / "truth", world / "raw", None, programme_runs=True)
    month = _month_rows(world, "interventions", "assigned_at", "2024-07")
    assert len(month) > 0 and not month["stratum"].str.startswith("product_").any()


def test_planned_actions_are_delivered_within_consent_and_capacity(base, tmp_path):
    world = _copy(base, tmp_path / "w")
    open_ = _open_customers(base)
    no_calls = open_[open_["phone_opt_out"].eq(True)].head(5)
    calls = _plan(pd.concat([no_calls, open_.drop(no_calls.index).head(300)]),
                  "service_recovery_call", control_every=5)
    calls = pd.concat([calls, pd.DataFrame({"customer_id": ["C9999999"], "action_id": ["apology_credit"],
                                            "rep_id": ["R0000"], "rank": [999], "control_group": [False]})])
    [step] = advance_world(world / "truth", world / "raw", calls, capacity=10)
    delivery = _month_rows(world, "plan_delivery", "month", "2024-07").set_index("customer_id")
    assert set(delivery.loc[no_calls["customer_id"], "status"]) == {"not_allowed"}
    assert delivery.loc["C9999999", "status"] == "not_open"
    delivered = delivery[delivery["status"].eq("delivered")]
    assert delivered.groupby("rep_id").size().max() <= 10 and step.delivered == len(delivered)
    assert step.over_capacity > 0 and step.held_out > 0
    log = _month_rows(world, "interventions", "assigned_at", "2024-07").set_index("customer_id")
    assert set(log.index) == set(delivered.index) | set(delivery.index[delivery["status"].eq("held_out")])
    treated = log.loc[delivered.index]
    assert treated["outcome"].isin(mech.OUTCOMES[:4]).all() and not treated["control_group"].any()
    assert (treated["stratum"] == "product_policy").all()       # a plan without arms: the policy
    assert (delivery["arm"] == "policy").all()
    np.testing.assert_allclose(treated["assignment_probability"], 0.9)
    assert (treated["intervention_id"] == "plan-20240701-" + treated.index).all()


def test_held_out_rows_are_controls_with_no_effect(base, tmp_path):
    world = _copy(base, tmp_path / "w")
    plan = _plan(_open_customers(base).head(400), "apology_credit", control_every=2)
    advance_world(world / "truth", world / "raw", plan, capacity=1000)
    log = _month_rows(world, "interventions", "assigned_at", "2024-07")
    held = log[log["control_group"]]
    assert len(held) == plan["control_group"].sum()
    assert held["outcome"].eq("holdout").all() and held["cost"].eq(0).all()
    np.testing.assert_allclose(held["assignment_probability"], 0.1)
    effects = pd.read_parquet(world / "truth" / "intervention_effects.parquet")
    shift = effects.set_index("intervention_id").loc[held["intervention_id"], "realised_logit_shift"]
    assert shift.eq(0).all()


def test_a_delivered_action_lands_in_the_churn_hazard(base, tmp_path):
    """The month's hazard is sigmoid(base logit + the running action's shift), and the
    shift of a delivered row is the one its outcome caused."""
    world = _copy(base, tmp_path / "w")
    plan = _plan(_open_customers(base).head(400), "apology_credit", control_every=3)
    advance_world(world / "truth", world / "raw", plan, capacity=1000)
    state = load_world(world / "truth")
    t = state.month - 1
    hazards = _month_rows(world, "satisfaction_monthly", "month", "2024-07").set_index("customer_id")
    effects = pd.read_parquet(world / "truth" / "intervention_effects.parquet")
    effects = effects[effects["intervention_id"].str.startswith("plan-")].set_index("customer_id")
    checked = 0
    for cs in state.chunks:
        ids = cs.chunk.ids.to_numpy(zero_copy_only=False)
        here = np.flatnonzero(np.isin(ids, plan["customer_id"]))
        running = np.where(cs.st.action_until[here] >= t, cs.st.action_shift[here], 0.0)
        expected = mech.sigmoid(cs.st.last_logit[here] + running)
        np.testing.assert_allclose(hazards.loc[ids[here], "churn_hazard"], expected, rtol=1e-5)
        logged = effects[effects["action"].eq("apology_credit")].reindex(ids[here])
        treated = logged["control_group"].eq(False).to_numpy()
        np.testing.assert_allclose(cs.st.action_shift[here][treated],
                                   logged["realised_logit_shift"].to_numpy()[treated])
        checked += treated.sum()
    assert checked > 100


def test_the_best_action_lowers_the_hazard_of_those_who_get_it(base, tmp_path):
    """Customers given the action of most negative true effect have a lower hazard than the
    same customers held out (over five worlds)."""
    effects = pd.read_parquet(base / "truth" / "action_effects.parquet")
    effects = effects[effects["eligible"]]
    best = effects.loc[effects.groupby("customer_id")["true_effect_90d"].idxmin()]
    best = best[best["true_effect_90d"] < -0.02].set_index("customer_id")
    customers = _open_customers(base).set_index("customer_id").loc[best.index].reset_index()
    gaps = []
    for seed in range(5):
        hazard = {}
        for held in (False, True):
            world = _copy(base, tmp_path / f"{seed}-{held}")
            state = load_world(world / "truth")
            state.master = np.random.default_rng(seed)           # another month's luck
            save_world(world / "truth", state)
            plan = _plan(customers, "", 0).assign(action_id=best["action"].to_numpy(),
                                                 control_group=held)
            advance_world(world / "truth", world / "raw", plan, capacity=10_000)
            month = _month_rows(world, "satisfaction_monthly", "month", "2024-07")
            hazard[held] = month.set_index("customer_id").loc[customers["customer_id"], "churn_hazard"].mean()
        gaps.append(hazard[False] - hazard[True])
    assert len(customers) > 50 and max(gaps) < 0


def test_the_state_lives_under_the_truth_folder(base):
    assert state_dir(base / "truth").is_dir()
    assert not any("state" in p.name for p in (base / "raw").iterdir())
