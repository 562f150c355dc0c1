"""Predicted satisfaction (NPS, or CSAT 1-5 where a company asks CSAT only) for
non-respondents: data, answer scales, boosters, selection correction, company figure,
the model, its training run, evaluation against the world's hidden answers, and plots.

The model classes are re-exported: models registered before this package existed were
pickled as ``models.nps.<class>`` and must keep loading (``models.legacy``).
"""

from models.nps.company import CompanyNps
from models.nps.model import NpsModel
from models.nps.selection import SelectionGap

__all__ = ["CompanyNps", "NpsModel", "SelectionGap"]
