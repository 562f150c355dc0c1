"""Uplift metrics on held-out randomized data: Qini and uplift curves, their areas, uplift at k.

Conventions of Radcliffe 2007 and scikit-uplift (``y`` the outcome to raise, ``score`` the
predicted uplift, ties entering together), so figures compare.
Definitions: docs/models.md#uplift-metrics
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _arrays(y, treatment, score, weight=None):
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(treatment).astype(np.int64)
    s = np.asarray(score, dtype=np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (len(y) == len(t) == len(s) == len(w)):
        raise ValueError(f"lengths differ: y {len(y)}, treatment {len(t)}, score {len(s)}, "
                         f"weight {len(w)}")
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("treatment must be 0 (control) or 1 (treated)")
    if np.isnan(s).any():
        raise ValueError("score holds NaN")
    return y, t, s, w


def _cumulative(y, t, s, w) -> dict[str, np.ndarray]:
    """Cumulative weighted counts at each distinct score threshold, best first, from 0."""
    order = np.argsort(-s, kind="stable")
    y, t, s, w = y[order], t[order], s[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]     # end of each tie block
    cum = lambda v: np.r_[0.0, np.cumsum(v)[last]]           # noqa: E731
    return {"n": cum(w), "n_t": cum(w * t), "n_c": cum(w * (1 - t)),
            "y_t": cum(w * y * t), "y_c": cum(w * y * (1 - t))}


def _curves(y, t, s, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(share, qini, uplift) arrays, both curves per customer (the work behind every figure)."""
    c = _cumulative(y, t, s, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(c["n_c"] > 0, c["y_t"] - c["y_c"] * c["n_t"] / c["n_c"], c["y_t"])
        lift = np.where((c["n_t"] > 0) & (c["n_c"] > 0),
                        (c["y_t"] / c["n_t"] - c["y_c"] / c["n_c"]) * c["n"], 0.0)
    total = c["n"][-1]
    return c["n"] / total, qini / total, lift / total


def qini_curve(y, treatment, score, weight=None) -> pd.DataFrame:
    """Columns ``share`` (x), ``qini`` and ``uplift`` (both per customer), one row per threshold."""
    share, qini, lift = _curves(*_arrays(y, treatment, score, weight))
    return pd.DataFrame({"share": share, "qini": qini, "uplift": lift})


def _area_over_random(x: np.ndarray, v: np.ndarray) -> float:
    """Trapezoid area under the curve minus the area under the straight line to its end."""
    return float(np.trapezoid(v, x) - v[-1] / 2.0)


def qini_area(y, treatment, score, weight=None) -> float:
    """Area between the Qini curve and random targeting (extra outcomes per customer)."""
    share, qini, _ = _curves(*_arrays(y, treatment, score, weight))
    return _area_over_random(share, qini)


def auuc(y, treatment, score, weight=None) -> float:
    """Area between the uplift curve and random targeting (per customer)."""
    share, _, lift = _curves(*_arrays(y, treatment, score, weight))
    return _area_over_random(share, lift)


def perfect_score(y, treatment) -> np.ndarray:
    """The ranking that knows the outcomes: treated responders first, control responders last."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(treatment).astype(np.float64)
    return y * t - y * (1 - t)


def qini_normalized(y, treatment, score, weight=None) -> float:
    """Qini area as a share of the perfect ranking's (1 = perfect, 0 = random); NaN if undefined."""
    best = qini_area(y, treatment, perfect_score(y, treatment), weight)
    return qini_area(y, treatment, score, weight) / best if best > 0 else float("nan")


def uplift_at_k(y, treatment, score, k: float = 0.3, strategy: str = "overall") -> float:
    """Treated minus control mean outcome among the top ``k`` share ranked by ``score``.

    ``overall``: the top ``int(k * N)`` rows of everyone (the Hillstrom figure;
    scikit-uplift's default); ``by_group``: the top ``k`` of treated and of controls
    ranked separately. NaN when a group has no row in the top.
    """
    if not 0 < k < 1:
        raise ValueError(f"k must be in (0, 1), got {k}")
    y, t, s, _ = _arrays(y, treatment, score)
    if strategy == "overall":
        top = np.argsort(-s, kind="stable")[: int(len(s) * k)]
        yt, yc = y[top][t[top] == 1], y[top][t[top] == 0]
    elif strategy == "by_group":
        pick = lambda m: y[m][np.argsort(-s[m], kind="stable")[: int(m.sum() * k)]]  # noqa: E731
        yt, yc = pick(t == 1), pick(t == 0)
    else:
        raise ValueError(f"unknown strategy {strategy!r} (overall | by_group)")
    if len(yt) == 0 or len(yc) == 0:
        return float("nan")
    return float(yt.mean() - yc.mean())


def uplift_metrics(y, treatment, score, k: float = 0.3) -> dict[str, float]:
    """The held-out figures of one action: Qini and uplift areas, normalized Qini, uplift at k."""
    y, t, s, _ = _arrays(y, treatment, score)
    return {
        "qini": qini_area(y, t, s), "qini_normalized": qini_normalized(y, t, s),
        "auuc": auuc(y, t, s), f"uplift_at_{int(round(k * 100))}": uplift_at_k(y, t, s, k),
        "ate": float(y[t == 1].mean() - y[t == 0].mean()) if 0 < t.sum() < len(t) else float("nan"),
        "rows": float(len(y)), "treated": float(t.sum()),
    }


def qini_interval(y, treatment, score, groups=None, n_boot: int = 200, seed: int = 0,
                  level: float = 0.9) -> tuple[float, float]:
    """Bootstrap interval of the Qini area, resampling whole ``groups`` (e.g. customers).

    Poisson(1) weights per group: each draw is a resample with replacement of the
    groups, so a customer's several rows stay together. With a few dozen events per
    action the interval is wide; it says whether a Qini is distinguishable from 0.
    """
    y, t, s, _ = _arrays(y, treatment, score)
    codes = np.arange(len(y)) if groups is None else pd.factorize(np.asarray(groups))[0]
    rng = np.random.default_rng(seed)
    draws = [qini_area(y, t, s, rng.poisson(1.0, codes.max() + 1)[codes]) for _ in range(n_boot)]
    lo, hi = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
