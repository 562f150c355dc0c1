"""Figures of the predicted-satisfaction report: predicted against actual scores, and the
company figure (NPS or mean CSAT) per wave with its interval beside the respondents-only one.

Agg canvas like ``models.churn.plots``: no display needed, no pyplot global state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.figures import titled_figure
from models.nps.scale import NPS, Scale


def predicted_vs_actual_figure(pairs: pd.DataFrame, title: str) -> Figure:
    """Mean actual answer per predicted-score bin (with the bin's share of customers as
    marker area) against the diagonal; the legend gives the MAE and the mean bias."""
    fig, ax = titled_figure(title)
    pred, actual = pairs["nps_pred"].to_numpy(), pairs["actual"].to_numpy()
    edges = np.linspace(0, 10, 21)
    which = np.clip(np.digitize(pred, edges) - 1, 0, len(edges) - 2)
    table = pd.DataFrame({"bin": which, "pred": pred, "actual": actual}).groupby("bin").agg(
        pred=("pred", "mean"), actual=("actual", "mean"), n=("pred", "size"))
    mae, bias = float(np.abs(pred - actual).mean()), float((pred - actual).mean())
    ax.plot(table["pred"], table["actual"], marker=None, label=f"MAE {mae:.2f}, bias {bias:+.2f}")
    ax.scatter(table["pred"], table["actual"], s=8 + 300 * np.sqrt(table["n"] / table["n"].sum()),
               zorder=3)
    ax.plot([0, 10], [0, 10], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.set_xlabel("predicted score (0-10)")
    ax.set_ylabel("mean score the customers would have given")
    ax.legend(loc="upper left")
    return fig


def wave_nps_figure(table: pd.DataFrame, title: str | None = None, scale: Scale = NPS) -> Figure:
    """Company figure on ``scale`` (NPS or mean CSAT: every invitee, with its interval) and
    the respondents-only figure per wave; with a ``true_nps`` column (the simulated world)
    the true NPS too. Takes ``wave_nps`` or ``period_nps`` output (a ``period`` column: the
    x axis is then the periods of transactional surveys) or the evaluation table."""
    key = "period" if "period" in table else "survey_id"
    per = "period" if key == "period" else "relationship wave"
    fig, ax = titled_figure(title or f"Company {scale.label} per {per}")
    x = np.arange(len(table))
    est = table["company_nps" if "company_nps" in table else scale.name].to_numpy()
    ax.errorbar(x, est, yerr=[est - table["low"].to_numpy(), table["high"].to_numpy() - est],
                fmt="o", capsize=4, label=f"company {scale.label} (everyone, 90 % interval)")
    ax.plot(x, table[f"respondents_{scale.name}"], "s", label="respondents only")
    if "true_nps" in table:
        ax.plot(x, table["true_nps"], "x", color="black", markersize=9, label="true NPS (simulation)")
    ax.set_xticks(x, [str(s) for s in table[key]], rotation=20, fontsize=7 if key == "period" else None)
    ax.set_xlabel("period (transactional surveys)" if key == "period" else "relationship wave")
    ax.set_ylabel(scale.label)
    if scale is NPS:
        ax.axhline(0, color="grey", linewidth=0.5)
    ax.legend(loc="best", fontsize=8)
    return fig
