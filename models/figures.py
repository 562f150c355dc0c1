"""Report figures without a display: matplotlib ``Figure`` objects on the Agg canvas, never
pyplot's global state (no figure leaks across runs). Saving or logging them is the caller's."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def titled_figure(title: str, size: tuple[float, float] = (6, 5)) -> tuple[Figure, object]:
    """A single-axes figure attached to an Agg canvas, with its title set."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax
