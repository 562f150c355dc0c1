"""Batch scoring: every active customer as of a date, planned and written in one run.

Steps (each a plain function; the Prefect score flow and `cem score` only call
``run_batch_scoring``): the customers open on ``as_of`` and their point-in-time
features from Feast; ``models.scoring.score_customers`` (the service's own function);
arbitration of the candidate actions under contact policy, capacity and budget, with
experiments and comparison slices beside the model's plan, each with a random hold-out
(``models.prescribe.arms``); reasons and a "why" for every planned action; alerts; reasons for
every other customer a rep sees (an alert, or the high churn-risk tier: TreeSHAP for
them only, not the whole book); then one atomic, idempotent write to the serving database.

A 1M-customer book is scored in row blocks on ``serving.batch_workers`` threads (LightGBM releases the GIL
while it predicts, which is most of the work); every output row depends on its own
customer only, so the blocks put back together equal one call on the whole frame. Each
step's seconds are logged (and returned through ``timings``) so a slow run shows where.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from configs.settings import Settings
from models import registry
from models.bundle import ModelBundle, load_champions
from models.prescribe.arms import ArmPlan, plan_arms, plan_why
from models.prescribe.consent import checked_channels, planning_candidates
from models.prescribe.tags import RISK_TIERS
from models.scoring import ScoreResult, check_features, reasons_json, score_customers, shown_actions
from serving.alerts import NOT_MEASURED, NOT_SHOWN
from serving.batch_assemble import run_summary, show_plan
from serving.batch_inputs import (
    active_customers,
    contact_consent,
    feature_rows,
    latest_snapshot,
    notices_given,
    recent_contacts,
)
from serving.caches import champion_copy
from serving.db.write import RunMeta, ScoringRun, engine_for, read_previous_tags, write_scoring_run
from serving.run_alerts import risk_review_alerts, save_desk_alerts, scoring_alerts

log = logging.getLogger(__name__)
BLOCK_ROWS = 200_000  # rows per block at most: bounds the scorer's intermediate frames
MIN_BLOCK_ROWS = 1_000  # smaller inputs stay in one block (threads would cost more than they save)
HIGH_TIER = RISK_TIERS[-1]  # customers of this churn-risk tier get reasons whether planned or not


@dataclass
class BatchResult:
    run_id: str
    as_of: date
    scored: ScoreResult
    plan: object
    actions: pd.DataFrame
    alerts: pd.DataFrame
    contacts: pd.DataFrame
    summary: dict
    candidates: pd.DataFrame   # what the plan chose from (notice and consent rules applied)
    pending: object | None = None   # a cluster run whose workers wrote the customers' rows
                                    # (serving.db.partitioned_write.PendingRun)


@contextmanager
def _step(timings: dict | None, name: str) -> Iterator[None]:
    """Record the seconds a step took under ``name`` (when ``timings`` is a dict)."""
    started = time.perf_counter()
    yield
    if timings is not None:
        timings[name] = round(time.perf_counter() - started, 3)


def row_blocks(n: int, workers: int, block_rows: int = BLOCK_ROWS) -> list[slice]:
    """Contiguous row ranges covering ``n`` rows: one per worker at least (if each keeps
    ``MIN_BLOCK_ROWS``), none longer than ``block_rows``."""
    count = max(-(-n // block_rows), min(workers, n // MIN_BLOCK_ROWS), 1)
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def in_blocks(fn: Callable[[pd.DataFrame], object], frame: pd.DataFrame, workers: int) -> list:
    """``fn`` of each row block of ``frame`` (on ``workers`` threads), in block order."""
    blocks = [frame.iloc[rows] for rows in row_blocks(len(frame), workers)]
    if workers <= 1 or len(blocks) == 1:
        return [fn(block) for block in blocks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, blocks))


def merge_scores(parts: list[ScoreResult]) -> ScoreResult:
    """The blocks' results as one call on the whole frame returns them: rows in input order,
    tag events grouped by tag in the tags frame's column order (as ``assign_tags`` lists them)."""
    if len(parts) == 1:
        return parts[0]

    def cat(name: str) -> pd.DataFrame:
        return pd.concat([getattr(part, name) for part in parts], ignore_index=True)

    events = cat("tag_events")
    rank = {tag: i for i, tag in enumerate(parts[0].tags.columns)}
    order = np.argsort(events["tag"].map(rank).to_numpy(np.float64), kind="stable")
    return ScoreResult(
        customers=cat("customers"),
        candidates=cat("candidates"),
        tags=cat("tags"),
        tag_events=events.iloc[order].reset_index(drop=True),
    )


def score_blocks(
    features: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    as_of: date,
    previous: pd.DataFrame | None,
    workers: int,
) -> ScoreResult:
    """``score_customers`` (no reasons) over row blocks on worker threads, merged."""
    check_features(features, bundle)  # here: a customer repeated in two blocks is caught too
    return merge_scores(
        in_blocks(
            lambda block: score_customers(
                block, bundle, settings, as_of, explain=False, previous_tags=previous
            ),
            features,
            workers,
        )
    )


def reasons_blocks(bundle: ModelBundle, rows: pd.DataFrame, workers: int) -> list[str]:
    """``reasons_json`` of every row (TreeSHAP is the costly part), over row blocks on threads."""
    parts = in_blocks(lambda block: reasons_json(bundle, block.reset_index(drop=True)), rows, workers)
    return [text for part in parts for text in part]


def listed_without_reasons(customers: pd.DataFrame, alerts: pd.DataFrame) -> np.ndarray:
    """Row positions of the customers a rep sees without a planned action's reasons: an alert
    of any kind, or the high churn-risk tier."""
    listed = customers["customer_id"].isin(alerts["customer_id"]) | customers["churn_risk_tier"].eq(HIGH_TIER)
    return np.flatnonzero((listed & customers["reasons"].isna()).to_numpy())


def plan_rows(
    scored: ScoreResult, features: pd.DataFrame, bundle: ModelBundle, settings: Settings, as_of: date,
    notices: pd.Series,
    consent: pd.DataFrame,
) -> tuple[ArmPlan, pd.DataFrame, pd.DataFrame, int]:
    """The plan of every arm (model, experiments, comparison slices; hold-outs flagged), the
    contact history and the candidates used, and how many pairs consent blocked. Customers
    under notice (``notices``) are a save-desk case, never a retention target; a channel the
    customer opted out of (``consent``) is never planned, in any arm."""
    contacts = features[["customer_id", "days_since_last_action", "days_since_last_invitation"]].assign(
        contacts_7d=recent_contacts(settings.clean_dir, features["customer_id"], as_of).to_numpy()
    )
    candidates, blocked = planning_candidates(scored.candidates, notices.index, consent, bundle.catalogue)
    arms = plan_arms(candidates, contacts, bundle.catalogue, settings.prescribe, bundle.uplift,
                     features, as_of)
    return arms, contacts, candidates, blocked


def score_as_of(
    settings: Settings,
    bundle: ModelBundle,
    as_of: date,
    previous: pd.DataFrame | None,
    features: pd.DataFrame | None = None,
    timings: dict | None = None,
) -> BatchResult:
    """Everything a run writes, without writing it (tests and benchmarks call this).

    ``timings``: a dict to receive each step's seconds.
    """
    with _step(timings, "features"):
        if features is None:
            features = feature_rows(
                settings, active_customers(settings.clean_dir, as_of), as_of, bundle.feature_service
            )
    with _step(timings, "score"):
        scored = score_blocks(features, bundle, settings, as_of, previous, settings.serving.batch_workers)
    with _step(timings, "plan"):
        notices = notices_given(settings.clean_dir, as_of)
        consent = contact_consent(settings.clean_dir)
        arms, contacts, candidates, blocked = plan_rows(
            scored, features, bundle, settings, as_of, notices, consent)
        plan, actions = arms.plan, arms.actions
    customers = scored.customers
    with _step(timings, "reasons"):
        pos = pd.Index(customers["customer_id"]).get_indexer(actions["customer_id"])
        reasons = pd.Series(
            reasons_blocks(bundle, features.iloc[pos], settings.serving.batch_workers),
            index=actions.index,
            dtype=object,
        )
    with _step(timings, "why"):
        actions["why"] = plan_why(actions, reasons, bundle.catalogue)
    with _step(timings, "assemble"):
        customers.loc[pos, "reasons"] = reasons.to_numpy()
        shown = show_plan(customers, actions, settings, as_of)
        alerts = scoring_alerts(features, customers, settings, as_of)
        if not shown_actions(bundle):   # no action with measured value: review by risk instead
            why = NOT_MEASURED if bundle.uplift is None else NOT_SHOWN
            review = risk_review_alerts(customers, settings.prescribe.risk_review_per_rep, as_of, why)
            alerts = pd.concat([alerts, review], ignore_index=True)
        alerts = pd.concat([save_desk_alerts(customers, notices, as_of), alerts], ignore_index=True)
        first = alerts.drop_duplicates("customer_id").set_index("customer_id")["reason"]
        customers["alert"] = customers["customer_id"].map(first)
    with _step(timings, "reasons_listed"):
        rows = listed_without_reasons(customers, alerts)
        if len(rows):
            customers.loc[rows, "reasons"] = reasons_blocks(
                bundle, features.iloc[rows], settings.serving.batch_workers)
    summary = run_summary(customers, actions, shown, alerts, plan.skipped, arms.summary,
                          checked_channels(consent), blocked, bundle)
    return BatchResult("", as_of, scored, plan, actions, alerts, contacts, summary, candidates)


def run_batch_scoring(
    settings: Settings,
    as_of: date | None = None,
    review: Callable[[BatchResult, ModelBundle], dict] | None = None,
    timings: dict | None = None,
    client=None,
) -> dict:
    """Score every active customer as of ``as_of`` (default: the latest snapshot) and write it.

    ``review`` (optional) sees the run before it is written and adds to the summary (the
    score flow measures the plan's policy value with it on the built-in world).
    ``timings`` (optional) receives each step's seconds (they are logged in any case).
    ``client``: a ``distributed.Client``: the per-customer steps run per customer bucket on
    its workers (``serving.cluster_scoring``), with the same result.
    """
    timings = {} if timings is None else timings
    as_of = as_of or latest_snapshot(settings)
    with _step(timings, "models"):
        bundle = champion_copy.keep(load_champions(settings), settings)   # the service's fallback
    engine = engine_for(settings)
    with _step(timings, "previous_tags"):
        previous = read_previous_tags(engine, before=as_of)
    if client is None:
        result = score_as_of(settings, bundle, as_of, previous, timings=timings)
    else:
        from serving.cluster_scoring import score_on_cluster

        result = score_on_cluster(client, settings, bundle, as_of, previous, timings)
    with _step(timings, "data_version"):
        meta = RunMeta(
            model_versions=bundle.versions,
            feature_service=bundle.feature_service,
            data_version=registry.data_version(settings),
            params={
                "satisfaction_scale": result.summary["satisfaction_scale"],
                "prescribe": settings.prescribe.model_dump(mode="json"),
                "tags": settings.tags.model_dump(mode="json"),
            },
        )
    with _step(timings, "write"):
        run_id = write_scoring_run(
            engine,
            ScoringRun(
                as_of=as_of,
                meta=meta,
                customers=result.scored.customers,
                actions=result.actions,
                tags=result.scored.tags,
                tag_events=result.scored.tag_events,
                alerts=result.alerts,
                pending=result.pending,
            ),
        )
    log.info("scoring run %s written: %s", run_id, json.dumps(result.summary))
    log.info("scoring run %s step seconds: %s", run_id, json.dumps(timings))
    extra = review(result, bundle) if review else {}
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "model_versions": bundle.versions,
        "database": engine.url.render_as_string(hide_password=True),
        **result.summary,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
