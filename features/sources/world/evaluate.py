"""What the world's answer to a plan was worth: evaluation only (reads the hidden truth)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

DELIVERY_FILE = "plan_delivery.parquet"   # written by ``step.advance_world``


def delivered_value(truth_dir: Path, month: date) -> dict:
    """True value of the actions delivered in ``month``: the change they cause in the
    expected number of customers who decide to leave within 90 days (negative: kept)."""
    rows = pd.read_parquet(Path(truth_dir) / DELIVERY_FILE,
                           filters=[("month", "==", pd.Timestamp(month).date())])
    delivered = rows[rows["status"] == "delivered"]
    return {"planned": len(rows), "delivered": len(delivered),
            "true_effect_90d": float(delivered["true_effect_90d"].sum()),
            "lost_to_capacity_90d": float(
                rows.loc[rows["status"] == "over_capacity", "true_effect_90d"].sum())}
