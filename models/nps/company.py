"""NPS arithmetic and the company NPS of a survey wave, counting every invitee.

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
from models.nps.selection import tilt

if TYPE_CHECKING:
    from models.nps.model import NpsModel

CLASSES = ("detractor", "passive", "promoter")


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
