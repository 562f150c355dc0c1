"""The churn model (``model``), its training run (``train``), metrics and plots.

The model classes are re-exported: models registered before this package existed were
pickled as ``models.churn.<class>`` and must keep loading (``models.legacy``).
"""

from models.churn.model import BaselineModel, CenteredIsotonic, ChurnModel

__all__ = ["BaselineModel", "CenteredIsotonic", "ChurnModel"]
