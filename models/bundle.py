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
REQUIRED = ("churn",)   # every customer gets a churn score; the others need surveys / a programme
FEATURE_SERVICE = CHURN_SERVICE  # the widest FeatureService: every model's features are in it


@dataclass
class ModelBundle:
    """``nps`` is None when the data has no surveys, ``uplift`` when it has no randomized
    interventions: the scorer then leaves those columns empty and plans no action."""

    churn: Any
    nps: Any | None
    uplift: Any | None
    catalogue: Catalogue
    versions: dict[str, str]
    feature_service: str = FEATURE_SERVICE

    @property
    def features(self) -> list[str]:
        """Feature columns any of the models reads (the scorer's input contract)."""
        names = list(self.churn.spec.features)
        extras = [m for m in (self.nps and self.nps.spec.features, self.uplift and self.uplift.features) if m]
        for extra in extras:
            names += [f for f in extra if f not in names and f != "touchpoint"]
        return names


def load_champions(settings: Settings, alias: str = registry.CHAMPION) -> ModelBundle:
    """Every model's ``alias`` version from the registry. The churn model is required
    (``registry.ModelNotRegistered`` otherwise); NPS and uplift are used when trained.
    A missing or damaged tracking database raises ``TrackingStoreUnavailable`` and is
    neither created nor rewritten (``models.tracking_store``)."""
    loaded = {}
    for name in MODEL_NAMES:
        try:
            loaded[name] = registry.load_alias(name, settings, alias)
        except registry.ModelNotRegistered:
            if name in REQUIRED:
                raise
    return ModelBundle(
        churn=loaded["churn"][0], nps=loaded.get("nps", (None,))[0],
        uplift=loaded.get("uplift", (None,))[0],
        catalogue=load_catalogue(settings.prescribe.actions_file),
        versions={name: version for name, (_, version) in loaded.items()},
    )
