"""Population key drivers: which business concepts move the scores, across all customers.

A concept's SHAP value for a customer is the sum of its features' values (exact, SHAP
is additive), so its mean absolute value is what the concept moves a score by on
average, ``share`` its part of all the movement, and ``direction`` the mean signed
value (above zero: on average the concept raises the score). Summing before taking
the absolute value matters: one-hot columns and related features that offset each
other for a customer do not count twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .concepts import CONCEPTS, concept_of
from .explain import concept_groups, feature_contributions

RAISES, LOWERS = "#c0392b", "#2471a3"


def _table(values: np.ndarray, names: list[str], key: str) -> pd.DataFrame:
    mean_abs = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(names))
    signed = values.mean(axis=0) if len(values) else np.zeros(len(names))
    total = mean_abs.sum()
    share = mean_abs / total if total > 0 else np.zeros(len(names))
    df = pd.DataFrame({key: names, "mean_abs_shap": mean_abs, "share": share, "direction": signed})
    return df.sort_values(["mean_abs_shap", key], ascending=[False, True], kind="stable") \
        .reset_index(drop=True)


def key_drivers(contributions: np.ndarray, feature_names: list[str]) -> pd.DataFrame:
    """One row per concept: ``concept``, ``label``, ``mean_abs_shap``, ``share`` (sums to 1),
    ``direction`` (mean signed contribution), ``n_features``; strongest first."""
    phi = feature_contributions(contributions, feature_names)
    groups = concept_groups(feature_names)
    df = _table(phi @ groups.matrix, list(groups.keys), "concept")
    sizes = {k: len(m) for k, m in zip(groups.keys, groups.members, strict=True)}
    df.insert(1, "label", [CONCEPTS[k].label for k in df["concept"]])
    df["n_features"] = [sizes[k] for k in df["concept"]]
    return df


def feature_importance(contributions: np.ndarray, feature_names: list[str]) -> pd.DataFrame:
    """One row per feature: ``feature``, ``concept``, ``mean_abs_shap``, ``share``,
    ``direction``; strongest first."""
    phi = feature_contributions(contributions, feature_names)
    df = _table(phi, list(feature_names), "feature")
    df.insert(1, "concept", [concept_of(f) for f in df["feature"]])
    return df


def driver_figure(df: pd.DataFrame, title: str = "Key drivers", top: int | None = None) -> Figure:
    """Horizontal bars of ``mean_abs_shap`` per concept (strongest on top), red where the
    concept raises the score on average, blue where it lowers it. Agg canvas: no display."""
    rows = df.sort_values("mean_abs_shap", ascending=False).head(top if top else len(df))
    names = rows["label"] if "label" in rows else rows.iloc[:, 0]
    fig = Figure(figsize=(7.5, 0.45 * len(rows) + 1.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = [RAISES if d > 0 else LOWERS for d in rows["direction"]]
    y = np.arange(len(rows))[::-1]
    ax.barh(y, rows["mean_abs_shap"], color=colors)
    ax.set_yticks(y, [str(n) for n in names])
    for yi, value, share in zip(y, rows["mean_abs_shap"], rows["share"], strict=True):
        ax.text(value, yi, f"  {100 * share:.0f} %", va="center", fontsize=8)
    ax.legend(handles=[Patch(color=RAISES, label="raises the score on average"),
                       Patch(color=LOWERS, label="lowers the score on average")],
              loc="lower right", fontsize=8, frameon=False)
    ax.set_xlabel("mean |SHAP| (score units)")
    ax.set_title(title)
    ax.margins(x=0.15)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
