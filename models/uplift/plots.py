"""Figure of the uplift report: held-out Qini curves, one per action.

Same conventions as ``models.churn.plots``: a matplotlib ``Figure`` on the Agg canvas, no
pyplot state; logging or saving it is the caller's business.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from models.figures import titled_figure
from models.uplift.metrics import qini_area, qini_curve

Arms = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]   # action -> (y, treatment, score)


def qini_figure(arms: Arms, title: str = "Qini curves, held-out customers") -> Figure:
    """Each action's Qini curve (extra retained customers per customer targeted) and its random line.

    A curve above its dashed line means that customers ranked first by the model gain
    more from the action than customers taken at random.
    """
    fig, ax = titled_figure(title)
    for action, (y, t, score) in arms.items():
        curve = qini_curve(y, t, score)
        x, q = curve["share"].to_numpy(), curve["qini"].to_numpy()
        line, = ax.plot(x, q, label=f"{action} (Qini {qini_area(y, t, score):+.4f})")
        ax.plot([0, 1], [0, q[-1]], linestyle="--", linewidth=1, color=line.get_color())
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of the action's customers targeted (largest estimated benefit first)")
    ax.set_ylabel("extra retained customers per customer")
    ax.legend(loc="best", fontsize=8)
    return fig
