"""The versioned JSON API (/v1): customer view, batch scoring, reps' lists, outcomes, events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from features.services import CHURN_SERVICE
from features.transforms.schema import ENTITY
from models.nps.scale import bundle_scale
from serving import views
from serving.alerts import survey_reason, usage_drop_reason
from serving.caches.fresh import FreshScorer, ModelsNotLoaded, row_errors
from serving.caches.online import OnlineStoreMissing
from serving.caches.view_cache import lookup
from serving.db import action_pages
from serving.db import events as db_events
from serving.db import read as db_read
from serving.db.runs import RunCache
from serving.deps import (
    BEARER_DOC,
    EngineDep,
    FreshDep,
    ManagerDep,
    PrincipalDep,
    Services,
    ServicesDep,
    SettingsDep,
    caller,
    not_found,
    require_access,
    require_customer,
)
from serving.input_rules import feature_row_errors
from serving.logsafe import mark_sensitive
from serving.schemas import (
    ActionPageOut,
    CustomerView,
    Event,
    EventResult,
    OutcomeIn,
    OutcomeOut,
    ScoreRequest,
    ScoreResponse,
    SurveyEvent,
)

router = APIRouter(prefix="/v1")
USAGE_SERVICE = CHURN_SERVICE  # a FeatureService that carries usage_last_month


def _scoring_date(runs: RunCache, engine) -> date:
    """Fresh scores are as of the latest run's date (the world the features describe), else today."""
    run = runs.get(engine)
    return run.as_of if run else date.today()


def _models_or_503(call):
    try:
        return call()
    except (ModelsNotLoaded, OnlineStoreMissing) as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err


def json_bytes(body: bytes) -> Response:
    """A body serialized beforehand (FastAPI would validate and serialize a returned model again)."""
    return Response(body, media_type="application/json")


async def customer_body(request: Request, customer_id: str, fresh: bool) -> bytes:
    """The customer view for the caller of ``request``: 401, 404 (unknown or another rep's) or 503
    as ``HTTPException``.

    Both answers are bytes serialized once: the latest run's view per customer
    (``serving.caches.view_cache``) and the fresh score per feature values (``serving.caches.fresh``).
    ``serving.routes.fast_path`` calls this too, ahead of FastAPI's router.
    """
    mark_sensitive(customer_id)
    principal, services = await caller(request)
    engine, runs, scorer = services.engine, services.runs, services.fresh
    stored = lookup(services.views, runs, engine, customer_id)
    if stored is not None:
        require_customer(principal, stored.rep_id)
    elif not principal.is_manager:  # a rep only reaches customers the latest run gave them
        raise not_found()
    if not fresh:
        if stored is None:
            raise not_found()
        return stored.body_for(principal.is_manager)
    as_of = _scoring_date(runs, engine)
    row, score, bundle = _models_or_503(lambda: scorer.lookup(customer_id, as_of))
    if row is None:
        raise not_found()
    if score is None:  # features or models changed since the cache was warmed: score now, off the loop
        score = await run_in_threadpool(scorer.compute, row, bundle, as_of)
    lineage = views.lineage_json(tuple(bundle.versions.items()), bundle.feature_service, as_of)
    return views.fresh_body(score, stored, lineage)


@router.get(
    "/customers/{customer_id}", response_model=CustomerView, tags=["customers"], openapi_extra=BEARER_DOC
)
async def get_customer(
    customer_id: str,
    request: Request,
    fresh: Annotated[bool, Query(description="Recompute now from the online store")] = False,
):
    """A customer's tags, scores, reasons and recommended action (latest run, or fresh)."""
    return json_bytes(await customer_body(request, customer_id, fresh))


@router.post("/score", response_model=ScoreResponse, tags=["scoring"])
def score(
    body: ScoreRequest,
    _: ManagerDep,
    settings: SettingsDep,
    engine: EngineDep,
    fresh_scorer: FreshDep,
    services: ServicesDep,
):
    """Score posted feature rows with the champion models (same code as the batch job)."""
    limit = settings.serving.max_batch_rows
    if len(body.rows) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"batch of {len(body.rows)} rows exceeds the limit of {limit} rows (serving.max_batch_rows)",
        )
    mark_sensitive(*(r.get(ENTITY) for r in body.rows))
    features = _models_or_503(fresh_scorer.feature_names)
    kinds = _models_or_503(fresh_scorer.feature_kinds)
    errors = row_errors(body.rows, features, kinds) or feature_row_errors(body.rows, kinds)
    if errors:
        raise RequestValidationError(errors)
    as_of = body.as_of or _scoring_date(services.runs, engine)
    frame = pd.DataFrame(body.rows, columns=[ENTITY, *features])
    customers, bundle = _models_or_503(lambda: fresh_scorer.score(frame, as_of))
    return ScoreResponse(
        as_of=as_of,
        model_versions={k: str(v) for k, v in bundle.versions.items()},
        feature_service=bundle.feature_service,
        results=[views.customer_score(r, scale=bundle_scale(bundle).code)
                 for r in customers.to_dict("records")],
    )


@router.get("/reps/{rep_id}/actions", response_model=ActionPageOut, tags=["reps"])
def rep_actions(
    rep_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int | None, Query(ge=1, le=500)] = None,
):
    """A rep's ranked action list: open alerts first with their reason, then by rank; paged."""
    require_access(principal, rep_id)
    size = size or settings.serving.page_size
    return views.action_page(rep_id, action_pages.rep_actions(engine, rep_id, page, size), page, size)


def save_outcome(services: Services, principal, body: OutcomeIn) -> dict:
    """Shared by the API and the reps' page: access check, then the write."""
    mark_sensitive(body.customer_id, body.decline_reason, body.customer_response)
    engine = services.engine
    found, owner = db_read.owner_of(engine, body.customer_id)
    if not found:
        raise not_found()
    require_customer(principal, owner)
    outcome = db_events.Outcome(
        body.customer_id, body.action_id, body.status, body.decline_reason, body.customer_response
    )
    try:
        saved = db_events.record_outcome(
            engine, outcome, rep_id=owner or principal.rep_id, recorded_by=principal.rep_id
        )
    except db_events.UnknownAction as err:
        raise RequestValidationError(
            [{"loc": ["body", "action_id"], "msg": str(err), "type": "value_error"}]
        ) from err
    services.views.forget(body.customer_id)  # its last outcome and open alerts changed
    return saved


@router.post("/outcomes", response_model=OutcomeOut, status_code=status.HTTP_201_CREATED, tags=["reps"])
def post_outcome(body: OutcomeIn, principal: PrincipalDep, services: ServicesDep):
    """Record an action's outcome (done, declined with a reason, no answer) and the customer's response."""
    return save_outcome(services, principal, body)


@router.post("/events", response_model=EventResult, tags=["events"])
def post_event(event: Event, _: ManagerDep, services: ServicesDep):
    """A survey answer or usage reading; a detractor (NPS 0-6; CSAT 1-2 on a CSAT survey) or a
    sharp usage drop alerts the owning rep
    (usage at or below ``prescribe.alert_usage_ratio`` of its recent average, as in scoring runs)."""
    mark_sensitive(event.customer_id, getattr(event, "comment", None))
    engine, fresh_scorer = services.engine, services.fresh
    found, owner = db_read.owner_of(engine, event.customer_id)
    if not found:
        raise not_found()
    if isinstance(event, SurveyEvent):
        kind, reason, comment, when = (
            "detractor",
            survey_reason(event.nps, event.csat),
            event.comment,
            event.answered_at,
        )
    else:
        baseline = db_events.usage_baseline(engine, event.customer_id, event.month)
        if baseline is None:
            baseline = _online_usage(fresh_scorer, event.customer_id)
        db_events.store_usage(engine, event.customer_id, event.month, event.usage_units)
        kind, reason, comment, when = (
            "usage_drop",
            usage_drop_reason(
                event.usage_units, baseline, event.month, services.settings.prescribe.alert_usage_ratio
            ),
            None,
            None,
        )
    if reason is None:
        return EventResult(customer_id=event.customer_id, alert_raised=False)
    alert_id = db_events.raise_alert(
        engine, event.customer_id, owner, kind, reason, comment, _naive_utc(when)
    )
    services.views.forget(event.customer_id)  # its open alerts changed
    return EventResult(customer_id=event.customer_id, alert_raised=True, alert_id=alert_id, reason=reason)


def _naive_utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def _online_usage(fresh_scorer: FreshScorer, customer_id: str) -> float | None:
    """Last month's usage from the online store, when no readings were posted yet."""
    try:
        value = fresh_scorer.online(USAGE_SERVICE).value(customer_id, "usage_last_month")
    except Exception:  # no models or no feature store: no baseline, no alert (the reading is kept)
        return None
    return None if value is None else float(value)
