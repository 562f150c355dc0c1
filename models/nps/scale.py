"""The satisfaction scale the model predicts: NPS (0-10) or CSAT (1-5), chosen from the data.

Companies survey as they do: some ask NPS, many only CSAT (post-contact 1-5, star
ratings). The model, its three classes and the company figure all follow one
``Scale``: NPS counts promoters minus detractors (x 100), CSAT takes the mean answer.
Which scale is decided once (``choose_scale``): NPS when the responses carry NPS
answers, else CSAT; ``train.satisfaction_scale`` in params.yaml may force it.
Design: docs/models.md#which-scale
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

AUTO = "auto"


def row_means(dist: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's mean of ``scores`` under its distribution, added score by score. A BLAS
    product rounds a row differently with the number of rows it is given, and a customer's
    predicted score must not depend on the batch (a bucket, the whole run, one API call)."""
    dist = np.asarray(dist, dtype=np.float64)
    out = np.zeros(len(dist))
    for j, score in enumerate(np.asarray(scores, dtype=np.float64)):
        out += dist[:, j] * score
    return out


@dataclass(frozen=True)
class Scale:
    """One answer scale: its column in the responses, its range, classes and headline."""

    name: str                      # the survey_responses column that holds the answer
    low: int
    high: int
    classes: tuple[str, str, str]  # low / middle / high class
    cuts: tuple[int, int]          # first score of the middle and of the high class
    label: str                     # what the company figure is called in reports

    @property
    def scores(self) -> np.ndarray:
        return np.arange(self.low, self.high + 1, dtype=np.float64)

    def classify(self, scores) -> np.ndarray:
        """0 low, 1 middle, 2 high class; -1 where the score is missing."""
        s = np.asarray(scores, dtype=np.float64)
        out = np.where(s >= self.cuts[1], 2, np.where(s >= self.cuts[0], 1, 0))
        return np.where(np.isnan(s), -1, out)

    def class_probabilities(self, dist: np.ndarray) -> np.ndarray:
        """(n, 3) class probabilities of (n, scores) score distributions."""
        a, b = self.cuts[0] - self.low, self.cuts[1] - self.low
        return np.column_stack([dist[:, :a].sum(1), dist[:, a:b].sum(1), dist[:, b:].sum(1)])

    def answer_values(self, scores) -> np.ndarray:
        """Each answer's share of the company figure (NaN where missing)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.name != "nps":
            return s
        c = self.classify(s)
        return np.where(c < 0, np.nan, (c == 2).astype(float) - (c == 0).astype(float))

    def expected_values(self, dist: np.ndarray) -> np.ndarray:
        """Each row's expected share of the company figure under its score distribution."""
        if self.name != "nps":
            return row_means(dist, self.scores)
        probs = self.class_probabilities(dist)
        return probs[:, 2] - probs[:, 0]

    @property
    def code(self) -> str:
        """How the API and the scoring run's metadata name the scale: ``nps_0_10``, ``csat_1_5``."""
        return f"{self.name}_{self.low}_{self.high}"

    @property
    def title(self) -> str:
        """The score's name for people (``NPS``, ``CSAT``), with its range where it is shown."""
        return self.name.upper()

    @property
    def factor(self) -> float:
        """Company figure = factor x mean row value (NPS is in points of -100..100)."""
        return 100.0 if self.name == "nps" else 1.0

    def of_scores(self, scores) -> float:
        """The company figure of observed answers (NaN without any)."""
        v = self.answer_values(scores)
        v = v[~np.isnan(v)]
        return float(self.factor * v.mean()) if len(v) else float("nan")


NPS = Scale("nps", 0, 10, ("detractor", "passive", "promoter"), (7, 9), "NPS")
CSAT = Scale("csat", 1, 5, ("dissatisfied", "neutral", "satisfied"), (3, 4), "mean CSAT")
SCALES = {s.name: s for s in (NPS, CSAT)}
SCALE_CODES = {s.code: s for s in SCALES.values()}


def model_scale(model) -> Scale:
    """The scale a satisfaction model predicts; NPS without a model (or for one pickled
    before CSAT support). Scoring, its run metadata and the service all read it here."""
    return getattr(model, "scale", NPS) if model is not None else NPS


def bundle_scale(bundle) -> Scale:
    """The scale of a champion bundle's satisfaction model (``models.bundle.ModelBundle.nps``)."""
    return model_scale(getattr(bundle, "nps", None))


def scale_from_code(code: str | None) -> Scale:
    """The scale of a stored code (``Scale.code``); NPS for runs written before it was stored."""
    return SCALE_CODES.get(code or "", NPS)


def scale_of(dist: np.ndarray) -> Scale:
    """The scale of score distributions, by their width (11 scores NPS, 5 CSAT)."""
    width = np.shape(dist)[1]
    for s in SCALES.values():
        if len(s.scores) == width:
            return s
    raise ValueError(f"no satisfaction scale has {width} scores")


def frame_scale(frame: pd.DataFrame) -> Scale:
    """The scale of an invitation frame: the one whose answer column it carries."""
    for s in SCALES.values():
        if s.name in frame.columns:
            return s
    raise ValueError(f"the invitation frame has no answer column ({', '.join(SCALES)})")


def answered_counts(responses: pd.DataFrame) -> dict[str, int]:
    """How many responses carry an answer on each scale."""
    return {name: int(pd.to_numeric(responses[name], errors="coerce").notna().sum())
            if name in responses.columns else 0 for name in SCALES}


def choose_scale(responses: pd.DataFrame, setting: str = AUTO) -> Scale:
    """NPS when the responses carry NPS answers, else CSAT; ``setting`` forces one."""
    if setting != AUTO:
        if setting not in SCALES:
            raise ValueError(f"train.satisfaction_scale: {setting!r} is not one of "
                             f"{AUTO}, {', '.join(SCALES)}")
        return SCALES[setting]
    return NPS if answered_counts(responses)["nps"] > 0 else CSAT
