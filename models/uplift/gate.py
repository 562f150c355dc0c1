"""The evidence gate run on one training's frames: costs and value at risk from the settings,
the cross-validated policy value of each learner's rule, and the hold-out's confirmation.

``models.uplift.evidence`` holds the statistics; this module feeds them a training run's
frames and out-of-fold estimates (``models.uplift.train``). Design:
docs/prescribe.md#evidence-gate
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from configs.settings import Settings
from models.prescribe.actions import load_catalogue
from models.prescribe.value import value_at_risk_array
from models.uplift.evidence import policy_evidence
from models.uplift.model import UpliftModel, UpliftParams, sigmoid
from models.uplift.selection import OutOfFold


def _costs_and_value(settings: Settings, frame: pd.DataFrame) -> tuple[dict, np.ndarray]:
    catalogue = load_catalogue(settings.prescribe.actions_file)
    costs = {a.id: float(a.cost) for a in catalogue.actions}
    value = (value_at_risk_array(frame, settings.prescribe) if "monthly_charge" in frame
             else np.zeros(len(frame)))   # no charge known: no value at risk, nothing shown to pay
    return costs, value


def latest_customers(snapshots: pd.DataFrame) -> pd.DataFrame:
    """The open customers of the newest snapshot: the population a plan acts on."""
    return snapshots[snapshots["event_timestamp"] == snapshots["event_timestamp"].max()]


def learner_evidence(settings: Settings, train: pd.DataFrame, oof: OutOfFold,
                     params: UpliftParams) -> dict[str, pd.DataFrame]:
    """Per learner, the cross-validated policy value of its decision rule per action."""
    costs, value = _costs_and_value(settings, train)
    return {name: policy_evidence(train.reset_index(drop=True), effects, oof.low[name], oof.p, value,
                                  costs, settings.prescribe.min_expected_value,
                                  params.evidence_quantile or 0.1, params.bootstrap, params.seed)
            for name, effects in oof.effects.items()}


def holdout_evidence(settings: Settings, model: UpliftModel, test: pd.DataFrame,
                     params: UpliftParams, quantile: float | None = None) -> pd.DataFrame:
    """The policy value of ``model``'s rule (fitted on the training customers) on the
    held-out customers' logged rows, its interval at ``quantile`` (default the evidence's)."""
    costs, value = _costs_and_value(settings, test)
    effects, low = model.effects_with_bound(test, settings.prescribe.value_quantile)
    p = sigmoid(model.risk.logit(test))
    return policy_evidence(test, effects, low, p, value, costs, settings.prescribe.min_expected_value,
                           quantile or params.evidence_quantile or 0.1, params.bootstrap,
                           params.seed)


def evidence_table(evidence: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Learner x action rows of the cross-validated policy value (for MLflow)."""
    return pd.concat([t.reset_index().assign(learner=n) for n, t in evidence.items()],
                     ignore_index=True)
