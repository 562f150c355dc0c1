"""`cem cycle`: the closed loop on the built-in world, one month per cycle.

Each cycle reads the latest scoring run's action plan from the serving database, lets the
world answer it (``features.sources.world.step.advance_world``: the month is delivered,
lived and exported), then ingests, builds features, retrains on the schedule
``cycle.retrain_every_months`` and scores, which writes the next plan. In this slice the
ingest and the feature tables are rebuilt whole every cycle.

The stages are plain callables, so the Prefect flow (``pipelines.flows.cycle_flow``) and
tests wire the same loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd

from configs.settings import Settings

PLAN_COLUMNS = ("customer_id", "action_id", "rep_id", "rank", "control_group")


@dataclass
class Stages:
    advance: Callable[[pd.DataFrame | None], object]   # the world answers a plan: a StepSummary
    ingest: Callable[[], object]
    features: Callable[[], object]
    train: Callable[[], object]
    score: Callable[[], dict]


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


def run_cycle(settings: Settings, stages: Stages) -> dict:
    """One cycle: the world answers the latest plan; ingest, features, (train), score.

    Returns the cycle's line: the month, what was planned and delivered, the true value
    of the delivered actions (evaluation: read from the world's hidden truth) and the run.
    """
    from features.sources.world.evaluate import delivered_value

    step = stages.advance(latest_plan(settings))
    stages.ingest()
    stages.features()
    retrained = retrain_due(step.step, settings.cycle.retrain_every_months)
    if retrained:
        stages.train()
    scored = stages.score()
    value = delivered_value(settings.truth_dir, step.month)
    return {**asdict(step), "true_effect_90d": value["true_effect_90d"],
            "lost_to_capacity_90d": value["lost_to_capacity_90d"], "retrained": retrained,
            "run_id": scored.get("run_id"), "next_planned": scored.get("planned")}


def cycle_line(line: dict) -> str:
    """One printed line per cycle."""
    return (f"{line['month']:%Y-%m}: planned {line['planned']:,}, delivered {line['delivered']:,}"
            f" (held out {line['held_out']:,}, over capacity {line['over_capacity']:,}, not allowed "
            f"{line['not_allowed']:,}, not open {line['not_open']:,}); true effect of the delivered "
            f"actions on 90-day churners {line['true_effect_90d']:+.1f}"
            f"{'; retrained' if line['retrained'] else ''}; next plan {line['next_planned'] or 0:,}"
            " actions")
