"""The churn recipe search: training customers only, the configured recipe as trial 0 (kept
unless beaten), trials logged as MLflow child runs of the model's run."""

from __future__ import annotations

import mlflow
import pandas as pd

from configs.settings import load_settings
from models import registry
from models.churn.model import fit_booster
from models.churn.search import search_churn_params
from models.frame import FrameSpec, feature_kinds
from models.split import customer_parts


def test_search_scores_trials_on_training_customers_and_keeps_a_better_recipe(model_world):
    frame = model_world.churn.sort_values(["event_timestamp", "customer_id"], ignore_index=True)
    frame = frame[frame["event_timestamp"] < frame["event_timestamp"].max() - pd.DateOffset(months=6)]
    features = [c for c in feature_kinds() if c in frame.columns]
    parts = dict(zip(("fit", "stop", "calib"), customer_parts(frame, (0.7, 0.15, 0.15), 0), strict=True))
    params = model_world.settings.train
    params = params.model_copy(update={"search": params.search.model_copy(update={"trials": 4}),
                                       "churn": params.churn.model_copy(update={"n_estimators": 60})})
    spec = FrameSpec.fit(frame, features)
    recipe, trials = search_churn_params(parts, fit_booster, spec, params, "churned_within_horizon")
    assert len(trials) == 4 and trials["trial"].tolist() == [0, 1, 2, 3]
    first = trials.iloc[0]
    assert first["learning_rate"] == params.churn.learning_rate      # the configured recipe first
    best = trials.loc[trials["inner_auc"].idxmax()]
    assert recipe.learning_rate == best["learning_rate"] and recipe.num_leaves == best["num_leaves"]
    off = params.model_copy(update={"search": params.search.model_copy(update={"trials": 0})})
    assert search_churn_params(parts, fit_booster, spec, off, "churned_within_horizon")[0] == params.churn


def test_trials_become_child_runs(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    registry.configure(settings)
    with mlflow.start_run(experiment_id=registry.experiment("churn", settings)) as parent:
        pass
    trials = pd.DataFrame({"trial": [0, 1], "inner_auc": [0.7, 0.72], "learning_rate": [0.02, 0.1],
                           "seconds": [1.0, 2.0]})
    registry.log_trials(settings, parent.info.run_id, trials, "inner_auc")
    runs = mlflow.search_runs(experiment_names=["churn"],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(runs["tags.mlflow.runName"]) == ["trial 0", "trial 1"]
    assert sorted(runs["metrics.inner_auc"]) == [0.7, 0.72]
