"""A mapping's ``events:``: the errors that name the mapping key, the staged event tables and
their ingest (customer known, time parsed, measures numeric; bad rows quarantined with the
column named; rows in = kept + quarantined)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import run_ingest
from features.sources.mapping import MappingError, load_mapping, stage_mapping

MAPPING = """
observed_until: 2024-06-30
files:
  crm: {path: crm.csv, key: Customer}
  sessions: {path: sessions.csv, key: Cust}
never_features: [Left]
tables:
  crm_customers:
    files: [crm]
    columns:
      customer_id: Customer
      status: {column: Left, values: {Yes: churned, No: active}}
events:
  app_sessions:
    file: sessions
    label: App sessions
    timestamp: {column: Started, date_format: "%d/%m/%Y %H:%M"}
    measures:
      minutes: {column: Duration, label: Minutes in the app}
      crashes: {column: Crashes, label: App crashes}
"""
CRM = """Customer,Left
C1,No
C2,Yes
"""
SESSIONS = """Cust,Started,Duration,Crashes
C1,05/02/2024 10:30,12.5,0
C1,06/02/2024 11:00,3,1
C2,07/02/2024 09:15,abc,0
C9,07/02/2024 09:15,4,0
C2,31/02/2024 09:15,4,0
"""


def source(tmp_path: Path, mapping: str = MAPPING) -> tuple[Path, Path]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "crm.csv").write_text(CRM)
    (src / "sessions.csv").write_text(SESSIONS)
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(mapping))
    return path, src


@pytest.mark.parametrize(("change", "expected"), [
    (("file: sessions", "file: logins"), "events.app_sessions.file: 'logins' is not defined"),
    (("  sessions: {path: sessions.csv, key: Cust}", "  sessions: {path: sessions.csv}"),
     "events.app_sessions.file: files.sessions.key is needed"),
    (("column: Crashes,", "column: Left,"),
     "events.app_sessions.measures.crashes: 'Left' is an outcome column"),
    (("label: App crashes}", "label: ''}"), "events.app_sessions.measures.crashes.label"),
    (("  app_sessions:", "  App Sessions:"), "events.App Sessions: name event tables in snake"),
    (("crashes: {", "count: {"), "events.app_sessions.measures.count: name measures"),
    (("timestamp: {column: Started, ", "timestamp: {"), "events.app_sessions.timestamp.column"),
])
def test_each_event_error_names_the_mapping_key(tmp_path, change, expected):
    assert change[0] in MAPPING
    path, _ = source(tmp_path, MAPPING.replace(*change))
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert "\n" not in str(err.value) and expected in str(err.value)


def test_a_missing_column_names_the_key_and_the_file(tmp_path):
    path, src = source(tmp_path, MAPPING.replace("column: Duration,", "column: Minutes,"))
    with pytest.raises(MappingError, match=r"events.app_sessions.measures.minutes.column: column "
                                           r"'Minutes' not in .*sessions.csv"):
        stage_mapping(path, src, tmp_path / "staged")


def test_staged_and_ingested_with_every_row_accounted_for(tmp_path):
    path, src = source(tmp_path)
    rows = stage_mapping(path, src, tmp_path / "staged")
    assert rows["events/app_sessions"] == 5
    staged = pd.read_csv(tmp_path / "staged" / "events" / "app_sessions.csv", dtype=str)
    assert staged.loc[0, "occurred_at"] == "2024-02-05T10:30:00"
    schema = json.loads((tmp_path / "staged" / "events" / "schema.json").read_text())
    assert schema["events"]["app_sessions"]["measures"]["crashes"]["label"] == "App crashes"
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "quarantine",
                        IngestParams())
    table = report.tables["events/app_sessions"]
    assert (table.rows_in, table.rows_kept, table.rows_quarantined) == (5, 2, 3)
    assert set(table.reasons) == {"minutes: missing or not a finite number",
                                  "customer_id: unknown customer",
                                  "occurred_at: missing or not a valid timestamp"}
    clean = pd.read_parquet(tmp_path / "clean" / "events" / "app_sessions.parquet")
    assert clean["minutes"].tolist() == [12.5, 3.0]
    assert str(clean["occurred_at"].dt.tz) == "UTC"
    quarantined = pd.read_parquet(tmp_path / "quarantine" / "events" / "app_sessions.parquet")
    assert len(quarantined) == 3 and "_reason" in quarantined
    # a later export without events leaves no event table behind
    path.write_text(textwrap.dedent(MAPPING.split("events:")[0]))
    stage_mapping(path, src, tmp_path / "staged")
    run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "quarantine", IngestParams())
    assert not (tmp_path / "clean" / "events").exists()
