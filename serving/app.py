"""The scoring service: ``create_app`` builds the FastAPI app (uvicorn runs it as a factory).

    uvicorn --factory serving.app:create_app      # what `cem serve` runs

State lives on ``app.state`` (settings, database engine, model cache, fresh scorer,
metrics) and reaches routes through the dependencies of ``serving.deps``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from configs.settings import Settings, load_settings
from serving import logsafe
from serving.auth import PrincipalCache
from serving.caches import champion_copy
from serving.caches.fresh import FreshScorer, ScoreFn
from serving.caches.model_cache import ModelCache
from serving.caches.view_cache import ViewCache
from serving.db import read as db_read
from serving.db.runs import RunCache, current_run, run_age_seconds
from serving.db.schema import engine_for
from serving.db.write import utcnow
from serving.deps import EngineDep, MetricsDep, ModelsDep, Services, ServicesDep
from serving.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from serving.routes import fast_path
from serving.routes.api import router as api_router
from serving.routes.docs import add_static_and_docs
from serving.routes.pages import router as pages_router
from serving.schemas import DatabaseReady, FreshCacheReady, Health, Readiness
from serving.security import BodyLimit, SecurityHeaders

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"


def champion_probe(settings: Settings) -> Callable[[], dict[str, str]]:
    """Versions behind the ``champion`` alias, without loading the models."""

    def probe():
        from models.bundle import MODEL_NAMES
        from models.registry import champion_versions  # MLflow: imported when first called

        return champion_versions(settings, MODEL_NAMES)

    return probe


def champion_loader(settings: Settings) -> Callable[[], Any]:
    """The lead's loader of the MLflow ``champion`` models (imported when first called); each
    bundle loaded is also kept as the local copy served when the registry is unavailable."""

    def load():
        from models.bundle import load_champions

        return champion_copy.keep(load_champions(settings), settings)

    return load


def field_name(loc) -> str:
    """``["body", "rows", 3, "tenure_days"]`` -> ``rows.3.tenure_days``."""
    return ".".join(str(p) for p in loc if p != "body") or "body"


def _body_error(request: Request, error: dict) -> dict:
    """A body FastAPI could not read as an object, in words: where its JSON breaks (not a bare
    character offset shown as a field), or that it is no JSON object (naming a wrong content type)."""
    loc, kind = list(error.get("loc", ())), error.get("type", "")
    if kind == "json_invalid" and loc[:1] == ["body"]:
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"loc": ["body"], "msg": f"not valid JSON (error{at})", "type": kind}
    if kind == "model_attributes_type" and loc == ["body"]:
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()[:80]
        msg = "must be a JSON object" if "json" in sent else (
            f"must be a JSON object sent as Content-Type: application/json, not {sent or 'none'}")
        return {"loc": loc, "msg": msg, "type": kind}
    if kind == "missing" and loc == ["body"]:
        return {"loc": loc, "msg": "a JSON object is required (the body was empty or null)", "type": kind}
    return {"loc": loc, "msg": error.get("msg", ""), "type": kind}


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; the offending input is not echoed back (it may be a comment)."""
    detail = [_body_error(request, e) for e in exc.errors()]
    problems = "; ".join(f"{field_name(d['loc'])}: {d['msg']}" for d in detail)
    return JSONResponse(
        {"detail": detail, "message": f"invalid request: {problems}"},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def warm_if_needed(services: Services, freeze: bool = True) -> None:
    """Fill the view cache when a new run is visible, and the fresh-score cache for the latest
    run's customers when the models or the run date changed.

    Then the process's long-lived objects (models, caches) are frozen out of the garbage
    collector: a full collection over them takes a few hundred ms, a pause every request
    in flight would wait for.
    """
    try:
        filled = services.views.warm(services.engine, services.runs)
    except Exception:  # views are still read one by one when asked for
        log.exception("view cache warm-up failed")
        filled = 0
    warmed = _warm_fresh(services.engine, services.fresh)
    if freeze and (filled or warmed):
        gc.collect()
        gc.freeze()


def _warm_fresh(engine, fresh: FreshScorer) -> bool:
    run = current_run(engine)
    if run is None or not fresh.needs_warming(run.as_of):
        return False
    try:
        customers = db_read.run_customers(engine, run.run_id, fresh.settings.serving.fresh_cache_size)
        fresh.warm(customers, run.as_of)
    except Exception as err:  # fresh requests still work, scored one by one; readiness says why
        fresh.warmed.error = f"{type(err).__name__}: {err}"[:300]
        log.exception("fresh-score cache warm-up failed")
        return False
    return True


def readiness(engine, models: ModelCache, fresh: FreshScorer, views: ViewCache) -> tuple[Readiness, int]:
    try:
        run = current_run(engine)
        database = DatabaseReady(
            reachable=True, latest_run=run.run_id if run else None, as_of=run.as_of if run else None
        )
    except Exception as err:  # any database failure means not ready; say which
        database = DatabaseReady(reachable=False, error=f"{type(err).__name__}: {err}"[:300])
    st = models.status()
    cache = FreshCacheReady(**fresh.warmed.__dict__, cached=len(fresh.cache))
    parts = {"database": database, "models": st, "fresh_cache": cache, "view_cache": views.status()}
    if not database.reachable or not st.loaded:
        return Readiness(status="not_ready", **parts), 503
    degraded = not st.registry_reachable or database.latest_run is None
    return Readiness(status="degraded" if degraded else "ready", **parts), 200


def _ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz():
        """Liveness: the process answers."""
        return Health()

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["operations"],
        responses={503: {"model": Readiness, "description": "database or models not loaded"}},
    )
    def readyz(services: ServicesDep):
        """Readiness: database and models loaded; degraded when the registry is unreachable."""
        body, code = readiness(services.engine, services.models, services.fresh, services.views)
        return JSONResponse(body.model_dump(mode="json"), status_code=code)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(engine: EngineDep, models: ModelsDep, registry: MetricsDep):
        """Prometheus metrics: requests and latency per route, model versions, scoring-run age."""
        try:
            age = run_age_seconds(engine, utcnow())
        except Exception:  # the database being down must not hide the other metrics
            age = None
        return Response(registry.render(models.status(), age), media_type=CONTENT_TYPE)


def create_app(
    settings: Settings | None = None,
    *,
    model_loader: Callable[[], Any] | None = None,
    model_probe: Callable[[], dict[str, str]] | None = None,
    score_fn: ScoreFn | None = None,
    online: Callable | None = None,
    refresh: bool = True,
) -> FastAPI:
    """The app; tests inject the model loader, scoring function and online reader."""
    settings = settings or load_settings()
    logsafe.install()
    engine = engine_for(settings)
    fallback = None
    if model_loader is None:  # the real registry: load the champions, and probe their versions cheaply
        model_loader, model_probe = champion_loader(settings), model_probe or champion_probe(settings)
        fallback = champion_copy.loader(settings)   # the last champions loaded, if the registry is not
    models = ModelCache(model_loader, model_probe, fallback)
    fresh = FreshScorer(settings, models, score_fn, online)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if refresh:
            models.start(settings.serving.model_refresh_seconds, after=lambda: warm_if_needed(services))
        yield
        models.stop()
        engine.dispose()
        gc.unfreeze()  # let interpreter shutdown free what the warm-up froze

    app = FastAPI(
        title="CEM scoring service",
        version="1.0",
        description="Churn risk, predicted NPS, reasons and next-best actions per customer; "
        "reps' action lists and outcomes. Bearer token per rep (`cem tokens`).",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by add_static_and_docs
        redoc_url=None,
    )
    services = Services(
        settings,
        engine,
        models,
        fresh,
        Metrics(),
        RunCache(),
        PrincipalCache(),
        ViewCache(settings.serving.view_cache_size),
    )
    app.state.services = services
    app.state.settings, app.state.engine, app.state.models = settings, engine, models  # for tests
    app.state.fresh, app.state.metrics = fresh, services.metrics
    app.add_exception_handler(RequestValidationError, validation_error)
    _ops_routes(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    add_static_and_docs(app)
    route = next(r for r in api_router.routes if getattr(r, "path", None) == fast_path.ROUTE)
    app.add_middleware(fast_path.CustomerViewFastPath, route=route)  # innermost (added first)
    app.add_middleware(BodyLimit, limit=settings.serving.max_body_bytes)  # before any route reads a body
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_middleware(SecurityHeaders, https=settings.serving.https)  # outermost: every response
    return app
