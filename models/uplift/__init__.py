"""Uplift of retention actions: the programme's data, learners, selection, metrics, the
training run, evaluation against the world's true effects, and plots.

The model classes are re-exported: models registered before this package existed were
pickled as ``models.uplift.<class>`` and must keep loading (``models.legacy``).
"""

from models.uplift.model import ArmModel, OutcomeModel, RiskPrior, UpliftModel

__all__ = ["ArmModel", "OutcomeModel", "RiskPrior", "UpliftModel"]
