"""NPS arithmetic and the company figure of a survey wave (NPS or mean CSAT), counting
every invitee.

Respondents count with their answer, non-respondents with the class probabilities an
``NpsModel`` predicts for them; the interval is a customer bootstrap that also carries
the correction's own uncertainty. Apart from the model so that the NPS figures staff
read (``company_nps``, ``wave_nps``) are defined in one short place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.nps.boosters import with_touchpoint
from models.nps.scale import NPS, SCALES, scale_of
from models.nps.selection import tilt

if TYPE_CHECKING:
    from models.nps.model import NpsModel

CLASSES = NPS.classes


def nps_class(scores) -> np.ndarray:
    """0 detractor (0-6), 1 passive (7-8), 2 promoter (9-10); -1 where the score is missing."""
    return NPS.classify(scores)


def nps_of_scores(scores) -> float:
    """NPS (-100..100) of observed scores: % promoters minus % detractors."""
    return NPS.of_scores(scores)


def class_probabilities(dist: np.ndarray) -> np.ndarray:
    """(n, 3) low / middle / high class probabilities of (n, scores) score distributions
    (detractor / passive / promoter on NPS, dissatisfied / neutral / satisfied on CSAT)."""
    return scale_of(dist).class_probabilities(dist)


@dataclass
class CompanyNps:
    """The company figure of everyone invited, and of the respondents only, with bootstrap
    intervals, on the model's scale: NPS, or mean CSAT (``scale``). The fields keep their
    NPS names; ``as_dict`` names them after the scale (``csat``, ``satisfied``, ...)."""

    nps: float
    low: float
    high: float
    respondents_nps: float
    respondents_low: float
    respondents_high: float
    invitees: int
    respondents: int
    promoters: float           # share of the high class (satisfied on CSAT)
    detractors: float          # share of the low class (dissatisfied on CSAT)
    scale: str = NPS.name

    def as_dict(self) -> dict:
        s = SCALES[self.scale]
        names = {"nps": s.name, "respondents_nps": f"respondents_{s.name}",
                 "promoters": s.classes[2] if s.name != "nps" else "promoters",
                 "detractors": s.classes[0] if s.name != "nps" else "detractors"}
        return {names.get(k, k): v for k, v in self.__dict__.items()}


def _cluster_sums(codes: np.ndarray, n: int, *values: np.ndarray) -> list[np.ndarray]:
    return [np.bincount(codes, weights=v, minlength=n) for v in values]


def company_nps(model: NpsModel, wave: pd.DataFrame, samples: int = 300, seed: int = 0,
                recalibrate: bool = True, model_uncertainty: bool = True,
                level: float = 0.9) -> CompanyNps:
    """The company figure counting every invitee of ``wave``, on the model's scale:
    NPS = 100 x (promoters - detractors) / invitees, or the mean CSAT of every invitee.

    Respondents count with their answer, non-respondents with their predicted class
    probabilities (NPS) or expected answer (CSAT). The interval is a bootstrap over
    customers (``samples`` draws, ``seed``); with ``model_uncertainty`` each draw also
    perturbs the non-respondents' tilt by the standard errors of the selection gap and of
    the recalibration, so the interval covers the corrections' own uncertainty.
    ``recalibrate`` tilts the model to the wave's respondents first (a corrected model only).
    """
    if wave.empty:
        raise ValueError("the wave has no invitations")
    scale = model.scale
    wave = with_touchpoint(wave)
    if recalibrate and model.corrected:
        model = model.recalibrated(wave)
    answered = wave["responded"].to_numpy() == 1
    answers = wave[scale.name].where(answered)
    cls = scale.classify(answers)
    value = np.nan_to_num(scale.answer_values(answers))
    slope = np.zeros(len(wave))
    top = (cls == 2).astype(float)
    bottom = (cls == 0).astype(float)
    if (~answered).any():
        silent = wave[~answered]
        p1 = model.respondent_distribution(silent)
        g = model.gamma(answered=False)
        dist = tilt(p1, g)
        probs = scale.class_probabilities(dist)
        value[~answered] = scale.expected_values(dist)
        top[~answered], bottom[~answered] = probs[:, 2], probs[:, 0]
        h = 0.01
        slope[~answered] = (scale.expected_values(tilt(p1, g + h))
                            - scale.expected_values(tilt(p1, g - h))) / (2 * h)
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
        draws[b] = scale.factor * (k @ v + delta * (k @ s)) / (k @ c)
        rdraws[b] = scale.factor * (k @ rv) / max(k @ rc, 1)
    q = [(1 - level) / 2, (1 + level) / 2]
    point = scale.factor * value.mean()
    lo, hi = np.quantile(draws, q)
    rlo, rhi = np.quantile(rdraws, q) if answered.any() else (np.nan, np.nan)
    return CompanyNps(nps=float(point), low=float(lo), high=float(hi),
                      respondents_nps=scale.of_scores(wave.loc[answered, scale.name]),
                      respondents_low=float(rlo), respondents_high=float(rhi),
                      invitees=len(wave), respondents=int(answered.sum()),
                      promoters=float(top.mean()), detractors=float(bottom.mean()),
                      scale=scale.name)


def wave_nps(model: NpsModel, frame: pd.DataFrame, survey_ids: list[str], samples: int = 300,
             seed: int = 0, recalibrate: bool = True) -> pd.DataFrame:
    """``company_nps`` of each survey wave (e.g. ``nps_data.relationship_waves(frame)``)."""
    return _per_group(model, frame, frame["survey_id"], survey_ids, "survey_id", samples, seed,
                      recalibrate)


def period_nps(model: NpsModel, frame: pd.DataFrame, periods: pd.Series, samples: int = 300,
               seed: int = 0, recalibrate: bool = True) -> pd.DataFrame:
    """``company_nps`` of each period (``periods``: a label per row of ``frame``, as
    ``nps_data.period_labels`` gives), oldest first: transactional surveys have no waves."""
    order = frame.groupby(periods)["event_timestamp"].min().sort_values().index.tolist()
    return _per_group(model, frame, periods, order, "period", samples, seed, recalibrate)


def _per_group(model: NpsModel, frame: pd.DataFrame, keys: pd.Series, groups: list[str],
               name: str, samples: int, seed: int, recalibrate: bool) -> pd.DataFrame:
    rows = []
    for g in groups:
        res = company_nps(model, frame[keys == g], samples, seed, recalibrate)
        rows.append({name: g, **res.as_dict()})
    return pd.DataFrame(rows)
