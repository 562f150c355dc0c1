"""The impact report: measured effect per action and the slices' value, per cycle and cumulative.

``effect_table`` and ``slice_table`` are pure; ``build_report`` reads the serving database and
the clean tables; ``save_report`` / ``load_report`` keep the latest report (JSON and its plot)
under ``serving_dir/impact`` for the manager's page, which never computes it.
Design: docs/prescribe.md#impact-report
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from configs.settings import Settings
from models.impact.intervals import NOT_ENOUGH, difference, slice_value
from models.impact.outcomes import DELIVERED, HELD_OUT, outcome_rows, planned_rows
from models.impact.population import slice_rows
from models.uplift.data import outcome_of

ALL = "all"                 # every action together
PENDING = "pending"         # the outcome window is not over yet
COMPARED = ("policy", "risk_ranked", "random")
REPORT_FILE, PLOT_FILE = "report.json", "effects.png"
EFFECT_COLUMNS = ["scope", "cycle", "run_id", "as_of", "action", "status", "n_treated", "n_control",
                  "churn_treated", "churn_control", "effect", "lo90", "hi90", "pending_rows"]
SLICE_COLUMNS = ["scope", "cycle", "run_id", "as_of", "slice", "status", "n", "n_control", "churn",
                 "churn_control", "value_per_customer", "lo90", "hi90"]


@dataclass
class ImpactReport:
    effects: pd.DataFrame
    slices: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def cumulative(self) -> pd.DataFrame:
        return self.effects[self.effects["scope"] == "cumulative"]


def _estimate(rows: pd.DataFrame):
    t = rows[rows["status"] == DELIVERED]
    c = rows[rows["status"] == HELD_OUT]
    return difference(t["churned"].to_numpy(), c["churned"].to_numpy(),
                      t["probability"].to_numpy(), c["probability"].to_numpy(),
                      c1=t["customer_id"].to_numpy(), c0=c["customer_id"].to_numpy())


def _effect_row(scope, cycle, run_id, as_of, action, rows: pd.DataFrame, pending: int) -> dict:
    est = _estimate(rows)
    return {"scope": scope, "cycle": cycle, "run_id": run_id, "as_of": as_of, "action": action,
            "status": est.status, "n_treated": est.n1, "n_control": est.n0,
            "churn_treated": est.mean1, "churn_control": est.mean0, "effect": est.estimate,
            "lo90": est.lo, "hi90": est.hi, "pending_rows": pending}


def effect_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Treated minus hold-out churn per action and for all actions: per cycle, and cumulative
    over the matured cycles. A cycle whose window is still open is one ``pending`` row."""
    out = []
    usable = rows[rows["compare"] & ~rows["gone"]]
    for (cycle, run_id, as_of), run in usable.groupby(["cycle", "run_id", "as_of"], sort=True):
        if not run["matured"].all():
            out.append({"scope": "cycle", "cycle": cycle, "run_id": run_id, "as_of": as_of,
                        "action": ALL, "status": PENDING,
                        "n_treated": int((run["status"] == DELIVERED).sum()),
                        "n_control": int((run["status"] == HELD_OUT).sum()),
                        "pending_rows": int((~run["matured"]).sum())})
            continue
        out.append(_effect_row("cycle", cycle, run_id, as_of, ALL, run, 0))
        for action, part in run.groupby("action_id", sort=True):
            out.append(_effect_row("cycle", cycle, run_id, as_of, action, part, 0))
    done = usable[usable["matured"]]
    pending = int((~usable["matured"]).sum())
    if len(done):
        out.append(_effect_row("cumulative", None, None, None, ALL, done, pending))
        for action, part in done.groupby("action_id", sort=True):
            out.append(_effect_row("cumulative", None, None, None, action, part, pending))
    return pd.DataFrame(out, columns=EFFECT_COLUMNS)


def _slice_row(scope, cycle, run_id, as_of, name, rows: pd.DataFrame) -> dict:
    mine, base = rows[rows["slice"] == name], rows[rows["slice"] == "no_action"]
    est = slice_value(mine["churned"].to_numpy(), mine["cost"].to_numpy(),
                      mine["value_at_risk"].to_numpy(), base["churned"].to_numpy(),
                      base["value_at_risk"].to_numpy(), c_slice=mine["customer_id"].to_numpy(),
                      c_control=base["customer_id"].to_numpy())
    return {"scope": scope, "cycle": cycle, "run_id": run_id, "as_of": as_of, "slice": name,
            "status": est.status, "n": est.n1, "n_control": est.n0, "churn": est.mean1,
            "churn_control": est.mean0, "value_per_customer": est.estimate, "lo90": est.lo,
            "hi90": est.hi}


def slice_table(population: pd.DataFrame) -> pd.DataFrame:
    """Value per customer of each slice against ``no_action``, per cycle and cumulative over
    the matured cycles that applied the slices."""
    out = []
    applied = population[population["applied"]]
    for (cycle, run_id, as_of), run in applied.groupby(["cycle", "run_id", "as_of"], sort=True):
        for name in COMPARED:
            if not run["matured"].all():
                out.append({"scope": "cycle", "cycle": cycle, "run_id": run_id, "as_of": as_of,
                            "slice": name, "status": PENDING,
                            "n": int((run["slice"] == name).sum()),
                            "n_control": int((run["slice"] == "no_action").sum())})
            else:
                out.append(_slice_row("cycle", cycle, run_id, as_of, name, run))
    done = applied[applied["matured"]]
    if len(done):
        out += [_slice_row("cumulative", None, None, None, name, done) for name in COMPARED]
    return pd.DataFrame(out, columns=SLICE_COLUMNS)


def data_end_of(customers: pd.DataFrame, runs_as_of: pd.Series) -> pd.Timestamp:
    """How far outcomes are known: the export's ``observed_until`` when recorded, else the
    newest run's date (a run scores the data as of its date)."""
    if "observed_until" in customers and customers["observed_until"].notna().any():
        return pd.Timestamp(pd.to_datetime(customers["observed_until"]).max()).tz_localize(None)
    return pd.Timestamp(runs_as_of.max())


def _read(path: Path, columns=None) -> pd.DataFrame | None:
    return pd.read_parquet(path, columns=columns) if path.is_file() else None


def build_report(settings: Settings, engine=None, horizon_days: int | None = None,
                 data_end: pd.Timestamp | None = None) -> ImpactReport:
    """The report from the serving database and the clean tables only.

    ``horizon_days``: the outcome window, by default the uplift labels' (``outcome_of``).
    Raises ``LookupError`` when there is no complete scoring run.
    """
    from serving.db.schema import make_engine

    engine = engine or make_engine(settings.serving_database_url, create=False)
    plan = planned_rows(engine)
    if plan.empty:
        raise LookupError("no complete scoring run with a plan: run `cem score` first")
    clean = settings.clean_dir
    customers = _read(clean / "crm_customers.parquet")
    if customers is None:
        raise FileNotFoundError(2, "no such file", str(clean / "crm_customers.parquet"))
    horizon = horizon_days or outcome_of(customers, settings.train.uplift).horizon_days
    log = _read(clean / "interventions.parquet")
    end = pd.Timestamp(data_end) if data_end is not None else data_end_of(customers, plan["as_of"])
    rows = outcome_rows(plan, log, customers, horizon, end)
    invoices = _read(clean / "billing_invoices.parquet", ["customer_id", "invoice_date", "list_price"])
    if invoices is not None:
        invoices = invoices.sort_values("invoice_date", kind="stable")
    p = settings.prescribe
    population = slice_rows(rows, customers, invoices, p.impact_slice_share, horizon, end,
                            p.margin_rate * p.value_months)
    weighted = bool(rows["probability"].notna().any())
    meta = {"horizon_days": int(horizon), "data_end": f"{end:%Y-%m-%d}",
            "slice_share": p.impact_slice_share, "runs": int(plan["run_id"].nunique()),
            "latest_run_id": str(plan.sort_values("cycle")["run_id"].iloc[-1]),
            "estimator": "hajek_ipw" if weighted else "difference_of_means",
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "rows": {k: int(v) for k, v in rows["status"].value_counts().items()}}
    return ImpactReport(effect_table(rows), slice_table(population), meta)


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for rec in frame.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, pd.Timestamp):
                v = f"{v:%Y-%m-%d}"
            elif isinstance(v, float | np.floating) and not math.isfinite(v):
                v = None
            elif isinstance(v, np.integer):
                v = int(v)
            elif v is pd.NaT:
                v = None
            clean[k] = v
        out.append(clean)
    return out


def report_dir(settings: Settings) -> Path:
    return settings.serving_dir / "impact"


def save_report(report: ImpactReport, folder: Path, png: bytes | None = None) -> Path:
    """Write the plot, then report.json, each atomically: the page reads whatever is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {"meta": report.meta, "effects": _records(report.effects), "slices": _records(report.slices)}
    for name, data in ((PLOT_FILE, png), (REPORT_FILE, json.dumps(body, indent=1).encode())):
        if data is None:
            continue
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    return folder / REPORT_FILE


def load_report(folder: Path) -> dict | None:
    """The saved report (``meta``, ``effects``, ``slices``, ``png`` as base64), None when there is none."""
    path = folder / REPORT_FILE
    if not path.is_file():
        return None
    body = json.loads(path.read_text())
    plot = folder / PLOT_FILE
    body["png"] = base64.b64encode(plot.read_bytes()).decode() if plot.is_file() else None
    return body


def status_text(status: str) -> str:
    return {NOT_ENOUGH: "not enough data", PENDING: "pending"}.get(status, status)
