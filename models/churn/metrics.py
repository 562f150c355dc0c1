"""Metrics of a probabilistic churn classifier: ranking, probability quality and lift.

Retention teams act on the top of a ranked list and on the probabilities themselves
(expected saves = sum of P(churn) x effect), so a churn model is judged on both:
ranking (ROC AUC, PR AUC, top-decile lift and capture) and calibration (Brier, log
loss, expected calibration error). scikit-learn computes what it has; the rest is here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

_EPS = 1e-15


def _as_arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 floats and probabilities as floats, same length, no NaN."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length: {y.size} vs {p.size}")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if np.isnan(p).any() or np.isnan(y).any():
        raise ValueError("y or p contains NaN")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1")
    return y, p


def calibration_bins(y, p, bins: int = 10) -> pd.DataFrame:
    """Equal-width bins on [0, 1]: rows, mean predicted and observed rate of each non-empty bin.

    The reliability diagram and the ECE read the same table, so they always agree.
    A probability of exactly 1 falls in the last bin.
    """
    y, p = _as_arrays(y, p)
    idx = np.clip(np.floor(p * bins).astype(int), 0, bins - 1)
    table = pd.DataFrame({"bin": idx, "y": y, "p": p}).groupby("bin").agg(
        n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    table["lower"] = table.index / bins
    table["upper"] = (table.index + 1) / bins
    return table.reset_index()


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """Sum over equal-width bins of (bin share of rows) x |observed rate - mean predicted|.

    Zero when, within every bin, the predicted probability matches the churn rate.
    """
    table = calibration_bins(y, p, bins)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


def lift_table(y, p, groups: int = 10) -> pd.DataFrame:
    """Customers ranked by score and cut into ``groups`` equal groups (group 1 = riskiest).

    Columns: n, share_customers, min_score, mean_score, churners, churn_rate, lift
    (churn rate / base rate), cumulative_share and cumulative_capture (share of all
    churners found by targeting this group and the ones above it). Ties are broken by
    row order (stable sort), so the table is deterministic; group sizes differ by <= 1.
    """
    y, p = _as_arrays(y, p)
    if groups < 1 or groups > y.size:
        raise ValueError(f"groups must be in [1, {y.size}], got {groups}")
    order = np.argsort(-p, kind="stable")
    rows = []
    for g, idx in enumerate(np.array_split(order, groups), start=1):
        rows.append({"group": g, "n": idx.size, "min_score": p[idx].min(),
                     "mean_score": p[idx].mean(), "churners": y[idx].sum()})
    table = pd.DataFrame(rows)
    base_rate = y.mean()
    table["share_customers"] = table["n"] / y.size
    table["churn_rate"] = table["churners"] / table["n"]
    table["lift"] = table["churn_rate"] / base_rate if base_rate > 0 else np.nan
    table["cumulative_share"] = table["n"].cumsum() / y.size
    total = y.sum()
    table["cumulative_capture"] = table["churners"].cumsum() / total if total > 0 else np.nan
    return table[["group", "n", "share_customers", "min_score", "mean_score", "churners",
                  "churn_rate", "lift", "cumulative_share", "cumulative_capture"]]


def classification_metrics(y, p) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier, log loss, ECE, top-decile lift/capture.

    AUC-type metrics are NaN when only one class is present (they are undefined then);
    the others still describe the probabilities.
    """
    y, p = _as_arrays(y, p)
    both = 0 < y.sum() < y.size
    top = lift_table(y, p, groups=min(10, y.size)).iloc[0]
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": float(top["lift"]),
        "capture_top_decile": float(top["cumulative_capture"]),
        "base_rate": float(y.mean()),
        "n": int(y.size),
    }
