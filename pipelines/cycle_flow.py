"""The closed loop's Prefect flow (`cem cycle`): one month of the world, then the pipeline's
own flows (``pipelines.flows``) over it. The stages' logic is in ``pipelines.cycle``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from configs.settings import load_settings
from pipelines.flows import RUN_METRICS, features_flow, ingest_flow, train_flow


@task(name="advance-world")
def advance_world_task(data_dir: Path, plan):
    """The built-in world lives one more month, answering ``plan`` (``pipelines.cycle``)."""
    from pipelines.cycle import advance

    return advance(load_settings(data_dir=data_dir), plan)


@task(name="score-cycle")
def cycle_score_task(data_dir: Path, ceiling: bool = True, scheduler: str | None = None) -> dict:
    """The cycle's scoring at the cycle's budget, with the learning curve's comparison plans;
    per customer bucket on the Dask workers of ``scheduler`` when given (the same run)."""
    from models.registry import write_metrics
    from pipelines.cycle import score_cycle

    settings = load_settings(data_dir=data_dir)
    if scheduler is None:
        summary = score_cycle(settings, ceiling)
    else:
        from pipelines.cluster import connect

        with connect(scheduler) as client:
            summary = score_cycle(settings, ceiling, client=client)
    write_metrics(settings, "run", {k: summary[k] for k in RUN_METRICS}, name="score.json")
    return summary


@task(name="impact-report")
def impact_task(data_dir: Path) -> str:
    """The impact report from realized outcomes, saved for the manager's page and logged."""
    from models.impact import run_impact

    return str(run_impact(load_settings(data_dir=data_dir)).path)


@flow(name="cycle")
def cycle_flow(data_dir: Path, scheduler: str | None = None) -> dict:
    """One month of the closed loop: the world answers the latest plan; ingest, features,
    retrain on schedule, score (the next plan).

    ``scheduler``: a Dask scheduler's address: the incremental ingest, features, the churn
    model's final boosters and scoring run on its workers as in `cem ingest` / `features` /
    `train` / `score`; the world's month runs here.
    """
    from features.ingest.cluster import ingest_on
    from pipelines.cycle import Stages, run_cycle

    s = load_settings(data_dir=data_dir)

    def ingest():
        with ingest_on(scheduler):
            return ingest_flow(s.raw_dir, s.clean_dir, s.quarantine_dir, s.ingest,
                               incremental=True)

    stages = Stages(
        advance=lambda plan: advance_world_task(data_dir, plan),
        ingest=ingest,
        features=lambda: features_flow(data_dir, scheduler=scheduler),
        train=lambda: train_flow(data_dir, scheduler),
        score=lambda ceiling=True: cycle_score_task(data_dir, ceiling, scheduler),
        impact=lambda: impact_task(data_dir))
    return run_cycle(s, stages)
