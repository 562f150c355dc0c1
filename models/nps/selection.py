"""Correcting predicted NPS for who answers: score-distribution tilts and the selection gap.

Respondents are more satisfied than non-respondents with the same features. The
correction tilts the respondents' score distribution, ``p0(y|x) ∝ p1(y|x) exp(-gamma y)``,
and ``gamma`` is identified by *anchor answers* (another answer of the same customer
around the same time); see ``models.nps.model`` for the full argument. This module holds that
arithmetic and the anchor estimate, apart from the model that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import brentq

from configs.settings import LightGBMParams
from models.boosting import lgbm_kwargs
from models.nps.scale import NPS, scale_of

SCORES = NPS.scores                   # the NPS scale; a distribution's width names its scale
SNAPSHOT_KEY = "tenure_days"          # same customer + same tenure at the snapshot = same snapshot
ANCHOR_DAYS = 45                      # later anchors: at most this long after the invitation
GAMMA_BOUNDS = (-5.0, 5.0)
RESIDUAL_FOLDS = 3


def tilt(dist: np.ndarray, gamma) -> np.ndarray:
    """Exponentially tilted score distributions ``p(y) exp(-gamma y)``, renormalised.

    ``gamma > 0`` moves mass to lower scores. ``gamma`` is a scalar or one per row;
    tilts compose additively (``tilt(tilt(p, a), b) == tilt(p, a + b)``).
    """
    g = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (len(dist),))[:, None]
    scores = scale_of(dist).scores
    logw = np.log(np.clip(dist, 1e-300, None)) - g * (scores - scores.mean())
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw) * (dist > 0)
    return w / w.sum(axis=1, keepdims=True)


def gamma_for_mean(dist: np.ndarray, target_mean: float) -> float:
    """The tilt whose rows' mean expected score equals ``target_mean`` (clipped to bounds)."""
    def f(g: float) -> float:
        return float((tilt(dist, g) @ scores).mean() - target_mean)
    scores = scale_of(dist).scores
    lo, hi = GAMMA_BOUNDS
    if f(lo) * f(hi) > 0:                 # target outside what a tilt can reach
        return lo if abs(f(lo)) < abs(f(hi)) else hi
    return float(brentq(f, lo, hi, xtol=1e-6))


def gamma_for_shift(dist: np.ndarray, shift: float) -> float:
    """The tilt that lowers the rows' mean expected score by ``shift`` score points."""
    return gamma_for_mean(dist, float((dist @ scale_of(dist).scores).mean()) - shift)


@dataclass
class SelectionGap:
    """Respondents' minus non-respondents' mean answer at equal features, from anchors."""

    gap: float = 0.0
    se: float = float("nan")
    pairs: int = 0
    pairs_answered: int = 0
    customers: int = 0


def anchor_pairs(frame: pd.DataFrame, max_days: int = ANCHOR_DAYS, column: str = "nps") -> pd.DataFrame:
    """(invitation i, anchor answer j) of one customer whose answer is not in i's features.

    An anchor is another answered invitation of the same customer sent under the same
    feature snapshot as i, or after i's snapshot and at most ``max_days`` after i. Its
    answer is compared with a prediction from *i's* feature row (which cannot contain
    either answer), so it measures the customer's satisfaction around i whether or not
    they answered i. Columns: customer_id, invitation_id, responded (of i), row (i's
    position in ``frame``), touchpoint_anchor, answer_anchor (its ``column``), days (j minus i).
    """
    has = frame[SNAPSHOT_KEY].notna().to_numpy()
    pos = np.arange(len(frame))
    sent = pd.to_datetime(frame["event_timestamp"], utc=True).dt.tz_localize(None).to_numpy()
    left = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy()[has],
                         "invitation_id": frame["invitation_id"].to_numpy()[has],
                         "responded": frame["responded"].to_numpy()[has], "row": pos[has],
                         "snap": frame[SNAPSHOT_KEY].to_numpy(np.float64)[has],
                         "t": sent[has]})
    ans = has & (frame["responded"].to_numpy() == 1)
    right = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy()[ans],
                          "invitation_id_anchor": frame["invitation_id"].to_numpy()[ans],
                          "touchpoint_anchor": frame["touchpoint"].to_numpy()[ans],
                          "answer_anchor": frame[column].to_numpy(np.float64)[ans],
                          "snap_anchor": frame[SNAPSHOT_KEY].to_numpy(np.float64)[ans],
                          "t_anchor": sent[ans]})
    pairs = left.merge(right, on="customer_id")
    days = (pairs["t_anchor"] - pairs["t"]).dt.total_seconds().to_numpy() / 86400.0
    same = pairs["snap_anchor"].to_numpy() == pairs["snap"].to_numpy()
    later = (pairs["snap_anchor"].to_numpy() > pairs["snap"].to_numpy()) & (days > 0) & (days <= max_days)
    keep = (pairs["invitation_id"].to_numpy() != pairs["invitation_id_anchor"].to_numpy()) & (same | later)
    pairs = pairs.loc[keep, ["customer_id", "invitation_id", "responded", "row", "touchpoint_anchor",
                             "answer_anchor"]].assign(days=days[keep])
    return pairs.reset_index(drop=True)


def selection_gap(pairs: pd.DataFrame, samples: int, seed: int) -> SelectionGap:
    """Mean anchor ``residual`` of answered minus unanswered invitations, with a customer-
    clustered bootstrap standard error (a customer may contribute several pairs)."""
    r = pairs["responded"].to_numpy() == 1
    if r.sum() < 2 or (~r).sum() < 2:
        return SelectionGap(pairs=len(pairs), pairs_answered=int(r.sum()))
    res = pairs["residual"].to_numpy(np.float64)
    gap = res[r].mean() - res[~r].mean()
    codes, uniq = pd.factorize(pairs["customer_id"])
    n = len(uniq)
    s1 = np.bincount(codes, weights=res * r, minlength=n)
    n1 = np.bincount(codes, weights=r.astype(float), minlength=n)
    s0 = np.bincount(codes, weights=res * ~r, minlength=n)
    n0 = np.bincount(codes, weights=(~r).astype(float), minlength=n)
    rng = np.random.default_rng(seed)
    draws = np.empty(samples)
    for b in range(samples):
        k = np.bincount(rng.integers(0, n, n), minlength=n)
        draws[b] = (k @ s1) / max(k @ n1, 1) - (k @ s0) / max(k @ n0, 1)
    return SelectionGap(gap=float(gap), se=float(np.std(draws, ddof=1)), pairs=len(pairs),
                        pairs_answered=int(r.sum()), customers=n)



def anchor_residuals(frame: pd.DataFrame, X: pd.DataFrame, pairs: pd.DataFrame, answered: np.ndarray,
                     weights: np.ndarray, params: LightGBMParams, seed: int, rounds: int,
                     column: str = "nps") -> np.ndarray:
    """Anchor answer minus the score predicted from i's features and the anchor's touchpoint.

    The score models are cross-fitted by customer: a pair is predicted by a model that
    never saw that customer's answers (in-sample predictions would be pulled toward them).
    """
    codes, uniq = pd.factorize(frame["customer_id"])
    folds = min(RESIDUAL_FOLDS, len(uniq))
    fold = np.random.default_rng(seed).integers(0, folds, len(uniq))[codes]
    p = lgbm_kwargs(params, seed, "regression", native=True)
    y = frame[column].to_numpy(np.float64)
    w = np.zeros(len(frame))
    w[answered] = weights
    rows = pairs["row"].to_numpy()
    out = np.full(len(pairs), np.nan)
    for k in range(folds):
        fit = answered & (fold != k)
        booster = lgb.train(p, lgb.Dataset(X[fit], y[fit], weight=w[fit]), num_boost_round=rounds)
        mine = fold[rows] == k
        for tp in pd.unique(pairs["touchpoint_anchor"]):
            sel = np.flatnonzero(mine & (pairs["touchpoint_anchor"].to_numpy() == tp))
            if len(sel):
                Xi = X.iloc[rows[sel]].copy()
                Xi["touchpoint"] = pd.Categorical([tp] * len(sel), categories=X["touchpoint"].cat.categories)
                out[sel] = pairs["answer_anchor"].to_numpy()[sel] - booster.predict(Xi)
    return out
