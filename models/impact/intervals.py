"""Estimators and their delta-method intervals: treated vs hold-out churn, and a slice's value.

Plain functions on arrays. A group's churn rate is a Hajek (self-normalised) weighted mean
with weights 1 / P(the row's observed assignment); with equal weights it is the plain
mean, and its sandwich variance is the textbook p (1 - p) / n. Intervals are normal (90 %
by default): with the minimum counts below the normal approximation holds well enough
(tested for coverage on synthetic plans).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

Z90 = 1.6448536269514722   # two-sided 90 %
MIN_ROWS = 30              # per group: fewer rows and the estimate is "not enough data"
MIN_EVENTS = 5             # churners in both groups together
NOT_ENOUGH = "not enough data"
OK = "ok"


@dataclass(frozen=True)
class Estimate:
    """A difference (first group minus second) with its interval; NaN when not enough data."""

    estimate: float
    se: float
    lo: float
    hi: float
    n1: int
    n0: int
    mean1: float
    mean0: float
    status: str

    def as_dict(self) -> dict:
        return asdict(self)


def clustered_variance(influence: np.ndarray, clusters=None) -> float:
    """Sum over clusters of the squared summed influence: rows of one customer (the same
    customer in several cycles, their outcome windows overlapping) count as one draw."""
    influence = np.asarray(influence, dtype=float)
    if clusters is None:
        return float((influence**2).sum())
    sums = pd.Series(influence).groupby(np.asarray(clusters), sort=False).sum().to_numpy()
    return float((sums**2).sum())


def hajek_mean(y: np.ndarray, w: np.ndarray | None = None, clusters=None) -> tuple[float, float]:
    """Weighted mean sum(w y) / sum(w) and its linearised (sandwich) variance.

    Var = sum(w^2 (y - mean)^2) / sum(w)^2 (rows summed within a cluster first); with w = 1 and
    no clusters it is sum((y - p)^2) / n^2 = p (1 - p) / n.
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    total = w.sum()
    if len(y) == 0 or total <= 0:
        return math.nan, math.nan
    mean = float((w * y).sum() / total)
    return mean, clustered_variance(w * (y - mean) / total, clusters)


def weights(probability: np.ndarray | None, n: int) -> np.ndarray | None:
    """Inverse-probability weights when every row's assignment probability is known, else None."""
    if probability is None:
        return None
    p = np.asarray(probability, dtype=float)
    if len(p) != n or not np.all(np.isfinite(p) & (p > 0)):
        return None
    return 1.0 / p


def difference(y1, y0, p1=None, p0=None, z: float = Z90, min_rows: int = MIN_ROWS,
               min_events: int = MIN_EVENTS, c1=None, c0=None) -> Estimate:
    """Churn of treated (``y1``) minus churn of hold-out (``y0``), negative = fewer churners.

    With assignment probabilities for every row of both groups (``p1``, ``p0``) each group's
    rate is a Hajek IPW mean; otherwise the plain difference of means (equal weights). The two
    groups are independent draws, so the variances add (delta method for a difference).
    ``c1`` / ``c0``: each row's customer, when a customer may have several rows (cumulative).
    """
    y1, y0 = np.asarray(y1, dtype=float), np.asarray(y0, dtype=float)
    w1, w0 = weights(p1, len(y1)), weights(p0, len(y0))
    if w1 is None or w0 is None:
        w1 = w0 = None
    n1, n0 = len(y1), len(y0)
    if n1 < min_rows or n0 < min_rows or y1.sum() + y0.sum() < min_events:
        m1 = float(y1.mean()) if n1 else math.nan
        m0 = float(y0.mean()) if n0 else math.nan
        return Estimate(math.nan, math.nan, math.nan, math.nan, n1, n0, m1, m0, NOT_ENOUGH)
    m1, v1 = hajek_mean(y1, w1, c1)
    m0, v0 = hajek_mean(y0, w0, c0)
    se = math.sqrt(v1 + v0)
    d = m1 - m0
    return Estimate(d, se, d - z * se, d + z * se, n1, n0, m1, m0, OK)


def slice_value(y_slice, cost_slice, value_slice, y_control, value_control, z: float = Z90,
                min_rows: int = MIN_ROWS, min_events: int = MIN_EVENTS, c_slice=None,
                c_control=None) -> Estimate:
    """Value per customer of a slice against the no-action slice, with a delta-method interval.

    V = -(p_s - p_0) x m - c_s, where p are churn rates, m the mean value at risk of the two
    slices together and c_s the slice's mean action cost per customer (the no-action slice
    spends nothing). Per customer of the slice the term is -(m y + c), so the covariance of
    churn and cost is kept; the uncertainty of m enters through (p_s - p_0)^2 Var(m).
    ``mean1`` / ``mean0`` carry the two churn rates; ``c_slice`` / ``c_control`` the rows'
    customers (a customer stays in a slice from cycle to cycle).
    """
    y1, c1 = np.asarray(y_slice, dtype=float), np.asarray(cost_slice, dtype=float)
    v1, v0 = np.asarray(value_slice, dtype=float), np.asarray(value_control, dtype=float)
    y0 = np.asarray(y_control, dtype=float)
    n1, n0 = len(y1), len(y0)
    p1 = float(y1.mean()) if n1 else math.nan
    p0 = float(y0.mean()) if n0 else math.nan
    if n1 < min_rows or n0 < min_rows or y1.sum() + y0.sum() < min_events:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n1, n0, p1, p0, NOT_ENOUGH)
    values = np.concatenate([v1, v0])
    m = float(values.mean())
    var_m = float(values.var(ddof=1) / len(values)) if len(values) > 1 else 0.0
    per1 = m * y1 + c1
    estimate = -(p1 - p0) * m - float(c1.mean())
    var = (clustered_variance((per1 - per1.mean()) / n1, c_slice)
           + clustered_variance(m * (y0 - p0) / n0, c_control) + (p1 - p0) ** 2 * var_m)
    se = math.sqrt(max(var, 0.0))
    return Estimate(estimate, se, estimate - z * se, estimate + z * se, n1, n0, p1, p0, OK)
