"""The closed loop's learning curve: each delivered plan's true value beside the plans a team
could make instead at the same budget (evaluation from the hidden truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.ingest import run_ingest
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from models.churn.train import train_and_log_churn
from models.uplift.train import train_and_log_uplift
from pipelines.cycle import (
    curve_dir,
    cycle_budget,
    plain_stages,
    read_curve,
    recorded_plan,
    run_cycle,
    score_cycle,
)
from tests.conftest import make_world


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A small world trained once, scored at the cycle's budget, then two cycles (no retraining;
    the feature ceiling refit for the second cycle's plan only)."""
    root = make_world(tmp_path_factory.mktemp("loop"), customers=1500, months=12, seed=5)
    settings = load_settings(data_dir=root)
    train = settings.train.model_copy(update={
        "search": settings.train.search.model_copy(update={"trials": 0}),
        # a world this small shows no action to pay; the T-learner without the gate plans some
        "uplift": settings.train.uplift.model_copy(update={"learner": "t", "evidence_quantile": None})})
    settings = settings.model_copy(update={
        "train": train, "cycle": settings.cycle.model_copy(update={
            "retrain_every_months": 0, "budget_share": 0.05, "ceiling_every_months": 2})})
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    apply_definitions(feature_store(settings), settings)
    train_and_log_churn(settings)
    train_and_log_uplift(settings, settings.train.uplift)
    first = score_cycle(settings, ceiling=False)     # the plan of cycle 1: no ceiling (every 2nd)
    stages = plain_stages(settings)
    lines = [run_cycle(settings, stages) for _ in range(2)]
    return settings, [first["run_id"]] + [line["run_id"] for line in lines], lines


def test_each_cycle_has_a_point_and_the_file_keeps_them(loop):
    settings, _, lines = loop
    curve = read_curve(settings)
    assert list(curve["cycle"]) == [1, 2]
    assert (curve_dir(settings) / "learning_curve.json").is_file()
    assert [line["curve"]["month"] for line in lines] == list(curve["month"])
    assert all(line["seconds"]["score"] > 0 and "evaluation" in line["seconds"] for line in lines)


def test_each_cycle_measures_its_impact_and_reuses_earlier_feature_rows(loop):
    from features.transforms.incremental import new_from
    from models.impact.report import report_dir

    settings, _, lines = loop
    assert all("impact" in line["seconds"] for line in lines)
    assert (report_dir(settings) / "report.json").is_file()     # what the manager's page reads
    latest = pd.read_parquet(settings.feature_dir / "customer_o.parquet", columns=["event_timestamp"])
    assert new_from(settings.feature_dir) == latest["event_timestamp"].max()   # only the new month built


def test_do_nothing_is_zero_and_the_oracle_is_best(loop):
    curve = read_curve(loop[0])
    assert (curve["do_nothing"] == 0).all()
    assert curve["feature_ceiling"].isna().tolist() == [True, False]   # every 2nd cycle
    assert (curve["budget"] > 0).all()
    assert curve["ungated"].isna().all()     # the model here has no gate: nothing withheld
    others = curve[["feature_ceiling", "ungated", "risk_ranked", "random", "do_nothing", "exploit"]]
    assert (curve["oracle"].to_numpy() >= others.max(axis=1, skipna=True).to_numpy() - 1e-6).all()


def test_exploit_is_the_delivered_policy_rows_true_value(loop):
    settings, runs, lines = loop
    delivery = pd.read_parquet(settings.truth_dir / "plan_delivery.parquet")
    for line, run_id in zip(lines, runs, strict=False):
        rows, recorded = recorded_plan(settings, run_id)
        assert recorded["budget"] == pytest.approx(line["curve"]["budget"])
        month = delivery[pd.to_datetime(delivery["month"]) == pd.Timestamp(line["month"])]
        got = month[month["status"] == "delivered"].merge(
            rows.rename(columns={"arm": "plan_arm"}), on="customer_id")
        arm = got["arm"] if "arm" in got else got.get("plan_arm", pd.Series("policy", got.index))
        got = got[arm.fillna("policy").to_numpy() == "policy"]
        p = got["p_churn"].to_numpy()
        reduction = np.clip(-got["true_effect_90d"].to_numpy(), p - 1, p)
        value = (reduction * got["value_at_risk"] - got["cost"]).sum()
        assert line["curve"]["exploit"] == pytest.approx(value)
        assert line["curve"]["delivered_policy"] == len(got)
    assert sum(line["delivered"] for line in lines) > 0    # the plans delivered something


def test_cumulative_is_the_running_sum_of_the_delivered_value(loop):
    curve = read_curve(loop[0])
    assert np.allclose(curve["total"], curve["exploit"] + curve["experiments"] + curve["other_arms"])
    assert np.allclose(curve["cumulative"], curve["total"].cumsum())


def test_the_budget_is_a_share_of_customers_at_the_mean_action_cost(loop):
    settings = loop[0]
    assert cycle_budget(settings, 1000) == pytest.approx(2 * cycle_budget(settings, 500))
    off = settings.model_copy(update={"cycle": settings.cycle.model_copy(update={"budget_share": None})})
    assert cycle_budget(off, 1000) == settings.prescribe.budget


def test_a_cycle_killed_after_the_worlds_month_is_carried_on_not_lived_again(loop, tmp_path):
    """A kill in a stage after the world's month (training, say) must not step the world a
    second time, nor redo the stages that finished: the next call carries the cycle on."""
    import json
    import shutil

    from features.sources.world.state import load_world
    from pipelines.cycle import progress_path

    settings = loop[0].model_copy(update={"data_dir": tmp_path / "copy"})
    shutil.copytree(loop[0].data_dir, settings.data_dir)
    month_before = load_world(settings.truth_dir).month
    real = plain_stages(settings)
    calls: list[str] = []

    def counted(name, fail=False):
        def run(*args, **kwargs):
            calls.append(name)
            if fail:
                raise RuntimeError("killed")
            return getattr(real, name)(*args, **kwargs)
        return run

    names = ("advance", "ingest", "features", "train", "score", "impact")
    broken = type(real)(**{n: counted(n, fail=n == "features") for n in names})
    with pytest.raises(RuntimeError, match="killed"):
        run_cycle(settings, broken)
    assert calls == ["advance", "ingest", "features"]
    assert json.loads(progress_path(settings).read_text())["done"] == ["ingest"]
    assert list(read_curve(settings)["cycle"]) == [1, 2, 3]        # the delivered plan's point

    calls.clear()
    line = run_cycle(settings, type(real)(**{n: counted(n) for n in names}))
    assert calls == ["features", "score", "impact"]                  # no second month, no re-ingest
    assert line["carried_on"] and line["curve"]["cycle"] == 3
    assert load_world(settings.truth_dir).month == month_before + 1
    assert list(read_curve(settings)["cycle"]) == [1, 2, 3]
    assert not progress_path(settings).exists()
    assert recorded_plan(settings, line["run_id"]) is not None       # the next plan is there
