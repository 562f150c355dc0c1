"""Module names of the flat layout before the subpackages, so that models registered then
still load: a pickle names each class by its module (``models.nps_selection.SelectionGap``).

Old package-like names (``models.churn``, ``models.nps``, ``models.uplift``) are packages now
and re-export their model classes; the flat names below are resolved by a finder that is
installed only while the registry unpickles a model.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "models.train": "models.churn.train",
    "models.metrics": "models.churn.metrics",
    "models.plots": "models.churn.plots",
    "models.nps_data": "models.nps.data",
    "models.nps_boosters": "models.nps.boosters",
    "models.nps_company": "models.nps.company",
    "models.nps_selection": "models.nps.selection",
    "models.nps_plots": "models.nps.plots",
    "models.train_nps": "models.nps.train",
    "models.evaluate": "models.nps.evaluate",
    "models.uplift_data": "models.uplift.data",
    "models.uplift_metrics": "models.uplift.metrics",
    "models.uplift_select": "models.uplift.selection",
    "models.uplift_plots": "models.uplift.plots",
    "models.train_uplift": "models.uplift.train",
    "models.evaluate_uplift": "models.uplift.evaluate",
    "models.evaluate_policy": "models.prescribe.evaluate",
    "serving.scoring": "models.scoring",
    "serving.bundle": "models.bundle",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module name with the module that lives at the new one."""

    def find_spec(self, fullname, path, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        """The module is the already-imported new one: nothing to run."""


def enable_old_names() -> None:
    """Let ``import`` resolve the old flat module names (idempotent; real modules win)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
