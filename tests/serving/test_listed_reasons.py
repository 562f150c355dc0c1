"""Reasons for every customer a rep sees: planned, alerted (any kind) or in the high churn-risk
tier, on the trained small world; and no TreeSHAP for anyone else."""

from __future__ import annotations

import pandas as pd
import pytest

from models.bundle import load_champions
from serving.batch import HIGH_TIER, listed_without_reasons, score_as_of
from serving.batch_inputs import latest_snapshot

pytestmark = pytest.mark.slow


def test_every_customer_on_a_list_has_reasons_and_only_they(trained_world):
    settings = trained_world.settings
    # a lower high-risk threshold so the small world has a high tier to explain
    settings = settings.model_copy(update={"tags": settings.tags.model_copy(update={"risk_high": 0.05})})
    timings: dict = {}
    result = score_as_of(settings, load_champions(settings), latest_snapshot(settings), None, timings=timings)
    customers = result.scored.customers.set_index("customer_id")
    high = customers.index[customers["churn_risk_tier"].eq(HIGH_TIER)]
    listed = pd.Index(sorted({*result.actions["customer_id"], *result.alerts["customer_id"], *high}))
    assert len(high) and len(result.alerts) and len(result.actions)
    assert customers.loc[listed, "reasons"].notna().all()
    assert customers.drop(listed)["reasons"].isna().all()             # the batch cost stays bounded
    assert "reasons_listed" in timings, timings
    assert result.summary["explained"] == len(listed), (result.summary["explained"], len(listed))
    assert customers.loc[listed, "reasons"].str.startswith("[{").all()
    assert len(listed_without_reasons(result.scored.customers, result.alerts)) == 0
    assert customers.loc[listed, "contact_channels"].notna().all()
