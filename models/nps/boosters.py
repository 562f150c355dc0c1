"""The invitation frame as a LightGBM matrix, and the booster training every NPS model shares.

The propensity, score and distribution models (``models.nps.model``) and the cross-fitted
anchor models (``models.nps.selection``) are all trained the same way: the ``nps_v1``
features plus the survey touchpoint, one thread, early stopping on the latest rows.
One place for that keeps the models comparable and the thread rule in force.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from configs.settings import LightGBMParams
from features.feast_defs import NOT_FOR_NPS
from features.transforms.schema import FEATURE_SCHEMA
from models.boosting import lgbm_kwargs
from models.frame import FrameSpec
from models.nps.data import TOUCHPOINTS

DEFAULT_TOUCHPOINT = "relationship"   # when scoring customers outside any invitation


def model_features(frame: pd.DataFrame) -> list[str]:
    """The nps_v1 feature columns present in ``frame``, in schema order."""
    return [c for table in FEATURE_SCHEMA.values() for c in table
            if c in frame.columns and c not in NOT_FOR_NPS]


def model_spec(frame: pd.DataFrame, features: list[str] | None = None) -> FrameSpec:
    """FrameSpec of the features plus ``touchpoint`` (a model input, fixed categories)."""
    feats = model_features(frame) if features is None else [f for f in features if f != "touchpoint"]
    spec = FrameSpec.fit(frame, feats)
    return FrameSpec(features=[*feats, "touchpoint"],
                     categories={**spec.categories, "touchpoint": list(TOUCHPOINTS)})


def with_touchpoint(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a touchpoint column (relationship when it has none)."""
    if "touchpoint" in frame.columns:
        return frame
    return frame.assign(touchpoint=DEFAULT_TOUCHPOINT)


def fit_booster(X: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None, times: pd.Series,
                params: LightGBMParams, seed: int, objective: str, valid_share: float,
                **extra) -> lgb.Booster:
    """Early stopping on the latest ``valid_share`` of rows, then a refit on all rows.

    The most recent rows are the most like the ones the model will score, so they are
    used to choose the number of trees and then trained on too.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    p = lgbm_kwargs(params, seed, objective, native=True, **extra)
    order = np.argsort(pd.to_datetime(times, utc=True).to_numpy(dtype="datetime64[ns]"), kind="stable")
    n_stop = int(round(valid_share * len(y)))
    rounds = params.n_estimators
    if 50 <= n_stop < len(y) - 50:
        fit_idx, stop_idx = order[:-n_stop], order[-n_stop:]
        train = lgb.Dataset(X.iloc[fit_idx], y[fit_idx], weight=w[fit_idx], free_raw_data=False)
        valid = lgb.Dataset(X.iloc[stop_idx], y[stop_idx], weight=w[stop_idx], reference=train)
        probe = lgb.train(p, train, num_boost_round=params.n_estimators, valid_sets=[valid],
                          callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])
        rounds = max(1, probe.best_iteration or params.n_estimators)
    return lgb.train(p, lgb.Dataset(X, y, weight=w), num_boost_round=rounds)


def ipw_weights(propensity: np.ndarray, base_rate: float, max_weight: float) -> np.ndarray:
    """Stabilised inverse-propensity weights ``base_rate / p``, clipped, mean 1.

    Multiplying by the overall response rate keeps the weights near 1 (a respondent
    stands for ``1 / p`` invitees, relative to the average); the clip bounds the
    variance a few rare respondents could add.
    """
    p = np.clip(np.asarray(propensity, dtype=np.float64), 1e-6, 1.0)
    w = np.minimum(base_rate / p, max_weight)
    return w / w.mean()
