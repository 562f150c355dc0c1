"""End to end through the `cem` command line (Prefect flows in ephemeral mode)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, monkeypatch_module):
    data = tmp_path_factory.mktemp("demo") / "data"
    monkeypatch_module.setenv("CEM_SIMULATE__CUSTOMERS", "1500")
    monkeypatch_module.setenv("CEM_SIMULATE__MONTHS", "12")
    result = runner.invoke(app, ["demo", "--cycles", "0", "--data-dir", str(data)])   # loop: test_cycle
    return data, result


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.mark.slow
def test_demo_runs_simulate_ingest_and_features(demo_run):
    data, result = demo_run
    assert result.exit_code == 0, result.output
    for folder in ("raw", "truth", "clean", "quarantine", "features", "feast"):
        assert (data / folder).is_dir(), folder
    assert "rows in = kept + quarantined" in result.output
    assert "where to look" in result.output
    for where in ("reps' page", "MLflow UI", "Prefect UI", "serving database"):
        assert where in result.output, where
    assert (data / "serving" / "serving.db").is_file()      # the demo ends with a scoring run
    assert "scoring run" in result.output and "actions planned" in result.output


@pytest.mark.slow
def test_ingest_counts_add_up_and_identity_is_reported(demo_run):
    data, _ = demo_run
    report = json.loads((data / "clean" / "ingest_report.json").read_text())
    for name, table in report["tables"].items():
        assert table["rows_in"] == table["rows_kept"] + table["rows_quarantined"], name
        clean = pd.read_parquet(data / "clean" / f"{name}.parquet")
        assert len(clean) == table["rows_kept"], name
    assert 0.95 < report["identity_match_rate"] < 1.0   # the world plants unknown identifiers
    quarantined = pd.read_parquet(data / "quarantine" / "survey_responses.parquet")
    assert quarantined["_reason"].str.contains("duplicate response").any()


@pytest.mark.slow
def test_online_lookup_from_the_command_line(demo_run):
    data, _ = demo_run
    customer = pd.read_parquet(data / "features" / "customer_o.parquet")["customer_id"].iloc[-1]
    result = runner.invoke(app, ["lookup", customer, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert customer in result.output and "usage_last_month" in result.output


def test_missing_table_stops_ingest_naming_the_file(tmp_path):
    source = tmp_path / "exports"
    source.mkdir()
    result = runner.invoke(app, ["ingest", "--source", str(source), "--data-dir",
                                 str(tmp_path / "data")])
    assert result.exit_code == 2
    assert "crm_customers" in result.output
    assert not (tmp_path / "data" / "clean").exists()


@pytest.mark.slow
def test_every_command_takes_a_data_folder_relative_to_the_working_directory(demo_run, monkeypatch):
    """Paths resolve against where the user stands, once, at load (Feast would otherwise
    resolve them against its repository: `.../features/data/feast` not found)."""
    data, _ = demo_run
    monkeypatch.chdir(data.parent)
    customer = pd.read_parquet(data / "features" / "customer_o.parquet")["customer_id"].iloc[-1]
    for command in (["ingest", "--source", "data/raw"], ["features"], ["lookup", customer],
                    ["score"], ["tokens"]):
        result = runner.invoke(app, [*command, "--data-dir", "data"])
        assert result.exit_code == 0, (command, result.output)
    assert not (data.parent / "features").exists()     # nothing written beside the data folder
