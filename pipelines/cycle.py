"""`cem cycle`: the closed loop on the built-in world, one month per cycle.

Each cycle reads the latest scoring run's action plan from the serving database, lets the
world answer it (``features.sources.world.step.advance_world``: the month is delivered,
lived and exported), then ingests, builds features, retrains on the schedule
``cycle.retrain_every_months`` and scores, which writes the next plan. The ingest validates
only the month appended to the event exports when the earlier rows are unchanged
(``features.ingest.incremental``; the customer snapshot and the identity-resolved tables are
ingested whole); the feature tables reuse every earlier snapshot whose inputs did not change
(``features.transforms.incremental``) and the online store gets the new month only.

Every plan gets the cycle's budget (``cycle.budget_share``). The learning curve (evaluation,
from the hidden truth) is what each delivered plan was truly worth beside the plans a team
could make instead at the same budget; those are valued when the plan is scored and kept
with its rows under ``reports/cycle/plans`` until the world has answered it.

The stages are plain callables, so the Prefect flow (``pipelines.cycle_flow.cycle_flow``) and
tests wire the same loop.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from configs.settings import SOURCE_NOTE, Settings

PLAN_COLUMNS = ("customer_id", "action_id", "rep_id", "rank", "control_group", "arm",
                "assignment_probability")


@dataclass
class Stages:
    advance: Callable[[pd.DataFrame | None], object]   # the world answers a plan: a StepSummary
    ingest: Callable[[], object]
    features: Callable[[], object]
    train: Callable[[], object]
    score: Callable[..., dict]   # score(ceiling=...): plans the next month (``score_cycle``)
    impact: Callable[[], object] | None = None   # the impact report from realized outcomes


def plain_stages(settings: Settings, ceiling_seed: int = 0) -> Stages:
    """The cycle's stages as plain calls, without Prefect (tests; the ingest validates the new
    month only, the feature tables are built for the new snapshots only, both staged; training
    is what ``cem train`` runs)."""
    from features.ingest import run_ingest
    from features.staging import staged
    from features.store import apply_definitions, feature_store
    from features.transforms import build_feature_tables
    from models import registry
    from models.churn.train import train_and_log_churn
    from models.nps.train import train_and_log_nps
    from models.uplift.train import train_and_log_uplift

    def ingest() -> None:     # appended rows only when nothing earlier changed
        clean_dir, quarantine_dir = settings.clean_dir, settings.quarantine_dir
        with staged(clean_dir) as clean, staged(quarantine_dir) as quarantine:
            run_ingest(settings.raw_dir, clean, quarantine, settings.ingest,
                       previous=(clean_dir, quarantine_dir))
            if (clean_dir / SOURCE_NOTE).is_file():     # what the export is (run names)
                shutil.copy2(clean_dir / SOURCE_NOTE, clean / SOURCE_NOTE)

    def features() -> None:
        with staged(settings.feature_dir) as out:    # earlier snapshots reused when unchanged
            build_feature_tables(settings.clean_dir, out, settings.features,
                                 previous=settings.feature_dir)
        apply_definitions(feature_store(settings), settings)

    def train() -> None:
        with registry.one_training(settings):
            train_and_log_churn(settings)
            train_and_log_nps(settings)
            train_and_log_uplift(settings)

    from models.impact import run_impact

    return Stages(
        impact=lambda: run_impact(settings),
        advance=lambda plan: advance(settings, plan),
        ingest=ingest, features=features, train=train,
        score=lambda ceiling=True: score_cycle(settings, ceiling, ceiling_seed))


def latest_run_id(settings: Settings) -> str | None:
    """The newest complete scoring run's id (None before the first run)."""
    from serving.db.schema import engine_for
    from serving.db.write import latest_complete_run

    if settings.serving.database_url is None and not (settings.serving_dir / "serving.db").exists():
        return None
    with engine_for(settings).connect() as conn:
        run = latest_complete_run(conn)
    return None if run is None else run.run_id


def latest_plan(settings: Settings) -> pd.DataFrame | None:
    """The action plan of the newest complete scoring run (None before the first run)."""
    from sqlalchemy import select

    from serving.db.schema import action_plan, engine_for
    from serving.db.write import latest_complete_run

    if settings.serving.database_url is None and not (settings.serving_dir / "serving.db").exists():
        return None
    with engine_for(settings).connect() as conn:
        run = latest_complete_run(conn)
        if run is None:
            return None
        cols = [action_plan.c[name] for name in PLAN_COLUMNS]
        rows = conn.execute(select(*cols).where(action_plan.c.run_id == run.run_id)).all()
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def advance(settings: Settings, plan: pd.DataFrame | None):
    """One month of the world, with the delivery rules of ``settings.cycle``."""
    from features.sources.world.step import advance_world

    [step] = advance_world(settings.truth_dir, settings.raw_dir, plan, 1,
                           capacity=settings.cycle.rep_actions_per_month,
                           programme_runs=settings.cycle.programme_runs,
                           holdout_share=settings.prescribe.holdout_share)
    return step


def retrain_due(step: int, every: int) -> bool:
    """Retrain when the months stepped since the history reach a multiple of ``every``."""
    return every > 0 and step % every == 0


def curve_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports" / "cycle"


def cycle_budget(settings: Settings, customers: int) -> float | None:
    """Money for about ``cycle.budget_share`` of the active customers (bench_policy's "2 %")."""
    from models.prescribe import load_catalogue

    share = settings.cycle.budget_share
    if share is None:
        return settings.prescribe.budget
    return share * customers * float(np.mean(load_catalogue(settings.prescribe.actions_file).column("cost")))


def ceiling_due(cycle: int, every: int) -> bool:
    """The feature ceiling of the plan delivered in ``cycle`` is refit (its costly part)."""
    return every > 0 and cycle % every == 0


def score_cycle(settings: Settings, ceiling: bool = True, seed: int = 0, client=None) -> dict:
    """The cycle's scoring run at the cycle's budget; the comparison plans of the same budget
    are valued from the truth and kept with the plan's rows (``reports/cycle/plans``).
    ``client``: a ``distributed.Client``: customers scored per bucket on its workers (the
    same run: ``serving.cluster_scoring``); the comparison plans are valued here."""
    from models.prescribe.evaluate import comparison_values
    from serving.batch import run_batch_scoring
    from serving.batch_inputs import active_customers, latest_snapshot

    as_of = latest_snapshot(settings)
    budget = cycle_budget(settings, len(active_customers(settings.clean_dir, as_of)))
    settings = settings.model_copy(update={"prescribe": settings.prescribe.model_copy(
        update={"budget": budget})})
    kept: dict = {}

    def review(result, bundle) -> dict:
        started = time.perf_counter()
        values = comparison_values(settings, result.candidates, result.contacts, bundle.catalogue,
                                   result.as_of, budget, seed, ceiling, bundle)
        cols = [c for c in ("customer_id", "action_id", "p_churn", "value_at_risk", "cost",
                            "control_group", "arm") if c in result.actions]
        kept.update(rows=result.actions[cols], values=values)
        return {"evaluation_seconds": time.perf_counter() - started}

    summary = run_batch_scoring(settings, as_of, review=review, client=client)
    folder = curve_dir(settings) / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    kept["rows"].to_parquet(folder / f"{summary['run_id']}.parquet", index=False)
    (folder / f"{summary['run_id']}.json").write_text(json.dumps(
        {"as_of": as_of.isoformat(), "budget": budget, "values": kept["values"]}, indent=1))
    return summary


def recorded_plan(settings: Settings, run_id: str | None) -> tuple[pd.DataFrame, dict] | None:
    """A cycle-scored plan's rows and comparison values (None: not scored by a cycle)."""
    if run_id is None:
        return None
    path = curve_dir(settings) / "plans" / f"{run_id}.parquet"
    if not path.exists():
        return None
    return pd.read_parquet(path), json.loads(path.with_suffix(".json").read_text())


@contextmanager
def _timed(timings: dict, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def run_cycle(settings: Settings, stages: Stages, timings: dict | None = None) -> dict:
    """One cycle: the world answers the latest plan; ingest, features, (train), score, and
    the impact report (``models.impact``: saved for the manager's page, logged to MLflow).

    Returns the cycle's line: the month, what was planned and delivered, the learning curve's
    point for the delivered plan (evaluation: read from the world's hidden truth) and the run.
    A plan not scored by a cycle (``cem score`` before the loop: no cycle budget, nothing
    recorded to compare with) is first re-planned. ``timings`` receives each stage's seconds.

    A cycle interrupted after the world's month (a crash or a kill in training, say) is
    carried on by the next call from the stage that did not finish: the world is never asked
    to live the same plan twice (``reports/cycle/progress.json``, see ``read_progress``).
    """
    from features.sources.world.evaluate import curve_row, delivered_value

    timings = {} if timings is None else timings
    done = read_curve(settings)
    progress = read_progress(settings)
    carried_on = progress is not None
    if progress is None:
        cycle = len(done) + 1
        run_id = latest_run_id(settings)
        if run_id is not None and recorded_plan(settings, run_id) is None:
            with _timed(timings, "score"):
                scored = stages.score(ceiling=ceiling_due(cycle, settings.cycle.ceiling_every_months))
            run_id = scored.get("run_id")
            timings["evaluation"] = timings.get("evaluation", 0.0) + scored.get("evaluation_seconds", 0.0)
        with _timed(timings, "advance"):
            step = stages.advance(latest_plan(settings))
        progress = {"cycle": cycle, "run_id": run_id, "step": _jsonable(asdict(step)), "done": []}
        write_progress(settings, progress)      # the world has answered: from here, carry on
    cycle, step = progress["cycle"], _step(progress["step"])
    with _timed(timings, "evaluation"):
        value = delivered_value(settings.truth_dir, step.month)
        if len(done) and (done["cycle"] == cycle).any():      # carried on after the point
            point = done[done["cycle"] == cycle].iloc[-1].to_dict()
        else:
            point = curve_row(settings.truth_dir, step.month,
                              *(recorded_plan(settings, progress["run_id"]) or (None, None)))
            point = {"cycle": cycle, **point, "cumulative":
                     (done["cumulative"].iloc[-1] if len(done) else 0.0) + point["total"]}
            write_curve(settings, pd.concat([done, pd.DataFrame([point])], ignore_index=True))
    retrained = retrain_due(step.step, settings.cycle.retrain_every_months)
    todo = [("ingest", stages.ingest), ("features", stages.features)]
    todo += [("train", stages.train)] if retrained else []
    todo += [("score", lambda: stages.score(
        ceiling=ceiling_due(cycle + 1, settings.cycle.ceiling_every_months)))]
    todo += [("impact", stages.impact)] if stages.impact is not None else []
    for name, run in todo:
        if name in progress["done"]:
            continue
        with _timed(timings, name):
            out = run()
        if name == "score":
            progress["scored"] = {k: out.get(k) for k in ("run_id", "planned", "evaluation_seconds")}
            seconds = out.get("evaluation_seconds", 0.0)
            timings["score"] -= seconds
            timings["evaluation"] += seconds
        progress["done"].append(name)
        write_progress(settings, progress)
    scored = progress.get("scored", {})
    progress_path(settings).unlink()
    return {**asdict(step), "true_effect_90d": value["true_effect_90d"],
            "lost_to_capacity_90d": value["lost_to_capacity_90d"], "retrained": retrained,
            "run_id": scored.get("run_id"), "next_planned": scored.get("planned"), "curve": point,
            "seconds": {k: round(v, 2) for k, v in timings.items()},
            "carried_on": carried_on}


def progress_path(settings: Settings) -> Path:
    return curve_dir(settings) / "progress.json"


def read_progress(settings: Settings) -> dict | None:
    """The cycle under way after the world's month: its number, the plan the world answered,
    the month's summary and the stages done since (None: no cycle under way)."""
    path = progress_path(settings)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_progress(settings: Settings, progress: dict) -> None:
    """Written whole or not at all (a kill mid-write leaves the previous file)."""
    path = progress_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress, indent=1))
    os.replace(tmp, path)


def _jsonable(summary: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, date) else int(v) for k, v in summary.items()}


def _step(summary: dict):
    from features.sources.world.step import StepSummary

    return StepSummary(**{**summary, "month": date.fromisoformat(summary["month"])})


def read_curve(settings: Settings) -> pd.DataFrame:
    """The learning curve so far (``reports/cycle/learning_curve.csv``; empty before cycle 1)."""
    path = curve_dir(settings) / "learning_curve.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def write_curve(settings: Settings, curve: pd.DataFrame) -> None:
    folder = curve_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    curve.to_csv(folder / "learning_curve.csv", index=False)
    (folder / "learning_curve.json").write_text(curve.to_json(orient="records", indent=1))


def cycle_line(line: dict) -> str:
    """One printed line per cycle."""
    resumed = " (carried on from where it was interrupted)" if line.get("carried_on") else ""
    return (f"{line['month']:%Y-%m}{resumed}: planned {line['planned']:,}, delivered {line['delivered']:,}"
            f" (held out {line['held_out']:,}, over capacity {line['over_capacity']:,}, not allowed "
            f"{line['not_allowed']:,}, not open {line['not_open']:,}); true effect of the delivered "
            f"actions on 90-day churners {line['true_effect_90d']:+.1f}"
            f"{'; retrained' if line['retrained'] else ''}; next plan {line['next_planned'] or 0:,}"
            " actions")


def curve_line(point: dict) -> str:
    """The learning curve's point of a cycle, in one line (true values, currency units)."""
    def money(name: str) -> str:
        value = point.get(name)
        return "n/a" if value is None or pd.isna(value) else f"{value:,.0f}"

    share = point.get("exploit_share_of_ceiling")
    share = "n/a" if share is None or pd.isna(share) else f"{share:.0%}"
    return (f"  learning curve, cycle {point['cycle']}: exploit {money('exploit')} "
            f"({share} of the ceiling); oracle {money('oracle')}, ceiling {money('feature_ceiling')}, "
            f"learner without the gate {money('ungated')}, "
            f"risk-ranked {money('risk_ranked')}, random {money('random')}, do nothing "
            f"{money('do_nothing')}; experiments {money('experiments')}; cumulative "
            f"{money('cumulative')} (budget {money('budget')})")
