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

from .concepts import concept_of
from .concepts.attributes import ATTRIBUTES, attribute_base, attribute_label
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


def driver_groups(feature_names: list[str],
                  attributes: dict | None = None) -> tuple[list[str], list[str], list[list[int]]]:
    """Concept key, label and member columns of each driver row: one per concept, except
    that each of the company's attributes is a row of its own (concept "attributes",
    labelled with the mapping's label), so key drivers name "Contract type", not the
    whole group."""
    groups = concept_groups(feature_names)
    rows: list[tuple[str, str, list[int]]] = []
    for key, label, cols in zip(groups.keys, groups.labels, groups.members, strict=True):
        if key != ATTRIBUTES:
            rows.append((key, label, [int(j) for j in cols]))
            continue
        by_attribute: dict[str, list[int]] = {}
        for j in cols:
            by_attribute.setdefault(attribute_base(feature_names[j]), []).append(int(j))
        rows += [(key, attribute_label(base, attributes), js) for base, js in by_attribute.items()]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def key_drivers(contributions: np.ndarray, feature_names: list[str],
                attributes: dict | None = None) -> pd.DataFrame:
    """One row per concept: ``concept``, ``label``, ``mean_abs_shap``, ``share`` (sums to 1),
    ``direction`` (mean signed contribution), ``n_features``; strongest first. Each company
    attribute is a row (``attributes``: their labels, ``FrameSpec.attributes``)."""
    phi = feature_contributions(contributions, feature_names)
    keys, labels, members = driver_groups(list(feature_names), attributes)
    matrix = np.zeros((len(feature_names), len(keys)))
    for j, cols in enumerate(members):
        matrix[cols, j] = 1.0
    df = _table(phi @ matrix, list(range(len(keys))), "row")
    df.insert(0, "concept", [keys[i] for i in df["row"]])
    df.insert(1, "label", [labels[i] for i in df["row"]])
    df["n_features"] = [len(members[i]) for i in df["row"]]
    df = df.sort_values(["mean_abs_shap", "concept", "label"], ascending=[False, True, True],
                        kind="stable")
    return df.drop(columns="row").reset_index(drop=True)


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
