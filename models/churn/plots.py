"""Figures of the churn report: ROC curves, reliability diagram, cumulative capture.

Each builder takes ``{model name: (y, p)}`` (``ChurnResult.predictions``) and returns a
matplotlib ``Figure`` built on the Agg canvas, so it works on servers without a
display and never touches pyplot's global state (no figure leaks across runs).
Saving or logging the figure is the caller's business.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from models.churn.metrics import calibration_bins, expected_calibration_error, lift_table
from models.figures import titled_figure

Curves = dict[str, tuple[np.ndarray, np.ndarray]]
OUT_OF_TIME = "out-of-time validation"


def roc_figure(curves: Curves, scheme: str = OUT_OF_TIME) -> Figure:
    """ROC curve of each model with its AUC in the legend, and the chance diagonal."""
    fig, ax = titled_figure(f"ROC, {scheme}")
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    return fig


def calibration_figure(curves: Curves, bins: int = 10, scheme: str = OUT_OF_TIME) -> Figure:
    """Reliability diagram: observed churn rate against mean predicted probability per bin.

    Points sit on the diagonal when the model is calibrated; their area grows with the
    bin's rows (sparse top bins are noisy); the legend gives the ECE of the same bins.
    Axes stop at the largest probability seen: churn probabilities crowd near 0.
    """
    fig, ax = titled_figure(f"Calibration, {scheme}")
    top = 0.0
    for name, (y, p) in curves.items():
        table = calibration_bins(y, p, bins)
        ece = expected_calibration_error(y, p, bins)
        line, = ax.plot(table["mean_predicted"], table["observed_rate"], label=f"{name} (ECE {ece:.3f})")
        ax.scatter(table["mean_predicted"], table["observed_rate"], color=line.get_color(),
                   s=8 + 200 * np.sqrt(table["n"] / table["n"].sum()), zorder=3)
        top = max(top, float(table["mean_predicted"].max()), float(table["observed_rate"].max()))
    top = min(1.0, top * 1.05 + 0.01)
    ax.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted P(churn)")
    ax.set_ylabel("observed churn rate")
    ax.legend(loc="upper left")
    return fig


def lift_figure(curves: Curves, groups: int = 10, scheme: str = OUT_OF_TIME) -> Figure:
    """Cumulative capture (gains) curve: share of churners found when targeting the top x %."""
    fig, ax = titled_figure(f"Cumulative capture, {scheme}")
    for name, (y, p) in curves.items():
        table = lift_table(y, p, groups)
        share = np.r_[0.0, table["cumulative_share"].to_numpy()]
        capture = np.r_[0.0, table["cumulative_capture"].to_numpy()]
        ax.plot(share, capture, marker="o",
                label=f"{name} (top-decile lift {table['lift'].iloc[0]:.2f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="random")
    ax.set_xlabel("share of customers targeted (riskiest first)")
    ax.set_ylabel("share of churners captured")
    ax.legend(loc="lower right")
    return fig
