"""Contacts in the week before the scoring date: the window's edges, the control group, and
a table the export does not have."""

from __future__ import annotations

from datetime import date

import pandas as pd

from serving.batch_inputs import recent_contacts


def _write(clean, name: str, frame: pd.DataFrame) -> None:
    frame.to_parquet(clean / f"{name}.parquet", index=False)


def test_only_the_week_before_the_date_counts(tmp_path):
    at = lambda s: pd.Timestamp(s, tz="UTC")                            # noqa: E731
    _write(tmp_path, "interventions", pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "C"],
        "assigned_at": [at("2024-03-08"), at("2024-03-14 23:59"), at("2024-03-15"),
                        at("2024-03-10"), at("2024-03-10")],
        "control_group": [False, False, False, False, True]}))        # C: held out, not contacted
    _write(tmp_path, "survey_invitations", pd.DataFrame({
        "customer_id": ["A", "B", "B"],
        "sent_at": [at("2024-03-07 23:59"), at("2024-03-09"), at("2024-01-01")]}))
    got = recent_contacts(tmp_path, pd.Series(["A", "B", "C", "D"]), date(2024, 3, 15))
    # [Mar 8, Mar 15): A's Mar 8 and Mar 14 actions; B's Mar 10 action and Mar 9 invitation
    assert got.tolist() == [2, 2, 0, 0]


def test_an_export_without_the_tables_has_no_contacts(tmp_path):
    got = recent_contacts(tmp_path, pd.Series(["A"]), date(2024, 3, 15))
    assert got.tolist() == [0]
