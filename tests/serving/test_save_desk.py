"""Customers who gave notice are save-desk cases: on their rep's list with the notice date,
never a retention target of the plan."""

from __future__ import annotations

from datetime import date

import pandas as pd

from models.bundle import load_champions
from serving.alerts import save_desk_reason
from serving.batch import latest_snapshot, score_as_of
from serving.batch_inputs import notices_given


def test_customers_under_notice_are_listed_for_the_save_desk_and_never_planned(trained_world):
    settings = trained_world.settings
    as_of = latest_snapshot(settings)
    notices = notices_given(settings.clean_dir, as_of)
    assert len(notices) > 0                                   # the world records notices
    result = score_as_of(settings, load_champions(settings), as_of, None)
    desk = result.alerts[result.alerts["kind"] == "save_desk"]
    scored = set(result.scored.customers["customer_id"])
    assert set(desk["customer_id"]) == set(notices.index) & scored
    assert not set(result.actions["customer_id"]) & set(notices.index)
    assert desk["reason"].str.contains("Gave notice on").all()


def test_the_save_desk_reason_names_the_notice_date():
    text = save_desk_reason(date(2025, 8, 3), date(2025, 8, 13))
    assert "03 August 2025" in text and "10 days ago" in text and "no action is planned" in text


def test_no_notice_column_no_save_desk(tmp_path):
    crm = pd.DataFrame({"customer_id": ["A"], "churn_date": [pd.NaT]})
    crm.to_parquet(tmp_path / "crm_customers.parquet")
    assert notices_given(tmp_path, date(2025, 1, 1)).empty
