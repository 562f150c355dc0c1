"""Source files: contract errors, format selection, CSV == Parquet, extra columns."""

from __future__ import annotations

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import SourceContractError, run_ingest
from tests.features.ingest.conftest import add_rows, write_world
from tests.features.ingest.test_validation import seed_bad_rows


def _dirs(tmp_path):
    return tmp_path / "clean", tmp_path / "quarantine"


def test_missing_required_table_names_the_file(world, fmt, tmp_path):
    # only crm_customers is required; a missing optional table: tests/features/ingest/test_minimal.py
    src = write_world(world, tmp_path / "src", fmt)
    (src / f"crm_customers.{fmt}").unlink()
    clean, quarantine = _dirs(tmp_path)
    with pytest.raises(SourceContractError) as err:
        run_ingest(src, clean, quarantine, IngestParams())
    assert str(src / "crm_customers.csv") in str(err.value)
    assert isinstance(err.value, ValueError)
    assert not clean.exists() and not quarantine.exists()


def test_missing_column_names_file_and_column_and_writes_nothing(world, fmt, tmp_path):
    world["survey_responses"] = world["survey_responses"].drop(columns=["respondent", "comment"])
    world["interventions"] = world["interventions"].drop(columns=["outcome"])
    src = write_world(world, tmp_path / "src", fmt)
    clean, quarantine = _dirs(tmp_path)
    with pytest.raises(SourceContractError) as err:
        run_ingest(src, clean, quarantine, IngestParams())
    msg = str(err.value)
    assert f"{src / f'survey_responses.{fmt}'}: missing required column(s) respondent, comment" in msg
    assert f"{src / f'interventions.{fmt}'}: missing required column(s) outcome" in msg
    assert not clean.exists() and not quarantine.exists()


def test_source_format_selection(world, tmp_path):
    src = write_world(world, tmp_path / "src", "csv")
    write_world(world, src, "parquet")
    clean, quarantine = _dirs(tmp_path)
    auto = run_ingest(src, clean, quarantine, IngestParams(source_format="auto"))
    assert all(t.source.endswith(".parquet") for t in auto.tables.values())
    csv = run_ingest(src, clean, quarantine, IngestParams(source_format="csv"))
    assert all(t.source.endswith(".csv") for t in csv.tables.values())
    (src / "orders.parquet").unlink()
    auto = run_ingest(src, clean, quarantine, IngestParams(source_format="auto"))
    assert auto.tables["orders"].source.endswith("orders.csv")
    with pytest.raises(SourceContractError, match="orders.parquet"):
        run_ingest(src, clean, quarantine, IngestParams(source_format="parquet"))


def _identity_cases(frames):
    add_rows(frames, "survey_responses", [
        ("S50", "relationship-2024-06", "app", "APP-ONE", "2024-06-05T08:00:00",
         6, None, None, None),
        ("S51", "relationship-2024-06", "sms", "6465550100", "2024-06-05T08:00:00",
         6, None, None, None),
    ])


def test_csv_and_parquet_give_the_same_result(world, ingest):
    seed_bad_rows(world)
    _identity_cases(world)
    rep_pq, clean_pq, q_pq = ingest(world, "parquet")
    rep_csv, clean_csv, q_csv = ingest(world, "csv")
    for table in world:
        pd.testing.assert_frame_equal(clean_pq[table], clean_csv[table], check_exact=True)
        assert q_pq[table]["_reason"].tolist() == q_csv[table]["_reason"].tolist()
        a, b = rep_pq.tables[table], rep_csv.tables[table]
        assert (a.rows_in, a.rows_kept, a.reasons) == (b.rows_in, b.rows_kept, b.reasons)
    assert rep_pq.identity_match_rate == rep_csv.identity_match_rate


def test_extra_columns_are_reported_ignored_and_kept_in_quarantine(world, ingest):
    world["orders"]["note"] = ["a", "b"]
    add_rows(world, "orders", [("O9", "C1", "2024-02-10T15:00:00", -3.0, "delivered", "bad")])
    report, clean, quarantine = ingest(world)
    assert report.extra_columns["orders"] == ["note"]
    assert report.extra_columns["crm_customers"] == []
    assert "note" not in clean["orders"].columns
    assert quarantine["orders"][["order_id", "note"]].values.tolist() == [["O9", "bad"]]


def test_empty_table_is_fine(world, fmt, ingest):
    world["interventions"] = world["interventions"].iloc[0:0]
    report, clean, quarantine = ingest(world, fmt)
    t = report.tables["interventions"]
    assert (t.rows_in, t.rows_kept, t.rows_quarantined) == (0, 0, 0)
    optional = ["stratum", "assignment_probability"]          # absent optional columns: empty
    assert list(clean["interventions"].columns) == [*world["interventions"].columns, *optional]
    assert quarantine["interventions"].empty


def test_native_source_types_are_coerced(world, ingest):
    world["orders"]["order_id"] = [101, 102]  # integer ids become text
    world["orders"]["ordered_at"] = pd.to_datetime(  # a non-UTC zone
        world["orders"]["ordered_at"]).dt.tz_localize("Europe/Berlin")
    world["product_usage"]["month"] = pd.to_datetime(world["product_usage"]["month"]).dt.date
    world["product_usage"]["note"] = pd.Categorical(["a", "b", "a", None])
    world["orders"]["amount"] = world["orders"]["amount"].astype("float32")
    world["interventions"]["cost"] = [15, 0]  # integers where floats are expected
    _, clean, _ = ingest(world)
    assert clean["orders"]["amount"].dtype == "float64"
    assert clean["orders"]["order_id"].tolist() == ["101", "102"]
    assert clean["orders"]["ordered_at"].iloc[0] == pd.Timestamp("2024-02-10T14:00", tz="UTC")
    assert clean["product_usage"]["month"].dtype == "datetime64[us]"
    assert clean["product_usage"]["month"].iloc[0] == pd.Timestamp("2024-01-01")
    assert clean["interventions"]["cost"].tolist() == [15.0, 0.0]
    assert clean["interventions"]["control_group"].tolist() == [False, True]


def test_csv_free_text_with_newlines_quotes_and_commas(world, ingest):
    comment = 'line one\nline two, with a comma and "quotes"'
    world["survey_responses"].loc[0, "comment"] = comment
    _, clean, _ = ingest(world, "csv")
    got = clean["survey_responses"].set_index("response_id")
    assert got.loc["S1", "comment"] == comment
    assert len(got) == 4


def test_identifiers_keep_leading_zeros_in_csv(world, ingest):
    world["orders"]["order_id"] = ["007", "008"]
    _, clean, _ = ingest(world, "csv")
    assert clean["orders"]["order_id"].tolist() == ["007", "008"]
