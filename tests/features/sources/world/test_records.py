"""What the company records: notice, contact preferences, a driver-aware programme (issue 13).

World-level checks read the small world (exports and truth); the assignment-state and
stratum-probability checks drive ``step_month`` / ``run_campaign`` on hand-set states.
"""

from __future__ import annotations

import copy
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.sources.world import campaigns as cp
from features.sources.world import mechanisms as mech
from features.sources.world.dynamics import PLAN_USAGE_LIMIT, initial_state
from features.sources.world.export import Clock
from features.sources.world.month import MonthContext, step_month
from features.sources.world.population import REGIONS, draw_population


def raw(world, table):
    return pd.read_parquet(world / "raw" / f"{table}.parquet")


def truth(world, table):
    return pd.read_parquet(world / "truth" / f"{table}.parquet")


def _chunk(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pop = draw_population(rng, np.arange(1, n + 1), 6, 1.0, 10)   # everyone existing at start
    return rng, pop, initial_state(pop, rng)


def _ctx(clock: Clock, t: int, severity: float, rate: float) -> MonthContext:
    outages = np.tile([severity, 1.0], (len(REGIONS), 1))
    return MonthContext(t=t, day0=int(clock.day0[t]), days=int(clock.day0[t + 1] - clock.day0[t]),
                        calendar_month=t, relationship_wave=False, outages=outages,
                        campaign_rate=rate, holdout_share=0.2, notice_days=42)


# --- 1. cancellation notice ---------------------------------------------------------------

def test_every_churner_gave_notice_one_notice_period_before(small_world):
    params = json.loads((small_world / "truth" / "world.json").read_text())["params"]
    notice_days = params["notice_days"]
    end = pd.Timestamp(params["start_date"]) + pd.DateOffset(months=params["months"])
    crm = raw(small_world, "crm_customers")
    churned = crm[crm["status"] == "churned"]
    assert len(churned) > 500 and churned["notice_date"].notna().all()
    gap = (pd.to_datetime(churned["churn_date"]) - pd.to_datetime(churned["notice_date"])).dt.days
    assert (gap == notice_days).all()
    # still in their notice period at the export: active, notice given, churn after the end
    pending = crm[(crm["status"] == "active") & crm["notice_date"].notna()]
    assert len(pending) > 0
    assert (pd.to_datetime(pending["notice_date"]) + pd.Timedelta(days=notice_days) >= end).all()
    # the notice is the decision: same month as the truth's decision
    decisions = truth(small_world, "churn").dropna(subset=["decision_month"])
    both = decisions.merge(crm[["customer_id", "notice_date"]], on="customer_id")
    assert len(both) == len(decisions) == crm["notice_date"].notna().sum()
    assert (pd.to_datetime(both["notice_date"]).dt.to_period("M")
            == pd.to_datetime(both["decision_month"]).dt.to_period("M")).all()


def test_customers_under_notice_are_not_in_the_programme(small_world):
    log = raw(small_world, "interventions").merge(
        raw(small_world, "crm_customers")[["customer_id", "notice_date"]])
    assigned = log["assigned_at"].dt.tz_localize(None)
    assert not (pd.to_datetime(log["notice_date"]) < assigned.dt.floor("D")).any()
    assert (truth(small_world, "intervention_effects")["true_effect_90d"] != 0).all()


# --- 2. contact preferences and outcomes ------------------------------------------------

def test_opt_outs_are_likelier_for_contact_averse_customers(small_world):
    crm = raw(small_world, "crm_customers").merge(truth(small_world, "customer_traits"))
    assert crm["phone_opt_out"].isna().equals(crm["phone"].isna())
    assert crm["email_opt_out"].isna().equals(crm["email"].isna())
    for flag in ("phone_opt_out", "email_opt_out"):
        rate = crm.dropna(subset=[flag]).groupby("contact_averse")[flag].mean()
        assert rate[True] > 4 * rate[False] and rate[False] < 0.1, (flag, rate)


def test_programme_respects_contact_preferences(small_world):
    crm = raw(small_world, "crm_customers")
    log = raw(small_world, "interventions").merge(crm, on="customer_id")
    calls = log[log["action"].isin(["service_recovery_call", "proactive_tech_check"])]
    assert len(calls) > 100
    assert calls["phone"].notna().all() and not calls["phone_opt_out"].astype(bool).any()
    mails = log[log["action"] == "discount_offer"]
    assert mails["email"].notna().all() and not mails["email_opt_out"].astype(bool).any()


def test_contact_outcomes_depend_on_aversion(small_world):
    log = raw(small_world, "interventions").merge(truth(small_world, "customer_traits"))
    delivered = log[~log["control_group"]]
    share = pd.crosstab(delivered["contact_averse"], delivered["outcome"], normalize="index")
    assert share.loc[True, "accepted"] < share.loc[False, "accepted"] - 0.15
    for outcome in ("declined", "no_answer", "complaint_after_contact"):
        assert share.loc[True, outcome] > share.loc[False, outcome], outcome
    assert share.loc[True, "complaint_after_contact"] > 5 * share.loc[False, "complaint_after_contact"]


def test_drawn_outcomes_follow_each_customers_mix():
    rng = np.random.default_rng(0)
    averse = np.repeat([False, True], 100_000)
    out = mech.draw_outcomes(rng, averse)
    for row, who in ((0, ~averse), (1, averse)):
        freq = np.bincount(out[who], minlength=4) / who.sum()
        np.testing.assert_allclose(freq, mech.OUTCOME_P[row], atol=0.006)


# --- 3. true effects from the state at assignment -----------------------------------------

def test_true_effect_is_computed_from_the_state_at_assignment():
    """A full outage hits everyone after the month's assignments: the logged effect ignores it."""
    rng, pop, st = _chunk(6000)
    clock = Clock(date(2024, 1, 1), 3)
    step_month(rng, pop, st, _ctx(clock, 0, severity=0.0, rate=0.0))
    before = copy.deepcopy(st)
    iv = step_month(rng, pop, st, _ctx(clock, 1, severity=1.0, rate=0.3))["interventions"]
    cust, action, rows = iv["cust"], iv["action"], np.arange(len(iv["cust"]))
    assert len(cust) > 500 and (iv["assigned_day"] < clock.day0[1] + 1).all()
    averse = pop.contact_averse[cust]
    ratio = before.usage_prev[cust] / PLAN_USAGE_LIMIT[before.plan[cust]]
    at_assignment = mech.expected_effect(
        before.last_logit[cust], cp.log_effects_now(pop, before, cust, ratio), averse)[rows, action]
    np.testing.assert_allclose(iv["true_effect"], at_assignment)
    # the post-assignment outage would make credits and technical checks look far better
    at_month_end = mech.expected_effect(
        st.last_logit[cust], cp.log_effects_now(pop, st, cust, ratio), averse)[rows, action]
    outage_actions = np.isin(action, [3, 4])
    assert outage_actions.sum() > 50
    gain = at_assignment[outage_actions] - at_month_end[outage_actions]
    assert (gain > 0).all() and gain.mean() > 0.01, gain.mean()


# --- 4. a driver-aware programme with known probabilities ---------------------------------

def _uniform_chunk(n: int, seed: int):
    """Everyone reachable on every channel, on the basic plan; drivers set by hand."""
    rng, pop, st = _chunk(n, seed)
    pop.has_phone[:] = pop.has_email[:] = True
    pop.phone_opt_out[:] = pop.email_opt_out[:] = False
    st.plan[:] = 0
    st.usage_prev[:] = 0.5 * PLAN_USAGE_LIMIT[0]
    st.last_logit[:] = -4.0
    part = np.arange(n) % 10
    st.unresolved_recent[part == 0] = 1.0
    st.delivery_recent[part == 1] = 1.0
    st.recent_rise[part == 2] = 0.05
    st.usage_prev[part == 3] = 1.5 * PLAN_USAGE_LIMIT[0]
    return rng, pop, st


def test_assignment_rates_within_strata_match_the_recorded_probabilities():
    rng, pop, st = _uniform_chunk(200_000, seed=1)
    idx = np.arange(len(pop.number))
    strata = cp.observed_strata(st, idx)
    sizes = np.bincount(strata, minlength=len(cp.STRATA))
    assert (sizes > 10_000).all()
    iv = cp.run_campaign(rng, pop, st, idx, t=1, t_day0=31, rate=0.05, holdout=0.2)
    assert iv["probability"].max() <= cp.MAX_PICK and (iv["probability"] > 0).all()
    assert abs(len(iv["cust"]) / len(idx) - 0.05) < 0.003          # the programme's size holds
    np.testing.assert_array_equal(iv["stratum"], strata[iv["cust"]])
    log = pd.DataFrame({"s": iv["stratum"], "a": iv["action"], "c": iv["control"],
                        "p": iv["probability"]})
    for (s, _, _), cell in log.groupby(["s", "a", "c"]):
        p = cell["p"].iloc[0]
        assert np.allclose(cell["p"], p)                           # one design probability
        se = np.sqrt(p * (1 - p) / sizes[s])
        assert abs(len(cell) / sizes[s] - p) < 4.5 * se + 1e-4, (cp.STRATA[s], len(cell), p)
    # driver strata are picked more, and mostly get the action that answers their driver
    p_pick = log.groupby("s").size() / sizes
    assert p_pick[0] > 5 * p_pick[4]
    calls = log[log["a"] == 0]
    assert (calls["s"] == 0).mean() > 0.6


def test_holdout_is_randomized_within_each_stratum():
    rng, pop, st = _uniform_chunk(200_000, seed=2)
    idx = np.arange(len(pop.number))
    iv = cp.run_campaign(rng, pop, st, idx, t=1, t_day0=31, rate=0.05, holdout=0.2)
    log = pd.DataFrame({"s": iv["stratum"], "a": iv["action"], "c": iv["control"],
                        "averse": pop.contact_averse[iv["cust"]], "p": iv["probability"]})
    for _, cell in log.groupby(["s", "a"]):
        if len(cell) > 400:
            assert abs(cell["c"].mean() - 0.2) < 4 * np.sqrt(0.16 / len(cell))
            ratio = cell.loc[cell["c"], "p"].mean() / cell.loc[~cell["c"], "p"].mean()
            assert ratio == pytest.approx(0.25)                   # h / (1 - h)
    # hidden traits are balanced between the held-out and the treated
    by = log.groupby("c")["averse"].mean()
    assert abs(by[True] - by[False]) < 0.02


def test_pick_probabilities_keep_the_programme_size():
    strata = np.repeat(np.arange(5), [50, 300, 200, 500, 5000])
    for rate in (0.01, 0.03, 0.3, 0.6):
        p = cp.pick_probabilities(strata, rate)
        assert p.max() <= cp.MAX_PICK
        assert np.isclose(p[strata].mean(), rate)


def test_the_world_programme_targets_drivers(small_world):
    log = raw(small_world, "interventions")
    assert set(log["stratum"]) == set(cp.STRATA)
    assert log["assignment_probability"].between(0, cp.MAX_PICK, inclusive="right").all()
    by = log.groupby("stratum")["control_group"].agg(["mean", "size"])
    assert (abs(by["mean"] - 0.2) < 4 * np.sqrt(0.16 / by["size"])).all()
    calls = log[log["action"] == "service_recovery_call"]
    assert (calls["stratum"] == "unresolved_ticket").mean() > 0.6
    tickets = raw(small_world, "support_tickets")
    unresolved = tickets.loc[tickets["status"] == "unresolved", ["customer_id", "opened_at"]]
    pairs = calls.merge(unresolved, on="customer_id")
    recent = (pairs["assigned_at"] - pairs["opened_at"]).dt.days.between(0, 45)
    assert pairs.loc[recent, "intervention_id"].nunique() / len(calls) > 0.4
