"""Plan rows carry their arm: the comparison slices are planned by their own rules (no_action:
nothing), every row has its design probability, reps see experiments and comparison actions
labelled and never a hold-out of any arm, and an older database gets the new columns."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from configs.settings import PROJECT_ROOT, PrescribeParams
from features.sources.world.plan import plan_rows as world_plan_rows
from features.sources.world.step import _logged, advance_world
from features.sources.world.tables import LOG_STRATA, PRODUCT_STRATUM
from models.prescribe.actions import load_catalogue
from models.prescribe.arms import ARM_LABELS, ARMS, arm_why, plan_arms
from models.prescribe.slices import impact_slices
from models.uplift.driver import DriverArm
from pipelines.cycle import PLAN_COLUMNS
from serving.db.schema import action_plan, engine_for, make_engine
from serving.db.write import export_outcomes, write_scoring_run
from tests.conftest import make_world
from tests.serving.conftest import DAY1, DAY2, auth
from tests.serving.factory import make_run

CATALOGUE = load_catalogue(PROJECT_ROOT / "configs" / "actions.yaml")
AS_OF = date(2025, 3, 3)


def _arm(tau0: float) -> DriverArm:
    return DriverArm(drivers=["f"], index=np.array([0]), center=np.array([0.0]), scale=np.array([1.0]),
                     mean=np.array([0.0, 0.0, tau0, -0.2]), cov=np.diag([1e-6, 1e-6, 0.16, 0.09]),
                     prior_sd=0.1, rows=500, treated=250)


def book(n: int = 3000, reps: int = 8, seed: int = 0):
    """Every customer x catalogue action; a few customers with a positive expected value."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:06d}" for i in range(n)])
    k = len(CATALOGUE)
    p = rng.uniform(0.05, 0.5, n)
    value = rng.uniform(200, 1500, n)
    uplift = np.where(rng.random((n, k)) < 0.05, -0.2, 0.0)
    cost, minutes = CATALOGUE.column("cost"), CATALOGUE.column("handling_minutes")
    candidates = pd.DataFrame({
        "customer_id": np.repeat(ids, k), "rep_id": np.repeat([f"R{i % reps:03d}" for i in range(n)], k),
        "action_id": np.tile(CATALOGUE.ids, n), "p_churn": np.repeat(p, k), "uplift": uplift.ravel(),
        "value_at_risk": np.repeat(value, k), "cost": np.tile(cost, n),
        "handling_minutes": np.tile(minutes, n),
        "expected_value": (-uplift * value[:, None] - cost).ravel(),
        "eligible": rng.random(n * k) < 0.7})
    features = pd.DataFrame({"customer_id": ids, "f": rng.normal(size=n)})
    contacts = pd.DataFrame({"customer_id": ids, "days_since_last_action": np.nan,
                             "days_since_last_invitation": np.nan, "contacts_7d": 0.0})
    uplift_model = SimpleNamespace(
        arms={a: SimpleNamespace(driver=_arm(-0.5)) for a in CATALOGUE.ids},
        spec=SimpleNamespace(array=lambda frame: frame[["f"]].to_numpy(np.float64)),
        risk=SimpleNamespace(logit_x=lambda x: np.full(len(x), -1.0)))
    return candidates, contacts, features, uplift_model


@pytest.fixture(scope="module")
def planned():
    candidates, contacts, features, uplift = book()
    params = PrescribeParams(impact_slice_share=0.1)
    arms = plan_arms(candidates, contacts, CATALOGUE, params, uplift, features, AS_OF)
    return SimpleNamespace(arms=arms, candidates=candidates, params=params)


def test_each_slice_is_planned_by_its_own_rule_and_no_action_never(planned):
    rows, params = planned.arms.actions, planned.params
    ids = planned.candidates["customer_id"].unique()
    slice_of = pd.Series(impact_slices(ids, params.impact_slice_share), index=ids)
    got = slice_of.loc[rows["customer_id"]].to_numpy()
    assert not (got == "no_action").any()
    expected = {"policy": "policy", "experiment": "policy", "risk_ranked": "risk_ranked", "random": "random"}
    for arm in ARMS:
        mine = rows["arm"].to_numpy() == arm
        assert mine.any(), arm                                  # every arm plans on this book
        assert (got[mine] == expected[arm]).all()
    assert rows["customer_id"].is_unique
    assert planned.arms.summary["arms"]["experiment"]["planned"] == int((rows["arm"] == "experiment").sum())


def test_every_row_has_its_design_probability_and_slices_keep_a_holdout(planned):
    rows, hs = planned.arms.actions, planned.params.holdout_share
    assert rows["assignment_probability"].between(0, 1, inclusive="right").all()
    fixed = rows[rows["arm"] != "experiment"]
    assert np.allclose(fixed["assignment_probability"], np.where(fixed["control_group"], hs, 1 - hs))
    for arm in ("risk_ranked", "random", "experiment"):
        assert rows.loc[rows["arm"] == arm, "control_group"].any(), arm


def test_comparison_slices_get_the_policy_slices_spend_per_customer(planned):
    rows, summary = planned.arms.actions, planned.arms.summary
    hs = planned.params.holdout_share
    policy = rows[rows["arm"].isin(["policy", "experiment"]) & ~rows["control_group"]]
    per_customer = policy["cost"].sum() / (1 - hs) / summary["slices"]["policy"]
    for arm in ("risk_ranked", "random"):
        spent = rows.loc[rows["arm"] == arm, "cost"].sum()
        assert 0 < spent <= per_customer * summary["slices"][arm] + 1e-6
        assert rows.loc[rows["arm"] == arm, "expected_value"].isna().all()    # no value claimed


def test_experiments_stay_within_the_policy_slices_time_and_share(planned):
    rows, params = planned.arms.actions, planned.params
    frac = planned.arms.summary["slices"]["policy"] / 3000
    cap = params.rep_minutes_per_day * params.working_days_per_cycle * frac
    treated = rows[rows["arm"].isin(["policy", "experiment"]) & ~rows["control_group"]]
    assert (treated.groupby("rep_id")["handling_minutes"].sum() <= cap + 1e-6).all()
    exp = rows[(rows["arm"] == "experiment") & ~rows["control_group"]]
    assert (exp.groupby("rep_id")["handling_minutes"].sum() <= params.experiment_share * cap + 1e-6).all()
    ranks = rows.groupby("rep_id")["rank"].apply(lambda r: sorted(r) == list(range(1, len(r) + 1)))
    assert ranks.all()


def test_the_why_of_an_experiment_is_honest(planned):
    rows = planned.arms.actions
    why = arm_why(rows, ["model's why"] * len(rows))
    for text, arm in zip(why, rows["arm"], strict=True):
        if arm == "experiment":
            assert text.startswith(ARM_LABELS["experiment"]) and "80 % interval" in text
            assert "expected value" not in text
        elif arm == "policy":
            assert text == "model's why"
        else:
            assert text.startswith(ARM_LABELS[arm]) and "No effect estimate" in text


# ------------------------------------------------------------------ serving database and pages


def armed_run(as_of: date, seed: int):
    """A hand-made run whose plan has every arm, each with shown and held-out rows."""
    run = make_run(as_of, customers=60, reps=3, seed=seed)
    actions = run.actions.reset_index(drop=True)
    actions["arm"] = np.asarray(ARMS, dtype=object)[np.arange(len(actions)) % len(ARMS)]
    actions["control_group"] = (np.arange(len(actions)) // len(ARMS)) % 3 == 2
    actions["assignment_probability"] = np.where(actions["control_group"], 0.1, 0.9)
    other = actions["arm"] != "policy"
    actions.loc[other, "expected_value"] = np.nan
    actions.loc[other, "why"] = [f"{ARM_LABELS[a]}: test" for a in actions.loc[other, "arm"]]
    run.actions = actions
    return run


@pytest.fixture
def runs(settings):
    engine = engine_for(settings)
    write_scoring_run(engine, armed_run(DAY1, 1))
    latest = armed_run(DAY2, 2)
    write_scoring_run(engine, latest)
    return SimpleNamespace(engine=engine, latest=latest)


def _sign_in(client, token: str):
    return client.post("/login", content=f"token={token}", follow_redirects=False,
                       headers={"content-type": "application/x-www-form-urlencoded"})


def test_hold_outs_of_every_arm_never_reach_a_reps_list_or_page(client, runs, tokens):
    plan = runs.latest.actions
    assert set(plan.loc[plan["control_group"], "arm"]) == set(ARMS)
    for rep, mine in plan.groupby("rep_id"):
        held = set(mine.loc[mine["control_group"], "customer_id"])
        assert held
        body = client.get(f"/v1/reps/{rep}/actions?size=100", headers=auth(tokens[rep])).json()
        listed = {i["customer_id"]: i for i in body["items"]}
        for cid in held & set(listed):
            assert listed[cid]["action"] is None           # only an alert may list a held-out customer
        assert {i["customer_id"] for i in body["items"] if i["action"]} == \
            set(mine.loc[~mine["control_group"], "customer_id"])
        for cid in held:
            view = client.get(f"/v1/customers/{cid}", headers=auth(tokens[rep])).json()
            assert view["recommended_action"] is None


def test_a_rep_sees_experiments_and_comparison_actions_labelled(client, runs, tokens):
    plan = runs.latest.actions
    shown = plan[~plan["control_group"]]
    for arm in ("experiment", "risk_ranked", "random"):
        row = shown[shown["arm"] == arm].iloc[0]
        _sign_in(client, tokens[row["rep_id"]])
        html = client.get(f"/reps/{row['rep_id']}?page=1").text
        assert html.count(f'<span class="tier arm">{ARM_LABELS[arm]}</span>') == \
            int((shown["rep_id"].eq(row["rep_id"]) & shown["arm"].eq(arm)).sum()), arm
        page = client.get(f"/customers/{row['customer_id']}").text
        assert f'<span class="tier arm">{ARM_LABELS[arm]}</span>' in page
    policy = shown[shown["arm"] == "policy"].iloc[0]
    _sign_in(client, tokens[policy["rep_id"]])
    assert 'class="tier arm"' not in client.get(f"/customers/{policy['customer_id']}").text


def test_the_customer_page_knows_every_arm_label():
    text = (PROJECT_ROOT / "serving" / "templates" / "customer.html").read_text()
    assert all(f'"{label}"' in text for label in ARM_LABELS.values())


def test_an_older_database_gets_the_arm_columns_and_reads_as_policy(settings):
    engine = engine_for(settings)
    old = make_run(DAY1, customers=30, reps=2, seed=4)
    with engine.begin() as conn:                    # the table as an earlier release made it
        conn.exec_driver_sql('ALTER TABLE action_plan DROP COLUMN "arm"')
        conn.exec_driver_sql('ALTER TABLE action_plan DROP COLUMN "assignment_probability"')
    engine.dispose()
    engine = make_engine(settings.serving_database_url)   # reopening upgrades it
    write_scoring_run(engine, old)
    with engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(select(*(action_plan.c[n] for n in PLAN_COLUMNS))).all(),
                            columns=list(PLAN_COLUMNS))
    assert len(rows) and rows["arm"].isna().all() and rows["assignment_probability"].isna().all()
    world = world_plan_rows(rows, customers=100)
    assert (world["arm"] == "policy").all()
    stratum, prob = _logged(world, holdout_share=0.1)
    assert (LOG_STRATA[stratum] == "product_policy").all() and stratum.min() == PRODUCT_STRATUM
    assert np.allclose(prob, np.where(world["control"], 0.1, 0.9))
    exported = export_outcomes(engine)
    assert (exported["stratum"] == "product_policy").all()


def test_the_world_logs_each_rows_arm_and_probability():
    plan = pd.DataFrame({"customer_id": ["C00000001", "C00000002", "C00000003"],
                         "action_id": ["apology_credit"] * 3, "control_group": [False, True, False],
                         "rank": [3, 1, 2], "arm": ["experiment", "random", None],
                         "assignment_probability": [0.05, 0.1, np.nan]})
    rows = world_plan_rows(plan, customers=10)       # in rank order: C2, C3, C1
    stratum, prob = _logged(rows, holdout_share=0.1)
    assert list(rows["customer_id"]) == ["C00000002", "C00000003", "C00000001"]
    assert list(LOG_STRATA[stratum]) == ["product_random", "product_policy", "product_experiment"]
    assert np.allclose(prob, [0.1, 0.9, 0.05])


def test_with_a_cycle_budget_experiments_get_their_share_of_it():
    candidates, contacts, features, uplift = book(n=2000, seed=1)
    params = PrescribeParams(impact_slice_share=0.05, budget=3000.0)
    arms = plan_arms(candidates, contacts, CATALOGUE, params, uplift, features, AS_OF)
    rows, summary = arms.actions, arms.summary
    frac = summary["slices"]["policy"] / 2000
    assert summary["experiment_budget"] == {"unit": "cost",
                                            "amount": pytest.approx(0.2 * 3000 * frac, abs=0.01)}
    exp = rows[(rows["arm"] == "experiment") & ~rows["control_group"]]
    assert 0 < exp["cost"].sum() <= 0.2 * 3000 * frac + 1e-6
    assert rows.loc[rows["arm"] == "policy", "cost"].sum() <= 0.8 * 3000 * frac + 1e-6


def test_a_stepped_world_logs_each_planned_rows_arm_stratum_and_probability(tmp_path):
    world = make_world(tmp_path / "w", customers=600, months=6, seed=3)
    crm = pd.read_parquet(world / "raw" / "crm_customers.parquet")
    open_ = crm[crm["status"].eq("active") & crm["notice_date"].isna()].head(120)
    n = len(open_)
    plan = pd.DataFrame({
        "customer_id": open_["customer_id"].to_numpy(), "action_id": "apology_credit",
        "rep_id": open_["rep_id"].to_numpy(), "rank": np.arange(n)[::-1] % 10 + 1,  # per rep, ties
        "control_group": np.arange(n) % 4 == 0,
        "arm": np.asarray(ARMS, dtype=object)[np.arange(n) % len(ARMS)],
        "assignment_probability": np.round(0.05 + 0.9 * (np.arange(n) % 7) / 7, 3)})
    advance_world(world / "truth", world / "raw", plan, capacity=1000)
    log = pd.read_parquet(world / "raw" / "interventions.parquet")
    log = log[log["intervention_id"].str.startswith("plan-")].set_index("customer_id")
    truth = pd.read_parquet(world / "truth" / "plan_delivery.parquet").set_index("customer_id")
    want = plan.set_index("customer_id")
    assert len(log) > n // 2 and (truth.loc[want.index, "arm"] == want["arm"]).all()
    assert (log["stratum"] == "product_" + want.loc[log.index, "arm"]).all()
    assert np.allclose(log["assignment_probability"], want.loc[log.index, "assignment_probability"])


def test_spending_the_whole_experiment_budget_adds_what_the_plan_leaves():
    """``experiment_spend: whole``: when the model's plan spends nothing (its gate shut), the
    experiments get the policy slice's whole budget, spread by P(best cell), not just their
    share of it cut down to the draws where a cell pays."""
    candidates, contacts, features, uplift = book(n=2000, seed=1)
    shut = candidates.assign(uplift=0.0, expected_value=-candidates["cost"])   # nothing pays
    params = PrescribeParams(impact_slice_share=0.05, budget=3000.0)
    plans = {spend: plan_arms(shut, contacts, CATALOGUE,
                              params.model_copy(update={"experiment_spend": spend}),
                              uplift, features, AS_OF) for spend in ("thompson", "whole")}
    frac = plans["whole"].summary["slices"]["policy"] / 2000
    assert plans["thompson"].summary["experiment_budget"]["amount"] == pytest.approx(0.2 * 3000 * frac)
    assert plans["whole"].summary["experiment_budget"]["amount"] == pytest.approx(3000 * frac)

    def spent(arm_plan):
        rows = arm_plan.actions
        assert not (rows["arm"] == "policy").any()
        return rows.loc[(rows["arm"] == "experiment") & ~rows["control_group"], "cost"].sum()

    cells = pd.DataFrame(plans["whole"].summary["cells"])
    assert cells["share"].sum() == pytest.approx(1.0)
    assert spent(plans["thompson"]) < 0.2 * 3000 * frac + 1e-6
    assert 0.9 * 3000 * frac <= spent(plans["whole"]) <= 3000 * frac + 1e-6   # 98 % here
