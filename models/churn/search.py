"""Hyperparameter search of the churn booster on the training data only (Optuna TPE).

Each trial trains on the ``fit`` customers with early stopping on the ``stop`` customers
and is scored by ROC AUC on the ``calib`` customers: rows of the training period only, so
the validation figures stay honest. The configured recipe (``train.churn``) is trial 0,
so a searched recipe is chosen only when it beats it on this data. Design: docs/models.md#churn
"""

from __future__ import annotations

import logging
import time

import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

from configs.settings import LightGBMParams, TrainParams

log = logging.getLogger(__name__)
SEARCHED = ("learning_rate", "num_leaves", "max_depth", "min_child_samples", "subsample",
            "colsample_bytree")


def suggest(trial: optuna.Trial) -> dict:
    """The search space: from shallow slow trees to wide fast ones."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 12),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 500, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
    }


def search_churn_params(parts: dict[str, pd.DataFrame], fit_booster, spec, params: TrainParams,
                        label: str) -> tuple[LightGBMParams, pd.DataFrame]:
    """The best recipe found within the budget (``train.search``) and one row per trial.

    ``parts``: the fit / stop / calib customers; ``fit_booster``: the model's own booster
    training (early stopping included), so a trial trains exactly as the final model does.
    """
    budget = params.search
    evaluate = parts["calib"]
    if budget.trials == 0 or evaluate[label].nunique() < 2:
        return params.churn, pd.DataFrame()
    x_eval, y_eval = spec.matrix(evaluate), evaluate[label].to_numpy()

    def objective(trial: optuna.Trial) -> float:
        candidate = params.churn.model_copy(update=suggest(trial))
        started = time.perf_counter()
        booster = fit_booster(spec, parts["fit"], parts["stop"], label, candidate, params.seed)
        trial.set_user_attr("best_iteration", int(booster.best_iteration_ or candidate.n_estimators))
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        return float(roc_auc_score(y_eval, booster.predict_proba(x_eval, raw_score=True)))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=params.seed))
    study.enqueue_trial({k: getattr(params.churn, k) for k in SEARCHED})
    study.optimize(objective, n_trials=budget.trials, timeout=budget.timeout_seconds)
    best = params.churn.model_copy(update=study.best_params)
    log.info("churn search: %d trials, best inner AUC %.4f (configured recipe %.4f)",
             len(study.trials), study.best_value, study.trials[0].value)
    return best, trials_table(study)


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per finished trial: its parameters, inner AUC, trees and seconds."""
    rows = [{"trial": t.number, "inner_auc": t.value, **t.params, **t.user_attrs}
            for t in study.trials if t.value is not None]
    return pd.DataFrame(rows)
