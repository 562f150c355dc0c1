"""``score_on_cluster``: ``score_as_of`` with the per-customer work on Dask workers.

Each customer bucket's task (``serving.partitioned.score_partition``) reads, scores and
explains its customers and returns its rows; the client arbitrates once over every bucket's
candidates (rep capacity, budget, experiments and the comparison slices need them all),
lists the alerts, then asks each bucket for the reasons of its planned customers. The result
equals the in-process run's, row for row (tests/serving/test_cluster_scoring.py). On
PostgreSQL each bucket also writes its customers' rows into a run opened here, which
``write_scoring_run`` finishes (``serving.db.partitioned_write``; tests/serving/test_cluster_db_writes.py).
Design: docs/cluster.md#batch-scoring-on-the-cluster
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from distributed import as_completed

from configs.settings import Settings
from features.transforms.buckets import bucket_count
from models import registry
from models.bundle import ModelBundle
from models.frame import categorical_dtype
from models.prescribe.arms import plan_arms, plan_why
from models.prescribe.consent import CONSENT_COLUMNS, checked_channels
from models.prescribe.drivers import DriverInputs
from models.scoring import ScoreResult, shown_actions
from serving.alerts import NOT_MEASURED, NOT_SHOWN
from serving.batch import BatchResult, _step
from serving.batch_assemble import run_summary, show_plan
from serving.contact import contact_channels, latest_comment_rows
from serving.db.frames import RunMeta
from serving.db.partitioned_write import (
    PendingRun,
    abandon_run,
    bucket_frames,
    open_run,
    workers_write,
    write_bucket,
)
from serving.db.schema import engine_for
from serving.partitioned import Partition, reasons_partition, score_partition, split_by_bucket
from serving.run_alerts import risk_review_alerts

KINDS = {"save_desk": 0, "detractor": 1, "usage_drop": 2}   # the in-process order of the alerts


def _by_position(frames: list[pd.DataFrame], order: np.ndarray) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).iloc[order].reset_index(drop=True)


def merge_scores(parts: list[Partition]) -> tuple[ScoreResult, pd.DataFrame, pd.Index]:
    """The buckets' scores, tags and contacts in customer id order (the in-process order),
    tag events by tag then customer; and the customers' index (position by id). Buckets
    that wrote their own rows send no tags nor events: those come back empty."""
    ids = np.concatenate([p.customers["customer_id"].to_numpy() for p in parts])
    order = np.argsort(ids, kind="stable")
    customers = _by_position([p.customers for p in parts], order)
    tags = (_by_position([p.tags for p in parts], order) if parts[0].written is None
            else parts[0].tags)                # written by the buckets: not sent back
    contacts = _by_position([p.contacts for p in parts], order)
    where = pd.Index(customers["customer_id"])
    events = pd.concat([p.tag_events for p in parts], ignore_index=True)
    rank = events["tag"].map({tag: i for i, tag in enumerate(tags.columns)}).to_numpy(np.float64)
    events = events.iloc[np.lexsort((where.get_indexer(events["customer_id"]), rank))]
    return ScoreResult(customers, None, tags, events.reset_index(drop=True)), contacts, where


def merge_candidates(parts: list[Partition], customers: pd.DataFrame, where: pd.Index,
                     bundle: ModelBundle) -> pd.DataFrame:
    """The long candidate frame ``planning_candidates`` gives in-process, same rows, order,
    index and dtypes, from the buckets' arrays and the customers' scores."""
    ids = np.concatenate([p.wide.customer_id for p in parts])
    pos = where.get_indexer(ids)
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    catalogue, k, n = bundle.catalogue, len(bundle.catalogue), len(pos)
    pairs = {c: np.concatenate([p.wide.pairs[c] for p in parts])[order].ravel()
             for c in parts[0].wide.pairs}
    def mine(column: str, dtype=None) -> np.ndarray:    # the candidates' customers' column, once each
        return np.repeat(customers[column].to_numpy(dtype)[pos], k)

    action = np.tile(np.arange(k), n)
    frame = pd.DataFrame({
        "customer_id": mine("customer_id"),
        "rep_id": mine("rep_id"),
        "action_id": pd.Categorical.from_codes(action, dtype=categorical_dtype(tuple(catalogue.ids))),
        "p_churn": mine("churn_probability", np.float64),
        "uplift": pairs["uplift"],
        "value_at_risk": mine("value_at_risk", np.float64),
        "cost": np.tile(catalogue.column("cost"), n),
        "handling_minutes": np.tile(catalogue.column("handling_minutes"), n),
        "expected_value": pairs["expected_value"],
        "eligible": pairs["eligible"],
        **({"expected_value_low": pairs["expected_value_low"]} if "expected_value_low" in pairs else {}),
    }, index=np.repeat(pos * k, k) + action, copy=False)
    return frame


def merge_alerts(parts: list[Partition], where: pd.Index) -> pd.DataFrame:
    """Save-desk alerts, then detractors, then usage drops, each in customer order."""
    alerts = pd.concat([p.alerts for p in parts], ignore_index=True)
    kind = alerts["kind"].map(KINDS).to_numpy(np.float64)
    return alerts.iloc[np.lexsort((where.get_indexer(alerts["customer_id"]), kind))] \
        .reset_index(drop=True)


def explain_planned(client, model, settings: Settings, as_of: date, customers: pd.DataFrame,
                    wanted: pd.Series, count: int) -> None:
    """Reasons, from their bucket's worker, of the ``wanted`` customers without any yet."""
    rows = np.flatnonzero((customers["customer_id"].isin(wanted) & customers["reasons"].isna()).to_numpy())
    if not len(rows):
        return
    entity = customers.iloc[rows][["customer_id", "rep_id"]]
    futures = [client.submit(reasons_partition, settings, model, as_of, part, pure=False)
               for part in split_by_bucket(entity, count) if len(part)]
    got = pd.concat(client.gather(futures))
    customers.loc[rows, "reasons"] = got.reindex(entity["customer_id"].to_numpy()).to_numpy()


def first_alerts(alerts: pd.DataFrame) -> pd.Series:
    """Each customer's first alert reason, kinds in the in-process order (``KINDS``)."""
    order = np.argsort(alerts["kind"].map(KINDS).to_numpy(np.float64), kind="stable")
    return alerts.iloc[order].drop_duplicates("customer_id").set_index("customer_id")["reason"]


def bucket_rows(settings: Settings, as_of: date, part: Partition) -> pd.DataFrame:
    """The bucket's customer rows as the run stores them, but for what arbitration decides
    (``partitioned_write.ARBITRATED``): the client sets those of the customers it changes. The
    scorer's own best action and value are left out: only the plan's are shown."""
    rows = part.customers.drop(columns=["recommended_action", "expected_value"], errors="ignore")
    rows["alert"] = rows["customer_id"].map(first_alerts(part.alerts))
    comments = latest_comment_rows(settings.clean_dir, as_of, rows["customer_id"])
    for column in comments:
        rows[column] = rows["customer_id"].map(comments[column])
    rows["contact_channels"] = contact_channels(settings.clean_dir, rows["customer_id"], only=True)
    return rows


def score_and_write(settings: Settings, bundle: ModelBundle, as_of: date, index: int, count: int,
                    previous: pd.DataFrame | None, run: PendingRun) -> Partition:
    """``score_partition``, then the bucket's scores, tags and tag events into the open run;
    the tags and events are not sent back (the client needs only their counts)."""
    part = score_partition(settings, bundle, as_of, index, count, previous)
    written = write_bucket(run, bucket_frames(run, as_of, bucket_rows(settings, as_of, part),
                                              part.tags, part.tag_events))
    return replace(part, tags=part.tags.iloc[:0], tag_events=part.tag_events.iloc[:0],
                   written=written)


def open_bucket_run(settings: Settings, bundle: ModelBundle, as_of: date) -> PendingRun | None:
    """On PostgreSQL, the run the buckets write into, with the lineage ``run_batch_scoring``
    gives the run; None on SQLite, where the client writes the whole run."""
    if not workers_write(settings.serving_database_url):
        return None
    meta = RunMeta(bundle.versions, bundle.feature_service, registry.data_version(settings))
    engine = engine_for(settings)
    try:
        return open_run(engine, as_of, meta)
    finally:
        engine.dispose()


def changed_customers(customers: pd.DataFrame, explained: np.ndarray, bucket_alert: pd.Series) -> np.ndarray:
    """Customers whose arbitration columns differ from what their bucket wrote: a shown
    action, reasons explained after arbitration, or an alert the buckets did not raise."""
    alert = customers["alert"]
    moved = (customers["recommended_action"].notna() | (customers["reasons"].notna() & ~explained)
             | (alert.notna() & alert.ne(bucket_alert)))
    return customers.loc[moved.to_numpy(), "customer_id"].to_numpy()


def score_buckets(client, settings: Settings, model, as_of: date, previous: pd.DataFrame | None,
                  count: int, run: PendingRun | None) -> list[Partition]:
    """Every bucket's ``Partition``; with ``run``, each bucket also writes its rows. All tasks
    end before a failure is raised, so that no bucket still writes while the run is removed."""
    task, extra = (score_partition, ()) if run is None else (score_and_write, (run,))
    futures = [client.submit(task, settings, model, as_of, i, count, prev, *extra, pure=False)
               for i, prev in enumerate(split_by_bucket(previous, count))]
    return gather_as_done(futures)


def gather_as_done(futures: list) -> list:
    """The tasks' results in submission order, each fetched as soon as its task ends and then
    released on its worker: a worker holds the bucket it scores, not every bucket it has
    scored until the last one ends (its peak then grew with the customers). All tasks end
    before a failure is raised."""
    where = {future.key: i for i, future in enumerate(futures)}
    out, failed = [None] * len(futures), None
    for future in as_completed(futures):
        if future.status != "finished":
            failed = failed or future
            continue
        out[where[future.key]] = future.result()
        future.release()
    if failed is not None:
        failed.result()             # raises the task's error
    return out


def score_on_cluster(client, settings: Settings, bundle: ModelBundle, as_of: date,
                     previous: pd.DataFrame | None, timings: dict | None = None) -> BatchResult:
    """Everything a run writes, as ``score_as_of`` gives it, with the per-customer steps on
    the workers of ``client`` (a ``distributed.Client``). On PostgreSQL the result carries the
    open run (``pending``) that ``write_scoring_run`` finishes; on any failure here that run is
    removed."""
    run = open_bucket_run(settings, bundle, as_of)
    try:
        result = _score_on_cluster(client, settings, bundle, as_of, previous, timings, run)
    except BaseException:
        if run is not None:
            abandon_run(run)
        raise
    return result


def _score_on_cluster(client, settings: Settings, bundle: ModelBundle, as_of: date,
                      previous: pd.DataFrame | None, timings: dict | None,
                      run: PendingRun | None) -> BatchResult:
    count = bucket_count(settings.clean_dir, len(client.scheduler_info()["workers"]))
    model = client.scatter(bundle, broadcast=True)
    with _step(timings, "partitions"):
        parts = score_buckets(client, settings, model, as_of, previous, count, run)
    with _step(timings, "plan"):
        scored, contacts, where = merge_scores(parts)
        customers = scored.customers
        candidates = merge_candidates(parts, customers, where, bundle)
        alerts = merge_alerts(parts, where)
        explained = customers["reasons"].notna().to_numpy()   # what the buckets wrote
        bucket_alert = customers["customer_id"].map(first_alerts(alerts))
        blocked = sum(p.blocked for p in parts)
        experiment = DriverInputs.concat([p.experiment_inputs for p in parts])
        written = {kind: sum(p.written[kind] for p in parts) for kind in (parts[0].written or {})}
        del parts
        arms = plan_arms(candidates, contacts, bundle.catalogue, settings.prescribe, bundle.uplift,
                         experiment, as_of)
        actions = arms.actions
        scored.candidates = candidates
    with _step(timings, "assemble"):
        shown = show_plan(customers, actions, settings, as_of)
        if not shown_actions(bundle):   # no action with measured value: review by risk instead
            why = NOT_MEASURED if bundle.uplift is None else NOT_SHOWN
            review = risk_review_alerts(customers, settings.prescribe.risk_review_per_rep, as_of, why)
            alerts = pd.concat([alerts, review], ignore_index=True)
        first = alerts.drop_duplicates("customer_id").set_index("customer_id")["reason"]
        customers["alert"] = customers["customer_id"].map(first)
    with _step(timings, "reasons"):
        wanted = pd.concat([actions["customer_id"], alerts["customer_id"]], ignore_index=True)
        explain_planned(client, model, settings, as_of, customers, wanted, count)
    with _step(timings, "why"):
        reasons = pd.Series(actions["customer_id"].map(customers.set_index("customer_id")["reasons"])
                            .to_numpy(), index=actions.index, dtype=object)
        actions["why"] = plan_why(actions, reasons, bundle.catalogue)
    consent = [c for c in CONSENT_COLUMNS
               if c in pq.read_schema(settings.clean_dir / "crm_customers.parquet").names]
    summary = run_summary(customers, actions, shown, alerts, arms.plan.skipped, arms.summary,
                          checked_channels(pd.DataFrame(columns=consent)), blocked, bundle)
    pending = None if run is None else replace(
        run, changed=changed_customers(customers, explained, bucket_alert), written=written)
    return BatchResult("", as_of, scored, arms.plan, actions, alerts, contacts, summary, candidates,
                       pending)
