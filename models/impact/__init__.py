"""Impact measured, not assumed: what the plans did, from realized outcomes only.

Per scoring run (cycle) and cumulative: treated minus hold-out churn per action with a
delta-method 90 % interval (``outcomes``, ``intervals``, ``report``), the value per customer
of the policy, risk-ranked and random slices against the no-action slice (``population``),
logged to MLflow (``tracking``) and plotted for the manager's page (``figures``).
Design: docs/prescribe.md#impact-report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from configs.settings import Settings


@dataclass
class ImpactRun:
    report: object     # models.impact.report.ImpactReport
    path: Path         # the saved report.json the manager's page reads
    mlflow_run_id: str | None


def serving_database_missing(settings: Settings) -> str | None:
    """Why there is no serving database to report on (None when there is one)."""
    if settings.serving.database_url is None and not (settings.serving_dir / "serving.db").is_file():
        return f"no serving database at {settings.serving_dir / 'serving.db'}: run `cem score` first"
    return None


def run_impact(settings: Settings, log_to_mlflow: bool = True, **kwargs) -> ImpactRun:
    """Build the report, save it with its plot for the manager's page, and log it to MLflow."""
    from models.impact.figures import effects_png
    from models.impact.report import PLOT_FILE, build_report, report_dir, save_report

    report = build_report(settings, **kwargs)
    folder = report_dir(settings)
    path = save_report(report, folder, effects_png(report.effects))
    run_id = None
    if log_to_mlflow:
        from models.impact.tracking import log_report

        run_id = log_report(settings, report, [path, folder / PLOT_FILE])
    return ImpactRun(report, path, run_id)
