"""The champion models the scorer uses, loaded together with their versions.

Batch scoring and the service both score with a ``ModelBundle``: the MLflow registry's
``champion`` of each model (churn, nps, uplift) plus the action catalogue, so every
row written can name the exact model versions behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from configs.settings import Settings
from features.services import CHURN_SERVICE
from models import registry
from models.prescribe import Catalogue, load_catalogue

MODEL_NAMES = ("churn", "nps", "uplift")
FEATURE_SERVICE = CHURN_SERVICE  # the widest FeatureService: every model's features are in it


@dataclass
class ModelBundle:
    churn: Any
    nps: Any
    uplift: Any
    catalogue: Catalogue
    versions: dict[str, str]
    feature_service: str = FEATURE_SERVICE

    @property
    def features(self) -> list[str]:
        """Feature columns any of the models reads (the scorer's input contract)."""
        names = list(self.churn.spec.features)
        for extra in (self.nps.spec.features, self.uplift.features):
            names += [f for f in extra if f not in names and f != "touchpoint"]
        return names


def load_champions(settings: Settings, alias: str = registry.CHAMPION) -> ModelBundle:
    """Every model's ``alias`` version from the registry; raises if one is missing."""
    loaded = {name: registry.load_alias(name, settings, alias) for name in MODEL_NAMES}
    return ModelBundle(
        churn=loaded["churn"][0], nps=loaded["nps"][0], uplift=loaded["uplift"][0],
        catalogue=load_catalogue(settings.prescribe.actions_file),
        versions={name: version for name, (_, version) in loaded.items()},
    )
