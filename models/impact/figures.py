"""The impact plot: measured effect per cycle with its 90 % interval, as PNG bytes.

Rendered server-side by matplotlib (Agg) once per report and saved beside it; the manager's
page embeds it as a ``data:`` image, which its Content-Security-Policy allows (an SVG's inline
styles would not be), and loads nothing from elsewhere.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from models.impact.intervals import OK  # noqa: E402


def effects_png(effects: pd.DataFrame) -> bytes:
    """Treated minus hold-out churn (percentage points) per cycle: all actions in black, each
    action beside it; bars are 90 % intervals. Cycles without enough data are not drawn."""
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    cycles = effects[(effects["scope"] == "cycle") & (effects["status"] == OK)]
    actions = sorted(a for a in cycles["action"].unique() if a != "all")
    series = ["all", *actions]
    width = 0.8 / max(len(series), 1)
    for i, action in enumerate(series):
        part = cycles[cycles["action"] == action]
        if part.empty:
            continue
        x = part["cycle"].astype(float).to_numpy() - 0.4 + (i + 0.5) * width
        y = 100 * part["effect"].to_numpy()
        err = [y - 100 * part["lo90"].to_numpy(), 100 * part["hi90"].to_numpy() - y]
        style = {"color": "black", "fmt": "s", "markersize": 6} if action == "all" else \
            {"fmt": "o", "markersize": 4, "alpha": 0.8}
        ax.errorbar(x, y, yerr=err, capsize=2, linewidth=1, label=action.replace("_", " "), **style)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("cycle (scoring run)")
    ax.set_ylabel("churn: treated - hold-out (pp)")
    if len(cycles):
        ticks = cycles.drop_duplicates("cycle").sort_values("cycle")
        ax.set_xticks(ticks["cycle"].astype(int).to_numpy(),
                      [f"{int(c)}\n{pd.Timestamp(d):%Y-%m-%d}" if pd.notna(d) else str(int(c))
                       for c, d in zip(ticks["cycle"], ticks["as_of"], strict=True)], fontsize=8)
        ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.32), frameon=False)
    else:
        ax.text(0.5, 0.5, "no matured cycle with enough data yet", ha="center", va="center",
                transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
