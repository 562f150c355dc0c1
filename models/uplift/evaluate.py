"""Evaluation of the uplift models against the simulated world's true action effects.

The only uplift module that reads ``settings.truth_dir`` (a test enforces the whitelist):
effect correlations and errors per action, and how often the estimated best action is truly
best. Design: docs/models.md#evaluating-uplift
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.services import CHURN_SERVICE
from features.store import feature_store, training_frame

SERVICE = CHURN_SERVICE


def read_action_truth(settings: Settings) -> pd.DataFrame:
    """Long table: customer_id, as_of, action, eligible, true_effect_90d."""
    path = settings.truth_dir / "action_effects.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: evaluation needs the simulated world's truth")
    truth = pd.read_parquet(path)
    missing = {"customer_id", "as_of", "action", "eligible", "true_effect_90d"} - set(truth.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    return truth


def wide(truth: pd.DataFrame, column: str) -> pd.DataFrame:
    """customer_id x action table of one truth column."""
    return truth.pivot(index="customer_id", columns="action", values=column)


def agreement(estimated: pd.DataFrame, true: pd.DataFrame, eligible: pd.DataFrame | None = None
              ) -> pd.DataFrame:
    """Per action: rows, Pearson, Spearman and MAE between estimated and true effects.

    Frames are aligned on their index (customers) and columns (actions); rows where
    the action is not eligible or either value is missing are left out.
    """
    rows = []
    for action in estimated.columns:
        est = estimated[action]
        tru = true[action].reindex(est.index)
        ok = est.notna() & tru.notna()
        if eligible is not None:
            ok &= eligible[action].reindex(est.index).fillna(False).astype(bool)
        e, t = est[ok].astype(float), tru[ok].astype(float)
        rows.append({"action": action, "rows": int(ok.sum()),
                     "pearson": float(e.corr(t)) if ok.sum() > 2 else np.nan,
                     "spearman": float(e.corr(t, method="spearman")) if ok.sum() > 2 else np.nan,
                     "mae": float((e - t).abs().mean()),
                     "mean_estimated": float(e.mean()), "mean_true": float(t.mean())})
    return pd.DataFrame(rows).set_index("action")


def best_action_share(estimated: pd.DataFrame, true: pd.DataFrame, eligible: pd.DataFrame) -> dict:
    """Share of customers whose estimated best eligible action is truly best, and yardsticks.

    Best = most negative effect (largest churn reduction). Also: the mean true effect
    of the chosen actions against the oracle's and random choice's, so a reader sees
    how much of the attainable reduction the ranking captures.
    """
    actions = list(estimated.columns)
    idx = estimated.index.intersection(true.index)
    elig = eligible.loc[idx, actions].fillna(False).astype(bool).to_numpy()
    t = true.loc[idx, actions].to_numpy(float)
    e = estimated.loc[idx, actions].to_numpy(float)
    t_masked = np.where(elig, t, np.inf)
    e_masked = np.where(elig & ~np.isnan(e), e, np.inf)
    true_best, est_best = t_masked.argmin(axis=1), e_masked.argmin(axis=1)
    mean_true = np.nanmean(np.where(elig, t, np.nan), axis=0)
    always = np.where(elig, mean_true[None, :], np.inf).argmin(axis=1)
    rows = np.arange(len(idx))
    n_elig = elig.sum(axis=1)
    return {
        "customers": len(idx),
        "share_best_action_correct": float((est_best == true_best).mean()),
        "share_best_if_always_average_best": float((always == true_best).mean()),
        "share_best_if_random": float(np.mean(1.0 / np.maximum(n_elig, 1))),
        "true_effect_of_estimated_best": float(t[rows, est_best].mean()),
        "true_effect_of_oracle_best": float(t[rows, true_best].mean()),
        "true_effect_of_random_action": float(np.nanmean(np.where(elig, t, np.nan), axis=1).mean()),
    }


def end_of_history_frame(settings: Settings, truth: pd.DataFrame, store=None) -> pd.DataFrame:
    """churn_v1 features of the truth's customers at its ``as_of`` instant (point in time)."""
    store = feature_store(settings) if store is None else store
    entity = truth[["customer_id", "as_of"]].drop_duplicates("customer_id")
    entity = pd.DataFrame({"customer_id": entity["customer_id"].astype(str),
                           "event_timestamp": pd.to_datetime(entity["as_of"], utc=True)})
    return training_frame(store, entity, SERVICE)


def evaluate_open_customers(settings: Settings, model, store=None) -> dict:
    """The model's effects for every open customer at the end of the history vs the truth."""
    truth = read_action_truth(settings)
    frame = end_of_history_frame(settings, truth, store)
    estimated = model.effects(frame).set_axis(frame["customer_id"].astype(str).to_numpy())
    true, eligible = wide(truth, "true_effect_90d"), wide(truth, "eligible")
    return {"by_action": agreement(estimated, true, eligible),
            "best_action": best_action_share(estimated, true, eligible)}


def evaluate_logged_actions(settings: Settings, model, frame: pd.DataFrame) -> pd.DataFrame:
    """Estimated vs true effect of the logged action on rows of the uplift frame (e.g. the hold-out)."""
    path = settings.truth_dir / "intervention_effects.parquet"
    truth = pd.read_parquet(path, columns=["intervention_id", "true_effect_90d"])
    effects = model.effects(frame)
    logged = frame["action"].to_numpy()
    pos = pd.Index(effects.columns).get_indexer(logged)
    est = pd.Series(effects.to_numpy()[np.arange(len(frame)), pos], index=frame["intervention_id"])
    true = truth.set_index("intervention_id")["true_effect_90d"]
    est_w = pd.DataFrame({a: est.where(logged == a) for a in effects.columns})
    true_w = pd.DataFrame({a: true.reindex(est.index).where(logged == a) for a in effects.columns})
    return agreement(est_w, true_w)
