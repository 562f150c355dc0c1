"""The last steps of a batch run that both paths share (in-process: ``serving.batch``; on a
cluster: ``serving.cluster_scoring``): the plan's columns on the customers' rows and the
run's summary."""

from __future__ import annotations

from datetime import date

import pandas as pd

from configs.settings import Settings
from models.bundle import MODEL_NAMES, ModelBundle
from models.nps.scale import bundle_scale
from serving.contact import contact_channels, latest_comment_rows


def show_plan(customers: pd.DataFrame, actions: pd.DataFrame, settings: Settings,
              as_of: date) -> pd.DataFrame:
    """Each customer's shown action and its value, latest comment and contact channels (in
    place); returns the shown rows (hold-outs of every arm left out)."""
    shown = actions[~actions["control_group"]]
    chosen = shown.set_index("customer_id")
    customers["recommended_action"] = customers["customer_id"].map(chosen["action_id"].astype(object))
    customers["expected_value"] = customers["customer_id"].map(chosen["expected_value"])
    comments = latest_comment_rows(settings.clean_dir, as_of)
    for column in comments:
        customers[column] = customers["customer_id"].map(comments[column])
    customers["contact_channels"] = contact_channels(settings.clean_dir, customers["customer_id"])
    return shown


def run_summary(customers: pd.DataFrame, actions: pd.DataFrame, shown: pd.DataFrame,
                alerts: pd.DataFrame, skipped: pd.DataFrame, arms_summary: dict,
                consent_checked: list[str], blocked: int, bundle: ModelBundle) -> dict:
    """What the run logs and returns: counts, value shown, skip reasons, arms, consent."""
    return {
        "customers": len(customers),
        "planned": len(actions),
        "shown": len(shown),
        "held_out": int(actions["control_group"].sum()),
        "alerts": len(alerts),
        "explained": int(customers["reasons"].notna().sum()),
        "expected_value_shown": float(shown["expected_value"].sum()),
        "skipped": skipped["reason"].value_counts().to_dict(),
        **arms_summary,
        "consent_checked": consent_checked,
        "blocked_by_consent": blocked,
        "models_missing": [name for name in MODEL_NAMES if name not in bundle.versions],
        "satisfaction_scale": bundle_scale(bundle).code,   # predicted_nps, p_* are on it
    }
