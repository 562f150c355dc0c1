"""Prefect 3 flows: thin wiring over the step functions in features/, models/ and serving/.

Tasks take and return file paths, never large DataFrames. Compute tasks do not
retry (a deterministic failure would fail again); tasks that only move data to or
from a store retry. By default flows run in Prefect's local ephemeral mode; set
``PREFECT_API_URL`` (after ``prefect server start``) to see runs in the Prefect UI.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task

from configs.settings import SOURCE_NOTE, FeaturesParams, IngestParams, SimulateParams, load_settings
from features.staging import staged
from pipelines import progress

REGISTRY_FILE = "registry.db"   # the Feast registry in feast_dir (features.store.repo_config)


@task(name="simulate-world")
def simulate_task(params: SimulateParams, raw_dir: Path, truth_dir: Path) -> dict[str, int]:
    from features.sources.world import simulate_world

    summary = simulate_world(params, raw_dir, truth_dir, on_progress=progress.report)
    return summary.rows


@task(name="ingest-sources")
def ingest_task(source_dir: Path, clean_dir: Path, quarantine_dir: Path, params: IngestParams,
                previous: tuple[Path, Path] | None = None):
    from features.ingest import run_ingest

    return run_ingest(source_dir, clean_dir, quarantine_dir, params,
                      on_table=lambda name: progress.advance(), previous=previous)


@flow(name="simulate")
def simulate_flow(params: SimulateParams, raw_dir: Path, truth_dir: Path,
                  on_cluster: bool = False) -> dict[str, int]:
    """Write the built-in world's source exports and hidden truth.

    ``on_cluster``: the flow runs with Dask's task runner (``pipelines.cluster.on_cluster``)
    and the customer chunks are tasks on the workers; the files are the same.
    """
    if on_cluster:
        from pipelines.cluster import simulate_on_workers

        return simulate_on_workers(params, raw_dir, truth_dir)
    return simulate_task(params, raw_dir, truth_dir)


@task(name="stage-mapped-export")
def stage_task(mapping: Path, source_dir: Path, staged_dir: Path) -> dict[str, int]:
    from features.sources.mapping import stage_mapping

    return stage_mapping(mapping, source_dir, staged_dir)


@flow(name="ingest")
def ingest_flow(source_dir: Path, clean_dir: Path, quarantine_dir: Path, params: IngestParams,
                mapping: Path | None = None, staged_dir: Path | None = None,
                incremental: bool = False):
    """Validate sources, resolve identities, write clean tables and quarantine.

    With a ``mapping`` file the company export in ``source_dir`` is first written as contract
    tables into ``staged_dir``, which is then ingested. Clean tables, report and quarantine
    are written whole or not at all (:func:`features.staging.staged`): a failed run leaves
    the previous ones. ``incremental`` (``cem cycle``): when only rows were appended to the
    event exports since the previous ingest, only those are validated
    (:mod:`features.ingest.incremental`); the outputs are the same as a full rebuild's.
    """
    name = source_name(source_dir, mapping)
    if mapping is not None:
        with staged(Path(staged_dir)) as out:
            stage_task(mapping, source_dir, out)
        source_dir, params = staged_dir, params.model_copy(update={"source_format": "csv"})
    with staged(Path(clean_dir)) as clean, staged(Path(quarantine_dir)) as quarantine:
        previous = (Path(clean_dir), Path(quarantine_dir)) if incremental else None
        report = ingest_task(source_dir, clean, quarantine, params, previous)
        (clean / SOURCE_NOTE).write_text(json.dumps({"name": name}))
    return report


def source_name(source_dir: Path, mapping: Path | None) -> str:
    """What the export is: its mapping's name, the note an export folder carries, or its folder."""
    if mapping is not None:
        from features.sources.mapping.load import load_mapping

        return load_mapping(mapping).name or Path(mapping).stem
    note = Path(source_dir) / SOURCE_NOTE
    return json.loads(note.read_text()).get("name", "") if note.is_file() else Path(source_dir).name


@task(name="build-feature-tables")
def build_features_task(clean_dir: Path, feature_dir: Path, params: FeaturesParams,
                        as_of: str | None = None, previous: Path | None = None,
                        scheduler: str | None = None) -> dict:
    """In this process, or per customer bucket on the Dask workers of ``scheduler`` (the
    same files: ``features.transforms.parallel``)."""
    from datetime import date

    from features.transforms import build_feature_tables

    day = date.fromisoformat(as_of) if as_of else None
    if scheduler is None:
        return build_feature_tables(clean_dir, feature_dir, params, as_of=day, previous=previous)
    from features.transforms.parallel import build_on_cluster
    from pipelines.cluster import connect

    with connect(scheduler) as client:
        return build_on_cluster(client, clean_dir, feature_dir, params, as_of=day,
                                previous=previous)


@task(name="feast-apply", retries=2, retry_delay_seconds=2)
def feast_apply_task(data_dir: Path, registry: Path | None = None) -> list[str]:
    """Register the definitions, in ``registry`` when given (a staged copy of the registry)."""
    from feast import FeatureStore

    from features.store import apply_definitions, repo_config

    settings = load_settings(data_dir=data_dir)
    config = repo_config(settings)
    if registry is not None:
        config = config.model_copy(update={"registry_config": str(registry)})
    return apply_definitions(FeatureStore(config=config), settings)


@task(name="feast-materialize", retries=2, retry_delay_seconds=2)
def feast_materialize_task(data_dir: Path, scheduler: str | None = None) -> None:
    """Fill the online store: the new snapshots only when the build reused earlier ones;
    part by part on the workers of ``scheduler`` when given."""
    from features.store import feature_store, materialize_end, materialize_latest
    from features.transforms.incremental import new_from

    settings = load_settings(data_dir=data_dir)
    start = new_from(settings.feature_dir)
    store, end = feature_store(settings), materialize_end(settings.feature_dir)
    start = None if start is None else start.to_pydatetime()
    if scheduler is None:
        materialize_latest(store, end, start=start)
        return
    from pipelines.cluster import connect

    with connect(scheduler) as client:
        materialize_latest(store, end, start=start, client=client)


@flow(name="features")
def features_flow(data_dir: Path, as_of: str | None = None, scheduler: str | None = None) -> dict:
    """Build the fused X+O feature tables, register them in Feast, fill the online store.

    ``scheduler``: a Dask scheduler's address (``pipelines.cluster.scheduler_address``): the
    tables are built per customer bucket on its workers, and the online store filled part by
    part there; Feast's registry is applied here.
    """
    settings = load_settings(data_dir=data_dir)
    names: list[str] = []
    # tables and registry change together: the registry is applied (in a staged copy) once
    # the new tables are at their final paths, and a failure puts the previous tables back;
    # the online store is a cache that every run refills from the tables
    with staged(settings.feast_dir / REGISTRY_FILE, file=True, seed=True) as registry:
        def register() -> None:
            names.extend(feast_apply_task(data_dir, registry))

        with staged(settings.feature_dir, after_swap=register) as out:
            rows = build_features_task(settings.clean_dir, out, settings.features, as_of,
                                       previous=settings.feature_dir, scheduler=scheduler)
            progress.advance()
    progress.advance()
    feast_materialize_task(data_dir, scheduler)
    progress.advance()
    return {"rows": rows, "registered": names}


@task(name="train-churn")
def train_churn_task(data_dir: Path, scheduler: str | None = None) -> dict:
    """In this process, or with the final boosters on the Dask workers of ``scheduler``
    (``models.churn.distributed``)."""
    from models.churn.train import train_and_log_churn

    settings = load_settings(data_dir=data_dir)
    if scheduler is None:
        return train_and_log_churn(settings)
    from pipelines.cluster import connect

    with connect(scheduler) as client:
        return train_and_log_churn(settings, client=client)


@task(name="train-nps")
def train_nps_task(data_dir: Path) -> dict:
    """The predicted-NPS model, or ``{"skipped": why}`` when the data cannot support it."""
    from models.nps.data import nps_support
    from models.nps.train import train_and_log_nps

    settings = load_settings(data_dir=data_dir)
    why = nps_support(settings.clean_dir, settings.train.satisfaction_scale,
                      settings.train.satisfaction_validation_months)
    return {"skipped": why} if why else train_and_log_nps(settings)


@flow(name="train")
def train_flow(data_dir: Path, scheduler: str | None = None) -> dict:
    """Train, explain, evaluate and register the models; champions move only when all trained.

    ``scheduler``: a Dask scheduler's address: the churn model's final boosters are fitted
    on its workers (``train.cluster_fit``); the rest runs here.
    """
    from models import registry

    with registry.one_training(load_settings(data_dir=data_dir)):
        churn = train_churn_task(data_dir, scheduler)
        progress.advance()
        nps = train_nps_task(data_dir)
        progress.advance()
        uplift = train_uplift_task(data_dir)
        progress.advance()
    return {"churn": churn, "nps": nps, "uplift": uplift}


@task(name="train-uplift")
def train_uplift_task(data_dir: Path) -> dict:
    from models.uplift.data import uplift_support
    from models.uplift.train import train_and_log_uplift

    settings = load_settings(data_dir=data_dir)
    recorded = recorded_outcomes(settings)
    why = uplift_support(settings.clean_dir, recorded)
    return {"skipped": why} if why else train_and_log_uplift(settings, recorded=recorded)


def recorded_outcomes(settings):
    """Outcomes reps recorded and hold-outs of earlier scoring runs (None before the first run)."""
    from serving.db.write import engine_for, export_outcomes

    if settings.serving.database_url is None and not (settings.serving_dir / "serving.db").exists():
        return None
    return export_outcomes(engine_for(settings))


RUN_METRICS = ("customers", "planned", "shown", "held_out", "alerts", "expected_value_shown",
               "blocked_by_consent")


@task(name="score-customers")
def score_task(data_dir: Path, as_of: str | None, scheduler: str | None = None) -> dict:
    """In this process, or per customer bucket on the Dask workers of ``scheduler``
    (``serving.cluster_scoring``: the same run)."""
    from datetime import date

    from models.prescribe.evaluate import policy_value
    from models.registry import write_metrics
    from serving.batch import run_batch_scoring

    settings = load_settings(data_dir=data_dir)

    def review(result, bundle) -> dict:
        actions = result.actions   # the model's own plan: experiments and comparison slices aside
        if "arm" in actions:
            actions = actions[actions["arm"].astype(str) == "policy"]
        return {"policy_value": policy_value(settings, result.candidates, result.contacts,
                                             bundle.catalogue, actions, result.as_of)}

    day = date.fromisoformat(as_of) if as_of else None
    if scheduler is None:
        summary = run_batch_scoring(settings, day, review=review)
    else:
        from pipelines.cluster import connect

        with connect(scheduler) as client:
            summary = run_batch_scoring(settings, day, review=review, client=client)
    write_metrics(settings, "run", {k: summary[k] for k in RUN_METRICS}, name="score.json")
    if summary["policy_value"] is not None:
        write_metrics(settings, "policy_value", summary["policy_value"], name="score.json")
    return summary


@flow(name="score")
def score_flow(data_dir: Path, as_of: str | None = None, scheduler: str | None = None) -> dict:
    """Score every active customer with the champion models; plan actions; write the serving DB.

    ``scheduler``: a Dask scheduler's address: the per-customer steps run on its workers.
    """
    result = score_task(data_dir, as_of, scheduler)
    progress.advance()
    return result
