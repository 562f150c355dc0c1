"""Next-best-action prescriptions: catalogue, expected value, arbitration and tags."""

from models.prescribe.actions import Action, Catalogue, CatalogueError, eligibility, load_catalogue
from models.prescribe.arbitration import arbitrate, rep_lists
from models.prescribe.plan_frames import SKIP_REASONS, Plan
from models.prescribe.value import candidate_actions, expected_value, value_at_risk

__all__ = [
    "Action", "Catalogue", "CatalogueError", "Plan", "SKIP_REASONS", "arbitrate", "candidate_actions",
    "eligibility", "expected_value", "load_catalogue", "rep_lists", "value_at_risk",
]
