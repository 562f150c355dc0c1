"""The impact report in MLflow: experiment ``cem-impact``, one run per report date.

Metrics per action and slice, with ``step`` = the cycle number, so the MLflow UI plots each
as a series over cycles; the cumulative figures are logged without a step. Re-running a
report for the same date replaces that date's run (the old one is deleted).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from configs.settings import Settings
from models.impact.intervals import OK
from models.impact.report import PLOT_FILE, REPORT_FILE, ImpactReport

EXPERIMENT = "cem-impact"


def _key(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", "_".join(parts))


def report_metrics(report: ImpactReport) -> tuple[list[tuple[str, float, int]], dict[str, float]]:
    """(name, value, step) per cycle and {name: value} cumulative, only where estimated."""
    stepped, cumulative = [], {}
    for frame, kind, name_col, value_col in ((report.effects, "effect", "action", "effect"),
                                              (report.slices, "value", "slice", "value_per_customer")):
        for rec in frame[frame["status"] == OK].to_dict(orient="records"):
            for suffix, col in (("", value_col), ("_lo90", "lo90"), ("_hi90", "hi90")):
                value = float(rec[col])
                if not math.isfinite(value):
                    continue
                key = _key(f"{kind}_{rec[name_col]}{suffix}")
                if rec["scope"] == "cycle":
                    stepped.append((key, value, int(rec["cycle"])))
                else:
                    cumulative[_key(f"cumulative_{kind}_{rec[name_col]}{suffix}")] = value
    return stepped, cumulative


def log_report(settings: Settings, report: ImpactReport, files: list | None = None) -> str:
    """Log the report as one MLflow run named by its date; returns the run id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from models.registry import configure, experiment

    configure(settings)
    exp_id = experiment(EXPERIMENT, settings)
    date = report.meta.get("data_end", "")
    client = MlflowClient()
    for old in client.search_runs([exp_id], filter_string=f"tags.report_date = '{date}'"):
        client.delete_run(old.info.run_id)
    stepped, cumulative = report_metrics(report)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"impact · {date}") as run:
        mlflow.set_tags({"report_date": date, "estimator": report.meta.get("estimator", ""),
                         "latest_run_id": report.meta.get("latest_run_id", "")})
        mlflow.log_params({"horizon_days": report.meta.get("horizon_days"),
                           "slice_share": report.meta.get("slice_share"),
                           "runs": report.meta.get("runs")})
        for key, value, step in stepped:
            mlflow.log_metric(key, value, step=step)
        if cumulative:
            mlflow.log_metrics(cumulative)
        mlflow.log_table(_table(report.effects), "impact_effects.json")
        mlflow.log_table(_table(report.slices), "impact_slices.json")
        for path in files or []:
            if path is not None and path.is_file() and path.name in (REPORT_FILE, PLOT_FILE):
                mlflow.log_artifact(str(path))
    return run.info.run_id


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("as_of",):
        out[col] = out[col].astype(str)
    return out
