"""What a scoring bucket reads of the clean tables: contacts in the week before the scoring
date (the window's edges, the control group, a table the export does not have), and its own
customers' comments and contact channels, equal to the whole table's rows of them."""

from __future__ import annotations

from datetime import date

import pandas as pd

from serving.batch_inputs import recent_contacts
from serving.contact import contact_channels, latest_comment_rows


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


def test_a_buckets_comments_and_channels_are_the_whole_tables(tmp_path):
    at = lambda s: pd.Timestamp(s, tz="UTC")                            # noqa: E731
    _write(tmp_path, "survey_responses", pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "C", "A"],
        "responded_at": [at("2024-03-01"), at("2024-03-05"), at("2024-03-05"),
                         at("2024-03-05"), at("2024-03-20"), at("2024-02-01")],
        "comment": ["old", "newest", "tie 1", "tie 2", "after the date", None]}))
    _write(tmp_path, "crm_customers", pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"], "email": ["a@x", None, "c@x", None],
        "phone": [None, "555", "556", None], "email_opt_out": [True, False, None, False]}))
    bucket = pd.Series(["B", "A"], index=[7, 3])
    whole = latest_comment_rows(tmp_path, date(2024, 3, 15))
    mine = latest_comment_rows(tmp_path, date(2024, 3, 15), bucket)
    pd.testing.assert_frame_equal(mine.sort_index(), whole.loc[["A", "B"]].sort_index())
    assert mine.loc["B", "latest_comment"] == "tie 2"                 # the later row of a tie
    pd.testing.assert_series_equal(contact_channels(tmp_path, bucket, only=True),
                                   contact_channels(tmp_path, bucket))
    none = pd.Series([], dtype=object)
    assert latest_comment_rows(tmp_path, date(2024, 3, 15), none).empty
    assert contact_channels(tmp_path, none, only=True).empty
