"""Uplift models: labels and pooled controls, learners on a known effect, the model API,
point in time, and one end-to-end run on a small world with a large retention programme."""

from __future__ import annotations

import time
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest

from configs.settings import SimulateParams, load_settings
from features.ingest import run_ingest
from features.sources.world import simulate_world
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from models.frame import FrameSpec
from models.uplift.data import (
    CHURN,
    DECISION,
    LABEL,
    TREATED,
    arm_rows,
    eligibility,
    intervention_labels,
    outcome_of,
)
from models.uplift.metrics import qini_area
from models.uplift.model import LEARNERS, UpliftParams, fit_uplift
from models.uplift.selection import select_learner

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2025-01-10 12:00", tz="UTC")
SMALL = UpliftParams(n_estimators=80, risk_n_estimators=40, cv_folds=2, bootstrap=60)


# ---------------------------------------------------------------- labels and pooling

def _log(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["intervention_id", "customer_id", "action", "assigned_at",
                                       "control_group"])


def test_labels_window_censoring_and_controls():
    iv = _log([("I1", "A", "discount_offer", T0, False),            # churns on day 89: inside
               ("I2", "B", "discount_offer", T0, True),             # churns on day 90: outside
               ("I3", "C", "plan_upgrade", T0, False),              # never churns
               ("I4", "D", "apology_credit", T0 + 20 * DAY, False),  # horizon not observed
               ("I5", "E", "apology_credit", T0, False)])           # left before the action
    crm = pd.DataFrame({"customer_id": list("ABCDE"),
                        "churn_date": [T0.normalize() + 89 * DAY, T0.normalize() + 90 * DAY, pd.NaT,
                                       pd.NaT, T0.normalize() - 3 * DAY]})
    as_of = T0 + 100 * DAY
    out = intervention_labels(iv, crm, as_of, horizon_days=90).set_index("intervention_id")
    assert list(out.index) == ["I1", "I2", "I3"]
    assert out[LABEL].to_dict() == {"I1": 1, "I2": 0, "I3": 0}
    assert out[TREATED].to_dict() == {"I1": 1, "I2": 0, "I3": 1}
    assert (out["event_timestamp"] == T0).all()


def test_decision_labels_count_notices_and_mature_when_the_months_are_over():
    """With notice dates the label is a decision within the decision window: a notice inside
    counts although the account closes after it, and a row is labelled as soon as the window
    (not the closing) is over; a customer who decided before the action is dropped."""
    iv = _log([("I1", "A", "discount_offer", T0, False),    # notice day 80, closes day 122
               ("I2", "B", "discount_offer", T0, True),     # notice day 95: outside 90 days
               ("I3", "C", "apology_credit", T0, False),    # gave notice before the action
               ("I4", "D", "apology_credit", T0, False)])   # stays
    day = T0.normalize()
    crm = pd.DataFrame({"customer_id": list("ABCD"),
                        "notice_date": [day + 80 * DAY, day + 95 * DAY, day - 2 * DAY, pd.NaT],
                        "churn_date": [day + 122 * DAY, day + 137 * DAY, day + 40 * DAY, pd.NaT]})
    params = UpliftParams(horizon_days=150, decision_horizon_days=90)
    outcome = outcome_of(crm, params)
    assert (outcome.kind, outcome.horizon_days) == (DECISION, 90)
    out = intervention_labels(iv, crm, day + 90 * DAY, outcome.horizon_days, outcome)
    assert out.set_index("intervention_id")[LABEL].to_dict() == {"I1": 1, "I2": 0, "I4": 0}
    # the same log on churn dates: nothing is complete 90 days on, and A's closing is in 150 days
    churn = outcome_of(crm.drop(columns="notice_date"), params)
    assert (churn.kind, churn.horizon_days) == (CHURN, 150)
    assert intervention_labels(iv, crm, day + 90 * DAY, 150, churn).empty
    late = intervention_labels(iv, crm, day + 150 * DAY, 150, churn).set_index("intervention_id")
    # churn dates cannot tell that C had already decided: labelled a churner
    assert late[LABEL].to_dict() == {"I1": 1, "I2": 1, "I3": 1, "I4": 0}


def test_decisions_need_notice_dates_for_most_leavers():
    crm = pd.DataFrame({"customer_id": list("ABCD"),
                        "notice_date": [T0, pd.NaT, pd.NaT, pd.NaT],
                        "churn_date": [T0 + DAY, T0 + DAY, T0 + DAY, pd.NaT]})
    outcome = outcome_of(crm, UpliftParams())
    assert outcome.kind == CHURN and "33%" in outcome.reason


def test_labels_name_the_missing_column():
    with pytest.raises(ValueError, match="interventions lacks required columns .*control_group"):
        intervention_labels(_log([]).drop(columns="control_group"),
                            pd.DataFrame({"customer_id": [], "churn_date": []}), T0, 90)


def test_arm_pools_every_eligible_control():
    frame = pd.DataFrame({
        "action": ["plan_upgrade", "discount_offer", "plan_upgrade", "discount_offer", "apology_credit"],
        TREATED: [1, 1, 0, 0, 0],
        "plan": ["basic", "premium", "standard", "premium", "basic"]})
    upgrade = arm_rows(frame, "plan_upgrade")
    discount = arm_rows(frame, "discount_offer")
    # upgrade: its treated row and the controls drawn for anything, except the premium one
    assert list(upgrade.index) == [0, 2, 4]
    assert list(discount.index) == [1, 2, 3, 4]
    elig = eligibility(frame, ["plan_upgrade", "discount_offer"])
    assert elig["plan_upgrade"].tolist() == [True, False, True, False, True]
    assert elig["discount_offer"].all()


# ---------------------------------------------------------------- a known effect

def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, FrameSpec]:
    """Two actions with opposite heterogeneity on x1, x2; noise features; 50 % controls."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"x1": rng.random(n), "x2": rng.random(n), "noise": rng.normal(size=n),
                      "plan": rng.choice(["basic", "standard", "premium"], n)})
    action = rng.choice(["discount_offer", "service_recovery_call"], n)
    treated = (rng.random(n) < 0.5).astype(int)
    base = 0.25 + 0.1 * x["x2"]
    true = pd.DataFrame({"discount_offer": np.where(x["x1"] > 0.5, -0.2, 0.02),
                         "service_recovery_call": 0.08 - 0.35 * x["x2"]}, index=x.index)
    effect = true.to_numpy()[np.arange(n), (action == "service_recovery_call").astype(int)]
    y = (rng.random(n) < base + treated * effect).astype(int)
    frame = x.assign(customer_id=[f"C{i}" for i in range(n)], action=action, **{TREATED: treated, LABEL: y})
    spec = FrameSpec(["x1", "x2", "noise", "plan"], {"plan": ["basic", "premium", "standard"]})
    return frame, true, spec


@pytest.fixture(scope="module")
def known():
    train, _, spec = synthetic(12000, 0)
    test, true, _ = synthetic(6000, 1)
    return SimpleNamespace(train=train, test=test, true=true, spec=spec)


@pytest.mark.parametrize("learner", ["t", "x", "dr"])
def test_learners_rank_a_known_heterogeneous_effect(known, learner):
    model = fit_uplift(known.train, known.spec.features, learner, SMALL, spec=known.spec)
    eff = model.effects(known.test)
    for action in model.actions:
        rho = eff[action].corr(known.true[action], method="spearman")
        assert rho > 0.6, (action, rho)
        arm = arm_rows(known.test, action)
        y, t = 1 - arm[LABEL].to_numpy(), arm[TREATED].to_numpy()
        q = qini_area(y, t, -eff.loc[arm.index, action])
        oracle = qini_area(y, t, -known.true.loc[arm.index, action])
        rng = np.random.default_rng(0)
        chance = np.array([qini_area(y, t, rng.random(len(y))) for _ in range(30)])
        assert q > chance.mean() + 4 * chance.std(), (action, q, chance.std())
        assert q > 0.6 * oracle, (action, q, oracle)


def test_the_flat_shift_learner_cannot_rank_and_selection_prefers_a_real_learner(known):
    chosen, table = select_learner(known.train, known.spec.features, SMALL, folds=2, spec=known.spec)
    assert chosen in ("t", "x", "dr")
    assert table.loc[chosen, "mean"] > table.loc["shift", "mean"]
    assert table.loc[chosen, "mean_lo90"] > 0
    shift = fit_uplift(known.train, known.spec.features, "shift", SMALL, spec=known.spec)
    assert shift.effects(known.test).nunique().max() == 1      # no prior: one effect per action


def test_without_a_detectable_ranking_the_choice_falls_back_to_average_effects():
    """Labels independent of treatment: whatever a heterogeneous learner ranks is noise.

    The guard is a 90 % interval, so on a null sample it is fooled now and then (a chance
    pattern shared by the folds); over three null samples it must hold at least twice.
    """
    fallbacks = 0
    for seed in (2, 3, 4):
        frame, _, spec = synthetic(2500, seed)
        frame[LABEL] = (np.random.default_rng(seed + 100).random(len(frame)) < 0.2).astype(int)
        chosen, table = select_learner(frame, spec.features, SMALL, learners=("shift", "t", "x"),
                                       folds=2, spec=spec)
        fallbacks += chosen == "shift"
        assert (table["mean_lo90"] <= table["mean"]).all() and (table["mean"] <= table["mean_hi90"]).all()
        assert table.loc["shift", "mean"] == 0       # one constant per action and fold: no ranking
    assert fallbacks >= 2


def test_effects_api_index_eligibility_pickle_and_speed(known, tmp_path):
    model = fit_uplift(known.train, known.spec.features, "x", SMALL, spec=known.spec)
    frame = known.test.set_index(pd.Index(np.arange(len(known.test)) * 7 + 3))
    eff = model.effects(frame)
    assert list(eff.columns) == model.actions and eff.index.equals(frame.index)
    one = model.effects(frame.iloc[[5]])
    np.testing.assert_allclose(one.to_numpy(), eff.iloc[[5]].to_numpy())
    path = tmp_path / "m.joblib"
    joblib.dump(model, path)
    np.testing.assert_array_equal(joblib.load(path).effects(frame).to_numpy(), eff.to_numpy())
    big = pd.concat([known.test] * 34, ignore_index=True)          # ~200k rows
    start = time.perf_counter()
    assert model.effects(big).shape == (len(big), 2)
    assert time.perf_counter() - start < 20


def test_plan_upgrade_is_not_estimated_for_premium_customers(known):
    frame = known.train.assign(action=np.where(known.train["plan"] == "premium", "discount_offer",
                                               known.train["action"].str.replace("service_recovery_call",
                                                                                 "plan_upgrade")))
    model = fit_uplift(frame, known.spec.features, "t", SMALL, spec=known.spec)
    eff = model.effects(known.test)
    premium = (known.test["plan"] == "premium").to_numpy()
    assert eff.loc[premium, "plan_upgrade"].isna().all()
    assert eff.loc[~premium, "plan_upgrade"].notna().all() and eff["discount_offer"].notna().all()


def test_unknown_learner_is_refused(known):
    with pytest.raises(ValueError, match="unknown learner"):
        fit_uplift(known.train, known.spec.features, "s", SMALL, spec=known.spec)


# ---------------------------------------------------------------- a small simulated world

@pytest.fixture(scope="module")
def programme_world(tmp_path_factory) -> SimpleNamespace:
    """4,000 customers, 24 months, a programme 15x the default (45 % of open accounts a month,
    30 % held out): about 9,000 labelled actions, enough churners to see an effect."""
    root = tmp_path_factory.mktemp("uplift_world")
    simulate_world(SimulateParams(customers=4000, months=24, seed=21, campaign_rate=0.45,
                                  holdout_share=0.3), root / "raw", root / "truth")
    settings = load_settings(data_dir=root)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    store = feature_store(settings)
    apply_definitions(store, settings)
    return SimpleNamespace(root=root, settings=settings, store=store)


def test_features_at_assigned_at_never_see_the_action_or_later_events(programme_world, tmp_path):
    """Rebuild the feature tables with every action from a month start on removed: the frame's
    features for that month's actions must not change, and they come from a snapshot before."""
    from models.uplift.train import load_uplift_frame
    settings, store = programme_world.settings, programme_world.store
    frame, features, _ = load_uplift_frame(settings, store)
    cut = pd.Timestamp("2025-03-01", tz="UTC")
    month = frame[(frame["event_timestamp"] >= cut) & (frame["event_timestamp"] < cut + 31 * DAY)]
    assert len(month) > 200
    clean = tmp_path / "clean"
    clean.mkdir()
    for path in settings.clean_dir.glob("*.parquet"):
        table = pd.read_parquet(path)
        if path.stem == "interventions":
            table = table[pd.to_datetime(table["assigned_at"], utc=True) < cut]
        table.to_parquet(clean / path.name)
    as_of = pd.read_parquet(settings.feature_dir / "customer_o.parquet",
                            columns=["created_timestamp"])["created_timestamp"].max()
    build_feature_tables(clean, tmp_path / "features", settings.features, as_of=as_of.date())
    tables = [pd.read_parquet(tmp_path / "features" / f"{v}.parquet")
              for v in ("customer_o", "customer_x", "customer_fused")]
    rebuilt = month[["intervention_id", "customer_id", "event_timestamp"]].sort_values("event_timestamp")
    for table in tables:
        table = table.assign(snapshot=table["event_timestamp"]).sort_values("event_timestamp")
        table["event_timestamp"] = table["event_timestamp"].dt.tz_convert("UTC").astype(
            rebuilt["event_timestamp"].dtype)
        rebuilt = pd.merge_asof(rebuilt, table.drop(columns=["created_timestamp"]), on="event_timestamp",
                                by="customer_id", suffixes=("", "_dup"))
    rebuilt = rebuilt.set_index("intervention_id").loc[month["intervention_id"]]
    assert (rebuilt["snapshot"] <= rebuilt["event_timestamp"]).all()
    assert (rebuilt["snapshot"] == cut).all()
    pd.testing.assert_frame_equal(month.set_index("intervention_id")[features],
                                  rebuilt[features], check_dtype=False, check_categorical=False)
    # the removal is real: the next month's snapshot of the treated customers does see the actions
    later = tables[0][tables[0]["event_timestamp"] == cut + pd.DateOffset(months=1)]
    original = pd.read_parquet(settings.feature_dir / "customer_o.parquet")
    original = original[original["event_timestamp"] == cut + pd.DateOffset(months=1)]
    assert original["actions_90d"].sum() > later["actions_90d"].sum()


@pytest.mark.slow
def test_training_runs_end_to_end_and_agrees_with_the_true_effects(programme_world):
    from models.uplift.evaluate import evaluate_logged_actions, evaluate_open_customers
    from models.uplift.train import train_and_log_uplift
    settings = programme_world.settings
    summary = train_and_log_uplift(settings, SMALL)
    assert summary["learner"] in LEARNERS and summary["version"] == "1"
    assert summary["gate"]["decision"] == "champion"
    assert set(summary["metrics"]) == {"apology_credit", "discount_offer", "plan_upgrade",
                                       "proactive_tech_check", "service_recovery_call"}
    assert all(np.isfinite(m["qini"]) and m["qini_lo90"] <= m["qini_hi90"]
               for m in summary["metrics"].values())
    from models import registry
    model, version = registry.load_alias("uplift", settings)
    # the evidence gate: every action carries its cross-validated policy value, and exactly
    # those whose lower bound is above 0 and whose hold-out value confirms it may be planned
    assert set(model.evidence) == set(summary["metrics"])
    assert model.shown_actions() == [a for a in model.actions if model.evidence[a]["value_lo"] > 0
                                     and model.evidence[a]["holdout_value_lo"] > 0]
    assert summary["shown_actions"] == model.shown_actions()
    result = evaluate_open_customers(settings, model, programme_world.store)
    by_action = result["by_action"]
    # the effect of a discount depends on price sensitivity and recent rises, seen through
    # charges, discounts and late payments: the estimates must follow the truth
    assert by_action.loc["discount_offer", "pearson"] > 0.05, by_action
    assert by_action.loc["discount_offer", "spearman"] > 0.05, by_action
    assert 0 <= result["best_action"]["share_best_action_correct"] <= 1
    from models.uplift.train import load_uplift_frame
    frame, _, _ = load_uplift_frame(settings, programme_world.store)
    logged = evaluate_logged_actions(settings, model, frame)
    assert logged["rows"].sum() == len(frame)


def test_a_learner_the_holdout_does_not_confirm_gives_way_to_shift():
    from models.uplift.train import confirmed_by_holdout

    noise = dict(zip("abcde", ({"qini_lo90": lo} for lo in [-0.001, 0.0004, -0.002, -0.0001, 0.0]),
                     strict=True))
    real = dict(zip("abcde", ({"qini_lo90": lo} for lo in [0.002, 0.001, -0.001, 0.003, 0.0001]),
                    strict=True))
    assert not confirmed_by_holdout(noise)
    assert confirmed_by_holdout(real)


def test_recorded_outcomes_join_the_programme_log(model_world):
    from models.uplift.train import load_uplift_frame

    settings, store = model_world.settings, model_world.store
    base, _, _ = load_uplift_frame(settings, store)
    log_rows = pd.read_parquet(settings.clean_dir / "interventions.parquet")
    known = log_rows[log_rows["intervention_id"].isin(base["intervention_id"])].head(3)
    recorded = known.assign(intervention_id=[f"rec-{i}" for i in range(len(known))])
    more, _, _ = load_uplift_frame(settings, store, recorded=pd.concat([recorded, known]))  # repeats ignored
    assert len(more) == len(base) + len(known)
    assert set(more["intervention_id"]) - set(base["intervention_id"]) == set(recorded["intervention_id"])


def test_arm_summary_interval_covers_a_known_difference():
    from models.uplift.data import arm_summary

    rng = np.random.default_rng(5)
    n = 20000
    treated = rng.random(n) < 0.5
    action = np.where(treated, "call", rng.choice(["call", "mail"], n))
    churn = rng.random(n) < np.where(treated & (action == "call"), 0.05, 0.10)
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "action": action,
                          "treated": treated.astype(int), "churned_within_horizon": churn.astype(int)})
    row = arm_summary(frame, ["call"]).iloc[0]
    assert row["treated"] + row["controls"] == int((treated & (action == "call")).sum() + (~treated).sum())
    assert row["difference_lo90"] < -0.05 < row["difference_hi90"]
    assert row["difference_hi90"] < 0                  # 10,000 rows a side: clearly below 0
