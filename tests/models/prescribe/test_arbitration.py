"""Arbitration: no plan ever breaks policy, capacity, limits or budget; counts add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import models.prescribe.arbitration as arb
from configs.settings import PrescribeParams
from models.prescribe.actions import catalogue_from_entries, load_catalogue
from models.prescribe.arbitration import arbitrate, rep_lists
from models.prescribe.plan_frames import SKIP_REASONS
from models.prescribe.value import candidate_actions

EPS = 1e-6


def make_catalogue(specs: list[dict]):
    """Catalogue of actions a0..a{k-1} with the given cost / minutes / limits."""
    return catalogue_from_entries([
        {"id": f"a{i}", "label": f"Action {i}", "channel": "call", "cost": s.get("cost", 10.0),
         "handling_minutes": s.get("minutes", 10.0), "addresses": ["support"],
         "limits": {"max_per_cycle": s.get("cap"), "min_days_between": s.get("gap")}}
        for i, s in enumerate(specs)])


def make_candidates(cat, ev: dict[str, list[float]], reps=None, eligible=None) -> pd.DataFrame:
    """Long candidates: ev[customer] = one EV per action (NaN = no row for that pair)."""
    rows = []
    for c, values in ev.items():
        for a, v in zip(cat, values, strict=True):
            if v is None:
                continue
            rows.append({"customer_id": c, "rep_id": (reps or {}).get(c, "r1"), "action_id": a.id,
                         "p_churn": 0.3, "uplift": -0.1, "value_at_risk": 1000.0, "cost": a.cost,
                         "handling_minutes": a.handling_minutes, "expected_value": v,
                         "eligible": (eligible or {}).get((c, a.id), True)})
    return pd.DataFrame(rows)


def params(**kw) -> PrescribeParams:
    base = {"min_days_since_contact": 14, "min_days_since_survey": 7, "max_contacts_per_week": 1,
            "rep_minutes_per_day": 1e6, "working_days_per_cycle": 5, "budget": None}
    return PrescribeParams(**(base | kw))


# --------------------------------------------------------------------------- the invariants

def check_plan(plan, candidates, contacts, cat, p: PrescribeParams, budget=None) -> None:
    """Every rule the plan must keep, checked from the inputs (not from the plan's own view)."""
    acts, skipped = plan.actions, plan.skipped
    customers = set(candidates["customer_id"])
    planned = set(acts["customer_id"])
    # counts add up: every customer in is planned once or skipped once, with a known reason
    assert not acts["customer_id"].duplicated().any()
    assert not skipped["customer_id"].duplicated().any()
    assert planned | set(skipped["customer_id"]) == customers
    assert not planned & set(skipped["customer_id"])
    assert set(skipped["reason"].astype(str)) <= set(SKIP_REASONS)
    assert plan.summary["planned"] + sum(plan.summary["skipped"].values()) == len(customers)
    if acts.empty:
        return
    key = candidates.assign(action_id=candidates["action_id"].astype(str)).set_index(["customer_id",
                                                                                       "action_id"])
    chosen = key.loc[list(zip(acts["customer_id"], acts["action_id"], strict=True))]
    # eligibility and value
    assert chosen["eligible"].all()
    assert (chosen["expected_value"] > max(p.min_expected_value, 0.0)).all()
    # contact policy
    hist = (contacts.set_index("customer_id").reindex(acts["customer_id"]) if contacts is not None
            else pd.DataFrame(index=acts["customer_id"], columns=["days_since_last_action",
                                                                  "days_since_last_invitation",
                                                                  "contacts_7d"], dtype=float))
    last = hist["days_since_last_action"].to_numpy(float)
    gap = np.array([cat[a].limits.min_days_between or 0 for a in acts["action_id"]])
    assert (np.isnan(last) | (last >= p.min_days_since_contact)).all()
    assert (np.isnan(last) | (last >= gap)).all()
    inv = hist["days_since_last_invitation"].to_numpy(float)
    assert (np.isnan(inv) | (inv >= p.min_days_since_survey)).all()
    assert (np.nan_to_num(hist["contacts_7d"].to_numpy(float)) + 1 <= p.max_contacts_per_week).all()
    # rep capacity, action limits, budget
    cap = p.rep_minutes_per_day * p.working_days_per_cycle
    minutes = chosen["handling_minutes"].groupby(acts["rep_id"].fillna("<none>").to_numpy()).sum()
    for rep, used in minutes.items():
        assert used <= (cap if rep != "<none>" else 0.0) + EPS, (rep, used)
    for a, count in acts["action_id"].value_counts().items():
        limit = cat[a].limits.max_per_cycle
        assert limit is None or count <= limit
    total = budget if budget is not None else p.budget
    if total is not None:
        assert chosen["cost"].sum() <= total + EPS
    # each rep's list is ranked 1..n by expected value
    for _, g in acts.groupby(acts["rep_id"].fillna("<none>")):
        assert sorted(g["rank_in_rep"]) == list(range(1, len(g) + 1))
        assert g.sort_values("rank_in_rep")["expected_value"].is_monotonic_decreasing
    assert plan.summary["expected_value"] <= plan.summary["value_bound"] + EPS


@st.composite
def worlds(draw):
    """Random catalogue, candidates, contacts and params (small, many shapes)."""
    k = draw(st.integers(1, 5))
    specs = [{"cost": draw(st.sampled_from([0.0, 5.0, 15.0, 45.0])),
              "minutes": draw(st.sampled_from([0.0, 3.0, 20.0, 30.0])),
              "cap": draw(st.one_of(st.none(), st.integers(0, 4))),
              "gap": draw(st.one_of(st.none(), st.sampled_from([0, 30, 90])))} for _ in range(k)]
    cat = make_catalogue(specs)
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    present = rng.random((n, k)) < 0.85
    ev = np.round(rng.normal(20, 60, (n, k)), 1)
    ev[rng.random((n, k)) < 0.05] = np.nan
    reps = rng.choice(np.array(["r1", "r2", "r3", None], dtype=object), n, p=[0.4, 0.3, 0.2, 0.1])
    c, a = np.nonzero(present)
    candidates = pd.DataFrame({
        "customer_id": [f"c{i}" for i in c], "rep_id": reps[c],
        "action_id": [cat.ids[j] for j in a], "p_churn": 0.3, "uplift": -0.1, "value_at_risk": 500.0,
        "cost": cat.column("cost")[a], "handling_minutes": cat.column("handling_minutes")[a],
        "expected_value": ev[c, a], "eligible": rng.random(len(c)) < 0.8,
    })
    in_contacts = np.flatnonzero(rng.random(n) < 0.8)
    days = lambda m: np.where(rng.random(m) < 0.4, np.nan, rng.integers(0, 120, m))  # noqa: E731
    contacts = pd.DataFrame({
        "customer_id": [f"c{i}" for i in in_contacts],
        "days_since_last_action": days(len(in_contacts)),
        "days_since_last_invitation": days(len(in_contacts)),
        "contacts_7d": rng.integers(0, 3, len(in_contacts)),
    })
    p = PrescribeParams(
        min_days_since_contact=draw(st.sampled_from([0, 14, 30])),
        min_days_since_survey=draw(st.sampled_from([0, 7])),
        max_contacts_per_week=draw(st.integers(1, 3)),
        rep_minutes_per_day=draw(st.sampled_from([5.0, 20.0, 60.0, 1e6])),
        working_days_per_cycle=draw(st.integers(1, 5)),
        min_expected_value=draw(st.sampled_from([-10.0, 0.0, 5.0])),
        budget=draw(st.one_of(st.none(), st.sampled_from([0.0, 20.0, 100.0]))),
    )
    budget = draw(st.one_of(st.none(), st.sampled_from([0.0, 30.0, 200.0])))
    return cat, candidates.iloc[rng.permutation(len(candidates))], contacts, p, budget


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_plan_ever_breaks_policy_capacity_limits_or_budget(world):
    cat, candidates, contacts, p, budget = world
    plan = arbitrate(candidates, contacts, cat, p, budget=budget)
    check_plan(plan, candidates, contacts, cat, p, budget)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_the_plan_is_maximal_every_skipped_customer_was_truly_blocked(world):
    """A customer skipped at allocation has no plannable action that would still fit."""
    cat, candidates, contacts, p, budget = world
    plan = arbitrate(candidates, contacts, cat, p, budget=budget)
    total = budget if budget is not None else p.budget
    spent = plan.actions["cost"].sum()
    used = plan.actions.groupby(plan.actions["rep_id"].fillna("<none>"))["handling_minutes"].sum()
    counts = plan.actions["action_id"].value_counts()
    cap = p.rep_minutes_per_day * p.working_days_per_cycle
    limit_skips = plan.skipped[plan.skipped["reason"].isin(["action_limit", "rep_capacity", "budget"])]
    for cid in limit_skips["customer_id"]:
        rows = candidates[(candidates.customer_id == cid) & candidates.eligible
                          & (candidates.expected_value > max(p.min_expected_value, 0))]
        for _, r in rows.iterrows():
            a = str(r.action_id)
            rep = "<none>" if r.rep_id is None else r.rep_id
            room = (0.0 if rep == "<none>" else cap) - used.get(rep, 0.0)
            limit = cat[a].limits.max_per_cycle
            fits = (r.handling_minutes <= room + EPS and (limit is None or counts.get(a, 0) < limit)
                    and (total is None or r.cost <= total - spent + EPS))
            hist = contacts.set_index("customer_id").reindex([cid]).iloc[0]
            gap = cat[a].limits.min_days_between or 0
            waiting = not np.isnan(hist.days_since_last_action) and hist.days_since_last_action < gap
            assert not fits or waiting, (cid, a)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_with_slack_limits_each_customer_gets_their_best_positive_action(n, seed):
    rng = np.random.default_rng(seed)
    cat = make_catalogue([{"cost": 10.0}, {"cost": 30.0}, {"cost": 5.0}])
    ev = np.round(rng.normal(5, 30, (n, 3)), 2)
    plan = arbitrate(make_candidates(cat, {f"c{i}": list(ev[i]) for i in range(n)}), None, cat, params())
    best = {f"c{i}": cat.ids[int(np.argmax(ev[i]))] for i in range(n) if ev[i].max() > 0}
    assert dict(zip(plan.actions["customer_id"], plan.actions["action_id"], strict=True)) == best
    assert (plan.actions["expected_value"] > 0).all()
    reasons = plan.skipped.set_index("customer_id")["reason"]
    assert set(reasons) <= {"no_positive_value"}
    assert plan.summary["expected_value"] == pytest.approx(plan.summary["value_bound"])


# --------------------------------------------------------------------------- hand-made cases

def test_a_binding_budget_buys_more_value_than_highest_value_first():
    cat = make_catalogue([{"cost": 45.0}, {"cost": 15.0}])
    ev = {"big": [100.0, None], "s1": [None, 40.0], "s2": [None, 40.0], "s3": [None, 40.0]}
    plan = arbitrate(make_candidates(cat, ev), None, cat, params(), budget=45.0)
    assert sorted(plan.actions["customer_id"]) == ["s1", "s2", "s3"]     # 120 beats 100
    assert plan.skipped.set_index("customer_id").loc["big", "reason"] == "budget"


def test_a_budget_does_not_push_a_customer_to_a_cheap_weak_action():
    cat = make_catalogue([{"cost": 45.0}, {"cost": 5.0}])
    plan = arbitrate(make_candidates(cat, {"x": [100.0, 20.0]}), None, cat, params(), budget=45.0)
    assert plan.actions["action_id"].tolist() == ["a0"]    # EV per cost would take a1 (worth 20)


def test_an_action_at_its_limit_goes_where_it_gains_most_and_the_other_customer_falls_back():
    cat = make_catalogue([{"cap": 1}, {}])
    plan = arbitrate(make_candidates(cat, {"x": [90.0, 50.0], "y": [80.0, 10.0]}), None, cat, params())
    got = dict(zip(plan.actions["customer_id"], plan.actions["action_id"], strict=True))
    assert got == {"x": "a1", "y": "a0"}                  # 50 + 80 beats 90 + 10 (highest EV first)
    assert plan.summary["expected_value"] == pytest.approx(130.0)
    assert set(plan.summary["action_prices"]) == {"a0"}     # the capped action carries a price


def test_rep_capacity_is_shared_by_the_reps_customers_only():
    cat = make_catalogue([{"minutes": 30.0}, {"minutes": 5.0}])
    ev = {"x": [90.0, None], "y": [80.0, None], "z": [70.0, 1.0], "w": [60.0, None]}
    reps = {"x": "r1", "y": "r1", "z": "r1", "w": "r2"}
    p = params(rep_minutes_per_day=13.0, working_days_per_cycle=5)        # 65 minutes per rep
    plan = arbitrate(make_candidates(cat, ev, reps), None, cat, p)
    got = dict(zip(plan.actions["customer_id"], plan.actions["action_id"], strict=True))
    assert got == {"x": "a0", "y": "a0", "z": "a1", "w": "a0"}
    lists = rep_lists(plan)
    r1 = lists[lists.rep_id == "r1"]
    assert r1["customer_id"].tolist() == ["x", "y", "z"] and r1["rank"].tolist() == [1, 2, 3]
    assert r1["minutes_before"].tolist() == [0.0, 30.0, 60.0]
    assert r1["day"].tolist() == [1, 3, 5]


def test_each_policy_rule_gives_its_own_reason():
    cat = make_catalogue([{"gap": 60}, {}])
    ev = {"ok": [50.0, 10.0], "inel": [50.0, 10.0], "neg": [-5.0, 0.0], "acted": [50.0, 10.0],
          "gap": [50.0, None], "survey": [50.0, 10.0], "weekly": [50.0, 10.0], "absent": [50.0, 10.0]}
    eligible = {("inel", "a0"): False, ("inel", "a1"): False}
    contacts = pd.DataFrame({
        "customer_id": ["ok", "inel", "neg", "acted", "gap", "survey", "weekly"],
        "days_since_last_action": [np.nan, np.nan, np.nan, 3.0, 40.0, 100.0, np.nan],
        "days_since_last_invitation": [np.nan, np.nan, np.nan, np.nan, np.nan, 2.0, 30.0],
        "contacts_7d": [0, 0, 0, 0, 0, 0, 1],
    })
    plan = arbitrate(make_candidates(cat, ev, eligible=eligible), contacts, cat, params())
    reasons = plan.skipped.set_index("customer_id")["reason"].astype(str).to_dict()
    assert reasons == {"inel": "not_eligible", "neg": "no_positive_value",
                       "acted": "contact_policy_recent_action", "gap": "contact_policy_recent_action",
                       "survey": "contact_policy_recent_survey", "weekly": "weekly_cap"}
    assert sorted(plan.actions["customer_id"]) == ["absent", "ok"]   # absent from contacts: never contacted
    assert plan.skipped.set_index("customer_id").loc["neg", "action_id"] == "a1"


def test_a_customer_without_a_rep_gets_only_actions_without_rep_time():
    cat = make_catalogue([{"minutes": 20.0}, {"minutes": 0.0}])
    plan = arbitrate(make_candidates(cat, {"x": [90.0, 10.0]}, {"x": None}), None, cat, params())
    assert plan.actions["action_id"].tolist() == ["a1"]


def test_bad_candidates_are_refused_with_the_column_named():
    cat = make_catalogue([{}, {}])
    cand = make_candidates(cat, {"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="appears twice"):
        arbitrate(pd.concat([cand, cand.iloc[:1]]), None, cat, params())
    with pytest.raises(ValueError, match="action 'zz' is not in the catalogue"):
        arbitrate(cand.assign(action_id=["a0", "zz"]), None, cat, params())
    with pytest.raises(ValueError, match="missing column 'eligible'"):
        arbitrate(cand.drop(columns="eligible"), None, cat, params())
    with pytest.raises(ValueError, match="more than one rep_id"):
        arbitrate(cand.assign(rep_id=["r1", "r2"]), None, cat, params())
    bad = pd.concat([cand.assign(customer_id="y", action_id=["a0", "zz"]), cand])
    with pytest.raises(ValueError, match="action 'zz' is not in the catalogue"):    # in the rows
        arbitrate(bad, None, cat, params(), rows=np.arange(2))
    other = arbitrate(bad, None, cat, params(), rows=np.arange(2, 4))      # not in them: planned
    assert set(other.actions["customer_id"]) | set(other.skipped["customer_id"]) == set(cand["customer_id"])


def test_end_to_end_with_the_shipped_catalogue():
    cat = load_catalogue("configs/actions.yaml")
    rng = np.random.default_rng(3)
    n = 400
    customers = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "rep_id": rng.choice(["r1", "r2"], n),
        "p_churn": rng.uniform(0, 0.4, n), "value_at_risk": rng.uniform(200, 3000, n),
        "plan": rng.choice(["basic", "standard", "premium"], n),
        **{f: rng.poisson(0.6, n) for f in ("tickets_90d", "complaints_90d", "failed_orders_90d",
                                            "technical_tickets_90d", "outage_tickets_90d")},
        "discount_90d": rng.choice([0.0, 20.0], n), "usage_30d_trend": rng.normal(0, 0.3, n),
    })
    effects = pd.DataFrame(rng.normal(-0.02, 0.04, (n, len(cat))), columns=cat.ids)
    candidates = candidate_actions(customers, effects, cat)
    contacts = pd.DataFrame({"customer_id": customers.customer_id,
                             "days_since_last_action": np.where(rng.random(n) < 0.5, np.nan, 20.0),
                             "days_since_last_invitation": np.nan, "contacts_7d": 0})
    p = params(rep_minutes_per_day=60.0)
    plan = arbitrate(candidates, contacts, cat, p, budget=1500.0)
    check_plan(plan, candidates, contacts, cat, p, budget=1500.0)
    assert 0 < len(plan.actions) < n
    assert plan.summary["skipped"]["budget"] + plan.summary["skipped"]["rep_capacity"] > 0
    assert set(plan.actions["channel"]) <= {"call", "email", "sms", "app", "letter"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_the_pair_by_pair_pass_gives_the_same_plan_whatever_its_chunk_size(world):
    """Chunks and the early stop are an optimisation: chunk 1 (a check after every pair)
    and one chunk for everything must agree on every customer's action and reason."""
    cat, candidates, contacts, p, budget = world
    plans = []
    for chunk in (1, 3, 10**9):
        old, arb.CHUNK = arb.CHUNK, chunk
        try:
            plans.append(arbitrate(candidates, contacts, cat, p, budget=budget))
        finally:
            arb.CHUNK = old
    for other in plans[1:]:
        pd.testing.assert_frame_equal(plans[0].actions, other.actions)
        pd.testing.assert_frame_equal(plans[0].skipped, other.skipped)


def test_no_candidates_give_an_empty_plan_with_the_usual_columns():
    cat = make_catalogue([{}])
    empty = make_candidates(cat, {}).reindex(columns=["customer_id", "rep_id", "action_id", "p_churn",
                                                       "uplift", "value_at_risk", "cost",
                                                       "handling_minutes", "expected_value", "eligible"])
    plan = arbitrate(empty, None, cat, params())
    assert plan.actions.empty and plan.skipped.empty and plan.summary["customers"] == 0
    assert rep_lists(plan).empty and "day" in rep_lists(plan).columns


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_planning_rows_in_place_gives_the_plan_of_their_copy(world):
    """``rows`` plans a slice of the book (the policy customers) without copying it: the
    plan, its skip reasons and its summary are those of the copied slice, and rows of
    customers outside the slice never appear."""
    cat, candidates, contacts, p, budget = world
    ids = candidates["customer_id"].to_numpy()
    kept = np.isin(ids, np.unique(ids)[::2])                  # every other customer, whole
    rows = np.flatnonzero(kept)
    in_place = arbitrate(candidates, contacts, cat, p, budget=budget, rows=rows)
    copied = arbitrate(candidates.iloc[rows], contacts, cat, p, budget=budget)
    pd.testing.assert_frame_equal(in_place.actions, copied.actions)
    pd.testing.assert_frame_equal(in_place.skipped, copied.skipped)
    assert in_place.summary == copied.summary
    assert set(in_place.actions["customer_id"]) | set(in_place.skipped["customer_id"]) \
        == set(ids[kept])
