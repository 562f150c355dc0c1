"""Predicted NPS: what would a customer who does not answer the survey have said?

Only about one invitee in ten answers, and not at random: engaged, satisfied customers
answer more, so the respondents' NPS flatters the company. The model predicts every
invitee's answer from the ``nps_v1`` features known when the invitation was sent, and
the company NPS of a survey wave counts every invitee: observed answers for those who
answered, predicted class probabilities for the others.

Models (LightGBM, all trained on the invitation frame of ``models.nps_data``):

* **propensity** ``P(answer | features, touchpoint)`` on every invitation;
* **score** ``E[score | features, answered]`` (regression, explained by TreeSHAP) and
  **distribution** ``P(score = 0..10 | features, answered)`` (multiclass), on respondents,
  weighted by stabilised, clipped inverse propensities so that they fit the invitee
  population's feature distribution rather than the respondents' (selection on the
  features);
* **selection correction** for what the features do not show (answering depends on
  latent satisfaction): the respondents' score distribution is tilted,
  ``p0(y|x) ∝ p1(y|x) exp(-gamma y)``, the form implied by a response model
  ``logit P(answer | x, y) = h(x) + gamma y``. ``gamma`` is identified by *anchor
  answers*: when a customer invited to survey i also answered another survey j around
  the same time (under the same feature snapshot, or up to ``ANCHOR_DAYS`` after i),
  j's answer measures how satisfied they were around i, whether or not they answered
  i. Its residual against a prediction from i's own feature row (cross-fitted by
  customer) is, on average, higher for customers who answered i than for those who did
  not, at equal features: that difference is the satisfaction gap between respondents
  and non-respondents that the features miss (the anchor's own noise does not depend on
  i's response, and both groups are selected on answering j alike). ``gamma`` is set
  so that the tilt lowers the anchored non-respondents' predictions by that gap; its
  bootstrap standard error (clustered by customer) travels into the NPS interval.
* **wave recalibration** (``company_nps(recalibrate=True)``, the default): a common
  tilt of every invitee's distribution so that the wave's own respondents are predicted
  as well as the training respondents were; it absorbs what happened between the
  feature snapshot and the answers (a price rise in the survey month).

The uncorrected model (``corrected=False``) is the same pipeline without weights,
selection tilt or recalibration: what a plain model trained on respondents predicts.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.model_selection import GroupKFold

from configs.settings import LightGBMParams, TrainParams
from features.feast_defs import NOT_FOR_NPS
from features.transforms.schema import FEATURE_SCHEMA
from models.frame import FrameSpec
from models.nps_data import TOUCHPOINTS

log = logging.getLogger(__name__)

SCORES = np.arange(11, dtype=np.float64)
CLASSES = ("detractor", "passive", "promoter")
PRED_COLUMNS = ["nps_pred", "p_detractor", "p_passive", "p_promoter"]
SNAPSHOT_KEY = "tenure_days"          # same customer + same tenure at the snapshot = same snapshot
ANCHOR_DAYS = 45                      # later anchors: at most this long after the invitation
DEFAULT_TOUCHPOINT = "relationship"   # when scoring customers outside any invitation
GAMMA_BOUNDS = (-5.0, 5.0)
RESIDUAL_FOLDS = 3
# One thread: on a shared or busy machine LightGBM's OpenMP threads spin and run 10-20x
# slower than a single thread (measured on the 2-core CI box); the models here are small.
NUM_THREADS = 1


# ---------------------------------------------------------------- NPS arithmetic

def nps_class(scores) -> np.ndarray:
    """0 detractor (0-6), 1 passive (7-8), 2 promoter (9-10); -1 where the score is missing."""
    s = np.asarray(scores, dtype=np.float64)
    out = np.where(s >= 9, 2, np.where(s >= 7, 1, 0))
    return np.where(np.isnan(s), -1, out)


def nps_of_scores(scores) -> float:
    """NPS (-100..100) of observed scores: % promoters minus % detractors."""
    c = nps_class(scores)
    c = c[c >= 0]
    if len(c) == 0:
        return float("nan")
    return float(100.0 * ((c == 2).mean() - (c == 0).mean()))


def class_probabilities(dist: np.ndarray) -> np.ndarray:
    """(n, 3) detractor / passive / promoter probabilities of (n, 11) score distributions."""
    return np.column_stack([dist[:, :7].sum(1), dist[:, 7:9].sum(1), dist[:, 9:].sum(1)])


def tilt(dist: np.ndarray, gamma) -> np.ndarray:
    """Exponentially tilted score distributions ``p(y) exp(-gamma y)``, renormalised.

    ``gamma > 0`` moves mass to lower scores. ``gamma`` is a scalar or one per row;
    tilts compose additively (``tilt(tilt(p, a), b) == tilt(p, a + b)``).
    """
    g = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (len(dist),))[:, None]
    logw = np.log(np.clip(dist, 1e-300, None)) - g * (SCORES - 5.0)
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw) * (dist > 0)
    return w / w.sum(axis=1, keepdims=True)


def gamma_for_mean(dist: np.ndarray, target_mean: float) -> float:
    """The tilt whose rows' mean expected score equals ``target_mean`` (clipped to bounds)."""
    def f(g: float) -> float:
        return float((tilt(dist, g) @ SCORES).mean() - target_mean)
    lo, hi = GAMMA_BOUNDS
    if f(lo) * f(hi) > 0:                 # target outside what a tilt can reach
        return lo if abs(f(lo)) < abs(f(hi)) else hi
    return float(brentq(f, lo, hi, xtol=1e-6))


def gamma_for_shift(dist: np.ndarray, shift: float) -> float:
    """The tilt that lowers the rows' mean expected score by ``shift`` score points."""
    return gamma_for_mean(dist, float((dist @ SCORES).mean()) - shift)


# ---------------------------------------------------------------- frames and LightGBM

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


def lgb_params(params: LightGBMParams, seed: int, objective: str, **extra) -> dict:
    """lgb.train parameters from the configured section, repeatable for a seed."""
    return {"objective": objective, "learning_rate": params.learning_rate,
            "num_leaves": params.num_leaves, "max_depth": params.max_depth,
            "min_child_samples": params.min_child_samples, "subsample": params.subsample,
            "subsample_freq": 1, "colsample_bytree": params.colsample_bytree, "seed": seed,
            "deterministic": True, "force_row_wise": True, "num_threads": NUM_THREADS, "verbose": -1,
            **extra}


def fit_booster(X: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None, times: pd.Series,
                params: LightGBMParams, seed: int, objective: str, valid_share: float,
                **extra) -> lgb.Booster:
    """Early stopping on the latest ``valid_share`` of rows, then a refit on all rows.

    The most recent rows are the most like the ones the model will score, so they are
    used to choose the number of trees and then trained on too.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    p = lgb_params(params, seed, objective, **extra)
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


# ---------------------------------------------------------------- the selection gap

@dataclass
class SelectionGap:
    """Respondents' minus non-respondents' mean answer at equal features, from anchors."""

    gap: float = 0.0
    se: float = float("nan")
    pairs: int = 0
    pairs_answered: int = 0
    customers: int = 0


def anchor_pairs(frame: pd.DataFrame, max_days: int = ANCHOR_DAYS) -> pd.DataFrame:
    """(invitation i, anchor answer j) of one customer whose answer is not in i's features.

    An anchor is another answered invitation of the same customer sent under the same
    feature snapshot as i, or after i's snapshot and at most ``max_days`` after i. Its
    answer is compared with a prediction from *i's* feature row (which cannot contain
    either answer), so it measures the customer's satisfaction around i whether or not
    they answered i. Columns: customer_id, invitation_id, responded (of i), row (i's
    position in ``frame``), touchpoint_anchor, nps_anchor, days (j minus i).
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
                          "nps_anchor": frame["nps"].to_numpy(np.float64)[ans],
                          "snap_anchor": frame[SNAPSHOT_KEY].to_numpy(np.float64)[ans],
                          "t_anchor": sent[ans]})
    pairs = left.merge(right, on="customer_id")
    days = (pairs["t_anchor"] - pairs["t"]).dt.total_seconds().to_numpy() / 86400.0
    same = pairs["snap_anchor"].to_numpy() == pairs["snap"].to_numpy()
    later = (pairs["snap_anchor"].to_numpy() > pairs["snap"].to_numpy()) & (days > 0) & (days <= max_days)
    keep = (pairs["invitation_id"].to_numpy() != pairs["invitation_id_anchor"].to_numpy()) & (same | later)
    pairs = pairs.loc[keep, ["customer_id", "invitation_id", "responded", "row", "touchpoint_anchor",
                             "nps_anchor"]].assign(days=days[keep])
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


# ---------------------------------------------------------------- the model

@dataclass
class NpsModel:
    """Predicted NPS of every invitee, corrected (or not) for who answers."""

    spec: FrameSpec
    score: lgb.Booster
    distribution: lgb.Booster
    propensity: lgb.Booster
    corrected: bool
    selection_gamma: float = 0.0     # tilt from respondents to non-respondents
    selection_gamma_se: float = 0.0
    gap: SelectionGap = field(default_factory=SelectionGap)
    offset_gamma: float = 0.0        # wave recalibration, applied to every row
    offset_gamma_se: float = 0.0
    respondent_residual: dict = field(default_factory=dict)   # mean answer - E[p1], per touchpoint
    info: dict = field(default_factory=dict)

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.spec.matrix(with_touchpoint(frame))

    def response_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """P(answer | features, touchpoint) per row."""
        return self.propensity.predict(self.matrix(frame))

    def respondent_distribution(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 11) score distribution of customers like these *who answer* (untilted)."""
        return self.distribution.predict(self.matrix(frame))

    def gamma(self, answered: bool = False) -> float:
        return self.offset_gamma + (0.0 if answered else self.selection_gamma)

    def score_distribution(self, frame: pd.DataFrame, answered: bool = False) -> np.ndarray:
        """(n, 11) would-be score distribution; ``answered=False``: of a non-respondent."""
        return tilt(self.respondent_distribution(frame), self.gamma(answered))

    def _shift(self, p1: np.ndarray, answered: bool) -> np.ndarray:
        g = self.gamma(answered)
        return np.zeros(len(p1)) if g == 0 else p1 @ SCORES - tilt(p1, g) @ SCORES

    def predict(self, frame: pd.DataFrame, answered: bool = False) -> pd.DataFrame:
        """nps_pred (0-10 expected score) and detractor / passive / promoter probabilities.

        By default for a customer who does not answer (the silent majority);
        ``answered=True`` predicts a respondent like them. A frame without a touchpoint
        column is scored as a relationship survey.
        """
        X = self.matrix(frame)
        p1 = self.distribution.predict(X)
        probs = class_probabilities(tilt(p1, self.gamma(answered)))
        score = self.score.predict(X) - self._shift(p1, answered)
        out = pd.DataFrame(np.column_stack([score, probs]), columns=PRED_COLUMNS, index=frame.index)
        return out

    def contributions(self, frame: pd.DataFrame, answered: bool = False) -> np.ndarray:
        """TreeSHAP of the score model, (n, n_features + 1), column order ``spec.features``.

        The last column is the expected value plus the row's selection correction, so
        each row sums to ``predict(frame)["nps_pred"]``.
        """
        X = self.matrix(frame)
        contrib = np.asarray(self.score.predict(X, pred_contrib=True), dtype=np.float64)
        contrib[:, -1] -= self._shift(self.distribution.predict(X), answered)
        return contrib

    def recalibrated(self, wave: pd.DataFrame) -> NpsModel:
        """A copy whose every prediction is tilted so that the wave's respondents are
        predicted as well as the training respondents were (what happened after the
        feature snapshot, e.g. a price rise in the survey month).

        The target is the respondents' observed mean minus the model's usual residual on
        training respondents of the same touchpoint: a weighted model is fitted for the
        invitee population and under-predicts respondents a little by design.
        """
        answered = with_touchpoint(wave[wave["responded"] == 1])
        out = copy.copy(self)
        if answered.empty:
            return out
        p1 = self.respondent_distribution(answered)
        usual = answered["touchpoint"].map(self.respondent_residual).fillna(0.0).to_numpy()
        target = answered["nps"].to_numpy(np.float64) - usual
        out.offset_gamma = gamma_for_mean(p1, float(target.mean()))
        if len(answered) > 1:     # the respondents' mean is itself a sample: its error, as a tilt
            se = float(target.std(ddof=1) / np.sqrt(len(answered)))
            up = gamma_for_mean(p1, float(target.mean()) + se)
            down = gamma_for_mean(p1, float(target.mean()) - se)
            out.offset_gamma_se = float(abs(up - down) / 2)
        return out

    def without_selection(self) -> NpsModel:
        """A copy without the latent-satisfaction tilt (the IPW-only model)."""
        return dataclasses.replace(self, selection_gamma=0.0, selection_gamma_se=0.0,
                                   gap=SelectionGap())

    def summary(self) -> dict:
        """Scalars worth logging: the correction and the model sizes."""
        return {"corrected": self.corrected, "selection_gamma": self.selection_gamma,
                "selection_gamma_se": self.selection_gamma_se, "selection_gap": self.gap.gap,
                "selection_gap_se": self.gap.se, "anchor_pairs": self.gap.pairs,
                "anchor_pairs_answered": self.gap.pairs_answered,
                "anchor_customers": self.gap.customers, "offset_gamma": self.offset_gamma,
                "offset_gamma_se": self.offset_gamma_se,
                **self.info}


def anchor_residuals(frame: pd.DataFrame, X: pd.DataFrame, pairs: pd.DataFrame, answered: np.ndarray,
                     weights: np.ndarray, params: LightGBMParams, seed: int, rounds: int) -> np.ndarray:
    """Anchor answer minus the score predicted from i's features and the anchor's touchpoint.

    The score models are cross-fitted by customer: a pair is predicted by a model that
    never saw that customer's answers (in-sample predictions would be pulled toward them).
    """
    codes, uniq = pd.factorize(frame["customer_id"])
    folds = min(RESIDUAL_FOLDS, len(uniq))
    fold = np.random.default_rng(seed).integers(0, folds, len(uniq))[codes]
    p = lgb_params(params, seed, "regression")
    y = frame["nps"].to_numpy(np.float64)
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
                out[sel] = pairs["nps_anchor"].to_numpy()[sel] - booster.predict(Xi)
    return out


def fit_nps_model(frame: pd.DataFrame, params: TrainParams, corrected: bool = True,
                  features: list[str] | None = None) -> NpsModel:
    """Train on an invitation frame with features (``nps_data.with_features``).

    ``corrected=True``: IPW-weighted outcome models and the anchor-identified selection
    tilt; ``False``: plain models on the respondents (the comparison).
    """
    frame = with_touchpoint(frame)
    spec = model_spec(frame, features)
    X = spec.matrix(frame)
    answered = frame["responded"].to_numpy() == 1
    if answered.sum() < 20:
        raise ValueError(f"only {int(answered.sum())} answered invitations: too few to train")
    times, seed, share = frame["event_timestamp"], params.seed, params.valid_share
    propensity = fit_booster(X, answered.astype(float), None, times, params.propensity, seed,
                             "binary", share)
    Xr, yr = X[answered], frame.loc[answered, "nps"].to_numpy(np.float64)
    rtimes = times[answered]
    if corrected:
        pi = _out_of_fold_propensity(X, answered, frame["customer_id"].to_numpy(), params,
                                     propensity.current_iteration())
        weights = ipw_weights(pi[answered], answered.mean(), params.max_ipw_weight)
    else:
        weights = np.ones(int(answered.sum()))
    score = fit_booster(Xr, yr, weights, rtimes, params.nps, seed, "regression", share)
    dist = fit_booster(Xr, yr, weights, rtimes, params.nps, seed, "multiclass", share,
                       num_class=len(SCORES))
    info = {"rows": len(frame), "answered": int(answered.sum()),
            "response_rate": float(answered.mean()),
            "weight_max": float(weights.max()),
            "weight_ess": float(weights.sum() ** 2 / (weights ** 2).sum()),
            "trees_score": score.current_iteration(), "trees_distribution": dist.current_iteration(),
            "trees_propensity": propensity.current_iteration()}
    model = NpsModel(spec=spec, score=score, distribution=dist, propensity=propensity,
                     corrected=corrected, info=info)
    expected = dist.predict(Xr) @ SCORES
    tps = frame.loc[answered, "touchpoint"].to_numpy()
    model.respondent_residual = {tp: float((yr - expected)[tps == tp].mean())
                                 for tp in np.unique(tps)}
    if corrected:
        _fit_selection(model, frame, X, answered, weights, params, score.current_iteration())
    return model


def _out_of_fold_propensity(X, answered, groups, params: TrainParams, rounds: int) -> np.ndarray:
    """Cross-fitted P(answer): in-sample propensities of respondents are too high."""
    out = np.empty(len(answered))
    p = lgb_params(params.propensity, params.seed, "binary")
    for fit_idx, out_idx in GroupKFold(n_splits=RESIDUAL_FOLDS).split(X, answered, groups):
        booster = lgb.train(p, lgb.Dataset(X.iloc[fit_idx], answered[fit_idx].astype(float)),
                            num_boost_round=rounds)
        out[out_idx] = booster.predict(X.iloc[out_idx])
    return out


def _fit_selection(model: NpsModel, frame, X, answered, weights, params: TrainParams,
                   rounds: int) -> None:
    """Estimate the anchor gap and the tilt that reproduces it on the anchored non-respondents."""
    pairs = anchor_pairs(frame)
    if pairs.empty:
        log.warning("no anchor answers: the NPS model cannot correct selection on latent satisfaction")
        return
    pairs["residual"] = anchor_residuals(frame, X, pairs, answered, weights, params.nps, params.seed,
                                         rounds)
    gap = selection_gap(pairs, params.bootstrap_samples, params.seed)
    model.gap = gap
    if gap.pairs_answered < 2 or gap.pairs - gap.pairs_answered < 2:
        log.warning("too few anchor answers: the NPS model cannot correct selection on latent satisfaction")
        return
    silent = frame.iloc[np.unique(pairs.loc[pairs["responded"] == 0, "row"].to_numpy())]
    p1 = model.respondent_distribution(silent)
    model.selection_gamma = gamma_for_shift(p1, gap.gap)
    if np.isfinite(gap.se) and gap.se > 0:
        up, down = gamma_for_shift(p1, gap.gap + gap.se), gamma_for_shift(p1, gap.gap - gap.se)
        model.selection_gamma_se = float(abs(up - down) / 2)


# ---------------------------------------------------------------- company NPS

@dataclass
class CompanyNps:
    """NPS of everyone invited, and of the respondents only, with bootstrap intervals."""

    nps: float
    low: float
    high: float
    respondents_nps: float
    respondents_low: float
    respondents_high: float
    invitees: int
    respondents: int
    promoters: float
    detractors: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _cluster_sums(codes: np.ndarray, n: int, *values: np.ndarray) -> list[np.ndarray]:
    return [np.bincount(codes, weights=v, minlength=n) for v in values]


def company_nps(model: NpsModel, wave: pd.DataFrame, samples: int = 300, seed: int = 0,
                recalibrate: bool = True, model_uncertainty: bool = True,
                level: float = 0.9) -> CompanyNps:
    """NPS = 100 x (promoters - detractors) / invitees, counting every invitee of ``wave``.

    Respondents count with their answer, non-respondents with their predicted class
    probabilities. The interval is a bootstrap over customers (``samples`` draws,
    ``seed``); with ``model_uncertainty`` each draw also perturbs the non-respondents'
    tilt by the standard errors of the selection gap and of the recalibration, so the
    interval covers the corrections' own uncertainty.
    ``recalibrate`` tilts the model to the wave's respondents first (a corrected model only).
    """
    if wave.empty:
        raise ValueError("the wave has no invitations")
    wave = with_touchpoint(wave)
    if recalibrate and model.corrected:
        model = model.recalibrated(wave)
    answered = wave["responded"].to_numpy() == 1
    cls = nps_class(wave["nps"].where(answered))
    value = np.where(cls == 2, 1.0, 0.0) - np.where(cls == 0, 1.0, 0.0)
    slope = np.zeros(len(wave))
    prom = (cls == 2).astype(float)
    det = (cls == 0).astype(float)
    if (~answered).any():
        silent = wave[~answered]
        p1 = model.respondent_distribution(silent)
        g = model.gamma(answered=False)
        probs = class_probabilities(tilt(p1, g))
        value[~answered] = probs[:, 2] - probs[:, 0]
        prom[~answered], det[~answered] = probs[:, 2], probs[:, 0]
        h = 0.01
        up, down = class_probabilities(tilt(p1, g + h)), class_probabilities(tilt(p1, g - h))
        slope[~answered] = ((up[:, 2] - up[:, 0]) - (down[:, 2] - down[:, 0])) / (2 * h)
    codes, uniq = pd.factorize(wave["customer_id"])
    n = len(uniq)
    v, s, c, rv, rc = _cluster_sums(codes, n, value, slope, np.ones(len(wave)),
                                    value * answered, answered.astype(float))
    rng = np.random.default_rng(seed)
    sd = float(np.hypot(np.nan_to_num(model.selection_gamma_se), model.offset_gamma_se))
    sd = sd if model_uncertainty else 0.0
    draws, rdraws = np.empty(samples), np.empty(samples)
    for b in range(samples):
        k = np.bincount(rng.integers(0, n, n), minlength=n)
        delta = rng.normal(0.0, sd) if sd > 0 else 0.0
        draws[b] = 100 * (k @ v + delta * (k @ s)) / (k @ c)
        rdraws[b] = 100 * (k @ rv) / max(k @ rc, 1)
    q = [(1 - level) / 2, (1 + level) / 2]
    point = 100 * value.mean()
    lo, hi = np.quantile(draws, q)
    rlo, rhi = np.quantile(rdraws, q) if answered.any() else (np.nan, np.nan)
    return CompanyNps(nps=float(point), low=float(lo), high=float(hi),
                      respondents_nps=nps_of_scores(wave.loc[answered, "nps"]),
                      respondents_low=float(rlo), respondents_high=float(rhi),
                      invitees=len(wave), respondents=int(answered.sum()),
                      promoters=float(prom.mean()), detractors=float(det.mean()))


def wave_nps(model: NpsModel, frame: pd.DataFrame, survey_ids: list[str], samples: int = 300,
             seed: int = 0, recalibrate: bool = True) -> pd.DataFrame:
    """``company_nps`` of each survey wave (e.g. ``nps_data.relationship_waves(frame)``)."""
    rows = []
    for sid in survey_ids:
        res = company_nps(model, frame[frame["survey_id"] == sid], samples, seed, recalibrate)
        rows.append({"survey_id": sid, **res.as_dict()})
    return pd.DataFrame(rows)
