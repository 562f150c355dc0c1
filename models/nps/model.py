"""Predicted satisfaction: what would a customer who does not answer the survey have said?

Propensity, score and distribution models with a selection correction, so the company
figure of a wave (NPS, or mean CSAT when the company asks CSAT only: ``models.nps.scale``)
counts every invitee. Public names of ``models.nps.boosters``, ``selection`` and
``company`` are re-exported here (pickled models keep loading). Design: docs/models.md#predicted-nps
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from configs.settings import TrainParams
from models.boosting import THREADS, lgbm_kwargs
from models.frame import FrameSpec, check_encoding
from models.nps.boosters import (
    DEFAULT_TOUCHPOINT,
    fit_booster,
    ipw_weights,
    model_features,
    model_spec,
    with_touchpoint,
)
from models.nps.company import (
    CLASSES,
    CompanyNps,
    class_probabilities,
    company_nps,
    nps_class,
    nps_of_scores,
    wave_nps,
)
from models.nps.data import MIN_ANSWERS
from models.nps.scale import NPS, SCALES, Scale, frame_scale, row_means
from models.nps.selection import (
    ANCHOR_DAYS,
    GAMMA_BOUNDS,
    RESIDUAL_FOLDS,
    SCORES,
    SNAPSHOT_KEY,
    SelectionGap,
    anchor_pairs,
    anchor_residuals,
    gamma_for_mean,
    gamma_for_shift,
    selection_gap,
    tilt,
)

__all__ = [
    "ANCHOR_DAYS", "CLASSES", "DEFAULT_TOUCHPOINT", "GAMMA_BOUNDS", "PRED_COLUMNS",
    "RESIDUAL_FOLDS", "SCORES", "SNAPSHOT_KEY", "CompanyNps", "NpsModel", "SelectionGap", "anchor_pairs",
    "anchor_residuals", "class_probabilities", "company_nps", "fit_booster", "fit_nps_model",
    "gamma_for_mean", "gamma_for_shift", "ipw_weights", "model_features", "model_spec",
    "nps_class", "nps_of_scores", "selection_gap", "tilt", "wave_nps", "with_touchpoint",
]

log = logging.getLogger(__name__)

#: Prediction columns; on CSAT ``nps_pred`` is the expected CSAT (1-5) and the three
#: probabilities are dissatisfied (1-2) / neutral (3) / satisfied (4-5), in that order.
PRED_COLUMNS = ["nps_pred", "p_detractor", "p_passive", "p_promoter"]


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
    scale_name: str = NPS.name       # models pickled before CSAT support predict NPS

    @property
    def scale(self) -> Scale:
        """The answer scale the model predicts (``models.nps.scale``)."""
        return SCALES[self.scale_name]

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.spec.matrix(with_touchpoint(frame))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The boosters' input as one float64 array (``FrameSpec.array``; relationship
        survey when the frame has no touchpoint)."""
        return self.spec.array(frame, fill={"touchpoint": DEFAULT_TOUCHPOINT})

    def _booster_predict(self, booster: lgb.Booster, x: np.ndarray, **kw) -> np.ndarray:
        """A booster's prediction on the encoded array, one thread (see ``models.nps.boosters``)."""
        check_encoding(self.spec, booster)
        return booster.predict(x, num_threads=THREADS, **kw)

    def response_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """P(answer | features, touchpoint) per row."""
        return self._booster_predict(self.propensity, self.encode(frame))

    def respondent_distribution(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, scores) score distribution of customers like these *who answer* (untilted)."""
        return self._booster_predict(self.distribution, self.encode(frame))

    def gamma(self, answered: bool = False) -> float:
        return self.offset_gamma + (0.0 if answered else self.selection_gamma)

    def score_distribution(self, frame: pd.DataFrame, answered: bool = False) -> np.ndarray:
        """(n, scores) would-be score distribution; ``answered=False``: of a non-respondent."""
        return tilt(self.respondent_distribution(frame), self.gamma(answered))

    def _shift(self, p1: np.ndarray, answered: bool) -> np.ndarray:
        g = self.gamma(answered)
        scores = self.scale.scores
        return np.zeros(len(p1)) if g == 0 else row_means(p1, scores) - row_means(tilt(p1, g), scores)

    def predict(self, frame: pd.DataFrame, answered: bool = False) -> pd.DataFrame:
        """nps_pred (expected score: 0-10, or 1-5 on CSAT) and the low / middle / high class
        probabilities (detractor / passive / promoter on NPS).

        By default for a customer who does not answer (the silent majority);
        ``answered=True`` predicts a respondent like them. A frame without a touchpoint
        column is scored as a relationship survey.
        """
        values = self.predict_x(self.encode(frame), answered)
        return pd.DataFrame(values, columns=PRED_COLUMNS, index=frame.index)

    def predict_x(self, x: np.ndarray, answered: bool = False) -> np.ndarray:
        """``predict`` from the encoded array (``encode``): (n, 4) in ``PRED_COLUMNS`` order."""
        if not len(x):
            return np.zeros((0, len(PRED_COLUMNS)))
        p1 = self._booster_predict(self.distribution, x)
        probs = class_probabilities(tilt(p1, self.gamma(answered)))
        score = self._booster_predict(self.score, x) - self._shift(p1, answered)
        return np.column_stack([score, probs])

    def contributions(self, frame: pd.DataFrame, answered: bool = False) -> np.ndarray:
        """TreeSHAP of the score model, (n, n_features + 1), column order ``spec.features``.

        The last column is the expected value plus the row's selection correction, so
        each row sums to ``predict(frame)["nps_pred"]``.
        """
        x = self.encode(frame)
        contrib = np.asarray(self._booster_predict(self.score, x, pred_contrib=True), dtype=np.float64)
        contrib[:, -1] -= self._shift(self._booster_predict(self.distribution, x), answered)
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
        target = answered[self.scale.name].to_numpy(np.float64) - usual
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
        return {"scale": self.scale_name, "corrected": self.corrected,
                "selection_gamma": self.selection_gamma,
                "selection_gamma_se": self.selection_gamma_se, "selection_gap": self.gap.gap,
                "selection_gap_se": self.gap.se, "anchor_pairs": self.gap.pairs,
                "anchor_pairs_answered": self.gap.pairs_answered,
                "anchor_customers": self.gap.customers, "offset_gamma": self.offset_gamma,
                "offset_gamma_se": self.offset_gamma_se,
                **self.info}



def fit_nps_model(frame: pd.DataFrame, params: TrainParams, corrected: bool = True,
                  features: list[str] | None = None) -> NpsModel:
    """Train on an invitation frame with features (``nps_data.with_features``), on the
    scale of its answer column (``nps`` or ``csat``: ``models.nps.scale.frame_scale``).

    ``corrected=True``: IPW-weighted outcome models and the anchor-identified selection
    tilt; ``False``: plain models on the respondents (the comparison).
    """
    frame = with_touchpoint(frame)
    scale = frame_scale(frame)
    spec = model_spec(frame, features)
    X = spec.matrix(frame)
    answered = frame["responded"].to_numpy() == 1
    if answered.sum() < MIN_ANSWERS:
        raise ValueError(f"only {int(answered.sum())} answered invitations: too few to train")
    times, seed, share = frame["event_timestamp"], params.seed, params.valid_share
    propensity = fit_booster(X, answered.astype(float), None, times, params.propensity, seed,
                             "binary", share)
    Xr, yr = X[answered], frame.loc[answered, scale.name].to_numpy(np.float64)
    rtimes = times[answered]
    if corrected:
        pi = _out_of_fold_propensity(X, answered, frame["customer_id"].to_numpy(), params,
                                     propensity.current_iteration())
        weights = ipw_weights(pi[answered], answered.mean(), params.max_ipw_weight)
    else:
        weights = np.ones(int(answered.sum()))
    score = fit_booster(Xr, yr, weights, rtimes, params.nps, seed, "regression", share)
    dist = fit_booster(Xr, yr - scale.low, weights, rtimes, params.nps, seed, "multiclass",
                       share, num_class=len(scale.scores))
    info = {"rows": len(frame), "answered": int(answered.sum()),
            "response_rate": float(answered.mean()),
            "weight_max": float(weights.max()),
            "weight_ess": float(weights.sum() ** 2 / (weights ** 2).sum()),
            "trees_score": score.current_iteration(), "trees_distribution": dist.current_iteration(),
            "trees_propensity": propensity.current_iteration()}
    model = NpsModel(spec=spec, score=score, distribution=dist, propensity=propensity,
                     corrected=corrected, info=info, scale_name=scale.name)
    expected = dist.predict(Xr) @ scale.scores
    tps = frame.loc[answered, "touchpoint"].to_numpy()
    model.respondent_residual = {tp: float((yr - expected)[tps == tp].mean())
                                 for tp in np.unique(tps)}
    if corrected:
        _fit_selection(model, frame, X, answered, weights, params, score.current_iteration())
    return model


def _out_of_fold_propensity(X, answered, groups, params: TrainParams, rounds: int) -> np.ndarray:
    """Cross-fitted P(answer): in-sample propensities of respondents are too high."""
    out = np.empty(len(answered))
    p = lgbm_kwargs(params.propensity, params.seed, "binary", native=True)
    for fit_idx, out_idx in GroupKFold(n_splits=RESIDUAL_FOLDS).split(X, answered, groups):
        booster = lgb.train(p, lgb.Dataset(X.iloc[fit_idx], answered[fit_idx].astype(float)),
                            num_boost_round=rounds)
        out[out_idx] = booster.predict(X.iloc[out_idx])
    return out


def _fit_selection(model: NpsModel, frame, X, answered, weights, params: TrainParams,
                   rounds: int) -> None:
    """Estimate the anchor gap and the tilt that reproduces it on the anchored non-respondents."""
    column = model.scale.name
    pairs = anchor_pairs(frame, column=column)
    if pairs.empty:
        log.warning("no anchor answers: the NPS model cannot correct selection on latent satisfaction")
        return
    pairs["residual"] = anchor_residuals(frame, X, pairs, answered, weights, params.nps, params.seed,
                                         rounds, column=column)
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
