"""Predicted NPS for non-respondents: data, boosters, selection correction, company NPS,
the model, its training run, evaluation against the world's hidden answers, and plots.

The model classes are re-exported: models registered before this package existed were
pickled as ``models.nps.<class>`` and must keep loading (``models.legacy``).
"""

from models.nps.company import CompanyNps
from models.nps.model import NpsModel
from models.nps.selection import SelectionGap

__all__ = ["CompanyNps", "NpsModel", "SelectionGap"]
