"""The manager's page shows the saved impact report; `cem impact` saves, prints and logs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.impact import run_impact
from models.impact.outcomes import planned_rows
from models.impact.report import ImpactReport, report_dir, save_report
from pipelines.cli import app as cli_app
from pipelines.cli import main
from tests.serving.conftest import app, client, online, runs, settings, tokens  # noqa: F401 (fixtures)
from tests.serving.routes.test_pages import _sign_in


def _clean_tables(settings, engine) -> None:  # noqa: F811
    """Clean CRM and interventions tables for the fixture runs: every planned row logged."""
    plan = planned_rows(engine)
    settings.clean_dir.mkdir(parents=True, exist_ok=True)
    ids = sorted(plan["customer_id"].unique())
    notice = np.where(np.arange(len(ids)) % 4 == 0, "2025-03-03", None)
    pd.DataFrame({"customer_id": ids, "notice_date": pd.to_datetime(notice),
                  "churn_date": pd.to_datetime(notice) + pd.Timedelta(days=42)}).to_parquet(
        settings.clean_dir / "crm_customers.parquet")
    pd.DataFrame({"intervention_id": [f"I{i}" for i in range(len(plan))],
                  "customer_id": plan["customer_id"], "action": plan["action_id"],
                  "assigned_at": pd.to_datetime(plan["as_of"]).dt.tz_localize("UTC") + pd.Timedelta(hours=9),
                  "control_group": plan["control_group"]}).to_parquet(
        settings.clean_dir / "interventions.parquet")


def test_the_manager_page_shows_the_impact_section(client, tokens, settings, runs):  # noqa: F811
    _sign_in(client, tokens["manager"])
    assert "No impact report yet" in client.get("/reps").text
    _clean_tables(settings, runs.engine)
    done = run_impact(settings, log_to_mlflow=False, data_end=pd.Timestamp("2026-01-01"))
    assert done.path.is_file() and done.report.meta["runs"] == 2
    html = client.get("/reps").text
    assert 'id="impact"' in html and "All actions" in html
    assert "not enough data" in html                      # 24 delivered rows per run
    assert 'src="data:image/png;base64,' in html
    _sign_in(client, tokens["R001"])
    assert 'id="impact"' not in client.get("/reps/R001").text


def test_the_page_shows_estimates_with_their_interval(client, tokens, settings, runs):  # noqa: F811
    effects = pd.DataFrame([{"scope": "cumulative", "cycle": None, "run_id": None, "as_of": None,
                             "action": "all", "status": "ok", "n_treated": 900, "n_control": 880,
                             "churn_treated": 0.08, "churn_control": 0.10, "effect": -0.02,
                             "lo90": -0.035, "hi90": -0.005, "pending_rows": 12}])
    slices = pd.DataFrame([{"scope": "cumulative", "cycle": None, "run_id": None, "as_of": None,
                            "slice": "risk_ranked", "status": "ok", "n": 500, "n_control": 510,
                            "churn": 0.1, "churn_control": 0.1, "value_per_customer": -4.5,
                            "lo90": -9.0, "hi90": 0.25}])
    meta = {"data_end": "2025-08-01", "runs": 7, "horizon_days": 150, "generated_at": "now",
            "estimator": "difference_of_means"}
    save_report(ImpactReport(effects, slices, meta), report_dir(settings), b"\x89PNG fake")
    _sign_in(client, tokens["manager"])
    html = client.get("/reps").text
    assert "-2.0 pp [-3.5, -0.5]" in html and "-4.50 [-9.00, +0.25]" in html
    assert "risk ranked" in html and "8.0%" in html


def test_the_command_without_a_serving_database_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["impact", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) == 1 and "cem score" in lines[0], lines
    assert not (tmp_path / "serving").exists()            # nothing created


def test_the_command_prints_the_table_and_logs_to_mlflow(settings, runs):  # noqa: F811
    import mlflow

    _clean_tables(settings, runs.engine)
    result = CliRunner().invoke(cli_app, ["impact", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "impact report as of 2025-01-13" in result.output   # the newest run's date
    assert "pending: 2" in result.output and "effects are pending" in result.output
    assert (report_dir(settings) / "report.json").is_file()
    mlflow.set_tracking_uri(settings.tracking_uri)
    found = mlflow.search_runs(experiment_names=["cem-impact"])
    assert len(found) == 1 and found["tags.report_date"].iloc[0] == "2025-01-13"
    again = CliRunner().invoke(cli_app, ["impact", "--data-dir", str(settings.data_dir)])
    assert again.exit_code == 0
    assert len(mlflow.search_runs(experiment_names=["cem-impact"])) == 1   # one run per date
